//! Per-deployment metrics: attempts, successes and failures by error class, upstream latency
//! and time to first token (updated by the deployment's actor through handles it keeps), and
//! its live state (set when Prometheus scrapes).

use std::time::Instant;

use prometheus::{Histogram, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Registry};

use super::{counter, gauge, histogram};
use crate::routing::{DeploymentSnapshot, ErrorClass, Failure, FailureClass, Outcome};

/// What names a deployment in its metrics' labels (never its key).
#[derive(Debug, Clone)]
pub struct DeploymentView {
    /// The public model group (`model_name`).
    pub model_group: String,
    /// The upstream model (`litellm_params.model`).
    pub model: String,
    /// Its id.
    pub id: String,
    /// The provider's name.
    pub provider: String,
    /// Its API base, as shown publicly.
    pub api_base: String,
    /// Its rpm and tpm limits, if set.
    pub rpm: Option<u64>,
    /// See `rpm`.
    pub tpm: Option<u64>,
}

impl DeploymentView {
    fn labels(&self) -> [&str; 4] {
        [&self.model, &self.id, &self.provider, &self.model_group]
    }
}

const LABELS: &[&str] = &[
    "litellm_model_name",
    "model_id",
    "api_provider",
    "model_group",
];

pub(super) struct DeploymentFamilies {
    requests: IntCounterVec,
    successes: IntCounterVec,
    failures: IntCounterVec,
    latency: HistogramVec,
    first_token: HistogramVec,
    state: IntGaugeVec,
    in_flight: IntGaugeVec,
    requests_this_minute: IntGaugeVec,
    tokens_this_minute: IntGaugeVec,
    remaining_requests: IntGaugeVec,
    remaining_tokens: IntGaugeVec,
    cooldown_seconds: IntGaugeVec,
}

/// The handles one deployment's actor updates: no label lookup per attempt.
pub struct DeploymentMetrics {
    requests: IntCounter,
    successes: IntCounter,
    failures: IntCounterVec,
    labels: [String; 4],
    latency: Histogram,
    first_token: Histogram,
}

impl DeploymentFamilies {
    pub(super) fn new(r: &Registry) -> Self {
        let with_class = [LABELS, &["exception_class"]].concat();
        Self {
            requests: counter(
                r,
                "litellm_deployment_total_requests",
                "Attempts on the deployment",
                LABELS,
            ),
            successes: counter(
                r,
                "litellm_deployment_success_responses",
                "Attempts the deployment answered",
                LABELS,
            ),
            failures: counter(
                r,
                "litellm_deployment_failure_responses",
                "Attempts that failed upstream, by error class",
                &with_class,
            ),
            latency: histogram(
                r,
                "litellm_llm_api_latency_metric",
                "Seconds the upstream took to answer an attempt",
                LABELS,
            ),
            first_token: histogram(
                r,
                "litellm_llm_api_time_to_first_token_metric",
                "Seconds until a stream's first chunk",
                LABELS,
            ),
            state: gauge(
                r,
                "litellm_deployment_state",
                "0 healthy, 2 cooling down (out of rotation)",
                LABELS,
            ),
            in_flight: gauge(
                r,
                "llmgate_deployment_in_flight",
                "Requests the deployment is serving now",
                LABELS,
            ),
            requests_this_minute: gauge(
                r,
                "llmgate_deployment_rpm_used",
                "Requests started on the deployment in the last 60 s",
                LABELS,
            ),
            tokens_this_minute: gauge(
                r,
                "llmgate_deployment_tpm_used",
                "Tokens used (or reserved) on the deployment in the last 60 s",
                LABELS,
            ),
            remaining_requests: gauge(
                r,
                "litellm_remaining_requests_metric",
                "Requests left under the deployment's rpm this minute",
                LABELS,
            ),
            remaining_tokens: gauge(
                r,
                "litellm_remaining_tokens_metric",
                "Tokens left under the deployment's tpm this minute",
                LABELS,
            ),
            cooldown_seconds: gauge(
                r,
                "llmgate_deployment_cooldown_seconds",
                "Seconds left of the deployment's cooldown (0 when not cooling down)",
                LABELS,
            ),
        }
    }

    pub(super) fn handles(&self, view: &DeploymentView) -> DeploymentMetrics {
        let labels = view.labels();
        DeploymentMetrics {
            requests: self.requests.with_label_values(&labels),
            successes: self.successes.with_label_values(&labels),
            failures: self.failures.clone(),
            labels: labels.map(str::to_owned),
            latency: self.latency.with_label_values(&labels),
            first_token: self.first_token.with_label_values(&labels),
        }
    }

    pub(super) fn forget(&self, view: &DeploymentView) {
        let labels = view.labels();
        for family in [&self.requests, &self.successes] {
            let _ = family.remove_label_values(&labels);
        }
        for family in [&self.latency, &self.first_token] {
            let _ = family.remove_label_values(&labels);
        }
        for family in [
            &self.state,
            &self.in_flight,
            &self.requests_this_minute,
            &self.tokens_this_minute,
            &self.remaining_requests,
            &self.remaining_tokens,
            &self.cooldown_seconds,
        ] {
            let _ = family.remove_label_values(&labels);
        }
        // Failures carry one more label: drop the series of every exception class.
        let [a, b, c, d] = labels;
        for class in EXCEPTION_CLASSES {
            let _ = self.failures.remove_label_values(&[a, b, c, d, class]);
        }
    }

    pub(super) fn set_state(&self, view: &DeploymentView, s: &DeploymentSnapshot, now: Instant) {
        let labels = view.labels();
        let cooling = s.cooling_until.filter(|&until| until > now);
        self.state
            .with_label_values(&labels)
            .set(if cooling.is_some() { 2 } else { 0 });
        self.cooldown_seconds
            .with_label_values(&labels)
            .set(cooling.map_or(0, |until| {
                until.duration_since(now).as_secs_f64().ceil() as i64
            }));
        self.in_flight
            .with_label_values(&labels)
            .set(i64::from(s.in_flight));
        self.requests_this_minute
            .with_label_values(&labels)
            .set(s.requests_this_minute as i64);
        self.tokens_this_minute
            .with_label_values(&labels)
            .set(s.tokens_this_minute as i64);
        if let Some(rpm) = view.rpm {
            let left = rpm.saturating_sub(s.requests_this_minute);
            self.remaining_requests
                .with_label_values(&labels)
                .set(left as i64);
        }
        if let Some(tpm) = view.tpm {
            let left = tpm.saturating_sub(s.tokens_this_minute);
            self.remaining_tokens
                .with_label_values(&labels)
                .set(left as i64);
        }
    }
}

impl DeploymentMetrics {
    /// Counts an attempt that ended with `outcome`.
    pub fn attempt(&self, outcome: &Outcome) {
        match outcome {
            Outcome::Success {
                latency,
                first_token,
                ..
            } => {
                self.requests.inc();
                self.successes.inc();
                self.latency.observe(latency.as_secs_f64());
                if let Some(t) = first_token {
                    self.first_token.observe(t.as_secs_f64());
                }
            }
            Outcome::Failure { failure, .. } => {
                self.requests.inc();
                let [a, b, c, d] = &self.labels;
                self.failures
                    .with_label_values(&[a, b, c, d, exception_class(failure)])
                    .inc();
            }
            // The client left: the attempt counts, with no verdict.
            Outcome::Released => self.requests.inc(),
            Outcome::Withdrawn => {}
        }
    }
}

/// Every name `exception_class` gives.
const EXCEPTION_CLASSES: [&str; 8] = [
    "BadRequestError",
    "AuthenticationError",
    "Timeout",
    "RateLimitError",
    "ContentPolicyViolationError",
    "APIConnectionError",
    "InternalServerError",
    "APIError",
];

/// LiteLLM's name for the exception a failure raises.
fn exception_class(failure: &Failure) -> &'static str {
    match (failure.error, failure.class) {
        (Some(ErrorClass::BadRequest), _) => "BadRequestError",
        (Some(ErrorClass::Authentication), _) => "AuthenticationError",
        (Some(ErrorClass::Timeout), _) => "Timeout",
        (Some(ErrorClass::RateLimit), _) => "RateLimitError",
        (Some(ErrorClass::ContentPolicyViolation), _) => "ContentPolicyViolationError",
        (Some(ErrorClass::InternalServer), FailureClass::Connection) => "APIConnectionError",
        (Some(ErrorClass::InternalServer), _) => "InternalServerError",
        (None, FailureClass::RateLimited) => "RateLimitError",
        (None, FailureClass::Connection) => "APIConnectionError",
        (None, FailureClass::ClientError) => "BadRequestError",
        (None, FailureClass::Unhealthy) => "APIError",
    }
}
