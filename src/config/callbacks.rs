//! `litellm_settings.success_callback` / `failure_callback`: which logging callbacks run, and
//! where they send (Langfuse's keys and host, the generic webhook), read from the environment.

use std::time::Duration;

use actix_web::http::header::{HeaderName, HeaderValue};
use serde_yaml::Value;

use super::{ConfigError, Env, Secret};

/// Where Langfuse is when `LANGFUSE_HOST` does not say.
pub const DEFAULT_LANGFUSE_HOST: &str = "https://cloud.langfuse.com";

/// Events waiting to be sent, at most (past it, new events are dropped and counted).
pub const DEFAULT_QUEUE_CAPACITY: usize = 10_000;

/// Events sent in one request at most.
pub const DEFAULT_BATCH_SIZE: usize = 100;

/// How long an event waits for others before its batch is sent.
pub const DEFAULT_FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Where one callback sends its events.
#[derive(Debug, Clone, PartialEq)]
pub enum SinkTarget {
    /// Langfuse's public ingestion API.
    Langfuse {
        /// `LANGFUSE_HOST`, with a scheme and no trailing slash.
        host: String,
        /// `LANGFUSE_PUBLIC_KEY`.
        public_key: String,
        /// `LANGFUSE_SECRET_KEY`.
        secret_key: Secret,
    },
    /// Any HTTP endpoint taking a JSON array of LiteLLM's standard logging payloads.
    GenericApi {
        /// `GENERIC_LOGGER_ENDPOINT`.
        endpoint: String,
        /// `GENERIC_LOGGER_HEADERS` (`k=v,k2=v2`); values may hold tokens, so never shown.
        headers: Vec<(String, Secret)>,
    },
}

impl SinkTarget {
    /// The callback's name in the config.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Langfuse { .. } => "langfuse",
            Self::GenericApi { .. } => "generic_api",
        }
    }
}

/// One configured callback and the events it takes.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkSettings {
    /// Where it sends.
    pub target: SinkTarget,
    /// Named in `success_callback`.
    pub on_success: bool,
    /// Named in `failure_callback`.
    pub on_failure: bool,
}

/// The logging callbacks.
#[derive(Debug, Clone, PartialEq)]
pub struct CallbackSettings {
    /// The usable callbacks (none: nothing is captured or sent).
    pub sinks: Vec<SinkSettings>,
    /// Whether prompts and replies are sent (`turn_off_message_logging: false`).
    pub log_messages: bool,
    /// Events waiting at most, across every callback.
    pub queue_capacity: usize,
    /// Events per request at most.
    pub batch_size: usize,
    /// How long an event waits for others.
    pub flush_every: Duration,
    /// Callbacks named but unusable (missing keys or endpoint), for the startup warnings.
    pub warnings: Vec<String>,
}

impl Default for CallbackSettings {
    fn default() -> Self {
        Self {
            sinks: Vec::new(),
            log_messages: true,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            batch_size: DEFAULT_BATCH_SIZE,
            flush_every: DEFAULT_FLUSH_EVERY,
            warnings: Vec::new(),
        }
    }
}

impl CallbackSettings {
    /// Whether any callback will send.
    pub fn is_on(&self) -> bool {
        !self.sinks.is_empty()
    }
}

const LANGFUSE: &str = "langfuse";
const GENERIC_API: &str = "generic_api";

/// Reads both callback lists. Names llmgate has no callback for come back second, one entry
/// each, for the "not implemented yet" warning.
pub fn callback_settings(
    tree: &Value,
    env: &Env,
    log_messages: bool,
) -> Result<(CallbackSettings, Vec<String>), ConfigError> {
    let litellm = tree.get("litellm_settings");
    let on_success = names(litellm, "success_callback")?;
    let on_failure = names(litellm, "failure_callback")?;
    let mut settings = CallbackSettings {
        log_messages,
        ..CallbackSettings::default()
    };
    let mut not_implemented = Vec::new();
    for (path, name) in on_success.iter().chain(&on_failure) {
        if name != LANGFUSE && name != GENERIC_API {
            not_implemented.push(format!("{path}: the {name} callback"));
        }
    }
    let named = |wanted: &str| {
        let s = on_success.iter().any(|(_, n)| n == wanted);
        let f = on_failure.iter().any(|(_, n)| n == wanted);
        let path = on_success
            .iter()
            .chain(&on_failure)
            .find(|(_, n)| n == wanted)
            .map(|(p, _)| p.clone());
        path.map(|p| (p, s, f))
    };
    if let Some((path, on_success, on_failure)) = named(LANGFUSE) {
        match langfuse(env) {
            Ok(target) => settings.sinks.push(SinkSettings {
                target,
                on_success,
                on_failure,
            }),
            Err(why) => settings
                .warnings
                .push(format!("{path}: the langfuse callback is off: {why}")),
        }
    }
    if let Some((path, on_success, on_failure)) = named(GENERIC_API) {
        match generic_api(env) {
            Ok((target, dropped)) => {
                settings.warnings.extend(dropped.into_iter().map(|h| {
                    format!("GENERIC_LOGGER_HEADERS: {h:?} is not a valid header and is not sent")
                }));
                settings.sinks.push(SinkSettings {
                    target,
                    on_success,
                    on_failure,
                });
            }
            Err(why) => settings
                .warnings
                .push(format!("{path}: the generic_api callback is off: {why}")),
        }
    }
    Ok((settings, not_implemented))
}

/// A callback list as `(yaml path, name)` pairs; a single name is taken as a list of one.
fn names(litellm: Option<&Value>, key: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let path = format!("litellm_settings.{key}");
    match litellm.and_then(|l| l.get(key)) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![(path, s.trim().to_owned())]),
        Some(Value::Sequence(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let at = format!("{path}[{i}]");
                match item.as_str() {
                    Some(name) => Ok((at, name.trim().to_owned())),
                    None => Err(ConfigError::at(at, "expected a callback name")),
                }
            })
            .collect(),
        Some(_) => Err(ConfigError::at(path, "expected a list of callback names")),
    }
}

fn langfuse(env: &Env) -> Result<SinkTarget, String> {
    let public_key = env.get("LANGFUSE_PUBLIC_KEY");
    let secret_key = env.get("LANGFUSE_SECRET_KEY");
    let (Some(public_key), Some(secret_key)) = (public_key, secret_key) else {
        return Err("LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY must both be set".into());
    };
    Ok(SinkTarget::Langfuse {
        host: langfuse_host(env.get("LANGFUSE_HOST").as_deref()),
        public_key,
        secret_key: Secret::new(secret_key),
    })
}

/// `LANGFUSE_HOST` as a base URL: LiteLLM prefixes `http://` when it names no scheme.
pub fn langfuse_host(given: Option<&str>) -> String {
    let host = given
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .unwrap_or(DEFAULT_LANGFUSE_HOST);
    let host = if host.starts_with("http://") || host.starts_with("https://") {
        host.to_owned()
    } else {
        format!("http://{host}")
    };
    host.trim_end_matches('/').to_owned()
}

/// The webhook, and the header items that were dropped as invalid.
fn generic_api(env: &Env) -> Result<(SinkTarget, Vec<String>), String> {
    let Some(endpoint) = env.get("GENERIC_LOGGER_ENDPOINT") else {
        return Err("GENERIC_LOGGER_ENDPOINT is not set".into());
    };
    if !endpoint.starts_with("http://") && !endpoint.starts_with("https://") {
        return Err("GENERIC_LOGGER_ENDPOINT must be an http:// or https:// URL".into());
    }
    let (headers, dropped) = parse_headers(env.get("GENERIC_LOGGER_HEADERS").as_deref());
    Ok((SinkTarget::GenericApi { endpoint, headers }, dropped))
}

/// `k1=v1,k2=v2` as headers, as LiteLLM reads `GENERIC_LOGGER_HEADERS`: items without `=` are
/// skipped; names or values no HTTP request could carry come back second (by name only).
pub fn parse_headers(text: Option<&str>) -> (Vec<(String, Secret)>, Vec<String>) {
    let mut headers = Vec::new();
    let mut dropped = Vec::new();
    for item in text.unwrap_or_default().split(',') {
        let Some((name, value)) = item.split_once('=') else {
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        if HeaderName::try_from(name).is_ok() && HeaderValue::from_str(value).is_ok() {
            headers.push((name.to_owned(), Secret::new(value)));
        } else {
            dropped.push(name.to_owned());
        }
    }
    (headers, dropped)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(vars: &[(&str, &str)]) -> Env {
        Env::with_overlay(
            vars.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<HashMap<_, _>>(),
        )
    }

    fn tree(yaml: &str) -> Value {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn langfuse_on_both_lists_is_one_sink_taking_both_outcomes() {
        let env = env(&[
            ("LANGFUSE_PUBLIC_KEY", "pk-lf-1"),
            ("LANGFUSE_SECRET_KEY", "sk-lf-1"),
            ("LANGFUSE_HOST", "langfuse:3000/"),
        ]);
        let t = tree("litellm_settings:\n  success_callback: [langfuse]\n  failure_callback: [langfuse, sentry]\n");
        let (settings, not_yet) = callback_settings(&t, &env, true).unwrap();
        assert_eq!(settings.sinks.len(), 1);
        let sink = &settings.sinks[0];
        assert!(sink.on_success && sink.on_failure);
        match &sink.target {
            SinkTarget::Langfuse {
                host, public_key, ..
            } => {
                assert_eq!(host, "http://langfuse:3000");
                assert_eq!(public_key, "pk-lf-1");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            not_yet,
            ["litellm_settings.failure_callback[1]: the sentry callback"]
        );
    }

    #[test]
    fn langfuse_without_keys_is_a_warning_not_an_error() {
        let t = tree("litellm_settings:\n  success_callback: langfuse\n");
        let (settings, _) = callback_settings(&t, &env(&[]), true).unwrap();
        assert!(!settings.is_on());
        assert_eq!(settings.warnings.len(), 1);
        assert!(settings.warnings[0].contains("LANGFUSE_PUBLIC_KEY"));
    }

    #[test]
    fn a_callback_list_of_the_wrong_type_names_its_path() {
        let t = tree("litellm_settings:\n  success_callback: [1]\n");
        let err = callback_settings(&t, &env(&[]), true).unwrap_err();
        assert_eq!(
            err.to_string(),
            "litellm_settings.success_callback[0]: expected a callback name"
        );
    }

    #[test]
    fn generic_headers_are_read_as_litellm_reads_them() {
        let (headers, dropped) = parse_headers(Some(
            "x-team = llm,authorization=Bearer a=b,junk,bad name=1",
        ));
        let shown: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.expose()))
            .collect();
        assert_eq!(shown, [("x-team", "llm"), ("authorization", "Bearer a=b")]);
        assert_eq!(dropped, ["bad name"]);
    }

    #[test]
    fn the_default_langfuse_host_is_langfuse_cloud() {
        assert_eq!(langfuse_host(None), "https://cloud.langfuse.com");
        assert_eq!(
            langfuse_host(Some("https://lf.example/")),
            "https://lf.example"
        );
    }
}
