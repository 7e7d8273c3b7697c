//! `/models` and `/model/info`: what the caller may use, with every secret removed.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use crate::auth::authenticate;
use crate::error::ApiError;
use crate::state::AppState;

/// The `created` timestamp LiteLLM reports for every model.
const CREATED: u64 = 1_677_610_602;

/// `GET /models`.
pub async fn list(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    authenticate(&state, &req)?;
    let data: Vec<_> = state
        .catalog
        .listed_names()
        .map(
            |name| json!({"id": name, "object": "model", "created": CREATED, "owned_by": "openai"}),
        )
        .collect();
    Ok(HttpResponse::Ok().json(json!({"object": "list", "data": data})))
}

/// `GET /model/info`.
pub async fn info(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    authenticate(&state, &req)?;
    let data: Vec<_> = state
        .settings
        .deployments
        .iter()
        .map(|d| {
            json!({
                "model_name": d.model_name,
                "litellm_params": d.public_params,
                "model_info": d.model_info,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({"data": data})))
}
