//! Chat completions, completions and embeddings: thin handlers over the shared pipeline.

use actix_web::{web, HttpRequest, HttpResponse};

use super::pipeline::{handle, Input};
use crate::providers::Operation;
use crate::state::AppState;

type State = web::Data<AppState>;
type Http = web::Data<awc::Client>;

/// `POST /chat/completions`.
pub async fn chat(s: State, h: Http, req: HttpRequest, p: web::Payload) -> HttpResponse {
    handle(&s, &h, &req, Input::Payload(p), Operation::Chat, None).await
}

/// `POST /completions`.
pub async fn completion(s: State, h: Http, req: HttpRequest, p: web::Payload) -> HttpResponse {
    handle(&s, &h, &req, Input::Payload(p), Operation::Completion, None).await
}

/// `POST /embeddings`.
pub async fn embedding(s: State, h: Http, req: HttpRequest, p: web::Payload) -> HttpResponse {
    handle(&s, &h, &req, Input::Payload(p), Operation::Embedding, None).await
}

/// `POST /openai/deployments/{model}/chat/completions` and `/engines/{model}/...`.
pub async fn chat_at(
    s: State,
    h: Http,
    req: HttpRequest,
    m: web::Path<String>,
    p: web::Payload,
) -> HttpResponse {
    handle(
        &s,
        &h,
        &req,
        Input::Payload(p),
        Operation::Chat,
        Some(m.into_inner()),
    )
    .await
}

/// `POST /openai/deployments/{model}/completions`.
pub async fn completion_at(
    s: State,
    h: Http,
    req: HttpRequest,
    m: web::Path<String>,
    p: web::Payload,
) -> HttpResponse {
    handle(
        &s,
        &h,
        &req,
        Input::Payload(p),
        Operation::Completion,
        Some(m.into_inner()),
    )
    .await
}

/// `POST /openai/deployments/{model}/embeddings`.
pub async fn embedding_at(
    s: State,
    h: Http,
    req: HttpRequest,
    m: web::Path<String>,
    p: web::Payload,
) -> HttpResponse {
    handle(
        &s,
        &h,
        &req,
        Input::Payload(p),
        Operation::Embedding,
        Some(m.into_inner()),
    )
    .await
}
