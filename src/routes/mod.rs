//! The HTTP surface: one file per endpoint family, wired into one route table.

pub mod access_log;
mod attempt;
mod audit;
mod body;
mod cached;
mod completions;
mod health;
mod keys;
pub(crate) mod messages;
mod metrics;
mod model_management;
pub(crate) mod model_request;
mod models;
pub mod pipeline;
mod shared_limits;
mod spend;
mod spend_report;
mod ui;

use actix_web::{web, HttpRequest, HttpResponse, ResponseError};

use crate::error::ApiError;

/// Registers every route, with and without `/v1`, plus the Azure-style paths.
pub fn configure(cfg: &mut web::ServiceConfig) {
    for prefix in ["", "/v1"] {
        cfg.route(
            &format!("{prefix}/chat/completions"),
            web::post().to(completions::chat),
        )
        .route(
            &format!("{prefix}/completions"),
            web::post().to(completions::completion),
        )
        .route(
            &format!("{prefix}/embeddings"),
            web::post().to(completions::embedding),
        )
        .route(&format!("{prefix}/models"), web::get().to(models::list))
        .route(&format!("{prefix}/model/info"), web::get().to(models::info))
        .route(
            &format!("{prefix}/messages"),
            web::post().to(messages::messages),
        )
        .route(
            &format!("{prefix}/messages/count_tokens"),
            web::post().to(messages::count_tokens),
        );
    }
    for prefix in [
        "/openai/deployments/{model}",
        "/engines/{model}",
        "/v1/engines/{model}",
    ] {
        cfg.route(
            &format!("{prefix}/chat/completions"),
            web::post().to(completions::chat_at),
        )
        .route(
            &format!("{prefix}/completions"),
            web::post().to(completions::completion_at),
        )
        .route(
            &format!("{prefix}/embeddings"),
            web::post().to(completions::embedding_at),
        );
    }
    cfg.route("/key/generate", web::post().to(keys::generate))
        .route("/key/info", web::get().to(keys::info))
        .route("/key/update", web::post().to(keys::update))
        .route("/key/delete", web::post().to(keys::delete))
        .route("/key/list", web::get().to(keys::list))
        .route("/key/block", web::post().to(keys::block))
        .route("/key/unblock", web::post().to(keys::unblock))
        .route("/key/regenerate", web::post().to(keys::regenerate_body))
        .route("/key/{key}/regenerate", web::post().to(keys::regenerate_at))
        .route("/spend/logs", web::get().to(spend::logs))
        .route("/global/spend", web::get().to(spend::global))
        .route("/global/spend/report", web::get().to(spend_report::report))
        .route("/audit/logs", web::get().to(audit::logs));
    cfg.route("/ui", web::get().to(ui::index))
        .route("/ui/", web::get().to(ui::index))
        .route("/ui/{file}", web::get().to(ui::file));
    cfg.route("/health/liveliness", web::get().to(health::liveliness))
        .route("/health/liveness", web::get().to(health::liveliness))
        .route("/health/readiness", web::get().to(health::readiness))
        .route("/health", web::get().to(health::health))
        .route("/metrics", web::get().to(metrics::metrics))
        .route("/metrics/", web::get().to(metrics::metrics))
        .route("/model/state", web::get().to(models::state))
        .route("/model/new", web::post().to(model_management::new))
        .route(
            "/model/update",
            web::post().to(model_management::update_body),
        )
        .route(
            "/model/{model_id}/update",
            web::patch().to(model_management::update_at),
        )
        .route("/model/delete", web::post().to(model_management::delete))
        .default_service(web::to(not_found));
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    ApiError::NotFound(req.path().to_owned()).error_response()
}
