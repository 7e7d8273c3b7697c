//! Key queries: insert, read, update, delete, list, and per-model spend.

use std::collections::HashMap;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::models::{KeyRow, KeySettings};
use super::schema::{llmgate_key_model_spend as model_spend, llmgate_keys as keys};
use super::{with_conn, Db, DbError};

impl Db {
    /// Stores a new key.
    pub async fn insert_key(&self, row: &KeyRow) -> Result<(), DbError> {
        with_conn!(self, conn => {
            diesel::insert_into(keys::table).values(row).execute(conn).await?;
        });
        Ok(())
    }

    /// The key with this token, if any.
    pub async fn key(&self, token: &str) -> Result<Option<KeyRow>, DbError> {
        Ok(with_conn!(self, conn => {
            keys::table.find(token).select(KeyRow::as_select()).first(conn).await.optional()?
        }))
    }

    /// Tokens of the keys with these aliases.
    pub async fn tokens_for_aliases(&self, aliases: &[String]) -> Result<Vec<String>, DbError> {
        Ok(with_conn!(self, conn => {
            keys::table
                .filter(keys::key_alias.eq_any(aliases))
                .select(keys::token)
                .load(conn)
                .await?
        }))
    }

    /// Saves a key's settings; its spend is replaced only when `new_spend` is given. Returns
    /// the stored row, or `None` when the key does not exist.
    pub async fn save_key(
        &self,
        row: &KeyRow,
        new_spend: Option<f64>,
    ) -> Result<Option<KeyRow>, DbError> {
        let settings = KeySettings::from(row);
        Ok(with_conn!(self, conn => {
            let changed = diesel::update(keys::table.find(&row.token))
                .set(&settings)
                .execute(conn)
                .await?;
            if changed == 0 {
                None
            } else {
                if let Some(spend) = new_spend {
                    diesel::update(keys::table.find(&row.token))
                        .set(keys::spend.eq(spend))
                        .execute(conn)
                        .await?;
                }
                keys::table
                    .find(&row.token)
                    .select(KeyRow::as_select())
                    .first(conn)
                    .await
                    .optional()?
            }
        }))
    }

    /// Replaces a key's token (regeneration), keeping its spend history.
    pub async fn change_token(
        &self,
        old: &str,
        new: &str,
        new_name: &str,
    ) -> Result<bool, DbError> {
        let now = chrono::Utc::now().naive_utc();
        Ok(with_conn!(self, conn => {
            let changed = diesel::update(keys::table.find(old))
                .set((keys::token.eq(new), keys::key_name.eq(new_name), keys::updated_at.eq(now)))
                .execute(conn)
                .await?;
            diesel::update(model_spend::table.filter(model_spend::token.eq(old)))
                .set(model_spend::token.eq(new))
                .execute(conn)
                .await?;
            changed > 0
        }))
    }

    /// Deletes keys; returns the tokens that existed.
    pub async fn delete_keys(&self, tokens: &[String]) -> Result<Vec<String>, DbError> {
        Ok(with_conn!(self, conn => {
            let found: Vec<String> = keys::table
                .filter(keys::token.eq_any(tokens))
                .select(keys::token)
                .load(conn)
                .await?;
            diesel::delete(keys::table.filter(keys::token.eq_any(&found))).execute(conn).await?;
            diesel::delete(model_spend::table.filter(model_spend::token.eq_any(&found)))
                .execute(conn)
                .await?;
            found
        }))
    }

    /// One page of keys, newest first, and the total count.
    pub async fn list_keys(&self, page: i64, size: i64) -> Result<(Vec<KeyRow>, i64), DbError> {
        Ok(with_conn!(self, conn => {
            let total: i64 = keys::table.count().get_result(conn).await?;
            let rows = keys::table
                .order((keys::created_at.desc(), keys::token.asc()))
                .limit(size)
                .offset((page - 1) * size)
                .select(KeyRow::as_select())
                .load(conn)
                .await?;
            (rows, total)
        }))
    }

    /// A key's spend per model.
    pub async fn key_model_spend(&self, token: &str) -> Result<HashMap<String, f64>, DbError> {
        let rows: Vec<(String, f64)> = with_conn!(self, conn => {
            model_spend::table
                .filter(model_spend::token.eq(token))
                .select((model_spend::model, model_spend::spend))
                .load(conn)
                .await?
        });
        Ok(rows.into_iter().collect())
    }
}
