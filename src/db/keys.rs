//! Key queries: insert, read, update, delete, list, and per-model spend; every change writes
//! its audit row in its own transaction.

use std::collections::HashMap;

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::models::{AuditLogRow, KeyRow, KeySettings};
use super::schema::{
    llmgate_audit_logs as audit_logs, llmgate_key_model_spend as model_spend, llmgate_keys as keys,
    llmgate_managed_objects as objects,
};
use super::{with_conn, Db, DbError};

/// Writes the audit row, if any, on `$conn` (inside the caller's transaction); a macro because
/// the statement is compiled once per backend.
macro_rules! record {
    ($conn:ident, $audit:expr) => {
        if let Some(row) = $audit {
            diesel::insert_into(audit_logs::table)
                .values(row)
                .execute($conn)
                .await?;
        }
    };
}

/// Which keys `/key/list` shows.
#[derive(Debug, Clone, Default)]
pub struct KeyFilter {
    /// Only this user's.
    pub user_id: Option<String>,
    /// Only this team's.
    pub team_id: Option<String>,
    /// Only the key with this alias.
    pub key_alias: Option<String>,
    /// Only keys of this user or of these teams (what a caller who is not an admin may see).
    pub visible_to: Option<(Option<String>, Vec<String>)>,
}

macro_rules! key_filter {
    ($filter:expr) => {{
        let f: &KeyFilter = $filter;
        let mut q = keys::table.into_boxed();
        if let Some(v) = &f.user_id {
            q = q.filter(keys::user_id.eq(v.clone()));
        }
        if let Some(v) = &f.team_id {
            q = q.filter(keys::team_id.eq(v.clone()));
        }
        if let Some(v) = &f.key_alias {
            q = q.filter(keys::key_alias.eq(v.clone()));
        }
        if let Some((user, teams)) = &f.visible_to {
            q = match user {
                Some(u) => q.filter(
                    keys::user_id
                        .eq(u.clone())
                        .or(keys::team_id.eq_any(teams.clone())),
                ),
                None => q.filter(keys::team_id.eq_any(teams.clone())),
            };
        }
        q
    }};
}

impl Db {
    /// Stores a new key and, in the same transaction, its audit row.
    pub async fn insert_key(
        &self,
        row: &KeyRow,
        audit: Option<&AuditLogRow>,
    ) -> Result<(), DbError> {
        with_conn!(self, conn => {
            conn.transaction(async |conn| {
                diesel::insert_into(keys::table).values(row).execute(conn).await?;
                record!(conn, audit);
                Ok::<_, DbError>(())
            })
            .await
        })
    }

    /// The key with this token, if any.
    pub async fn key(&self, token: &str) -> Result<Option<KeyRow>, DbError> {
        Ok(with_conn!(self, conn => {
            keys::table.find(token).select(KeyRow::as_select()).first(conn).await.optional()?
        }))
    }

    /// The keys with these tokens or aliases.
    pub async fn keys_named(
        &self,
        tokens: &[String],
        aliases: &[String],
    ) -> Result<Vec<KeyRow>, DbError> {
        Ok(with_conn!(self, conn => {
            keys::table
                .filter(keys::token.eq_any(tokens).or(keys::key_alias.eq_any(aliases)))
                .select(KeyRow::as_select())
                .load(conn)
                .await?
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

    /// Saves a key's settings; its spend is replaced only when `new_spend` is given. The audit
    /// row is written in the same transaction. Returns the stored row, or `None` when the key
    /// does not exist.
    pub async fn save_key(
        &self,
        row: &KeyRow,
        new_spend: Option<f64>,
        audit: Option<&AuditLogRow>,
    ) -> Result<Option<KeyRow>, DbError> {
        let settings = KeySettings::from(row);
        with_conn!(self, conn => {
            conn.transaction(async |conn| {
                // A write first: SQLite then holds the write lock for the whole transaction.
                let changed = diesel::update(keys::table.find(&row.token))
                    .set(&settings)
                    .execute(conn)
                    .await?;
                if changed == 0 {
                    return Ok(None);
                }
                if let Some(spend) = new_spend {
                    diesel::update(keys::table.find(&row.token))
                        .set(keys::spend.eq(spend))
                        .execute(conn)
                        .await?;
                }
                record!(conn, audit);
                Ok(keys::table
                    .find(&row.token)
                    .select(KeyRow::as_select())
                    .first(conn)
                    .await
                    .optional()?)
            })
            .await
        })
    }

    /// Replaces a key's token (regeneration), keeping its spend history; the audit row is
    /// written in the same transaction.
    pub async fn change_token(
        &self,
        old: &str,
        new: &str,
        new_name: &str,
        audit: Option<&AuditLogRow>,
    ) -> Result<bool, DbError> {
        let now = chrono::Utc::now().naive_utc();
        with_conn!(self, conn => {
            conn.transaction(async |conn| {
                let changed = diesel::update(keys::table.find(old))
                    .set((keys::token.eq(new), keys::key_name.eq(new_name), keys::updated_at.eq(now)))
                    .execute(conn)
                    .await?;
                if changed == 0 {
                    return Ok(false);
                }
                diesel::update(model_spend::table.filter(model_spend::token.eq(old)))
                    .set(model_spend::token.eq(new))
                    .execute(conn)
                    .await?;
                // The key keeps the files and batches it created.
                diesel::update(objects::table.filter(objects::owner.eq(old)))
                    .set(objects::owner.eq(new))
                    .execute(conn)
                    .await?;
                record!(conn, audit);
                Ok(true)
            })
            .await
        })
    }

    /// Deletes keys, each with the audit row `audit` makes of it in the same transaction;
    /// returns the tokens that existed.
    pub async fn delete_keys(
        &self,
        tokens: &[String],
        audit: impl Fn(&KeyRow) -> Option<AuditLogRow> + Sync,
    ) -> Result<Vec<String>, DbError> {
        with_conn!(self, conn => {
            let existing: Vec<KeyRow> = keys::table
                .filter(keys::token.eq_any(tokens))
                .select(KeyRow::as_select())
                .load(conn)
                .await?;
            conn.transaction(async |conn| {
                let mut deleted = Vec::with_capacity(existing.len());
                for row in &existing {
                    // A write first: SQLite then holds the write lock for the whole transaction.
                    let gone = diesel::delete(keys::table.find(&row.token)).execute(conn).await?;
                    if gone == 0 {
                        continue;
                    }
                    diesel::delete(model_spend::table.filter(model_spend::token.eq(&row.token)))
                        .execute(conn)
                        .await?;
                    record!(conn, audit(row).as_ref());
                    deleted.push(row.token.clone());
                }
                Ok(deleted)
            })
            .await
        })
    }

    /// One page of the keys `filter` lets through, newest first, and how many it lets through.
    pub async fn list_keys(
        &self,
        filter: &KeyFilter,
        page: i64,
        size: i64,
    ) -> Result<(Vec<KeyRow>, i64), DbError> {
        Ok(with_conn!(self, conn => {
            let total: i64 = key_filter!(filter).count().get_result(conn).await?;
            let rows = key_filter!(filter)
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
