//! The audit log: rows are written by the key queries in the change's own transaction; this
//! module reads them for `GET /audit/logs`.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::models::AuditLogRow;
use super::schema::llmgate_audit_logs as audit;
use super::{with_conn, Db, DbError};

/// Filters of `GET /audit/logs`.
#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    /// `created`, `updated`, `blocked`, `rotated` or `deleted`.
    pub action: Option<String>,
    /// The table, by LiteLLM's name.
    pub table_name: Option<String>,
    /// The changed object (a key's token).
    pub object_id: Option<String>,
    /// Who changed it.
    pub changed_by: Option<String>,
    /// From (inclusive).
    pub start: Option<NaiveDateTime>,
    /// Until (exclusive).
    pub end: Option<NaiveDateTime>,
}

macro_rules! filtered {
    ($filter:expr) => {{
        let f = $filter;
        let mut q = audit::table.into_boxed();
        if let Some(v) = &f.action {
            q = q.filter(audit::action.eq(v));
        }
        if let Some(v) = &f.table_name {
            q = q.filter(audit::table_name.eq(v));
        }
        if let Some(v) = &f.object_id {
            q = q.filter(audit::object_id.eq(v));
        }
        if let Some(v) = &f.changed_by {
            q = q.filter(audit::changed_by.eq(v));
        }
        if let Some(t) = f.start {
            q = q.filter(audit::updated_at.ge(t));
        }
        if let Some(t) = f.end {
            q = q.filter(audit::updated_at.lt(t));
        }
        q
    }};
}

impl Db {
    /// One page of audit rows matching `filter`, newest first, and how many match in all.
    pub async fn audit_logs(
        &self,
        filter: &AuditFilter,
        page: i64,
        page_size: i64,
    ) -> Result<(Vec<AuditLogRow>, i64), DbError> {
        Ok(with_conn!(self, conn => {
            let total: i64 = filtered!(filter).count().get_result(conn).await?;
            let rows = filtered!(filter)
                .order((audit::updated_at.desc(), audit::id.asc()))
                .limit(page_size)
                .offset((page - 1) * page_size)
                .select(AuditLogRow::as_select())
                .load(conn)
                .await?;
            (rows, total)
        }))
    }
}
