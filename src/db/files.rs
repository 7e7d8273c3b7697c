//! Files and batches created through the gateway: where each lives, who made it, and a
//! batch's cost once charged.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::schema::llmgate_managed_objects as objects;
use super::{with_conn, Db, DbError};

/// The owner recorded for objects the master key (or an open gateway) created.
pub const MASTER_OWNER: &str = "master";

/// One file or batch.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = objects)]
pub struct ObjectRow {
    /// The upstream's id (`file-...`, `batch_...`).
    pub id: String,
    /// `file` or `batch`.
    pub kind: String,
    /// The id of the deployment that holds it.
    pub deployment_id: String,
    /// The creating key's token (SHA-256 hex), or [`MASTER_OWNER`].
    pub owner: String,
    /// A file's purpose, a batch's endpoint.
    pub purpose: Option<String>,
    /// A batch's input file.
    pub input_file_id: Option<String>,
    /// When it was created through the gateway (UTC).
    pub created_at: NaiveDateTime,
    /// A batch's cost in USD, once charged.
    pub spend: Option<f64>,
    /// When a batch's cost was charged.
    pub charged_at: Option<NaiveDateTime>,
}

impl Db {
    /// Records an object; one already recorded (an output file seen again) is left as it is.
    pub async fn record_object(&self, row: &ObjectRow) -> Result<(), DbError> {
        with_conn!(self, conn => {
            diesel::insert_into(objects::table)
                .values(row)
                .on_conflict_do_nothing()
                .execute(conn)
                .await?;
        });
        Ok(())
    }

    /// The object with this id, of this kind.
    pub async fn object(&self, id: &str, kind: &str) -> Result<Option<ObjectRow>, DbError> {
        Ok(with_conn!(self, conn => objects::table
            .filter(objects::id.eq(id))
            .filter(objects::kind.eq(kind))
            .select(ObjectRow::as_select())
            .first(conn)
            .await
            .optional()?))
    }

    /// The ids of the objects of `kind` that `owner` created on deployment `deployment_id`.
    pub async fn owned_ids(
        &self,
        owner: &str,
        kind: &str,
        deployment_id: &str,
    ) -> Result<Vec<String>, DbError> {
        Ok(with_conn!(self, conn => objects::table
            .filter(objects::owner.eq(owner))
            .filter(objects::kind.eq(kind))
            .filter(objects::deployment_id.eq(deployment_id))
            .select(objects::id)
            .load(conn)
            .await?))
    }

    /// Forgets a deleted object.
    pub async fn forget_object(&self, id: &str) -> Result<(), DbError> {
        with_conn!(self, conn => {
            diesel::delete(objects::table.find(id)).execute(conn).await?;
        });
        Ok(())
    }

    /// Marks batch `id` charged `spend` USD at `at`, unless it already was: whether this call
    /// did (so a batch is charged once, however many instances see it completed at once).
    pub async fn claim_batch_cost(
        &self,
        id: &str,
        spend: f64,
        at: NaiveDateTime,
    ) -> Result<bool, DbError> {
        let changed = with_conn!(self, conn => diesel::update(
            objects::table
                .filter(objects::id.eq(id))
                .filter(objects::kind.eq("batch"))
                .filter(objects::charged_at.is_null()),
        )
        .set((objects::spend.eq(Some(spend)), objects::charged_at.eq(Some(at))))
        .execute(conn)
        .await?);
        Ok(changed == 1)
    }
}
