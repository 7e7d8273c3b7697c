//! Fallbacks: which other model groups (or deployments) a failed request moves on to.

use std::collections::HashMap;

/// What kind of failure a fallback answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FallbackCause {
    /// The prompt did not fit the model's context window.
    ContextWindow,
    /// The provider's content filter refused.
    ContentPolicy,
    /// Anything else that is not the request's own fault.
    Other,
}

/// The configured fallbacks (`fallbacks`, `context_window_fallbacks`,
/// `content_policy_fallbacks`, `default_fallbacks`, `max_fallbacks`).
#[derive(Debug, Clone, PartialEq)]
pub struct FallbackPolicy {
    /// Group to the groups tried after it fails.
    pub general: HashMap<String, Vec<String>>,
    /// Group to the groups tried after a context-window error.
    pub context_window: HashMap<String, Vec<String>>,
    /// Group to the groups tried after a content-policy refusal.
    pub content_policy: HashMap<String, Vec<String>>,
    /// Tried for any group that has no `fallbacks` of its own.
    pub default: Vec<String>,
    /// At most this many fallbacks per request.
    pub max: usize,
}

impl Default for FallbackPolicy {
    fn default() -> Self {
        Self {
            general: HashMap::new(),
            context_window: HashMap::new(),
            content_policy: HashMap::new(),
            default: Vec::new(),
            max: 5,
        }
    }
}

/// Fallbacks the request itself names.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestFallbacks {
    /// `fallbacks`.
    pub general: Option<Vec<String>>,
    /// `context_window_fallbacks`.
    pub context_window: Option<Vec<String>>,
    /// `content_policy_fallbacks`.
    pub content_policy: Option<Vec<String>>,
}

impl FallbackPolicy {
    /// The models to try, in order, after `group` failed with `cause`; the request's own lists
    /// take precedence over the config's. The group itself is never in the chain.
    pub fn chain(
        &self,
        group: &str,
        cause: FallbackCause,
        request: &RequestFallbacks,
    ) -> Vec<String> {
        let (asked, configured) = match cause {
            FallbackCause::ContextWindow => {
                (&request.context_window, self.context_window.get(group))
            }
            FallbackCause::ContentPolicy => {
                (&request.content_policy, self.content_policy.get(group))
            }
            FallbackCause::Other => (&request.general, self.general.get(group)),
        };
        let chosen: &[String] = match (asked, configured) {
            (Some(list), _) => list,
            (None, Some(list)) => list,
            (None, None) if cause == FallbackCause::Other => &self.default,
            (None, None) => &[],
        };
        let mut out: Vec<String> = Vec::new();
        for name in chosen {
            if name != group && !out.contains(name) {
                out.push(name.clone());
            }
        }
        out.truncate(self.max);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> FallbackPolicy {
        FallbackPolicy {
            general: HashMap::from([("a".into(), vec!["b".into(), "c".into(), "a".into()])]),
            context_window: HashMap::from([("a".into(), vec!["big".into()])]),
            content_policy: HashMap::from([("a".into(), vec!["lenient".into()])]),
            default: vec!["safe".into()],
            max: 5,
        }
    }

    #[test]
    fn each_cause_has_its_own_chain() {
        let p = policy();
        let none = RequestFallbacks::default();
        assert_eq!(p.chain("a", FallbackCause::Other, &none), ["b", "c"]);
        assert_eq!(p.chain("a", FallbackCause::ContextWindow, &none), ["big"]);
        assert_eq!(
            p.chain("a", FallbackCause::ContentPolicy, &none),
            ["lenient"]
        );
    }

    #[test]
    fn default_fallbacks_serve_groups_without_their_own() {
        let p = policy();
        let none = RequestFallbacks::default();
        assert_eq!(p.chain("z", FallbackCause::Other, &none), ["safe"]);
        assert!(p.chain("z", FallbackCause::ContextWindow, &none).is_empty());
    }

    #[test]
    fn the_request_overrides_and_max_fallbacks_caps() {
        let mut p = policy();
        let asked = RequestFallbacks {
            general: Some(vec!["x".into(), "y".into(), "z".into()]),
            ..RequestFallbacks::default()
        };
        assert_eq!(p.chain("a", FallbackCause::Other, &asked), ["x", "y", "z"]);
        p.max = 2;
        assert_eq!(p.chain("a", FallbackCause::Other, &asked), ["x", "y"]);
        p.max = 0;
        assert!(p.chain("a", FallbackCause::Other, &asked).is_empty());
    }
}
