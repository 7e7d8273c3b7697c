//! One try of a request on one deployment: mock or upstream call, reply or relay, headers,
//! and the request's charge.

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, HttpResponseBuilder};
use bytes::Bytes;

use super::cached;
use super::model_request::ModelRequest;
use super::pipeline::{Call, VERSION};
use super::shared_limits::{Begun, Shared};
use crate::actors::{Charge, Lease};
use crate::config::Deployment;
use crate::keys::Admission;
use crate::pricing;
use crate::providers::request::{DropPolicy, Reshape};
use crate::providers::stream::{RelayOptions, SseRelay};
use crate::providers::{
    client, mock, translate, ErrorKind, Operation, ProviderError, ProviderKind, Usage,
};
use crate::responses::wire::{Asker, Wire};
use crate::shared::Remaining;

/// One try on one deployment.
pub struct Attempt<'a> {
    /// The request's shared context.
    pub ctx: &'a Call<'a>,
    /// Chat, completion or embedding.
    pub op: Operation,
    /// The parsed request.
    pub request: &'a ModelRequest,
    /// Where it goes.
    pub deployment: &'a Deployment,
    /// What a wildcard group matched.
    pub wildcard: Option<&'a str>,
    /// Retries so far.
    pub retries: u32,
    /// Fallbacks so far.
    pub fallbacks: u32,
    /// The key's admission, if a key was admitted.
    pub admission: Option<&'a Admission>,
    /// Redis's verdict, when the request goes upstream before it is in.
    pub gate: Gate,
}

/// A verdict from Redis still on its way while the request goes upstream: the answer waits
/// for it, and a refusal drops the upstream call.
#[derive(Default)]
pub struct Gate {
    begun: RefCell<Option<Begun>>,
    refused: RefCell<Option<Shared>>,
    remaining: Cell<Option<Remaining>>,
}

impl Gate {
    /// A gate on `begun`'s verdict.
    pub fn new(begun: Begun) -> Self {
        Self {
            begun: RefCell::new(Some(begun)),
            ..Self::default()
        }
    }

    /// What the verdict decided, when it did not let the request through.
    pub fn refusal(&self) -> Option<Shared> {
        self.refused.borrow_mut().take()
    }

    fn is_open(&self) -> bool {
        self.begun.borrow().is_none()
    }
}

/// The price of `usage` at `deployment` for `model`.
fn cost_of(deployment: &Deployment, model: &str, usage: Usage) -> f64 {
    deployment.price_for(model).map_or(0.0, |p| {
        pricing::cost(p, usage.prompt_tokens, usage.completion_tokens)
    })
}

impl Attempt<'_> {
    /// What to do with fields the deployment cannot take: the request's `drop_params` wins over
    /// the deployment's, which wins over the global one; `additional_drop_params` from both
    /// (gathered in `never` when both have some) are never sent.
    pub(super) fn drop_policy<'s>(&'s self, never: &'s mut Vec<String>) -> DropPolicy<'s> {
        let d = self.deployment;
        let settings = &self.ctx.state.settings;
        let always = if d.additional_drop_params.is_empty() {
            &self.request.gateway.additional_drop_params
        } else {
            never.clone_from(&d.additional_drop_params);
            never.extend(self.request.gateway.additional_drop_params.iter().cloned());
            &*never
        };
        DropPolicy {
            unsupported: self
                .request
                .gateway
                .drop_params
                .or(d.drop_params)
                .unwrap_or(settings.drop_params),
            always,
            functions_to_prompt: settings.add_function_to_prompt,
        }
    }

    pub(super) fn whole_timeout(&self) -> Duration {
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

    /// Runs the attempt. The lease is reported failed, succeeded, or (when the client leaves
    /// mid-stream) released; on success the charge is spent (or travels with the stream).
    pub async fn run(
        &self,
        lease: Lease,
        charge: &mut Option<Charge>,
    ) -> Result<HttpResponse, ProviderError> {
        let mut slot = Some(lease);
        let mut result = self.call(&mut slot, charge).await;
        if !self.gate.is_open() {
            // The call ended before it reached the gate: the verdict still counts.
            if let Err(refused) = self.pass_gate(&mut slot, charge).await {
                result = Err(refused);
            }
        }
        if self.gate.refused.borrow().is_some() {
            return result;
        }
        if let (Err(err), Some(lease)) = (&result, slot.as_mut()) {
            lease.fail(err);
        }
        result
    }

    /// Waits for Redis's verdict, if one is on its way, and applies it; `Err` when it refused
    /// (the refusal is kept for `Gate::refusal`).
    pub(super) async fn pass_gate(
        &self,
        slot: &mut Option<Lease>,
        charge: &mut Option<Charge>,
    ) -> Result<(), ProviderError> {
        let begun = self.gate.begun.borrow_mut().take();
        let (Some(begun), Some(lease)) = (begun, slot.as_mut()) else {
            return Ok(());
        };
        match begun.finish(charge, lease).await {
            Shared::Go { remaining } => {
                self.gate.remaining.set(remaining);
                Ok(())
            }
            refused => {
                *self.gate.refused.borrow_mut() = Some(refused);
                Err(ProviderError::connection(
                    self.deployment.provider,
                    "refused by the limits held in redis",
                ))
            }
        }
    }

    async fn call(
        &self,
        slot: &mut Option<Lease>,
        charge: &mut Option<Charge>,
    ) -> Result<HttpResponse, ProviderError> {
        let d = self.deployment;
        let model = self.upstream_model();
        let mock_value = self
            .request
            .gateway
            .mock_response
            .as_deref()
            .or(d.mock_response.as_deref());
        let upstream = !self.request.gateway.mock_timeout
            && mock_value.is_none()
            && !matches!(d.provider, ProviderKind::NotYet(_));
        if !upstream {
            // Nothing goes upstream to overlap with the verdict: it comes first.
            self.pass_gate(slot, charge).await?;
        }
        if let Some(c) = charge.as_mut() {
            c.serving(d, &model);
        }
        if self.request.gateway.mock_timeout {
            let after = self.whole_timeout();
            actix_rt::time::sleep(after).await;
            return Err(mock::timeout_error(after));
        }
        // A Responses request goes natively or as chat, by the deployment (`Plain` otherwise).
        let asker = Asker {
            owner: self.admission.map(|a| a.record.row.token.as_str()),
            store: &self.ctx.state.responses,
            settings: &self.ctx.state.settings,
        };
        let mut wire = Wire::plan(self.op, d, self.request, asker, mock_value.is_some())?;
        if let Some(value) = mock_value {
            return match mock::interpret(value) {
                mock::Mock::Fail(err) => Err(err),
                mock::Mock::Reply(content) if self.op.is_media() => {
                    Ok(self.media_mock(slot, charge, &model, content).await)
                }
                mock::Mock::Reply(content) => {
                    Ok(self.mock_reply(slot, charge, &model, content, wire).await)
                }
            };
        }
        if let ProviderKind::NotYet(name) = d.provider {
            return Err(ProviderError {
                status: 400,
                kind: ErrorKind::Status,
                message: format!(
                    "llmgate does not support the {name} provider yet (deployment {})",
                    d.id
                ),
                upstream_type: Some("invalid_request_error".into()),
                param: Some("model".into()),
                retry_after: None,
            });
        }
        if self.op.is_media() {
            return self.media_upstream(slot, charge, &model).await;
        }
        let stream = self.request.stream;
        let settings = &self.ctx.state.settings;
        let mut never = Vec::new();
        let drop = self.drop_policy(&mut never);
        let call = wire.prepare(self.op, d, &model, &self.request.fields, stream, &drop)?;
        log::debug!(
            "calling {} at {} for {} (deployment {})",
            d.provider.name(),
            d.public_api_base,
            d.model_name,
            d.id
        );
        let whole = self.whole_timeout();
        let first_byte = if stream {
            self.request
                .gateway
                .stream_timeout
                .or(d.stream_timeout)
                .or(settings.stream_timeout)
                .unwrap_or(whole)
                .min(whole)
        } else {
            whole
        };
        let max_body = settings.max_request_size.max(32 * 1024 * 1024);
        let upstream_started = Instant::now();
        // Vertex AI takes a service account's OAuth token, fetched (or cached) before the call.
        let bearer = self
            .ctx
            .state
            .vertex_tokens
            .bearer_for(self.ctx.http, d, first_byte)
            .await?;
        let extra: Vec<(&str, &str)> = bearer
            .as_deref()
            .map(|b| ("authorization", b))
            .into_iter()
            .collect();
        let mut reply =
            client::send_with(self.ctx.http, d, &call, &extra, first_byte, max_body).await?;
        self.pass_gate(slot, charge).await?;
        let mut builder = self.response_builder(StatusCode::OK, &reply.provider_headers);
        if stream {
            let fields = wire.fields(&self.request.fields).clone();
            let counted = call.prompt_tokens;
            let price = d.price_for(&model);
            let options = RelayOptions {
                // A native Responses stream carries its usage in its own last event.
                client_wants_usage: self.client_wants_usage() && !wire.is_native(),
                reshape: call.reshape,
                deadline: whole.saturating_sub(upstream_started.elapsed()),
                provider: d.provider,
                dialect: wire.dialect(d, &model, call.prompt_tokens),
                prompt_tokens: Box::new(move || {
                    counted.unwrap_or_else(|| crate::tokens::prompt_tokens(&fields))
                }),
                price,
                charge: charge.take(),
                tap: cached::stream_tap(self.ctx.state, self.request, self.fallbacks, self.op),
            };
            let Some(lease) = slot.take() else {
                return Err(ProviderError::connection(d.provider, "lease already used"));
            };
            let relay = SseRelay::new(reply.body, lease, options);
            self.timing_headers(&mut builder, upstream_started.elapsed());
            return Ok(builder
                .content_type("text/event-stream")
                .streaming(wire.stream(relay, &model)));
        }
        let remaining = whole.saturating_sub(upstream_started.elapsed());
        let mut body = client::read_all(&mut reply.body, d.provider, remaining, max_body).await?;
        // Bedrock's Titan embeds one text per call: the other inputs follow one by one.
        let fields = &self.request.fields;
        for more in crate::providers::bedrock::titan_follow_ups(d, &model, fields, &call) {
            let remaining = whole.saturating_sub(upstream_started.elapsed());
            let mut next =
                client::send_with(self.ctx.http, d, &more, &extra, remaining, max_body).await?;
            let next = client::read_all(&mut next.body, d.provider, remaining, max_body).await?;
            body = crate::providers::bedrock::merge_titan(&body, &next);
        }
        let of = crate::providers::ReplyOf {
            op: wire.op(self.op),
            model: &model,
            fields: &self.request.fields,
            prompt_tokens: call.prompt_tokens,
        };
        let body = crate::providers::openai_reply(d.provider, &of, body)?;
        let (body, usage) = wire.read_reply(body, d)?;
        if let Some(lease) = slot.as_mut() {
            lease.succeed(usage);
            if let Some(c) = charge.as_mut() {
                c.upstream_took(lease.elapsed());
            }
        }
        let body = match call.reshape {
            Reshape::None => body,
            reshape => reshape_body(&body, reshape),
        };
        let body = if self.op == Operation::Embedding && self.wants_base64() {
            translate::embeddings_as_base64(&body).unwrap_or(body)
        } else {
            wire.finish_reply(body)
        };
        let usage = usage.unwrap_or_default();
        self.remember(&body, usage);
        let cost = cost_of(d, &model, usage);
        self.spend_headers(&mut builder, cost);
        if let Some(mut c) = charge.take() {
            c.capture_reply(|| serde_json::from_slice(&body).ok());
            // The answer is sent only once its spend is in the journal on disk.
            c.succeed(usage, cost).await;
        }
        self.timing_headers(&mut builder, upstream_started.elapsed());
        Ok(builder.content_type("application/json").body(body))
    }

    async fn mock_reply(
        &self,
        slot: &mut Option<Lease>,
        charge: &mut Option<Charge>,
        model: &str,
        content: &str,
        mut wire: Wire<'_>,
    ) -> HttpResponse {
        if let Some(lease) = slot.as_mut() {
            lease.succeed(Some(mock::MOCK_USAGE));
        }
        let cost = cost_of(self.deployment, model, mock::MOCK_USAGE);
        let mut builder = self.response_builder(StatusCode::OK, &[]);
        self.timing_headers(&mut builder, Duration::ZERO);
        if let Some(mut c) = charge.take() {
            c.capture_reply(|| Some(mock::reply(self.op, model, content)));
            // The whole reply is known: it goes out once its spend is durable.
            c.succeed(mock::MOCK_USAGE, cost).await;
        }
        if self.request.stream {
            let events = mock::stream_events(
                self.op,
                model,
                content,
                self.client_wants_usage().then_some(cost),
            );
            if self.request.cache_store.is_some() {
                if let Ok(reply) = serde_json::to_vec(&mock::reply(self.op, model, content)) {
                    self.remember(&reply.into(), mock::MOCK_USAGE);
                }
            }
            let body =
                futures_util::stream::iter(events.into_iter().map(Ok::<_, actix_web::Error>));
            return builder
                .content_type("text/event-stream")
                .streaming(wire.stream(body, model));
        }
        self.spend_headers(&mut builder, cost);
        let reply = serde_json::to_vec(&mock::reply(self.op, model, content)).unwrap_or_default();
        let reply = wire.finish_reply(Bytes::from(reply));
        self.remember(&reply, mock::MOCK_USAGE);
        builder.content_type("application/json").body(reply)
    }

    /// Keeps a whole reply in the response cache when the request is to be cached.
    fn remember(&self, body: &Bytes, usage: Usage) {
        cached::remember(self.ctx.state, self.request, self.fallbacks, body, usage);
    }

    pub(super) fn response_builder(
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
        put("x-litellm-attempted-fallbacks", &self.fallbacks.to_string());
        if let Some(a) = self.admission {
            // Redis's counts, when it counted this request after the attempt began.
            let counted = self.gate.remaining.get().unwrap_or_default();
            if let Some((limit, remaining)) = counted.requests.or(a.requests) {
                put("x-ratelimit-limit-requests", &limit.to_string());
                put("x-ratelimit-remaining-requests", &remaining.to_string());
            }
            if let Some((limit, remaining)) = counted.tokens.or(a.tokens) {
                put("x-ratelimit-limit-tokens", &limit.to_string());
                put("x-ratelimit-remaining-tokens", &remaining.to_string());
            }
        }
        b
    }

    /// `x-litellm-response-cost` and, for a key, `x-litellm-key-spend` (spend including this).
    pub(super) fn spend_headers(&self, b: &mut HttpResponseBuilder, cost: f64) {
        b.insert_header(("x-litellm-response-cost", cost.to_string()));
        if let Some(a) = self.admission {
            b.insert_header(("x-litellm-key-spend", (a.spend + cost).to_string()));
        }
    }

    pub(super) fn timing_headers(&self, b: &mut HttpResponseBuilder, upstream: Duration) {
        let total = self.ctx.started.elapsed();
        let ms = |d: Duration| format!("{:.3}", d.as_secs_f64() * 1000.0);
        b.insert_header(("x-litellm-response-duration-ms", ms(total)));
        b.insert_header((
            "x-litellm-overhead-duration-ms",
            ms(total.saturating_sub(upstream)),
        ));
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
