//! Counters of what each logging callback sent, dropped and failed, for the metrics.

use std::sync::atomic::{AtomicU64, Ordering};

/// One callback's counters; each event counts once per callback that takes it.
#[derive(Debug)]
pub struct SinkStats {
    /// The callback's name (`langfuse`, `generic_api`).
    pub name: &'static str,
    /// Events the receiver accepted.
    pub sent: AtomicU64,
    /// Events never queued: the queue was full.
    pub dropped: AtomicU64,
    /// Events given up on: refused by the receiver, or still failing after the last retry.
    pub failed: AtomicU64,
}

impl SinkStats {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            sent: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        }
    }
}

/// Every callback's counters, in config order (empty when no callback is on).
#[derive(Debug, Default)]
pub struct CallbackStats {
    sinks: Vec<SinkStats>,
}

/// Totals over every callback.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Events accepted.
    pub sent: u64,
    /// Events dropped on a full queue.
    pub dropped: u64,
    /// Events given up on.
    pub failed: u64,
}

impl CallbackStats {
    /// Counters for callbacks with these names.
    pub fn new(names: impl IntoIterator<Item = &'static str>) -> Self {
        Self {
            sinks: names.into_iter().map(SinkStats::new).collect(),
        }
    }

    /// Each callback's counters.
    pub fn sinks(&self) -> &[SinkStats] {
        &self.sinks
    }

    /// The counters of the callback at `index`.
    pub(super) fn sink(&self, index: usize) -> Option<&SinkStats> {
        self.sinks.get(index)
    }

    /// Sums over every callback.
    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for s in &self.sinks {
            t.sent += s.sent.load(Ordering::Relaxed);
            t.dropped += s.dropped.load(Ordering::Relaxed);
            t.failed += s.failed.load(Ordering::Relaxed);
        }
        t
    }
}

/// Adds `n` to `counter`.
pub(super) fn add(counter: &AtomicU64, n: usize) {
    counter.fetch_add(n as u64, Ordering::Relaxed);
}
