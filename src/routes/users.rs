//! The user API: `/user/new`, `/user/info`, `/user/update`, `/user/delete`, `/user/list`.
//! Users are LiteLLM's internal users: each has a role, limits that hold all their keys
//! together, and their keys and teams.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Map, Value as Json};

use super::access::{access, denied, require_admin, require_view_all};
use super::body::ManagementBody;
use super::entities::{self, apply_limits, required_list, required_string, KeysGo};
use super::fields::{opt_string, parse_body};
use crate::db::entities::{EntityFilter, KeysOf};
use crate::db::models::EntityRow;
use crate::error::ApiError;
use crate::governance::roles::{Role, TEAM_USER};
use crate::governance::EntityRecord;
use crate::keys::audit::{Actor, AuditAction};
use crate::keys::KeyRecord;
use crate::state::AppState;

type State = web::Data<AppState>;

fn role_field(v: &Json) -> Result<Option<String>, ApiError> {
    let role = opt_string("user_role", v)?;
    match role.as_deref() {
        None => Ok(None),
        Some(r) if Role::parse(r).is_some() => Ok(role),
        Some(r) => Err(ApiError::bad_request(
            format!(
                "Invalid value for 'user_role': {r:?} is not one of {}",
                Role::ALL.map(Role::as_str).join(", ")
            ),
            Some("user_role"),
        )),
    }
}

/// Applies the user fields of `body` to `row`.
fn apply_user(row: &mut EntityRow, body: &Map<String, Json>) -> Result<(), ApiError> {
    apply_limits(row, body, Utc::now())?;
    for (field, v) in body {
        match field.as_str() {
            "user_alias" => row.alias = opt_string(field, v)?,
            "user_email" => row.email = opt_string(field, v)?,
            "user_role" => {
                row.role =
                    Some(role_field(v)?.unwrap_or_else(|| Role::InternalUser.as_str().into()))
            }
            _ => {}
        }
    }
    Ok(())
}

/// A user as the API shows it, with `spend` as counted live and the teams they belong to.
pub fn user_json(row: &EntityRow, spend: f64, teams: &[EntityRow]) -> Json {
    let mut m = EntityRecord::new(row.clone())
        .map(|r| r.common_fields(spend))
        .unwrap_or_default();
    m.insert("user_id".into(), Json::String(row.id.clone()));
    m.insert("user_alias".into(), json!(row.alias));
    m.insert("user_email".into(), json!(row.email));
    m.insert("user_role".into(), json!(row.role));
    let teams: Vec<&str> = teams.iter().map(|t| t.scope.as_str()).collect();
    m.insert("teams".into(), json!(teams));
    Json::Object(m)
}

/// `POST /user/new` (admins): the user, their team memberships (as `user`), and unless
/// `auto_create_key` is false, a key of theirs, shown this once.
pub async fn new(
    state: State,
    req: HttpRequest,
    body: ManagementBody,
) -> Result<HttpResponse, ApiError> {
    let access = access(&state, &req).await?;
    require_admin(&access, &req)?;
    let actor = Actor::of(&access, &req);
    let mut fields = parse_body(&body.0)?;
    let user_id = match fields.get("user_id") {
        None | Some(Json::Null) => uuid::Uuid::new_v4().to_string(),
        Some(_) => required_string(&fields, "user_id")?,
    };
    let now = Utc::now().naive_utc();
    let mut user = EntityRow::blank("user", "", &user_id, now);
    user.role = Some(Role::InternalUser.as_str().into());
    apply_user(&mut user, &fields)?;
    let teams = match fields.get("teams") {
        None | Some(Json::Null) => Vec::new(),
        Some(_) => required_list(&fields, "teams")?,
    };
    let mut rows = vec![user.clone()];
    for team in &teams {
        entities::get(&state, "team", "", team).await.map_err(|_| {
            ApiError::bad_request(format!("Team not found: team_id={team}"), Some("teams"))
        })?;
        let mut member = EntityRow::blank("member", team, &user_id, now);
        member.role = Some(TEAM_USER.into());
        rows.push(member);
    }
    let audit = entities::created(&state, &actor, &rows);
    entities::insert(
        &state,
        rows.clone(),
        audit,
        "A user with this user_id already exists",
        "user_id",
    )
    .await?;
    let memberships = &rows[1..];
    let mut out = user_json(&user, 0.0, memberships);
    let auto_key = fields
        .remove("auto_create_key")
        .and_then(|v| v.as_bool())
        .unwrap_or(true);
    if auto_key {
        let mut key_fields = Map::new();
        key_fields.insert("user_id".into(), Json::String(user_id.clone()));
        for name in ["key_alias", "duration", "metadata"] {
            if let Some(v) = fields.get(name) {
                key_fields.insert(name.into(), v.clone());
            }
        }
        let issued = super::keys::issue(&state, &access, &actor, key_fields).await?;
        if let Json::Object(m) = &mut out {
            for name in ["key", "key_name", "expires", "token", "key_alias"] {
                m.insert(name.into(), issued.get(name).cloned().unwrap_or(Json::Null));
            }
        }
    }
    Ok(HttpResponse::Ok().json(out))
}

#[derive(Deserialize)]
/// `?user_id=`.
pub struct InfoQuery {
    user_id: Option<String>,
}

/// `GET /user/info?user_id=`: the user, their keys and their teams. A user reads themself (the
/// default for a key of theirs); admins and viewers read anyone.
pub async fn info(
    state: State,
    req: HttpRequest,
    q: web::Query<InfoQuery>,
) -> Result<HttpResponse, ApiError> {
    let access = access(&state, &req).await?;
    let user_id = match (&q.user_id, access.user_id()) {
        (Some(u), _) => u.clone(),
        (None, Some(me)) => me.to_owned(),
        (None, None) => {
            return Err(ApiError::bad_request(
                "Missing required parameter: 'user_id'",
                Some("user_id"),
            ))
        }
    };
    if !access.may_view_user(&user_id) {
        return Err(denied(&access, "read another user"));
    }
    let user = entities::get(&state, "user", "", &user_id).await?;
    let spend = entities::live_spend(&state, &user).await?;
    let uid = user_id.clone();
    let (memberships, keys) = state
        .db
        .run(move |db| async move {
            let memberships = db.memberships(&uid).await?;
            let keys = db
                .keys_of(KeysOf::Users(std::slice::from_ref(&uid)))
                .await?;
            Ok((memberships, keys))
        })
        .await
        .map_err(|e| super::fields::db_error(e, "", "user_id"))?;
    let keys: Vec<Json> = keys
        .into_iter()
        .map(|k| KeyRecord::new(k, Default::default()).info(None))
        .collect();
    let teams: Vec<Json> = memberships
        .iter()
        .map(|m| json!({"team_id": m.scope, "role": m.role}))
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "user_id": user_id,
        "user_info": user_json(&user, spend, &memberships),
        "keys": keys,
        "teams": teams,
    })))
}

/// `POST /user/update` (admins): `user_id` and the fields to change.
pub async fn update(
    state: State,
    req: HttpRequest,
    body: ManagementBody,
) -> Result<HttpResponse, ApiError> {
    let access = access(&state, &req).await?;
    require_admin(&access, &req)?;
    let actor = Actor::of(&access, &req);
    let fields = parse_body(&body.0)?;
    let user_id = required_string(&fields, "user_id")?;
    let user = ("user", "", user_id.as_str());
    let (saved, spend) = entities::change(
        &state,
        &actor,
        user,
        &fields,
        AuditAction::Updated,
        apply_user,
    )
    .await?;
    let uid = user_id.clone();
    let memberships = state
        .db
        .run(move |db| async move { db.memberships(&uid).await })
        .await
        .map_err(|e| super::fields::db_error(e, "", "user_id"))?;
    Ok(HttpResponse::Ok().json(user_json(&saved, spend, &memberships)))
}

/// `POST /user/delete` (admins) with `{"user_ids": [..]}`: the users, their team memberships
/// and their keys.
pub async fn delete(
    state: State,
    req: HttpRequest,
    body: ManagementBody,
) -> Result<HttpResponse, ApiError> {
    let access = access(&state, &req).await?;
    require_admin(&access, &req)?;
    let actor = Actor::of(&access, &req);
    let ids = required_list(&parse_body(&body.0)?, "user_ids")?;
    let lookup = ids.clone();
    let memberships = state
        .db
        .run(move |db| async move {
            let mut all = Vec::new();
            for id in &lookup {
                all.extend(db.memberships(id).await?);
            }
            Ok(all)
        })
        .await
        .map_err(|e| super::fields::db_error(e, "", "user_ids"))?;
    let mut gone: Vec<(String, String, String)> = ids
        .iter()
        .map(|id| ("user".into(), String::new(), id.clone()))
        .collect();
    gone.extend(memberships.into_iter().map(|m| (m.kind, m.scope, m.id)));
    let (rows, keys) = entities::delete(&state, gone, KeysGo::OfUsers(ids), &actor).await?;
    let users: Vec<&str> = rows
        .iter()
        .filter(|r| r.kind == "user")
        .map(|r| r.id.as_str())
        .collect();
    Ok(HttpResponse::Ok().json(json!({"deleted_users": users, "deleted_keys": keys.len()})))
}

#[derive(Deserialize)]
/// `?page=&page_size=&role=&user_ids=`.
pub struct ListQuery {
    page: Option<i64>,
    page_size: Option<i64>,
    role: Option<String>,
    user_ids: Option<String>,
}

/// `GET /user/list` (admins and viewers): a page of users.
pub async fn list(
    state: State,
    req: HttpRequest,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let access = access(&state, &req).await?;
    require_view_all(&access, &req)?;
    let (page, size) = entities::paging(q.page, q.page_size, 25)?;
    let filter = EntityFilter {
        kind: "user".into(),
        scope: None,
        ids: q.user_ids.as_deref().map(|ids| {
            ids.split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        }),
        role: q.role.clone(),
    };
    let (users, total) = entities::listed(&state, filter, (page, size), |row, spend| {
        user_json(row, spend, &[])
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({
        "users": users,
        "total": total,
        "page": page,
        "page_size": size,
        "total_pages": (total + size - 1) / size,
    })))
}
