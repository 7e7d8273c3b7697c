//! What instances share: the Redis server (`router_settings.redis_*`, else `REDIS_*` from the
//! environment) and the response cache (`litellm_settings.cache` and `cache_params`).

use std::time::Duration;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::Deserialize;
use serde_yaml::Value;

use super::{de, ConfigError, Env, Secret};

/// A Redis server to connect to.
#[derive(Debug, Clone, PartialEq)]
pub struct RedisTarget {
    /// `redis://[:password@]host:port[/db]`: holds the password, so never shown.
    pub url: Secret,
    /// `host:port`, safe to log.
    pub shown: String,
    /// Prefix of every key llmgate writes (`LLMGATE_REDIS_NAMESPACE`, default `llmgate`).
    pub namespace: String,
}

/// Where cached responses live.
#[derive(Debug, Clone, PartialEq)]
pub enum CacheStore {
    /// In this process's memory, bounded.
    Local,
    /// In Redis, shared by every instance.
    Redis(RedisTarget),
}

/// `litellm_settings.cache: true` with its `cache_params`.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheSettings {
    /// The store.
    pub store: CacheStore,
    /// How long an entry lives when the request does not say (`ttl`; default 10 minutes).
    pub ttl: Duration,
    /// A prefix for the cache keys (`namespace`).
    pub namespace: Option<String>,
    /// Which calls are cached (`supported_call_types`, LiteLLM's names); empty means all.
    pub call_types: Vec<String>,
    /// `mode: default_off`: only requests that ask (`caching: true`) use the cache.
    pub default_off: bool,
    /// Entries the local store keeps at most (`max_size_in_memory`, default 10,000).
    pub max_entries: usize,
}

/// How long a cached response lives when nothing says otherwise.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(600);

#[derive(Debug, Default, Deserialize)]
struct RawRedis {
    #[serde(default, deserialize_with = "de::opt_string")]
    redis_url: Option<String>,
    #[serde(default, deserialize_with = "de::opt_string")]
    redis_host: Option<String>,
    #[serde(default, deserialize_with = "de::opt_string")]
    redis_port: Option<String>,
    #[serde(default, deserialize_with = "de::opt_string")]
    redis_password: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct RawCacheParams {
    #[serde(default, rename = "type", deserialize_with = "de::opt_string")]
    kind: Option<String>,
    #[serde(default, deserialize_with = "de::opt_string")]
    host: Option<String>,
    #[serde(default, deserialize_with = "de::opt_string")]
    port: Option<String>,
    #[serde(default, deserialize_with = "de::opt_string")]
    password: Option<String>,
    #[serde(default, deserialize_with = "de::opt_string")]
    url: Option<String>,
    #[serde(default, deserialize_with = "de::opt_f64")]
    ttl: Option<f64>,
    #[serde(default, deserialize_with = "de::opt_string")]
    namespace: Option<String>,
    #[serde(default)]
    supported_call_types: Option<Vec<String>>,
    #[serde(default, deserialize_with = "de::opt_string")]
    mode: Option<String>,
    #[serde(default, deserialize_with = "de::opt_u64")]
    max_size_in_memory: Option<u64>,
}

/// The Redis server of `router_settings`, else of the environment; `None` runs on local state.
pub fn redis_target(tree: &Value, env: &Env) -> Result<Option<RedisTarget>, ConfigError> {
    let raw: RawRedis = match tree.get("router_settings") {
        Some(v @ Value::Mapping(_)) => serde_path_to_error::deserialize(v.clone())
            .map_err(|e| ConfigError::from_serde(e, "router_settings"))?,
        _ => RawRedis::default(),
    };
    let given = Parts {
        url: raw.redis_url,
        host: raw.redis_host,
        port: raw.redis_port,
        password: raw.redis_password,
    };
    given.or_env(env).target(env, "router_settings.redis_port")
}

/// The response cache, if `litellm_settings.cache` turns it on. A Redis cache without its
/// own server uses `router`'s (the one of `router_settings` or the environment). A store
/// llmgate does not have (`s3`, `qdrant-semantic`, ...) is returned in the second place, for
/// the startup warning.
pub fn cache_settings(
    tree: &Value,
    env: &Env,
    router: Option<&RedisTarget>,
) -> Result<(Option<CacheSettings>, Option<String>), ConfigError> {
    let Some(litellm) = tree.get("litellm_settings") else {
        return Ok((None, None));
    };
    // Older configs write `cache: {type: redis}`; newer ones `cache: true` plus `cache_params`.
    let (on, inline) = match litellm.get("cache") {
        None | Some(Value::Null) => (false, None),
        Some(Value::Bool(b)) => (*b, None),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => (true, None),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => (false, None),
        Some(v @ Value::Mapping(_)) => (true, Some(v)),
        Some(_) => {
            return Err(ConfigError::at(
                "litellm_settings.cache",
                "expected true, false or a mapping",
            ))
        }
    };
    if !on {
        return Ok((None, None));
    }
    let params = inline.or_else(|| litellm.get("cache_params"));
    let raw: RawCacheParams = match params {
        None | Some(Value::Null) => RawCacheParams::default(),
        Some(v @ Value::Mapping(_)) => serde_path_to_error::deserialize(v.clone())
            .map_err(|e| ConfigError::from_serde(e, "litellm_settings.cache_params"))?,
        Some(_) => {
            return Err(ConfigError::at(
                "litellm_settings.cache_params",
                "expected a mapping",
            ))
        }
    };
    let store = match raw.kind.as_deref().unwrap_or("local") {
        "local" | "in-memory" | "memory" => CacheStore::Local,
        "redis" => {
            let given = Parts {
                url: raw.url,
                host: raw.host,
                port: raw.port,
                password: raw.password,
            };
            let own = given.target(env, "litellm_settings.cache_params.port")?;
            match own.or_else(|| router.cloned()) {
                Some(target) => CacheStore::Redis(target),
                None => {
                    return Err(ConfigError::at(
                        "litellm_settings.cache_params",
                        "type: redis needs host and port (or REDIS_HOST / REDIS_PORT, or REDIS_URL)",
                    ))
                }
            }
        }
        other => {
            return Ok((
                None,
                Some(format!(
                    "litellm_settings.cache_params.type: {other} (llmgate caches in local memory or redis; the cache is off)"
                )),
            ))
        }
    };
    let ttl = match raw.ttl {
        None => DEFAULT_CACHE_TTL,
        Some(s) => Duration::try_from_secs_f64(s)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                ConfigError::at(
                    "litellm_settings.cache_params.ttl",
                    "expected a positive number of seconds",
                )
            })?,
    };
    let default_off = match raw.mode.as_deref() {
        None | Some("default_on") => false,
        Some("default_off") => true,
        Some(other) => {
            return Err(ConfigError::at(
                "litellm_settings.cache_params.mode",
                format!("unknown mode {other:?} (default_on or default_off)"),
            ))
        }
    };
    let settings = CacheSettings {
        store,
        ttl,
        namespace: raw.namespace.filter(|n| !n.is_empty()),
        call_types: raw.supported_call_types.unwrap_or_default(),
        default_off,
        max_entries: raw
            .max_size_in_memory
            .map_or(10_000, |n| n.clamp(1, 10_000_000) as usize),
    };
    Ok((Some(settings), None))
}

/// The pieces a Redis server may be given in.
struct Parts {
    url: Option<String>,
    host: Option<String>,
    port: Option<String>,
    password: Option<String>,
}

impl Parts {
    /// What the section gave, else `REDIS_URL`, else `REDIS_HOST` / `REDIS_PORT` /
    /// `REDIS_PASSWORD`.
    fn or_env(self, env: &Env) -> Self {
        if self.url.is_some() || self.host.is_some() {
            return self;
        }
        Self {
            url: env.get("REDIS_URL").filter(|u| !u.is_empty()),
            host: env.get("REDIS_HOST").filter(|h| !h.is_empty()),
            port: env.get("REDIS_PORT").filter(|p| !p.is_empty()),
            password: env.get("REDIS_PASSWORD").filter(|p| !p.is_empty()),
        }
    }

    fn target(self, env: &Env, port_path: &str) -> Result<Option<RedisTarget>, ConfigError> {
        let namespace = env
            .get("LLMGATE_REDIS_NAMESPACE")
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "llmgate".into());
        if let Some(url) = self.url {
            let shown = shown_address(&url);
            return Ok(Some(RedisTarget {
                url: Secret::new(url),
                shown,
                namespace,
            }));
        }
        let Some(host) = self.host else {
            return Ok(None);
        };
        let port: u16 = match self.port {
            None => 6379,
            Some(p) => p
                .parse()
                .map_err(|_| ConfigError::at(port_path, format!("expected a port, got {p:?}")))?,
        };
        let auth = self
            .password
            .map(|p| format!(":{}@", utf8_percent_encode(&p, URL_UNRESERVED)))
            .unwrap_or_default();
        Ok(Some(RedisTarget {
            url: Secret::new(format!("redis://{auth}{host}:{port}")),
            shown: format!("{host}:{port}"),
            namespace,
        }))
    }
}

/// `host:port` of a Redis URL, without its credentials or database.
fn shown_address(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split(['/', '?']).next().unwrap_or_default().to_owned()
}

/// What stays as it is in a URL component: letters, digits and `-._~` (RFC 3986).
pub const URL_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Value {
        serde_yaml::from_str(text).unwrap()
    }

    fn env(vars: &[(&str, &str)]) -> Env {
        Env::with_overlay(
            vars.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn router_settings_name_the_server_before_the_environment() {
        let tree = yaml("router_settings: {redis_host: cache.internal, redis_port: 6380, redis_password: 'p@ss'}");
        let t = redis_target(&tree, &env(&[("REDIS_HOST", "other")]))
            .unwrap()
            .unwrap();
        assert_eq!(t.url.expose(), "redis://:p%40ss@cache.internal:6380");
        assert_eq!(t.shown, "cache.internal:6380");
        assert_eq!(t.namespace, "llmgate");
        let from_env = redis_target(
            &yaml("{}"),
            &env(&[("REDIS_URL", "redis://:secret@10.0.0.1:7000/2")]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(from_env.shown, "10.0.0.1:7000");
        assert!(redis_target(&yaml("{}"), &env(&[])).unwrap().is_none());
        assert!(redis_target(
            &yaml("router_settings: {redis_host: h, redis_port: nope}"),
            &env(&[])
        )
        .is_err());
    }

    #[test]
    fn the_cache_is_read_in_both_shapes() {
        let (c, _) = cache_settings(
            &yaml("litellm_settings: {cache: true, cache_params: {type: redis, host: h, port: 1, ttl: 5, namespace: ns, mode: default_off, supported_call_types: [acompletion]}}"),
            &env(&[]),
            None,
        )
        .unwrap();
        let c = c.unwrap();
        assert!(matches!(c.store, CacheStore::Redis(ref t) if t.shown == "h:1"));
        assert_eq!(c.ttl, Duration::from_secs(5));
        assert!(c.default_off);
        assert_eq!(c.namespace.as_deref(), Some("ns"));
        assert_eq!(c.call_types, ["acompletion"]);
        let (old, _) = cache_settings(
            &yaml("litellm_settings: {cache: {type: redis}}"),
            &env(&[]),
            Some(&RedisTarget {
                url: Secret::new("redis://r:6379"),
                shown: "r:6379".into(),
                namespace: "llmgate".into(),
            }),
        )
        .unwrap();
        assert!(matches!(old.unwrap().store, CacheStore::Redis(_)));
        let (local, _) =
            cache_settings(&yaml("litellm_settings: {cache: true}"), &env(&[]), None).unwrap();
        assert_eq!(local.unwrap().store, CacheStore::Local);
        let (off, _) =
            cache_settings(&yaml("litellm_settings: {cache: false}"), &env(&[]), None).unwrap();
        assert!(off.is_none());
        let (none, warning) = cache_settings(
            &yaml("litellm_settings: {cache: true, cache_params: {type: s3}}"),
            &env(&[]),
            None,
        )
        .unwrap();
        assert!(none.is_none() && warning.unwrap().contains("s3"));
        assert!(cache_settings(
            &yaml("litellm_settings: {cache: true, cache_params: {type: redis}}"),
            &env(&[]),
            None
        )
        .is_err());
    }
}
