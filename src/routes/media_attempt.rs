//! One try of an images, audio, moderation or rerank request on one deployment: the upstream
//! call (speech streamed through as it arrives) or its mock, priced per unit, and its charge.

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, HttpResponseBuilder};
use bytes::Bytes;
use serde_json::Value as Json;

use super::attempt::Attempt;
use crate::actors::{Charge, Lease};
use crate::providers::media::{self, mock, relay::BinaryRelay};
use crate::providers::{client, Operation, ProviderError};
use crate::unit_pricing::{self, Metered, UnitPrices};

/// A whole reply, ready to answer with.
struct Whole<'a> {
    content_type: &'a str,
    body: Bytes,
    /// What the call used.
    metered: Metered,
    /// How long the upstream took.
    upstream: Duration,
}

impl Attempt<'_> {
    /// The per-unit prices of this call: for images, those of the request's size and quality
    /// (a per-image or per-pixel price in the deployment's config wins).
    fn unit_prices(&self, model: &str) -> UnitPrices {
        let d = self.deployment;
        let units = d.units_for(model);
        if self.op != Operation::ImageGeneration {
            return units;
        }
        let configured = UnitPrices::configured(&d.public_params, &d.model_info);
        if configured.has_image_price() {
            return configured;
        }
        let field = |k: &str| self.request.fields.get(k).and_then(Json::as_str);
        let (provider, name) = d.priced_as(model);
        // OpenAI's default size, as `media::request_measures` counts the pixels.
        let size = field("size").or(Some("1024x1024"));
        unit_pricing::image_prices(provider, name, size, field("quality"), units)
    }

    /// What the request itself tells of its cost, tokens counted only when they are priced.
    fn request_measures(&self, model: &str, units: &UnitPrices) -> Metered {
        let priced = self
            .deployment
            .price_for(model)
            .is_some_and(|p| p.input_cost_per_token > 0.0);
        let count = match self.op {
            Operation::Speech => priced && units.input_cost_per_character.is_none(),
            Operation::Moderation => priced,
            _ => false,
        };
        media::request_measures(self.op, &self.request.fields, count)
    }

    /// Answers with a whole reply: the lease and the charge are settled (the answer waits until
    /// its spend is durable), with the cost and timing headers.
    async fn settle_whole(
        &self,
        slot: &mut Option<Lease>,
        charge: &mut Option<Charge>,
        model: &str,
        mut builder: HttpResponseBuilder,
        whole: Whole<'_>,
    ) -> HttpResponse {
        let metered = whole.metered;
        let units = self.unit_prices(model);
        let cost = unit_pricing::cost(self.op, &units, self.deployment.price_for(model), &metered);
        if let Some(lease) = slot.as_mut() {
            lease.succeed(Some(metered.usage));
            if let Some(c) = charge.as_mut() {
                c.upstream_took(lease.elapsed());
            }
        }
        self.spend_headers(&mut builder, cost);
        if let Some(mut c) = charge.take() {
            c.capture_reply(|| serde_json::from_slice(&whole.body).ok());
            c.succeed(metered.usage, cost).await;
        }
        self.timing_headers(&mut builder, whole.upstream);
        builder.content_type(whole.content_type).body(whole.body)
    }

    /// A `mock_response` reply in the route's shape, priced as the real one would be.
    pub(super) async fn media_mock(
        &self,
        slot: &mut Option<Lease>,
        charge: &mut Option<Charge>,
        model: &str,
        content: &str,
    ) -> HttpResponse {
        let fields = &self.request.fields;
        let units = self.unit_prices(model);
        let mut m = self.request_measures(model, &units);
        let builder = self.response_builder(StatusCode::OK, &[]);
        let (content_type, body): (&str, Bytes) = match self.op {
            Operation::Speech => mock::speech(fields),
            Operation::Transcription | Operation::Translation => {
                let seconds = self.request.upload.as_ref().and_then(mock::wav_seconds);
                m.seconds = seconds.unwrap_or(0.0);
                match mock::transcript_text(content, fields, seconds) {
                    Some((ct, text)) => (ct, Bytes::from(text)),
                    None => {
                        let reply = mock::transcript(self.op, content, fields, seconds);
                        (
                            "application/json",
                            Bytes::from(serde_json::to_vec(&reply).unwrap_or_default()),
                        )
                    }
                }
            }
            op => {
                if op == Operation::Rerank {
                    m.search_units = 1;
                }
                let reply = mock::reply(op, model, content, fields);
                (
                    "application/json",
                    Bytes::from(serde_json::to_vec(&reply).unwrap_or_default()),
                )
            }
        };
        let whole = Whole {
            content_type,
            body,
            metered: m,
            upstream: Duration::ZERO,
        };
        self.settle_whole(slot, charge, model, builder, whole).await
    }

    /// The upstream call: the reply read whole (a transcript as the upstream wrote it, JSON or
    /// text), or speech's audio streamed through with the upstream's content type.
    pub(super) async fn media_upstream(
        &self,
        slot: &mut Option<Lease>,
        charge: &mut Option<Charge>,
        model: &str,
    ) -> Result<HttpResponse, ProviderError> {
        let d = self.deployment;
        let settings = &self.ctx.state.settings;
        let mut never = Vec::new();
        let drop = self.drop_policy(&mut never);
        let fields = &self.request.fields;
        let call = media::prepare(
            self.op,
            d,
            model,
            fields,
            self.request.upload.as_ref(),
            &drop,
        )?;
        log::debug!(
            "calling {} {} at {} for {} (deployment {})",
            d.provider.name(),
            self.op.route(),
            d.public_api_base,
            d.model_name,
            d.id
        );
        let whole = self.whole_timeout();
        let max_body = settings.max_request_size.max(32 * 1024 * 1024);
        let started = Instant::now();
        // A form's content type (with its boundary) replaces the JSON one.
        let extra: Vec<(&str, &str)> = call
            .content_type
            .as_deref()
            .map(|ct| ("content-type", ct))
            .into_iter()
            .collect();
        let mut reply =
            client::send_with(self.ctx.http, d, &call.call, &extra, whole, max_body).await?;
        self.pass_gate(slot, charge).await?;
        let upstream_type = reply
            .provider_headers
            .iter()
            .find(|(name, _)| name.as_str() == "llm_provider-content-type")
            .and_then(|(_, v)| v.to_str().ok())
            .map(str::to_owned);
        let mut builder = self.response_builder(StatusCode::OK, &reply.provider_headers);
        let units = self.unit_prices(model);
        if self.op == Operation::Speech {
            let m = self.request_measures(model, &units);
            let cost = unit_pricing::cost(self.op, &units, d.price_for(model), &m);
            self.spend_headers(&mut builder, cost);
            self.timing_headers(&mut builder, started.elapsed());
            let Some(lease) = slot.take() else {
                return Err(ProviderError::connection(d.provider, "lease already used"));
            };
            let left = whole.saturating_sub(started.elapsed());
            let relay = BinaryRelay::new(
                reply.body,
                d.provider,
                left,
                lease,
                charge.take(),
                (m.usage, cost),
            );
            let content_type = upstream_type.as_deref().unwrap_or("audio/mpeg");
            return Ok(builder.content_type(content_type).streaming(relay));
        }
        let left = whole.saturating_sub(started.elapsed());
        let body = client::read_all(&mut reply.body, d.provider, left, max_body).await?;
        let json = upstream_type
            .as_deref()
            .is_none_or(|ct| ct.contains("json"));
        let (body, replied) = media::read_reply(self.op, d.provider, fields, body, json)?;
        let mut m = self.request_measures(model, &units);
        // The reply's counts win over the request's (images made, seconds heard, tokens).
        if replied.images > 0 || self.op == Operation::ImageGeneration {
            m.images = replied.images;
        }
        m.seconds = replied.seconds;
        m.search_units = replied.search_units;
        if replied.usage.total_tokens > 0 {
            m.usage = replied.usage;
        }
        let content_type = if json {
            "application/json".to_owned()
        } else {
            upstream_type.unwrap_or_else(|| "text/plain; charset=utf-8".to_owned())
        };
        let whole = Whole {
            content_type: &content_type,
            body,
            metered: m,
            upstream: started.elapsed(),
        };
        Ok(self.settle_whole(slot, charge, model, builder, whole).await)
    }
}
