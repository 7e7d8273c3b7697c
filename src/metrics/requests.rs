//! Per-request metrics, counted by the spend actor from each request's spend-log row: requests
//! by model group, key and outcome, tokens, spend, total latency and the gateway's own share
//! of it, and cache hits.

use std::collections::HashMap;
use std::time::Duration;

use prometheus::core::{Collector, MetricVec, MetricVecBuilder};
use prometheus::{CounterVec, HistogramVec, IntCounterVec, Opts, Registry};

use super::{counter, histogram};
use crate::db::models::SpendLogRow;

/// One finished request, as the spend actor sees it.
pub struct RequestRecord<'a> {
    /// Its spend-log row.
    pub row: &'a SpendLogRow,
    /// The key's alias, if it has one.
    pub key_alias: Option<&'a str>,
    /// How long the upstream took to answer its successful attempt.
    pub upstream: Option<Duration>,
}

pub(super) struct RequestMetrics {
    requests: IntCounterVec,
    failed: IntCounterVec,
    input_tokens: IntCounterVec,
    output_tokens: IntCounterVec,
    total_tokens: IntCounterVec,
    spend: CounterVec,
    latency: HistogramVec,
    overhead: HistogramVec,
    cache_hits: IntCounterVec,
}

/// The label naming a key's series (its hash, never the key).
const KEY_LABEL: &str = "hashed_api_key";
const KEY: &[&str] = &["requested_model", "api_key_alias", KEY_LABEL];
const KEY_AND_MODEL: &[&str] = &["requested_model", "model", "api_key_alias", KEY_LABEL];

impl RequestMetrics {
    pub(super) fn new(r: &Registry) -> Self {
        let spend = CounterVec::new(
            Opts::new("litellm_spend_metric", "USD spent"),
            KEY_AND_MODEL,
        )
        .expect("valid metric");
        r.register(Box::new(spend.clone()))
            .expect("registered once");
        Self {
            requests: counter(
                r,
                "litellm_proxy_total_requests_metric",
                "Requests made to the proxy, by outcome (success, failure, cancelled)",
                &[KEY, &["status"]].concat(),
            ),
            failed: counter(
                r,
                "litellm_proxy_failed_requests_metric",
                "Requests that did not get a successful answer",
                KEY,
            ),
            input_tokens: counter(
                r,
                "litellm_input_tokens_metric",
                "Prompt tokens",
                KEY_AND_MODEL,
            ),
            output_tokens: counter(
                r,
                "litellm_output_tokens_metric",
                "Completion tokens",
                KEY_AND_MODEL,
            ),
            total_tokens: counter(
                r,
                "litellm_total_tokens_metric",
                "Prompt and completion tokens",
                KEY_AND_MODEL,
            ),
            spend,
            latency: histogram(
                r,
                "litellm_request_total_latency_metric",
                "Seconds from the request's admission to its end (a stream's last chunk)",
                &["requested_model"],
            ),
            overhead: histogram(
                r,
                "litellm_overhead_latency_metric",
                "Seconds of a successful request not spent waiting on the upstream",
                &["requested_model"],
            ),
            cache_hits: counter(
                r,
                "litellm_cache_hits_metric",
                "Requests answered from the response cache",
                &["requested_model"],
            ),
        }
    }

    pub(super) fn record(&self, r: &RequestRecord<'_>) {
        let row = r.row;
        let group = row.model_group.as_str();
        let key = [group, r.key_alias.unwrap_or(""), row.api_key.as_str()];
        let [_, alias, hash] = key;
        self.requests
            .with_label_values(&[group, alias, hash, row.status.as_str()])
            .inc();
        if row.status == "failure" {
            self.failed.with_label_values(&key).inc();
        }
        let with_model = [group, row.model.as_str(), alias, hash];
        let count = |family: &IntCounterVec, n: i64| {
            if n > 0 {
                family.with_label_values(&with_model).inc_by(n as u64);
            }
        };
        count(&self.input_tokens, row.prompt_tokens);
        count(&self.output_tokens, row.completion_tokens);
        count(&self.total_tokens, row.total_tokens);
        if row.spend > 0.0 {
            self.spend.with_label_values(&with_model).inc_by(row.spend);
        }
        let total = (row.end_time - row.start_time).to_std().unwrap_or_default();
        self.latency
            .with_label_values(&[group])
            .observe(total.as_secs_f64());
        // A cached answer never waited on an upstream: all of its time is the gateway's.
        if let Some(upstream) = r.upstream.or(row.cache_hit.then_some(Duration::ZERO)) {
            let own = total.saturating_sub(upstream);
            self.overhead
                .with_label_values(&[group])
                .observe(own.as_secs_f64());
        }
        if row.cache_hit {
            self.cache_hits.with_label_values(&[group]).inc();
        }
    }

    /// Drops every series of key `hash` (deleted or regenerated), so that key churn does not
    /// grow the registry; returns how many went.
    pub(super) fn forget_key(&self, hash: &str) -> usize {
        forget_series(&self.requests, hash)
            + forget_series(&self.failed, hash)
            + forget_series(&self.input_tokens, hash)
            + forget_series(&self.output_tokens, hash)
            + forget_series(&self.total_tokens, hash)
            + forget_series(&self.spend, hash)
    }
}

/// Removes the series of `family` labelled with key `hash` (a scan: keys go rarely).
fn forget_series<T: MetricVecBuilder>(family: &MetricVec<T>, hash: &str) -> usize {
    let mut removed = 0;
    for collected in family.collect() {
        for series in collected.get_metric() {
            let labels = series.get_label();
            if !labels
                .iter()
                .any(|l| l.name() == KEY_LABEL && l.value() == hash)
            {
                continue;
            }
            let by_name: HashMap<&str, &str> =
                labels.iter().map(|l| (l.name(), l.value())).collect();
            if family.remove(&by_name).is_ok() {
                removed += 1;
            }
        }
    }
    removed
}
