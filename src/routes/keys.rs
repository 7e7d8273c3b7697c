//! The key API: generate, info, update, delete, list, block, unblock, regenerate.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Map, Value as Json};

use super::body::ManagementBody;
use super::pipeline::load_key;
use crate::actors::spend::RenameKey;
use crate::actors::{CacheKey, CachedKey, ForgetKey};
use crate::auth::{authenticate, require_master, Caller};
use crate::db::models::{AuditLogRow, KeyRow};
use crate::db::DbError;
use crate::error::ApiError;
use crate::keys::audit::{self, Actor, AuditAction};
use crate::keys::{self, KeyDuration, KeyRecord};
use crate::state::AppState;

type State = web::Data<AppState>;

fn bad(field: &str, expected: &str) -> ApiError {
    ApiError::bad_request(
        format!("Invalid value for '{field}': expected {expected}"),
        Some(field),
    )
}

fn db_error(e: DbError) -> ApiError {
    if e.is_unique_violation() {
        return ApiError::bad_request(
            "A key with this key_alias or key already exists",
            Some("key_alias"),
        );
    }
    log::warn!("key store error: {e}");
    ApiError::Unavailable("database".into())
}

fn parse_body(body: &[u8]) -> Result<Map<String, Json>, ApiError> {
    match serde_json::from_slice::<Json>(body) {
        Ok(Json::Object(m)) => Ok(m),
        Ok(Json::Null) | Err(_) if body.iter().all(u8::is_ascii_whitespace) => Ok(Map::new()),
        Ok(_) => Err(ApiError::bad_request(
            "Request body must be a JSON object",
            None,
        )),
        Err(e) => Err(ApiError::bad_request(
            format!("Invalid JSON in request body: {e}"),
            None,
        )),
    }
}

/// Whether key changes are written to the audit log (`store_audit_logs`).
fn auditing(state: &AppState) -> bool {
    state.settings.security.store_audit_logs
}

fn json_text(v: &Json) -> String {
    v.to_string()
}

fn string_list(field: &str, v: &Json) -> Result<String, ApiError> {
    match v {
        Json::Array(items) if items.iter().all(Json::is_string) => Ok(json_text(v)),
        Json::Null => Ok("[]".into()),
        _ => Err(bad(field, "a list of strings")),
    }
}

fn object_of(
    field: &str,
    v: &Json,
    check: fn(&Json) -> bool,
    expected: &str,
) -> Result<String, ApiError> {
    match v {
        Json::Object(m) if m.values().all(check) => Ok(json_text(v)),
        Json::Null => Ok("{}".into()),
        _ => Err(bad(field, expected)),
    }
}

fn opt_string(field: &str, v: &Json) -> Result<Option<String>, ApiError> {
    match v {
        Json::String(s) => Ok(Some(s.clone())),
        Json::Null => Ok(None),
        _ => Err(bad(field, "a string")),
    }
}

fn opt_count(field: &str, v: &Json) -> Result<Option<i64>, ApiError> {
    match v {
        Json::Null => Ok(None),
        v => v
            .as_u64()
            .and_then(|n| i64::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| bad(field, "a non-negative integer")),
    }
}

fn opt_money(field: &str, v: &Json) -> Result<Option<f64>, ApiError> {
    match v {
        Json::Null => Ok(None),
        v => v
            .as_f64()
            .filter(|n| n.is_finite() && *n >= 0.0)
            .map(Some)
            .ok_or_else(|| bad(field, "a non-negative number")),
    }
}

fn duration_field(field: &str, v: &Json) -> Result<Option<KeyDuration>, ApiError> {
    match v {
        Json::Null => Ok(None),
        Json::String(s) => KeyDuration::parse(s).map(Some).ok_or_else(|| {
            ApiError::bad_request(
                format!("Invalid value for '{field}': {s:?} is not a duration (use 30s, 30m, 30h, 30d or 1mo)"),
                Some(field),
            )
        }),
        _ => Err(bad(field, "a duration string such as \"30d\"")),
    }
}

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

/// `POST /key/generate`.
pub async fn generate(
    state: State,
    req: HttpRequest,
    body: ManagementBody,
) -> Result<HttpResponse, ApiError> {
    let actor = Actor::of(&require_master(&state, &req)?, &req);
    let mut fields = parse_body(&body.0)?;
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
    let stored = row.clone();
    let audit_row = auditing(&state).then(|| audit::created(&actor, &row));
    state
        .db
        .run(move |db| async move { db.insert_key(&stored, audit_row.as_ref()).await })
        .await
        .map_err(db_error)?;
    let record = KeyRecord::new(row, Default::default());
    let body = issued(&record, &key);
    state.actors().router.do_send(CacheKey::read(record));
    Ok(HttpResponse::Ok().json(body))
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

/// `GET /key/info?key=`: any key for the master key; a virtual key may read only itself.
pub async fn info(
    state: State,
    req: HttpRequest,
    q: web::Query<InfoQuery>,
) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(&state, &req)?;
    let (given, token) = match (&caller, &q.key) {
        (Caller::Key { token, .. }, None) => (None, token.clone()),
        (Caller::Key { token, .. }, Some(k)) => {
            if &keys::token_of(k) != token {
                return Err(ApiError::AdminOnly("/key/info for another key".into()));
            }
            (Some(k.clone()), token.clone())
        }
        (_, Some(k)) => (Some(k.clone()), keys::token_of(k)),
        (_, None) => {
            return Err(ApiError::bad_request(
                "Missing required parameter: 'key'",
                Some("key"),
            ))
        }
    };
    if let Caller::Key { shown, .. } = &caller {
        // The caller must itself be a valid key.
        if load_or_cached(&state, &token).await?.is_none() {
            return Err(ApiError::InvalidKey(shown.clone()));
        }
    }
    let (record, live) = record_of(&state, &token).await?;
    Ok(HttpResponse::Ok().json(json!({"key": given.unwrap_or_else(|| record.row.key_name.clone()), "info": record.info(live)})))
}

async fn load_or_cached(state: &AppState, token: &str) -> Result<Option<()>, ApiError> {
    match record_of(state, token).await {
        Ok(_) => Ok(Some(())),
        Err(ApiError::Missing(_)) => Ok(None),
        Err(e) => Err(e),
    }
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
    actor: &Actor,
    action: AuditAction,
) -> Result<HttpResponse, ApiError> {
    let (record, _) = record_of(state, token).await?;
    let before = record.row.clone();
    let mut row = record.row;
    let now = Utc::now();
    let mut fields = fields.clone();
    fields.remove("key");
    apply_fields(&mut row, &fields, now)?;
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
    let actor = Actor::of(&require_master(&state, &req)?, &req);
    let fields = parse_body(&body.0)?;
    let token = key_param(&fields)?;
    change(&state, &token, &fields, &actor, AuditAction::Updated).await
}

async fn set_blocked(
    state: State,
    req: HttpRequest,
    body: ManagementBody,
    blocked: bool,
) -> Result<HttpResponse, ApiError> {
    let actor = Actor::of(&require_master(&state, &req)?, &req);
    let token = key_param(&parse_body(&body.0)?)?;
    let mut fields = Map::new();
    fields.insert("blocked".into(), Json::Bool(blocked));
    let action = if blocked {
        AuditAction::Blocked
    } else {
        AuditAction::Updated
    };
    change(&state, &token, &fields, &actor, action).await
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
    let actor = Actor::of(&require_master(&state, &req)?, &req);
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
/// `?page=&size=&return_full_object=`.
pub struct ListQuery {
    page: Option<i64>,
    size: Option<i64>,
    return_full_object: Option<bool>,
}

/// `GET /key/list?page=1&size=10`: the hashes of the keys, or with `return_full_object=true`
/// each key as `/key/info` shows it (its spend including what is not yet written).
pub async fn list(
    state: State,
    req: HttpRequest,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    require_master(&state, &req)?;
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
        .run(move |db| async move { db.list_keys(page, size).await })
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
    let actor = Actor::of(&require_master(&state, &req)?, &req);
    let fields = parse_body(&body.0)?;
    let old = match path {
        Some(p) => keys::token_of(&p.into_inner()),
        None => key_param(&fields)?,
    };
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
