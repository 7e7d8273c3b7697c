//! `KeyLedger`: each cached key's live spend, rate windows and requests in flight, and the
//! admission decision, with the clock passed in.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::record::{utc, KeyRecord};
use super::KeyDuration;
use crate::governance::EntityRef;
use crate::routing::RateWindow;

/// Why a key may not make this request now.
#[derive(Debug, Clone, PartialEq)]
pub enum Rejection {
    /// The key is not in the cache: load it and ask again.
    NotCached,
    /// Blocked by an admin.
    Blocked,
    /// Past its `expires`.
    Expired(DateTime<Utc>),
    /// The key's (or a model's, or the proxy's) budget is spent.
    BudgetExceeded {
        /// What ran out.
        what: String,
        /// Spend so far.
        spend: f64,
        /// The budget.
        budget: f64,
    },
    /// The key may not use this model.
    ModelDenied(String),
    /// A per-key limit is reached.
    RateLimited {
        /// Which limit.
        what: String,
        /// When a request would be admitted.
        retry_after: Duration,
    },
    /// A team or end user the request is charged to is blocked.
    EntityBlocked(EntityRef),
    /// A user, team, end user or tag the request is charged to may not use this model.
    EntityModelDenied {
        /// Who.
        entity: EntityRef,
        /// The model asked for.
        model: String,
    },
    /// A rate or parallel limit of a user, team, member, end user or tag is reached.
    EntityRateLimited {
        /// Whose.
        entity: EntityRef,
        /// Which limit.
        what: String,
        /// When a request would be admitted.
        retry_after: Duration,
    },
}

/// What an admitted key request carries along.
#[derive(Debug, Clone, PartialEq)]
pub struct Admission {
    /// The key's spend before this request (stored plus not yet flushed).
    pub spend: f64,
    /// `(limit, remaining)` requests this minute, when the key has an rpm limit.
    pub requests: Option<(u64, u64)>,
    /// `(limit, remaining)` tokens this minute, when the key has a tpm limit.
    pub tokens: Option<(u64, u64)>,
    /// A budget window that just rolled over: persist the reset with this next reset time.
    pub reset: Option<Option<DateTime<Utc>>>,
    /// The key, for the limits checked across instances.
    pub record: Arc<KeyRecord>,
    /// The key's spend on this model group before this request.
    pub model_spend: f64,
    /// When the key's current budget period began (its next reset), naming the period's
    /// shared spend counter; `None` for a key whose spend never resets.
    pub period: Option<DateTime<Utc>>,
    /// Whether this instance counted the request against the key's rate and parallel limits
    /// (false when Redis counts them for every instance).
    pub counted_here: bool,
}

/// Where a key's rate and parallel limits are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counting {
    /// Here: this instance is the only one, or Redis is unreachable.
    Local,
    /// In Redis, for every instance: only the key's other rules are checked here.
    Shared,
}

struct KeyState {
    record: Arc<KeyRecord>,
    spend: f64,
    model_spend: HashMap<String, f64>,
    reset_at: Option<DateTime<Utc>>,
    window: RateWindow,
    model_windows: HashMap<String, RateWindow>,
    in_flight: u64,
    /// When a request of the key last started or ended (unset until one does).
    last_used: Option<Instant>,
}

impl KeyState {
    fn new(record: Arc<KeyRecord>) -> Self {
        Self {
            spend: record.row.spend,
            model_spend: record.model_spend.clone(),
            reset_at: record.row.budget_reset_at.map(utc),
            record,
            window: RateWindow::default(),
            model_windows: HashMap::new(),
            in_flight: 0,
            last_used: None,
        }
    }

    /// Whether the key can be dropped from the cache at `now`: nothing in flight, and no
    /// request for `idle` (longer than any rate window, so no count is lost; it is read from
    /// the database again when next used).
    fn idle_since(&self, now: Instant, idle: Duration) -> bool {
        self.in_flight == 0
            && self
                .last_used
                .is_none_or(|at| now.saturating_duration_since(at) >= idle)
    }
}

/// What an admitted request used, when it ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Used {
    /// Tokens.
    pub tokens: u64,
    /// USD.
    pub cost: f64,
    /// Whether its admission counted it here (see `Admission::counted_here`).
    pub counted_here: bool,
}

/// Every cached key's state.
#[derive(Default)]
pub struct KeyLedger {
    keys: HashMap<String, KeyState>,
}

fn window_wait(window: &RateWindow, now: Instant) -> Duration {
    window.next_expiry(now).unwrap_or(Duration::from_secs(1))
}

impl KeyLedger {
    /// Caches `record`, keeping the live counters of a key already cached.
    pub fn upsert(&mut self, record: KeyRecord) {
        self.upsert_with(record, false);
    }

    /// Caches `record`; with `spend_set` (an admin set the spend) its stored spend replaces
    /// what was counted, else the live spend is kept.
    pub fn upsert_with(&mut self, record: KeyRecord, spend_set: bool) {
        let record = Arc::new(record);
        match self.keys.get_mut(&record.row.token) {
            Some(state) => {
                if spend_set {
                    state.spend = record.row.spend;
                }
                state.reset_at = record.row.budget_reset_at.map(utc);
                state.record = record;
            }
            None => {
                self.keys
                    .insert(record.row.token.clone(), KeyState::new(record));
            }
        }
    }

    /// Moves a regenerated key's live state to its new token.
    pub fn rename(&mut self, old: &str, new: &str) {
        if let Some(state) = self.keys.remove(old) {
            self.keys.insert(new.to_owned(), state);
        }
    }

    /// Drops a key from the cache (deleted or regenerated).
    pub fn remove(&mut self, token: &str) {
        self.keys.remove(token);
    }

    /// Drops the keys idle for `idle` at `now` (see `KeyState::idle_since`), so the cache holds
    /// only the keys in use; how many were dropped.
    pub fn forget_idle(&mut self, now: Instant, idle: Duration) -> usize {
        let before = self.keys.len();
        self.keys.retain(|_, state| !state.idle_since(now, idle));
        before - self.keys.len()
    }

    /// How many keys are cached.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is cached.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The cached record and live spend of a key.
    pub fn get(&self, token: &str) -> Option<(Arc<KeyRecord>, f64)> {
        self.keys.get(token).map(|s| (s.record.clone(), s.spend))
    }

    /// The cached record, if any.
    pub fn record(&self, token: &str) -> Option<Arc<KeyRecord>> {
        self.keys.get(token).map(|s| s.record.clone())
    }

    /// Checks and counts one request of `token` for `group`, as of `now` / `wall`. With
    /// `Counting::Shared` the rate and parallel limits are left to the caller.
    pub fn admit(
        &mut self,
        token: &str,
        group: &str,
        now: Instant,
        wall: DateTime<Utc>,
        counting: Counting,
    ) -> Result<Admission, Rejection> {
        let state = self.keys.get_mut(token).ok_or(Rejection::NotCached)?;
        state.last_used = Some(now);
        let row = &state.record.row;
        if row.blocked {
            return Err(Rejection::Blocked);
        }
        if let Some(expires) = row.expires.map(utc).filter(|e| *e <= wall) {
            return Err(Rejection::Expired(expires));
        }
        let mut reset = None;
        if let Some(at) = state.reset_at.filter(|at| *at <= wall) {
            let next = row
                .budget_duration
                .as_deref()
                .and_then(KeyDuration::parse)
                .and_then(|d| {
                    let mut next = d.after(at)?;
                    while next <= wall {
                        next = d.after(next)?;
                    }
                    Some(next)
                });
            state.spend = 0.0;
            state.model_spend.clear();
            state.reset_at = next;
            reset = Some(next);
        }
        if let Some(budget) = row.max_budget.filter(|b| state.spend >= *b) {
            return Err(Rejection::BudgetExceeded {
                what: "key".into(),
                spend: state.spend,
                budget,
            });
        }
        if let Some(&budget) = state.record.model_max_budget.get(group) {
            let spent = state.model_spend.get(group).copied().unwrap_or(0.0);
            if spent >= budget {
                return Err(Rejection::BudgetExceeded {
                    what: format!("model {group}"),
                    spend: spent,
                    budget,
                });
            }
        }
        let model_spend = state.model_spend.get(group).copied().unwrap_or(0.0);
        if counting == Counting::Shared {
            return Ok(Admission {
                spend: state.spend,
                requests: row.rpm_limit.map(|l| (l as u64, l as u64)),
                tokens: row.tpm_limit.map(|l| (l as u64, l as u64)),
                reset,
                record: state.record.clone(),
                model_spend,
                period: state.reset_at,
                counted_here: false,
            });
        }
        if let Some(max) = row
            .max_parallel_requests
            .filter(|m| state.in_flight >= *m as u64)
        {
            return Err(Rejection::RateLimited {
                what: format!("max_parallel_requests={max}"),
                retry_after: Duration::from_secs(1),
            });
        }
        let requests_now = state.window.requests(now);
        let tokens_now = state.window.tokens(now);
        if let Some(rpm) = row.rpm_limit.filter(|l| requests_now >= *l as u64) {
            return Err(Rejection::RateLimited {
                what: format!("rpm_limit={rpm}"),
                retry_after: window_wait(&state.window, now),
            });
        }
        if let Some(tpm) = row.tpm_limit.filter(|l| tokens_now >= *l as u64) {
            return Err(Rejection::RateLimited {
                what: format!("tpm_limit={tpm}"),
                retry_after: window_wait(&state.window, now),
            });
        }
        let model_window = state.model_windows.entry(group.to_owned()).or_default();
        if let Some(&rpm) = state.record.model_rpm_limit.get(group) {
            if model_window.requests(now) >= rpm {
                return Err(Rejection::RateLimited {
                    what: format!("model_rpm_limit for {group}={rpm}"),
                    retry_after: window_wait(model_window, now),
                });
            }
        }
        if let Some(&tpm) = state.record.model_tpm_limit.get(group) {
            if model_window.tokens(now) >= tpm {
                return Err(Rejection::RateLimited {
                    what: format!("model_tpm_limit for {group}={tpm}"),
                    retry_after: window_wait(model_window, now),
                });
            }
        }
        model_window.record_request(now);
        state.window.record_request(now);
        state.in_flight += 1;
        Ok(Admission {
            spend: state.spend,
            requests: row
                .rpm_limit
                .map(|l| (l as u64, (l as u64).saturating_sub(requests_now + 1))),
            tokens: row
                .tpm_limit
                .map(|l| (l as u64, (l as u64).saturating_sub(tokens_now))),
            reset,
            record: state.record.clone(),
            model_spend,
            period: state.reset_at,
            counted_here: true,
        })
    }

    /// Ends an admitted request: frees its slot and counts its tokens (when it was counted
    /// here) and its cost.
    pub fn settle(&mut self, token: &str, group: &str, used: Used, now: Instant) {
        let Some(state) = self.keys.get_mut(token) else {
            return;
        };
        state.last_used = Some(now);
        let Used {
            tokens,
            cost,
            counted_here,
        } = used;
        if counted_here {
            state.in_flight = state.in_flight.saturating_sub(1);
            state.window.record_tokens(now, tokens);
            if let Some(w) = state.model_windows.get_mut(group) {
                w.record_tokens(now, tokens);
            }
        }
        state.spend += cost;
        *state.model_spend.entry(group.to_owned()).or_default() += cost;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::models::KeyRow;

    fn row() -> KeyRow {
        KeyRow::blank("t".into(), "sk-...abcd".into(), Utc::now().naive_utc())
    }

    fn used(tokens: u64, cost: f64) -> Used {
        Used {
            tokens,
            cost,
            counted_here: true,
        }
    }

    fn ledger(row: KeyRow) -> KeyLedger {
        let mut l = KeyLedger::default();
        l.upsert(KeyRecord::new(row, HashMap::new()));
        l
    }

    #[test]
    fn unknown_keys_must_be_loaded_first() {
        let mut l = KeyLedger::default();
        assert_eq!(
            l.admit("t", "g", Instant::now(), Utc::now(), Counting::Local),
            Err(Rejection::NotCached)
        );
    }

    #[test]
    fn blocked_and_expired_keys_are_refused() {
        let mut r = row();
        r.blocked = true;
        assert_eq!(
            ledger(r).admit("t", "g", Instant::now(), Utc::now(), Counting::Local),
            Err(Rejection::Blocked)
        );
        let mut r = row();
        let past = Utc::now() - chrono::Duration::seconds(5);
        r.expires = Some(past.naive_utc());
        assert!(matches!(
            ledger(r).admit("t", "g", Instant::now(), Utc::now(), Counting::Local),
            Err(Rejection::Expired(_))
        ));
    }

    #[test]
    fn rpm_is_a_sliding_sixty_second_window() {
        let mut r = row();
        r.rpm_limit = Some(2);
        let mut l = ledger(r);
        let t0 = Instant::now();
        let wall = Utc::now();
        let first = l.admit("t", "g", t0, wall, Counting::Local).unwrap();
        assert_eq!(first.requests, Some((2, 1)));
        l.admit(
            "t",
            "g",
            t0 + Duration::from_secs(10),
            wall,
            Counting::Local,
        )
        .unwrap();
        let refused = l
            .admit(
                "t",
                "g",
                t0 + Duration::from_secs(59),
                wall,
                Counting::Local,
            )
            .unwrap_err();
        assert_eq!(
            refused,
            Rejection::RateLimited {
                what: "rpm_limit=2".into(),
                retry_after: Duration::from_secs(1)
            }
        );
        assert!(l
            .admit(
                "t",
                "g",
                t0 + Duration::from_secs(60),
                wall,
                Counting::Local
            )
            .is_ok());
    }

    #[test]
    fn only_keys_idle_past_the_window_with_nothing_in_flight_are_forgotten() {
        let t0 = Instant::now();
        let idle = Duration::from_secs(600);
        let mut l = ledger(row());
        let mut other = row();
        other.token = "other".into();
        l.upsert(KeyRecord::new(other, HashMap::new()));
        let wall = Utc::now();
        l.admit("t", "g", t0, wall, Counting::Local).unwrap();
        l.admit("other", "g", t0, wall, Counting::Local).unwrap();
        l.settle("other", "g", used(1, 0.0), t0);
        assert_eq!(l.forget_idle(t0 + Duration::from_secs(599), idle), 0);
        // "t" still has a request in flight; "other" has been idle for ten minutes.
        assert_eq!(l.forget_idle(t0 + idle, idle), 1);
        assert!(l.get("other").is_none());
        assert!(l.get("t").is_some());
        l.settle("t", "g", used(1, 0.0), t0 + idle);
        assert_eq!(l.forget_idle(t0 + 2 * idle, idle), 1);
        assert!(l.is_empty());
    }

    #[test]
    fn parallel_requests_are_capped_until_settled() {
        let mut r = row();
        r.max_parallel_requests = Some(1);
        let mut l = ledger(r);
        let t0 = Instant::now();
        l.admit("t", "g", t0, Utc::now(), Counting::Local).unwrap();
        assert!(matches!(
            l.admit("t", "g", t0, Utc::now(), Counting::Local),
            Err(Rejection::RateLimited { .. })
        ));
        l.settle("t", "g", used(10, 0.0), t0);
        assert!(l.admit("t", "g", t0, Utc::now(), Counting::Local).is_ok());
    }

    #[test]
    fn spend_counts_towards_the_key_and_model_budgets() {
        let mut r = row();
        r.max_budget = Some(1.0);
        r.model_max_budget = r#"{"cheap": {"budget_limit": 0.1}}"#.into();
        let mut l = ledger(r);
        let t0 = Instant::now();
        l.admit("t", "cheap", t0, Utc::now(), Counting::Local)
            .unwrap();
        l.settle("t", "cheap", used(10, 0.1), t0);
        assert!(matches!(
            l.admit("t", "cheap", t0, Utc::now(), Counting::Local),
            Err(Rejection::BudgetExceeded { .. })
        ));
        let other = l
            .admit("t", "other", t0, Utc::now(), Counting::Local)
            .unwrap();
        assert!((other.spend - 0.1).abs() < 1e-12);
        l.settle("t", "other", used(10, 0.95), t0);
        assert!(matches!(
            l.admit("t", "other", t0, Utc::now(), Counting::Local),
            Err(Rejection::BudgetExceeded { .. })
        ));
    }

    #[test]
    fn a_budget_window_that_passed_resets_spend() {
        let mut r = row();
        r.max_budget = Some(1.0);
        r.spend = 5.0;
        r.budget_duration = Some("1d".into());
        let past = Utc::now() - chrono::Duration::hours(1);
        r.budget_reset_at = Some(past.naive_utc());
        let mut l = ledger(r);
        let admitted = l
            .admit("t", "g", Instant::now(), Utc::now(), Counting::Local)
            .unwrap();
        assert_eq!(admitted.spend, 0.0);
        let next = admitted.reset.unwrap().unwrap();
        assert!(next > Utc::now() && next <= Utc::now() + chrono::Duration::days(1));
    }

    #[test]
    fn an_admin_update_keeps_live_counters() {
        let mut r = row();
        r.max_parallel_requests = Some(5);
        let mut l = ledger(r.clone());
        let t0 = Instant::now();
        l.admit("t", "g", t0, Utc::now(), Counting::Local).unwrap();
        l.settle("t", "g", used(1, 0.25), t0);
        r.max_parallel_requests = Some(6);
        l.upsert(KeyRecord::new(r.clone(), HashMap::new()));
        assert_eq!(l.get("t").unwrap().1, 0.25);
        r.spend = 2.0;
        l.upsert_with(KeyRecord::new(r, HashMap::new()), true);
        assert_eq!(l.get("t").unwrap().1, 2.0);
    }
}
