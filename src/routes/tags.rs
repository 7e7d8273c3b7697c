//! The tag API: `/tag/new`, `/tag/info`, `/tag/update`, `/tag/delete`, `/tag/list`. A tag's
//! budget, limits and models hold every request that carries it (`metadata.tags`, the
//! `x-litellm-tags` header, or its key's `tags`).

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
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

fn apply_tag(row: &mut EntityRow, body: &Map<String, Json>) -> Result<(), ApiError> {
    apply_limits(row, body, Utc::now())?;
    if let Some(v) = body.get("description") {
        row.alias = opt_string("description", v)?;
    }
    Ok(())
}

/// A tag as the API shows it.
fn tag_json(row: &EntityRow, spend: f64) -> Json {
    json!({
        "name": row.id,
        "description": row.alias,
        "models": json_of(&row.models),
        "spend": spend,
        "max_budget": row.max_budget,
        "budget_duration": row.budget_duration,
        "tpm_limit": row.tpm_limit,
        "rpm_limit": row.rpm_limit,
        "metadata": json_of(&row.metadata),
        "litellm_budget_table": budget_table(row),
        "created_at": row.created_at.and_utc().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "updated_at": row.updated_at.and_utc().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    })
}

/// `POST /tag/new` (admins): `name`, `description`, `models`, budget and limits.
pub async fn new(
    state: State,
    req: HttpRequest,
    body: ManagementBody,
) -> Result<HttpResponse, ApiError> {
    let access = access(&state, &req).await?;
    require_admin(&access, &req)?;
    let actor = Actor::of(&access, &req);
    let fields = parse_body(&body.0)?;
    let name = required_string(&fields, "name")?;
    let mut row = EntityRow::blank("tag", "", &name, Utc::now().naive_utc());
    apply_tag(&mut row, &fields)?;
    let audit = entities::created(&state, &actor, std::slice::from_ref(&row));
    entities::insert(
        &state,
        vec![row.clone()],
        audit,
        "A tag with this name already exists",
        "name",
    )
    .await?;
    Ok(HttpResponse::Ok().json(tag_json(&row, 0.0)))
}

/// `POST /tag/info` (admins and viewers) with `{"names": [..]}`: each tag by name.
pub async fn info(
    state: State,
    req: HttpRequest,
    body: ManagementBody,
) -> Result<HttpResponse, ApiError> {
    let access = access(&state, &req).await?;
    require_view_all(&access, &req)?;
    let names = required_list(&parse_body(&body.0)?, "names")?;
    let mut out = Map::new();
    for name in &names {
        let row = entities::get(&state, "tag", "", name).await?;
        let spend = entities::live_spend(&state, &row).await?;
        out.insert(name.clone(), tag_json(&row, spend));
    }
    Ok(HttpResponse::Ok().json(out))
}

/// `POST /tag/update` (admins): `name` and the fields to change.
pub async fn update(
    state: State,
    req: HttpRequest,
    body: ManagementBody,
) -> Result<HttpResponse, ApiError> {
    let access = access(&state, &req).await?;
    require_admin(&access, &req)?;
    let actor = Actor::of(&access, &req);
    let fields = parse_body(&body.0)?;
    let name = required_string(&fields, "name")?;
    let tag = ("tag", "", name.as_str());
    let (saved, spend) = entities::change(
        &state,
        &actor,
        tag,
        &fields,
        AuditAction::Updated,
        apply_tag,
    )
    .await?;
    Ok(HttpResponse::Ok().json(tag_json(&saved, spend)))
}

/// `POST /tag/delete` (admins) with `{"name": ..}` (or `{"names": [..]}`).
pub async fn delete(
    state: State,
    req: HttpRequest,
    body: ManagementBody,
) -> Result<HttpResponse, ApiError> {
    let access = access(&state, &req).await?;
    require_admin(&access, &req)?;
    let actor = Actor::of(&access, &req);
    let fields = parse_body(&body.0)?;
    let names = match fields.get("names") {
        Some(_) => required_list(&fields, "names")?,
        None => vec![required_string(&fields, "name")?],
    };
    let deleted = entities::delete_ids(&state, "tag", &names, &actor).await?;
    if deleted.is_empty() {
        return Err(ApiError::Missing(format!(
            "tag not found: {}",
            names.join(", ")
        )));
    }
    Ok(HttpResponse::Ok().json(json!({"deleted_tags": deleted})))
}

/// `GET /tag/list` (admins and viewers): every tag.
pub async fn list(state: State, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let access = access(&state, &req).await?;
    require_view_all(&access, &req)?;
    let filter = EntityFilter {
        kind: "tag".into(),
        ..EntityFilter::default()
    };
    let (out, _) = entities::listed(&state, filter, (1, 100), tag_json).await?;
    Ok(HttpResponse::Ok().json(out))
}
