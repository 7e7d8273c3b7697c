//! How long the gateway waits on its clients (`general_settings`): for a request's head, for
//! its body, on an idle kept-alive connection, and for a refused client to hang up.

use std::time::Duration;

use serde::Deserialize;
use serde_yaml::Value;

use super::{de, ConfigError, Env};

#[derive(Debug, Default, Deserialize)]
struct RawClientTimeouts {
    #[serde(default, deserialize_with = "de::opt_f64")]
    client_header_timeout: Option<f64>,
    #[serde(default, deserialize_with = "de::opt_f64")]
    client_body_timeout: Option<f64>,
    #[serde(default, deserialize_with = "de::opt_f64")]
    keepalive_timeout: Option<f64>,
    #[serde(default, deserialize_with = "de::opt_f64")]
    client_disconnect_timeout: Option<f64>,
}

/// The bounds on a client's pace; every one is finite, so a slow or silent client cannot hold a
/// connection (or a worker's memory) for long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientTimeouts {
    /// `client_header_timeout`: a new connection's first request head must arrive whole within
    /// this, or it is answered 408 and closed (default 10 s).
    pub header: Duration,
    /// `client_body_timeout`: a model request's whole body must arrive within this once its
    /// head is in, or it is answered 408 and closed (default 60 s).
    pub body: Duration,
    /// `keepalive_timeout` (LiteLLM's `--keepalive_timeout` / `KEEPALIVE_TIMEOUT`): an idle
    /// kept-alive connection is closed after this (default 5 s, as uvicorn's).
    pub keep_alive: Duration,
    /// `client_disconnect_timeout`: after a refusal that closes the connection, how long the
    /// client is given to read it and hang up before the socket is dropped (default 2 s).
    pub disconnect: Duration,
}

impl Default for ClientTimeouts {
    fn default() -> Self {
        Self {
            header: Duration::from_secs(10),
            body: Duration::from_secs(60),
            keep_alive: Duration::from_secs(5),
            disconnect: Duration::from_secs(2),
        }
    }
}

impl ClientTimeouts {
    /// Reads the four settings of `general_settings`; the keep-alive may also come from
    /// LiteLLM's `--keepalive_timeout` flag (`cli_keep_alive`, which wins) or its
    /// `KEEPALIVE_TIMEOUT` variable (which the config key overrides).
    pub(super) fn from_tree(
        tree: &Value,
        env: &Env,
        cli_keep_alive: Option<f64>,
    ) -> Result<Self, ConfigError> {
        let raw: RawClientTimeouts = super::settings::section(tree, "general_settings")?;
        let defaults = Self::default();
        let keep_alive = match (
            cli_keep_alive,
            raw.keepalive_timeout,
            env.get("KEEPALIVE_TIMEOUT"),
        ) {
            (Some(v), _, _) => Some(("--keepalive_timeout", v)),
            (None, Some(v), _) => Some(("general_settings.keepalive_timeout", v)),
            (None, None, Some(text)) => Some((
                "KEEPALIVE_TIMEOUT",
                text.trim().parse::<f64>().map_err(|_| {
                    ConfigError::at("KEEPALIVE_TIMEOUT", "expected a number of seconds")
                })?,
            )),
            (None, None, None) => None,
        };
        Ok(Self {
            header: positive(
                "general_settings.client_header_timeout",
                raw.client_header_timeout,
                defaults.header,
            )?,
            body: positive(
                "general_settings.client_body_timeout",
                raw.client_body_timeout,
                defaults.body,
            )?,
            keep_alive: match keep_alive {
                Some((path, v)) => positive(path, Some(v), defaults.keep_alive)?,
                None => defaults.keep_alive,
            },
            disconnect: positive(
                "general_settings.client_disconnect_timeout",
                raw.client_disconnect_timeout,
                defaults.disconnect,
            )?,
        })
    }
}

/// A positive number of seconds; zero would switch actix's bound off, so it is refused.
fn positive(path: &str, value: Option<f64>, default: Duration) -> Result<Duration, ConfigError> {
    match value {
        None => Ok(default),
        Some(v) if v > 0.0 => Duration::try_from_secs_f64(v)
            .map_err(|_| ConfigError::at(path, "expected a positive number of seconds")),
        Some(_) => Err(ConfigError::at(
            path,
            "expected a positive number of seconds",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(yaml: &str) -> Result<ClientTimeouts, ConfigError> {
        let tree: Value = serde_yaml::from_str(yaml).unwrap();
        ClientTimeouts::from_tree(&tree, &Env::default(), None)
    }

    #[test]
    fn every_bound_has_a_finite_default() {
        assert_eq!(read("{}").unwrap(), ClientTimeouts::default());
    }

    #[test]
    fn settings_are_read_in_seconds_even_as_strings() {
        let t = read(
            "general_settings: {client_header_timeout: 1.5, client_body_timeout: '7', keepalive_timeout: 30, client_disconnect_timeout: 0.5}",
        )
        .unwrap();
        assert_eq!(t.header, Duration::from_millis(1500));
        assert_eq!(t.body, Duration::from_secs(7));
        assert_eq!(t.keep_alive, Duration::from_secs(30));
        assert_eq!(t.disconnect, Duration::from_millis(500));
    }

    #[test]
    fn zero_or_negative_bounds_are_refused_with_their_path() {
        let err = read("general_settings: {client_body_timeout: 0}").unwrap_err();
        assert!(
            err.to_string()
                .contains("general_settings.client_body_timeout"),
            "{err}"
        );
        assert!(read("general_settings: {keepalive_timeout: -1}").is_err());
    }

    #[test]
    fn the_keepalive_flag_wins_over_the_config_key_which_wins_over_the_variable() {
        let tree: Value =
            serde_yaml::from_str("general_settings: {keepalive_timeout: 30}").unwrap();
        let env = Env::with_overlay([("KEEPALIVE_TIMEOUT".to_owned(), "12".to_owned())].into());
        let flag = ClientTimeouts::from_tree(&tree, &env, Some(7.0)).unwrap();
        assert_eq!(flag.keep_alive, Duration::from_secs(7));
        let key = ClientTimeouts::from_tree(&tree, &env, None).unwrap();
        assert_eq!(key.keep_alive, Duration::from_secs(30));
        let empty: Value = serde_yaml::from_str("{}").unwrap();
        let var = ClientTimeouts::from_tree(&empty, &env, None).unwrap();
        assert_eq!(var.keep_alive, Duration::from_secs(12));
        let err = ClientTimeouts::from_tree(&empty, &env, Some(0.0)).unwrap_err();
        assert!(err.to_string().contains("--keepalive_timeout"), "{err}");
    }
}
