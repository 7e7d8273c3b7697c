//! `AppState`: what every handler shares: settings, the catalog, and the actors' addresses.

use actix::{Actor, Addr, AsyncContext};
use sha2::{Digest, Sha256};

use crate::actors::{DeploymentActor, RouterActor};
use crate::catalog::Catalog;
use crate::config::{Deployment, Settings};

/// Shared by all workers; cheap to reach through `web::Data`.
pub struct AppState {
    /// The validated settings.
    pub settings: Settings,
    /// Names to groups.
    pub catalog: Catalog,
    /// The router.
    pub router: Addr<RouterActor>,
    /// One actor per deployment, by index.
    pub deployment_actors: Vec<Addr<DeploymentActor>>,
    /// SHA-256 of the master key, compared in constant time.
    pub master_key_digest: Option<[u8; 32]>,
}

impl AppState {
    /// Starts the router and deployment actors on the current arbiter.
    pub fn start(settings: Settings) -> Self {
        let catalog = Catalog::new(&settings.deployments, settings.serve_any_model);
        let weights: Vec<f64> = settings
            .deployments
            .iter()
            .map(Deployment::shuffle_weight)
            .collect();
        let mut group_size = vec![0usize; settings.deployments.len()];
        for members in catalog.members() {
            for &m in members {
                group_size[m] = members.len();
            }
        }
        let policy = settings.cooldown;
        let groups = catalog.members().to_vec();
        let mut deployment_actors = Vec::new();
        let router = RouterActor::create(|ctx| {
            let me = ctx.address();
            deployment_actors = (0..weights.len())
                .map(|i| DeploymentActor::new(i, group_size[i] > 1, policy, me.clone()).start())
                .collect();
            RouterActor::new(groups, weights)
        });
        let master_key_digest = settings
            .master_key
            .as_ref()
            .map(|k| digest(k.expose().as_bytes()));
        Self {
            settings,
            catalog,
            router,
            deployment_actors,
            master_key_digest,
        }
    }

    /// The deployment at `index`.
    pub fn deployment(&self, index: usize) -> &Deployment {
        &self.settings.deployments[index]
    }
}

/// SHA-256 of `bytes`.
pub fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}
