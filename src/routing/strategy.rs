//! Routing strategies: which of a group's available deployments takes the next request.

use std::time::Instant;

use super::limits::{Blocked, Need, Profile};
use super::DeploymentSnapshot;

/// LiteLLM's routing strategies (`router_settings.routing_strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RoutingStrategy {
    /// Weighted random by `weight`, `rpm` or `tpm`.
    #[default]
    SimpleShuffle,
    /// Fewest requests in flight.
    LeastBusy,
    /// Lowest tokens used this minute, `rpm`/`tpm` as hard limits.
    UsageBased,
    /// The same (LiteLLM's rewrite of it; here both are exact).
    UsageBasedV2,
    /// Lowest recent latency.
    LatencyBased,
    /// Cheapest per token.
    CostBased,
}

impl RoutingStrategy {
    /// The strategy LiteLLM calls `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "simple-shuffle" => Self::SimpleShuffle,
            "least-busy" => Self::LeastBusy,
            "usage-based-routing" => Self::UsageBased,
            "usage-based-routing-v2" => Self::UsageBasedV2,
            "latency-based-routing" => Self::LatencyBased,
            "cost-based-routing" => Self::CostBased,
            _ => return None,
        })
    }
}

/// How a group's deployment is chosen: the strategy and the checks before it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Rules {
    /// `routing_strategy`.
    pub strategy: RoutingStrategy,
    /// `enable_pre_call_checks`: limits are hard and context windows are checked.
    pub pre_call_checks: bool,
    /// `routing_strategy_args.lowest_latency_buffer`: deployments within this fraction of the
    /// fastest share the traffic.
    pub latency_buffer: f64,
}

impl Rules {
    /// Whether `rpm` and `tpm` are hard limits (rather than shuffle weights).
    pub fn hard_limits(&self) -> bool {
        self.pre_call_checks
            || matches!(
                self.strategy,
                RoutingStrategy::UsageBased | RoutingStrategy::UsageBasedV2
            )
    }
}

/// Why no deployment of a group can take the request, and when the first comes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NoCapacity {
    /// When the first blocked deployment comes back, if that is known.
    pub earliest_back: Option<Instant>,
    /// Deployments cooling down.
    pub cooling: u32,
    /// Deployments at their `rpm`, `tpm` or `max_parallel_requests`.
    pub at_limit: u32,
    /// Deployments whose context window is smaller than the prompt.
    pub too_small: u32,
}

impl NoCapacity {
    /// Counts one blocked deployment.
    pub fn add(&mut self, blocked: Blocked) {
        match blocked {
            Blocked::Cooling(until) => {
                self.cooling += 1;
                self.back_at(Some(until));
            }
            Blocked::AtLimit(frees) => {
                self.at_limit += 1;
                self.back_at(frees);
            }
            Blocked::TooSmall => self.too_small += 1,
        }
    }

    /// Folds in another tier's or attempt's reasons.
    pub fn merge(&mut self, other: NoCapacity) {
        self.cooling += other.cooling;
        self.at_limit += other.at_limit;
        self.too_small += other.too_small;
        self.back_at(other.earliest_back);
    }

    fn back_at(&mut self, at: Option<Instant>) {
        self.earliest_back = match (self.earliest_back, at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }

    /// Every deployment was refused only for its context window: the prompt is too long.
    pub fn prompt_too_long(&self) -> bool {
        self.too_small > 0 && self.cooling == 0 && self.at_limit == 0
    }
}

/// A deployment that may take the request, scored by the strategy (lower is better).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// The deployment's index in the router's table.
    pub index: usize,
    /// `simple-shuffle`'s weight, or the strategy's score.
    pub score: f64,
}

/// `simple-shuffle`: a weighted random pick; `roll` is uniform in `[0, 1)`.
pub fn pick_simple_shuffle(candidates: &[Candidate], roll: f64) -> Option<usize> {
    let total: f64 = candidates.iter().map(|c| c.score.max(0.0)).sum();
    if candidates.is_empty() {
        return None;
    }
    if total <= 0.0 {
        let at = ((roll * candidates.len() as f64) as usize).min(candidates.len() - 1);
        return Some(candidates[at].index);
    }
    let mut target = roll * total;
    for c in candidates {
        let w = c.score.max(0.0);
        if target < w {
            return Some(c.index);
        }
        target -= w;
    }
    candidates.last().map(|c| c.index)
}

/// The lowest score wins; every candidate within `buffer` (a fraction) of it shares the
/// traffic, picked by `roll`.
pub fn pick_lowest(candidates: &[Candidate], buffer: f64, roll: f64) -> Option<usize> {
    let best = candidates
        .iter()
        .map(|c| c.score)
        .fold(f64::INFINITY, f64::min);
    let limit = if best.is_finite() {
        best + best.abs() * buffer.max(0.0)
    } else {
        best
    };
    let within = candidates.iter().filter(|c| c.score <= limit).count();
    if within == 0 {
        // Every score is infinite (nothing known): all are equal.
        let at = ((roll * candidates.len() as f64) as usize).min(candidates.len().checked_sub(1)?);
        return Some(candidates[at].index);
    }
    let nth = ((roll * within as f64) as usize).min(within - 1);
    candidates
        .iter()
        .filter(|c| c.score <= limit)
        .nth(nth)
        .map(|c| c.index)
}

/// What the strategy ranks a deployment by (lower is better); `simple-shuffle` uses weights.
fn score(rules: &Rules, profile: &Profile, snap: &DeploymentSnapshot, need: Need) -> f64 {
    match rules.strategy {
        RoutingStrategy::SimpleShuffle => profile.weight,
        RoutingStrategy::LeastBusy => f64::from(snap.in_flight),
        RoutingStrategy::UsageBased | RoutingStrategy::UsageBasedV2 => {
            snap.tokens_this_minute as f64
        }
        // A deployment with no measurement yet counts as fastest, so it gets measured.
        RoutingStrategy::LatencyBased => {
            let measured = if need.stream {
                snap.first_token_latency.or(snap.latency_per_token)
            } else {
                snap.latency_per_token
            };
            measured.unwrap_or(0.0)
        }
        RoutingStrategy::CostBased => profile.cost_per_token.unwrap_or(f64::INFINITY),
    }
}

/// The group members a pick may use, with what each is known for.
#[derive(Debug, Clone, Copy)]
pub struct Pool<'a> {
    /// Each deployment's fixed limits and weight.
    pub profiles: &'a [Profile],
    /// Each deployment's latest state.
    pub snapshots: &'a [DeploymentSnapshot],
}

/// Picks among `members` those not excluded, not cooling down, under their limits and large
/// enough for the prompt, by the strategy in `rules`. `scratch` is reused between picks.
///
/// The router's view of usage may be stale (a request that ended, or a minute's window that
/// moved on, is only seen at the deployment's next publication), so when every deployment looks
/// at its limit, those are still offered, best first: the deployment, which knows exactly,
/// refuses the reservation if it really is full. Cooling and too-small deployments are never
/// offered: those views are exact.
#[expect(clippy::too_many_arguments, reason = "one pick's whole input")]
pub fn choose(
    rules: &Rules,
    pool: Pool<'_>,
    members: &[usize],
    exclude: &[usize],
    need: Need,
    now: Instant,
    roll: f64,
    scratch: &mut Vec<Candidate>,
) -> Result<usize, NoCapacity> {
    let mut no = NoCapacity::default();
    gather(
        rules,
        pool,
        members,
        exclude,
        need,
        now,
        scratch,
        |blocked| match blocked {
            None => true,
            Some(b) => {
                no.add(b);
                false
            }
        },
    );
    if scratch.is_empty() && no.at_limit > 0 {
        gather(
            rules,
            pool,
            members,
            exclude,
            need,
            now,
            scratch,
            |blocked| matches!(blocked, Some(Blocked::AtLimit(_))),
        );
    }
    let picked = match rules.strategy {
        RoutingStrategy::SimpleShuffle => pick_simple_shuffle(scratch, roll),
        RoutingStrategy::LatencyBased => pick_lowest(scratch, rules.latency_buffer, roll),
        _ => pick_lowest(scratch, 0.0, roll),
    };
    picked.ok_or(no)
}

/// Fills `scratch` with the scored members that are not excluded and that `take` accepts,
/// given why each is blocked (if it is).
#[expect(clippy::too_many_arguments, reason = "one pick's whole input")]
fn gather(
    rules: &Rules,
    pool: Pool<'_>,
    members: &[usize],
    exclude: &[usize],
    need: Need,
    now: Instant,
    scratch: &mut Vec<Candidate>,
    mut take: impl FnMut(Option<Blocked>) -> bool,
) {
    scratch.clear();
    for &index in members {
        if exclude.contains(&index) {
            continue;
        }
        let (profile, snap) = (&pool.profiles[index], &pool.snapshots[index]);
        if take(profile.blocked(snap, need, rules, now)) {
            scratch.push(Candidate {
                index,
                score: score(rules, profile, snap, need),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cands(weights: &[f64]) -> Vec<Candidate> {
        weights
            .iter()
            .enumerate()
            .map(|(index, &score)| Candidate { index, score })
            .collect()
    }

    #[test]
    fn rolls_fall_into_weighted_slices() {
        let c = cands(&[1.0, 3.0]);
        assert_eq!(pick_simple_shuffle(&c, 0.0), Some(0));
        assert_eq!(pick_simple_shuffle(&c, 0.24), Some(0));
        assert_eq!(pick_simple_shuffle(&c, 0.26), Some(1));
        assert_eq!(pick_simple_shuffle(&c, 0.999), Some(1));
    }

    #[test]
    fn empty_group_picks_nothing() {
        assert_eq!(pick_simple_shuffle(&[], 0.5), None);
        assert_eq!(pick_lowest(&[], 0.0, 0.5), None);
    }

    #[test]
    fn zero_weights_fall_back_to_uniform() {
        let c = cands(&[0.0, 0.0]);
        assert_eq!(pick_simple_shuffle(&c, 0.1), Some(0));
        assert_eq!(pick_simple_shuffle(&c, 0.9), Some(1));
    }

    #[test]
    fn distribution_follows_weights() {
        let c = cands(&[1.0, 2.0, 7.0]);
        let mut counts = [0u32; 3];
        for i in 0..10_000 {
            let roll = (i as f64 + 0.5) / 10_000.0;
            counts[pick_simple_shuffle(&c, roll).unwrap()] += 1;
        }
        assert_eq!(counts, [1000, 2000, 7000]);
    }

    #[test]
    fn lowest_score_wins_and_ties_share_by_roll() {
        let c = cands(&[5.0, 2.0, 9.0, 2.0]);
        assert_eq!(pick_lowest(&c, 0.0, 0.0), Some(1));
        assert_eq!(pick_lowest(&c, 0.0, 0.99), Some(3));
    }

    #[test]
    fn a_buffer_admits_the_nearly_fastest() {
        let c = cands(&[100.0, 115.0, 130.0]);
        assert_eq!(pick_lowest(&c, 0.0, 0.99), Some(0));
        // 20% over 100 ms: the 115 ms deployment shares, the 130 ms one does not.
        assert_eq!(pick_lowest(&c, 0.2, 0.0), Some(0));
        assert_eq!(pick_lowest(&c, 0.2, 0.99), Some(1));
    }

    #[test]
    fn unknown_costs_are_all_equal() {
        let c = cands(&[f64::INFINITY, f64::INFINITY]);
        assert_eq!(pick_lowest(&c, 0.0, 0.0), Some(0));
        assert_eq!(pick_lowest(&c, 0.0, 0.9), Some(1));
    }

    #[test]
    fn strategies_are_named_as_litellm_names_them() {
        assert_eq!(
            RoutingStrategy::parse("usage-based-routing-v2"),
            Some(RoutingStrategy::UsageBasedV2)
        );
        assert_eq!(RoutingStrategy::parse("fastest"), None);
        assert!(Rules {
            strategy: RoutingStrategy::UsageBased,
            ..Rules::default()
        }
        .hard_limits());
        assert!(!Rules::default().hard_limits());
        assert!(Rules {
            pre_call_checks: true,
            ..Rules::default()
        }
        .hard_limits());
    }
}

#[cfg(test)]
mod choose_tests {
    use super::*;
    use std::time::Duration;

    struct Group {
        rules: Rules,
        profiles: Vec<Profile>,
        snaps: Vec<DeploymentSnapshot>,
    }

    impl Group {
        fn new(n: usize, strategy: RoutingStrategy) -> Self {
            Self {
                rules: Rules {
                    strategy,
                    ..Rules::default()
                },
                profiles: vec![Profile::default(); n],
                snaps: vec![DeploymentSnapshot::default(); n],
            }
        }

        fn pick(
            &self,
            exclude: &[usize],
            need: Need,
            now: Instant,
            roll: f64,
        ) -> Result<usize, NoCapacity> {
            let members: Vec<usize> = (0..self.profiles.len()).collect();
            let pool = Pool {
                profiles: &self.profiles,
                snapshots: &self.snaps,
            };
            choose(
                &self.rules,
                pool,
                &members,
                exclude,
                need,
                now,
                roll,
                &mut Vec::new(),
            )
        }

        /// Which deployments the pick lands on over the whole range of rolls.
        fn picks(&self, need: Need, now: Instant) -> Vec<usize> {
            let mut seen: Vec<usize> = (0..100)
                .filter_map(|i| self.pick(&[], need, now, i as f64 / 100.0).ok())
                .collect();
            seen.sort_unstable();
            seen.dedup();
            seen
        }
    }

    #[test]
    fn cooling_and_excluded_deployments_are_never_picked() {
        let now = Instant::now();
        let mut g = Group::new(3, RoutingStrategy::SimpleShuffle);
        g.snaps[0].cooling_until = Some(now + Duration::from_secs(5));
        for i in 0..100 {
            let roll = i as f64 / 100.0;
            assert_eq!(g.pick(&[1], Need::default(), now, roll), Ok(2));
        }
    }

    #[test]
    fn when_all_are_cooling_the_earliest_return_is_reported() {
        let now = Instant::now();
        let mut g = Group::new(2, RoutingStrategy::SimpleShuffle);
        g.snaps[0].cooling_until = Some(now + Duration::from_secs(9));
        g.snaps[1].cooling_until = Some(now + Duration::from_secs(3));
        let got = g.pick(&[], Need::default(), now, 0.5);
        assert_eq!(
            got,
            Err(NoCapacity {
                earliest_back: Some(now + Duration::from_secs(3)),
                cooling: 2,
                ..NoCapacity::default()
            })
        );
    }

    #[test]
    fn an_expired_cooldown_no_longer_blocks() {
        let now = Instant::now();
        let mut g = Group::new(1, RoutingStrategy::SimpleShuffle);
        g.snaps[0].cooling_until = Some(now);
        assert_eq!(g.pick(&[], Need::default(), now, 0.5), Ok(0));
    }

    #[test]
    fn least_busy_takes_the_fewest_in_flight() {
        let now = Instant::now();
        let mut g = Group::new(3, RoutingStrategy::LeastBusy);
        g.snaps[0].in_flight = 4;
        g.snaps[1].in_flight = 1;
        g.snaps[2].in_flight = 2;
        assert_eq!(g.picks(Need::default(), now), vec![1]);
        g.snaps[2].in_flight = 1;
        assert_eq!(g.picks(Need::default(), now), vec![1, 2]);
    }

    #[test]
    fn usage_based_takes_the_lowest_tpm_under_its_limits() {
        let now = Instant::now();
        let mut g = Group::new(3, RoutingStrategy::UsageBasedV2);
        g.snaps[0].tokens_this_minute = 100;
        g.snaps[1].tokens_this_minute = 900;
        g.snaps[2].tokens_this_minute = 500;
        assert_eq!(g.picks(Need::default(), now), vec![0]);
        // Deployment 0 is at its rpm: the next lowest takes over.
        g.profiles[0].rpm = Some(10);
        g.snaps[0].requests_this_minute = 10;
        assert_eq!(g.picks(Need::default(), now), vec![2]);
        // Deployment 2 cannot fit the estimate under its tpm.
        g.profiles[2].tpm = Some(1000);
        let need = Need {
            tokens: 600,
            ..Need::default()
        };
        assert_eq!(g.picks(need, now), vec![1]);
    }

    #[test]
    fn when_all_look_full_the_best_is_still_offered_for_the_deployment_to_decide() {
        let now = Instant::now();
        let mut g = Group::new(3, RoutingStrategy::UsageBasedV2);
        for (i, tokens) in [(0, 300), (1, 100), (2, 200)] {
            g.profiles[i].rpm = Some(1);
            g.snaps[i].requests_this_minute = 1;
            g.snaps[i].tokens_this_minute = tokens;
        }
        g.snaps[2].cooling_until = Some(now + Duration::from_secs(1));
        // All look full (the view may be stale); the lowest-usage one not cooling is offered.
        assert_eq!(g.picks(Need::default(), now), vec![1]);
        // Once the deployment refused (excluded), the next; cooling ones never.
        assert_eq!(g.pick(&[1], Need::default(), now, 0.5), Ok(0));
        let no = g.pick(&[0, 1], Need::default(), now, 0.5).unwrap_err();
        assert_eq!((no.cooling, no.at_limit), (1, 0));
    }

    #[test]
    fn limits_are_weights_under_simple_shuffle_but_hard_with_pre_call_checks() {
        let now = Instant::now();
        let mut g = Group::new(2, RoutingStrategy::SimpleShuffle);
        g.profiles[0].rpm = Some(1);
        g.profiles[0].weight = 1.0;
        g.profiles[1].weight = 1.0;
        g.snaps[0].requests_this_minute = 5;
        assert_eq!(g.picks(Need::default(), now), vec![0, 1]);
        g.rules.pre_call_checks = true;
        assert_eq!(g.picks(Need::default(), now), vec![1]);
        g.snaps[1].requests_this_minute = 5;
        g.profiles[1].rpm = Some(1);
        assert_eq!(g.picks(Need::default(), now), vec![0, 1]);
    }

    #[test]
    fn max_parallel_requests_always_holds() {
        let now = Instant::now();
        let mut g = Group::new(2, RoutingStrategy::SimpleShuffle);
        g.profiles[0].max_parallel = Some(2);
        g.snaps[0].in_flight = 2;
        assert_eq!(g.picks(Need::default(), now), vec![1]);
        g.snaps[1].cooling_until = Some(now + Duration::from_secs(1));
        // Only the full one is left: offered, for the deployment itself to refuse if still full.
        assert_eq!(g.picks(Need::default(), now), vec![0]);
        let no = g.pick(&[0], Need::default(), now, 0.1).unwrap_err();
        assert_eq!((no.at_limit, no.cooling), (0, 1));
    }

    #[test]
    fn pre_call_checks_skip_context_windows_smaller_than_the_prompt() {
        let now = Instant::now();
        let mut g = Group::new(2, RoutingStrategy::SimpleShuffle);
        g.profiles[0].context_window = Some(4_000);
        g.profiles[1].context_window = Some(16_000);
        let need = Need {
            prompt_tokens: 5_000,
            tokens: 5_000,
            stream: false,
        };
        assert_eq!(g.picks(need, now), vec![0, 1]);
        g.rules.pre_call_checks = true;
        assert_eq!(g.picks(need, now), vec![1]);
        let long = Need {
            prompt_tokens: 20_000,
            ..need
        };
        let no = g.pick(&[], long, now, 0.1).unwrap_err();
        assert!(no.prompt_too_long());
    }

    #[test]
    fn latency_based_prefers_the_fastest_and_measures_the_unmeasured() {
        let now = Instant::now();
        let mut g = Group::new(3, RoutingStrategy::LatencyBased);
        g.snaps[0].latency_per_token = Some(0.010);
        g.snaps[1].latency_per_token = Some(0.002);
        g.snaps[2].latency_per_token = Some(0.0021);
        assert_eq!(g.picks(Need::default(), now), vec![1]);
        g.rules.latency_buffer = 0.1;
        assert_eq!(g.picks(Need::default(), now), vec![1, 2]);
        g.snaps[0].latency_per_token = None;
        assert_eq!(g.picks(Need::default(), now), vec![0]);
    }

    #[test]
    fn streams_are_judged_by_time_to_first_token() {
        let now = Instant::now();
        let mut g = Group::new(2, RoutingStrategy::LatencyBased);
        g.snaps[0].latency_per_token = Some(0.001);
        g.snaps[0].first_token_latency = Some(0.900);
        g.snaps[1].latency_per_token = Some(0.005);
        g.snaps[1].first_token_latency = Some(0.100);
        assert_eq!(g.picks(Need::default(), now), vec![0]);
        let stream = Need {
            stream: true,
            ..Need::default()
        };
        assert_eq!(g.picks(stream, now), vec![1]);
    }

    #[test]
    fn cost_based_takes_the_cheapest_known_price() {
        let now = Instant::now();
        let mut g = Group::new(3, RoutingStrategy::CostBased);
        g.profiles[0].cost_per_token = Some(3e-5);
        g.profiles[1].cost_per_token = Some(1e-6);
        assert_eq!(g.picks(Need::default(), now), vec![1]);
        g.snaps[1].cooling_until = Some(now + Duration::from_secs(1));
        assert_eq!(g.picks(Need::default(), now), vec![0]);
    }
}
