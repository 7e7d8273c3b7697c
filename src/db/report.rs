//! Spend summed per day, key, model and end user, for `/global/spend/report`.

use std::collections::HashMap;

use chrono::{NaiveDate, NaiveDateTime};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Date, Double, Nullable, Text};
use diesel_async::RunQueryDsl;

use super::schema::{llmgate_keys as keys, llmgate_spend_logs as logs};
use super::{with_conn, Db, DbError};

/// The spend of one day (UTC), key, deployment model, model group and end user.
#[derive(Debug, Clone, PartialEq, Queryable)]
pub struct DailySpend {
    /// The day the requests started.
    pub day: NaiveDate,
    /// The hashed key (empty for the master key).
    pub api_key: String,
    /// The deployment's model.
    pub model: String,
    /// The public model name.
    pub model_group: String,
    /// The request's `user` (the end user).
    pub end_user: Option<String>,
    /// USD.
    pub spend: f64,
    /// Prompt tokens.
    pub prompt_tokens: i64,
    /// Completion tokens.
    pub completion_tokens: i64,
    /// All tokens.
    pub total_tokens: i64,
}

// `date()` reads a day off a timestamp on both backends (SQLite's text, PostgreSQL's
// timestamp); token sums are cast because PostgreSQL sums BIGINT as NUMERIC.
const GROUPS: &str = "date(start_time), api_key, model, model_group, end_user";
const COLUMNS: &str = "date(start_time), api_key, model, model_group, end_user, SUM(spend), \
     CAST(SUM(prompt_tokens) AS BIGINT), CAST(SUM(completion_tokens) AS BIGINT), \
     CAST(SUM(total_tokens) AS BIGINT)";

type Columns = (
    Date,
    Text,
    Text,
    Text,
    Nullable<Text>,
    Double,
    BigInt,
    BigInt,
    BigInt,
);

impl Db {
    /// Spend-log sums from `start` (inclusive) to `end` (exclusive), by day, key, model and end user.
    pub async fn daily_spend(
        &self,
        start: NaiveDateTime,
        end: NaiveDateTime,
    ) -> Result<Vec<DailySpend>, DbError> {
        Ok(with_conn!(self, conn => {
            logs::table
                .filter(logs::start_time.ge(start))
                .filter(logs::start_time.lt(end))
                .group_by(sql::<Text>(GROUPS))
                .select(sql::<Columns>(COLUMNS))
                .load::<DailySpend>(conn)
                .await?
        }))
    }

    /// The `team_id` of every key that has one.
    pub async fn key_teams(&self) -> Result<HashMap<String, String>, DbError> {
        let rows: Vec<(String, Option<String>)> = with_conn!(self, conn => {
            keys::table
                .filter(keys::team_id.is_not_null())
                .select((keys::token, keys::team_id))
                .load(conn)
                .await?
        });
        Ok(rows
            .into_iter()
            .filter_map(|(token, team)| Some((token, team?)))
            .collect())
    }
}
