//! One deployment's live state: usage this minute, requests in flight, failures and cooldown.

use std::time::{Duration, Instant};

use super::{Cooldown, CooldownPolicy, FailureClass, RateWindow};

/// How an attempt on a deployment ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    /// The upstream answered; `tokens` were used.
    Success {
        /// Total tokens of the call.
        tokens: u64,
        /// How long the call took.
        latency: Duration,
    },
    /// The attempt failed in a way that may count towards cooldown.
    Failure {
        /// How the failure counts.
        class: FailureClass,
        /// The upstream's `retry-after`.
        retry_after: Option<Duration>,
    },
    /// The attempt ended with no verdict (the client went away): only the slot is released.
    Released,
}

/// A read-only view of a deployment's state, published to the router.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DeploymentSnapshot {
    /// Requests being served now.
    pub in_flight: u32,
    /// Requests started in the last 60 s.
    pub requests_this_minute: u64,
    /// Tokens used in the last 60 s.
    pub tokens_this_minute: u64,
    /// Failures counted in the last 60 s.
    pub failures_this_minute: u64,
    /// When the running cooldown ends.
    pub cooling_until: Option<Instant>,
    /// Latency of the last successful call.
    pub last_latency: Option<Duration>,
}

/// Why a deployment refused a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    /// When it can take requests again.
    pub until: Option<Instant>,
}

/// The authoritative state of one deployment.
#[derive(Debug, Default)]
pub struct DeploymentState {
    window: RateWindow,
    in_flight: u32,
    cooldown: Cooldown,
    last_latency: Option<Duration>,
}

impl DeploymentState {
    /// Takes a slot for one request at `now`, unless the deployment is cooling down.
    pub fn reserve(&mut self, now: Instant) -> Result<(), Refused> {
        if let Some(until) = self.cooldown.until(now) {
            return Err(Refused { until: Some(until) });
        }
        self.in_flight += 1;
        self.window.record_request(now);
        Ok(())
    }

    /// Ends one request at `now`; returns true when the outcome started a cooldown.
    pub fn report(
        &mut self,
        now: Instant,
        outcome: Outcome,
        policy: &CooldownPolicy,
        group_has_others: bool,
    ) -> bool {
        self.in_flight = self.in_flight.saturating_sub(1);
        match outcome {
            Outcome::Success { tokens, latency } => {
                self.window.record_tokens(now, tokens);
                self.last_latency = Some(latency);
                false
            }
            Outcome::Failure { class, retry_after } => {
                self.cooldown
                    .record_failure(now, class, policy, group_has_others, retry_after)
            }
            Outcome::Released => false,
        }
    }

    /// The state as seen at `now`.
    pub fn snapshot(&mut self, now: Instant) -> DeploymentSnapshot {
        DeploymentSnapshot {
            in_flight: self.in_flight,
            requests_this_minute: self.window.requests(now),
            tokens_this_minute: self.window.tokens(now),
            failures_this_minute: self.cooldown.recent_failures(now) as u64,
            cooling_until: self.cooldown.until(now),
            last_latency: self.last_latency,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_count_in_flight_until_reported() {
        let t0 = Instant::now();
        let p = CooldownPolicy::default();
        let mut s = DeploymentState::default();
        s.reserve(t0).unwrap();
        s.reserve(t0).unwrap();
        assert_eq!(s.snapshot(t0).in_flight, 2);
        s.report(t0, Outcome::Released, &p, false);
        let ok = Outcome::Success {
            tokens: 30,
            latency: Duration::from_millis(5),
        };
        s.report(t0, ok, &p, false);
        let snap = s.snapshot(t0);
        assert_eq!(
            (
                snap.in_flight,
                snap.requests_this_minute,
                snap.tokens_this_minute
            ),
            (0, 2, 30)
        );
    }

    #[test]
    fn a_cooling_deployment_refuses_until_its_cooldown_ends() {
        let t0 = Instant::now();
        let p = CooldownPolicy {
            allowed_fails: 0,
            ..CooldownPolicy::default()
        };
        let mut s = DeploymentState::default();
        s.reserve(t0).unwrap();
        let fail = Outcome::Failure {
            class: FailureClass::Unhealthy,
            retry_after: None,
        };
        assert!(s.report(t0, fail, &p, false));
        assert_eq!(
            s.reserve(t0 + Duration::from_secs(1)),
            Err(Refused {
                until: Some(t0 + p.cooldown_time)
            })
        );
        assert!(s.reserve(t0 + p.cooldown_time).is_ok());
    }
}
