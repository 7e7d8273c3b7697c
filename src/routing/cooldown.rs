//! When a deployment is taken out of rotation after failing, and for how long.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::rate_window::WINDOW;
use super::retry::ErrorClass;

/// How a failed attempt counts towards cooldown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// The upstream said 429.
    RateLimited,
    /// A status that marks the deployment unhealthy: 401, 404, 408 and 5xx.
    Unhealthy,
    /// The endpoint could not be reached or did not answer in time.
    Connection,
    /// A failure of the request itself (400s and the like): never counts.
    ClientError,
}

impl FailureClass {
    /// Classifies an upstream HTTP status.
    pub fn from_status(status: u16) -> Self {
        match status {
            429 => Self::RateLimited,
            401 | 404 | 408 | 500..=599 => Self::Unhealthy,
            _ => Self::ClientError,
        }
    }
}

/// The knobs that decide cooldowns, from `allowed_fails`, `allowed_fails_policy`,
/// `cooldown_time` and `disable_cooldowns`.
#[derive(Debug, Clone, Copy)]
pub struct CooldownPolicy {
    /// Failures tolerated in a minute; one more starts a cooldown.
    pub allowed_fails: u32,
    /// `allowed_fails_policy`: failures tolerated per error class, counted apart.
    pub per_class: [Option<u32>; ErrorClass::COUNT],
    /// How long a deployment stays out.
    pub cooldown_time: Duration,
    /// Never cool down.
    pub disabled: bool,
}

impl Default for CooldownPolicy {
    fn default() -> Self {
        Self {
            allowed_fails: 3,
            per_class: [None; ErrorClass::COUNT],
            cooldown_time: Duration::from_secs(5),
            disabled: false,
        }
    }
}

impl CooldownPolicy {
    /// The failures `allowed_fails_policy` tolerates for `class`, if it names the class.
    pub fn allowed_for(&self, class: Option<ErrorClass>) -> Option<u32> {
        class.and_then(|c| self.per_class[c as usize])
    }
}

/// One failure of a deployment; the error class is kept when `allowed_fails_policy` counts it
/// apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    /// How the failure counts by default.
    pub class: FailureClass,
    /// LiteLLM's error class, if known.
    pub error: Option<ErrorClass>,
}

/// One deployment's recent failures and its cooldown, if any.
#[derive(Debug, Default, Clone)]
pub struct Cooldown {
    /// When each counted failure happened, with its class if the policy counts it apart.
    failures: VecDeque<(Instant, Option<ErrorClass>)>,
    until: Option<Instant>,
}

impl Cooldown {
    /// Whether the deployment is out of rotation at `now`.
    pub fn is_cooling(&self, now: Instant) -> bool {
        self.until.is_some_and(|until| now < until)
    }

    /// When the current cooldown ends, if one is running at `now`.
    pub fn until(&self, now: Instant) -> Option<Instant> {
        self.until.filter(|&until| now < until)
    }

    /// Cools down until `until` (another instance's cooldown), unless already cooling longer.
    pub fn extend(&mut self, until: Instant) {
        self.until = Some(self.until.map_or(until, |u| u.max(until)));
    }

    /// Failures counted in the minute ending at `now`.
    pub fn recent_failures(&mut self, now: Instant) -> usize {
        self.evict(now);
        self.failures.len()
    }

    fn evict(&mut self, now: Instant) {
        while let Some(&(at, _)) = self.failures.front() {
            if now.saturating_duration_since(at) >= WINDOW {
                self.failures.pop_front();
            } else {
                break;
            }
        }
    }

    /// Counts one failure at `now`; returns true when it starts a cooldown.
    ///
    /// A class named in `allowed_fails_policy` is counted apart against its own allowance (and
    /// counts even when it is the request's fault). Otherwise `group_has_others` lets a 429 cool
    /// the deployment at once, since the group can absorb it. `retry_after` from the upstream is
    /// honoured as the cooldown's minimum length.
    pub fn record_failure(
        &mut self,
        now: Instant,
        failure: Failure,
        policy: &CooldownPolicy,
        group_has_others: bool,
        retry_after: Option<Duration>,
    ) -> bool {
        if policy.disabled {
            return false;
        }
        let own_allowance = policy.allowed_for(failure.error);
        if own_allowance.is_none() && failure.class == FailureClass::ClientError {
            return false;
        }
        self.evict(now);
        let kind = own_allowance.and(failure.error);
        self.failures.push_back((now, kind));
        let counted = self.failures.iter().filter(|(_, k)| *k == kind).count() as u64;
        let over_limit = counted > u64::from(own_allowance.unwrap_or(policy.allowed_fails));
        let immediate = own_allowance.is_none()
            && failure.class == FailureClass::RateLimited
            && group_has_others;
        if !(over_limit || immediate) {
            return false;
        }
        let length = retry_after.map_or(policy.cooldown_time, |r| r.max(policy.cooldown_time));
        let until = now + length;
        self.until = Some(self.until.map_or(until, |u| u.max(until)));
        self.failures.clear();
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allowed_fails: u32) -> CooldownPolicy {
        CooldownPolicy {
            allowed_fails,
            ..CooldownPolicy::default()
        }
    }

    fn fail(class: FailureClass) -> Failure {
        Failure { class, error: None }
    }

    #[test]
    fn a_class_in_the_policy_is_counted_apart_against_its_own_allowance() {
        let t0 = Instant::now();
        let mut p = policy(1);
        p.per_class[ErrorClass::RateLimit as usize] = Some(3);
        p.per_class[ErrorClass::BadRequest as usize] = Some(0);
        let limited = Failure {
            class: FailureClass::RateLimited,
            error: Some(ErrorClass::RateLimit),
        };
        let mut c = Cooldown::default();
        // No immediate cooldown on a 429 when the policy names rate limits: three are allowed.
        for _ in 0..3 {
            assert!(!c.record_failure(t0, limited, &p, true, None));
        }
        // A 500 counts against allowed_fails (1), not with the 429s.
        let down = Failure {
            class: FailureClass::Unhealthy,
            error: Some(ErrorClass::InternalServer),
        };
        assert!(!c.record_failure(t0, down, &p, true, None));
        assert!(c.record_failure(t0, limited, &p, true, None));
        // A bad request counts when the policy names its class.
        let bad = Failure {
            class: FailureClass::ClientError,
            error: Some(ErrorClass::BadRequest),
        };
        let mut d = Cooldown::default();
        assert!(d.record_failure(t0, bad, &p, true, None));
    }

    #[test]
    fn cools_down_only_after_more_than_allowed_fails_in_a_minute() {
        let t0 = Instant::now();
        let mut c = Cooldown::default();
        let p = policy(2);
        assert!(!c.record_failure(t0, fail(FailureClass::Unhealthy), &p, true, None));
        assert!(!c.record_failure(t0, fail(FailureClass::Connection), &p, true, None));
        assert!(!c.is_cooling(t0));
        assert!(c.record_failure(t0, fail(FailureClass::Unhealthy), &p, true, None));
        assert!(c.is_cooling(t0 + Duration::from_secs(4)));
        assert!(!c.is_cooling(t0 + Duration::from_secs(5)));
    }

    #[test]
    fn failures_older_than_a_minute_are_forgotten() {
        let t0 = Instant::now();
        let mut c = Cooldown::default();
        let p = policy(1);
        c.record_failure(t0, fail(FailureClass::Unhealthy), &p, false, None);
        let later = t0 + Duration::from_secs(61);
        assert!(!c.record_failure(later, fail(FailureClass::Unhealthy), &p, false, None));
        assert_eq!(c.recent_failures(later), 1);
    }

    #[test]
    fn client_errors_never_count() {
        let t0 = Instant::now();
        let mut c = Cooldown::default();
        for _ in 0..10 {
            assert!(!c.record_failure(t0, fail(FailureClass::ClientError), &policy(0), true, None));
        }
        assert_eq!(c.recent_failures(t0), 0);
    }

    #[test]
    fn a_429_cools_at_once_only_when_the_group_has_others() {
        let t0 = Instant::now();
        let p = policy(3);
        let mut alone = Cooldown::default();
        assert!(!alone.record_failure(t0, fail(FailureClass::RateLimited), &p, false, None));
        let mut shared = Cooldown::default();
        assert!(shared.record_failure(t0, fail(FailureClass::RateLimited), &p, true, None));
    }

    #[test]
    fn retry_after_lengthens_the_cooldown_but_never_shortens_it() {
        let t0 = Instant::now();
        let p = policy(0);
        let mut c = Cooldown::default();
        c.record_failure(
            t0,
            fail(FailureClass::RateLimited),
            &p,
            true,
            Some(Duration::from_secs(30)),
        );
        assert_eq!(c.until(t0), Some(t0 + Duration::from_secs(30)));
        let mut d = Cooldown::default();
        d.record_failure(
            t0,
            fail(FailureClass::RateLimited),
            &p,
            true,
            Some(Duration::from_secs(1)),
        );
        assert_eq!(d.until(t0), Some(t0 + Duration::from_secs(5)));
    }

    #[test]
    fn disabled_policy_never_cools() {
        let t0 = Instant::now();
        let p = CooldownPolicy {
            disabled: true,
            ..policy(0)
        };
        let mut c = Cooldown::default();
        assert!(!c.record_failure(t0, fail(FailureClass::RateLimited), &p, true, None));
        assert!(!c.is_cooling(t0));
    }

    #[test]
    fn statuses_map_to_classes() {
        assert_eq!(FailureClass::from_status(429), FailureClass::RateLimited);
        for s in [401, 404, 408, 500, 503] {
            assert_eq!(FailureClass::from_status(s), FailureClass::Unhealthy);
        }
        for s in [400, 403, 413, 422] {
            assert_eq!(FailureClass::from_status(s), FailureClass::ClientError);
        }
    }
}
