//! The way of a model request: authenticate, parse, pick, reserve, call, relay, report.

use std::time::{Duration, Instant};

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse, HttpResponseBuilder, ResponseError};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use super::model_request::ModelRequest;
use crate::actors::{Lease, Pick, Reserve};
use crate::auth::authenticate;
use crate::catalog::Resolved;
use crate::config::Deployment;
use crate::error::ApiError;
use crate::providers::request::{prepare, DropPolicy, Reshape};
use crate::providers::stream::{RelayOptions, SseRelay};
use crate::providers::{client, mock, translate, usage_of, Operation, ProviderError, ProviderKind};
use crate::state::AppState;

/// The version reported in `x-litellm-version` and `/health/readiness`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

use super::access_log::Trace;

/// Serves one chat, completion or embedding request and logs it.
pub async fn handle(
    state: &AppState,
    http: &awc::Client,
    req: &HttpRequest,
    payload: web::Payload,
    op: Operation,
    path_model: Option<String>,
) -> HttpResponse {
    let started = Instant::now();
    let call_id = req
        .headers()
        .get("x-litellm-call-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    let mut trace = Trace::default();
    let ctx = Call {
        state,
        http,
        started,
        call_id: &call_id,
    };
    let mut response = match serve(&ctx, req, payload, op, path_model, &mut trace).await {
        Ok(r) => r,
        Err(e) => e.error_response(),
    };
    if let Ok(v) = HeaderValue::from_str(&call_id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static("x-litellm-call-id"), v);
    }
    req.extensions_mut().insert(trace);
    response
}

/// The per-request context every attempt shares.
struct Call<'a> {
    state: &'a AppState,
    http: &'a awc::Client,
    started: Instant,
    call_id: &'a str,
}

/// Reads the body, refusing it as soon as it passes `limit` bytes.
async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<Bytes, ApiError> {
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
        return Err(too_large(len));
    }
    let mut buf = BytesMut::with_capacity(declared.unwrap_or(1024).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::bad_request(format!("Could not read the request body: {e}"), None)
        })?;
        if buf.len() + chunk.len() > limit {
            return Err(too_large(buf.len() + chunk.len()));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

async fn serve(
    ctx: &Call<'_>,
    req: &HttpRequest,
    payload: web::Payload,
    op: Operation,
    path_model: Option<String>,
    trace: &mut Trace,
) -> Result<HttpResponse, ApiError> {
    let state = ctx.state;
    authenticate(state, req)?;
    let body = read_body(req, payload, state.settings.max_request_size).await?;
    let request = ModelRequest::parse(op, &body, path_model)?;
    drop(body);
    let resolved = state
        .catalog
        .resolve(&request.model)
        .ok_or_else(|| ApiError::UnknownModel(request.model.clone()))?;
    trace.group = Some(resolved.group);
    route(ctx, op, &request, &resolved, trace).await
}

/// Exponential backoff for a retry on the same deployment: 0.5 s doubling to 8 s, with jitter,
/// never shorter than the upstream's `retry-after`.
fn backoff(retry: u32, retry_after: Option<Duration>) -> Duration {
    let base = 0.5 * 2f64.powi(retry.saturating_sub(1).min(5) as i32);
    let jittered = base.min(8.0) * (0.75 + fastrand::f64() * 0.5);
    let wait = Duration::from_secs_f64(jittered);
    retry_after.map_or(wait, |r| r.max(wait))
}

/// Picks, reserves and tries deployments until one answers or the retries run out.
async fn route(
    ctx: &Call<'_>,
    op: Operation,
    request: &ModelRequest,
    resolved: &Resolved,
    trace: &mut Trace,
) -> Result<HttpResponse, ApiError> {
    let state = ctx.state;
    let max_retries = request
        .gateway
        .num_retries
        .unwrap_or(state.settings.num_retries);
    let mut retries = 0u32;
    let mut exclude: Vec<usize> = Vec::new();
    let mut last_error: Option<ProviderError> = None;
    let mut backoffs = 0u32;
    loop {
        let actors = state.actors();
        let picked = actors
            .router
            .send(Pick {
                group: resolved.group,
                exclude: exclude.clone(),
            })
            .await
            .map_err(|_| ApiError::Internal)?;
        let index = match picked {
            Ok(index) => index,
            Err(no_capacity) => match last_error.take() {
                // Every other deployment was tried: retry the same one, after a backoff.
                Some(err) if !exclude.is_empty() && backoffs < max_retries => {
                    backoffs += 1;
                    actix_rt::time::sleep(backoff(retries, err.retry_after)).await;
                    exclude.clear();
                    last_error = Some(err);
                    continue;
                }
                Some(err) => return Err(err.into()),
                None => {
                    let group = state.catalog.name(resolved.group);
                    let wait = no_capacity
                        .earliest_back
                        .map(|t| t.saturating_duration_since(Instant::now()))
                        .unwrap_or(state.settings.cooldown.cooldown_time);
                    return Err(ApiError::NoDeployment {
                        message: format!(
                            "No deployments available for selected model, Try again in {} seconds. Passed model={group}. Every deployment of the group is cooling down or at its limits.",
                            wait.as_secs().max(1)
                        ),
                        retry_after: wait,
                    });
                }
            },
        };
        let addr = &actors.deployments[index];
        match addr.send(Reserve).await.map_err(|_| ApiError::Internal)? {
            Ok(()) => {}
            Err(_refused) => {
                exclude.push(index);
                continue;
            }
        }
        let lease = Lease::new(index, addr.clone());
        let deployment = state.deployment(index);
        trace.deployment = Some(index);
        let attempt = Attempt {
            ctx,
            op,
            request,
            deployment,
            wildcard: resolved.wildcard.as_deref(),
            retries,
        };
        match attempt.run(lease).await {
            Ok(response) => return Ok(response),
            Err(err) => {
                if err.is_retryable() && retries < max_retries {
                    retries += 1;
                    exclude.push(index);
                    log::debug!(
                        "retrying after {} from deployment {}",
                        err.status,
                        deployment.id
                    );
                    last_error = Some(err);
                    continue;
                }
                return Err(err.into());
            }
        }
    }
}

/// One try on one deployment.
struct Attempt<'a> {
    ctx: &'a Call<'a>,
    op: Operation,
    request: &'a ModelRequest,
    deployment: &'a Deployment,
    wildcard: Option<&'a str>,
    retries: u32,
}

impl Attempt<'_> {
    fn whole_timeout(&self) -> Duration {
        self.request
            .gateway
            .timeout
            .or(self.deployment.timeout)
            .unwrap_or(self.ctx.state.settings.request_timeout)
    }

    fn upstream_model(&self) -> String {
        match self.wildcard {
            Some(w) if self.deployment.upstream_model.contains('*') => {
                self.deployment.upstream_model.replace('*', w)
            }
            _ => self.deployment.upstream_model.clone(),
        }
    }

    fn wants_base64(&self) -> bool {
        self.request
            .fields
            .get("encoding_format")
            .and_then(|v| v.as_str())
            == Some("base64")
    }

    fn client_wants_usage(&self) -> bool {
        self.request.wants_stream_usage || self.ctx.state.settings.always_include_stream_usage
    }

    /// Runs the attempt; the lease is reported failed, succeeded, or (when the client leaves
    /// mid-stream) released.
    async fn run(&self, lease: Lease) -> Result<HttpResponse, ProviderError> {
        let mut slot = Some(lease);
        let result = self.call(&mut slot).await;
        if let (Err(err), Some(lease)) = (&result, slot.as_mut()) {
            lease.fail(err);
        }
        result
    }

    /// The attempt itself; `slot` holds the lease until a stream takes it along.
    async fn call(&self, slot: &mut Option<Lease>) -> Result<HttpResponse, ProviderError> {
        let d = self.deployment;
        let mock_value = self
            .request
            .gateway
            .mock_response
            .as_deref()
            .or(d.mock_response.as_deref());
        if self.request.gateway.mock_timeout {
            let after = self.whole_timeout();
            actix_rt::time::sleep(after).await;
            return Err(mock::timeout_error(after));
        }
        if let Some(value) = mock_value {
            return match mock::interpret(value) {
                mock::Mock::Fail(err) => Err(err),
                mock::Mock::Reply(content) => Ok(self.mock_reply(slot, content)),
            };
        }
        if let ProviderKind::NotYet(name) = d.provider {
            return Err(ProviderError {
                status: 400,
                kind: crate::providers::ErrorKind::Status,
                message: format!(
                    "llmgate does not support the {name} provider yet (deployment {})",
                    d.id
                ),
                upstream_type: Some("invalid_request_error".into()),
                param: Some("model".into()),
                retry_after: None,
            });
        }
        let model = self.upstream_model();
        let stream = self.request.stream;
        let settings = &self.ctx.state.settings;
        let drop = DropPolicy {
            unsupported: self
                .request
                .gateway
                .drop_params
                .unwrap_or(settings.drop_params),
            always: &self.request.gateway.additional_drop_params,
        };
        let call = prepare(self.op, d, &model, &self.request.fields, stream, &drop)?;
        log::debug!(
            "calling {} at {} for {} (deployment {})",
            d.provider.name(),
            d.public_api_base,
            d.model_name,
            d.id
        );
        let whole = self.whole_timeout();
        let first_byte = if stream {
            d.stream_timeout
                .or(settings.stream_timeout)
                .unwrap_or(whole)
                .min(whole)
        } else {
            whole
        };
        let max_body = settings.max_request_size.max(32 * 1024 * 1024);
        let upstream_started = Instant::now();
        let mut reply = client::send(self.ctx.http, d, &call, first_byte, max_body).await?;
        let mut builder = self.response_builder(StatusCode::OK, &reply.provider_headers);
        if stream {
            let fields = self.request.fields.clone();
            let options = RelayOptions {
                client_wants_usage: self.client_wants_usage(),
                reshape: call.reshape,
                deadline: whole.saturating_sub(upstream_started.elapsed()),
                provider: d.provider,
                prompt_tokens: Box::new(move || crate::tokens::prompt_tokens(&fields)),
            };
            let Some(lease) = slot.take() else {
                return Err(ProviderError::connection(d.provider, "lease already used"));
            };
            let relay = SseRelay::new(reply.body, lease, options);
            self.timing_headers(&mut builder, upstream_started.elapsed());
            return Ok(builder.content_type("text/event-stream").streaming(relay));
        }
        let remaining = whole.saturating_sub(upstream_started.elapsed());
        let body = client::read_all(&mut reply.body, d.provider, remaining, max_body).await?;
        if let Some(lease) = slot.as_mut() {
            lease.succeed(usage_of(&body));
        }
        let body = match call.reshape {
            Reshape::None => body,
            reshape => reshape_body(&body, reshape),
        };
        let body = if self.op == Operation::Embedding && self.wants_base64() {
            translate::embeddings_as_base64(&body).unwrap_or(body)
        } else {
            body
        };
        self.timing_headers(&mut builder, upstream_started.elapsed());
        Ok(builder.content_type("application/json").body(body))
    }

    fn mock_reply(&self, slot: &mut Option<Lease>, content: &str) -> HttpResponse {
        if let Some(lease) = slot.as_mut() {
            lease.succeed(Some(mock::MOCK_USAGE));
        }
        let model = self.upstream_model();
        let mut builder = self.response_builder(StatusCode::OK, &[]);
        self.timing_headers(&mut builder, Duration::ZERO);
        if self.request.stream {
            let events = mock::stream_events(self.op, &model, content, self.client_wants_usage());
            let body =
                futures_util::stream::iter(events.into_iter().map(Ok::<_, actix_web::Error>));
            return builder.content_type("text/event-stream").streaming(body);
        }
        builder.json(mock::reply(self.op, &model, content))
    }

    fn response_builder(
        &self,
        status: StatusCode,
        provider_headers: &[(HeaderName, HeaderValue)],
    ) -> HttpResponseBuilder {
        let d = self.deployment;
        let mut b = HttpResponse::build(status);
        for (name, value) in provider_headers {
            b.insert_header((name.clone(), value.clone()));
        }
        let mut put = |name: &'static str, value: &str| {
            if let Ok(v) = HeaderValue::from_str(value) {
                b.insert_header((HeaderName::from_static(name), v));
            }
        };
        put("x-litellm-model-id", &d.id);
        put("x-litellm-model-api-base", &d.public_api_base);
        put("x-litellm-model-group", &d.model_name);
        put("x-litellm-version", VERSION);
        put("x-litellm-attempted-retries", &self.retries.to_string());
        put("x-litellm-attempted-fallbacks", "0");
        b
    }

    fn timing_headers(&self, b: &mut HttpResponseBuilder, upstream: Duration) {
        let total = self.ctx.started.elapsed();
        let ms = |d: Duration| format!("{:.3}", d.as_secs_f64() * 1000.0);
        b.insert_header(("x-litellm-response-duration-ms", ms(total)));
        b.insert_header((
            "x-litellm-overhead-duration-ms",
            ms(total.saturating_sub(upstream)),
        ));
        let _ = self.ctx.call_id;
    }
}

/// Reshapes a whole reply between chat and completion forms.
fn reshape_body(body: &Bytes, reshape: Reshape) -> Bytes {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return body.clone();
    };
    let out = match reshape {
        Reshape::CompletionFromChat => translate::chat_reply_to_completion(&value),
        Reshape::ChatFromCompletion => translate::completion_reply_to_chat(&value, false),
        Reshape::None => return body.clone(),
    };
    serde_json::to_vec(&out).map_or_else(|_| body.clone(), Bytes::from)
}
