//! The team API: `/team/new`, `/team/info`, `/team/update`, `/team/delete`, `/team/list`,
//! `/team/member_add`, `/team/member_update`, `/team/member_delete`, `/team/block`,
//! `/team/unblock`. A team's limits hold all its keys together; each member may have a budget
//! and limits of their own within it.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Map, Value as Json};

use super::access::{access, denied, require_admin};
use super::body::ManagementBody;
use super::entities::{self, apply_limits, required_string, KeysGo};
use super::fields::{bad, opt_money, opt_string, parse_body};
use crate::db::entities::{EntityFilter, KeysOf};
use crate::db::models::{EntityRow, KeyRow};
use crate::error::ApiError;
use crate::governance::roles::{Role, TEAM_ADMIN, TEAM_USER};
use crate::governance::{Access, EntityRecord};
use crate::keys::audit::{Actor, AuditAction};
use crate::keys::KeyRecord;
use crate::state::AppState;

type State = web::Data<AppState>;

/// The most members one team lists in one answer.
const MAX_MEMBERS: i64 = 100;

fn store_error(e: crate::db::DbError) -> ApiError {
    super::fields::db_error(e, "It already exists", "team_id")
}

/// Whether a key (its models and limits) fits within its team: the team exists, the key's
/// models are among the team's, and its budget and rate limits are no larger than the team's.
pub async fn key_fits_team(state: &AppState, team_id: &str, key: &KeyRow) -> Result<(), ApiError> {
    let Some(team) = entities::find(state, "team", "", team_id).await? else {
        return Err(ApiError::bad_request(
            format!("Team not found: team_id={team_id}"),
            Some("team_id"),
        ));
    };
    let Some(team) = EntityRecord::new(team) else {
        return Ok(());
    };
    // A key without a model list of its own is held to its team's at each request.
    let key_models: Vec<String> = serde_json::from_str(&key.models).unwrap_or_default();
    let everything = |models: &[String]| models.iter().any(|m| m == "all-proxy-models");
    if !team.models.is_empty() && !everything(&team.models) {
        let outside: Vec<&String> = key_models
            .iter()
            .filter(|m| !team.models.contains(m))
            .collect();
        if !outside.is_empty() {
            return Err(ApiError::bad_request(
                format!(
                    "The key's models must be among team {team_id}'s models {:?}; not allowed: {outside:?}",
                    team.models
                ),
                Some("models"),
            ));
        }
    }
    let over = |name: &str, key: Option<f64>, team: Option<f64>| match (key, team) {
        (Some(k), Some(t)) if k > t => Err(ApiError::bad_request(
            format!("The key's {name}={k} is more than team {team_id}'s {name}={t}"),
            Some(name),
        )),
        _ => Ok(()),
    };
    let limits = &team.limits;
    over("max_budget", key.max_budget, limits.max_budget)?;
    over(
        "tpm_limit",
        key.tpm_limit.map(|n| n as f64),
        limits.tpm_limit.map(|n| n as f64),
    )?;
    over(
        "rpm_limit",
        key.rpm_limit.map(|n| n as f64),
        limits.rpm_limit.map(|n| n as f64),
    )?;
    Ok(())
}

/// A member's entry in a team's `members_with_roles`.
fn member_json(m: &EntityRow) -> Json {
    json!({"user_id": m.id, "user_email": m.email, "role": m.role})
}

/// A membership as `/team/info` shows it: spend and budget within the team.
fn membership_json(m: &EntityRow, spend: f64) -> Json {
    json!({
        "user_id": m.id,
        "team_id": m.scope,
        "role": m.role,
        "spend": spend,
        "litellm_budget_table": {
            "max_budget": m.max_budget,
            "budget_duration": m.budget_duration,
            "tpm_limit": m.tpm_limit,
            "rpm_limit": m.rpm_limit,
        },
    })
}

/// A team as the API shows it, with `spend` as counted live and its members.
fn team_json(row: &EntityRow, spend: f64, members: &[EntityRow]) -> Json {
    let mut m = EntityRecord::new(row.clone())
        .map(|r| r.common_fields(spend))
        .unwrap_or_default();
    m.insert("team_id".into(), Json::String(row.id.clone()));
    m.insert("team_alias".into(), json!(row.alias));
    let members: Vec<Json> = members.iter().map(member_json).collect();
    m.insert("members_with_roles".into(), Json::Array(members));
    Json::Object(m)
}

async fn members_of(state: &AppState, team_id: &str) -> Result<Vec<EntityRow>, ApiError> {
    let filter = EntityFilter {
        kind: "member".into(),
        scope: Some(team_id.to_owned()),
        ..EntityFilter::default()
    };
    Ok(entities::list(state, filter, 1, MAX_MEMBERS).await?.0)
}

/// One member from `{"user_id", "user_email", "role"}`, in team `team_id`.
fn member_row(team_id: &str, v: &Json) -> Result<EntityRow, ApiError> {
    let Json::Object(m) = v else {
        return Err(bad("member", "an object with user_id and role"));
    };
    let user_id = match m.get("user_id") {
        Some(Json::String(u)) if !u.is_empty() => u.clone(),
        _ => match m.get("user_email") {
            Some(Json::String(e)) if !e.is_empty() => e.clone(),
            _ => return Err(bad("member", "an object with a user_id (or user_email)")),
        },
    };
    let role = match m.get("role") {
        None | Some(Json::Null) => TEAM_USER.to_owned(),
        Some(Json::String(r)) if r == TEAM_ADMIN || r == TEAM_USER => r.clone(),
        Some(_) => return Err(bad("role", "\"admin\" or \"user\"")),
    };
    let mut row = EntityRow::blank("member", team_id, &user_id, Utc::now().naive_utc());
    row.role = Some(role);
    row.email = opt_string("user_email", m.get("user_email").unwrap_or(&Json::Null))?;
    Ok(row)
}

/// The members a body names (`member` as one object or a list, or `members_with_roles`).
fn members_in(
    team_id: &str,
    body: &Map<String, Json>,
    field: &str,
) -> Result<Vec<EntityRow>, ApiError> {
    match body.get(field) {
        None | Some(Json::Null) => Ok(Vec::new()),
        Some(Json::Array(items)) => items.iter().map(|v| member_row(team_id, v)).collect(),
        Some(one @ Json::Object(_)) => Ok(vec![member_row(team_id, one)?]),
        Some(_) => Err(bad(field, "a member object or a list of them")),
    }
}

/// Users the members name that do not exist yet: made as internal users (as LiteLLM does).
async fn new_users_for(
    state: &AppState,
    members: &[EntityRow],
) -> Result<Vec<EntityRow>, ApiError> {
    let mut made = Vec::new();
    for m in members {
        if entities::find(state, "user", "", &m.id).await?.is_none() {
            let mut user = EntityRow::blank("user", "", &m.id, m.created_at);
            user.role = Some(Role::InternalUser.as_str().into());
            user.email.clone_from(&m.email);
            made.push(user);
        }
    }
    Ok(made)
}

fn apply_team(row: &mut EntityRow, body: &Map<String, Json>) -> Result<(), ApiError> {
    apply_limits(row, body, Utc::now())?;
    if let Some(v) = body.get("team_alias") {
        row.alias = opt_string("team_alias", v)?;
    }
    Ok(())
}

/// `POST /team/new` (admins): the team and its first members (missing users are created).
pub async fn new(
    state: State,
    req: HttpRequest,
    body: ManagementBody,
) -> Result<HttpResponse, ApiError> {
    let access = access(&state, &req).await?;
    require_admin(&access, &req)?;
    let actor = Actor::of(&access, &req);
    let fields = parse_body(&body.0)?;
    let team_id = match fields.get("team_id") {
        None | Some(Json::Null) => uuid::Uuid::new_v4().to_string(),
        Some(_) => required_string(&fields, "team_id")?,
    };
    let mut team = EntityRow::blank("team", "", &team_id, Utc::now().naive_utc());
    apply_team(&mut team, &fields)?;
    let members = members_in(&team_id, &fields, "members_with_roles")?;
    let mut rows = vec![team.clone()];
    rows.extend(new_users_for(&state, &members).await?);
    rows.extend(members.iter().cloned());
    let audit = entities::created(&state, &actor, &rows);
    entities::insert(
        &state,
        rows,
        audit,
        "A team with this team_id already exists",
        "team_id",
    )
    .await?;
    Ok(HttpResponse::Ok().json(team_json(&team, 0.0, &members)))
}

#[derive(Deserialize)]
/// `?team_id=`.
pub struct InfoQuery {
    team_id: Option<String>,
}

/// `GET /team/info?team_id=`: the team, its keys and its members' spend (admins, viewers and
/// the team's members).
pub async fn info(
    state: State,
    req: HttpRequest,
    q: web::Query<InfoQuery>,
) -> Result<HttpResponse, ApiError> {
    let access = access(&state, &req).await?;
    let Some(team_id) = q.team_id.clone() else {
        return Err(ApiError::bad_request(
            "Missing required parameter: 'team_id'",
            Some("team_id"),
        ));
    };
    if !access.may_view_team(&team_id) {
        return Err(denied(&access, "read this team"));
    }
    let team = entities::get(&state, "team", "", &team_id).await?;
    let spend = entities::live_spend(&state, &team).await?;
    let members = members_of(&state, &team_id).await?;
    let tid = team_id.clone();
    let keys = state
        .db
        .run(move |db| async move { db.keys_of(KeysOf::Teams(std::slice::from_ref(&tid))).await })
        .await
        .map_err(store_error)?;
    let keys: Vec<Json> = keys
        .into_iter()
        .map(|k| KeyRecord::new(k, Default::default()).info(None))
        .collect();
    let mut memberships = Vec::with_capacity(members.len());
    for m in &members {
        memberships.push(membership_json(m, entities::live_spend(&state, m).await?));
    }
    Ok(HttpResponse::Ok().json(json!({
        "team_id": team_id,
        "team_info": team_json(&team, spend, &members),
        "keys": keys,
        "team_memberships": memberships,
    })))
}

async fn change_team(
    state: &AppState,
    access: &Access,
    req: &HttpRequest,
    fields: &Map<String, Json>,
    action: AuditAction,
) -> Result<HttpResponse, ApiError> {
    let team_id = required_string(fields, "team_id")?;
    if !access.may_manage_team(&team_id) {
        return Err(denied(access, "change this team"));
    }
    let budget_fields = [
        "max_budget",
        "spend",
        "tpm_limit",
        "rpm_limit",
        "max_parallel_requests",
        "models",
        "blocked",
    ];
    if !access.is_admin() && budget_fields.iter().any(|f| fields.contains_key(*f)) {
        return Err(denied(access, "change a team's budget, limits or models"));
    }
    let actor = Actor::of(access, req);
    let team = ("team", "", team_id.as_str());
    let (saved, spend) = entities::change(state, &actor, team, fields, action, apply_team).await?;
    let members = members_of(state, &team_id).await?;
    Ok(HttpResponse::Ok().json(team_json(&saved, spend, &members)))
}

/// `POST /team/update`: `team_id` and the fields to change (admins; a team's admins may change
/// its alias and metadata).
pub async fn update(
    state: State,
    req: HttpRequest,
    body: ManagementBody,
) -> Result<HttpResponse, ApiError> {
    let access = access(&state, &req).await?;
    let fields = parse_body(&body.0)?;
    change_team(&state, &access, &req, &fields, AuditAction::Updated).await
}

async fn set_blocked(
    state: State,
    req: HttpRequest,
    body: ManagementBody,
    blocked: bool,
) -> Result<HttpResponse, ApiError> {
    let access = access(&state, &req).await?;
    require_admin(&access, &req)?;
    let given = parse_body(&body.0)?;
    let mut fields = Map::new();
    fields.insert(
        "team_id".into(),
        Json::String(required_string(&given, "team_id")?),
    );
    fields.insert("blocked".into(), Json::Bool(blocked));
    let action = if blocked {
        AuditAction::Blocked
    } else {
        AuditAction::Updated
    };
    change_team(&state, &access, &req, &fields, action).await
}

/// `POST /team/block` (admins): every key of the team is refused until unblocked.
pub async fn block(
    state: State,
    req: HttpRequest,
    body: ManagementBody,
) -> Result<HttpResponse, ApiError> {
    set_blocked(state, req, body, true).await
}

/// `POST /team/unblock` (admins).
pub async fn unblock(
    state: State,
    req: HttpRequest,
    body: ManagementBody,
) -> Result<HttpResponse, ApiError> {
    set_blocked(state, req, body, false).await
}

/// `POST /team/delete` (admins) with `{"team_ids": [..]}`: the teams, their memberships and
/// their keys.
pub async fn delete(
    state: State,
    req: HttpRequest,
    body: ManagementBody,
) -> Result<HttpResponse, ApiError> {
    let access = access(&state, &req).await?;
    require_admin(&access, &req)?;
    let actor = Actor::of(&access, &req);
    let ids = entities::required_list(&parse_body(&body.0)?, "team_ids")?;
    let mut gone: Vec<(String, String, String)> = Vec::new();
    for id in &ids {
        gone.push(("team".into(), String::new(), id.clone()));
        for m in members_of(&state, id).await? {
            gone.push((m.kind, m.scope, m.id));
        }
    }
    let (rows, keys) = entities::delete(&state, gone, KeysGo::OfTeams(ids), &actor).await?;
    let teams: Vec<&str> = rows
        .iter()
        .filter(|r| r.kind == "team")
        .map(|r| r.id.as_str())
        .collect();
    Ok(HttpResponse::Ok().json(json!({"deleted_teams": teams, "deleted_keys": keys.len()})))
}

#[derive(Deserialize)]
/// `?user_id=`.
pub struct ListQuery {
    user_id: Option<String>,
}

/// `GET /team/list`: every team (admins and viewers), or the caller's own teams; `?user_id=`
/// lists one user's teams.
pub async fn list(
    state: State,
    req: HttpRequest,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let access = access(&state, &req).await?;
    let only: Option<Vec<String>> = match (&q.user_id, access.sees_all()) {
        (None, true) => None,
        (Some(user), true) => Some(memberships(&state, user).await?),
        (Some(user), false) if Some(user.as_str()) == access.user_id() => {
            Some(access.member_of.clone())
        }
        (None, false) if access.role.is_some() => Some(access.member_of.clone()),
        _ => return Err(denied(&access, "list teams")),
    };
    let filter = EntityFilter {
        kind: "team".into(),
        ids: only,
        ..EntityFilter::default()
    };
    let (rows, _) = entities::list(&state, filter, 1, 100).await?;
    let mut teams = Vec::with_capacity(rows.len());
    for row in &rows {
        let spend = entities::live_spend(&state, row).await?;
        let members = members_of(&state, &row.id).await?;
        teams.push(team_json(row, spend, &members));
    }
    Ok(HttpResponse::Ok().json(teams))
}

async fn memberships(state: &AppState, user: &str) -> Result<Vec<String>, ApiError> {
    let user = user.to_owned();
    let rows = state
        .db
        .run(move |db| async move { db.memberships(&user).await })
        .await
        .map_err(store_error)?;
    Ok(rows.into_iter().map(|m| m.scope).collect())
}

/// Applies `max_budget_in_team`, `tpm_limit`, `rpm_limit` and `budget_duration` to a member.
fn apply_member_limits(row: &mut EntityRow, body: &Map<String, Json>) -> Result<(), ApiError> {
    let mut limits = Map::new();
    for (from, to) in [
        ("max_budget_in_team", "max_budget"),
        ("tpm_limit", "tpm_limit"),
        ("rpm_limit", "rpm_limit"),
        ("budget_duration", "budget_duration"),
    ] {
        if let Some(v) = body.get(from) {
            if from == "max_budget_in_team" {
                opt_money(from, v)?;
            }
            limits.insert(to.into(), v.clone());
        }
    }
    apply_limits(row, &limits, Utc::now())
}

/// `POST /team/member_add` (admins and the team's admins): `team_id`, `member` (one or a list
/// of `{"user_id", "role"}`), and optionally `max_budget_in_team`.
pub async fn member_add(
    state: State,
    req: HttpRequest,
    body: ManagementBody,
) -> Result<HttpResponse, ApiError> {
    let access = access(&state, &req).await?;
    let actor = Actor::of(&access, &req);
    let fields = parse_body(&body.0)?;
    let team_id = required_string(&fields, "team_id")?;
    if !access.may_manage_team(&team_id) {
        return Err(denied(&access, "add members to this team"));
    }
    let team = entities::get(&state, "team", "", &team_id).await?;
    let mut members = members_in(&team_id, &fields, "member")?;
    if members.is_empty() {
        return Err(ApiError::bad_request(
            "Missing required parameter: 'member'",
            Some("member"),
        ));
    }
    for m in &mut members {
        apply_member_limits(m, &fields)?;
    }
    let mut rows = new_users_for(&state, &members).await?;
    rows.extend(members.iter().cloned());
    let audit = entities::created(&state, &actor, &rows);
    entities::insert(
        &state,
        rows,
        audit,
        "One of these users is already a member of the team",
        "member",
    )
    .await?;
    let spend = entities::live_spend(&state, &team).await?;
    let all = members_of(&state, &team_id).await?;
    Ok(HttpResponse::Ok().json(team_json(&team, spend, &all)))
}

/// `POST /team/member_update` (admins and the team's admins): `team_id`, `user_id`, and its
/// `role`, `max_budget_in_team`, `tpm_limit`, `rpm_limit`.
pub async fn member_update(
    state: State,
    req: HttpRequest,
    body: ManagementBody,
) -> Result<HttpResponse, ApiError> {
    let access = access(&state, &req).await?;
    let actor = Actor::of(&access, &req);
    let fields = parse_body(&body.0)?;
    let team_id = required_string(&fields, "team_id")?;
    let user_id = required_string(&fields, "user_id")?;
    if !access.may_manage_team(&team_id) {
        return Err(denied(&access, "change this team's members"));
    }
    let member = ("member", team_id.as_str(), user_id.as_str());
    let apply = |row: &mut EntityRow, fields: &Map<String, Json>| {
        apply_member_limits(row, fields)?;
        match fields.get("role") {
            None | Some(Json::Null) => Ok(()),
            Some(Json::String(r)) if r == TEAM_ADMIN || r == TEAM_USER => {
                row.role = Some(r.clone());
                Ok(())
            }
            Some(_) => Err(bad("role", "\"admin\" or \"user\"")),
        }
    };
    let (saved, spend) =
        entities::change(&state, &actor, member, &fields, AuditAction::Updated, apply).await?;
    Ok(HttpResponse::Ok().json(membership_json(&saved, spend)))
}

/// `POST /team/member_delete` (admins and the team's admins): `team_id` and `user_id` (or
/// `user_email`). The user's keys stay; they no longer count as the team's member.
pub async fn member_delete(
    state: State,
    req: HttpRequest,
    body: ManagementBody,
) -> Result<HttpResponse, ApiError> {
    let access = access(&state, &req).await?;
    let actor = Actor::of(&access, &req);
    let fields = parse_body(&body.0)?;
    let team_id = required_string(&fields, "team_id")?;
    if !access.may_manage_team(&team_id) {
        return Err(denied(&access, "remove members from this team"));
    }
    let user_id = match fields.get("user_id") {
        Some(_) => required_string(&fields, "user_id")?,
        None => required_string(&fields, "user_email")?,
    };
    let gone = vec![("member".to_owned(), team_id.clone(), user_id.clone())];
    let (rows, _) = entities::delete(&state, gone, KeysGo::None, &actor).await?;
    if rows.is_empty() {
        return Err(ApiError::Missing(format!(
            "user {user_id} is not a member of team {team_id}"
        )));
    }
    let team = entities::get(&state, "team", "", &team_id).await?;
    let spend = entities::live_spend(&state, &team).await?;
    let members = members_of(&state, &team_id).await?;
    Ok(HttpResponse::Ok().json(team_json(&team, spend, &members)))
}
