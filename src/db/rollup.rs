//! Writes the entity part of a spend batch (users', teams', members', end users' and tags'
//! spend, their budget resets, daily activity), inside the batch's own transaction.

use chrono::Utc;
use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel::{QueryResult, SqliteConnection};

use super::schema::{llmgate_daily_spend as days, llmgate_entities as entities};
use crate::governance::rollup::EntityBatch;

/// Applies `$batch` (an `EntityBatch`) on `$conn`; `$run` executes one statement (awaited on
/// PostgreSQL, synchronous on SQLite), so both backends share the statements.
macro_rules! apply_entities {
    ($conn:ident, $batch:expr, $run:ident) => {{
        let batch: &EntityBatch = $batch;
        let now = Utc::now().naive_utc();
        for ((kind, scope, id), next) in &batch.resets {
            $run!(
                diesel::update(entities::table.find((kind, scope, id)))
                    .set((entities::spend.eq(0.0), entities::budget_reset_at.eq(next))),
                $conn
            );
        }
        for ((kind, scope, id), delta) in &batch.deltas {
            if kind == "end_user" {
                // End users are known by their first spend, as in LiteLLM.
                $run!(
                    diesel::insert_into(entities::table)
                        .values((
                            entities::kind.eq(kind),
                            entities::scope.eq(scope),
                            entities::id.eq(id),
                            entities::spend.eq(*delta),
                            entities::created_at.eq(now),
                            entities::updated_at.eq(now),
                        ))
                        .on_conflict((entities::kind, entities::scope, entities::id))
                        .do_update()
                        .set(entities::spend.eq(entities::spend + excluded(entities::spend))),
                    $conn
                );
            } else {
                $run!(
                    diesel::update(entities::table.find((kind, scope, id)))
                        .set(entities::spend.eq(entities::spend + *delta)),
                    $conn
                );
            }
        }
        for day in &batch.days {
            $run!(
                diesel::insert_into(days::table)
                    .values(day)
                    .on_conflict((
                        days::kind,
                        days::entity_id,
                        days::date,
                        days::api_key,
                        days::model,
                        days::model_group,
                        days::provider,
                    ))
                    .do_update()
                    .set((
                        days::prompt_tokens.eq(days::prompt_tokens + excluded(days::prompt_tokens)),
                        days::completion_tokens
                            .eq(days::completion_tokens + excluded(days::completion_tokens)),
                        days::spend.eq(days::spend + excluded(days::spend)),
                        days::api_requests.eq(days::api_requests + excluded(days::api_requests)),
                        days::successful_requests
                            .eq(days::successful_requests + excluded(days::successful_requests)),
                        days::failed_requests
                            .eq(days::failed_requests + excluded(days::failed_requests)),
                    )),
                $conn
            );
        }
    }};
}

/// Runs one statement synchronously (SQLite).
macro_rules! run_sync {
    ($stmt:expr, $conn:ident) => {
        diesel::RunQueryDsl::execute($stmt, $conn)?
    };
}

/// Runs one statement on diesel-async (PostgreSQL).
macro_rules! run_async {
    ($stmt:expr, $conn:ident) => {
        diesel_async::RunQueryDsl::execute($stmt, $conn).await?
    };
}

/// The entity part of a batch on SQLite, inside the caller's transaction.
pub fn write_entities_sqlite(conn: &mut SqliteConnection, batch: &EntityBatch) -> QueryResult<()> {
    apply_entities!(conn, batch, run_sync);
    Ok(())
}

/// The entity part of a batch on PostgreSQL, inside the caller's transaction.
pub async fn write_entities_pg(
    conn: &mut diesel_async::AsyncPgConnection,
    batch: &EntityBatch,
) -> QueryResult<()> {
    apply_entities!(conn, batch, run_async);
    Ok(())
}
