//! The key API: generate, info, update, delete, list, block, unblock, regenerate.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Map, Value as Json};

use super::access::{access, denied};
use super::body::ManagementBody;
use super::fields::{
    auditing, bad, duration_field, object_of, opt_count, opt_money, opt_string, parse_body,
    string_list,
};
use super::pipeline::load_key;
use crate::actors::spend::RenameKey;
use crate::actors::{CacheKey, CachedKey, ForgetKey};
use crate::db::keys::KeyFilter;
use crate::db::models::{AuditLogRow, KeyRow};
use crate::db::DbError;
use crate::error::ApiError;
use crate::governance::Access;
use crate::keys::audit::{self, Actor, AuditAction};
use crate::keys::{self, KeyRecord};
use crate::state::AppState;

fn db_error(e: DbError) -> ApiError {
    super::fields::db_error(
        e,
        "A key with this key_alias or key already exists",
        "key_alias",
    )
}

type State = web::Data<AppState>;

/// Applies the key fields present in `body` to `row`; `now` anchors durations.
fn apply_fields(
    row: &mut KeyRow,
    body: &Map<String, Json>,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    for (field, v) in body {
        match field.as_str() {
            "models" => row.models = string_list(field, v)?,
            "tags" => row.tags = string_list(field, v)?,
            "allowed_cache_controls" => row.allowed_cache_controls = string_list(field, v)?,
            "aliases" => {
                row.aliases = object_of(field, v, Json::is_string, "an object of model names")?
            }
            "config" => row.config = object_of(field, v, |_| true, "an object")?,
            "metadata" => row.metadata = object_of(field, v, |_| true, "an object")?,
            "model_max_budget" => {
                row.model_max_budget = object_of(
                    field,
                    v,
                    |b| {
                        b.as_f64().is_some()
                            || b.get("budget_limit").and_then(Json::as_f64).is_some()
                    },
                    "an object of model to budget",
                )?
            }
            "model_rpm_limit" => {
                row.model_rpm_limit =
                    object_of(field, v, Json::is_u64, "an object of model to integer")?
            }
            "model_tpm_limit" => {
                row.model_tpm_limit =
                    object_of(field, v, Json::is_u64, "an object of model to integer")?
            }
            "key_alias" => row.key_alias = opt_string(field, v)?,
            "user_id" => row.user_id = opt_string(field, v)?,
            "team_id" => row.team_id = opt_string(field, v)?,
            "spend" => row.spend = opt_money(field, v)?.unwrap_or(0.0),
            "max_budget" => row.max_budget = opt_money(field, v)?,
            "tpm_limit" => row.tpm_limit = opt_count(field, v)?,
            "rpm_limit" => row.rpm_limit = opt_count(field, v)?,
            "max_parallel_requests" => row.max_parallel_requests = opt_count(field, v)?,
            "blocked" => row.blocked = v.as_bool().ok_or_else(|| bad(field, "a boolean"))?,
            "budget_duration" => {
                let d = duration_field(field, v)?;
                row.budget_duration = d.and(v.as_str().map(str::to_owned));
                row.budget_reset_at = d.and_then(|d| d.after(now)).map(|t| t.naive_utc());
            }
            "duration" => {
                row.expires = duration_field(field, v)?
                    .map(|d| d.after(now).ok_or_else(|| bad(field, "a shorter duration")))
                    .transpose()?
                    .map(|t| t.naive_utc());
            }
            _ => {}
        }
    }
    Ok(())
}

/// The response of generate and regenerate: the plaintext key, shown this once.
fn issued(record: &KeyRecord, key: &str) -> Json {
    let mut out = record.info(None);
    if let Json::Object(m) = &mut out {
        m.insert("key".into(), Json::String(key.to_owned()));
        m.insert("token_id".into(), Json::String(record.row.token.clone()));
    }
    out
}

/// `POST /key/generate`: admins make any key; an internal user makes their own (in a team
/// they belong to, if any); a team's admins make keys of their team. A team key must exist in
/// a team that exists, within the team's models and limits.
pub async fn generate(
    state: State,
    req: HttpRequest,
    body: ManagementBody,
) -> Result<HttpResponse, ApiError> {
    let access = access(&state, &req).await?;
    let actor = Actor::of(&access, &req);
    let fields = parse_body(&body.0)?;
    Ok(HttpResponse::Ok().json(issue(&state, &access, &actor, fields).await?))
}

/// Makes a key from a `/key/generate` body on behalf of `access` (checked), stores it and
/// answers with the key shown this once.
pub(super) async fn issue(
    state: &AppState,
    access: &Access,
    actor: &Actor,
    mut fields: Map<String, Json>,
) -> Result<Json, ApiError> {
    if !access.is_admin() && !fields.contains_key("user_id") {
        // A user's key is their own unless they name its user.
        if let Some(me) = access.user_id() {
            fields.insert("user_id".into(), Json::String(me.to_owned()));
        }
    }
    let key = match fields.remove("key") {
        None | Some(Json::Null) => keys::generate_key().map_err(|_| ApiError::Internal)?,
        Some(Json::String(k)) if k.starts_with("sk-") && k.len() >= 8 => k,
        Some(_) => {
            return Err(bad(
                "key",
                "a string starting with sk- (at least 8 characters)",
            ))
        }
    };
    // Omitted means the configured default (1 hour unless set); an explicit null never expires.
    if !fields.contains_key("duration") {
        let default = state
            .settings
            .default_key_params
            .get("duration")
            .cloned()
            .unwrap_or(Json::String("1h".into()));
        fields.insert("duration".into(), default);
    }
    for (k, v) in &state.settings.default_key_params {
        if k != "duration" && !fields.contains_key(k) {
            fields.insert(k.clone(), v.clone());
        }
    }
    let now = Utc::now();
    let mut row = KeyRow::blank(keys::hash_key(&key), keys::key_name(&key), now.naive_utc());
    apply_fields(&mut row, &fields, now)?;
    if !access.may_create_key(row.user_id.as_deref(), row.team_id.as_deref()) {
        return Err(denied(
            access,
            "create this key (its user_id or team_id is not theirs)",
        ));
    }
    if let Some(team) = &row.team_id {
        super::teams::key_fits_team(state, team, &row).await?;
    }
    let stored = row.clone();
    let audit_row = auditing(state).then(|| audit::created(actor, &row));
    state
        .db
        .run(move |db| async move { db.insert_key(&stored, audit_row.as_ref()).await })
        .await
        .map_err(db_error)?;
    let record = KeyRecord::new(row, Default::default());
    let body = issued(&record, &key);
    state.actors().router.do_send(CacheKey::read(record));
    Ok(body)
}

#[derive(Deserialize)]
/// `?key=`.
pub struct InfoQuery {
    key: Option<String>,
}

async fn record_of(state: &AppState, token: &str) -> Result<(KeyRecord, Option<f64>), ApiError> {
    let live = state
        .actors()
        .router
        .send(CachedKey(token.to_owned()))
        .await
        .map_err(|_| ApiError::Internal)?;
    if let Some((record, spend)) = live {
        return Ok(((*record).clone(), Some(spend)));
    }
    match load_key(state, token).await? {
        Some(record) => Ok((record, None)),
        None => Err(ApiError::Missing("Key not found".into())),
    }
}

/// `GET /key/info?key=`: a virtual key reads itself (the default), its user's keys (with a
/// role) and its team's (as the team's admin); admins and viewers read any key.
pub async fn info(
    state: State,
    req: HttpRequest,
    q: web::Query<InfoQuery>,
) -> Result<HttpResponse, ApiError> {
    let access = access(&state, &req).await?;
    let (given, token) = match (access.token(), &q.key) {
        (_, Some(k)) => (Some(k.clone()), keys::token_of(k)),
        (Some(own), None) => (None, own.to_owned()),
        (None, None) => {
            return Err(ApiError::bad_request(
                "Missing required parameter: 'key'",
                Some("key"),
            ))
        }
    };
    let found = record_of(&state, &token).await;
    let (record, live) = match found {
        Ok(found) if access.may_view_key(&found.0.row) => found,
        // Whether another key exists is not told to a caller who may not read it.
        Ok(_) | Err(ApiError::Missing(_)) if !access.sees_all() => {
            return Err(denied(&access, "read another key"))
        }
        Ok(_) => return Err(denied(&access, "read another key")),
        Err(e) => return Err(e),
    };
    Ok(HttpResponse::Ok().json(json!({"key": given.unwrap_or_else(|| record.row.key_name.clone()), "info": record.info(live)})))
}

fn key_param(fields: &Map<String, Json>) -> Result<String, ApiError> {
    match fields.get("key") {
        Some(Json::String(k)) if !k.is_empty() => Ok(keys::token_of(k)),
        Some(_) => Err(bad("key", "a string")),
        None => Err(ApiError::bad_request(
            "Missing required parameter: 'key'",
            Some("key"),
        )),
    }
}

async fn save(
    state: &AppState,
    row: KeyRow,
    new_spend: Option<f64>,
    audit_row: Option<AuditLogRow>,
) -> Result<KeyRecord, ApiError> {
    let found = state
        .db
        .run(move |db| async move {
            let Some(stored) = db.save_key(&row, new_spend, audit_row.as_ref()).await? else {
                return Ok(None);
            };
            let model_spend = db.key_model_spend(&stored.token).await?;
            Ok(Some((stored, model_spend)))
        })
        .await
        .map_err(db_error)?;
    let Some((stored, model_spend)) = found else {
        return Err(ApiError::Missing("Key not found".into()));
    };
    let record = KeyRecord::new(stored, model_spend);
    state
        .actors()
        .router
        .send(CacheKey {
            record: record.clone(),
            spend_set: new_spend.is_some(),
        })
        .await
        .map_err(|_| ApiError::Internal)?;
    if new_spend.is_some() {
        if let Some(shared) = &state.shared {
            shared.forget_spend(
                &record.row.token,
                record.row.budget_reset_at.map(keys::record::utc),
            );
        }
    }
    state.key_changed(&record.row.token);
    Ok(record)
}

async fn change(
    state: &AppState,
    token: &str,
    fields: &Map<String, Json>,
    access: &Access,
    actor: &Actor,
    action: AuditAction,
) -> Result<HttpResponse, ApiError> {
    let (record, _) = record_of(state, token).await?;
    if !access.may_edit_key(&record.row) {
        return Err(denied(access, "change this key"));
    }
    if !access.is_admin() && fields.contains_key("spend") {
        return Err(denied(access, "set a key's spend"));
    }
    let before = record.row.clone();
    let mut row = record.row;
    let now = Utc::now();
    let mut fields = fields.clone();
    fields.remove("key");
    apply_fields(&mut row, &fields, now)?;
    if !access.may_edit_key(&row) {
        return Err(denied(access, "give this key to that user or team"));
    }
    if let Some(team) = row.team_id.as_ref().filter(|_| {
        ["team_id", "models", "max_budget", "tpm_limit", "rpm_limit"]
            .iter()
            .any(|f| fields.contains_key(*f))
    }) {
        super::teams::key_fits_team(state, team, &row).await?;
    }
    row.updated_at = now.naive_utc();
    let new_spend = fields.contains_key("spend").then_some(row.spend);
    let audit_row = auditing(state).then(|| audit::changed(actor, action, &before, &row));
    let record = save(state, row, new_spend, audit_row).await?;
    let live = state
        .actors()
        .router
        .send(CachedKey(record.row.token.clone()))
        .await
        .map_err(|_| ApiError::Internal)?
        .map(|(_, spend)| spend);
    Ok(HttpResponse::Ok().json(record.info(live)))
}

/// `POST /key/update`.
pub async fn update(
    state: State,
    req: HttpRequest,
    body: ManagementBody,
) -> Result<HttpResponse, ApiError> {
    let access = access(&state, &req).await?;
    let actor = Actor::of(&access, &req);
    let fields = parse_body(&body.0)?;
    let token = key_param(&fields)?;
    change(
        &state,
        &token,
        &fields,
        &access,
        &actor,
        AuditAction::Updated,
    )
    .await
}

async fn set_blocked(
    state: State,
    req: HttpRequest,
    body: ManagementBody,
    blocked: bool,
) -> Result<HttpResponse, ApiError> {
    let access = access(&state, &req).await?;
    let actor = Actor::of(&access, &req);
    let token = key_param(&parse_body(&body.0)?)?;
    let mut fields = Map::new();
    fields.insert("blocked".into(), Json::Bool(blocked));
    let action = if blocked {
        AuditAction::Blocked
    } else {
        AuditAction::Updated
    };
    change(&state, &token, &fields, &access, &actor, action).await
}

/// `POST /key/block`.
pub async fn block(
    state: State,
    req: HttpRequest,
    body: ManagementBody,
) -> Result<HttpResponse, ApiError> {
    set_blocked(state, req, body, true).await
}

/// `POST /key/unblock`.
pub async fn unblock(
    state: State,
    req: HttpRequest,
    body: ManagementBody,
) -> Result<HttpResponse, ApiError> {
    set_blocked(state, req, body, false).await
}

/// `POST /key/delete` with `{"keys": [..]}` or `{"key_aliases": [..]}`.
pub async fn delete(
    state: State,
    req: HttpRequest,
    body: ManagementBody,
) -> Result<HttpResponse, ApiError> {
    let access = access(&state, &req).await?;
    let actor = Actor::of(&access, &req);
    let fields = parse_body(&body.0)?;
    let list = |name: &str| -> Result<Vec<String>, ApiError> {
        match fields.get(name) {
            None | Some(Json::Null) => Ok(Vec::new()),
            Some(Json::Array(items)) => items
                .iter()
                .map(|i| i.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| bad(name, "a list of strings")),
            Some(_) => Err(bad(name, "a list of strings")),
        }
    };
    let given = list("keys")?;
    let aliases = list("key_aliases")?;
    if given.is_empty() && aliases.is_empty() {
        return Err(ApiError::bad_request(
            "Missing required parameter: 'keys' or 'key_aliases'",
            Some("keys"),
        ));
    }
    let tokens: Vec<String> = given.iter().map(|k| keys::token_of(k)).collect();
    if !access.is_admin() {
        let (t, a) = (tokens.clone(), aliases.clone());
        let named = state
            .db
            .run(move |db| async move { db.keys_named(&t, &a).await })
            .await
            .map_err(db_error)?;
        if named.iter().any(|row| !access.may_edit_key(row)) {
            return Err(denied(&access, "delete these keys"));
        }
    }
    let auditing = auditing(&state);
    let deleted = state
        .db
        .run(move |db| async move {
            let mut all = tokens;
            all.extend(db.tokens_for_aliases(&aliases).await?);
            db.delete_keys(&all, |row| auditing.then(|| audit::deleted(&actor, row)))
                .await
        })
        .await
        .map_err(db_error)?;
    for token in &deleted {
        state
            .actors()
            .router
            .send(ForgetKey(token.clone()))
            .await
            .map_err(|_| ApiError::Internal)?;
        state.key_removed(token);
    }
    // Report each deleted key the way the caller named it (plaintext keys are not stored).
    let shown: Vec<String> = given
        .iter()
        .filter(|k| deleted.contains(&keys::token_of(k)))
        .cloned()
        .chain(
            deleted
                .iter()
                .filter(|t| !given.iter().any(|k| &keys::token_of(k) == *t))
                .cloned(),
        )
        .collect();
    Ok(HttpResponse::Ok().json(json!({"deleted_keys": shown})))
}

#[derive(Deserialize)]
/// `?page=&size=&return_full_object=&user_id=&team_id=&key_alias=`.
pub struct ListQuery {
    page: Option<i64>,
    size: Option<i64>,
    return_full_object: Option<bool>,
    user_id: Option<String>,
    team_id: Option<String>,
    key_alias: Option<String>,
}

/// `GET /key/list?page=1&size=10`: the hashes of the keys, or with `return_full_object=true`
/// each key as `/key/info` shows it (its spend including what is not yet written). Admins and
/// viewers see every key; a user sees their own and those of the teams they administer.
pub async fn list(
    state: State,
    req: HttpRequest,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let access = access(&state, &req).await?;
    let mut filter = KeyFilter {
        user_id: q.user_id.clone(),
        team_id: q.team_id.clone(),
        key_alias: q.key_alias.clone(),
        visible_to: None,
    };
    if !access.sees_all() {
        if access.role.is_none() && access.admin_of.is_empty() {
            return Err(denied(&access, "list keys"));
        }
        let own = access.role.and(access.user_id().map(str::to_owned));
        filter.visible_to = Some((own, access.admin_of.clone()));
    }
    let page = q.page.unwrap_or(1);
    let size = q.size.unwrap_or(10);
    if page < 1 {
        return Err(bad("page", "an integer of at least 1"));
    }
    if !(1..=100).contains(&size) {
        return Err(bad("size", "an integer from 1 to 100"));
    }
    let (rows, total) = state
        .db
        .run(move |db| async move { db.list_keys(&filter, page, size).await })
        .await
        .map_err(db_error)?;
    let keys: Vec<Json> = if q.return_full_object.unwrap_or(false) {
        let mut full = Vec::with_capacity(rows.len());
        for row in rows {
            let live = state
                .actors()
                .router
                .send(CachedKey(row.token.clone()))
                .await
                .map_err(|_| ApiError::Internal)?
                .map(|(_, spend)| spend);
            full.push(KeyRecord::new(row, Default::default()).info(live));
        }
        full
    } else {
        rows.into_iter().map(|r| Json::String(r.token)).collect()
    };
    Ok(HttpResponse::Ok().json(json!({
        "keys": keys,
        "total_count": total,
        "current_page": page,
        "total_pages": (total + size - 1) / size,
    })))
}

/// `POST /key/regenerate` (body `{"key": ..}`) and `POST /key/{key}/regenerate`.
pub async fn regenerate(
    state: State,
    req: HttpRequest,
    path: Option<web::Path<String>>,
    body: ManagementBody,
) -> Result<HttpResponse, ApiError> {
    let access = access(&state, &req).await?;
    let actor = Actor::of(&access, &req);
    let fields = parse_body(&body.0)?;
    let old = match path {
        Some(p) => keys::token_of(&p.into_inner()),
        None => key_param(&fields)?,
    };
    if !access.is_admin() {
        let (record, _) = record_of(&state, &old).await?;
        if !access.may_edit_key(&record.row) {
            return Err(denied(&access, "regenerate this key"));
        }
    }
    let new_key = match fields.get("new_key") {
        Some(Json::String(k)) if k.starts_with("sk-") && k.len() >= 8 => k.clone(),
        Some(_) => return Err(bad("new_key", "a string starting with sk-")),
        None => keys::generate_key().map_err(|_| ApiError::Internal)?,
    };
    let new_token = keys::hash_key(&new_key);
    // Buffered spend is keyed by the old token: write it before the token changes.
    state
        .spend()
        .send(crate::actors::Flush)
        .await
        .map_err(|_| ApiError::Internal)?
        .map_err(ApiError::Unavailable)?;
    let (old_t, new_t, name) = (old.clone(), new_token.clone(), keys::key_name(&new_key));
    let audit_row = if auditing(&state) {
        let old_name = load_key(&state, &old).await?.map(|r| r.row.key_name);
        Some(audit::rotated(
            &actor,
            &old,
            old_name.as_deref(),
            &new_token,
            &name,
        ))
    } else {
        None
    };
    let changed = state
        .db
        .run(move |db| async move {
            db.change_token(&old_t, &new_t, &name, audit_row.as_ref())
                .await
        })
        .await
        .map_err(db_error)?;
    if !changed {
        return Err(ApiError::Missing("Key not found".into()));
    }
    state.key_removed(&old);
    // Requests in flight under the old token are charged to the new one.
    let rename = RenameKey {
        old,
        new: new_token.clone(),
    };
    state
        .spend()
        .send(rename.clone())
        .await
        .map_err(|_| ApiError::Internal)?;
    state
        .actors()
        .router
        .send(rename)
        .await
        .map_err(|_| ApiError::Internal)?;
    let Some(record) = load_key(&state, &new_token).await? else {
        return Err(ApiError::Internal);
    };
    Ok(HttpResponse::Ok().json(issued(&record, &new_key)))
}

/// `POST /key/{key}/regenerate`.
pub async fn regenerate_at(
    state: State,
    req: HttpRequest,
    path: web::Path<String>,
    body: ManagementBody,
) -> Result<HttpResponse, ApiError> {
    regenerate(state, req, Some(path), body).await
}

/// `POST /key/regenerate`.
pub async fn regenerate_body(
    state: State,
    req: HttpRequest,
    body: ManagementBody,
) -> Result<HttpResponse, ApiError> {
    regenerate(state, req, None, body).await
}
