//! Models kept in the database (`store_model_in_db`): how a stored model becomes a deployment
//! (the config file's validation, credentials sealed at rest), and how every instance picks up
//! changes without a restart (a cheap poll, and a Redis event when Redis is configured).

pub mod edit;
pub mod secrets;

use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use chrono::{NaiveDateTime, Utc};
use serde_json::{json, Map, Value as Json};
use tokio::sync::{Mutex, Notify};

use crate::config::{ConfigError, Deployment, Settings};
use crate::db::models_store::{ModelsFingerprint, StoredModelRow};
use crate::db::DbError;
use crate::shared::events::Event;
use crate::state::AppState;
use crate::topology::{mark_source, Changes, Wanted};

pub use secrets::{SealError, Sealer};

/// The table name LiteLLM's audit log gives stored models.
pub const MODEL_TABLE: &str = "LiteLLM_ProxyModelTable";

/// A stored model with its credentials opened: what `/model/update` edits.
#[derive(Debug, Clone)]
pub struct PlainModel {
    /// `model_info.id`.
    pub id: String,
    /// The public name.
    pub model_name: String,
    /// `litellm_params`, credentials in the clear (never logged, never returned).
    pub litellm_params: Map<String, Json>,
    /// `model_info` without `id` and `db_model`.
    pub model_info: Map<String, Json>,
}

impl PlainModel {
    /// The `model_list` entry it is, as JSON.
    fn entry(&self) -> Json {
        let mut info = self.model_info.clone();
        info.insert("id".into(), Json::String(self.id.clone()));
        json!({
            "model_name": self.model_name,
            "litellm_params": self.litellm_params,
            "model_info": info,
        })
    }

    /// Validates it exactly as a `model_list` entry of the config file is validated
    /// (`os.environ/` references resolved now, the command line's defaults applied); errors
    /// name the field.
    pub fn deployment(&self, settings: &Settings) -> Result<Deployment, ConfigError> {
        let env = &settings.env;
        let mut tree = serde_yaml::to_value(self.entry())
            .map_err(|e| ConfigError::at("model_info", e.to_string()))?;
        env.resolve_tree(&mut tree)?;
        let mut d = Deployment::from_entry(0, &tree, "", env, &settings.cli)?;
        mark_source(&mut d, true);
        Ok(d)
    }
}

/// Why a stored row cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum RowError {
    /// A JSON column does not parse.
    #[error("{0} is not a JSON object")]
    Json(&'static str),
    /// A credential cannot be opened.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// The model does not validate (any more).
    #[error(transparent)]
    Config(#[from] ConfigError),
}

fn object(text: &str, column: &'static str) -> Result<Map<String, Json>, RowError> {
    match serde_json::from_str(text) {
        Ok(Json::Object(m)) => Ok(m),
        _ => Err(RowError::Json(column)),
    }
}

/// Models in the database: whether they are on, how credentials are sealed, and the last
/// state of the table this instance has served.
pub struct ModelStore {
    enabled: bool,
    every: Duration,
    sealer: Option<Sealer>,
    /// Another instance announced a change.
    wake: Arc<Notify>,
    /// The table as last served; held while a change is applied, so changes go one at a time.
    served: Mutex<Option<ModelsFingerprint>>,
}

impl ModelStore {
    /// The store `settings` ask for; credentials are sealed with `LITELLM_SALT_KEY`, else the
    /// master key.
    pub fn new(settings: &Settings) -> Self {
        let secret = settings
            .env
            .get("LITELLM_SALT_KEY")
            .or_else(|| settings.master_key.as_ref().map(|k| k.expose().to_owned()));
        Self {
            enabled: settings.store_model_in_db,
            every: settings.model_sync_interval,
            sealer: secret.as_deref().map(Sealer::new),
            wake: Arc::new(Notify::new()),
            served: Mutex::new(None),
        }
    }

    /// Whether models are kept in the database.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Whether credentials can be sealed (a salt key or a master key is set).
    pub fn can_seal(&self) -> bool {
        self.sealer.is_some()
    }

    /// Another instance changed the models: read them again now.
    pub fn changed_elsewhere(&self) {
        if self.enabled {
            self.wake.notify_one();
        }
    }

    /// The row to store for `model`, its credentials sealed.
    pub fn seal(
        &self,
        model: &PlainModel,
        created: (NaiveDateTime, &str),
        by: &str,
    ) -> Result<StoredModelRow, SealError> {
        let sealer = self
            .sealer
            .as_ref()
            .ok_or_else(|| SealError::Seal("api_key".into()))?;
        let mut params = model.litellm_params.clone();
        sealer.seal_params(&mut params)?;
        Ok(StoredModelRow {
            id: model.id.clone(),
            model_name: model.model_name.clone(),
            litellm_params: Json::Object(params).to_string(),
            model_info: Json::Object(model.model_info.clone()).to_string(),
            created_at: created.0,
            updated_at: Utc::now().naive_utc(),
            created_by: created.1.to_owned(),
            updated_by: by.to_owned(),
        })
    }

    /// A stored row with its credentials opened.
    pub fn open(&self, row: &StoredModelRow) -> Result<PlainModel, RowError> {
        let mut litellm_params = object(&row.litellm_params, "litellm_params")?;
        if let Some(sealer) = &self.sealer {
            sealer.open_params(&mut litellm_params)?;
        }
        let mut model_info = object(&row.model_info, "model_info")?;
        model_info.remove("id");
        model_info.remove("db_model");
        Ok(PlainModel {
            id: row.id.clone(),
            model_name: row.model_name.clone(),
            litellm_params,
            model_info,
        })
    }

    /// Reads every stored model and serves them with the config's (a stored model that no
    /// longer validates is skipped, with an error naming it and the field). Returns what
    /// changed.
    pub async fn reload(&self, state: &AppState) -> Result<Changes, DbError> {
        let mut served = self.served.lock().await;
        let (fingerprint, rows) = state
            .db
            .run(|db| async move {
                // The fingerprint first: a change made between the two reads is read again at
                // the next check.
                let fingerprint = db.models_fingerprint().await?;
                Ok((fingerprint, db.stored_models().await?))
            })
            .await?;
        let mut wanted = Wanted::from_config(&state.settings);
        for row in &rows {
            let served = self
                .open(row)
                .and_then(|m| m.deployment(&state.settings).map_err(RowError::from));
            match served {
                Ok(deployment) => wanted.push(Wanted {
                    deployment,
                    version: format!("db:{}", row.updated_at),
                }),
                Err(e) => log::error!("stored model {} is not served: {e}", row.id),
            }
        }
        let changes = state.replace_deployments(wanted).await;
        if !changes.is_empty() {
            log::info!(
                "models changed: {} added, {} changed, {} removed",
                changes.added.len(),
                changes.changed.len(),
                changes.removed.len()
            );
        }
        *served = Some(fingerprint);
        Ok(changes)
    }

    /// This instance changed the models: serve the change now and tell the other instances.
    pub async fn changed_here(&self, state: &AppState) -> Result<Changes, DbError> {
        let changes = self.reload(state).await?;
        if let Some(shared) = &state.shared {
            shared.publish(Event::Models);
        }
        Ok(changes)
    }

    /// Whether the table differs from what was last served (one cheap query).
    async fn stale(&self, state: &AppState) -> Result<bool, DbError> {
        let now = state
            .db
            .run(|db| async move { db.models_fingerprint().await })
            .await?;
        Ok(self.served.lock().await.as_ref() != Some(&now))
    }

    /// Checks the table every `model_sync_interval`, and at once when another instance
    /// announces a change; serves what changed. Runs for the life of the process.
    pub async fn keep_in_sync(state: web::Data<AppState>) {
        let store = &state.models;
        let wake = store.wake.clone();
        // One warning while the database is unreachable, not one per check.
        let mut failing = false;
        loop {
            let announced = tokio::select! {
                () = wake.notified() => true,
                () = actix_rt::time::sleep(store.every) => false,
            };
            let due = if announced {
                Ok(true)
            } else {
                store.stale(&state).await
            };
            let result = match due {
                Ok(true) => store.reload(&state).await.map(drop),
                Ok(false) => Ok(()),
                Err(e) => Err(e),
            };
            match result {
                Err(e) if !failing => {
                    failing = true;
                    log::warn!("cannot read the stored models ({e}); retrying");
                }
                Err(_) => {}
                Ok(()) if failing => {
                    failing = false;
                    log::info!("the stored models can be read again");
                }
                Ok(()) => {}
            }
        }
    }
}
