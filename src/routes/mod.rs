//! The HTTP surface: one file per endpoint family, wired into one route table.

pub mod access;
pub mod access_log;
mod attempt;
mod audit;
mod batches;
mod body;
mod cached;
mod completions;
mod end_users;
mod entities;
mod fields;
mod files;
mod files_call;
mod health;
mod keys;
mod media;
mod media_attempt;
mod media_request;
pub(crate) mod messages;
mod metrics;
mod model_management;
pub(crate) mod model_request;
mod models;
pub mod pipeline;
mod responses;
mod shared_limits;
mod spend;
mod spend_report;
mod spend_views;
mod tags;
mod teams;
mod ui;
mod users;

use actix_web::{web, HttpRequest, HttpResponse, ResponseError};

use crate::error::ApiError;

/// Registers every route, with and without `/v1`, plus the Azure-style paths.
pub fn configure(cfg: &mut web::ServiceConfig) {
    // Routes are matched in the order they are added: the model routes come first, `/v1` (what
    // the SDKs call) before the bare paths, and routes with path parameters (matched by a
    // regex) after every plain one, so a chat request is matched by its first comparison.
    for prefix in ["/v1", ""] {
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
        )
        .route(
            &format!("{prefix}/responses"),
            web::post().to(responses::create),
        );
    }
    for prefix in ["/v1", ""] {
        cfg.route(
            &format!("{prefix}/responses/{{id}}"),
            web::get().to(responses::retrieve),
        )
        .route(
            &format!("{prefix}/responses/{{id}}"),
            web::delete().to(responses::delete),
        )
        .route(
            &format!("{prefix}/responses/{{id}}/input_items"),
            web::get().to(responses::input_items),
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
    cfg.configure(media::configure);
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
    cfg.route("/user/new", web::post().to(users::new))
        .route("/user/info", web::get().to(users::info))
        .route("/user/update", web::post().to(users::update))
        .route("/user/delete", web::post().to(users::delete))
        .route("/user/list", web::get().to(users::list))
        .route("/team/new", web::post().to(teams::new))
        .route("/team/info", web::get().to(teams::info))
        .route("/team/update", web::post().to(teams::update))
        .route("/team/delete", web::post().to(teams::delete))
        .route("/team/list", web::get().to(teams::list))
        .route("/team/member_add", web::post().to(teams::member_add))
        .route("/team/member_update", web::post().to(teams::member_update))
        .route("/team/member_delete", web::post().to(teams::member_delete))
        .route("/team/block", web::post().to(teams::block))
        .route("/team/unblock", web::post().to(teams::unblock))
        .route("/tag/new", web::post().to(tags::new))
        .route("/tag/info", web::post().to(tags::info))
        .route("/tag/update", web::post().to(tags::update))
        .route("/tag/delete", web::post().to(tags::delete))
        .route("/tag/list", web::get().to(tags::list))
        .route(
            "/tag/daily/activity",
            web::get().to(spend_views::tag_activity),
        )
        .route(
            "/user/daily/activity",
            web::get().to(spend_views::user_activity),
        )
        .route(
            "/team/daily/activity",
            web::get().to(spend_views::team_activity),
        )
        .route(
            "/end_user/daily/activity",
            web::get().to(spend_views::end_user_activity),
        )
        .route(
            "/customer/daily/activity",
            web::get().to(spend_views::end_user_activity),
        )
        .route("/global/spend/keys", web::get().to(spend_views::keys))
        .route("/global/spend/models", web::get().to(spend_views::models))
        .route("/global/spend/teams", web::get().to(spend_views::teams))
        .route(
            "/global/spend/tags",
            web::get().to(spend_views::global_tags),
        )
        .route("/spend/tags", web::get().to(spend_views::spend_tags));
    // LiteLLM calls end users customers too.
    for prefix in ["/end_user", "/customer"] {
        cfg.route(&format!("{prefix}/new"), web::post().to(end_users::new))
            .route(&format!("{prefix}/info"), web::get().to(end_users::info))
            .route(
                &format!("{prefix}/update"),
                web::post().to(end_users::update),
            )
            .route(
                &format!("{prefix}/delete"),
                web::post().to(end_users::delete),
            )
            .route(&format!("{prefix}/list"), web::get().to(end_users::list))
            .route(&format!("{prefix}/block"), web::post().to(end_users::block))
            .route(
                &format!("{prefix}/unblock"),
                web::post().to(end_users::unblock),
            );
    }
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
    // After the model routes: routing tries resources in order.
    files_and_batches(cfg);
}

/// `/files` and `/batches`, with and without `/v1`, and LiteLLM's provider-scoped forms
/// (`/openai/v1/files`, `/azure/v1/batches` ...).
fn files_and_batches(cfg: &mut web::ServiceConfig) {
    for prefix in ["", "/v1", "/{provider:openai|azure}/v1"] {
        cfg.route(&format!("{prefix}/files"), web::post().to(files::upload))
            .route(&format!("{prefix}/files"), web::get().to(files::list))
            .route(
                &format!("{prefix}/files/{{file_id}}"),
                web::get().to(files::retrieve),
            )
            .route(
                &format!("{prefix}/files/{{file_id}}"),
                web::delete().to(files::delete),
            )
            .route(
                &format!("{prefix}/files/{{file_id}}/content"),
                web::get().to(files::content),
            )
            .route(
                &format!("{prefix}/batches"),
                web::post().to(batches::create),
            )
            .route(&format!("{prefix}/batches"), web::get().to(batches::list))
            .route(
                &format!("{prefix}/batches/{{batch_id}}"),
                web::get().to(batches::retrieve),
            )
            .route(
                &format!("{prefix}/batches/{{batch_id}}/cancel"),
                web::post().to(batches::cancel),
            );
    }
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    ApiError::NotFound(req.path().to_owned()).error_response()
}
