//! The deployments in use and the catalog over them, swapped whole when models are added,
//! changed or removed at runtime; indices are stable, so requests in flight stay valid.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use actix::{Actor, Addr};
use serde_json::Value as Json;

use crate::actors::{DeploymentActor, RouterActor};
use crate::catalog::Catalog;
use crate::config::{Deployment, Settings};
use crate::metrics::{DeploymentView, Metrics};
use crate::routing::{CooldownPolicy, Enforce, LatencyWindow, Profile};
use crate::shared::Shared;

/// One deployment the gateway should serve, and the version it was read at.
pub struct Wanted {
    /// The deployment (its `index` is assigned when it is placed).
    pub deployment: Deployment,
    /// What it was read as: a new version is a changed deployment.
    pub version: String,
}

impl Wanted {
    /// The config file's deployments (and `--model`'s), marked as not stored.
    pub fn from_config(settings: &Settings) -> Vec<Self> {
        settings
            .deployments
            .iter()
            .map(|d| {
                let mut deployment = d.clone();
                mark_source(&mut deployment, false);
                Self {
                    deployment,
                    version: String::new(),
                }
            })
            .collect()
    }
}

/// One index of the topology: a deployment, live or removed.
#[derive(Clone)]
pub struct Slot {
    /// The deployment (kept after removal, for requests that still name it).
    pub deployment: Arc<Deployment>,
    /// Whether it still serves (removed ones are in no group).
    pub live: bool,
    version: String,
    /// Its actor, once the actors run; `None` once removed.
    addr: Option<Addr<DeploymentActor>>,
}

/// The deployments by index and the catalog over the live ones.
#[derive(Clone)]
pub struct Topology {
    slots: Vec<Slot>,
    /// Names to groups (group indices are stable across topologies too).
    pub catalog: Arc<Catalog>,
    /// Whether requests' tokens are estimated before routing: some deployment has a `tpm` that
    /// binds, or a context window that pre-call checks compare the prompt with.
    pub estimate_tokens: bool,
    /// Counts the topologies: each next one has the next number.
    pub generation: u64,
}

impl std::fmt::Debug for Topology {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Topology")
            .field("deployments", &self.slots.len())
            .finish_non_exhaustive()
    }
}

/// What changed from one topology to the next, by index.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    /// New deployments (appended).
    pub added: Vec<usize>,
    /// Deployments whose settings changed (same id, same index).
    pub changed: Vec<usize>,
    /// Deployments removed.
    pub removed: Vec<usize>,
}

impl Changes {
    /// Nothing changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }
}

impl Topology {
    /// The first topology: `wanted` in order, indices from 0.
    pub fn initial(wanted: Vec<Wanted>, settings: &Settings) -> Self {
        let empty = Self {
            slots: Vec::new(),
            catalog: Arc::new(Catalog::default()),
            estimate_tokens: false,
            generation: 0,
        };
        empty.next(wanted, settings).0
    }

    /// The topology that serves `wanted`: a deployment whose `id` is served already keeps its
    /// index (replaced when its version changed), a new one is appended, and one no longer
    /// wanted is removed: it keeps its index, for the requests that still hold it, but joins no
    /// group. Actors are carried over; new deployments have none yet (`start_missing`).
    pub fn next(&self, wanted: Vec<Wanted>, settings: &Settings) -> (Self, Changes) {
        let mut changes = Changes::default();
        let mut slots: Vec<Slot> = self
            .slots
            .iter()
            .map(|s| Slot {
                deployment: s.deployment.clone(),
                live: false,
                version: s.version.clone(),
                addr: None,
            })
            .collect();
        // Each id's live indices, in order: entries sharing an id (identical config entries)
        // are matched one to one.
        let mut by_id: HashMap<&str, VecDeque<usize>> = HashMap::new();
        for (i, s) in self.slots.iter().enumerate().filter(|(_, s)| s.live) {
            by_id
                .entry(s.deployment.id.as_str())
                .or_default()
                .push_back(i);
        }
        for Wanted {
            mut deployment,
            version,
        } in wanted
        {
            let kept = by_id
                .get_mut(deployment.id.as_str())
                .and_then(VecDeque::pop_front);
            match kept {
                Some(i) => {
                    let old = &self.slots[i];
                    let slot = &mut slots[i];
                    slot.live = true;
                    slot.addr.clone_from(&old.addr);
                    if old.version != version {
                        deployment.index = i;
                        slot.deployment = Arc::new(deployment);
                        slot.version = version;
                        changes.changed.push(i);
                    }
                }
                None => {
                    let i = slots.len();
                    deployment.index = i;
                    slots.push(Slot {
                        deployment: Arc::new(deployment),
                        live: true,
                        version,
                        addr: None,
                    });
                    changes.added.push(i);
                }
            }
        }
        for (i, old) in self.slots.iter().enumerate() {
            if old.live && !slots[i].live {
                changes.removed.push(i);
            }
        }
        let catalog = Catalog::build(
            slots.iter().filter(|s| s.live).map(|s| &*s.deployment),
            settings.serve_any_model,
            Some(&self.catalog),
        )
        .with_aliases(&settings.model_group_alias);
        let rules = settings.routing;
        let estimate_tokens = slots.iter().filter(|s| s.live).any(|s| {
            let d = &s.deployment;
            (rules.hard_limits() && d.tpm.is_some())
                || (rules.pre_call_checks && d.context_window.is_some())
        });
        let next = Self {
            slots,
            catalog: Arc::new(catalog),
            estimate_tokens,
            generation: self.generation + 1,
        };
        (next, changes)
    }

    /// The deployment at `index` (live or removed).
    ///
    /// Indices come from this topology's catalog or from the router's pick answered with it.
    pub fn deployment(&self, index: usize) -> &Deployment {
        &self.slots[index].deployment
    }

    /// The deployment at `index`, if there is one.
    pub fn get(&self, index: usize) -> Option<&Deployment> {
        self.slots.get(index).map(|s| &*s.deployment)
    }

    /// The deployment at `index`, shared, if there is one.
    pub fn shared(&self, index: usize) -> Option<Arc<Deployment>> {
        self.slots.get(index).map(|s| s.deployment.clone())
    }

    /// The actor of the deployment at `index`, unless it was removed or the actors have not
    /// started.
    pub fn addr(&self, index: usize) -> Option<&Addr<DeploymentActor>> {
        self.slots.get(index).and_then(|s| s.addr.as_ref())
    }

    /// How many indices there are (live and removed).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there are no deployments at all.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The deployments that serve, in index order.
    pub fn live(&self) -> impl Iterator<Item = &Deployment> {
        self.slots.iter().filter(|s| s.live).map(|s| &*s.deployment)
    }

    /// The live deployment with this `model_info.id`.
    pub fn find(&self, id: &str) -> Option<&Deployment> {
        self.live().find(|d| d.id == id)
    }

    /// Each deployment's routing profile and `order`, by index.
    pub fn profiles(&self) -> (Vec<Profile>, Vec<Option<u32>>) {
        self.slots
            .iter()
            .map(|s| (s.deployment.profile(), s.deployment.order))
            .unzip()
    }

    /// Whether each deployment shares a group with others, by index.
    pub fn group_has_others(&self) -> Vec<bool> {
        let mut others = vec![false; self.slots.len()];
        for members in self.catalog.members() {
            for &m in members {
                if let Some(o) = others.get_mut(m) {
                    *o = members.len() > 1;
                }
            }
        }
        others
    }

    /// Starts an actor for each live deployment that has none (reporting to `router`) and
    /// reconfigures those in `changes.changed` or whose group grew or shrank since `before`.
    /// Runs on the router's thread, so the actors live there too.
    pub fn start_missing(
        &mut self,
        factory: &DeploymentFactory,
        router: &Addr<RouterActor>,
        changes: &Changes,
        before: Option<&Topology>,
    ) {
        let others = self.group_has_others();
        let others_before = before.map(Topology::group_has_others).unwrap_or_default();
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if !slot.live {
                continue;
            }
            match &slot.addr {
                None => {
                    slot.addr = Some(factory.start(&slot.deployment, others[i], router.clone()));
                }
                Some(addr) => {
                    let regrouped = others_before.get(i).is_some_and(|&o| o != others[i]);
                    let changed = changes.changed.contains(&i);
                    if !changed && !regrouped {
                        continue;
                    }
                    // A changed deployment may be named differently in the metrics: its old
                    // series go, its attempts count under the new names.
                    let metrics = changed.then(|| {
                        if let Some(old) = before.and_then(|b| b.get(i)) {
                            factory.metrics.forget_deployment(&view_of(old));
                        }
                        factory.metrics.deployment(&view_of(&slot.deployment))
                    });
                    addr.do_send(crate::actors::deployment::Reconfigure {
                        enforce: factory.enforce(&slot.deployment),
                        group_has_others: others[i],
                        metrics,
                    });
                }
            }
        }
    }
}

/// What names a deployment in the metrics (no secrets).
pub fn view_of(d: &Deployment) -> DeploymentView {
    DeploymentView {
        model_group: d.model_name.clone(),
        model: d.upstream_model.clone(),
        id: d.id.clone(),
        provider: d.provider.name().to_owned(),
        api_base: d.public_api_base.clone(),
        rpm: d.rpm,
        tpm: d.tpm,
    }
}

/// Marks where a deployment comes from in its `model_info` (`db_model`, as LiteLLM's
/// `/model/info` shows it).
pub fn mark_source(d: &mut Deployment, from_db: bool) {
    if let Json::Object(info) = &mut d.model_info {
        info.insert("db_model".into(), Json::Bool(from_db));
    }
}

/// Starts deployment actors the same way at startup and at runtime.
#[derive(Clone)]
pub struct DeploymentFactory {
    /// When deployments cool down.
    pub policy: CooldownPolicy,
    /// Whether `rpm`/`tpm` refuse requests.
    pub hard_limits: bool,
    /// How latency is averaged.
    pub latency: LatencyWindow,
    /// Where cooldowns are shared, if anywhere.
    pub shared: Option<Shared>,
    /// Where each deployment's attempts are counted.
    pub metrics: Arc<Metrics>,
}

impl DeploymentFactory {
    /// The factory for `settings`.
    pub fn new(settings: &Settings, shared: Option<Shared>, metrics: Arc<Metrics>) -> Self {
        Self {
            policy: settings.cooldown,
            hard_limits: settings.routing.hard_limits(),
            latency: settings.latency_window,
            shared,
            metrics,
        }
    }

    /// What deployment `d` enforces.
    pub fn enforce(&self, d: &Deployment) -> Enforce {
        Enforce {
            profile: d.profile(),
            hard_limits: self.hard_limits,
            latency: self.latency,
        }
    }

    /// Starts the actor of deployment `d` on the current arbiter.
    pub fn start(
        &self,
        d: &Deployment,
        group_has_others: bool,
        router: Addr<RouterActor>,
    ) -> Addr<DeploymentActor> {
        let actor = DeploymentActor::new(
            d.index,
            group_has_others,
            self.policy,
            self.enforce(d),
            router,
        )
        .with_metrics(self.metrics.deployment(&view_of(d)));
        match &self.shared {
            Some(s) => actor.sharing_cooldowns(s.clone(), d.id.clone()).start(),
            None => actor.start(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CliOverrides;

    fn settings(yaml: &str) -> Settings {
        Settings::from_yaml(yaml, &CliOverrides::default()).unwrap()
    }

    fn wanted(d: &Deployment, version: &str) -> Wanted {
        Wanted {
            deployment: d.clone(),
            version: version.into(),
        }
    }

    const TWO: &str = "model_list:\n  - {model_name: a, litellm_params: {model: openai/x, api_base: 'http://h'}, model_info: {id: one}}\n  - {model_name: b, litellm_params: {model: openai/y, api_base: 'http://h'}, model_info: {id: two}}\n";

    #[test]
    fn ids_keep_their_index_new_ones_are_appended_and_removed_ones_leave_a_tombstone() {
        let s = settings(TWO);
        let (a, b) = (&s.deployments[0], &s.deployments[1]);
        let first = Topology::initial(vec![wanted(a, ""), wanted(b, "")], &s);

        let mut c = b.clone();
        c.id = "three".into();
        c.model_name = "c".into();
        let (next, changes) = first.next(vec![wanted(b, "v2"), wanted(&c, "")], &s);
        assert_eq!(
            changes,
            Changes {
                added: vec![2],
                changed: vec![1],
                removed: vec![0],
            }
        );
        assert_eq!(next.len(), 3);
        assert_eq!(next.deployment(2).index, 2);
        assert_eq!(
            next.deployment(0).id,
            "one",
            "a removed deployment keeps its index"
        );
        assert!(next.find("one").is_none());
        assert_eq!(next.catalog.resolve("a"), None);
        assert_eq!(next.catalog.resolve("b").map(|r| r.group), Some(1));
        assert_eq!(next.catalog.resolve("c").map(|r| r.group), Some(2));
        let live: Vec<&str> = next.live().map(|d| d.id.as_str()).collect();
        assert_eq!(live, ["two", "three"]);
    }

    #[test]
    fn an_unchanged_version_is_no_change_and_identical_entries_stay_two() {
        let s = settings(TWO);
        let a = &s.deployments[0];
        let first = Topology::initial(vec![wanted(a, ""), wanted(a, "")], &s);
        assert_eq!(
            first.live().count(),
            2,
            "identical config entries are both served"
        );
        let (next, changes) = first.next(vec![wanted(a, ""), wanted(a, "")], &s);
        assert!(changes.is_empty(), "{changes:?}");
        assert_eq!(next.catalog.members()[0], vec![0, 1]);
    }
}
