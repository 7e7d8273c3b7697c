//! Entity queries (users, teams, team members, end users, tags): insert, read, save, delete,
//! list; every change writes its audit row in its own transaction.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::models::{AuditLogRow, EntityRow, KeyRow};
use super::schema::{
    llmgate_audit_logs as audit_logs, llmgate_entities as entities, llmgate_keys as keys,
};
use super::{with_conn, Db, DbError};

/// Everything an admin may change on an entity, except its spend: saving settings never
/// overwrites spend that was counted since the entity was read.
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = entities, treat_none_as_null = true)]
struct EntitySettings<'a> {
    alias: Option<&'a str>,
    email: Option<&'a str>,
    role: Option<&'a str>,
    models: &'a str,
    metadata: &'a str,
    details: &'a str,
    max_budget: Option<f64>,
    budget_duration: Option<&'a str>,
    budget_reset_at: Option<chrono::NaiveDateTime>,
    tpm_limit: Option<i64>,
    rpm_limit: Option<i64>,
    max_parallel_requests: Option<i64>,
    blocked: bool,
    updated_at: chrono::NaiveDateTime,
}

impl<'a> From<&'a EntityRow> for EntitySettings<'a> {
    fn from(r: &'a EntityRow) -> Self {
        Self {
            alias: r.alias.as_deref(),
            email: r.email.as_deref(),
            role: r.role.as_deref(),
            models: &r.models,
            metadata: &r.metadata,
            details: &r.details,
            max_budget: r.max_budget,
            budget_duration: r.budget_duration.as_deref(),
            budget_reset_at: r.budget_reset_at,
            tpm_limit: r.tpm_limit,
            rpm_limit: r.rpm_limit,
            max_parallel_requests: r.max_parallel_requests,
            blocked: r.blocked,
            updated_at: r.updated_at,
        }
    }
}

/// Which entities a listing returns.
#[derive(Debug, Clone, Default)]
pub struct EntityFilter {
    /// The kind (`user`, `team`, `member`, `end_user`, `tag`).
    pub kind: String,
    /// Only this scope (a team's members).
    pub scope: Option<String>,
    /// Only these ids.
    pub ids: Option<Vec<String>>,
    /// Only users with this role.
    pub role: Option<String>,
}

macro_rules! filtered {
    ($filter:expr) => {{
        let f = $filter;
        let mut q = entities::table
            .filter(entities::kind.eq(f.kind.clone()))
            .into_boxed();
        if let Some(scope) = &f.scope {
            q = q.filter(entities::scope.eq(scope.clone()));
        }
        if let Some(ids) = &f.ids {
            q = q.filter(entities::id.eq_any(ids.clone()));
        }
        if let Some(role) = &f.role {
            q = q.filter(entities::role.eq(role.clone()));
        }
        q
    }};
}

/// Writes the audit rows, if any, on `$conn` (inside the caller's transaction).
macro_rules! record_all {
    ($conn:ident, $audit:expr) => {
        for row in $audit {
            diesel::insert_into(audit_logs::table)
                .values(row)
                .execute($conn)
                .await?;
        }
    };
}

impl Db {
    /// One entity, if it exists.
    pub async fn entity(
        &self,
        kind: &str,
        scope: &str,
        id: &str,
    ) -> Result<Option<EntityRow>, DbError> {
        Ok(with_conn!(self, conn => {
            entities::table
                .find((kind, scope, id))
                .select(EntityRow::as_select())
                .first(conn)
                .await
                .optional()?
        }))
    }

    /// The entities named `(kind, scope, id)` that exist, read on one connection.
    pub async fn entities(
        &self,
        wanted: &[(String, String, String)],
    ) -> Result<Vec<EntityRow>, DbError> {
        with_conn!(self, conn => {
            let mut found = Vec::with_capacity(wanted.len());
            for (kind, scope, id) in wanted {
                let row = entities::table
                    .find((kind, scope, id))
                    .select(EntityRow::as_select())
                    .first(conn)
                    .await
                    .optional()?;
                found.extend(row);
            }
            Ok(found)
        })
    }

    /// Stores new entities (a team with its members, say) and their audit rows in one
    /// transaction.
    pub async fn insert_entities(
        &self,
        rows: &[EntityRow],
        audit: &[AuditLogRow],
    ) -> Result<(), DbError> {
        with_conn!(self, conn => {
            conn.transaction(async |conn| {
                for row in rows {
                    diesel::insert_into(entities::table).values(row).execute(conn).await?;
                }
                record_all!(conn, audit);
                Ok::<_, DbError>(())
            })
            .await
        })
    }

    /// Saves an entity's settings; its spend is replaced only when `new_spend` is given. The
    /// audit rows are written in the same transaction. Returns the stored row, or `None` when
    /// the entity does not exist.
    pub async fn save_entity(
        &self,
        row: &EntityRow,
        new_spend: Option<f64>,
        audit: &[AuditLogRow],
    ) -> Result<Option<EntityRow>, DbError> {
        let settings = EntitySettings::from(row);
        let pk = (row.kind.as_str(), row.scope.as_str(), row.id.as_str());
        with_conn!(self, conn => {
            conn.transaction(async |conn| {
                let changed = diesel::update(entities::table.find(pk))
                    .set(&settings)
                    .execute(conn)
                    .await?;
                if changed == 0 {
                    return Ok(None);
                }
                if let Some(spend) = new_spend {
                    diesel::update(entities::table.find(pk))
                        .set(entities::spend.eq(spend))
                        .execute(conn)
                        .await?;
                }
                record_all!(conn, audit);
                Ok(entities::table
                    .find(pk)
                    .select(EntityRow::as_select())
                    .first(conn)
                    .await
                    .optional()?)
            })
            .await
        })
    }

    /// Deletes entities (a team with its members, a user with their memberships) and, with
    /// `keys_of`, the keys of those users or teams, with their audit rows, in one transaction.
    /// Returns the rows and the keys that existed.
    pub async fn delete_entities(
        &self,
        gone: &[(String, String, String)],
        keys_of: KeysOf<'_>,
        audit: impl Fn(Deleted<'_>) -> Option<AuditLogRow> + Sync,
    ) -> Result<(Vec<EntityRow>, Vec<KeyRow>), DbError> {
        with_conn!(self, conn => {
            conn.transaction(async |conn| {
                let mut rows = Vec::new();
                for (kind, scope, id) in gone {
                    let row = entities::table
                        .find((kind, scope, id))
                        .select(EntityRow::as_select())
                        .first(conn)
                        .await
                        .optional()?;
                    if let Some(row) = row {
                        diesel::delete(entities::table.find((kind, scope, id)))
                            .execute(conn)
                            .await?;
                        record_all!(conn, audit(Deleted::Entity(&row)).iter());
                        rows.push(row);
                    }
                }
                let doomed: Vec<KeyRow> = match keys_of {
                    KeysOf::None => Vec::new(),
                    KeysOf::Users(ids) => keys::table
                        .filter(keys::user_id.eq_any(ids))
                        .select(KeyRow::as_select())
                        .load(conn)
                        .await?,
                    KeysOf::Teams(ids) => keys::table
                        .filter(keys::team_id.eq_any(ids))
                        .select(KeyRow::as_select())
                        .load(conn)
                        .await?,
                };
                for key in &doomed {
                    diesel::delete(keys::table.find(&key.token)).execute(conn).await?;
                    record_all!(conn, audit(Deleted::Key(key)).iter());
                }
                Ok::<_, DbError>((rows, doomed))
            })
            .await
        })
    }

    /// One page of entities matching `filter`, by id, and how many match in all.
    pub async fn list_entities(
        &self,
        filter: &EntityFilter,
        page: i64,
        size: i64,
    ) -> Result<(Vec<EntityRow>, i64), DbError> {
        Ok(with_conn!(self, conn => {
            let total: i64 = filtered!(filter).count().get_result(conn).await?;
            let rows = filtered!(filter)
                .order((entities::scope.asc(), entities::id.asc()))
                .limit(size)
                .offset((page - 1) * size)
                .select(EntityRow::as_select())
                .load(conn)
                .await?;
            (rows, total)
        }))
    }

    /// A user's team memberships.
    pub async fn memberships(&self, user_id: &str) -> Result<Vec<EntityRow>, DbError> {
        Ok(with_conn!(self, conn => {
            entities::table
                .filter(entities::id.eq(user_id))
                .filter(entities::kind.eq("member"))
                .order(entities::scope.asc())
                .select(EntityRow::as_select())
                .load(conn)
                .await?
        }))
    }

    /// The keys of a user or a team, newest first.
    pub async fn keys_of(&self, of: KeysOf<'_>) -> Result<Vec<KeyRow>, DbError> {
        Ok(with_conn!(self, conn => {
            let q = keys::table.into_boxed();
            let q = match of {
                KeysOf::None => return Ok(Vec::new()),
                KeysOf::Users(ids) => q.filter(keys::user_id.eq_any(ids)),
                KeysOf::Teams(ids) => q.filter(keys::team_id.eq_any(ids)),
            };
            q.order((keys::created_at.desc(), keys::token.asc()))
                .select(KeyRow::as_select())
                .load(conn)
                .await?
        }))
    }
}

/// Whose keys a query takes.
#[derive(Debug, Clone, Copy)]
pub enum KeysOf<'a> {
    /// Nobody's.
    None,
    /// These users'.
    Users(&'a [String]),
    /// These teams'.
    Teams(&'a [String]),
}

/// Something a deletion removed, for its audit row.
#[derive(Debug, Clone, Copy)]
pub enum Deleted<'a> {
    /// An entity.
    Entity(&'a EntityRow),
    /// A key of a deleted user or team.
    Key(&'a KeyRow),
}
