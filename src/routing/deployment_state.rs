//! One deployment's live state: usage this minute, requests in flight, latency, failures and
//! cooldown, with its limits enforced on each reservation.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::limits::{Limit, Profile, Usage};
use super::{Cooldown, CooldownPolicy, Failure, RateWindow};

/// How an attempt on a deployment ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    /// The upstream answered.
    Success {
        /// Total tokens of the call.
        tokens: u64,
        /// Tokens generated.
        completion_tokens: u64,
        /// How long the whole call took.
        latency: Duration,
        /// For a stream, how long until its first chunk.
        first_token: Option<Duration>,
    },
    /// The attempt failed in a way that may count towards cooldown.
    Failure {
        /// How the failure counts.
        failure: Failure,
        /// The upstream's `retry-after`.
        retry_after: Option<Duration>,
    },
    /// The attempt ended with no verdict (the client went away): only the slot is released.
    Released,
    /// The attempt never started (a limit held across instances refused it): it is not
    /// counted at all.
    Withdrawn,
}

/// A read-only view of a deployment's state, published to the router.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DeploymentSnapshot {
    /// Requests being served now.
    pub in_flight: u32,
    /// Requests started in the last 60 s.
    pub requests_this_minute: u64,
    /// Tokens used (or reserved by requests in flight) in the last 60 s.
    pub tokens_this_minute: u64,
    /// Failures counted in the last 60 s.
    pub failures_this_minute: u64,
    /// When the running cooldown ends.
    pub cooling_until: Option<Instant>,
    /// When the oldest request or tokens leave the minute's window.
    pub window_frees_at: Option<Instant>,
    /// Latency of the last successful call.
    pub last_latency: Option<Duration>,
    /// Mean seconds per generated token over the recent calls.
    pub latency_per_token: Option<f64>,
    /// Mean seconds to a stream's first chunk over the recent streams.
    pub first_token_latency: Option<f64>,
}

/// Why a deployment refused a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// It is cooling down until then.
    Cooling(Instant),
    /// It is at a limit; frees up then, if known (a parallel slot frees when a request ends).
    AtLimit(Option<Instant>),
}

/// One request's hold on a deployment: its start and the tokens reserved for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    /// When it was taken (the reserved tokens are counted at this time).
    pub at: Instant,
    /// Tokens reserved from the estimate.
    pub tokens: u64,
}

/// `routing_strategy_args`: how many recent latencies are averaged, and for how long.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencyWindow {
    /// Samples older than this are forgotten (`ttl`, default one hour).
    pub ttl: Duration,
    /// At most this many recent samples (`max_latency_list_size`, default 10).
    pub max_samples: usize,
}

impl Default for LatencyWindow {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(3600),
            max_samples: 10,
        }
    }
}

/// The recent values of one latency measure.
#[derive(Debug, Default)]
struct Samples(VecDeque<(Instant, f64)>);

impl Samples {
    fn add(&mut self, now: Instant, value: f64, window: &LatencyWindow) {
        if self.0.len() >= window.max_samples.max(1) {
            self.0.pop_front();
        }
        self.0.push_back((now, value));
    }

    fn mean(&mut self, now: Instant, window: &LatencyWindow) -> Option<f64> {
        while let Some(&(at, _)) = self.0.front() {
            if now.saturating_duration_since(at) >= window.ttl {
                self.0.pop_front();
            } else {
                break;
            }
        }
        (!self.0.is_empty())
            .then(|| self.0.iter().map(|(_, v)| v).sum::<f64>() / self.0.len() as f64)
    }
}

/// What a deployment enforces: its limits, whether `rpm`/`tpm` are hard, and its latency window.
#[derive(Debug, Clone, Copy, Default)]
pub struct Enforce {
    /// Its limits.
    pub profile: Profile,
    /// `rpm` and `tpm` refuse requests (usage-based routing or pre-call checks).
    pub hard_limits: bool,
    /// How latency is averaged.
    pub latency: LatencyWindow,
}

/// The authoritative state of one deployment.
#[derive(Debug, Default)]
pub struct DeploymentState {
    enforce: Enforce,
    window: RateWindow,
    in_flight: u32,
    cooldown: Cooldown,
    last_latency: Option<Duration>,
    per_token: Samples,
    first_token: Samples,
}

impl DeploymentState {
    /// A deployment that enforces `enforce`.
    pub fn new(enforce: Enforce) -> Self {
        Self {
            enforce,
            ..Self::default()
        }
    }

    /// Enforces `enforce` from now on (the deployment was changed at runtime); its usage this
    /// minute, requests in flight and cooldown carry over, so a change never resets a limit.
    pub fn reconfigure(&mut self, enforce: Enforce) {
        self.enforce = enforce;
    }

    /// Takes a slot for one request needing `tokens` at `now`, unless the deployment is cooling
    /// down or would break a limit.
    pub fn reserve(&mut self, now: Instant, tokens: u64) -> Result<Reservation, Refused> {
        if let Some(until) = self.cooldown.until(now) {
            return Err(Refused::Cooling(until));
        }
        let usage = Usage {
            in_flight: self.in_flight,
            requests: self.window.requests(now),
            tokens: self.window.tokens(now),
        };
        match self
            .enforce
            .profile
            .over_limit(usage, tokens, self.enforce.hard_limits)
        {
            Some(Limit::Parallel) => return Err(Refused::AtLimit(None)),
            Some(Limit::Rate) => return Err(Refused::AtLimit(self.window.frees_at())),
            None => {}
        }
        self.in_flight += 1;
        self.window.record_request(now);
        self.window.record_tokens(now, tokens);
        Ok(Reservation { at: now, tokens })
    }

    /// Ends the request holding `held` at `now`; returns true when the outcome started a
    /// cooldown. Reserved tokens are replaced by the real usage (none for a failure).
    pub fn report(
        &mut self,
        now: Instant,
        held: Reservation,
        outcome: Outcome,
        policy: &CooldownPolicy,
        group_has_others: bool,
    ) -> bool {
        self.in_flight = self.in_flight.saturating_sub(1);
        match outcome {
            Outcome::Success {
                tokens,
                completion_tokens,
                latency,
                first_token,
            } => {
                self.window
                    .reconcile_tokens(now, held.at, held.tokens, tokens);
                self.last_latency = Some(latency);
                let window = self.enforce.latency;
                let per_token = latency.as_secs_f64() / completion_tokens.max(1) as f64;
                self.per_token.add(now, per_token, &window);
                if let Some(first) = first_token {
                    self.first_token.add(now, first.as_secs_f64(), &window);
                }
                false
            }
            Outcome::Failure {
                failure,
                retry_after,
            } => {
                self.window.reconcile_tokens(now, held.at, held.tokens, 0);
                self.cooldown
                    .record_failure(now, failure, policy, group_has_others, retry_after)
            }
            // The client left: what the call used is unknown, so the reservation stands.
            Outcome::Released => false,
            Outcome::Withdrawn => {
                self.window.withdraw(now, held.at, held.tokens);
                false
            }
        }
    }

    /// Cools down until `until`, as another instance decided.
    pub fn cool_until(&mut self, until: Instant) {
        self.cooldown.extend(until);
    }

    /// The state as seen at `now`.
    pub fn snapshot(&mut self, now: Instant) -> DeploymentSnapshot {
        let window = self.enforce.latency;
        DeploymentSnapshot {
            in_flight: self.in_flight,
            requests_this_minute: self.window.requests(now),
            tokens_this_minute: self.window.tokens(now),
            failures_this_minute: self.cooldown.recent_failures(now) as u64,
            cooling_until: self.cooldown.until(now),
            window_frees_at: self.window.frees_at(),
            last_latency: self.last_latency,
            latency_per_token: self.per_token.mean(now, &window),
            first_token_latency: self.first_token.mean(now, &window),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::FailureClass;

    fn ok(tokens: u64, latency_ms: u64) -> Outcome {
        Outcome::Success {
            tokens,
            completion_tokens: tokens / 2,
            latency: Duration::from_millis(latency_ms),
            first_token: None,
        }
    }

    #[test]
    fn reservations_count_in_flight_until_reported() {
        let t0 = Instant::now();
        let p = CooldownPolicy::default();
        let mut s = DeploymentState::default();
        let a = s.reserve(t0, 0).unwrap();
        let b = s.reserve(t0, 0).unwrap();
        assert_eq!(s.snapshot(t0).in_flight, 2);
        s.report(t0, a, Outcome::Released, &p, false);
        s.report(t0, b, ok(30, 5), &p, false);
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
        let held = s.reserve(t0, 0).unwrap();
        let fail = Outcome::Failure {
            failure: Failure {
                class: FailureClass::Unhealthy,
                error: None,
            },
            retry_after: None,
        };
        assert!(s.report(t0, held, fail, &p, false));
        assert_eq!(
            s.reserve(t0 + Duration::from_secs(1), 0),
            Err(Refused::Cooling(t0 + p.cooldown_time))
        );
        assert!(s.reserve(t0 + p.cooldown_time, 0).is_ok());
    }

    fn limited(rpm: Option<u64>, tpm: Option<u64>, hard: bool) -> DeploymentState {
        DeploymentState::new(Enforce {
            profile: Profile {
                rpm,
                tpm,
                ..Profile::default()
            },
            hard_limits: hard,
            latency: LatencyWindow::default(),
        })
    }

    #[test]
    fn rpm_is_a_hard_limit_until_the_window_frees() {
        let t0 = Instant::now();
        let mut s = limited(Some(2), None, true);
        s.reserve(t0, 0).unwrap();
        s.reserve(t0 + Duration::from_secs(10), 0).unwrap();
        let at = t0 + Duration::from_secs(20);
        assert_eq!(
            s.reserve(at, 0),
            Err(Refused::AtLimit(Some(t0 + Duration::from_secs(60))))
        );
        assert!(s.reserve(t0 + Duration::from_secs(60), 0).is_ok());
        // Soft limits (simple-shuffle) never refuse.
        let mut soft = limited(Some(1), None, false);
        soft.reserve(t0, 0).unwrap();
        assert!(soft.reserve(t0, 0).is_ok());
    }

    #[test]
    fn tokens_are_reserved_on_pick_and_reconciled_with_real_usage() {
        let t0 = Instant::now();
        let p = CooldownPolicy::default();
        let mut s = limited(None, Some(1000), true);
        let a = s.reserve(t0, 600).unwrap();
        // 600 reserved: a second 600-token request does not fit, a 400-token one does.
        assert!(matches!(s.reserve(t0, 600), Err(Refused::AtLimit(_))));
        let b = s.reserve(t0, 400).unwrap();
        assert_eq!(s.snapshot(t0).tokens_this_minute, 1000);
        // The first used only 100: 500 come back.
        s.report(t0, a, ok(100, 10), &p, false);
        assert_eq!(s.snapshot(t0).tokens_this_minute, 500);
        // A failure frees its whole reservation.
        let fail = Outcome::Failure {
            failure: Failure {
                class: FailureClass::Unhealthy,
                error: None,
            },
            retry_after: None,
        };
        s.report(t0, b, fail, &p, false);
        assert_eq!(s.snapshot(t0).tokens_this_minute, 100);
        assert!(s.reserve(t0, 900).is_ok());
    }

    #[test]
    fn latency_is_averaged_per_token_over_the_recent_calls() {
        let t0 = Instant::now();
        let p = CooldownPolicy::default();
        let mut s = DeploymentState::new(Enforce {
            latency: LatencyWindow {
                ttl: Duration::from_secs(10),
                max_samples: 2,
            },
            ..Enforce::default()
        });
        for (tokens, ms) in [(20, 1000), (20, 100), (20, 300)] {
            let held = s.reserve(t0, 0).unwrap();
            s.report(t0, held, ok(tokens, ms), &p, false);
        }
        // The last two: 0.1 s and 0.3 s over 10 completion tokens each.
        let per_token = s.snapshot(t0).latency_per_token.unwrap();
        assert!((per_token - 0.02).abs() < 1e-9, "{per_token}");
        assert_eq!(
            s.snapshot(t0 + Duration::from_secs(10)).latency_per_token,
            None
        );
    }
}
