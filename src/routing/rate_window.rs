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

    /// Requests in the window ending at `now`.
    pub fn requests(&mut self, now: Instant) -> u64 {
        self.evict(now);
        self.requests.len() as u64
    }

    /// How long until the oldest event leaves the window (when a slot frees up).
    pub fn next_expiry(&self, now: Instant) -> Option<Duration> {
        let oldest = match (self.requests.front(), self.tokens.front()) {
            (Some(&r), Some(&(t, _))) => r.min(t),
            (Some(&r), None) => r,
            (None, Some(&(t, _))) => t,
            (None, None) => return None,
        };
        Some(
            (oldest + WINDOW)
                .saturating_duration_since(now)
                .max(Duration::from_secs(1)),
        )
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
    fn zero_tokens_are_not_stored() {
        let t0 = Instant::now();
        let mut w = RateWindow::default();
        w.record_tokens(t0, 0);
        assert_eq!(w.tokens(t0), 0);
        assert!(w.tokens.is_empty());
    }
}
