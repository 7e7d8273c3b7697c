//! The end-user API (LiteLLM's customers): `/end_user/new`, `/end_user/info`,
//! `/end_user/update`, `/end_user/delete`, `/end_user/list`, `/end_user/block`,
//! `/end_user/unblock`, and the same under `/customer/`. An end user is the `user` a request
//! names; their budget and limits hold every request that names them, whatever the key.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Map, Value as Json};

use super::access::{access, require_admin, require_view_all};
use super::body::ManagementBody;
use super::entities::{self, apply_limits, budget_table, json_of, required_list, required_string};
use super::fields::{opt_string, parse_body};
use crate::db::entities::EntityFilter;
use crate::db::models::EntityRow;
use crate::error::ApiError;
use crate::keys::audit::{Actor, AuditAction};
use crate::state::AppState;

type State = web::Data<AppState>;

/// The end-user fields kept in `details`.
const DETAILS: [&str; 2] = ["allowed_model_region", "default_model"];

fn apply_end_user(row: &mut EntityRow, body: &Map<String, Json>) -> Result<(), ApiError> {
    apply_limits(row, body, Utc::now())?;
    if let Some(v) = body.get("alias") {
        row.alias = opt_string("alias", v)?;
    }
    let mut details = match json_of(&row.details) {
        Json::Object(m) => m,
        _ => Map::new(),
    };
    for field in DETAILS {
        if let Some(v) = body.get(field) {
            opt_string(field, v)?;
            details.insert(field.into(), v.clone());
        }
    }
    row.details = Json::Object(details).to_string();
    Ok(())
}

/// An end user as the API shows it.
fn end_user_json(row: &EntityRow, spend: f64) -> Json {
    let details = json_of(&row.details);
    json!({
        "user_id": row.id,
        "alias": row.alias,
        "spend": spend,
        "blocked": row.blocked,
        "models": json_of(&row.models),
        "metadata": json_of(&row.metadata),
        "allowed_model_region": details.get("allowed_model_region"),
        "default_model": details.get("default_model"),
        "litellm_budget_table": budget_table(row),
    })
}

/// `POST /end_user/new` (admins): `user_id`, `alias`, budget, limits, `models`, `blocked`.
pub async fn new(
    state: State,
    req: HttpRequest,
    body: ManagementBody,
) -> Result<HttpResponse, ApiError> {
    let access = access(&state, &req).await?;
    require_admin(&access, &req)?;
    let actor = Actor::of(&access, &req);
    let fields = parse_body(&body.0)?;
    let id = required_string(&fields, "user_id")?;
    let mut row = EntityRow::blank("end_user", "", &id, Utc::now().naive_utc());
    apply_end_user(&mut row, &fields)?;
    let audit = entities::created(&state, &actor, std::slice::from_ref(&row));
    let duplicate = "An end user with this user_id already exists; change it with /end_user/update";
    entities::insert(&state, vec![row.clone()], audit, duplicate, "user_id").await?;
    Ok(HttpResponse::Ok().json(end_user_json(&row, 0.0)))
}

#[derive(Deserialize)]
/// `?end_user_id=`.
pub struct InfoQuery {
    end_user_id: Option<String>,
}

/// `GET /end_user/info?end_user_id=` (admins and viewers).
pub async fn info(
    state: State,
    req: HttpRequest,
    q: web::Query<InfoQuery>,
) -> Result<HttpResponse, ApiError> {
    let access = access(&state, &req).await?;
    require_view_all(&access, &req)?;
    let Some(id) = q.end_user_id.clone() else {
        return Err(ApiError::bad_request(
            "Missing required parameter: 'end_user_id'",
            Some("end_user_id"),
        ));
    };
    let row = entities::get(&state, "end_user", "", &id).await?;
    let spend = entities::live_spend(&state, &row).await?;
    Ok(HttpResponse::Ok().json(end_user_json(&row, spend)))
}

async fn change(
    state: &AppState,
    actor: &Actor,
    id: &str,
    fields: &Map<String, Json>,
    action: AuditAction,
) -> Result<Json, ApiError> {
    let end_user = ("end_user", "", id);
    let (saved, spend) =
        entities::change(state, actor, end_user, fields, action, apply_end_user).await?;
    Ok(end_user_json(&saved, spend))
}

/// `POST /end_user/update` (admins): `user_id` and the fields to change.
pub async fn update(
    state: State,
    req: HttpRequest,
    body: ManagementBody,
) -> Result<HttpResponse, ApiError> {
    let access = access(&state, &req).await?;
    require_admin(&access, &req)?;
    let fields = parse_body(&body.0)?;
    let id = required_string(&fields, "user_id")?;
    let out = change(
        &state,
        &Actor::of(&access, &req),
        &id,
        &fields,
        AuditAction::Updated,
    )
    .await?;
    Ok(HttpResponse::Ok().json(out))
}

async fn set_blocked(
    state: State,
    req: HttpRequest,
    body: ManagementBody,
    blocked: bool,
) -> Result<HttpResponse, ApiError> {
    let access = access(&state, &req).await?;
    require_admin(&access, &req)?;
    let actor = Actor::of(&access, &req);
    let ids = required_list(&parse_body(&body.0)?, "user_ids")?;
    let mut fields = Map::new();
    fields.insert("blocked".into(), Json::Bool(blocked));
    let action = if blocked {
        AuditAction::Blocked
    } else {
        AuditAction::Updated
    };
    let mut out = Vec::with_capacity(ids.len());
    for id in &ids {
        out.push(change(&state, &actor, id, &fields, action).await?);
    }
    Ok(HttpResponse::Ok().json(
        json!({"blocked_users": if blocked { ids.clone() } else { vec![] }, "end_users": out}),
    ))
}

/// `POST /end_user/block` (admins) with `{"user_ids": [..]}`: their requests are refused.
pub async fn block(
    state: State,
    req: HttpRequest,
    body: ManagementBody,
) -> Result<HttpResponse, ApiError> {
    set_blocked(state, req, body, true).await
}

/// `POST /end_user/unblock` (admins) with `{"user_ids": [..]}`.
pub async fn unblock(
    state: State,
    req: HttpRequest,
    body: ManagementBody,
) -> Result<HttpResponse, ApiError> {
    set_blocked(state, req, body, false).await
}

/// `POST /end_user/delete` (admins) with `{"user_ids": [..]}`.
pub async fn delete(
    state: State,
    req: HttpRequest,
    body: ManagementBody,
) -> Result<HttpResponse, ApiError> {
    let access = access(&state, &req).await?;
    require_admin(&access, &req)?;
    let actor = Actor::of(&access, &req);
    let ids = required_list(&parse_body(&body.0)?, "user_ids")?;
    let deleted = entities::delete_ids(&state, "end_user", &ids, &actor).await?;
    Ok(HttpResponse::Ok().json(json!({"deleted_end_users": deleted})))
}

#[derive(Deserialize)]
/// `?page=&page_size=`.
pub struct ListQuery {
    page: Option<i64>,
    page_size: Option<i64>,
}

/// `GET /end_user/list` (admins and viewers): end users, by id.
pub async fn list(
    state: State,
    req: HttpRequest,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let access = access(&state, &req).await?;
    require_view_all(&access, &req)?;
    let (page, size) = entities::paging(q.page, q.page_size, 100)?;
    let filter = EntityFilter {
        kind: "end_user".into(),
        ..EntityFilter::default()
    };
    let (out, _) = entities::listed(&state, filter, (page, size), end_user_json).await?;
    Ok(HttpResponse::Ok().json(out))
}
