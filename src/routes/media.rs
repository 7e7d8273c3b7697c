//! Images, audio, moderations and rerank: thin handlers over the shared pipeline, each with and
//! without `/v1`, and Azure's deployment paths for images and audio.

use actix_web::{web, HttpRequest, HttpResponse};

use super::pipeline::{handle, Input};
use crate::providers::Operation;
use crate::state::AppState;

type State = web::Data<AppState>;
type Http = web::Data<awc::Client>;

/// The routes of each operation, under `/v1` and the root.
const ROUTES: &[Operation] = &[
    Operation::ImageGeneration,
    Operation::Speech,
    Operation::Transcription,
    Operation::Translation,
    Operation::Moderation,
    Operation::Rerank,
];

/// Operations Azure serves under `/openai/deployments/{model}`.
const AZURE_ROUTES: &[Operation] = &[
    Operation::ImageGeneration,
    Operation::Speech,
    Operation::Transcription,
    Operation::Translation,
];

/// Registers the routes (`/v2/rerank` too, Cohere's current version).
pub fn configure(cfg: &mut web::ServiceConfig) {
    for &op in ROUTES {
        for prefix in ["", "/v1"] {
            cfg.route(
                &format!("{prefix}{}", op.route()),
                web::post().to(at_root(op)),
            );
        }
    }
    cfg.route("/v2/rerank", web::post().to(at_root(Operation::Rerank)));
    for &op in AZURE_ROUTES {
        cfg.route(
            &format!("/openai/deployments/{{model}}{}", op.route()),
            web::post().to(at_deployment(op)),
        );
    }
}

/// `POST {route}`: the model is in the body (or the form).
fn at_root(
    op: Operation,
) -> impl Fn(
    State,
    Http,
    HttpRequest,
    web::Payload,
) -> futures_util::future::LocalBoxFuture<'static, HttpResponse>
       + Clone
       + 'static {
    move |s, h, req, p| {
        Box::pin(async move { handle(&s, &h, &req, Input::Payload(p), op, None).await })
    }
}

/// `POST /openai/deployments/{model}{route}`: the model is in the path.
fn at_deployment(
    op: Operation,
) -> impl Fn(
    State,
    Http,
    HttpRequest,
    web::Path<String>,
    web::Payload,
) -> futures_util::future::LocalBoxFuture<'static, HttpResponse>
       + Clone
       + 'static {
    move |s, h, req, m, p| {
        Box::pin(
            async move { handle(&s, &h, &req, Input::Payload(p), op, Some(m.into_inner())).await },
        )
    }
}
