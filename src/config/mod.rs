//! The gateway's configuration: LiteLLM's `config.yaml` read, resolved and validated.

mod callbacks;
mod client;
mod de;
mod deployment;
mod error;
mod resolve;
mod security;
mod settings;
mod shared;
mod support;

pub use callbacks::{CallbackSettings, SinkSettings, SinkTarget};
pub use client::ClientTimeouts;
pub use deployment::{Deployment, DeploymentSource};
pub use error::ConfigError;
pub use resolve::Env;
pub use security::{
    truthy, CorsOrigins, CorsSettings, SecuritySettings, ALLOW_WEAK_ENV, PERMIT_WEAK_ENV,
    PERMIT_WEAK_SETTING,
};
pub use settings::{CliOverrides, HealthSettings, Settings, SpendJournal};
pub use shared::{CacheSettings, CacheStore, RedisTarget, DEFAULT_CACHE_TTL, URL_UNRESERVED};
pub use support::{unimplemented_settings, SettingStatus, SECRET_PARAMS};

/// A secret string (provider key, master key) whose `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}
