//! A deployment's fixed limits and what one request needs of them.

use std::time::Instant;

use super::strategy::Rules;
use super::DeploymentSnapshot;

/// What the router knows about a deployment that never changes: weight, limits, size, price.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Profile {
    /// `simple-shuffle`'s share: `weight`, else `rpm`, else `tpm`, else 1.
    pub weight: f64,
    /// Requests per minute.
    pub rpm: Option<u64>,
    /// Tokens per minute.
    pub tpm: Option<u64>,
    /// Requests in flight at once (`max_parallel_requests`).
    pub max_parallel: Option<u32>,
    /// The most prompt tokens the model takes.
    pub context_window: Option<u64>,
    /// Input plus output price per token, in USD.
    pub cost_per_token: Option<f64>,
}

impl Default for Profile {
    fn default() -> Self {
        Self {
            weight: 1.0,
            rpm: None,
            tpm: None,
            max_parallel: None,
            context_window: None,
            cost_per_token: None,
        }
    }
}

/// What one request asks of a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Need {
    /// Tokens reserved against `tpm`: the prompt's estimate plus `max_tokens` when given.
    pub tokens: u64,
    /// The prompt's estimated tokens, checked against the context window.
    pub prompt_tokens: u64,
    /// A streaming request (judged by time to first token under latency-based routing).
    pub stream: bool,
}

/// A deployment's use at one moment, as limits see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Requests being served.
    pub in_flight: u32,
    /// Requests started in the last minute.
    pub requests: u64,
    /// Tokens used or reserved in the last minute.
    pub tokens: u64,
}

/// Which limit a request would break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `max_parallel_requests`: frees when a request ends.
    Parallel,
    /// `rpm` or `tpm`: frees as the minute's window moves on.
    Rate,
}

/// Why a deployment cannot take a request now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocked {
    /// Cooling down until then.
    Cooling(Instant),
    /// At `rpm`, `tpm` or `max_parallel_requests`; frees up then, if known (a parallel slot
    /// frees whenever a request ends).
    AtLimit(Option<Instant>),
    /// Its context window is smaller than the prompt.
    TooSmall,
}

impl Profile {
    /// Which limit taking one more request with `need_tokens` would break, if any. `rpm` and
    /// `tpm` count only when `hard`; `max_parallel_requests` always does.
    pub fn over_limit(&self, usage: Usage, need_tokens: u64, hard: bool) -> Option<Limit> {
        if self.max_parallel.is_some_and(|m| usage.in_flight >= m) {
            return Some(Limit::Parallel);
        }
        let over_rate = hard
            && (self.rpm.is_some_and(|rpm| usage.requests >= rpm)
                || self
                    .tpm
                    .is_some_and(|tpm| usage.tokens.saturating_add(need_tokens) > tpm));
        over_rate.then_some(Limit::Rate)
    }

    /// Why the deployment in `snap` cannot take a request needing `need`, if it cannot.
    pub fn blocked(
        &self,
        snap: &DeploymentSnapshot,
        need: Need,
        rules: &Rules,
        now: Instant,
    ) -> Option<Blocked> {
        if let Some(until) = snap.cooling_until.filter(|&u| u > now) {
            return Some(Blocked::Cooling(until));
        }
        if rules.pre_call_checks && self.context_window.is_some_and(|w| need.prompt_tokens > w) {
            return Some(Blocked::TooSmall);
        }
        let usage = Usage {
            in_flight: snap.in_flight,
            requests: snap.requests_this_minute,
            tokens: snap.tokens_this_minute,
        };
        self.over_limit(usage, need.tokens, rules.hard_limits())
            .map(|limit| {
                Blocked::AtLimit(match limit {
                    Limit::Parallel => None,
                    Limit::Rate => snap.window_frees_at,
                })
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_limit_binds_at_its_edge() {
        let p = Profile {
            rpm: Some(2),
            tpm: Some(100),
            max_parallel: Some(3),
            ..Profile::default()
        };
        let free = Usage {
            in_flight: 0,
            requests: 1,
            tokens: 60,
        };
        assert_eq!(p.over_limit(free, 40, true), None);
        assert_eq!(p.over_limit(free, 41, true), Some(Limit::Rate));
        let at_rpm = Usage {
            requests: 2,
            ..free
        };
        assert_eq!(p.over_limit(at_rpm, 0, true), Some(Limit::Rate));
        let at_parallel = Usage {
            in_flight: 3,
            ..free
        };
        assert_eq!(p.over_limit(at_parallel, 0, false), Some(Limit::Parallel));
        // Without hard limits, rpm and tpm do not bind.
        let busy = Usage {
            requests: 9,
            ..free
        };
        assert_eq!(p.over_limit(busy, 999, false), None);
    }
}
