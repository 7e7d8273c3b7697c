//! `AppState`: what every handler shares: settings, the catalog, and the actors' addresses.

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use actix::{Actor, Addr, AsyncContext};
use sha2::{Digest, Sha256};

use crate::actors::{
    CoolDown, DeploymentActor, ForgetEntity, ForgetKey, ProxyBudget, RouterActor, SpendActor,
};
use crate::callbacks::Callbacks;
use crate::catalog::Catalog;
use crate::config::{Deployment, Settings};
use crate::db::DbHandle;
use crate::governance::{EntityKind, EntityRef};
use crate::health::HealthBoard;
use crate::journal::{Journal, Recovered};
use crate::metrics::{DeploymentView, Metrics};
use crate::providers::vertex_ai::token::TokenCache;
use crate::routing::{Enforce, Profile};
use crate::shared::events::{Event, Pending};
use crate::shared::limits::slot_lifetime;
use crate::shared::{Redis, Shared};

/// Connections to Redis, shared by every worker (each is multiplexed).
const REDIS_POOL_SIZE: u32 = 4;

/// Rows buffered before the spend actor writes without waiting for its interval.
const SPEND_BUFFER_ROWS: usize = 2000;

/// The actors' addresses.
pub struct Actors {
    /// The router.
    pub router: Addr<RouterActor>,
    /// One actor per deployment, by index.
    pub deployments: Vec<Addr<DeploymentActor>>,
}

/// Shared by all workers; cheap to reach through `web::Data`.
pub struct AppState {
    /// The validated settings.
    pub settings: Settings,
    /// Names to groups.
    pub catalog: Arc<Catalog>,
    /// SHA-256 of the master key, compared in constant time.
    pub master_key_digest: Option<[u8; 32]>,
    /// The database (keys and spend).
    pub db: DbHandle,
    /// Requests admitted and not yet charged (a graceful stop waits for them).
    pub live_requests: Arc<AtomicUsize>,
    /// Whether requests' tokens are estimated before routing: some deployment has a `tpm` that
    /// binds, or a context window that pre-call checks compare the prompt with.
    pub estimate_tokens: bool,
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
        let catalog = Arc::new(
            Catalog::new(&settings.deployments, settings.serve_any_model)
                .with_aliases(&settings.model_group_alias),
        );
        let master_key_digest = settings
            .master_key
            .as_ref()
            .map(|k| digest(k.expose().as_bytes()));
        let estimate_tokens = estimate_tokens(&settings);
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
        Self {
            settings,
            catalog,
            master_key_digest,
            db,
            live_requests: Arc::new(AtomicUsize::new(0)),
            estimate_tokens,
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
        let profiles: Vec<Profile> = self
            .settings
            .deployments
            .iter()
            .map(Deployment::profile)
            .collect();
        let mut group_size = vec![0usize; profiles.len()];
        for members in self.catalog.members() {
            for &m in members {
                group_size[m] = members.len();
            }
        }
        let policy = self.settings.cooldown;
        let rules = self.settings.routing;
        let latency = self.settings.latency_window;
        let orders: Vec<Option<u32>> = self.settings.deployments.iter().map(|d| d.order).collect();
        let catalog = self.catalog.clone();
        let proxy = self.proxy_budget;
        let end_user_budget = self.settings.max_end_user_budget;
        let for_router = self.spend.clone();
        let shared = self.shared.clone();
        let ids: Vec<String> = self
            .settings
            .deployments
            .iter()
            .map(|d| d.id.clone())
            .collect();
        let metrics: Vec<_> = self
            .deployment_views()
            .iter()
            .map(|view| self.metrics.deployment(view))
            .collect();
        let mut metrics = metrics.into_iter();
        let mut deployments = Vec::new();
        let router = RouterActor::create(|ctx| {
            let me = ctx.address();
            deployments = profiles
                .iter()
                .enumerate()
                .map(|(i, &profile)| {
                    let enforce = Enforce {
                        profile,
                        hard_limits: rules.hard_limits(),
                        latency,
                    };
                    let mut actor =
                        DeploymentActor::new(i, group_size[i] > 1, policy, enforce, me.clone());
                    if let Some(m) = metrics.next() {
                        actor = actor.with_metrics(m);
                    }
                    match &shared {
                        Some(s) => actor.sharing_cooldowns(s.clone(), ids[i].clone()).start(),
                        None => actor.start(),
                    }
                })
                .collect();
            RouterActor::new(catalog, rules, profiles, &orders, proxy, Some(for_router))
                .with_end_user_budget(end_user_budget)
        });
        let actors = Actors {
            router,
            deployments,
        };
        for (id, until) in self.pending_cooldowns.take() {
            self.cool_down(&actors, &id, until);
        }
        actors
    }

    /// Cools the deployments with id `id` down until `until` (another instance's cooldown).
    fn cool_down(&self, actors: &Actors, id: &str, until: Instant) {
        for (i, d) in self.settings.deployments.iter().enumerate() {
            if d.id == id {
                actors.deployments[i].do_send(CoolDown { until });
            }
        }
    }

    /// Handles another instance's event.
    pub fn on_event(&self, event: Event) {
        match event {
            Event::Cooldown { deployment, millis } => {
                let until = Instant::now() + Duration::from_millis(millis);
                match self.started_actors() {
                    Some(actors) => self.cool_down(actors, &deployment, until),
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

    /// The deployment at `index`.
    pub fn deployment(&self, index: usize) -> &Deployment {
        &self.settings.deployments[index]
    }

    /// Each deployment's live state, from its own actor (by index).
    pub async fn deployment_snapshots(&self) -> Vec<crate::routing::DeploymentSnapshot> {
        let asks = self
            .actors()
            .deployments
            .iter()
            .map(|a| a.send(crate::actors::Inspect));
        futures_util::future::join_all(asks)
            .await
            .into_iter()
            .map(Result::unwrap_or_default)
            .collect()
    }

    /// What names each deployment in the metrics, by index (no secrets).
    pub fn deployment_views(&self) -> Vec<DeploymentView> {
        self.settings
            .deployments
            .iter()
            .map(|d| DeploymentView {
                model_group: d.model_name.clone(),
                model: d.upstream_model.clone(),
                id: d.id.clone(),
                provider: d.provider.name().to_owned(),
                api_base: d.public_api_base.clone(),
                rpm: d.rpm,
                tpm: d.tpm,
            })
            .collect()
    }
}

/// Whether routing needs each request's token estimate (see `AppState::estimate_tokens`).
fn estimate_tokens(settings: &Settings) -> bool {
    let rules = settings.routing;
    settings.deployments.iter().any(|d| {
        (rules.hard_limits() && d.tpm.is_some())
            || (rules.pre_call_checks && d.context_window.is_some())
    })
}

/// SHA-256 of `bytes`.
pub fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}
