//! The spend journal's figures: groups synced, records per group, time per sync, size, and
//! what could not be journaled.

use std::time::Duration;

use prometheus::{Histogram, HistogramOpts, IntCounter, IntGauge, Registry};

/// Sync times, in seconds: from a page-cache sync to a slow disk.
const SYNC_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// Counters the journal thread updates.
pub struct JournalMetrics {
    syncs: IntCounter,
    records: IntCounter,
    unjournaled: IntCounter,
    errors: IntCounter,
    bytes: IntGauge,
    sync_seconds: Histogram,
}

fn register<T: prometheus::core::Collector + Clone + 'static>(registry: &Registry, m: T) -> T {
    registry
        .register(Box::new(m.clone()))
        .expect("registered once");
    m
}

impl JournalMetrics {
    /// Registers the journal's metrics.
    pub fn new(registry: &Registry) -> Self {
        let counter = |name: &str, help: &str| {
            register(registry, IntCounter::new(name, help).expect("valid metric"))
        };
        Self {
            syncs: counter(
                "llmgate_spend_journal_syncs_total",
                "Groups of spend records written to the journal with one fdatasync",
            ),
            records: counter(
                "llmgate_spend_journal_records_total",
                "Spend records written to the journal",
            ),
            unjournaled: counter(
                "llmgate_spend_journal_unjournaled_total",
                "Spend records kept in memory only: the journal's queue or file was full",
            ),
            errors: counter(
                "llmgate_spend_journal_errors_total",
                "Journal writes or compactions that failed",
            ),
            bytes: register(
                registry,
                IntGauge::new("llmgate_spend_journal_bytes", "The journal file's size")
                    .expect("valid metric"),
            ),
            sync_seconds: register(
                registry,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "llmgate_spend_journal_sync_seconds",
                        "Time to write and fdatasync one group of spend records",
                    )
                    .buckets(SYNC_BUCKETS.to_vec()),
                )
                .expect("valid metric"),
            ),
        }
    }

    /// A group of `records` reached the disk in `took`.
    pub fn synced(&self, records: u64, took: Duration) {
        self.syncs.inc();
        self.records.inc_by(records);
        self.sync_seconds.observe(took.as_secs_f64());
    }

    /// A record was not journaled.
    pub fn unjournaled(&self) {
        self.unjournaled.inc();
    }

    /// A write or compaction failed.
    pub fn error(&self) {
        self.errors.inc();
    }

    /// The file's size now.
    pub fn bytes(&self, len: u64) {
        self.bytes.set(i64::try_from(len).unwrap_or(i64::MAX));
    }
}
