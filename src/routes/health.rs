//! Liveness and readiness probes; they need no key.

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::pipeline::VERSION;
use crate::cache::ResponseCache;
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
