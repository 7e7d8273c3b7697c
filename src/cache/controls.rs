//! Per-request cache controls: `caching`, and the `cache` object (`no-cache`, `no-store`,
//! `ttl`, `s-maxage`, `namespace`, `use-cache`), checked against a key's
//! `allowed_cache_controls`.

use std::time::Duration;

use serde_json::Value as Json;

use crate::error::ApiError;

/// What a request asks of the cache.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Controls {
    /// `caching: true | false`.
    pub caching: Option<bool>,
    /// `cache: {"use-cache": true}`: use the cache under `mode: default_off`.
    pub use_cache: Option<bool>,
    /// `no-cache`: do not read the cache (the reply is still stored).
    pub no_cache: bool,
    /// `no-store`: do not store the reply.
    pub no_store: bool,
    /// `ttl`: keep the reply this long instead of the configured TTL.
    pub ttl: Option<Duration>,
    /// `s-maxage`: accept only an entry at most this old.
    pub s_maxage: Option<Duration>,
    /// `namespace`: the cache key's prefix for this request.
    pub namespace: Option<String>,
    /// Every control the `cache` object names, for the key's `allowed_cache_controls`.
    pub named: Vec<String>,
}

fn invalid(control: &str, expected: &str) -> ApiError {
    ApiError::bad_request(
        format!("Invalid value for cache control '{control}': expected {expected}"),
        Some("cache"),
    )
}

fn flag(name: &str, v: &Json) -> Result<bool, ApiError> {
    v.as_bool().ok_or_else(|| invalid(name, "a boolean"))
}

fn seconds(name: &str, v: &Json) -> Result<Duration, ApiError> {
    v.as_f64()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| invalid(name, "a non-negative number of seconds"))
}

impl Controls {
    /// Reads the request's `caching` field.
    pub fn set_caching(&mut self, v: &Json) -> Result<(), ApiError> {
        self.caching = Some(v.as_bool().ok_or_else(|| {
            ApiError::bad_request(
                "Invalid value for 'caching': expected a boolean",
                Some("caching"),
            )
        })?);
        Ok(())
    }

    /// Reads the request's `cache` object; controls llmgate does not know are only named.
    pub fn set_cache(&mut self, v: &Json) -> Result<(), ApiError> {
        let Json::Object(map) = v else {
            return Err(ApiError::bad_request(
                "Invalid value for 'cache': expected an object of cache controls",
                Some("cache"),
            ));
        };
        for (name, v) in map {
            self.named.push(name.clone());
            if v.is_null() {
                continue;
            }
            match name.as_str() {
                "no-cache" => self.no_cache = flag(name, v)?,
                "no-store" => self.no_store = flag(name, v)?,
                "use-cache" => self.use_cache = Some(flag(name, v)?),
                "ttl" => self.ttl = Some(seconds(name, v)?),
                "s-maxage" => self.s_maxage = Some(seconds(name, v)?),
                "namespace" => {
                    let ns = v.as_str().ok_or_else(|| invalid(name, "a string"))?;
                    self.namespace = Some(ns.to_owned()).filter(|n| !n.is_empty());
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The first control the request sets that `allowed` (a key's `allowed_cache_controls`)
    /// does not list; an empty list allows every control.
    pub fn first_not_allowed(&self, allowed: &[String]) -> Option<&str> {
        if allowed.is_empty() {
            return None;
        }
        self.named
            .iter()
            .find(|c| !allowed.contains(c))
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_cache_object_is_read() {
        let mut c = Controls::default();
        c.set_cache(
            &json!({"no-cache": true, "ttl": 5, "s-maxage": 1.5, "namespace": "ns", "x": 1}),
        )
        .unwrap();
        assert!(c.no_cache && !c.no_store);
        assert_eq!(c.ttl, Some(Duration::from_secs(5)));
        assert_eq!(c.s_maxage, Some(Duration::from_millis(1500)));
        assert_eq!(c.namespace.as_deref(), Some("ns"));
        assert_eq!(c.named, ["no-cache", "ttl", "s-maxage", "namespace", "x"]);
    }

    #[test]
    fn wrong_types_are_a_400_naming_cache() {
        for bad in [
            json!({"ttl": "long"}),
            json!({"no-store": 1}),
            json!("no-cache"),
        ] {
            let err = Controls::default().set_cache(&bad).unwrap_err();
            assert_eq!(err.body()["error"]["param"], "cache", "{bad}");
        }
        assert!(Controls::default().set_caching(&json!("yes")).is_err());
    }

    #[test]
    fn allowed_controls_name_the_first_refused_one() {
        let mut c = Controls::default();
        c.set_cache(&json!({"ttl": 5, "no-store": true})).unwrap();
        assert_eq!(c.first_not_allowed(&[]), None);
        assert_eq!(c.first_not_allowed(&["ttl".into()]), Some("no-store"));
        assert_eq!(
            c.first_not_allowed(&["ttl".into(), "no-store".into()]),
            None
        );
    }
}
