//! Liveness and readiness probes (they need no key), and `GET /health`, which calls every
//! deployment (see `crate::health`).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::pipeline::VERSION;
use crate::cache::ResponseCache;
use crate::error::ApiError;
use crate::health;
use crate::state::AppState;

/// `GET /health/liveliness` and `/health/liveness`.
pub async fn liveliness() -> HttpResponse {
    HttpResponse::Ok().json("I'm alive!")
}

/// `GET /health/readiness`: healthy, with the database's state and the response cache's type
/// (`local`, `redis`, or null when off).
pub async fn readiness(state: web::Data<AppState>) -> HttpResponse {
    let connected = state
        .db
        .run(|db| async move { Ok(db.ping().await) })
        .await
        .unwrap_or(false);
    HttpResponse::Ok().json(json!({
        "status": "healthy",
        "db": if connected { "connected" } else { "Not connected" },
        "cache": state.cache.as_ref().map(ResponseCache::kind),
        "litellm_version": VERSION,
        "success_callbacks": [],
    }))
}

/// `GET /health`'s query.
#[derive(Deserialize)]
pub struct HealthQuery {
    /// Check only this model group.
    model: Option<String>,
}

/// `GET /health` (any valid key): every deployment called now, or, with background checks
/// on, their last round served at once.
pub async fn health(
    state: web::Data<AppState>,
    http: web::Data<awc::Client>,
    req: HttpRequest,
    query: web::Query<HealthQuery>,
) -> Result<HttpResponse, ApiError> {
    super::models::allowed_models(&state, &req).await?;
    let last = state
        .health
        .last()
        .filter(|_| state.settings.health.background);
    let only = query.model.as_deref();
    let round = match last {
        Some(round) => round
            .iter()
            .filter(|c| only.is_none_or(|m| c.deployment.model_name == m))
            .cloned()
            .collect(),
        None => health::check_all(&state, &http, state.settings.health.timeout, only).await,
    };
    Ok(HttpResponse::Ok().json(health::report(&round)))
}
