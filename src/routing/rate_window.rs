//! A sliding 60-second window of requests and tokens, exact to the millisecond.
//!
//! Events that arrive within one millisecond of each other share one entry, which leaves the
//! window 60 s after its last event: a count is never forgotten sooner than 60 s after its
//! event (at most 1 ms later), and a window holds at most one entry per millisecond, however
//! busy the deployment or key (about 1.4 MiB at most, rather than one entry per request).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The length of every rate window (LiteLLM's "per minute").
pub const WINDOW: Duration = Duration::from_secs(60);

/// Events closer together than this share an entry.
const GRAIN: Duration = Duration::from_millis(1);

/// Events from `first` to `last`, `count` of them (requests, or tokens).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    first: Instant,
    last: Instant,
    count: u64,
}

impl Span {
    fn holds(&self, at: Instant) -> bool {
        self.first <= at && at <= self.last
    }
}

/// Counts in a sliding window: spans in time order, and their total.
#[derive(Debug, Default, Clone)]
struct Spans {
    spans: VecDeque<Span>,
    sum: u64,
}

impl Spans {
    fn evict(&mut self, now: Instant) {
        while let Some(front) = self.spans.front() {
            if now.saturating_duration_since(front.last) < WINDOW {
                break;
            }
            self.sum -= front.count;
            self.spans.pop_front();
        }
    }

    fn add(&mut self, now: Instant, n: u64) {
        self.sum += n;
        if let Some(back) = self.spans.back_mut() {
            if now >= back.last && now.saturating_duration_since(back.first) < GRAIN {
                back.last = now;
                back.count += n;
                return;
            }
        }
        self.spans.push_back(Span {
            first: now,
            last: now,
            count: n,
        });
    }

    /// Replaces `from` counted at `at` by `to`, if `at`'s span is still here and holds `from`.
    fn replace(&mut self, at: Instant, from: u64, to: u64) -> bool {
        let Some(i) = self.spans.iter().rposition(|s| s.holds(at)) else {
            return false;
        };
        let span = &mut self.spans[i];
        if span.count < from {
            return false;
        }
        span.count = span.count - from + to;
        self.sum = self.sum - from + to;
        if span.count == 0 {
            self.spans.remove(i);
        }
        true
    }

    fn oldest(&self) -> Option<Instant> {
        self.spans.front().map(|s| s.last)
    }
}

/// Requests and tokens seen in the last 60 seconds.
#[derive(Debug, Default, Clone)]
pub struct RateWindow {
    requests: Spans,
    tokens: Spans,
}

impl RateWindow {
    /// Drops every event older than the window as seen at `now`.
    fn evict(&mut self, now: Instant) {
        self.requests.evict(now);
        self.tokens.evict(now);
    }

    /// Counts one request at `now`.
    pub fn record_request(&mut self, now: Instant) {
        self.evict(now);
        self.requests.add(now, 1);
    }

    /// Counts `tokens` used at `now`.
    pub fn record_tokens(&mut self, now: Instant, tokens: u64) {
        self.evict(now);
        if tokens > 0 {
            self.tokens.add(now, tokens);
        }
    }

    /// Replaces `reserved` tokens counted at `at` by the `used` tokens the request really took.
    /// A reservation that already left the window is not revived: `used` counts from `now`.
    pub fn reconcile_tokens(&mut self, now: Instant, at: Instant, reserved: u64, used: u64) {
        self.evict(now);
        if reserved > 0 && self.tokens.replace(at, reserved, used) {
            return;
        }
        self.record_tokens(now, used);
    }

    /// Forgets a request counted at `at` with `reserved` tokens that never happened (another
    /// check refused it after this window counted it).
    pub fn withdraw(&mut self, now: Instant, at: Instant, reserved: u64) {
        self.evict(now);
        self.requests.replace(at, 1, 0);
        self.reconcile_tokens(now, at, reserved, 0);
    }

    /// When the oldest event leaves the window: the earliest a limit can free up.
    pub fn frees_at(&self) -> Option<Instant> {
        let oldest = match (self.requests.oldest(), self.tokens.oldest()) {
            (Some(r), Some(t)) => r.min(t),
            (Some(r), None) => r,
            (None, Some(t)) => t,
            (None, None) => return None,
        };
        Some(oldest + WINDOW)
    }

    /// Requests in the window ending at `now`.
    pub fn requests(&mut self, now: Instant) -> u64 {
        self.evict(now);
        self.requests.sum
    }

    /// How long until the oldest event leaves the window (when a slot frees up).
    pub fn next_expiry(&self, now: Instant) -> Option<Duration> {
        self.frees_at().map(|at| {
            at.saturating_duration_since(now)
                .max(Duration::from_secs(1))
        })
    }

    /// Tokens in the window ending at `now`.
    pub fn tokens(&mut self, now: Instant) -> u64 {
        self.evict(now);
        self.tokens.sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_withdrawn_request_is_not_counted() {
        let t0 = Instant::now();
        let mut w = RateWindow::default();
        w.record_request(t0);
        w.record_tokens(t0, 50);
        let t1 = t0 + Duration::from_secs(1);
        w.record_request(t1);
        w.record_tokens(t1, 70);
        w.withdraw(t1, t1, 70);
        assert_eq!((w.requests(t1), w.tokens(t1)), (1, 50));
    }

    #[test]
    fn events_leave_the_window_after_sixty_seconds() {
        let t0 = Instant::now();
        let mut w = RateWindow::default();
        w.record_request(t0);
        w.record_tokens(t0, 100);
        w.record_request(t0 + Duration::from_secs(30));
        w.record_tokens(t0 + Duration::from_secs(30), 5);
        assert_eq!(w.requests(t0 + Duration::from_secs(59)), 2);
        assert_eq!(w.tokens(t0 + Duration::from_secs(59)), 105);
        assert_eq!(w.requests(t0 + Duration::from_secs(60)), 1);
        assert_eq!(w.tokens(t0 + Duration::from_secs(60)), 5);
        assert_eq!(w.requests(t0 + Duration::from_secs(90)), 0);
        assert_eq!(w.tokens(t0 + Duration::from_secs(90)), 0);
    }

    #[test]
    fn a_reservation_is_replaced_by_the_real_usage() {
        let t0 = Instant::now();
        let mut w = RateWindow::default();
        w.record_tokens(t0, 500);
        w.record_tokens(t0 + Duration::from_secs(1), 70);
        w.reconcile_tokens(t0 + Duration::from_secs(2), t0, 500, 120);
        assert_eq!(w.tokens(t0 + Duration::from_secs(2)), 190);
        // The reconciled tokens still leave with the reservation's time.
        assert_eq!(w.tokens(t0 + Duration::from_secs(60)), 70);
    }

    #[test]
    fn an_expired_reservation_counts_the_usage_from_now() {
        let t0 = Instant::now();
        let mut w = RateWindow::default();
        w.record_tokens(t0, 500);
        let late = t0 + Duration::from_secs(61);
        w.reconcile_tokens(late, t0, 500, 80);
        assert_eq!(w.tokens(late), 80);
        assert_eq!(w.frees_at(), Some(late + WINDOW));
    }

    #[test]
    fn zero_tokens_are_not_stored() {
        let t0 = Instant::now();
        let mut w = RateWindow::default();
        w.record_tokens(t0, 0);
        assert_eq!(w.tokens(t0), 0);
        assert!(w.tokens.spans.is_empty());
    }

    #[test]
    fn a_busy_window_holds_one_entry_per_millisecond_and_forgets_nothing_early() {
        let t0 = Instant::now();
        let mut w = RateWindow::default();
        // A million requests in ten seconds, one every 10 µs.
        let step = Duration::from_micros(10);
        for i in 0..1_000_000u32 {
            let at = t0 + step * i;
            w.record_request(at);
            w.record_tokens(at, 3);
        }
        let end = t0 + step * 999_999;
        assert_eq!(w.requests(end), 1_000_000);
        assert_eq!(w.tokens(end), 3_000_000);
        assert!(
            w.requests.spans.len() <= 10_001,
            "{}",
            w.requests.spans.len()
        );
        assert!(w.tokens.spans.len() <= 10_001);
        // The requests of the first millisecond are still counted 60 s after the last of them
        // (t0 + 990 µs), and gone 1 ms later.
        let last_of_first_ms = t0 + step * 99;
        assert_eq!(
            w.requests(last_of_first_ms + WINDOW - Duration::from_nanos(1)),
            1_000_000
        );
        assert_eq!(w.requests(last_of_first_ms + WINDOW), 999_900);
        // A reservation inside a shared entry is still replaced by its usage.
        let mut r = RateWindow::default();
        r.record_tokens(t0, 100);
        r.record_tokens(t0 + Duration::from_micros(200), 500);
        r.reconcile_tokens(
            t0 + Duration::from_secs(1),
            t0 + Duration::from_micros(200),
            500,
            20,
        );
        assert_eq!(r.tokens(t0 + Duration::from_secs(1)), 120);
        assert_eq!(r.tokens.spans.len(), 1);
    }
}
