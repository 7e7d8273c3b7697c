//! The model API (`store_model_in_db`): `POST /model/new`, `POST /model/update`,
//! `PATCH /model/{id}/update`, `POST /model/delete`. Admin only; answers never hold a
//! credential; each change is served here at once and by every other instance soon after.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{NaiveDateTime, Utc};
use serde_json::{json, Map, Value as Json};

use super::body::ManagementBody;
use crate::config::Deployment;
use crate::db::models::AuditLogRow;
use crate::db::models_store::StoredModelRow;
use crate::db::DbError;
use crate::error::ApiError;
use crate::keys::audit::{Actor, AuditAction};
use crate::modeldb::edit::{self, EditError};
use crate::modeldb::{PlainModel, MODEL_TABLE};
use crate::state::AppState;

type State = web::Data<AppState>;

fn parse_body(body: &[u8]) -> Result<Map<String, Json>, ApiError> {
    match serde_json::from_slice::<Json>(body) {
        Ok(Json::Object(m)) => Ok(m),
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

fn edit_error(e: EditError) -> ApiError {
    ApiError::bad_request(e.message, Some(&e.param))
}

fn db_error(e: DbError) -> ApiError {
    log::warn!("model store error: {e}");
    ApiError::Unavailable("database".into())
}

/// The admin's identity, after checking the caller is one and models are stored.
async fn admin(state: &AppState, req: &HttpRequest) -> Result<Actor, ApiError> {
    let access = super::access::access(state, req).await?;
    super::access::require_admin(&access, req)?;
    if !state.models.enabled() {
        return Err(ApiError::ModelStoreOff);
    }
    Ok(Actor::of(&access, req))
}

/// Validates `model` as the config file's `model_list` entries are; a 400 naming the field.
fn validated(state: &AppState, model: &PlainModel) -> Result<Deployment, ApiError> {
    model.deployment(&state.settings).map_err(|e| match e {
        crate::config::ConfigError::At { path, message } => {
            ApiError::bad_request(format!("{path}: {message}"), Some(&path))
        }
        other => ApiError::bad_request(other.to_string(), None),
    })
}

fn time(t: NaiveDateTime) -> String {
    t.and_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A stored model as answered: its public `litellm_params` (no credential) and `model_info`.
fn shown(row: &StoredModelRow, d: &Deployment) -> Json {
    json!({
        "model_id": row.id,
        "model_name": row.model_name,
        "litellm_params": d.public_params,
        "model_info": d.model_info,
        "created_at": time(row.created_at),
        "created_by": row.created_by,
        "updated_at": time(row.updated_at),
        "updated_by": row.updated_by,
    })
}

/// What the audit log keeps of a model: never a credential.
fn audited(d: &Deployment) -> String {
    json!({
        "model_name": d.model_name,
        "litellm_params": d.public_params,
        "model_info": d.model_info,
    })
    .to_string()
}

fn audit_row(
    actor: &Actor,
    action: AuditAction,
    id: &str,
    before: Option<String>,
    after: Option<String>,
) -> AuditLogRow {
    AuditLogRow {
        id: uuid::Uuid::new_v4().to_string(),
        updated_at: Utc::now().naive_utc(),
        changed_by: actor.changed_by.clone(),
        changed_by_api_key: actor.api_key.clone(),
        action: action.as_str().to_owned(),
        table_name: MODEL_TABLE.to_owned(),
        object_id: id.to_owned(),
        before_value: before,
        updated_values: after,
    }
}

/// Serves the change here now and tells the other instances.
async fn serve_change(state: &AppState) -> Result<(), ApiError> {
    state.models.changed_here(state).await.map_err(db_error)?;
    Ok(())
}

/// `POST /model/new`.
pub async fn new(
    state: State,
    req: HttpRequest,
    body: ManagementBody,
) -> Result<HttpResponse, ApiError> {
    let actor = admin(&state, &req).await?;
    let fields = parse_body(&body.0)?;
    let model =
        edit::new_model(&fields, || uuid::Uuid::new_v4().to_string()).map_err(edit_error)?;
    let deployment = validated(&state, &model)?;
    if state.topology().find(&model.id).is_some() {
        return Err(ApiError::bad_request(
            format!("A model with id={} already exists", model.id),
            Some("model_info.id"),
        ));
    }
    let now = Utc::now().naive_utc();
    let row = state
        .models
        .seal(&model, (now, &actor.changed_by), &actor.changed_by)
        .map_err(|e| {
            log::error!("{e}");
            ApiError::Internal
        })?;
    let audit = state.settings.security.store_audit_logs.then(|| {
        audit_row(
            &actor,
            AuditAction::Created,
            &model.id,
            None,
            Some(audited(&deployment)),
        )
    });
    let stored = state
        .db
        .run(move |db| async move { db.insert_model(row, audit.as_ref()).await })
        .await
        .map_err(|e| {
            if e.is_unique_violation() {
                ApiError::bad_request(
                    format!("A model with id={} already exists", model.id),
                    Some("model_info.id"),
                )
            } else {
                db_error(e)
            }
        })?;
    serve_change(&state).await?;
    Ok(HttpResponse::Ok().json(shown(&stored, &deployment)))
}

/// Applies `patch` to the stored model `id`.
async fn update(
    state: &AppState,
    actor: &Actor,
    id: &str,
    patch: &Map<String, Json>,
) -> Result<HttpResponse, ApiError> {
    let wanted = id.to_owned();
    let existing = state
        .db
        .run(move |db| async move { db.stored_model(&wanted).await })
        .await
        .map_err(db_error)?;
    let Some(existing) = existing else {
        if state.topology().find(id).is_some() {
            return Err(ApiError::bad_request(
                "Cannot edit config-based model. Store model in DB via /model/new first.",
                Some("model_info.id"),
            ));
        }
        return Err(ApiError::Missing(format!("Model {id} not found on proxy.")));
    };
    let before = state.models.open(&existing).map_err(|e| {
        log::error!("stored model {id}: {e}");
        ApiError::Internal
    })?;
    let shown_before = before.deployment(&state.settings).ok().map(|d| audited(&d));
    let model = edit::update_model(before, patch).map_err(edit_error)?;
    let deployment = validated(state, &model)?;
    let row = state
        .models
        .seal(
            &model,
            (existing.created_at, &existing.created_by),
            &actor.changed_by,
        )
        .map_err(|e| {
            log::error!("{e}");
            ApiError::Internal
        })?;
    let audit = state.settings.security.store_audit_logs.then(|| {
        audit_row(
            actor,
            AuditAction::Updated,
            id,
            shown_before,
            Some(audited(&deployment)),
        )
    });
    let stored = state
        .db
        .run(move |db| async move { db.update_model(row, audit.as_ref()).await })
        .await
        .map_err(db_error)?
        .ok_or_else(|| ApiError::Missing(format!("Model {id} not found on proxy.")))?;
    serve_change(state).await?;
    Ok(HttpResponse::Ok().json(shown(&stored, &deployment)))
}

/// `POST /model/update`: `{"model_info": {"id": ..}, "model_name"?, "litellm_params"?}`.
pub async fn update_body(
    state: State,
    req: HttpRequest,
    body: ManagementBody,
) -> Result<HttpResponse, ApiError> {
    let actor = admin(&state, &req).await?;
    let fields = parse_body(&body.0)?;
    let id = fields
        .get("model_info")
        .and_then(|i| i.get("id"))
        .and_then(edit::id_of)
        .ok_or_else(|| {
            ApiError::bad_request("model_info.id not provided", Some("model_info.id"))
        })?;
    update(&state, &actor, &id, &fields).await
}

/// `PATCH /model/{model_id}/update`.
pub async fn update_at(
    state: State,
    req: HttpRequest,
    path: web::Path<String>,
    body: ManagementBody,
) -> Result<HttpResponse, ApiError> {
    let actor = admin(&state, &req).await?;
    let fields = parse_body(&body.0)?;
    update(&state, &actor, &path.into_inner(), &fields).await
}

/// `POST /model/delete`: `{"id": ..}`.
pub async fn delete(
    state: State,
    req: HttpRequest,
    body: ManagementBody,
) -> Result<HttpResponse, ApiError> {
    let actor = admin(&state, &req).await?;
    let fields = parse_body(&body.0)?;
    let id = fields
        .get("id")
        .and_then(edit::id_of)
        .ok_or_else(|| ApiError::bad_request("Missing required parameter: 'id'", Some("id")))?;
    // What it served as, for the audit log (credentials never go there).
    let before = state.topology().find(&id).map(audited);
    let audit = state
        .settings
        .security
        .store_audit_logs
        .then(|| audit_row(&actor, AuditAction::Deleted, &id, before, None));
    let for_db = id.clone();
    let deleted = state
        .db
        .run(move |db| async move {
            db.delete_model(&for_db, |row| {
                audit.clone().map(|mut a| {
                    // The stored name, should the model not be served here.
                    if a.before_value.is_none() {
                        a.before_value = Some(json!({"model_name": row.model_name}).to_string());
                    }
                    a
                })
            })
            .await
        })
        .await
        .map_err(db_error)?;
    if deleted.is_none() {
        let from_config = state
            .topology()
            .find(&id)
            .is_some_and(|d| d.model_info.get("db_model") == Some(&Json::Bool(false)));
        let hint = if from_config {
            " (it comes from the config file: remove it there)"
        } else {
            ""
        };
        return Err(ApiError::bad_request(
            format!("Model with id={id} not found in db{hint}"),
            Some("id"),
        ));
    }
    serve_change(&state).await?;
    Ok(HttpResponse::Ok().json(json!({"message": format!("Model: {id} deleted successfully")})))
}
