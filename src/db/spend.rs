//! Spend writes (one transaction per batch) and reads (`/spend/logs`, `/global/spend`).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::models::SpendLogRow;
use super::schema::{
    llmgate_key_model_spend as model_spend, llmgate_keys as keys, llmgate_proxy_spend as proxy,
    llmgate_spend_journal as journal, llmgate_spend_logs as logs,
};
use crate::governance::rollup::EntityBatch;
use std::sync::Arc;

use diesel::{QueryResult, SqliteConnection};

use super::{with_conn, Db, DbError};

/// What one flush writes.
#[derive(Debug, Default, Clone)]
pub struct SpendBatch {
    /// Spend-log rows (empty with `disable_spend_logs`).
    pub rows: Vec<SpendLogRow>,
    /// Spend to add per key, sorted by token so concurrent writers lock in one order.
    pub key_deltas: Vec<(String, f64)>,
    /// Spend to add per key and model group, sorted.
    pub model_deltas: Vec<(String, String, f64)>,
    /// Keys whose spend window reset: (token, next reset), applied before the deltas.
    pub resets: Vec<(String, Option<NaiveDateTime>)>,
    /// Spend to add to the proxy-wide total.
    pub proxy_delta: f64,
    /// A proxy-wide budget reset, applied before the delta.
    pub proxy_reset: Option<Option<NaiveDateTime>>,
    /// The journal changes the batch holds, when a journal is kept: the batch is applied only
    /// if the database's mark is below them, and moves the mark in the same transaction.
    pub journal: Option<JournalMark>,
    /// Users', teams', members', end users' and tags' spend, resets and daily activity.
    pub entities: EntityBatch,
}

/// The last journal change a batch holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalMark {
    /// The journal's id.
    pub id: String,
    /// The number of its last change in the batch.
    pub to: u64,
}

impl JournalMark {
    fn to_i64(&self) -> i64 {
        i64::try_from(self.to).unwrap_or(i64::MAX)
    }
}

/// Filters of `/spend/logs`.
#[derive(Debug, Default, Clone)]
pub struct LogFilter {
    /// Hashed key.
    pub api_key: Option<String>,
    /// Call id.
    pub request_id: Option<String>,
    /// The key's user.
    pub user_id: Option<String>,
    /// The key's team.
    pub team_id: Option<String>,
    /// From (inclusive).
    pub start: Option<NaiveDateTime>,
    /// Until (exclusive).
    pub end: Option<NaiveDateTime>,
    /// At most this many rows.
    pub limit: i64,
}

impl SpendBatch {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
            && self.key_deltas.is_empty()
            && self.model_deltas.is_empty()
            && self.resets.is_empty()
            && self.proxy_delta == 0.0
            && self.proxy_reset.is_none()
            && self.entities.is_empty()
    }
}

/// Resets spend windows before the batch's deltas land in them.
macro_rules! apply_resets {
    ($conn:ident, $batch:ident) => {
        for (token, next) in &$batch.resets {
            diesel::update(keys::table.find(token))
                .set((keys::spend.eq(0.0), keys::budget_reset_at.eq(next)))
                .execute($conn)
                .await?;
            diesel::delete(model_spend::table.filter(model_spend::token.eq(token)))
                .execute($conn)
                .await?;
        }
        if let Some(next) = $batch.proxy_reset {
            diesel::update(proxy::table.find(1))
                .set((proxy::spend.eq(0.0), proxy::budget_reset_at.eq(next)))
                .execute($conn)
                .await?;
        }
    };
}

/// Adds the batch's spend to keys (in token order), key-model pairs and the proxy total.
macro_rules! apply_deltas {
    ($conn:ident, $batch:ident) => {
        for (token, delta) in &$batch.key_deltas {
            diesel::update(keys::table.find(token))
                .set(keys::spend.eq(keys::spend + *delta))
                .execute($conn)
                .await?;
        }
        for (token, model, delta) in &$batch.model_deltas {
            diesel::insert_into(model_spend::table)
                .values((
                    model_spend::token.eq(token),
                    model_spend::model.eq(model),
                    model_spend::spend.eq(*delta),
                ))
                .on_conflict((model_spend::token, model_spend::model))
                .do_update()
                .set(model_spend::spend.eq(model_spend::spend + excluded(model_spend::spend)))
                .execute($conn)
                .await?;
        }
        if $batch.proxy_delta != 0.0 {
            diesel::update(proxy::table.find(1))
                .set(proxy::spend.eq(proxy::spend + $batch.proxy_delta))
                .execute($conn)
                .await?;
        }
    };
}

/// The SQLite writer: the same statements as the PostgreSQL one, synchronously.
fn write_spend_sqlite(conn: &mut SqliteConnection, batch: &SpendBatch) -> QueryResult<()> {
    use diesel::RunQueryDsl as SyncRunQueryDsl;
    conn.immediate_transaction(|conn| {
        if let Some(mark) = &batch.journal {
            let held: Option<i64> = SyncRunQueryDsl::first(
                journal::table.find(&mark.id).select(journal::applied_seq),
                conn,
            )
            .optional()?;
            if held.is_some_and(|h| h >= mark.to_i64()) {
                // Already applied: a retry after a commit whose answer was lost.
                return Ok(());
            }
            SyncRunQueryDsl::execute(
                diesel::insert_into(journal::table)
                    .values((
                        journal::journal_id.eq(&mark.id),
                        journal::applied_seq.eq(mark.to_i64()),
                    ))
                    .on_conflict(journal::journal_id)
                    .do_update()
                    .set(journal::applied_seq.eq(mark.to_i64())),
                conn,
            )?;
        }
        for (token, next) in &batch.resets {
            SyncRunQueryDsl::execute(
                diesel::update(keys::table.find(token))
                    .set((keys::spend.eq(0.0), keys::budget_reset_at.eq(next))),
                conn,
            )?;
            SyncRunQueryDsl::execute(
                diesel::delete(model_spend::table.filter(model_spend::token.eq(token))),
                conn,
            )?;
        }
        if let Some(next) = batch.proxy_reset {
            SyncRunQueryDsl::execute(
                diesel::update(proxy::table.find(1))
                    .set((proxy::spend.eq(0.0), proxy::budget_reset_at.eq(next))),
                conn,
            )?;
        }
        for chunk in batch.rows.chunks(ROWS_PER_INSERT) {
            // Idempotent, as on PostgreSQL.
            SyncRunQueryDsl::execute(
                diesel::insert_or_ignore_into(logs::table).values(chunk),
                conn,
            )?;
        }
        for (token, delta) in &batch.key_deltas {
            SyncRunQueryDsl::execute(
                diesel::update(keys::table.find(token)).set(keys::spend.eq(keys::spend + *delta)),
                conn,
            )?;
        }
        for (token, model, delta) in &batch.model_deltas {
            SyncRunQueryDsl::execute(
                diesel::insert_into(model_spend::table)
                    .values((
                        model_spend::token.eq(token),
                        model_spend::model.eq(model),
                        model_spend::spend.eq(*delta),
                    ))
                    .on_conflict((model_spend::token, model_spend::model))
                    .do_update()
                    .set(model_spend::spend.eq(model_spend::spend + excluded(model_spend::spend))),
                conn,
            )?;
        }
        if batch.proxy_delta != 0.0 {
            SyncRunQueryDsl::execute(
                diesel::update(proxy::table.find(1))
                    .set(proxy::spend.eq(proxy::spend + batch.proxy_delta)),
                conn,
            )?;
        }
        super::rollup::write_entities_sqlite(conn, &batch.entities)
    })
}

/// SQLite binds at most 32766 parameters; 20 columns a row keeps a chunk well under it.
const ROWS_PER_INSERT: usize = 500;

impl Db {
    /// Writes a batch in one transaction.
    pub async fn write_spend(&self, batch: Arc<SpendBatch>) -> Result<(), DbError> {
        match self {
            Db::Postgres(pool) => {
                let mut pooled = pool.get().await.map_err(DbError::pool)?;
                let batch = &*batch;
                pooled
                    .transaction(async |conn| {
                        if let Some(mark) = &batch.journal {
                            let held: Option<i64> = journal::table
                                .find(&mark.id)
                                .select(journal::applied_seq)
                                .first(conn)
                                .await
                                .optional()?;
                            if held.is_some_and(|h| h >= mark.to_i64()) {
                                // Already applied: a retry after a commit whose answer was lost.
                                return Ok(());
                            }
                            diesel::insert_into(journal::table)
                                .values((
                                    journal::journal_id.eq(&mark.id),
                                    journal::applied_seq.eq(mark.to_i64()),
                                ))
                                .on_conflict(journal::journal_id)
                                .do_update()
                                .set(journal::applied_seq.eq(mark.to_i64()))
                                .execute(conn)
                                .await?;
                        }
                        apply_resets!(conn, batch);
                        for chunk in batch.rows.chunks(ROWS_PER_INSERT) {
                            // Idempotent: a batch retried after a commit whose answer was lost
                            // adds no row twice.
                            diesel::insert_into(logs::table)
                                .values(chunk)
                                .on_conflict_do_nothing()
                                .execute(conn)
                                .await?;
                        }
                        apply_deltas!(conn, batch);
                        super::rollup::write_entities_pg(conn, &batch.entities).await?;
                        Ok::<_, DbError>(())
                    })
                    .await
            }
            Db::Sqlite(pool) => {
                let mut pooled = pool.get().await.map_err(DbError::pool)?;
                // The whole batch in one trip to a blocking thread, with diesel's synchronous
                // API (which batch-inserts on SQLite), instead of one trip per statement.
                pooled
                    .spawn_blocking(move |conn| write_spend_sqlite(conn, &batch))
                    .await
                    .map_err(DbError::from)
            }
        }
    }

    /// The number of journal `id`'s last change the database holds (0: none).
    pub async fn journal_mark(&self, id: &str) -> Result<u64, DbError> {
        let held: Option<i64> = with_conn!(self, conn => {
            journal::table
                .find(id)
                .select(journal::applied_seq)
                .first(conn)
                .await
                .optional()?
        });
        Ok(held.map_or(0, |h| u64::try_from(h).unwrap_or(0)))
    }

    /// Spend-log rows matching `filter`, newest first.
    pub async fn spend_logs(&self, filter: &LogFilter) -> Result<Vec<SpendLogRow>, DbError> {
        Ok(with_conn!(self, conn => {
            let mut q = logs::table.into_boxed();
            if let Some(k) = &filter.api_key {
                q = q.filter(logs::api_key.eq(k));
            }
            if let Some(r) = &filter.request_id {
                q = q.filter(logs::request_id.eq(r));
            }
            if let Some(u) = &filter.user_id {
                q = q.filter(logs::user_id.eq(u));
            }
            if let Some(t) = &filter.team_id {
                q = q.filter(logs::team_id.eq(t));
            }
            if let Some(s) = filter.start {
                q = q.filter(logs::start_time.ge(s));
            }
            if let Some(e) = filter.end {
                q = q.filter(logs::start_time.lt(e));
            }
            q.order(logs::start_time.desc())
                .limit(filter.limit)
                .select(SpendLogRow::as_select())
                .load(conn)
                .await?
        }))
    }

    /// The proxy-wide spend and when it next resets.
    pub async fn proxy_spend(&self) -> Result<(f64, Option<NaiveDateTime>), DbError> {
        Ok(with_conn!(self, conn => {
            proxy::table
                .find(1)
                .select((proxy::spend, proxy::budget_reset_at))
                .first(conn)
                .await
                .optional()?
                .unwrap_or((0.0, None))
        }))
    }

    /// Stores `at` as when the proxy-wide budget first resets, unless an instance already has;
    /// the reset time stored, so every instance counts the same budget period.
    pub async fn claim_proxy_reset(
        &self,
        at: NaiveDateTime,
    ) -> Result<Option<NaiveDateTime>, DbError> {
        with_conn!(self, conn => {
            diesel::update(proxy::table.find(1).filter(proxy::budget_reset_at.is_null()))
                .set(proxy::budget_reset_at.eq(at))
                .execute(conn)
                .await?
        });
        Ok(self.proxy_spend().await?.1)
    }

    /// Sum of every key's spend.
    pub async fn total_key_spend(&self) -> Result<f64, DbError> {
        use diesel::dsl::sum;
        let total: Option<f64> = with_conn!(self, conn => {
            keys::table.select(sum(keys::spend)).first(conn).await?
        });
        Ok(total.unwrap_or(0.0))
    }
}
