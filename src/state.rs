//! `AppState`: what every handler shares: settings, the deployments in use (swapped whole when
//! models change at runtime), and the actors' addresses.

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use actix::{Actor, Addr, AsyncContext};
use arc_swap::ArcSwap;
use sha2::{Digest, Sha256};

use crate::actors::{CoolDown, ForgetEntity, ForgetKey, ProxyBudget, RouterActor, SpendActor};
use crate::callbacks::Callbacks;
use crate::config::Settings;
use crate::db::DbHandle;
use crate::governance::{EntityKind, EntityRef};
use crate::health::HealthBoard;
use crate::journal::{Journal, Recovered};
use crate::metrics::{DeploymentView, Metrics};
use crate::providers::vertex_ai::token::TokenCache;
use crate::shared::events::{Event, Pending};
use crate::shared::limits::slot_lifetime;
use crate::shared::{Redis, Shared};
use crate::topology::{Changes, DeploymentFactory, Topology, Wanted};

/// Connections to Redis, shared by every worker (each is multiplexed).
const REDIS_POOL_SIZE: u32 = 4;

/// Rows buffered before the spend actor writes without waiting for its interval.
const SPEND_BUFFER_ROWS: usize = 2000;

/// The actors' addresses (each deployment's is in the topology).
pub struct Actors {
    /// The router.
    pub router: Addr<RouterActor>,
}

/// Shared by all workers; cheap to reach through `web::Data`.
pub struct AppState {
    /// The validated settings.
    pub settings: Settings,
    /// The deployments in use and the catalog over them: loaded once per request, swapped by
    /// the router when models change at runtime.
    topology: Arc<ArcSwap<Topology>>,
    /// Held while the topology is replaced before the actors run, and while they start.
    topology_lock: Mutex<()>,
    /// Models stored in the database (`store_model_in_db`).
    pub models: crate::modeldb::ModelStore,
    /// SHA-256 of the master key, compared in constant time.
    pub master_key_digest: Option<[u8; 32]>,
    /// The database (keys and spend).
    pub db: DbHandle,
    /// Requests admitted and not yet charged (a graceful stop waits for them).
    pub live_requests: Arc<AtomicUsize>,
    /// Vertex AI's OAuth access tokens, by service account, shared by every worker.
    pub vertex_tokens: TokenCache,
    /// The response cache, when `litellm_settings.cache` is on.
    pub cache: Option<crate::cache::ResponseCache>,
    /// Limits, cooldowns and key changes shared with other instances, when Redis is set.
    pub shared: Option<Shared>,
    /// What `/metrics` shows.
    pub metrics: Arc<Metrics>,
    /// The last round of health checks.
    pub health: HealthBoard,
    /// The logging callbacks (their actor runs on its own arbiter; counters for the metrics).
    pub callbacks: Callbacks,
    /// The spend journal, when one is kept: answers complete once their spend is in it.
    pub spend_journal: Option<Journal>,
    /// Recent Responses conversations served through chat, for `previous_response_id`.
    pub responses: crate::responses::ConversationStore,
    /// Other instances' cooldowns heard before the actors started.
    pending_cooldowns: Pending,
    /// The spend writer, on the database arbiter: it outlives the HTTP workers, so a graceful
    /// stop can write what the last requests recorded.
    spend: Addr<SpendActor>,
    proxy_budget: ProxyBudget,
    actors: OnceLock<Actors>,
}

impl AppState {
    /// The shared state; the actors start on the first worker that asks for them.
    pub fn new(
        settings: Settings,
        db: DbHandle,
        proxy_budget: ProxyBudget,
        journal: Option<Recovered>,
    ) -> Self {
        let metrics = Arc::new(Metrics::new());
        let mut after = 0;
        let spend_journal = journal.and_then(|j| {
            after = j.after;
            j.start(metrics.spend_journal.clone())
                .map_err(|e| log::error!("the spend journal cannot start ({e}); spend is kept in memory only until written"))
                .ok()
        });
        let spend = {
            let (handle, every, keep_rows) = (
                db.clone(),
                settings.spend_write_every,
                !settings.disable_spend_logs,
            );
            let metrics = metrics.clone();
            let journal = spend_journal.clone();
            SpendActor::start_in_arbiter(db.arbiter(), move |_| {
                let actor = SpendActor::new(handle, every, SPEND_BUFFER_ROWS, keep_rows)
                    .with_metrics(metrics);
                match journal {
                    Some(j) => actor.with_journal(j, after),
                    None => actor,
                }
            })
        };
        let topology = Topology::initial(Wanted::from_config(&settings), &settings);
        let master_key_digest = settings
            .master_key
            .as_ref()
            .map(|k| digest(k.expose().as_bytes()));
        let cache = settings.cache.as_ref().and_then(|c| {
            crate::cache::ResponseCache::new(c)
                .map_err(|e| {
                    log::error!("the response cache is off: its Redis URL is unusable ({e})")
                })
                .ok()
        });
        let shared =
            settings
                .redis
                .as_ref()
                .and_then(|target| match Redis::new(target, REDIS_POOL_SIZE) {
                    Ok(redis) => {
                        log::info!(
                            "sharing limits, cooldowns and key changes through redis at {}",
                            target.shown
                        );
                        Some(Shared::new(redis, slot_lifetime(settings.request_timeout)))
                    }
                    Err(e) => {
                        log::error!(
                            "redis at {} cannot be used ({e}); limits are per instance",
                            target.shown
                        );
                        None
                    }
                });
        let callbacks = Callbacks::start(&settings.callbacks);
        let models = crate::modeldb::ModelStore::new(&settings);
        Self {
            settings,
            topology: Arc::new(ArcSwap::from_pointee(topology)),
            topology_lock: Mutex::new(()),
            models,
            master_key_digest,
            db,
            live_requests: Arc::new(AtomicUsize::new(0)),
            vertex_tokens: TokenCache::default(),
            cache,
            shared,
            metrics,
            health: HealthBoard::default(),
            callbacks,
            spend_journal,
            responses: crate::responses::ConversationStore::default(),
            pending_cooldowns: Pending::default(),
            spend,
            proxy_budget,
            actors: OnceLock::new(),
        }
    }

    /// The actors, started on the current arbiter by the first caller.
    ///
    /// The first request starts them on its worker's thread: with one worker the request's two
    /// awaited hops never cross threads.
    pub fn actors(&self) -> &Actors {
        self.actors.get_or_init(|| self.start_actors())
    }

    fn start_actors(&self) -> Actors {
        // A runtime change waits until the actors run, then goes through the router.
        let _writing = self
            .topology_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let factory =
            DeploymentFactory::new(&self.settings, self.shared.clone(), self.metrics.clone());
        let rules = self.settings.routing;
        let proxy = self.proxy_budget;
        let end_user_budget = self.settings.max_end_user_budget;
        let for_router = self.spend.clone();
        let mut topology = (*self.topology.load_full()).clone();
        // With the actors' addresses it is another topology: a request that loaded the one
        // without them goes on with this one after its pick.
        topology.generation += 1;
        let swap = self.topology.clone();
        let mut started = None;
        let router = RouterActor::create(|ctx| {
            let me = ctx.address();
            topology.start_missing(&factory, &me, &Changes::default(), None);
            let topology = Arc::new(topology);
            started = Some(topology.clone());
            let (profiles, orders) = topology.profiles();
            RouterActor::new(
                topology.catalog.clone(),
                rules,
                profiles,
                &orders,
                proxy,
                Some(for_router),
            )
            .with_topology(topology, swap, factory)
            .with_end_user_budget(end_user_budget)
        });
        if let Some(topology) = started {
            self.topology.store(topology);
        }
        let actors = Actors { router };
        for (id, until) in self.pending_cooldowns.take() {
            self.cool_down(&id, until);
        }
        actors
    }

    /// The deployments in use now (one atomic load; hold it for the whole request).
    pub fn topology(&self) -> Arc<Topology> {
        self.topology.load_full()
    }

    /// Serves `wanted` from now on: the config's deployments and the database's. Before the
    /// actors run the topology is replaced here; after, the router replaces it (starting the
    /// new deployments' actors) and this returns once it has.
    pub async fn replace_deployments(&self, wanted: Vec<Wanted>) -> Changes {
        let router = {
            let _writing = self
                .topology_lock
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match self.started_actors() {
                Some(actors) => actors.router.clone(),
                None => {
                    let (next, changes) = self.topology().next(wanted, &self.settings);
                    self.topology.store(Arc::new(next));
                    return changes;
                }
            }
        };
        // Only the router replaces a running topology, and changes are made one at a time
        // (`ModelStore`), so the one loaded here is the router's.
        let (next, changes) = self.topology().next(wanted, &self.settings);
        let apply = crate::actors::router::ApplyTopology {
            next,
            changes: changes.clone(),
        };
        if router.send(apply).await.is_err() {
            log::error!("the router is gone; the model change is not applied");
        }
        changes
    }

    /// Cools the deployments with id `id` down until `until` (another instance's cooldown).
    fn cool_down(&self, id: &str, until: Instant) {
        let topology = self.topology();
        for d in topology.live().filter(|d| d.id == id) {
            if let Some(addr) = topology.addr(d.index) {
                addr.do_send(CoolDown { until });
            }
        }
    }

    /// Handles another instance's event.
    pub fn on_event(&self, event: Event) {
        match event {
            Event::Cooldown { deployment, millis } => {
                let until = Instant::now() + Duration::from_millis(millis);
                match self.started_actors() {
                    Some(_) => self.cool_down(&deployment, until),
                    None => self.pending_cooldowns.add(deployment, until),
                }
            }
            Event::Entity { kind, scope, id } => {
                if let (Some(actors), Some(kind)) =
                    (self.started_actors(), EntityKind::parse(&kind))
                {
                    let entity = EntityRef {
                        kind,
                        scope: scope.into(),
                        id: id.into(),
                    };
                    actors.router.do_send(ForgetEntity(entity));
                }
            }
            Event::Models => self.models.changed_elsewhere(),
            Event::Key { token, removed } => {
                if removed {
                    self.metrics.forget_key(&token);
                }
                // Nothing is cached before the actors start.
                if let Some(actors) = self.started_actors() {
                    actors.router.do_send(ForgetKey(token));
                }
            }
        }
    }

    /// Tells the other instances that `entity` changed or is gone (their cached copies are
    /// dropped).
    pub fn entity_changed(&self, entity: &EntityRef) {
        if let Some(shared) = &self.shared {
            shared.publish(Event::Entity {
                kind: entity.kind.as_str().to_owned(),
                scope: entity.scope.to_string(),
                id: entity.id.to_string(),
            });
        }
    }

    /// Tells the other instances that key `token` changed (their cached copies are dropped).
    pub fn key_changed(&self, token: &str) {
        self.publish_key(token, false);
    }

    /// Key `token` was deleted or regenerated: its metric series go here and on the other
    /// instances (key churn must not grow `/metrics`), and their cached copies are dropped.
    pub fn key_removed(&self, token: &str) {
        self.metrics.forget_key(token);
        self.publish_key(token, true);
    }

    fn publish_key(&self, token: &str, removed: bool) {
        if let Some(shared) = &self.shared {
            shared.publish(Event::Key {
                token: token.to_owned(),
                removed,
            });
        }
    }

    /// The actors, if a request has started them.
    pub fn started_actors(&self) -> Option<&Actors> {
        self.actors.get()
    }

    /// The spend writer.
    pub fn spend(&self) -> &Addr<SpendActor> {
        &self.spend
    }

    /// Each live deployment's state, from its own actor, with the topology it is of.
    pub async fn deployment_snapshots(
        &self,
    ) -> (Arc<Topology>, Vec<crate::routing::DeploymentSnapshot>) {
        self.actors();
        let topology = self.topology();
        let asks = topology.live().map(|d| {
            let ask = topology
                .addr(d.index)
                .map(|a| a.send(crate::actors::Inspect));
            async move {
                match ask {
                    Some(ask) => ask.await.unwrap_or_default(),
                    None => Default::default(),
                }
            }
        });
        let snapshots = futures_util::future::join_all(asks).await;
        (topology, snapshots)
    }

    /// What names each live deployment of `topology` in the metrics (no secrets).
    pub fn deployment_views(topology: &Topology) -> Vec<DeploymentView> {
        topology.live().map(crate::topology::view_of).collect()
    }
}

/// SHA-256 of `bytes`.
pub fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}
