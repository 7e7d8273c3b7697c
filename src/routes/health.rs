//! Liveness and readiness probes; they need no key.

use actix_web::HttpResponse;
use serde_json::json;

use super::pipeline::VERSION;

/// `GET /health/liveliness` and `/health/liveness`.
pub async fn liveliness() -> HttpResponse {
    HttpResponse::Ok().json("I'm alive!")
}

/// `GET /health/readiness`.
pub async fn readiness() -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "status": "healthy",
        "db": "Not connected",
        "cache": null,
        "litellm_version": VERSION,
        "success_callbacks": [],
    }))
}
