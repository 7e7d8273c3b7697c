//! The validated, typed settings the gateway runs on, built from the resolved YAML tree.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde_yaml::Value;

use super::{de, support, ConfigError, Deployment, DeploymentSource, Env, Secret};
use crate::catalog::GroupAlias;
use crate::routing::{
    CooldownPolicy, ErrorClass, FallbackPolicy, LatencyWindow, RetryPolicy, RoutingStrategy, Rules,
};

/// Flags given on the command line that shape the configuration (COMPAT.md section 1).
#[derive(Debug, Clone, Default)]
pub struct CliOverrides {
    /// `--model`: serve this one model, with no config needed.
    pub model: Option<String>,
    /// `--alias`: the public name of `--model`.
    pub alias: Option<String>,
    /// `--api_base` for `--model`.
    pub api_base: Option<String>,
    /// `--api_version` for `--model`.
    pub api_version: Option<String>,
    /// `--temperature`: a default for every deployment.
    pub temperature: Option<f64>,
    /// `--max_tokens`: a default for every deployment.
    pub max_tokens: Option<u64>,
    /// `--request_timeout` in seconds.
    pub request_timeout: Option<f64>,
    /// `--drop_params`.
    pub drop_params: bool,
    /// `--add_function_to_prompt`.
    pub add_function_to_prompt: bool,
    /// `--keepalive_timeout` in seconds.
    pub keepalive_timeout: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
struct RawLitellmSettings {
    #[serde(default, deserialize_with = "de::opt_bool")]
    drop_params: Option<bool>,
    #[serde(default, deserialize_with = "de::opt_u32")]
    num_retries: Option<u32>,
    #[serde(default, deserialize_with = "de::opt_f64")]
    request_timeout: Option<f64>,
    #[serde(default, deserialize_with = "de::opt_u32")]
    allowed_fails: Option<u32>,
    #[serde(default, deserialize_with = "de::opt_f64")]
    cooldown_time: Option<f64>,
    #[serde(default, deserialize_with = "de::opt_bool")]
    set_verbose: Option<bool>,
    #[serde(default, deserialize_with = "de::opt_bool")]
    add_function_to_prompt: Option<bool>,
    #[serde(default, deserialize_with = "de::opt_bool")]
    turn_off_message_logging: Option<bool>,
    #[serde(default, deserialize_with = "de::opt_f64")]
    max_budget: Option<f64>,
    #[serde(default, deserialize_with = "de::opt_string")]
    budget_duration: Option<String>,
    #[serde(default)]
    default_key_generate_params: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default, deserialize_with = "de::opt_f64")]
    max_end_user_budget: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
struct RawRouterSettings {
    #[serde(default, deserialize_with = "de::opt_string")]
    routing_strategy: Option<String>,
    #[serde(default, deserialize_with = "de::opt_u32")]
    allowed_fails: Option<u32>,
    #[serde(default, deserialize_with = "de::opt_f64")]
    cooldown_time: Option<f64>,
    #[serde(default, deserialize_with = "de::opt_bool")]
    disable_cooldowns: Option<bool>,
    #[serde(default, deserialize_with = "de::opt_u32")]
    num_retries: Option<u32>,
    #[serde(default, deserialize_with = "de::opt_f64")]
    timeout: Option<f64>,
    #[serde(default, deserialize_with = "de::opt_f64")]
    stream_timeout: Option<f64>,
    #[serde(default, deserialize_with = "de::opt_bool")]
    enable_pre_call_checks: Option<bool>,
    #[serde(default, deserialize_with = "de::opt_f64")]
    retry_after: Option<f64>,
    #[serde(default)]
    routing_strategy_args: Option<RawStrategyArgs>,
}

#[derive(Debug, Default, Deserialize)]
struct RawStrategyArgs {
    #[serde(default, deserialize_with = "de::opt_f64")]
    lowest_latency_buffer: Option<f64>,
    #[serde(default, deserialize_with = "de::opt_f64")]
    ttl: Option<f64>,
    #[serde(default, deserialize_with = "de::opt_u32")]
    max_latency_list_size: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
struct RawGeneralSettings {
    #[serde(default, deserialize_with = "de::opt_string")]
    master_key: Option<String>,
    #[serde(default, deserialize_with = "de::opt_f64")]
    max_request_size_mb: Option<f64>,
    #[serde(default, deserialize_with = "de::opt_string")]
    litellm_key_header_name: Option<String>,
    #[serde(default, deserialize_with = "de::opt_bool")]
    always_include_stream_usage: Option<bool>,
    #[serde(default, deserialize_with = "de::opt_string")]
    database_url: Option<String>,
    #[serde(default, deserialize_with = "de::opt_u32")]
    database_connection_pool_limit: Option<u32>,
    #[serde(default, deserialize_with = "de::opt_f64")]
    proxy_batch_write_at: Option<f64>,
    #[serde(default, deserialize_with = "de::opt_bool")]
    disable_spend_logs: Option<bool>,
    #[serde(default, deserialize_with = "de::opt_string")]
    spend_journal_path: Option<String>,
    #[serde(default, deserialize_with = "de::opt_f64")]
    max_budget: Option<f64>,
    #[serde(default, deserialize_with = "de::opt_string")]
    budget_duration: Option<String>,
    #[serde(default, deserialize_with = "de::opt_bool")]
    background_health_checks: Option<bool>,
    #[serde(default, deserialize_with = "de::opt_f64")]
    health_check_interval: Option<f64>,
    #[serde(default, deserialize_with = "de::opt_f64")]
    health_check_timeout: Option<f64>,
    #[serde(default, deserialize_with = "de::opt_bool")]
    store_model_in_db: Option<bool>,
    #[serde(default, deserialize_with = "de::opt_f64")]
    model_sync_interval: Option<f64>,
}

/// `GET /health` and the background checks.
#[derive(Debug, Clone, Copy)]
pub struct HealthSettings {
    /// `background_health_checks`: check every `interval` and serve the last round.
    pub background: bool,
    /// `health_check_interval` (default 300 s).
    pub interval: Duration,
    /// `health_check_timeout`: each deployment's check at most (default 60 s).
    pub timeout: Duration,
}

/// Everything the gateway runs on, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    /// One entry per `model_list` item, in file order.
    pub deployments: Vec<Deployment>,
    /// The master key; `None` means no authentication at all.
    pub master_key: Option<Secret>,
    /// `drop_params`.
    pub drop_params: bool,
    /// `add_function_to_prompt`: tools described in the prompt for deployments without tools.
    pub add_function_to_prompt: bool,
    /// Retries after a failed attempt (`num_retries`, default 2).
    pub num_retries: u32,
    /// The budget of an end user without one of its own (`max_end_user_budget`).
    pub max_end_user_budget: Option<f64>,
    /// Whole-call timeout (`timeout` / `request_timeout`, default 600 s).
    pub request_timeout: Duration,
    /// Time allowed until a stream's first byte.
    pub stream_timeout: Option<Duration>,
    /// When deployments cool down.
    pub cooldown: CooldownPolicy,
    /// How a group's deployment is picked: the strategy and the pre-call checks.
    pub routing: Rules,
    /// How latency-based routing averages latencies (`routing_strategy_args`).
    pub latency_window: LatencyWindow,
    /// `router_settings.retry_after`: the least wait before retrying the same deployment.
    pub retry_after: Duration,
    /// Largest accepted request body, in bytes.
    pub max_request_size: usize,
    /// An extra header that may carry the key (lowercase).
    pub key_header_name: Option<String>,
    /// Add the usage chunk to every stream.
    pub always_include_stream_usage: bool,
    /// `set_verbose`.
    pub verbose: bool,
    /// Started with `--model` and no config: the one model answers every name.
    pub serve_any_model: bool,
    /// Where keys and spend are stored.
    pub database: crate::db::DbTarget,
    /// Connections in the pool.
    pub database_pool_size: u32,
    /// How often buffered spend is written.
    pub spend_write_every: Duration,
    /// Keep key totals but write no spend-log rows.
    pub disable_spend_logs: bool,
    /// Where the spend journal is kept (`spend_journal_path` / `LLMGATE_SPEND_JOURNAL`).
    pub spend_journal: SpendJournal,
    /// Health checks.
    pub health: HealthSettings,
    /// The proxy-wide budget in USD (the lower of the two sections when both set one).
    pub max_budget: Option<f64>,
    /// How often the proxy-wide spend resets.
    pub budget_duration: Option<crate::keys::KeyDuration>,
    /// Fallbacks between groups.
    pub fallbacks: FallbackPolicy,
    /// `router_settings.retry_policy`.
    pub retry_policy: RetryPolicy,
    /// `router_settings.model_group_alias`.
    pub model_group_alias: Vec<(String, GroupAlias)>,
    /// Defaults for `/key/generate` (`duration` defaults to 1 hour).
    pub default_key_params: serde_json::Map<String, serde_json::Value>,
    /// Known settings present in the config that have no effect yet.
    pub not_implemented: Vec<String>,
    /// Keys that are not LiteLLM settings at all.
    pub unknown: Vec<String>,
    /// The Redis server instances share limits, cooldowns and key changes through.
    pub redis: Option<super::RedisTarget>,
    /// The response cache, when `litellm_settings.cache` is on.
    pub cache: Option<super::CacheSettings>,
    /// The logging callbacks (`success_callback`, `failure_callback`).
    pub callbacks: super::CallbackSettings,
    /// Address filters, CORS, the weak master key permit, the audit log.
    pub security: super::SecuritySettings,
    /// How long the gateway waits on its clients.
    pub client: super::ClientTimeouts,
    /// Models added through `/model/new` are stored in the database and served by every
    /// instance (`store_model_in_db`, or `STORE_MODEL_IN_DB=True`).
    pub store_model_in_db: bool,
    /// How often each instance checks the database for model changes (`model_sync_interval`,
    /// default 5 s; with Redis, changes are also announced at once).
    pub model_sync_interval: Duration,
    /// The command line's overrides (applied to models added at runtime too).
    pub cli: CliOverrides,
    /// The environment, with the config's overlay.
    pub env: Env,
}

/// Where the spend journal is kept.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SpendJournal {
    /// Beside the SQLite file (`<file>.spend-journal`), or for PostgreSQL in the working
    /// directory (`llmgate-spend-<port>.journal`); none for an in-memory database.
    #[default]
    Default,
    /// At this path.
    At(std::path::PathBuf),
    /// None (`off`): a crash loses the spend buffered since the last write.
    Off,
}

impl SpendJournal {
    fn parse(value: Option<String>) -> Self {
        match value.as_deref().map(str::trim) {
            None | Some("") => Self::Default,
            Some(v) if ["off", "none", "false"].contains(&v.to_ascii_lowercase().as_str()) => {
                Self::Off
            }
            Some(v) => Self::At(v.into()),
        }
    }

    /// The journal's path for `database` served on `port`, if one is kept.
    pub fn path(&self, database: &crate::db::DbTarget, port: u16) -> Option<std::path::PathBuf> {
        use crate::db::DbTarget;
        match (self, database) {
            (Self::Off, _) => None,
            (Self::At(path), _) => Some(path.clone()),
            (Self::Default, DbTarget::Sqlite(file)) if file == ":memory:" => None,
            (Self::Default, DbTarget::Sqlite(file)) => Some(format!("{file}.spend-journal").into()),
            (Self::Default, DbTarget::Postgres(_)) => {
                Some(format!("llmgate-spend-{port}.journal").into())
            }
        }
    }
}

impl Settings {
    /// Loads the config file at `path` (or none), with the command line's overrides.
    pub fn load(path: Option<&Path>, cli: &CliOverrides) -> Result<Self, ConfigError> {
        let text = match path {
            Some(p) => std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                path: p.display().to_string(),
                source,
            })?,
            None => String::new(),
        };
        Self::from_yaml(&text, cli)
    }

    /// Builds settings from YAML text (empty text means no config).
    pub fn from_yaml(text: &str, cli: &CliOverrides) -> Result<Self, ConfigError> {
        let mut tree: Value = if text.trim().is_empty() {
            Value::Mapping(Default::default())
        } else {
            serde_yaml::from_str(text).map_err(|e| ConfigError::Yaml(e.to_string()))?
        };
        if tree.is_null() {
            tree = Value::Mapping(Default::default());
        }
        if !tree.is_mapping() {
            return Err(ConfigError::Yaml("the top level must be a mapping".into()));
        }
        let env = Env::from_section(tree.get("environment_variables"))?;
        if let Some(map) = tree.as_mapping_mut() {
            map.remove("environment_variables");
        }
        env.resolve_tree(&mut tree)?;
        let (mut not_implemented, unknown) = support::unimplemented_settings(&tree);
        let redis = super::shared::redis_target(&tree, &env)?;
        let (cache, cache_not_done) = super::shared::cache_settings(&tree, &env, redis.as_ref())?;
        not_implemented.extend(cache_not_done);

        let litellm: RawLitellmSettings = section(&tree, "litellm_settings")?;
        let router: RawRouterSettings = section(&tree, "router_settings")?;
        let general: RawGeneralSettings = section(&tree, "general_settings")?;

        let routing_strategy = match router.routing_strategy.as_deref() {
            None => RoutingStrategy::SimpleShuffle,
            Some(name) => RoutingStrategy::parse(name).ok_or_else(|| {
                ConfigError::at(
                    "router_settings.routing_strategy",
                    format!("unknown routing strategy {name:?}"),
                )
            })?,
        };

        let mut deployments = Vec::new();
        let entries = match tree.get("model_list") {
            None | Some(Value::Null) => &[][..],
            Some(Value::Sequence(items)) => items.as_slice(),
            Some(_) => return Err(ConfigError::at("model_list", "expected a list")),
        };
        for (index, entry) in entries.iter().enumerate() {
            deployments.push(Deployment::from_yaml(index, entry, &env, cli)?);
        }
        for d in &deployments {
            if let crate::providers::ProviderKind::NotYet(name) = d.provider {
                not_implemented.push(format!(
                    "model_list[{}].litellm_params.model: the {name} provider (its requests fail with a 400)",
                    d.index
                ));
            }
        }
        let serve_any_model = deployments.is_empty() && cli.model.is_some();
        if let Some(model) = &cli.model {
            let source = DeploymentSource::Cli {
                model: model.clone(),
                alias: cli.alias.clone(),
                api_base: cli.api_base.clone(),
                api_version: cli.api_version.clone(),
            };
            deployments.push(Deployment::from_cli(deployments.len(), source, &env, cli)?);
        }

        let secs = |path: &str, v: f64| -> Result<Duration, ConfigError> {
            Duration::try_from_secs_f64(v)
                .map_err(|_| ConfigError::at(path, "expected a non-negative number of seconds"))
        };
        let request_timeout = match (cli.request_timeout, router.timeout, litellm.request_timeout) {
            (Some(v), _, _) => secs("--request_timeout", v)?,
            (None, Some(v), _) => secs("router_settings.timeout", v)?,
            (None, None, Some(v)) => secs("litellm_settings.request_timeout", v)?,
            (None, None, None) => Duration::from_secs(600),
        };
        let stream_timeout = router
            .stream_timeout
            .map(|v| secs("router_settings.stream_timeout", v))
            .transpose()?;
        let cooldown_time = match (router.cooldown_time, litellm.cooldown_time) {
            (Some(v), _) => secs("router_settings.cooldown_time", v)?,
            (None, Some(v)) => secs("litellm_settings.cooldown_time", v)?,
            (None, None) => CooldownPolicy::default().cooldown_time,
        };
        let cooldown = CooldownPolicy {
            allowed_fails: router
                .allowed_fails
                .or(litellm.allowed_fails)
                .unwrap_or(CooldownPolicy::default().allowed_fails),
            per_class: allowed_fails_policy(
                tree.get("router_settings")
                    .and_then(|r| r.get("allowed_fails_policy")),
            )?,
            cooldown_time,
            disabled: router.disable_cooldowns.unwrap_or(false),
        };
        let args = router.routing_strategy_args.unwrap_or_default();
        let routing = Rules {
            strategy: routing_strategy,
            pre_call_checks: router.enable_pre_call_checks.unwrap_or(false),
            latency_buffer: args.lowest_latency_buffer.unwrap_or(0.0).max(0.0),
        };
        let latency_window = LatencyWindow {
            ttl: match args.ttl {
                Some(v) => secs("router_settings.routing_strategy_args.ttl", v)?,
                None => LatencyWindow::default().ttl,
            },
            max_samples: args
                .max_latency_list_size
                .map_or(LatencyWindow::default().max_samples, |n| n.max(1) as usize),
        };
        let retry_after = match router.retry_after {
            Some(v) => secs("router_settings.retry_after", v)?,
            None => Duration::ZERO,
        };
        let max_request_size = match general.max_request_size_mb {
            None => 32 * 1024 * 1024,
            Some(mb) if mb > 0.0 => (mb * 1024.0 * 1024.0) as usize,
            Some(_) => {
                return Err(ConfigError::at(
                    "general_settings.max_request_size_mb",
                    "expected a positive number",
                ))
            }
        };
        let master_key = general
            .master_key
            .or_else(|| env.get("LITELLM_MASTER_KEY"))
            .filter(|k| !k.is_empty())
            .map(Secret::new);
        let security = super::security::security_settings(&tree, &env)?;
        let client = super::ClientTimeouts::from_tree(&tree, &env, cli.keepalive_timeout)?;
        let log_messages = !litellm.turn_off_message_logging.unwrap_or(false);
        let (callbacks, callbacks_not_done) =
            super::callbacks::callback_settings(&tree, &env, log_messages)?;
        not_implemented.extend(callbacks_not_done);
        let database = match general
            .database_url
            .clone()
            .or_else(|| env.get("DATABASE_URL"))
        {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                crate::db::DbTarget::Postgres(url)
            }
            Some(url) if url.starts_with("sqlite:") || url.starts_with("file:") => {
                let path = url
                    .trim_start_matches("sqlite://")
                    .trim_start_matches("sqlite:")
                    .to_owned();
                crate::db::DbTarget::Sqlite(if path.is_empty() {
                    "llmgate.db".into()
                } else {
                    path
                })
            }
            Some(_) => {
                return Err(ConfigError::at(
                    "general_settings.database_url",
                    "expected a postgres:// or sqlite: URL",
                ))
            }
            None => crate::db::DbTarget::Sqlite(
                env.get("LLMGATE_SQLITE_PATH")
                    .unwrap_or_else(|| "llmgate.db".into()),
            ),
        };
        let positive = |path: &str, v: Option<f64>, default: u64| match v {
            None => Ok(Duration::from_secs(default)),
            Some(v) if v > 0.0 => secs(path, v),
            Some(_) => Err(ConfigError::at(
                path,
                "expected a positive number of seconds",
            )),
        };
        let health = HealthSettings {
            background: general.background_health_checks.unwrap_or(false),
            interval: positive(
                "general_settings.health_check_interval",
                general.health_check_interval,
                300,
            )?,
            timeout: positive(
                "general_settings.health_check_timeout",
                general.health_check_timeout,
                60,
            )?,
        };
        let store_model_in_db = match general.store_model_in_db {
            Some(on) => on,
            None => match env.get("STORE_MODEL_IN_DB") {
                None => false,
                Some(v) => super::truthy(&v).ok_or_else(|| {
                    ConfigError::at("STORE_MODEL_IN_DB", "expected True or False")
                })?,
            },
        };
        let model_sync_interval = positive(
            "general_settings.model_sync_interval",
            general.model_sync_interval,
            5,
        )?;
        let spend_write_every = match general.proxy_batch_write_at {
            None => Duration::from_secs(10),
            Some(v) if v > 0.0 => secs("general_settings.proxy_batch_write_at", v)?,
            Some(_) => {
                return Err(ConfigError::at(
                    "general_settings.proxy_batch_write_at",
                    "expected a positive number of seconds",
                ))
            }
        };
        let max_budget = match (general.max_budget, litellm.max_budget) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let budget_duration = match (&general.budget_duration, &litellm.budget_duration) {
            (Some(d), _) => Some(("general_settings.budget_duration", d)),
            (None, Some(d)) => Some(("litellm_settings.budget_duration", d)),
            (None, None) => None,
        }
        .map(|(path, d)| {
            crate::keys::KeyDuration::parse(d).ok_or_else(|| {
                ConfigError::at(
                    path,
                    format!("invalid duration {d:?} (use 30s, 30m, 30h, 30d or 1mo)"),
                )
            })
        })
        .transpose()?;
        let default_key_params = litellm.default_key_generate_params.unwrap_or_default();
        let fallbacks = fallback_policy(&tree)?;
        let retry_policy = retry_policy(
            tree.get("router_settings")
                .and_then(|r| r.get("retry_policy")),
        )?;
        let model_group_alias = group_aliases(
            tree.get("router_settings")
                .and_then(|r| r.get("model_group_alias")),
        )?;
        if let Some(d) = default_key_params.get("duration").and_then(|d| d.as_str()) {
            if crate::keys::KeyDuration::parse(d).is_none() {
                return Err(ConfigError::at(
                    "litellm_settings.default_key_generate_params.duration",
                    format!("invalid duration {d:?} (use 30s, 30m, 30h, 30d or 1mo)"),
                ));
            }
        }
        Ok(Self {
            deployments,
            master_key,
            drop_params: cli.drop_params || litellm.drop_params.unwrap_or(false),
            add_function_to_prompt: cli.add_function_to_prompt
                || litellm.add_function_to_prompt.unwrap_or(false),
            num_retries: router.num_retries.or(litellm.num_retries).unwrap_or(2),
            request_timeout,
            stream_timeout,
            cooldown,
            routing,
            latency_window,
            retry_after,
            max_request_size,
            key_header_name: general
                .litellm_key_header_name
                .map(|h| h.to_ascii_lowercase()),
            always_include_stream_usage: general.always_include_stream_usage.unwrap_or(false),
            verbose: litellm.set_verbose.unwrap_or(false),
            serve_any_model,
            database,
            database_pool_size: general.database_connection_pool_limit.unwrap_or(10).max(1),
            spend_write_every,
            disable_spend_logs: general.disable_spend_logs.unwrap_or(false),
            spend_journal: SpendJournal::parse(
                general
                    .spend_journal_path
                    .or_else(|| env.get("LLMGATE_SPEND_JOURNAL")),
            ),
            health,
            max_budget,
            max_end_user_budget: litellm.max_end_user_budget,
            budget_duration,
            default_key_params,
            fallbacks,
            retry_policy,
            model_group_alias,
            not_implemented,
            unknown,
            redis,
            cache,
            callbacks,
            security,
            client,
            store_model_in_db,
            model_sync_interval,
            cli: cli.clone(),
            env,
        })
    }

    /// The one-time startup warning naming what the config asks for that is not done yet.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.not_implemented.is_empty() {
            out.push(format!(
                "these settings are not implemented yet and have no effect: {}",
                self.not_implemented.join(", ")
            ));
        }
        if !self.unknown.is_empty() {
            out.push(format!(
                "these config keys are not LiteLLM settings and are ignored: {}",
                self.unknown.join(", ")
            ));
        }
        out.extend(self.callbacks.warnings.iter().cloned());
        out.extend(self.security.warnings.iter().cloned());
        out
    }
}

pub(super) fn section<T: Default + serde::de::DeserializeOwned>(
    tree: &Value,
    name: &str,
) -> Result<T, ConfigError> {
    match tree.get(name) {
        None | Some(Value::Null) => Ok(T::default()),
        Some(v @ Value::Mapping(_)) => serde_path_to_error::deserialize(v.clone())
            .map_err(|e| ConfigError::from_serde(e, name)),
        Some(_) => Err(ConfigError::at(name, "expected a mapping")),
    }
}

/// `[{"group": ["a", "b"]}, ...]` (or a mapping) as group to fallbacks.
fn fallback_map(value: &Value, path: &str) -> Result<HashMap<String, Vec<String>>, ConfigError> {
    let mut out = HashMap::new();
    let mut add = |k: &Value, v: &Value, at: String| -> Result<(), ConfigError> {
        let group = k
            .as_str()
            .ok_or_else(|| ConfigError::at(&at, "expected a model group name"))?;
        let list = match v {
            Value::String(s) => vec![s.clone()],
            Value::Sequence(items) => items
                .iter()
                .map(|i| i.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| ConfigError::at(&at, "expected a list of model names"))?,
            _ => return Err(ConfigError::at(&at, "expected a list of model names")),
        };
        out.insert(group.to_owned(), list);
        Ok(())
    };
    match value {
        Value::Null => {}
        Value::Sequence(items) => {
            for (i, item) in items.iter().enumerate() {
                let map = item.as_mapping().ok_or_else(|| {
                    ConfigError::at(format!("{path}[{i}]"), "expected {group: [fallbacks]}")
                })?;
                for (k, v) in map {
                    add(k, v, format!("{path}[{i}]"))?;
                }
            }
        }
        Value::Mapping(map) => {
            for (k, v) in map {
                add(k, v, path.to_owned())?;
            }
        }
        _ => {
            return Err(ConfigError::at(
                path,
                "expected a list of {group: [fallbacks]}",
            ))
        }
    }
    Ok(out)
}

/// The fallback settings; `router_settings` overrides `litellm_settings`.
fn fallback_policy(tree: &Value) -> Result<FallbackPolicy, ConfigError> {
    let find = |key: &str| {
        for section in ["router_settings", "litellm_settings"] {
            if let Some(v) = tree.get(section).and_then(|s| s.get(key)) {
                return Some((v, format!("{section}.{key}")));
            }
        }
        None
    };
    let map = |key: &str| match find(key) {
        Some((v, path)) => fallback_map(v, &path),
        None => Ok(HashMap::new()),
    };
    let default = match find("default_fallbacks") {
        None | Some((Value::Null, _)) => Vec::new(),
        Some((Value::Sequence(items), path)) => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| ConfigError::at(path, "expected a list of model names"))?,
        Some((_, path)) => return Err(ConfigError::at(path, "expected a list of model names")),
    };
    let max = match find("max_fallbacks") {
        None | Some((Value::Null, _)) => 5,
        Some((v, path)) => match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
        .ok_or_else(|| ConfigError::at(path, "expected a whole number"))?
            as usize,
    };
    Ok(FallbackPolicy {
        general: map("fallbacks")?,
        context_window: map("context_window_fallbacks")?,
        content_policy: map("content_policy_fallbacks")?,
        default,
        max,
    })
}

/// `model_group_alias`: a name to a group, to `{model, hidden}`, or to a list of groups.
fn group_aliases(value: Option<&Value>) -> Result<Vec<(String, GroupAlias)>, ConfigError> {
    let path = "router_settings.model_group_alias";
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let map = value
        .as_mapping()
        .ok_or_else(|| ConfigError::at(path, "expected a mapping of alias to model group"))?;
    let mut out = Vec::new();
    for (k, v) in map {
        let name = k
            .as_str()
            .ok_or_else(|| ConfigError::at(path, "alias names must be strings"))?;
        let at = format!("{path}.{name}");
        let alias = match v {
            Value::String(group) => GroupAlias::To {
                group: group.clone(),
                hidden: false,
            },
            Value::Mapping(m) => GroupAlias::To {
                group: m
                    .get("model")
                    .and_then(Value::as_str)
                    .ok_or_else(|| ConfigError::at(&at, "expected a `model`"))?
                    .to_owned(),
                hidden: m.get("hidden").and_then(Value::as_bool).unwrap_or(false),
            },
            Value::Sequence(items) => GroupAlias::Spread(
                items
                    .iter()
                    .map(|i| i.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| ConfigError::at(&at, "expected a list of model groups"))?,
            ),
            _ => {
                return Err(ConfigError::at(
                    &at,
                    "expected a model group, {model, hidden} or a list",
                ))
            }
        };
        out.push((name.to_owned(), alias));
    }
    Ok(out)
}

/// `retry_policy`: `{RateLimitErrorRetries: 3, ...}`.
/// `router_settings.allowed_fails_policy`: failures tolerated per error class.
fn allowed_fails_policy(
    value: Option<&Value>,
) -> Result<[Option<u32>; ErrorClass::COUNT], ConfigError> {
    let path = "router_settings.allowed_fails_policy";
    let mut per_class = [None; ErrorClass::COUNT];
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(per_class);
    };
    let map = value.as_mapping().ok_or_else(|| {
        ConfigError::at(
            path,
            "expected a mapping such as {RateLimitErrorAllowedFails: 10}",
        )
    })?;
    for (k, v) in map {
        let key = k.as_str().unwrap_or_default();
        let at = format!("{path}.{key}");
        let class = ErrorClass::from_allowed_fails_key(key)
            .ok_or_else(|| ConfigError::at(&at, "unknown error class"))?;
        per_class[class as usize] = Some(whole_number(v, &at)?);
    }
    Ok(per_class)
}

/// A count written as a number or a numeric string.
fn whole_number(v: &Value, at: &str) -> Result<u32, ConfigError> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .and_then(|n| u32::try_from(n).ok())
    .ok_or_else(|| ConfigError::at(at, "expected a whole number"))
}

fn retry_policy(value: Option<&Value>) -> Result<RetryPolicy, ConfigError> {
    let path = "router_settings.retry_policy";
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(RetryPolicy::default());
    };
    let map = value.as_mapping().ok_or_else(|| {
        ConfigError::at(
            path,
            "expected a mapping such as {RateLimitErrorRetries: 3}",
        )
    })?;
    let mut policy = RetryPolicy::default();
    for (k, v) in map {
        let key = k.as_str().unwrap_or_default();
        let at = format!("{path}.{key}");
        let class = ErrorClass::from_policy_key(key)
            .ok_or_else(|| ConfigError::at(&at, "unknown error class"))?;
        policy.per_class.insert(class, whole_number(v, &at)?);
    }
    Ok(policy)
}
