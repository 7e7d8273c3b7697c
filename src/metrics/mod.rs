//! Prometheus metrics for `GET /metrics`, under LiteLLM's names where it has one (so its
//! dashboards keep working) and `llmgate_` otherwise. Counters and histograms are atomics,
//! updated off the request path: per request by the spend actor, per attempt by each
//! deployment actor. Deployment state and the health of Redis and the database are read when
//! Prometheus scrapes.

mod deployments;
mod journal;
mod requests;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

pub use deployments::{DeploymentMetrics, DeploymentView};
pub use journal::JournalMetrics;
pub use requests::RequestRecord;

/// Latency buckets, in seconds: from a cache hit to a long generation.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 120.0, 300.0,
];

/// Every metric, registered once at startup; cheap to share (`Arc`).
pub struct Metrics {
    registry: Registry,
    requests: requests::RequestMetrics,
    deployments: deployments::DeploymentFamilies,
    /// Spend-log rows buffered, not yet written.
    pub spend_buffer_rows: IntGauge,
    /// Spend writes that failed (each retried later).
    pub spend_flush_failures: IntCounter,
    /// The spend journal's figures.
    pub spend_journal: std::sync::Arc<JournalMetrics>,
    redis_up: IntGauge,
    database_up: IntGauge,
    callback_events: IntCounterVec,
    callback_queue: IntGauge,
    /// Two scrapes at once bring the callback counters up to date one after the other.
    callback_sync: std::sync::Mutex<()>,
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let family = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry
        .register(Box::new(family.clone()))
        .expect("registered once");
    family
}

fn gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let family = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry
        .register(Box::new(family.clone()))
        .expect("registered once");
    family
}

fn histogram(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec());
    let family = HistogramVec::new(opts, labels).expect("valid metric");
    registry
        .register(Box::new(family.clone()))
        .expect("registered once");
    family
}

fn single_gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("valid metric");
    registry
        .register(Box::new(g.clone()))
        .expect("registered once");
    g
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests = requests::RequestMetrics::new(&registry);
        let deployments = deployments::DeploymentFamilies::new(&registry);
        let spend_flush_failures = IntCounter::new(
            "llmgate_spend_flush_failures_total",
            "Spend writes that failed",
        )
        .expect("valid metric");
        registry
            .register(Box::new(spend_flush_failures.clone()))
            .expect("registered once");
        Self {
            spend_buffer_rows: single_gauge(
                &registry,
                "llmgate_spend_buffer_rows",
                "Spend-log rows waiting to be written to the database",
            ),
            spend_flush_failures,
            spend_journal: std::sync::Arc::new(JournalMetrics::new(&registry)),
            redis_up: single_gauge(
                &registry,
                "llmgate_redis_up",
                "1 when Redis answers (or is not configured: -1), else 0",
            ),
            database_up: single_gauge(
                &registry,
                "llmgate_database_up",
                "1 when the database answers, else 0",
            ),
            callback_events: counter(
                &registry,
                "llmgate_callback_events_total",
                "Logging-callback events by callback and outcome (sent, dropped, failed)",
                &["callback", "outcome"],
            ),
            callback_queue: single_gauge(
                &registry,
                "llmgate_callback_queue",
                "Logging-callback events waiting to be sent",
            ),
            callback_sync: std::sync::Mutex::new(()),
            registry,
            requests,
            deployments,
        }
    }

    /// Brings the logging callbacks' counters up to date (their own atomics are the source).
    pub fn callbacks(&self, stats: &crate::callbacks::CallbackStats, queued: usize) {
        use std::sync::atomic::Ordering::Relaxed;
        let _one_at_a_time = self
            .callback_sync
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for sink in stats.sinks() {
            for (outcome, count) in [
                ("sent", &sink.sent),
                ("dropped", &sink.dropped),
                ("failed", &sink.failed),
            ] {
                let counter = self
                    .callback_events
                    .with_label_values(&[sink.name, outcome]);
                let now = count.load(Relaxed);
                counter.inc_by(now.saturating_sub(counter.get()));
            }
        }
        self.callback_queue.set(queued as i64);
    }

    /// Counts one finished request (called by the spend actor).
    pub fn request(&self, record: &RequestRecord<'_>) {
        self.requests.record(record);
    }

    /// Drops the series of a deleted or regenerated key (its hash); returns how many went.
    pub fn forget_key(&self, hash: &str) -> usize {
        self.requests.forget_key(hash)
    }

    /// The handles deployment `view` updates on each attempt.
    pub fn deployment(&self, view: &DeploymentView) -> DeploymentMetrics {
        self.deployments.handles(view)
    }

    /// Drops the series of a deployment removed at runtime (`/model/delete`), so model churn
    /// does not grow `/metrics`.
    pub fn forget_deployment(&self, view: &DeploymentView) {
        self.deployments.forget(view);
    }

    /// The text Prometheus scrapes, after setting the gauges read now: each deployment's
    /// state, and whether Redis (`None`: not configured) and the database answer.
    pub fn render(
        &self,
        deployments: &[(DeploymentView, crate::routing::DeploymentSnapshot)],
        redis_up: Option<bool>,
        database_up: bool,
    ) -> String {
        let now = std::time::Instant::now();
        for (view, snapshot) in deployments {
            self.deployments.set_state(view, snapshot, now);
        }
        self.redis_up.set(redis_up.map_or(-1, i64::from));
        self.database_up.set(i64::from(database_up));
        let mut out = Vec::with_capacity(16 * 1024);
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            log::warn!("metrics could not be written: {e}");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// The content type of the Prometheus text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
