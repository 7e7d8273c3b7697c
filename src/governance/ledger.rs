//! `EntityLedger`: each cached entity's live spend, rate window and requests in flight, and the
//! check and count of one request against all the entities it is charged to, with the clock
//! passed in.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::entity::{EntityKind, EntityRecord, EntityRef};
use crate::keys::{KeyDuration, Rejection, Used};
use crate::routing::RateWindow;

/// The end of the budget period that holds `wall`, when the period ending at `at` has passed:
/// `Some(next)` (`None` inside when `duration` no longer parses), or `None` while it has not.
pub fn rolled_over(
    at: Option<DateTime<Utc>>,
    duration: Option<KeyDuration>,
    wall: DateTime<Utc>,
) -> Option<Option<DateTime<Utc>>> {
    let at = at.filter(|at| *at <= wall)?;
    Some(duration.and_then(|d| {
        let mut next = d.after(at)?;
        while next <= wall {
            next = d.after(next)?;
        }
        Some(next)
    }))
}

struct EntityState {
    /// `None`: no row exists (only defaults apply, spend is still counted).
    record: Option<Arc<EntityRecord>>,
    spend: f64,
    reset_at: Option<DateTime<Utc>>,
    window: RateWindow,
    in_flight: u64,
    last_used: Option<Instant>,
    /// Changed elsewhere: read again before its next request.
    stale: bool,
}

impl EntityState {
    fn new(record: Option<Arc<EntityRecord>>) -> Self {
        Self {
            spend: record.as_ref().map_or(0.0, |r| r.row.spend),
            reset_at: record.as_ref().and_then(|r| r.reset_at()),
            record,
            window: RateWindow::default(),
            in_flight: 0,
            last_used: None,
            stale: false,
        }
    }
}

/// One entity's part in an admitted request.
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    /// Which entity.
    pub entity: EntityRef,
    /// Its record, when it has one.
    pub record: Option<Arc<EntityRecord>>,
    /// Its spend before this request (stored plus not yet flushed).
    pub spend: f64,
    /// The budget that holds it (its own, or the default for end users).
    pub budget: Option<f64>,
    /// When its budget period ends, naming the period's shared counter.
    pub period: Option<DateTime<Utc>>,
}

/// A request checked against its entities.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Checked {
    /// Each entity's part, in check order.
    pub held: Vec<Held>,
    /// Entities whose budget period rolled over: persist each reset with its next reset time.
    pub resets: Vec<(EntityRef, Option<DateTime<Utc>>)>,
}

/// Every cached entity's state.
#[derive(Default)]
pub struct EntityLedger {
    states: HashMap<EntityRef, EntityState>,
    /// `litellm_settings.max_end_user_budget`: the budget of an end user without one of its own.
    default_end_user_budget: Option<f64>,
}

fn window_wait(window: &RateWindow, now: Instant) -> Duration {
    window.next_expiry(now).unwrap_or(Duration::from_secs(1))
}

impl EntityLedger {
    /// An empty ledger; end users without a budget of their own get `default_end_user_budget`.
    pub fn new(default_end_user_budget: Option<f64>) -> Self {
        Self {
            states: HashMap::new(),
            default_end_user_budget,
        }
    }

    /// Caches what the database holds for `entity` (`None`: no row), keeping its live counters
    /// when it is already cached; with `spend_set` the stored spend replaces the live one.
    pub fn cache(&mut self, entity: EntityRef, record: Option<EntityRecord>, spend_set: bool) {
        let record = record.map(Arc::new);
        match self.states.get_mut(&entity) {
            Some(state) => {
                if spend_set {
                    state.spend = record.as_ref().map_or(0.0, |r| r.row.spend);
                }
                state.reset_at = record.as_ref().and_then(|r| r.reset_at());
                state.record = record;
                state.stale = false;
            }
            None => {
                self.states.insert(entity, EntityState::new(record));
            }
        }
    }

    /// Drops an entity from the cache (changed or deleted elsewhere: read it again when used).
    pub fn forget(&mut self, entity: &EntityRef) {
        if self.states.get(entity).is_some_and(|s| s.in_flight == 0) {
            self.states.remove(entity);
        } else if let Some(state) = self.states.get_mut(entity) {
            // Requests in flight still settle here; the next one reads the record again.
            state.stale = true;
        }
    }

    /// Which of `entities` are not cached.
    pub fn missing<'a>(&self, entities: &'a [EntityRef]) -> Vec<&'a EntityRef> {
        entities
            .iter()
            .filter(|e| self.states.get(*e).is_none_or(|s| s.stale))
            .collect()
    }

    /// An entity's record and live spend, when cached.
    pub fn get(&self, entity: &EntityRef) -> Option<(Option<Arc<EntityRecord>>, f64)> {
        self.states.get(entity).map(|s| (s.record.clone(), s.spend))
    }

    /// How many entities are cached.
    pub fn len(&self) -> usize {
        self.states.len()
    }

    /// Whether none is cached.
    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    /// Drops the entities idle for `idle` at `now` with nothing in flight; how many were dropped.
    pub fn forget_idle(&mut self, now: Instant, idle: Duration) -> usize {
        let before = self.states.len();
        self.states.retain(|_, s| {
            s.in_flight > 0
                || s.last_used
                    .is_some_and(|at| now.saturating_duration_since(at) < idle)
        });
        before - self.states.len()
    }

    /// Checks one request on `group` against `entities` (all cached), as of `now` / `wall`:
    /// blocked, models (`may_use` says whether a model list allows the request), budgets and,
    /// with `rates`, rate and parallel limits. Nothing is counted: `count` does that once the
    /// key has been admitted too. A budget period that has passed is rolled over here.
    pub fn check(
        &mut self,
        entities: &[EntityRef],
        may_use: impl Fn(&[String]) -> bool,
        model: &str,
        now: Instant,
        wall: DateTime<Utc>,
        rates: bool,
    ) -> Result<Checked, Rejection> {
        let mut checked = Checked::default();
        for entity in entities {
            let Some(state) = self.states.get_mut(entity).filter(|s| !s.stale) else {
                return Err(Rejection::NotCached);
            };
            state.last_used = Some(now);
            let record = state.record.clone();
            if let Some(r) = &record {
                if r.row.blocked {
                    return Err(Rejection::EntityBlocked(entity.clone()));
                }
                if !r.models.is_empty() && !may_use(&r.models) {
                    return Err(Rejection::EntityModelDenied {
                        entity: entity.clone(),
                        model: model.to_owned(),
                    });
                }
                let duration = r
                    .row
                    .budget_duration
                    .as_deref()
                    .and_then(KeyDuration::parse);
                if let Some(next) = rolled_over(state.reset_at, duration, wall) {
                    state.spend = 0.0;
                    state.reset_at = next;
                    checked.resets.push((entity.clone(), next));
                }
            }
            let limits = record
                .as_ref()
                .map(|r| r.limits.clone())
                .unwrap_or_default();
            let budget = limits.max_budget.or(match entity.kind {
                EntityKind::EndUser => self.default_end_user_budget,
                _ => None,
            });
            if let Some(budget) = budget.filter(|b| state.spend >= *b) {
                return Err(Rejection::BudgetExceeded {
                    what: entity.to_string(),
                    spend: state.spend,
                    budget,
                });
            }
            if rates {
                let limited = |what: String, window: &RateWindow| Rejection::EntityRateLimited {
                    entity: entity.clone(),
                    what,
                    retry_after: window_wait(window, now),
                };
                if let Some(max) = limits
                    .max_parallel_requests
                    .filter(|m| state.in_flight >= *m)
                {
                    return Err(Rejection::EntityRateLimited {
                        entity: entity.clone(),
                        what: format!("max_parallel_requests={max}"),
                        retry_after: Duration::from_secs(1),
                    });
                }
                if let Some(rpm) = limits
                    .rpm_limit
                    .filter(|l| state.window.requests(now) >= *l)
                {
                    return Err(limited(format!("rpm_limit={rpm}"), &state.window));
                }
                if let Some(tpm) = limits.tpm_limit.filter(|l| state.window.tokens(now) >= *l) {
                    return Err(limited(format!("tpm_limit={tpm}"), &state.window));
                }
            }
            checked.held.push(Held {
                entity: entity.clone(),
                record,
                spend: state.spend,
                budget,
                period: state.reset_at,
            });
        }
        Ok(checked)
    }

    /// Counts an admitted request against the entities `check` passed: one request in each
    /// window and one in flight.
    pub fn count(&mut self, checked: &Checked, now: Instant) {
        for held in &checked.held {
            if let Some(state) = self.states.get_mut(&held.entity) {
                state.window.record_request(now);
                state.in_flight += 1;
            }
        }
    }

    /// Ends an admitted request: frees its slots and counts its tokens (when it was counted
    /// here) and its cost.
    pub fn settle(&mut self, entities: &[EntityRef], used: Used, now: Instant) {
        for entity in entities {
            let Some(state) = self.states.get_mut(entity) else {
                continue;
            };
            state.last_used = Some(now);
            if used.counted_here {
                state.in_flight = state.in_flight.saturating_sub(1);
                state.window.record_tokens(now, used.tokens);
            }
            state.spend += used.cost;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::models::EntityRow;

    fn team() -> EntityRef {
        EntityRef::new(EntityKind::Team, "t1")
    }

    fn record(kind: &str, id: &str, edit: impl FnOnce(&mut EntityRow)) -> EntityRecord {
        let mut row = EntityRow::blank(kind, "", id, Utc::now().naive_utc());
        edit(&mut row);
        EntityRecord::new(row).unwrap()
    }

    fn used(tokens: u64, cost: f64) -> Used {
        Used {
            tokens,
            cost,
            counted_here: true,
        }
    }

    fn all(_: &[String]) -> bool {
        true
    }

    #[test]
    fn an_uncached_entity_must_be_loaded_first() {
        let mut l = EntityLedger::default();
        let t0 = Instant::now();
        let refused = l.check(&[team()], all, "m", t0, Utc::now(), true);
        assert_eq!(refused, Err(Rejection::NotCached));
        assert_eq!(l.missing(&[team()]), vec![&team()]);
    }

    #[test]
    fn a_spent_team_budget_refuses_and_names_the_team() {
        let mut l = EntityLedger::default();
        l.cache(
            team(),
            Some(record("team", "t1", |r| r.max_budget = Some(1.0))),
            false,
        );
        let t0 = Instant::now();
        let wall = Utc::now();
        let checked = l.check(&[team()], all, "m", t0, wall, true).unwrap();
        l.count(&checked, t0);
        l.settle(&[team()], used(10, 1.0), t0);
        assert_eq!(
            l.check(&[team()], all, "m", t0, wall, true),
            Err(Rejection::BudgetExceeded {
                what: "team t1".into(),
                spend: 1.0,
                budget: 1.0
            })
        );
    }

    #[test]
    fn blocked_entities_and_models_outside_their_list_are_refused() {
        let mut l = EntityLedger::default();
        l.cache(
            team(),
            Some(record("team", "t1", |r| r.blocked = true)),
            false,
        );
        let t0 = Instant::now();
        assert_eq!(
            l.check(&[team()], all, "m", t0, Utc::now(), true),
            Err(Rejection::EntityBlocked(team()))
        );
        let tag = EntityRef::new(EntityKind::Tag, "prod");
        l.cache(
            tag.clone(),
            Some(record("tag", "prod", |r| r.models = r#"["a"]"#.into())),
            false,
        );
        let only_a = |models: &[String]| models.iter().any(|m| m == "a");
        assert_eq!(
            l.check(
                std::slice::from_ref(&tag),
                only_a,
                "b",
                t0,
                Utc::now(),
                true
            )
            .map(|c| c.held.len()),
            Ok(1)
        );
        let never = |_: &[String]| false;
        assert_eq!(
            l.check(std::slice::from_ref(&tag), never, "b", t0, Utc::now(), true),
            Err(Rejection::EntityModelDenied {
                entity: tag,
                model: "b".into()
            })
        );
    }

    #[test]
    fn rate_and_parallel_limits_hold_across_all_the_entitys_requests() {
        let mut l = EntityLedger::default();
        let user = EntityRef::new(EntityKind::User, "u1");
        l.cache(
            user.clone(),
            Some(record("user", "u1", |r| {
                r.rpm_limit = Some(2);
                r.max_parallel_requests = Some(1);
            })),
            false,
        );
        let t0 = Instant::now();
        let wall = Utc::now();
        let first = l
            .check(std::slice::from_ref(&user), all, "m", t0, wall, true)
            .unwrap();
        l.count(&first, t0);
        assert!(matches!(
            l.check(std::slice::from_ref(&user), all, "m", t0, wall, true),
            Err(Rejection::EntityRateLimited { ref what, .. }) if what == "max_parallel_requests=1"
        ));
        l.settle(std::slice::from_ref(&user), used(5, 0.0), t0);
        let second = l
            .check(std::slice::from_ref(&user), all, "m", t0, wall, true)
            .unwrap();
        l.count(&second, t0);
        l.settle(std::slice::from_ref(&user), used(5, 0.0), t0);
        assert!(matches!(
            l.check(std::slice::from_ref(&user), all, "m", t0 + Duration::from_secs(59), wall, true),
            Err(Rejection::EntityRateLimited { ref what, .. }) if what == "rpm_limit=2"
        ));
        assert!(l
            .check(
                std::slice::from_ref(&user),
                all,
                "m",
                t0 + Duration::from_secs(60),
                wall,
                true
            )
            .is_ok());
        assert!(
            l.check(&[user], all, "m", t0, wall, false).is_ok(),
            "rates counted elsewhere (redis) are not checked here"
        );
    }

    #[test]
    fn an_end_user_without_a_row_gets_the_default_budget() {
        let mut l = EntityLedger::new(Some(0.5));
        let end_user = EntityRef::new(EntityKind::EndUser, "customer-9");
        l.cache(end_user.clone(), None, false);
        let t0 = Instant::now();
        let wall = Utc::now();
        let checked = l
            .check(std::slice::from_ref(&end_user), all, "m", t0, wall, true)
            .unwrap();
        assert_eq!(checked.held[0].budget, Some(0.5));
        l.count(&checked, t0);
        l.settle(std::slice::from_ref(&end_user), used(1, 0.5), t0);
        assert!(matches!(
            l.check(&[end_user], all, "m", t0, wall, true),
            Err(Rejection::BudgetExceeded { .. })
        ));
    }

    #[test]
    fn a_passed_budget_period_resets_spend_and_is_reported() {
        let mut l = EntityLedger::default();
        let past = Utc::now() - chrono::Duration::hours(1);
        l.cache(
            team(),
            Some(record("team", "t1", |r| {
                r.spend = 9.0;
                r.max_budget = Some(1.0);
                r.budget_duration = Some("1d".into());
                r.budget_reset_at = Some(past.naive_utc());
            })),
            false,
        );
        let checked = l
            .check(&[team()], all, "m", Instant::now(), Utc::now(), true)
            .unwrap();
        assert_eq!(checked.held[0].spend, 0.0);
        let (who, next) = &checked.resets[0];
        assert_eq!(who, &team());
        assert!(next.unwrap() > Utc::now());
    }

    #[test]
    fn a_recached_entity_keeps_its_live_spend_unless_an_admin_set_it() {
        let mut l = EntityLedger::default();
        l.cache(team(), Some(record("team", "t1", |_| {})), false);
        l.settle(&[team()], used(1, 0.25), Instant::now());
        l.cache(
            team(),
            Some(record("team", "t1", |r| r.max_budget = Some(3.0))),
            false,
        );
        assert_eq!(l.get(&team()).unwrap().1, 0.25);
        l.cache(team(), Some(record("team", "t1", |r| r.spend = 2.0)), true);
        assert_eq!(l.get(&team()).unwrap().1, 2.0);
    }

    #[test]
    fn only_idle_entities_with_nothing_in_flight_are_forgotten() {
        let mut l = EntityLedger::default();
        let t0 = Instant::now();
        l.cache(team(), Some(record("team", "t1", |_| {})), false);
        let checked = l.check(&[team()], all, "m", t0, Utc::now(), true).unwrap();
        l.count(&checked, t0);
        let idle = Duration::from_secs(600);
        assert_eq!(l.forget_idle(t0 + 2 * idle, idle), 0, "one in flight");
        l.settle(&[team()], used(1, 0.0), t0 + idle);
        assert_eq!(l.forget_idle(t0 + idle + Duration::from_secs(1), idle), 0);
        assert_eq!(l.forget_idle(t0 + 2 * idle, idle), 1);
        assert!(l.is_empty());
    }
}
