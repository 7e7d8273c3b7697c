//! Spend summaries: the top keys, models and teams of the last days (from the spend log), and
//! each user's, team's, end user's and tag's daily activity (from the daily table).

use chrono::{NaiveDate, NaiveDateTime};
use diesel::dsl::{sql, sum};
use diesel::prelude::*;
use diesel::sql_types::{Date, Double, Nullable, Text};
use diesel_async::RunQueryDsl;

use super::models::{DailySpendRow, KeyRow};
use super::schema::{
    llmgate_daily_spend as days, llmgate_keys as keys, llmgate_spend_logs as logs,
};
use super::{with_conn, Db, DbError};

/// Which daily activity rows to read.
#[derive(Debug, Clone, Default)]
pub struct DayFilter {
    /// `user`, `team`, `end_user` or `tag`.
    pub kind: String,
    /// Only these entities (`None`: all).
    pub ids: Option<Vec<String>>,
    /// From this day (`YYYY-MM-DD`, inclusive).
    pub start: String,
    /// To this day (inclusive).
    pub end: String,
    /// Only this model group or model.
    pub model: Option<String>,
    /// Only this key (its token).
    pub api_key: Option<String>,
}

macro_rules! day_filter {
    ($f:expr) => {{
        let f: &DayFilter = $f;
        let mut q = days::table
            .filter(days::kind.eq(f.kind.clone()))
            .filter(days::date.ge(f.start.clone()))
            .filter(days::date.le(f.end.clone()))
            .into_boxed();
        if let Some(ids) = &f.ids {
            q = q.filter(days::entity_id.eq_any(ids.clone()));
        }
        if let Some(m) = &f.model {
            q = q.filter(
                days::model_group
                    .eq(m.clone())
                    .or(days::model.eq(m.clone())),
            );
        }
        if let Some(k) = &f.api_key {
            q = q.filter(days::api_key.eq(k.clone()));
        }
        q
    }};
}

/// One team's spend on one day.
#[derive(Debug, Clone, PartialEq, Queryable)]
pub struct TeamDay {
    /// The key's team (`None`: keys without one).
    pub team_id: Option<String>,
    /// The day.
    pub day: NaiveDate,
    /// USD.
    pub spend: f64,
}

impl Db {
    /// One page of daily activity rows matching `filter`, newest day first, and how many match.
    pub async fn daily_activity(
        &self,
        filter: &DayFilter,
        page: i64,
        size: i64,
    ) -> Result<(Vec<DailySpendRow>, i64), DbError> {
        Ok(with_conn!(self, conn => {
            let total: i64 = day_filter!(filter).count().get_result(conn).await?;
            let rows = day_filter!(filter)
                .order((days::date.desc(), days::spend.desc(), days::entity_id.asc()))
                .limit(size)
                .offset((page - 1) * size)
                .select(DailySpendRow::as_select())
                .load(conn)
                .await?;
            (rows, total)
        }))
    }

    /// The keys with these tokens.
    pub async fn keys_by_token(&self, tokens: &[String]) -> Result<Vec<KeyRow>, DbError> {
        Ok(with_conn!(self, conn => {
            keys::table
                .filter(keys::token.eq_any(tokens))
                .select(KeyRow::as_select())
                .load(conn)
                .await?
        }))
    }

    /// The keys that spent most since `since`, with what they spent (`user_id`: only that
    /// user's), at most `limit`.
    pub async fn top_keys(
        &self,
        since: NaiveDateTime,
        user_id: Option<String>,
        limit: i64,
    ) -> Result<Vec<(String, Option<f64>)>, DbError> {
        Ok(with_conn!(self, conn => {
            let mut q = logs::table
                .filter(logs::start_time.ge(since))
                .group_by(logs::api_key)
                .select((logs::api_key, sum(logs::spend)))
                .order(sum(logs::spend).desc())
                .limit(limit)
                .into_boxed();
            if let Some(u) = &user_id {
                q = q.filter(logs::user_id.eq(u.clone()));
            }
            q.load(conn).await?
        }))
    }

    /// The models that cost most since `since` (`user_id`: only that user's), at most `limit`.
    pub async fn top_models(
        &self,
        since: NaiveDateTime,
        user_id: Option<String>,
        limit: i64,
    ) -> Result<Vec<(String, Option<f64>, Option<i64>)>, DbError> {
        let rows: Vec<(String, Option<f64>, Option<i64>)> = with_conn!(self, conn => {
            // PostgreSQL sums BIGINT as NUMERIC: the token sum is cast back.
            let mut q = logs::table
                .filter(logs::start_time.ge(since))
                .filter(logs::model.ne(""))
                .group_by(logs::model)
                .select((
                    logs::model,
                    sum(logs::spend),
                    sql::<Nullable<diesel::sql_types::BigInt>>("CAST(SUM(total_tokens) AS BIGINT)"),
                ))
                .order(sum(logs::spend).desc())
                .limit(limit)
                .into_boxed();
            if let Some(u) = &user_id {
                q = q.filter(logs::user_id.eq(u.clone()));
            }
            q.load(conn).await?
        });
        Ok(rows)
    }

    /// Each team's spend per day since `since`.
    pub async fn team_days(&self, since: NaiveDateTime) -> Result<Vec<TeamDay>, DbError> {
        Ok(with_conn!(self, conn => {
            logs::table
                .filter(logs::start_time.ge(since))
                .group_by(sql::<Text>("team_id, date(start_time)"))
                .select(sql::<(Nullable<Text>, Date, Double)>(
                    "team_id, date(start_time), SUM(spend)",
                ))
                .order(sql::<Date>("date(start_time)"))
                .load::<TeamDay>(conn)
                .await?
        }))
    }

    /// Each tag's requests and spend from day `start` to day `end` (inclusive), most spent
    /// first (`only`: just these tags).
    pub async fn tag_totals(
        &self,
        start: String,
        end: String,
        only: Option<Vec<String>>,
    ) -> Result<Vec<(String, Option<f64>, Option<i64>)>, DbError> {
        Ok(with_conn!(self, conn => {
            let mut q = days::table
                .filter(days::kind.eq("tag"))
                .filter(days::date.ge(start))
                .filter(days::date.le(end))
                .group_by(days::entity_id)
                .select((
                    days::entity_id,
                    sum(days::spend),
                    sql::<Nullable<diesel::sql_types::BigInt>>("CAST(SUM(api_requests) AS BIGINT)"),
                ))
                .order(sum(days::spend).desc())
                .into_boxed();
            if let Some(tags) = &only {
                q = q.filter(days::entity_id.eq_any(tags.clone()));
            }
            q.load(conn).await?
        }))
    }
}
