//! A model request's body read from the client: refused past `max_request_size` (a declared
//! length before a byte is read, a chunked one as soon as it passes), cut after
//! `client_body_timeout`; a refused body's connection is closed, not drained.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use crate::error::ApiError;

/// How much of a body the gateway reads, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// The largest body, in bytes (`max_request_size_mb`).
    pub max_size: usize,
    /// The longest the whole body may take to arrive (`client_body_timeout`).
    pub timeout: Duration,
}

impl BodyLimits {
    /// The limits the settings set.
    pub fn of(settings: &crate::config::Settings) -> Self {
        Self {
            max_size: settings.max_request_size,
            timeout: settings.client.body,
        }
    }
}

/// Why a body was not read whole, with what the client has not sent yet.
pub struct Refused {
    /// The error the client is answered with.
    pub error: ApiError,
    unread: web::Payload,
}

impl Refused {
    /// The refusal as the response `shape` gives it. The response holds the unread payload
    /// until it is sent: actix then closes the connection, where it would otherwise keep
    /// reading (and discarding) a chunked body for as long as the client sends one.
    pub fn respond(self, shape: impl FnOnce(&ApiError) -> HttpResponse) -> HttpResponse {
        let unread = self.unread;
        shape(&self.error).map_body(|_, body| {
            HoldsPayload {
                body,
                _unread: unread,
            }
            .boxed()
        })
    }
}

/// A response body that keeps the request's unread payload alive until the body is dropped.
struct HoldsPayload {
    body: BoxBody,
    _unread: web::Payload,
}

impl MessageBody for HoldsPayload {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.body).poll_next(cx)
    }
}

/// Reads the body within `limits`; a declared length over the limit is refused before any of
/// the body is read.
pub async fn read(
    req: &HttpRequest,
    mut payload: web::Payload,
    limits: BodyLimits,
) -> Result<Bytes, Refused> {
    let limit = limits.max_size;
    let too_large = |size: usize| ApiError::BodyTooLarge {
        size_mb: size as f64 / (1024.0 * 1024.0),
        limit_mb: limit as f64 / (1024.0 * 1024.0),
    };
    let declared = req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(len) = declared.filter(|&l| l > limit) {
        return Err(Refused {
            error: too_large(len),
            unread: payload,
        });
    }
    let mut buf = BytesMut::with_capacity(declared.unwrap_or(1024).min(limit));
    let reading = async {
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| {
                ApiError::bad_request(format!("Could not read the request body: {e}"), None)
            })?;
            if buf.len() + chunk.len() > limit {
                return Err(too_large(buf.len() + chunk.len()));
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(())
    };
    let outcome = match actix_rt::time::timeout(limits.timeout, reading).await {
        Ok(outcome) => outcome,
        Err(_) => Err(ApiError::BodyTimeout(limits.timeout)),
    };
    match outcome {
        Ok(()) => Ok(buf.freeze()),
        Err(error) => Err(Refused {
            error,
            unread: payload,
        }),
    }
}

/// A management route's body (`/key/*`), read as a model request's is: refused in the
/// contract's shape past `max_request_size`, cut after `client_body_timeout`, its connection
/// closed instead of drained.
pub struct ManagementBody(pub Bytes);

impl actix_web::FromRequest for ManagementBody {
    type Error = actix_web::Error;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        let payload = <web::Payload as actix_web::FromRequest>::from_request(&req, payload);
        Box::pin(async move {
            let payload = payload.await?;
            let limits = match req.app_data::<web::Data<crate::state::AppState>>() {
                Some(state) => BodyLimits::of(&state.settings),
                None => return Err(ApiError::Internal.into()),
            };
            match read(&req, payload, limits).await {
                Ok(bytes) => Ok(Self(bytes)),
                Err(refused) => {
                    let response = refused.respond(actix_web::ResponseError::error_response);
                    Err(
                        actix_web::error::InternalError::from_response("body refused", response)
                            .into(),
                    )
                }
            }
        })
    }
}
