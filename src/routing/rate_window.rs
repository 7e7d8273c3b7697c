//! An exact sliding 60-second window of requests and tokens.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The length of every rate window (LiteLLM's "per minute").
pub const WINDOW: Duration = Duration::from_secs(60);

/// Requests and tokens seen in the last 60 seconds, exact to the event.
#[derive(Debug, Default, Clone)]
pub struct RateWindow {
    requests: VecDeque<Instant>,
    tokens: VecDeque<(Instant, u64)>,
    token_sum: u64,
}

impl RateWindow {
    /// Drops every event older than the window as seen at `now`.
    fn evict(&mut self, now: Instant) {
        while let Some(&at) = self.requests.front() {
            if now.saturating_duration_since(at) >= WINDOW {
                self.requests.pop_front();
            } else {
                break;
            }
        }
        while let Some(&(at, n)) = self.tokens.front() {
            if now.saturating_duration_since(at) >= WINDOW {
                self.tokens.pop_front();
                self.token_sum -= n;
            } else {
                break;
            }
        }
    }

    /// Counts one request at `now`.
    pub fn record_request(&mut self, now: Instant) {
        self.evict(now);
        self.requests.push_back(now);
    }

    /// Counts `tokens` used at `now`.
    pub fn record_tokens(&mut self, now: Instant, tokens: u64) {
        self.evict(now);
        if tokens > 0 {
            self.tokens.push_back((now, tokens));
            self.token_sum += tokens;
        }
    }

    /// Replaces `reserved` tokens counted at `at` by the `used` tokens the request really took.
    /// A reservation that already left the window is not revived: `used` counts from `now`.
    pub fn reconcile_tokens(&mut self, now: Instant, at: Instant, reserved: u64, used: u64) {
        self.evict(now);
        if reserved > 0 {
            let start = self.tokens.partition_point(|&(t, _)| t < at);
            let entry = (start..self.tokens.len())
                .take_while(|&i| self.tokens[i].0 == at)
                .find(|&i| self.tokens[i].1 >= reserved);
            if let Some(i) = entry {
                self.tokens[i].1 = self.tokens[i].1 - reserved + used;
                self.token_sum = self.token_sum - reserved + used;
                return;
            }
        }
        self.record_tokens(now, used);
    }

    /// Forgets a request counted at `at` with `reserved` tokens that never happened (another
    /// check refused it after this window counted it).
    pub fn withdraw(&mut self, now: Instant, at: Instant, reserved: u64) {
        self.evict(now);
        if let Some(i) = self.requests.iter().rposition(|&t| t == at) {
            self.requests.remove(i);
        }
        self.reconcile_tokens(now, at, reserved, 0);
    }

    /// When the oldest event leaves the window: the earliest a limit can free up.
    pub fn frees_at(&self) -> Option<Instant> {
        let oldest = match (self.requests.front(), self.tokens.front()) {
            (Some(&r), Some(&(t, _))) => r.min(t),
            (Some(&r), None) => r,
            (None, Some(&(t, _))) => t,
            (None, None) => return None,
        };
        Some(oldest + WINDOW)
    }

    /// Requests in the window ending at `now`.
    pub fn requests(&mut self, now: Instant) -> u64 {
        self.evict(now);
        self.requests.len() as u64
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
        self.token_sum
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
        assert!(w.tokens.is_empty());
    }
}
