//! What the user, team, end user and tag APIs share: the limit fields every entity takes,
//! storing changes with their audit rows, telling the router and the other instances, and
//! reading an entity with its live spend.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value as Json};

use super::fields::{
    auditing, bad, db_error, duration_field, object_of, opt_count, opt_money, string_list,
};
use crate::actors::{CacheEntities, CachedEntity, ForgetEntity, ForgetKey};
use crate::db::entities::{Deleted, KeysOf};
use crate::db::models::{AuditLogRow, EntityRow, KeyRow};
use crate::error::ApiError;
use crate::governance::{EntityKind, EntityRecord, EntityRef};
use crate::keys::audit::{self, Actor, AuditAction};
use crate::keys::record::utc;
use crate::state::AppState;

/// Applies the limit fields present in `body` (`models`, `metadata`, `max_budget`,
/// `budget_duration`, `tpm_limit`, `rpm_limit`, `max_parallel_requests`, `blocked`, `spend`)
/// to `row`; `now` anchors a new budget period.
pub fn apply_limits(
    row: &mut EntityRow,
    body: &Map<String, Json>,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    for (field, v) in body {
        match field.as_str() {
            "models" => row.models = string_list(field, v)?,
            "metadata" => row.metadata = object_of(field, v, |_| true, "an object")?,
            "max_budget" => row.max_budget = opt_money(field, v)?,
            "spend" => row.spend = opt_money(field, v)?.unwrap_or(0.0),
            "tpm_limit" => row.tpm_limit = opt_count(field, v)?,
            "rpm_limit" => row.rpm_limit = opt_count(field, v)?,
            "max_parallel_requests" => row.max_parallel_requests = opt_count(field, v)?,
            "blocked" => row.blocked = v.as_bool().ok_or_else(|| bad(field, "a boolean"))?,
            "budget_duration" => {
                let d = duration_field(field, v)?;
                row.budget_duration = d.and(v.as_str().map(str::to_owned));
                row.budget_reset_at = d.and_then(|d| d.after(now)).map(|t| t.naive_utc());
            }
            _ => {}
        }
    }
    Ok(())
}

/// A required string field of a management body.
pub fn required_string(body: &Map<String, Json>, field: &str) -> Result<String, ApiError> {
    match body.get(field) {
        Some(Json::String(s)) if !s.is_empty() => Ok(s.clone()),
        None | Some(Json::Null) => Err(ApiError::bad_request(
            format!("Missing required parameter: '{field}'"),
            Some(field),
        )),
        Some(_) => Err(bad(field, "a non-empty string")),
    }
}

/// A required list of strings of a management body (a single string is a list of one).
pub fn required_list(body: &Map<String, Json>, field: &str) -> Result<Vec<String>, ApiError> {
    let list = match body.get(field) {
        Some(Json::String(s)) => vec![s.clone()],
        Some(Json::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| bad(field, "a list of strings"))?,
        None | Some(Json::Null) => Vec::new(),
        Some(_) => return Err(bad(field, "a list of strings")),
    };
    if list.is_empty() {
        return Err(ApiError::bad_request(
            format!("Missing required parameter: '{field}'"),
            Some(field),
        ));
    }
    Ok(list)
}

/// LiteLLM's name for the table of `kind`, as the audit log shows it.
pub fn table_of(kind: &str) -> &'static str {
    match kind {
        "user" => "LiteLLM_UserTable",
        "team" => "LiteLLM_TeamTable",
        "member" => "LiteLLM_TeamMembership",
        "end_user" => "LiteLLM_EndUserTable",
        _ => "LiteLLM_TagTable",
    }
}

/// How the audit log names an entity: its id, or `team/user` for a membership.
fn object_id(row: &EntityRow) -> String {
    if row.scope.is_empty() {
        row.id.clone()
    } else {
        format!("{}/{}", row.scope, row.id)
    }
}

/// Every field of an entity as JSON, for the audit log.
fn audit_fields(row: &EntityRow) -> Map<String, Json> {
    let record = EntityRecord::new(row.clone());
    let mut m = record
        .map(|r| r.common_fields(row.spend))
        .unwrap_or_default();
    for (k, v) in [
        ("id", Some(&row.id)),
        ("scope", Some(&row.scope)),
        ("alias", row.alias.as_ref()),
        ("email", row.email.as_ref()),
        ("role", row.role.as_ref()),
    ] {
        m.insert(k.into(), v.map_or(Json::Null, |v| Json::String(v.clone())));
    }
    m
}

/// Audit rows for new entities (when audit logs are on).
pub fn created(state: &AppState, actor: &Actor, rows: &[EntityRow]) -> Vec<AuditLogRow> {
    if !auditing(state) {
        return Vec::new();
    }
    rows.iter()
        .map(|row| {
            audit::entry(
                actor,
                AuditAction::Created,
                table_of(&row.kind),
                &object_id(row),
                None,
                Some(audit_fields(row)),
            )
        })
        .collect()
}

/// The audit row of a change (when audit logs are on): the fields that differ.
pub fn changed(
    state: &AppState,
    actor: &Actor,
    action: AuditAction,
    before: &EntityRow,
    after: &EntityRow,
) -> Vec<AuditLogRow> {
    if !auditing(state) {
        return Vec::new();
    }
    let (was, now) = audit::diff(&audit_fields(before), audit_fields(after));
    vec![audit::entry(
        actor,
        action,
        table_of(&after.kind),
        &object_id(after),
        Some(was),
        Some(now),
    )]
}

fn entity_of(row: &EntityRow) -> Option<EntityRef> {
    Some(EntityRef {
        kind: EntityKind::parse(&row.kind)?,
        scope: row.scope.as_str().into(),
        id: row.id.as_str().into(),
    })
}

fn store_error(e: crate::db::DbError) -> ApiError {
    db_error(e, "It already exists", "id")
}

/// One entity, if it exists.
pub async fn find(
    state: &AppState,
    kind: &'static str,
    scope: &str,
    id: &str,
) -> Result<Option<EntityRow>, ApiError> {
    let (scope, id) = (scope.to_owned(), id.to_owned());
    state
        .db
        .run(move |db| async move { db.entity(kind, &scope, &id).await })
        .await
        .map_err(store_error)
}

/// One entity, or a 404 naming it.
pub async fn get(
    state: &AppState,
    kind: &'static str,
    scope: &str,
    id: &str,
) -> Result<EntityRow, ApiError> {
    find(state, kind, scope, id).await?.ok_or_else(|| {
        let what = EntityKind::parse(kind).map_or(kind, EntityKind::label);
        ApiError::Missing(format!("{what} not found: {id}"))
    })
}

/// An entity's spend as this instance counts it: stored plus not yet written (the stored
/// figure when it is not in use here).
pub async fn live_spend(state: &AppState, row: &EntityRow) -> Result<f64, ApiError> {
    let Some(entity) = entity_of(row) else {
        return Ok(row.spend);
    };
    let live = state
        .actors()
        .router
        .send(CachedEntity(entity))
        .await
        .map_err(|_| ApiError::Internal)?;
    Ok(live.map_or(row.spend, |(_, spend)| spend))
}

/// The router caches the new state of `rows` (`spend_set`: their stored spend replaces what
/// was counted), and the other instances forget theirs.
async fn cached(state: &AppState, rows: &[EntityRow], spend_set: bool) -> Result<(), ApiError> {
    let found = rows
        .iter()
        .filter_map(|row| Some((entity_of(row)?, EntityRecord::new(row.clone()))))
        .collect::<Vec<_>>();
    for (entity, _) in &found {
        state.entity_changed(entity);
        if spend_set {
            if let Some(shared) = &state.shared {
                let period = rows
                    .iter()
                    .find(|r| entity_of(r).as_ref() == Some(entity))
                    .and_then(|r| r.budget_reset_at.map(utc));
                shared.forget_entity_spend(entity, period);
            }
        }
    }
    state
        .actors()
        .router
        .send(CacheEntities { found, spend_set })
        .await
        .map_err(|_| ApiError::Internal)
}

/// Stores new entities (with their audit rows) in one transaction; `duplicate` is the 400 a
/// row that exists already gets, about `field`.
pub async fn insert(
    state: &AppState,
    rows: Vec<EntityRow>,
    audit: Vec<AuditLogRow>,
    duplicate: &str,
    field: &str,
) -> Result<(), ApiError> {
    let stored = rows.clone();
    state
        .db
        .run(move |db| async move { db.insert_entities(&stored, &audit).await })
        .await
        .map_err(|e| db_error(e, duplicate, field))?;
    cached(state, &rows, false).await
}

/// Saves an entity's settings (and its spend, when `new_spend` is given) with its audit rows;
/// the stored row, or a 404.
pub async fn save(
    state: &AppState,
    row: EntityRow,
    new_spend: Option<f64>,
    audit: Vec<AuditLogRow>,
) -> Result<EntityRow, ApiError> {
    let id = row.id.clone();
    let saved = state
        .db
        .run(move |db| async move { db.save_entity(&row, new_spend, &audit).await })
        .await
        .map_err(store_error)?
        .ok_or_else(|| ApiError::Missing(format!("not found: {id}")))?;
    cached(state, std::slice::from_ref(&saved), new_spend.is_some()).await?;
    Ok(saved)
}

/// Whose keys a deletion takes with it.
pub enum KeysGo {
    /// None.
    None,
    /// These users'.
    OfUsers(Vec<String>),
    /// These teams'.
    OfTeams(Vec<String>),
}

/// Deletes entities `gone` (`(kind, scope, id)`) and the keys `keys` names, with their audit
/// rows, in one transaction; the router and the other instances forget them. Returns the rows
/// and keys that existed.
pub async fn delete(
    state: &AppState,
    gone: Vec<(String, String, String)>,
    keys: KeysGo,
    actor: &Actor,
) -> Result<(Vec<EntityRow>, Vec<KeyRow>), ApiError> {
    let auditing = auditing(state);
    let actor = actor.clone();
    let (rows, keys) = state
        .db
        .run(move |db| async move {
            let of = match &keys {
                KeysGo::None => KeysOf::None,
                KeysGo::OfUsers(ids) => KeysOf::Users(ids),
                KeysGo::OfTeams(ids) => KeysOf::Teams(ids),
            };
            db.delete_entities(&gone, of, |what| {
                auditing.then(|| match what {
                    Deleted::Entity(row) => audit::entry(
                        &actor,
                        AuditAction::Deleted,
                        table_of(&row.kind),
                        &object_id(row),
                        Some(audit_fields(row)),
                        None,
                    ),
                    Deleted::Key(key) => audit::deleted(&actor, key),
                })
            })
            .await
        })
        .await
        .map_err(store_error)?;
    for entity in rows.iter().filter_map(entity_of) {
        state.entity_changed(&entity);
        state
            .actors()
            .router
            .send(ForgetEntity(entity))
            .await
            .map_err(|_| ApiError::Internal)?;
    }
    for key in &keys {
        state
            .actors()
            .router
            .send(ForgetKey(key.token.clone()))
            .await
            .map_err(|_| ApiError::Internal)?;
        state.key_removed(&key.token);
    }
    Ok((rows, keys))
}

/// A page number and size from a query (`page` from 1, `size` from 1 to 100).
pub fn paging(page: Option<i64>, size: Option<i64>, default: i64) -> Result<(i64, i64), ApiError> {
    let page = page.unwrap_or(1);
    let size = size.unwrap_or(default);
    if page < 1 {
        return Err(bad("page", "an integer of at least 1"));
    }
    if !(1..=100).contains(&size) {
        return Err(bad("page_size", "an integer from 1 to 100"));
    }
    Ok((page, size))
}

/// Reads a listing of entities.
pub async fn list(
    state: &AppState,
    filter: crate::db::entities::EntityFilter,
    page: i64,
    size: i64,
) -> Result<(Vec<EntityRow>, i64), ApiError> {
    state
        .db
        .run(move |db| async move { db.list_entities(&filter, page, size).await })
        .await
        .map_err(store_error)
}

/// A JSON text field as a value.
pub fn json_of(text: &str) -> Json {
    serde_json::from_str(text).unwrap_or(Json::Null)
}

/// An entity's limits as LiteLLM's `litellm_budget_table` shows them.
pub fn budget_table(row: &EntityRow) -> Json {
    serde_json::json!({
        "max_budget": row.max_budget,
        "budget_duration": row.budget_duration,
        "budget_reset_at": row.budget_reset_at.map(|t| utc(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        "tpm_limit": row.tpm_limit,
        "rpm_limit": row.rpm_limit,
        "max_parallel_requests": row.max_parallel_requests,
    })
}

/// Changes entity `(kind, scope, id)`: `apply` sets the fields of `body` on it, and the change
/// is saved with its audit row (`action`); a `spend` in `body` replaces the counted spend. The
/// saved row, and its spend as counted live.
pub async fn change(
    state: &AppState,
    actor: &Actor,
    (kind, scope, id): (&'static str, &str, &str),
    body: &Map<String, Json>,
    action: AuditAction,
    apply: impl FnOnce(&mut EntityRow, &Map<String, Json>) -> Result<(), ApiError>,
) -> Result<(EntityRow, f64), ApiError> {
    let before = get(state, kind, scope, id).await?;
    let mut row = before.clone();
    apply(&mut row, body)?;
    row.updated_at = Utc::now().naive_utc();
    let new_spend = body.contains_key("spend").then_some(row.spend);
    let audit = changed(state, actor, action, &before, &row);
    let saved = save(state, row, new_spend, audit).await?;
    let spend = live_spend(state, &saved).await?;
    Ok((saved, spend))
}

/// A page of the entities `filter` lets through, each shown by `show` with its live spend.
pub async fn listed(
    state: &AppState,
    filter: crate::db::entities::EntityFilter,
    (page, size): (i64, i64),
    show: impl Fn(&EntityRow, f64) -> Json,
) -> Result<(Vec<Json>, i64), ApiError> {
    let (rows, total) = list(state, filter, page, size).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        out.push(show(row, live_spend(state, row).await?));
    }
    Ok((out, total))
}

/// Deletes the entities of `kind` named `ids` (no scope, no keys); the ids that existed.
pub async fn delete_ids(
    state: &AppState,
    kind: &str,
    ids: &[String],
    actor: &Actor,
) -> Result<Vec<String>, ApiError> {
    let gone = ids
        .iter()
        .map(|id| (kind.to_owned(), String::new(), id.clone()))
        .collect();
    let (rows, _) = delete(state, gone, KeysGo::None, actor).await?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}
