//! `Outbox`: one callback's events waiting to be sent, in batches, a few batches in flight at
//! once, a failed batch retried with backoff a bounded number of times (and nothing new sent
//! while the receiver is failing). Plain logic, `now` passed in.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// When batches go and how often a failed one is tried again.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Events per batch at most; a full batch goes at once.
    pub batch: usize,
    /// How long the oldest waiting event waits for others.
    pub every: Duration,
    /// Batches in flight at once at most.
    pub parallel: usize,
    /// Tries of one batch, the first included.
    pub attempts: u32,
    /// The wait after the first failure, doubled after each further one.
    pub backoff: Duration,
}

/// A batch on its way.
#[derive(Debug)]
pub struct Batch<T> {
    /// Its events.
    pub items: Vec<T>,
    /// Tries before this one.
    pub tried: u32,
}

#[derive(Debug)]
struct Retry<T> {
    batch: Batch<T>,
    at: Instant,
}

/// One callback's queue.
#[derive(Debug)]
pub struct Outbox<T> {
    policy: Policy,
    waiting: VecDeque<T>,
    since: Option<Instant>,
    retries: Vec<Retry<T>>,
    in_flight: usize,
}

impl<T> Outbox<T> {
    /// An empty outbox.
    pub fn new(policy: Policy) -> Self {
        Self {
            policy,
            waiting: VecDeque::new(),
            since: None,
            retries: Vec::new(),
            in_flight: 0,
        }
    }

    /// Queues an event that arrived at `now`.
    pub fn push(&mut self, item: T, now: Instant) {
        if self.waiting.is_empty() {
            self.since = Some(now);
        }
        self.waiting.push_back(item);
    }

    /// A batch to send now, if one is due and fewer than `parallel` are in flight: a failed
    /// batch once its backoff has passed, else (when no failed batch waits: the receiver is
    /// not failing) a full batch, or what waited `every` (or anything, when `flushing`).
    pub fn next(&mut self, now: Instant, flushing: bool) -> Option<Batch<T>> {
        if self.in_flight >= self.policy.parallel.max(1) {
            return None;
        }
        if let Some(i) = self.retries.iter().position(|r| r.at <= now) {
            self.in_flight += 1;
            return Some(self.retries.swap_remove(i).batch);
        }
        if !self.retries.is_empty() {
            return None;
        }
        let waited = self
            .since
            .is_some_and(|since| now.saturating_duration_since(since) >= self.policy.every);
        let due = self.waiting.len() >= self.policy.batch.max(1)
            || (!self.waiting.is_empty() && (waited || flushing));
        if !due {
            return None;
        }
        let n = self.waiting.len().min(self.policy.batch.max(1));
        let items: Vec<T> = self.waiting.drain(..n).collect();
        if self.waiting.is_empty() {
            self.since = None;
        }
        self.in_flight += 1;
        Some(Batch { items, tried: 0 })
    }

    /// A batch in flight was sent (or refused for good).
    pub fn done(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// A batch in flight failed at `now`: it is kept for another try after a backoff, or,
    /// past the last attempt, handed back to be given up on.
    pub fn failed(&mut self, mut batch: Batch<T>, now: Instant) -> Option<Vec<T>> {
        self.done();
        batch.tried += 1;
        if batch.tried >= self.policy.attempts {
            return Some(batch.items);
        }
        let wait = self.policy.backoff * 2u32.saturating_pow(batch.tried - 1);
        self.retries.push(Retry {
            batch,
            at: now + wait,
        });
        None
    }

    /// Nothing waits, nothing is in flight or due for a retry.
    pub fn is_idle(&self) -> bool {
        self.in_flight == 0 && self.retries.is_empty() && self.waiting.is_empty()
    }

    /// Events waiting (not counting batches in flight or awaiting a retry).
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: Policy = Policy {
        batch: 3,
        every: Duration::from_secs(1),
        parallel: 2,
        attempts: 3,
        backoff: Duration::from_millis(500),
    };

    #[test]
    fn a_batch_goes_when_full_or_when_its_oldest_event_has_waited() {
        let t0 = Instant::now();
        let mut o = Outbox::new(POLICY);
        o.push(1, t0);
        o.push(2, t0);
        assert!(o.next(t0, false).is_none());
        assert!(o.next(t0 + Duration::from_millis(999), false).is_none());
        let b = o.next(t0 + Duration::from_secs(1), false).unwrap();
        assert_eq!(b.items, [1, 2]);
        o.done();
        for i in 0..4 {
            o.push(i, t0);
        }
        assert_eq!(o.next(t0, false).unwrap().items, [0, 1, 2]);
        assert!(o.next(t0, false).is_none(), "one batch in flight at a time");
        o.done();
        assert_eq!(
            o.next(t0, true).unwrap().items,
            [3],
            "a flush sends what waits"
        );
    }

    #[test]
    fn a_failed_batch_is_retried_with_backoff_then_given_up() {
        let t0 = Instant::now();
        let mut o = Outbox::new(POLICY);
        o.push("a", t0);
        let b = o.next(t0, true).unwrap();
        assert!(o.failed(b, t0).is_none());
        o.push("b", t0);
        assert!(
            o.next(t0 + Duration::from_millis(499), true).is_none(),
            "nothing new goes while the receiver is failing"
        );
        let b = o.next(t0 + Duration::from_millis(500), true).unwrap();
        assert_eq!((b.items.as_slice(), b.tried), (&["a"][..], 1));
        assert!(o.failed(b, t0).is_none());
        assert!(o.next(t0 + Duration::from_millis(999), true).is_none());
        let b = o.next(t0 + Duration::from_secs(1), true).unwrap();
        assert_eq!(o.failed(b, t0), Some(vec!["a"]));
        assert_eq!(o.next(t0, true).unwrap().items, ["b"]);
        o.done();
        assert!(o.is_idle());
    }
}
