//! `POST /v1/messages` and `/v1/messages/count_tokens`: the Anthropic Messages format in front of
//! every deployment, so Anthropic SDK clients can use any model. The request is translated to
//! OpenAI's, served by the shared pipeline, and its reply, stream or error translated back.

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use serde_json::{Map, Value as Json};

use super::pipeline::{handle, Input};
use crate::auth::authenticate;
use crate::error::ApiError;
use crate::providers::anthropic::inbound::{self, EventWriter};
use crate::providers::Operation;
use crate::state::AppState;

type State = web::Data<AppState>;
type Http = web::Data<awc::Client>;

/// Reads and translates the client's Messages request into OpenAI chat fields.
async fn openai_fields(
    state: &AppState,
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<Map<String, Json>, Unread> {
    authenticate(state, req)?;
    let body = super::body::read(req, payload, super::body::BodyLimits::of(&state.settings))
        .await
        .map_err(Unread::Refused)?;
    Ok(parse_request(&body)?)
}

/// A Messages request body as OpenAI chat fields, or the 400 it deserves.
pub(crate) fn parse_request(body: &[u8]) -> Result<Map<String, Json>, ApiError> {
    let value: Json = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("Invalid JSON in request body: {e}"), None))?;
    let Json::Object(map) = value else {
        return Err(ApiError::bad_request(
            "Request body must be a JSON object",
            None,
        ));
    };
    if !map.get("messages").is_some_and(Json::is_array) {
        return Err(ApiError::bad_request(
            "Missing required parameter: 'messages'",
            Some("messages"),
        ));
    }
    Ok(inbound::chat_request(&map))
}

/// Why a Messages request could not be read: a refused body keeps its connection's fate.
enum Unread {
    Refused(super::body::Refused),
    Invalid(ApiError),
}

impl From<ApiError> for Unread {
    fn from(e: ApiError) -> Self {
        Self::Invalid(e)
    }
}

impl Unread {
    fn respond(self) -> HttpResponse {
        match self {
            Self::Refused(refused) => refused.respond(anthropic_error),
            Self::Invalid(e) => anthropic_error(&e),
        }
    }
}

/// An error in Anthropic's shape, with the status it would have had.
fn anthropic_error(e: &ApiError) -> HttpResponse {
    let status = e.status_code();
    HttpResponse::build(status).json(inbound::error(status.as_u16(), &e.body()))
}

/// `POST /v1/messages`.
pub async fn messages(s: State, h: Http, req: HttpRequest, p: web::Payload) -> HttpResponse {
    let fields = match openai_fields(&s, &req, p).await {
        Ok(f) => f,
        Err(e) => return e.respond(),
    };
    let stream = fields.get("stream") == Some(&Json::Bool(true));
    let body = match serde_json::to_vec(&fields) {
        Ok(b) => Bytes::from(b),
        Err(_) => return anthropic_error(&ApiError::Internal),
    };
    let reply = handle(&s, &h, &req, Input::Body(body), Operation::Chat, None).await;
    let status = reply.status();
    let mut out = HttpResponse::build(status);
    for (name, value) in reply.headers() {
        if name != CONTENT_TYPE && name != CONTENT_LENGTH {
            out.insert_header((name.clone(), value.clone()));
        }
    }
    let body = reply.into_body();
    if stream && status.is_success() {
        return out
            .content_type("text/event-stream")
            .streaming(AnthropicEvents::new(body));
    }
    let bytes = actix_web::body::to_bytes(body).await.unwrap_or_default();
    let openai: Json = serde_json::from_slice(&bytes).unwrap_or_default();
    let translated = if status.is_success() {
        inbound::message(&openai)
    } else {
        inbound::error(status.as_u16(), &openai)
    };
    out.json(translated)
}

/// `POST /v1/messages/count_tokens`: the prompt's tokens, counted with cl100k.
pub async fn count_tokens(s: State, req: HttpRequest, p: web::Payload) -> HttpResponse {
    // Counting calls no upstream, so no other step checks that the key is a real one.
    if let Err(e) = super::models::allowed_models(&s, &req).await {
        return anthropic_error(&e);
    }
    match openai_fields(&s, &req, p).await {
        Ok(fields) => HttpResponse::Ok().json(serde_json::json!({
            "input_tokens": crate::tokens::prompt_tokens(&fields),
        })),
        Err(e) => e.respond(),
    }
}

/// The pipeline's OpenAI SSE stream, rewritten as Anthropic events as it flows.
pub(crate) struct AnthropicEvents {
    body: BoxBody,
    line: BytesMut,
    writer: EventWriter,
    done: bool,
}

impl AnthropicEvents {
    /// Rewrites `body`, the pipeline's OpenAI SSE stream.
    pub(crate) fn new(body: BoxBody) -> Self {
        Self {
            body,
            line: BytesMut::new(),
            writer: EventWriter::default(),
            done: false,
        }
    }

    /// Translates every complete line in `bytes`; returns the events written.
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> String {
        let mut out = String::new();
        self.line.extend_from_slice(bytes);
        while let Some(at) = self.line.iter().position(|&b| b == b'\n') {
            let line = self.line.split_to(at + 1);
            let Some(data) = line.strip_prefix(b"data: ") else {
                continue;
            };
            let data = data.trim_ascii_end();
            if data == b"[DONE]" {
                self.writer.finish(&mut out);
                self.done = true;
            } else if let Ok(chunk) = serde_json::from_slice::<Json>(data) {
                self.writer.chunk(&chunk, &mut out);
            }
        }
        out
    }
}

impl Stream for AnthropicEvents {
    type Item = Result<Bytes, actix_web::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.body).poll_next(cx) {
                Poll::Ready(Some(Ok(bytes))) => {
                    let out = this.feed(&bytes);
                    if !out.is_empty() {
                        return Poll::Ready(Some(Ok(Bytes::from(out))));
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    return Poll::Ready(Some(Err(actix_web::error::ErrorInternalServerError(
                        e.to_string(),
                    ))))
                }
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
