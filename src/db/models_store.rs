//! Stored models (`/model/new`): insert, read, update, delete, and the cheap fingerprint every
//! instance polls; each change writes its audit row in its own transaction.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::models::AuditLogRow;
use super::schema::{llmgate_audit_logs as audit_logs, llmgate_proxy_models as models};
use super::{with_conn, Db, DbError};

/// One stored model; `litellm_params` is JSON text whose credentials are encrypted.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = models)]
pub struct StoredModelRow {
    /// `model_info.id`.
    pub id: String,
    /// The public name.
    pub model_name: String,
    /// JSON object, credentials encrypted.
    pub litellm_params: String,
    /// JSON object (its `id` is the row's).
    pub model_info: String,
    /// Creation time (UTC).
    pub created_at: NaiveDateTime,
    /// Last change (UTC); each write moves the table's latest past the one before.
    pub updated_at: NaiveDateTime,
    /// Who added it.
    pub created_by: String,
    /// Who changed it last.
    pub updated_by: String,
}

/// How many models are stored and when the latest changed: a change anywhere changes it.
pub type ModelsFingerprint = (i64, Option<NaiveDateTime>);

/// Writes the audit row, if any, on `$conn` inside the caller's transaction (a macro: the
/// statement is compiled once per backend).
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

/// Moves `$row.updated_at` past the latest stored one, so the polled fingerprint changes even
/// when instances' clocks disagree.
macro_rules! after_latest {
    ($conn:ident, $row:expr) => {{
        let latest: Option<NaiveDateTime> = models::table
            .select(diesel::dsl::max(models::updated_at))
            .first($conn)
            .await?;
        if let Some(latest) = latest {
            let next = latest + chrono::Duration::milliseconds(1);
            if $row.updated_at < next {
                $row.updated_at = next;
            }
        }
    }};
}

impl Db {
    /// Every stored model.
    pub async fn stored_models(&self) -> Result<Vec<StoredModelRow>, DbError> {
        Ok(with_conn!(self, conn => {
            models::table
                .order(models::created_at.asc())
                .select(StoredModelRow::as_select())
                .load(conn)
                .await?
        }))
    }

    /// The stored model with this id, if any.
    pub async fn stored_model(&self, id: &str) -> Result<Option<StoredModelRow>, DbError> {
        Ok(with_conn!(self, conn => {
            models::table
                .find(id)
                .select(StoredModelRow::as_select())
                .first(conn)
                .await
                .optional()?
        }))
    }

    /// The row count and the latest change: what every instance polls.
    pub async fn models_fingerprint(&self) -> Result<ModelsFingerprint, DbError> {
        Ok(with_conn!(self, conn => {
            models::table
                .select((diesel::dsl::count_star(), diesel::dsl::max(models::updated_at)))
                .first(conn)
                .await?
        }))
    }

    /// Stores a new model and its audit row; returns the row as stored.
    pub async fn insert_model(
        &self,
        mut row: StoredModelRow,
        audit: Option<&AuditLogRow>,
    ) -> Result<StoredModelRow, DbError> {
        with_conn!(self, conn => {
            conn.transaction(async |conn| {
                // A write first: SQLite then holds the write lock for the whole transaction.
                diesel::insert_into(models::table).values(&row).execute(conn).await?;
                after_latest!(conn, row);
                diesel::update(models::table.find(&row.id))
                    .set(models::updated_at.eq(row.updated_at))
                    .execute(conn)
                    .await?;
                record!(conn, audit);
                Ok::<_, DbError>(row)
            })
            .await
        })
    }

    /// Replaces a stored model's name, params and info, with its audit row; `None` when it
    /// does not exist (any more).
    pub async fn update_model(
        &self,
        mut row: StoredModelRow,
        audit: Option<&AuditLogRow>,
    ) -> Result<Option<StoredModelRow>, DbError> {
        with_conn!(self, conn => {
            conn.transaction(async |conn| {
                let changed = diesel::update(models::table.find(&row.id))
                    .set((
                        models::model_name.eq(&row.model_name),
                        models::litellm_params.eq(&row.litellm_params),
                        models::model_info.eq(&row.model_info),
                        models::updated_by.eq(&row.updated_by),
                    ))
                    .execute(conn)
                    .await?;
                if changed == 0 {
                    return Ok(None);
                }
                after_latest!(conn, row);
                diesel::update(models::table.find(&row.id))
                    .set(models::updated_at.eq(row.updated_at))
                    .execute(conn)
                    .await?;
                record!(conn, audit);
                Ok::<_, DbError>(Some(row))
            })
            .await
        })
    }

    /// Deletes a stored model, with the audit row `audit` makes of it; the row it was, if any.
    pub async fn delete_model(
        &self,
        id: &str,
        audit: impl Fn(&StoredModelRow) -> Option<AuditLogRow> + Sync,
    ) -> Result<Option<StoredModelRow>, DbError> {
        with_conn!(self, conn => {
            let Some(row) = models::table
                .find(id)
                .select(StoredModelRow::as_select())
                .first(conn)
                .await
                .optional()?
            else {
                return Ok(None);
            };
            conn.transaction(async |conn| {
                // A write first: SQLite then holds the write lock for the whole transaction.
                let gone = diesel::delete(models::table.find(id)).execute(conn).await?;
                if gone == 0 {
                    return Ok(None);
                }
                record!(conn, audit(&row).as_ref());
                Ok::<_, DbError>(Some(row))
            })
            .await
        })
    }
}
