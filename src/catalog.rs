//! The model catalog: public model names, groups, wildcards, and which group a request names.

use std::collections::HashMap;

use crate::config::Deployment;

/// A request's model resolved to a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The group's index.
    pub group: usize,
    /// The part of the requested name a wildcard matched (`gpt-4o` for `openai/*`).
    pub wildcard: Option<String>,
}

/// Which deployments serve which public names.
#[derive(Debug, Default)]
pub struct Catalog {
    by_name: HashMap<String, usize>,
    names: Vec<String>,
    members: Vec<Vec<usize>>,
    /// `(prefix before '*', group)`, longest prefix first.
    wildcards: Vec<(String, usize)>,
    /// `model_info.access_groups` name to the groups in it.
    access_groups: HashMap<String, Vec<usize>>,
    serve_any: bool,
}

impl Catalog {
    /// Groups `deployments` by `model_name`; `serve_any` makes the one group answer every name.
    pub fn new(deployments: &[Deployment], serve_any: bool) -> Self {
        let mut c = Self {
            serve_any,
            ..Self::default()
        };
        for d in deployments {
            let group = match c.by_name.get(&d.model_name) {
                Some(&g) => g,
                None => {
                    let g = c.names.len();
                    c.by_name.insert(d.model_name.clone(), g);
                    c.names.push(d.model_name.clone());
                    c.members.push(Vec::new());
                    if let Some((prefix, _)) = d.model_name.split_once('*') {
                        c.wildcards.push((prefix.to_owned(), g));
                    }
                    g
                }
            };
            c.members[group].push(d.index);
            let groups = d.model_info.get("access_groups").and_then(|v| v.as_array());
            for name in groups.into_iter().flatten().filter_map(|v| v.as_str()) {
                let entry = c.access_groups.entry(name.to_owned()).or_default();
                if !entry.contains(&group) {
                    entry.push(group);
                }
            }
        }
        c.wildcards
            .sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
        c
    }

    /// The group a requested model name routes to, if any.
    pub fn resolve(&self, name: &str) -> Option<Resolved> {
        if let Some(&group) = self.by_name.get(name) {
            return Some(Resolved {
                group,
                wildcard: None,
            });
        }
        if self.serve_any && !self.names.is_empty() {
            return Some(Resolved {
                group: 0,
                wildcard: None,
            });
        }
        self.wildcards
            .iter()
            .find(|(prefix, _)| name.starts_with(prefix.as_str()) && name.len() > prefix.len())
            .map(|(prefix, group)| Resolved {
                group: *group,
                wildcard: Some(name[prefix.len()..].to_owned()),
            })
    }

    /// Whether a key whose `models` list is `allowed` may call `requested` (served by `group`):
    /// an empty list allows all; entries may name the model, its group, an access group, a
    /// wildcard pattern, or `all-proxy-models`.
    pub fn key_may_use(&self, allowed: &[String], requested: &str, group: usize) -> bool {
        allowed.is_empty()
            || allowed.iter().any(|entry| {
                entry == requested
                    || entry == self.name(group)
                    || entry == "all-proxy-models"
                    || self
                        .access_groups
                        .get(entry)
                        .is_some_and(|gs| gs.contains(&group))
                    || entry
                        .split_once('*')
                        .is_some_and(|(prefix, _)| requested.starts_with(prefix))
            })
    }

    /// The listable names a key with `allowed` may use.
    pub fn names_for_key<'a>(
        &'a self,
        allowed: &'a [String],
    ) -> impl Iterator<Item = &'a str> + 'a {
        self.listed_names().filter(move |name| {
            self.by_name
                .get(*name)
                .is_some_and(|&g| self.key_may_use(allowed, name, g))
        })
    }

    /// Each group's member deployment indices.
    pub fn members(&self) -> &[Vec<usize>] {
        &self.members
    }

    /// A group's public name.
    pub fn name(&self, group: usize) -> &str {
        &self.names[group]
    }

    /// Public names that can be listed (wildcard patterns are not models).
    pub fn listed_names(&self) -> impl Iterator<Item = &str> {
        self.names
            .iter()
            .map(String::as_str)
            .filter(|n| !n.contains('*'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CliOverrides, Settings};

    fn catalog(yaml: &str) -> Catalog {
        let s = Settings::from_yaml(yaml, &CliOverrides::default()).unwrap();
        Catalog::new(&s.deployments, s.serve_any_model)
    }

    #[test]
    fn entries_sharing_a_name_form_one_group() {
        let c = catalog(
            "model_list:\n  - {model_name: a, litellm_params: {model: openai/x, api_base: 'http://h'}}\n  - {model_name: b, litellm_params: {model: openai/y, api_base: 'http://h'}}\n  - {model_name: a, litellm_params: {model: openai/z, api_base: 'http://h'}}\n",
        );
        assert_eq!(c.members(), &[vec![0, 2], vec![1]]);
        assert_eq!(
            c.resolve("b"),
            Some(Resolved {
                group: 1,
                wildcard: None
            })
        );
        assert_eq!(c.resolve("nope"), None);
    }

    #[test]
    fn wildcards_capture_the_rest_of_the_name_longest_prefix_first() {
        let c = catalog(
            "model_list:\n  - {model_name: '*', litellm_params: {model: 'openai/*', api_base: 'http://h'}}\n  - {model_name: 'groq/*', litellm_params: {model: 'groq/*', api_base: 'http://h'}}\n",
        );
        assert_eq!(
            c.resolve("groq/llama"),
            Some(Resolved {
                group: 1,
                wildcard: Some("llama".into())
            })
        );
        assert_eq!(
            c.resolve("gpt-4o"),
            Some(Resolved {
                group: 0,
                wildcard: Some("gpt-4o".into())
            })
        );
        assert_eq!(c.listed_names().count(), 0);
    }
}
