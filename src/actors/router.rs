//! `RouterActor`: admits the caller's key and picks a group's deployment, from the key ledger
//! and the snapshots the deployments publish.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{Actor, Addr, AsyncContext, Context, Handler, Message, MessageResult};
use chrono::{DateTime, Utc};

use super::pick_timer::{PickTimer, PickTimes};
use super::spend::{RenameKey, ResetEntitySpend, ResetKeySpend, ResetProxySpend, SpendActor};
use crate::catalog::Catalog;
use crate::governance::{rolled_over, EntityLedger, EntityRecord, EntityRef, Held, Principals};
use crate::keys::{Admission, Counting, KeyDuration, KeyLedger, KeyRecord, Rejection, Used};
use crate::routing::{
    choose, Candidate, DeploymentSnapshot, Need, NoCapacity, Pool, Profile, Rules,
};
use crate::topology::{view_of, Changes, DeploymentFactory, Topology};

/// The proxy-wide budget and what has been spent against it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProxyBudget {
    /// USD limit.
    pub max_budget: Option<f64>,
    /// Spent in this window.
    pub spend: f64,
    /// How long a window lasts.
    pub duration: Option<KeyDuration>,
    /// When the window ends.
    pub reset_at: Option<DateTime<Utc>>,
}

/// Holds every deployment's latest snapshot, each group's members, and the key ledger.
pub struct RouterActor {
    catalog: Arc<Catalog>,
    /// Each group's members split into tiers by `order`, lowest first.
    tiers: Vec<Vec<Vec<usize>>>,
    rules: Rules,
    profiles: Vec<Profile>,
    /// Each deployment's last published state, plus the picks made since.
    snapshots: Vec<DeploymentSnapshot>,
    scratch: Vec<Candidate>,
    pick_timer: PickTimer,
    ledger: KeyLedger,
    /// Users, teams, members, end users and tags in use.
    entities: EntityLedger,
    proxy: ProxyBudget,
    spend: Option<Addr<SpendActor>>,
    /// Regenerated keys: old token to new, for requests that were in flight.
    renamed: std::collections::HashMap<String, String>,
    /// The topology picks are made in, where it is replaced, and how new deployments start.
    topology: Option<Running>,
}

/// The router's hold on the running topology.
struct Running {
    current: Arc<Topology>,
    swap: Arc<arc_swap::ArcSwap<Topology>>,
    factory: DeploymentFactory,
}

impl RouterActor {
    /// A router over `catalog` picking by `rules`, with each deployment's profile and order.
    pub fn new(
        catalog: Arc<Catalog>,
        rules: Rules,
        profiles: Vec<Profile>,
        orders: &[Option<u32>],
        proxy: ProxyBudget,
        spend: Option<Addr<SpendActor>>,
    ) -> Self {
        let snapshots = vec![DeploymentSnapshot::default(); profiles.len()];
        let tiers = catalog
            .members()
            .iter()
            .map(|members| order_tiers(members, orders))
            .collect();
        Self {
            catalog,
            tiers,
            rules,
            profiles,
            snapshots,
            scratch: Vec::new(),
            pick_timer: PickTimer::default(),
            ledger: KeyLedger::default(),
            entities: EntityLedger::default(),
            proxy,
            spend,
            renamed: Default::default(),
            topology: None,
        }
    }

    /// End users without a budget of their own are held to `budget`
    /// (`litellm_settings.max_end_user_budget`).
    pub fn with_end_user_budget(mut self, budget: Option<f64>) -> Self {
        self.entities = EntityLedger::new(budget);
        self
    }

    /// Picks in `current` (its catalog is this router's), answers each pick with it, and
    /// replaces it in `swap` when told to (`ApplyTopology`), starting new deployments' actors
    /// with `factory`.
    pub fn with_topology(
        mut self,
        current: Arc<Topology>,
        swap: Arc<arc_swap::ArcSwap<Topology>>,
        factory: DeploymentFactory,
    ) -> Self {
        self.topology = Some(Running {
            current,
            swap,
            factory,
        });
        self
    }

    /// The generation of the topology picks are made in (0 when it is not known).
    fn generation(&self) -> u64 {
        self.topology.as_ref().map_or(0, |t| t.current.generation)
    }

    /// Picks within the lowest `order` tier that has a free deployment, and counts the pick
    /// against it until the deployment's next publication says otherwise.
    fn choose(&mut self, group: usize, exclude: &[usize], need: Need) -> Result<usize, NoCapacity> {
        let now = Instant::now();
        let mut no = NoCapacity::default();
        let pool = Pool {
            profiles: &self.profiles,
            snapshots: &self.snapshots,
        };
        let mut picked = None;
        for tier in self.tiers.get(group).into_iter().flatten() {
            let roll = fastrand::f64();
            match choose(
                &self.rules,
                pool,
                tier,
                exclude,
                need,
                now,
                roll,
                &mut self.scratch,
            ) {
                Ok(index) => {
                    picked = Some(index);
                    break;
                }
                Err(tier_no) => no.merge(tier_no),
            }
        }
        let index = picked.ok_or(no)?;
        // Later picks in this publication interval see this one, so strategies that rank by
        // load do not all pile onto the deployment that looked idle.
        let snap = &mut self.snapshots[index];
        snap.in_flight += 1;
        snap.requests_this_minute += 1;
        snap.tokens_this_minute += need.tokens;
        Ok(index)
    }

    /// Takes back a pick that was not used (the key was refused after all).
    fn unpick(&mut self, index: usize, need: Need) {
        let snap = &mut self.snapshots[index];
        snap.in_flight = snap.in_flight.saturating_sub(1);
        snap.requests_this_minute = snap.requests_this_minute.saturating_sub(1);
        snap.tokens_this_minute = snap.tokens_this_minute.saturating_sub(need.tokens);
    }

    fn check_proxy_budget(&mut self, wall: DateTime<Utc>) -> Result<(), PickError> {
        if let Some(next) = rolled_over(self.proxy.reset_at, self.proxy.duration, wall) {
            self.proxy.spend = 0.0;
            self.proxy.reset_at = next;
            if let Some(spend) = &self.spend {
                spend.do_send(ResetProxySpend { next });
            }
        }
        match self.proxy.max_budget {
            Some(budget) if self.proxy.spend >= budget => {
                Err(PickError::Rejected(Rejection::BudgetExceeded {
                    what: "proxy".into(),
                    spend: self.proxy.spend,
                    budget,
                }))
            }
            _ => Ok(()),
        }
    }
}

/// `members` split by `order`, lowest first; deployments without one come last.
fn order_tiers(members: &[usize], orders: &[Option<u32>]) -> Vec<Vec<usize>> {
    let mut keys: Vec<u32> = members
        .iter()
        .map(|&m| orders.get(m).copied().flatten().unwrap_or(u32::MAX))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys.iter()
        .map(|&k| {
            members
                .iter()
                .copied()
                .filter(|&m| orders.get(m).copied().flatten().unwrap_or(u32::MAX) == k)
                .collect()
        })
        .collect()
}

/// How long a key goes unused before its cached state is dropped (it is read from the
/// database again when next used): the cache holds the keys in use, not every key ever seen.
const KEY_IDLE: Duration = Duration::from_secs(600);

/// How often idle keys are looked for.
const KEY_SWEEP_EVERY: Duration = Duration::from_secs(60);

impl Actor for RouterActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(KEY_SWEEP_EVERY, |act, _| {
            let dropped = act.ledger.forget_idle(Instant::now(), KEY_IDLE);
            if dropped > 0 {
                log::debug!(
                    "dropped {dropped} idle keys from the cache ({} cached)",
                    act.ledger.len()
                );
            }
            act.entities.forget_idle(Instant::now(), KEY_IDLE);
        });
    }
}

/// What a pick is for.
#[derive(Debug, Clone)]
pub enum PickFor {
    /// A request's first attempt: resolve the name (with the key's aliases) and admit the key.
    Admit {
        /// The hashed key, unless the caller is the master key or no key is needed.
        key: Option<String>,
        /// The model name the request gave.
        model: String,
        /// Where the key's rate and parallel limits are counted.
        counting: Counting,
        /// The request's end user and tags.
        principals: Principals,
    },
    /// A retry within a group already admitted.
    Retry {
        /// The group.
        group: usize,
    },
}

/// A deployment was picked.
#[derive(Debug, Clone, PartialEq)]
pub struct Picked {
    /// The deployment.
    pub index: usize,
    /// Its group.
    pub group: usize,
    /// What a wildcard matched.
    pub wildcard: Option<String>,
    /// The key's admission, on a first attempt with a key.
    pub admission: Option<Admission>,
    /// The admission of the users, teams, end users and tags it is charged to, if any.
    pub governed: Option<Governed>,
    /// The proxy-wide budget as this instance sees it, on a first attempt when one is set.
    pub proxy: Option<ProxyBudget>,
    /// The generation of the topology `index` and `group` are of: models may have changed
    /// since the request loaded its own (0: unknown).
    pub generation: u64,
}

/// Why nothing was picked.
#[derive(Debug, Clone, PartialEq)]
pub enum PickError {
    /// No group, alias or wildcard has this name.
    UnknownModel(String),
    /// The key may not make this request.
    Rejected(Rejection),
    /// These users, teams, members, end users or tags are not cached: load them and ask again.
    Load(Vec<EntityRef>),
    /// Every deployment of `group` is cooling down or excluded.
    NoCapacity {
        /// The group.
        group: usize,
        /// When one comes back.
        no: NoCapacity,
    },
}

/// Asks for a deployment, skipping those in `exclude`.
#[derive(Message)]
#[rtype(result = "Result<Picked, PickError>")]
pub struct Pick {
    /// What for.
    pub target: PickFor,
    /// Deployments already tried or refused.
    pub exclude: Vec<usize>,
    /// What the request needs of a deployment.
    pub need: Need,
}

impl Handler<Pick> for RouterActor {
    type Result = Result<Picked, PickError>;

    fn handle(&mut self, msg: Pick, _: &mut Context<Self>) -> Self::Result {
        let started = Instant::now();
        let picked = self.pick(msg);
        self.pick_timer.record(started.elapsed());
        picked
    }
}

impl RouterActor {
    fn pick(&mut self, msg: Pick) -> Result<Picked, PickError> {
        let (key, model, counting, principals) = match msg.target {
            PickFor::Retry { group } => {
                let index = self
                    .choose(group, &msg.exclude, msg.need)
                    .map_err(|no| PickError::NoCapacity { group, no })?;
                return Ok(Picked {
                    index,
                    group,
                    wildcard: None,
                    admission: None,
                    governed: None,
                    proxy: None,
                    generation: self.generation(),
                });
            }
            PickFor::Admit {
                key,
                model,
                counting,
                principals,
            } => (key, model, counting, principals),
        };
        let wall = Utc::now();
        self.check_proxy_budget(wall)?;
        let record = match &key {
            Some(token) => Some(
                self.ledger
                    .record(token)
                    .ok_or(PickError::Rejected(Rejection::NotCached))?,
            ),
            None => None,
        };
        let asked = model;
        let name = record
            .as_ref()
            .and_then(|r| r.aliases.get(&asked).cloned())
            .unwrap_or_else(|| asked.clone());
        let resolved = self
            .catalog
            .resolve(&name)
            .ok_or_else(|| PickError::UnknownModel(name.clone()))?;
        if let Some(r) = &record {
            // `models` may name the group, or the alias the client asked for.
            let allowed = self.catalog.key_may_use(&r.models, &name, resolved.group)
                || (asked != name && r.models.contains(&asked));
            if !r.row.blocked && !allowed {
                return Err(PickError::Rejected(Rejection::ModelDenied(asked)));
            }
        }
        let entities = principals.entities(record.as_deref());
        let missing = self.entities.missing(&entities);
        if !missing.is_empty() {
            return Err(PickError::Load(missing.into_iter().cloned().collect()));
        }
        let index = self
            .choose(resolved.group, &msg.exclude, msg.need)
            .map_err(|no| PickError::NoCapacity {
                group: resolved.group,
                no,
            })?;
        let named = Named {
            group: resolved.group,
            name: &name,
            asked: &asked,
        };
        let (admission, governed) =
            match self.admit_all(key.as_deref(), entities, named, wall, counting) {
                Ok(admitted) => admitted,
                Err(rejection) => {
                    self.unpick(index, msg.need);
                    return Err(PickError::Rejected(rejection));
                }
            };
        Ok(Picked {
            index,
            group: resolved.group,
            wildcard: resolved.wildcard,
            admission,
            governed,
            proxy: self.proxy.max_budget.map(|_| self.proxy),
            generation: self.generation(),
        })
    }
}

/// The admission of the users, teams, members, end users and tags a request is charged to.
#[derive(Debug, Clone, PartialEq)]
pub struct Governed {
    /// Who, in check order (what ending the request settles).
    pub entities: Arc<[EntityRef]>,
    /// Each one's part: record, spend and budget period, for the limits held in Redis.
    pub held: Vec<Held>,
    /// Whether their rate and parallel limits were counted here (not in Redis).
    pub counted_here: bool,
}

/// What a request asked for: the group it resolved to, the name that resolved (after the
/// key's aliases) and the name the client gave.
#[derive(Clone, Copy)]
struct Named<'a> {
    group: usize,
    name: &'a str,
    asked: &'a str,
}

impl RouterActor {
    /// Admits and counts one request of `token` (if any) charged to `entities`: every entity
    /// is checked first, then the key is admitted and counted, then the entities are counted,
    /// so a refusal anywhere counts nothing. Budget windows that rolled over are written back.
    fn admit_all(
        &mut self,
        token: Option<&str>,
        entities: Vec<EntityRef>,
        named: Named<'_>,
        wall: DateTime<Utc>,
        counting: Counting,
    ) -> Result<(Option<Admission>, Option<Governed>), Rejection> {
        let now = Instant::now();
        let checked = if entities.is_empty() {
            None
        } else {
            let catalog = &self.catalog;
            let may_use = |models: &[String]| {
                catalog.key_may_use(models, named.name, named.group)
                    || (named.asked != named.name && models.iter().any(|m| m == named.asked))
            };
            let checked = self.entities.check(
                &entities,
                may_use,
                named.asked,
                now,
                wall,
                counting == Counting::Local,
            )?;
            if let Some(spend) = &self.spend {
                for (entity, next) in &checked.resets {
                    spend.do_send(ResetEntitySpend {
                        entity: entity.clone(),
                        next: *next,
                    });
                }
            }
            Some(checked)
        };
        let admission = match token {
            Some(token) => {
                let group_name = self.catalog.name(named.group).to_owned();
                Some(self.admit_key(token, &group_name, wall, counting)?)
            }
            None => None,
        };
        let governed = checked.map(|checked| {
            let counted_here = counting == Counting::Local;
            if counted_here {
                self.entities.count(&checked, now);
            }
            Governed {
                entities: entities.into(),
                held: checked.held,
                counted_here,
            }
        });
        Ok((admission, governed))
    }

    /// Admits and counts one request of `token` on `group_name`; a budget window that rolled
    /// over is written back.
    fn admit_key(
        &mut self,
        token: &str,
        group_name: &str,
        wall: DateTime<Utc>,
        counting: Counting,
    ) -> Result<Admission, Rejection> {
        let admission = self
            .ledger
            .admit(token, group_name, Instant::now(), wall, counting)?;
        if let (Some(next), Some(spend)) = (admission.reset, &self.spend) {
            spend.do_send(ResetKeySpend {
                token: token.to_owned(),
                next,
            });
        }
        Ok(admission)
    }
}

/// Admits a request that picks no deployment (answered from the response cache, or a files
/// call): its key's and its entities' limits count it as any other request.
/// `Rejected(NotCached)` when the key is not cached, `Load` when entities are not.
#[derive(Message)]
#[rtype(result = "Result<(Option<Admission>, Option<Governed>), PickError>")]
pub struct AdmitCached {
    /// The hashed key, if any.
    pub token: Option<String>,
    /// The group the request resolved to.
    pub group: usize,
    /// The name the client asked for.
    pub asked: String,
    /// Where the key's rate and parallel limits are counted.
    pub counting: Counting,
    /// The request's end user and tags.
    pub principals: Principals,
}

impl Handler<AdmitCached> for RouterActor {
    type Result = Result<(Option<Admission>, Option<Governed>), PickError>;

    fn handle(&mut self, msg: AdmitCached, _: &mut Context<Self>) -> Self::Result {
        let record = match &msg.token {
            Some(token) => Some(
                self.ledger
                    .record(token)
                    .ok_or(PickError::Rejected(Rejection::NotCached))?,
            ),
            None => None,
        };
        let entities = msg.principals.entities(record.as_deref());
        let missing = self.entities.missing(&entities);
        if !missing.is_empty() {
            return Err(PickError::Load(missing.into_iter().cloned().collect()));
        }
        let name = self.catalog.name(msg.group).to_owned();
        let named = Named {
            group: msg.group,
            name: &name,
            asked: &msg.asked,
        };
        self.admit_all(
            msg.token.as_deref(),
            entities,
            named,
            Utc::now(),
            msg.counting,
        )
        .map_err(PickError::Rejected)
    }
}

/// How long picks have taken so far.
#[derive(Message)]
#[rtype(result = "PickTimes")]
pub struct PickStats;

impl Handler<PickStats> for RouterActor {
    type Result = MessageResult<PickStats>;

    fn handle(&mut self, _: PickStats, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.pick_timer.summary())
    }
}

/// A deployment's new state.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Publish {
    /// Which deployment.
    pub index: usize,
    /// Its state now.
    pub snapshot: DeploymentSnapshot,
}

impl Handler<Publish> for RouterActor {
    type Result = ();

    fn handle(&mut self, msg: Publish, _: &mut Context<Self>) {
        if let Some(slot) = self.snapshots.get_mut(msg.index) {
            *slot = msg.snapshot;
        }
    }
}

/// Serve `next` from now on: models were added, changed or removed at runtime.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ApplyTopology {
    /// The topology to serve (built from the current one, so indices are kept).
    pub next: Topology,
    /// What changed.
    pub changes: Changes,
}

impl Handler<ApplyTopology> for RouterActor {
    type Result = ();

    fn handle(&mut self, msg: ApplyTopology, ctx: &mut Context<Self>) {
        let Some(running) = &mut self.topology else {
            return;
        };
        let mut next = msg.next;
        next.start_missing(
            &running.factory,
            &ctx.address(),
            &msg.changes,
            Some(&running.current),
        );
        for &i in &msg.changes.removed {
            if let Some(d) = next.get(i) {
                running.factory.metrics.forget_deployment(&view_of(d));
            }
        }
        let (profiles, orders) = next.profiles();
        self.snapshots
            .resize(profiles.len(), DeploymentSnapshot::default());
        self.tiers = next
            .catalog
            .members()
            .iter()
            .map(|members| order_tiers(members, &orders))
            .collect();
        self.profiles = profiles;
        self.catalog = next.catalog.clone();
        let next = Arc::new(next);
        // Stored here, between two picks: a request that loads it next is picked in it.
        running.swap.store(next.clone());
        running.current = next;
    }
}

/// An admitted request ended: free the key's slot, count its tokens and cost.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Settle {
    /// The hashed key, if one was admitted.
    pub token: Option<String>,
    /// The group.
    pub group: usize,
    /// Tokens used.
    pub tokens: u64,
    /// USD.
    pub cost: f64,
    /// Whether the key's admission counted the request here.
    pub counted_here: bool,
    /// The users, teams, members, end users and tags it was charged to, if any.
    pub governed: Option<(Arc<[EntityRef]>, bool)>,
}

impl Handler<Settle> for RouterActor {
    type Result = ();

    fn handle(&mut self, msg: Settle, _: &mut Context<Self>) {
        self.proxy.spend += msg.cost;
        if let Some((entities, counted_here)) = &msg.governed {
            let used = Used {
                tokens: msg.tokens,
                cost: msg.cost,
                counted_here: *counted_here,
            };
            self.entities.settle(entities, used, Instant::now());
        }
        let token = msg.token.as_ref().map(|t| self.renamed.get(t).unwrap_or(t));
        if let Some(token) = token {
            let group = self.catalog.name(msg.group).to_owned();
            let used = Used {
                tokens: msg.tokens,
                cost: msg.cost,
                counted_here: msg.counted_here,
            };
            self.ledger.settle(token, &group, used, Instant::now());
        }
    }
}

/// Caches a key loaded from the database or changed by the key API.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CacheKey {
    /// The key.
    pub record: KeyRecord,
    /// An admin set its spend: the stored spend replaces what was counted.
    pub spend_set: bool,
}

impl CacheKey {
    /// Caches a key as read, keeping any live counters.
    pub fn read(record: KeyRecord) -> Self {
        Self {
            record,
            spend_set: false,
        }
    }
}

impl Handler<CacheKey> for RouterActor {
    type Result = ();

    fn handle(&mut self, msg: CacheKey, _: &mut Context<Self>) {
        self.ledger.upsert_with(msg.record, msg.spend_set);
    }
}

/// Drops a deleted or regenerated key from the cache.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ForgetKey(pub String);

impl Handler<ForgetKey> for RouterActor {
    type Result = ();

    fn handle(&mut self, msg: ForgetKey, _: &mut Context<Self>) {
        self.ledger.remove(&msg.0);
    }
}

impl Handler<RenameKey> for RouterActor {
    type Result = ();

    fn handle(&mut self, msg: RenameKey, _: &mut Context<Self>) {
        self.ledger.rename(&msg.old, &msg.new);
        for target in self.renamed.values_mut() {
            if *target == msg.old {
                target.clone_from(&msg.new);
            }
        }
        self.renamed.insert(msg.old, msg.new);
    }
}

/// Caches users, teams, members, end users or tags read from the database (`None`: no row) or
/// changed by the management API.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CacheEntities {
    /// What was read, for each entity asked about.
    pub found: Vec<(EntityRef, Option<EntityRecord>)>,
    /// An admin set the spend: the stored spend replaces what was counted.
    pub spend_set: bool,
}

impl Handler<CacheEntities> for RouterActor {
    type Result = ();

    fn handle(&mut self, msg: CacheEntities, _: &mut Context<Self>) {
        for (entity, record) in msg.found {
            self.entities.cache(entity, record, msg.spend_set);
        }
    }
}

/// Drops a changed or deleted user, team, member, end user or tag from the cache.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ForgetEntity(pub EntityRef);

impl Handler<ForgetEntity> for RouterActor {
    type Result = ();

    fn handle(&mut self, msg: ForgetEntity, _: &mut Context<Self>) {
        self.entities.forget(&msg.0);
    }
}

/// A cached entity's record and live spend.
#[derive(Message)]
#[rtype(result = "Option<(Option<Arc<EntityRecord>>, f64)>")]
pub struct CachedEntity(pub EntityRef);

impl Handler<CachedEntity> for RouterActor {
    type Result = MessageResult<CachedEntity>;

    fn handle(&mut self, msg: CachedEntity, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.entities.get(&msg.0))
    }
}

/// A cached key and its live spend.
#[derive(Message)]
#[rtype(result = "Option<(Arc<KeyRecord>, f64)>")]
pub struct CachedKey(pub String);

impl Handler<CachedKey> for RouterActor {
    type Result = MessageResult<CachedKey>;

    fn handle(&mut self, msg: CachedKey, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.ledger.get(&msg.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployments_are_tiered_by_order_with_unordered_ones_last() {
        let orders = [Some(2), None, Some(1), Some(2)];
        assert_eq!(
            order_tiers(&[0, 1, 2, 3], &orders),
            vec![vec![2], vec![0, 3], vec![1]]
        );
        assert_eq!(order_tiers(&[1], &orders), vec![vec![1]]);
    }
}
