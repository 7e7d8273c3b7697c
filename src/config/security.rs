//! The security settings of `general_settings` and `litellm_settings`: who may connect
//! (`allowed_ips`, `blocked_ips`, `use_x_forwarded_for`, `trusted_proxy_ranges`), which
//! browser origins may call (`cors_allow_*`), whether a weak master key may start the
//! proxy, and whether key changes are audited (`store_audit_logs`).

use serde_yaml::Value;

use super::{ConfigError, Env};
use crate::security::ip::{parse_net, IpFilter};

/// LiteLLM's setting (and variable) that lets a weak master key start the proxy anyway.
pub const PERMIT_WEAK_SETTING: &str = "dangerously_permit_weak_or_unset_master_key";
/// LiteLLM's environment variable for the same.
pub const PERMIT_WEAK_ENV: &str = "LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY";
/// llmgate's shorter spelling of the variable, the same as `--allow-weak-master-key`.
pub const ALLOW_WEAK_ENV: &str = "LLMGATE_ALLOW_WEAK_MASTER_KEY";

/// Which browser origins may call the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigins {
    /// Any origin (the default, as in LiteLLM).
    Any,
    /// Only these (`scheme://host[:port]`); empty means none but the gateway's own.
    Only(Vec<String>),
}

/// The CORS answer (LiteLLM's `cors_allow_origins`, `cors_allow_credentials`,
/// `cors_allow_methods`, `cors_allow_headers`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsSettings {
    /// Allowed origins.
    pub origins: CorsOrigins,
    /// Whether browsers may send credentials (cookies); never with any origin.
    pub credentials: bool,
    /// Allowed methods; `None` is any.
    pub methods: Option<Vec<String>>,
    /// Allowed request headers; `None` is any.
    pub headers: Option<Vec<String>>,
}

impl Default for CorsSettings {
    fn default() -> Self {
        Self {
            origins: CorsOrigins::Any,
            credentials: false,
            methods: None,
            headers: None,
        }
    }
}

/// Everything security-related the config sets.
#[derive(Debug, Clone, Default)]
pub struct SecuritySettings {
    /// The client address filter; `None` when neither `allowed_ips` nor `blocked_ips` is set.
    pub ip_filter: Option<IpFilter>,
    /// CORS.
    pub cors: CorsSettings,
    /// `dangerously_permit_weak_or_unset_master_key` (or its environment variables).
    pub permit_weak_master_key: bool,
    /// Write an audit row for every key change (`litellm_settings.store_audit_logs`, on unless
    /// set to false).
    pub store_audit_logs: bool,
    /// What the operator should know at startup.
    pub warnings: Vec<String>,
}

fn setting<'a>(tree: &'a Value, section: &str, key: &str) -> Option<&'a Value> {
    tree.get(section)
        .and_then(|s| s.get(key))
        .filter(|v| !v.is_null())
}

/// A list of strings: a YAML list, or one string of comma-separated items (as a variable gives).
fn string_list(tree: &Value, section: &str, key: &str) -> Result<Option<Vec<String>>, ConfigError> {
    let path = format!("{section}.{key}");
    let Some(value) = setting(tree, section, key) else {
        return Ok(None);
    };
    let items = match value {
        Value::Sequence(items) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Some(s.trim().to_owned()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| ConfigError::at(&path, "expected a list of strings"))?,
        Value::String(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        _ => return Err(ConfigError::at(&path, "expected a list of strings")),
    };
    Ok(Some(items))
}

fn boolean(tree: &Value, section: &str, key: &str) -> Result<Option<bool>, ConfigError> {
    let Some(value) = setting(tree, section, key) else {
        return Ok(None);
    };
    truthy_value(value)
        .map(Some)
        .ok_or_else(|| ConfigError::at(format!("{section}.{key}"), "expected a boolean"))
}

fn truthy_value(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => truthy(s),
        Value::Number(n) => n.as_u64().map(|n| n != 0),
        _ => None,
    }
}

/// `true`, `1`, `yes`, `on` (any case) and their opposites.
pub fn truthy(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" | "" => Some(false),
        _ => None,
    }
}

fn nets(tree: &Value, key: &str) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    let list = string_list(tree, "general_settings", key)?.unwrap_or_default();
    list.iter()
        .enumerate()
        .map(|(i, text)| {
            parse_net(text).ok_or_else(|| {
                ConfigError::at(
                    format!("general_settings.{key}[{i}]"),
                    format!("{text:?} is not an IP address or a CIDR range (e.g. 10.0.0.0/8, 2001:db8::/32)"),
                )
            })
        })
        .collect()
}

/// An origin as browsers send it: `scheme://host[:port]`, no path.
fn valid_origin(text: &str) -> bool {
    let Ok(uri) = text.parse::<actix_web::http::Uri>() else {
        return false;
    };
    uri.scheme().is_some()
        && uri.authority().is_some()
        && uri
            .path_and_query()
            .is_none_or(|p| p.as_str().is_empty() || p.as_str() == "/")
}

fn cors(tree: &Value, warnings: &mut Vec<String>) -> Result<CorsSettings, ConfigError> {
    let g = "general_settings";
    let origins = match string_list(tree, g, "cors_allow_origins")? {
        None => CorsOrigins::Any,
        Some(list) if list.iter().any(|o| o == "*") => CorsOrigins::Any,
        Some(list) => {
            let mut out = Vec::with_capacity(list.len());
            for (i, o) in list.iter().enumerate() {
                if !valid_origin(o) {
                    return Err(ConfigError::at(
                        format!("{g}.cors_allow_origins[{i}]"),
                        format!("{o:?} is not an origin (scheme://host[:port], e.g. https://app.example.com)"),
                    ));
                }
                out.push(o.trim_end_matches('/').to_owned());
            }
            CorsOrigins::Only(out)
        }
    };
    let mut credentials = boolean(tree, g, "cors_allow_credentials")?.unwrap_or(false);
    if credentials && origins == CorsOrigins::Any {
        // Browsers would send cookies to any site's requests: LiteLLM refuses the pair too.
        warnings.push(
            "general_settings.cors_allow_credentials is ignored while cors_allow_origins allows any origin: list the origins to allow credentials"
                .into(),
        );
        credentials = false;
    }
    let any = |list: Option<Vec<String>>| list.filter(|l| !l.iter().any(|i| i == "*"));
    let methods = any(string_list(tree, g, "cors_allow_methods")?);
    if let Some(list) = &methods {
        for (i, m) in list.iter().enumerate() {
            if actix_web::http::Method::from_bytes(m.as_bytes()).is_err() {
                return Err(ConfigError::at(
                    format!("{g}.cors_allow_methods[{i}]"),
                    format!("{m:?} is not an HTTP method"),
                ));
            }
        }
    }
    let headers = any(string_list(tree, g, "cors_allow_headers")?);
    if let Some(list) = &headers {
        for (i, h) in list.iter().enumerate() {
            if actix_web::http::header::HeaderName::from_bytes(h.as_bytes()).is_err() {
                return Err(ConfigError::at(
                    format!("{g}.cors_allow_headers[{i}]"),
                    format!("{h:?} is not a header name"),
                ));
            }
        }
    }
    Ok(CorsSettings {
        origins,
        credentials,
        methods: methods.map(|l| l.into_iter().map(|m| m.to_ascii_uppercase()).collect()),
        headers,
    })
}

/// Reads the security settings from the resolved tree.
pub fn security_settings(tree: &Value, env: &Env) -> Result<SecuritySettings, ConfigError> {
    let g = "general_settings";
    let mut warnings = Vec::new();
    let allowed = nets(tree, "allowed_ips")?;
    let blocked = nets(tree, "blocked_ips")?;
    let trusted = nets(tree, "trusted_proxy_ranges")?;
    let use_xff = boolean(tree, g, "use_x_forwarded_for")?.unwrap_or(false);
    if use_xff && trusted.is_empty() {
        warnings.push(
            "general_settings.use_x_forwarded_for has no effect until general_settings.trusted_proxy_ranges names the proxies whose X-Forwarded-For is believed (anyone can send the header)"
                .into(),
        );
    }
    let ip_filter = (!allowed.is_empty() || !blocked.is_empty()).then_some(IpFilter {
        allowed,
        blocked,
        use_x_forwarded_for: use_xff,
        trusted_proxies: trusted,
    });
    let from_env = |name: &str| -> Result<bool, ConfigError> {
        match env.get(name) {
            None => Ok(false),
            Some(v) => truthy(&v)
                .ok_or_else(|| ConfigError::at(name, format!("expected true or false, got {v:?}"))),
        }
    };
    let permit_weak_master_key = boolean(tree, g, PERMIT_WEAK_SETTING)?.unwrap_or(false)
        || from_env(PERMIT_WEAK_ENV)?
        || from_env(ALLOW_WEAK_ENV)?;
    let store_audit_logs = match boolean(tree, "litellm_settings", "store_audit_logs")? {
        Some(on) => on,
        None => match env.get("LITELLM_STORE_AUDIT_LOGS") {
            Some(v) => truthy(&v).ok_or_else(|| {
                ConfigError::at(
                    "LITELLM_STORE_AUDIT_LOGS",
                    format!("expected true or false, got {v:?}"),
                )
            })?,
            None => true,
        },
    };
    Ok(SecuritySettings {
        ip_filter,
        cors: cors(tree, &mut warnings)?,
        permit_weak_master_key,
        store_audit_logs,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(yaml: &str) -> Result<SecuritySettings, ConfigError> {
        let tree: Value = serde_yaml::from_str(yaml).unwrap();
        security_settings(&tree, &Env::default())
    }

    #[test]
    fn nothing_set_means_no_filter_any_origin_and_audit_on() {
        let s = load("general_settings: {}").unwrap();
        assert!(s.ip_filter.is_none());
        assert_eq!(s.cors, CorsSettings::default());
        assert!(s.store_audit_logs);
        assert!(!s.permit_weak_master_key);
    }

    #[test]
    fn a_bad_ip_names_its_path() {
        let err = load("general_settings: {allowed_ips: ['10.0.0.0/8', 'nope']}").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("general_settings.allowed_ips[1]"),
            "{err}"
        );
    }

    #[test]
    fn ip_lists_may_be_one_comma_separated_string() {
        let s = load("general_settings: {blocked_ips: '10.0.0.1, 2001:db8::/32'}").unwrap();
        assert_eq!(s.ip_filter.unwrap().blocked.len(), 2);
    }

    #[test]
    fn credentials_are_never_allowed_with_any_origin() {
        let s = load("general_settings: {cors_allow_credentials: true}").unwrap();
        assert!(!s.cors.credentials);
        assert_eq!(s.warnings.len(), 1);
        let s = load(
            "general_settings: {cors_allow_origins: ['https://a.example'], cors_allow_credentials: true}",
        )
        .unwrap();
        assert!(s.cors.credentials);
    }

    #[test]
    fn an_origin_with_a_path_is_refused() {
        let err =
            load("general_settings: {cors_allow_origins: ['https://a.example/app']}").unwrap_err();
        assert!(err.to_string().contains("cors_allow_origins[0]"), "{err}");
    }
}
