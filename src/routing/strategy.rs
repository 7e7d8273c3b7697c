//! Routing strategies: which of a group's available deployments takes the next request.

/// A deployment that may take the request, with the weight `simple-shuffle` gives it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// The deployment's index in the router's table.
    pub index: usize,
    /// Its share: `weight`, else `rpm`, else `tpm`, else 1.
    pub weight: f64,
}

/// `simple-shuffle`: a weighted random pick; `roll` is uniform in `[0, 1)`.
pub fn pick_simple_shuffle(candidates: &[Candidate], roll: f64) -> Option<usize> {
    let total: f64 = candidates.iter().map(|c| c.weight.max(0.0)).sum();
    if candidates.is_empty() {
        return None;
    }
    if total <= 0.0 {
        let at = ((roll * candidates.len() as f64) as usize).min(candidates.len() - 1);
        return Some(candidates[at].index);
    }
    let mut target = roll * total;
    for c in candidates {
        let w = c.weight.max(0.0);
        if target < w {
            return Some(c.index);
        }
        target -= w;
    }
    candidates.last().map(|c| c.index)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cands(weights: &[f64]) -> Vec<Candidate> {
        weights
            .iter()
            .enumerate()
            .map(|(index, &weight)| Candidate { index, weight })
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
}

/// Why no deployment of a group can take the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoCapacity {
    /// When the first cooling deployment comes back, if any is cooling.
    pub earliest_back: Option<std::time::Instant>,
}

/// Picks among `members` of a group those not excluded and not cooling down, by `simple-shuffle`.
pub fn choose(
    members: &[usize],
    weights: &[f64],
    snapshots: &[super::DeploymentSnapshot],
    exclude: &[usize],
    now: std::time::Instant,
    roll: f64,
) -> Result<usize, NoCapacity> {
    let mut candidates: Vec<Candidate> = Vec::with_capacity(members.len());
    let mut earliest_back = None;
    for &index in members {
        if exclude.contains(&index) {
            continue;
        }
        match snapshots[index].cooling_until.filter(|&until| until > now) {
            Some(until) => {
                earliest_back =
                    Some(earliest_back.map_or(until, |e: std::time::Instant| e.min(until)));
            }
            None => candidates.push(Candidate {
                index,
                weight: weights[index],
            }),
        }
    }
    pick_simple_shuffle(&candidates, roll).ok_or(NoCapacity { earliest_back })
}

#[cfg(test)]
mod choose_tests {
    use super::*;
    use crate::routing::DeploymentSnapshot;
    use std::time::{Duration, Instant};

    #[test]
    fn cooling_and_excluded_deployments_are_never_picked() {
        let now = Instant::now();
        let mut snaps = vec![DeploymentSnapshot::default(); 3];
        snaps[0].cooling_until = Some(now + Duration::from_secs(5));
        let weights = [1.0, 1.0, 1.0];
        for i in 0..100 {
            let roll = i as f64 / 100.0;
            assert_eq!(choose(&[0, 1, 2], &weights, &snaps, &[1], now, roll), Ok(2));
        }
    }

    #[test]
    fn when_all_are_cooling_the_earliest_return_is_reported() {
        let now = Instant::now();
        let mut snaps = vec![DeploymentSnapshot::default(); 2];
        snaps[0].cooling_until = Some(now + Duration::from_secs(9));
        snaps[1].cooling_until = Some(now + Duration::from_secs(3));
        let got = choose(&[0, 1], &[1.0, 1.0], &snaps, &[], now, 0.5);
        assert_eq!(
            got,
            Err(NoCapacity {
                earliest_back: Some(now + Duration::from_secs(3))
            })
        );
    }

    #[test]
    fn an_expired_cooldown_no_longer_blocks() {
        let now = Instant::now();
        let mut snaps = vec![DeploymentSnapshot::default(); 1];
        snaps[0].cooling_until = Some(now);
        assert_eq!(choose(&[0], &[1.0], &snaps, &[], now, 0.5), Ok(0));
    }
}
