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
    /// Names `model_group_alias` hides from `/models`.
    hidden: Vec<String>,
    serve_any: bool,
}

/// What `router_settings.model_group_alias` maps a public name to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupAlias {
    /// Another group; `hidden` keeps the alias out of `/models`.
    To {
        /// The group.
        group: String,
        /// Not listed.
        hidden: bool,
    },
    /// Several groups, spread over as one.
    Spread(Vec<String>),
}

impl Catalog {
    /// Groups `deployments` by `model_name`; `serve_any` makes the one group answer every name.
    pub fn new(deployments: &[Deployment], serve_any: bool) -> Self {
        Self::build(deployments, serve_any, None)
    }

    /// Groups `deployments` by `model_name`, each name keeping the group index it had in
    /// `prev`: a request routed on the previous catalog names the same group in this one. A
    /// group whose deployments are all gone keeps its index, with no members and no name to
    /// resolve; new names are appended.
    pub fn build<'a>(
        deployments: impl IntoIterator<Item = &'a Deployment>,
        serve_any: bool,
        prev: Option<&Catalog>,
    ) -> Self {
        let names = prev.map(|p| p.names.clone()).unwrap_or_default();
        let mut c = Self {
            serve_any,
            members: vec![Vec::new(); names.len()],
            names,
            ..Self::default()
        };
        for d in deployments {
            let group = match c.by_name.get(&d.model_name) {
                Some(&g) => g,
                None => {
                    let g = c.slot(&d.model_name);
                    c.by_name.insert(d.model_name.clone(), g);
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

    /// The index of the group named `name`: the one it had before, else a new one.
    fn slot(&mut self, name: &str) -> usize {
        if let Some(g) = self.names.iter().position(|n| n == name) {
            return g;
        }
        self.names.push(name.to_owned());
        self.members.push(Vec::new());
        self.names.len() - 1
    }

    /// Adds `model_group_alias` names; an alias never shadows a real group.
    pub fn with_aliases(mut self, aliases: &[(String, GroupAlias)]) -> Self {
        for (name, alias) in aliases {
            if self.by_name.contains_key(name) {
                continue;
            }
            match alias {
                GroupAlias::To { group, hidden } => {
                    if let Some(&g) = self.by_name.get(group) {
                        self.by_name.insert(name.clone(), g);
                        if *hidden {
                            self.hidden.push(name.clone());
                        }
                    }
                }
                GroupAlias::Spread(groups) => {
                    let mut members: Vec<usize> = Vec::new();
                    for g in groups.iter().filter_map(|g| self.by_name.get(g)) {
                        for &m in &self.members[*g] {
                            if !members.contains(&m) {
                                members.push(m);
                            }
                        }
                    }
                    if !members.is_empty() {
                        let g = self.slot(name);
                        self.by_name.insert(name.clone(), g);
                        self.members[g] = members;
                    }
                }
            }
        }
        self
    }

    /// The group a requested model name routes to, if any.
    pub fn resolve(&self, name: &str) -> Option<Resolved> {
        if let Some(&group) = self.by_name.get(name) {
            return Some(Resolved {
                group,
                wildcard: None,
            });
        }
        if self.serve_any && !self.by_name.is_empty() {
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

    /// Public names that can be listed: groups and visible aliases (wildcard patterns are not
    /// models).
    pub fn listed_names(&self) -> impl Iterator<Item = &str> {
        let aliases = self
            .by_name
            .iter()
            .filter(|(name, &g)| self.names[g] != **name && !self.hidden.contains(name))
            .map(|(name, _)| name.as_str());
        let mut aliases: Vec<&str> = aliases.collect();
        aliases.sort_unstable();
        self.names
            .iter()
            .zip(&self.members)
            // A group whose deployments were all removed keeps its index but is not a model.
            .filter(|(n, members)| !n.contains('*') && !members.is_empty())
            .map(|(n, _)| n.as_str())
            .chain(aliases)
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
    fn aliases_point_at_groups_hide_or_spread_over_several() {
        let c = catalog(
            "model_list:\n  - {model_name: a, litellm_params: {model: openai/x, api_base: 'http://h'}}\n  - {model_name: b, litellm_params: {model: openai/y, api_base: 'http://h'}}\n",
        )
        .with_aliases(&[
            ("old".into(), GroupAlias::To { group: "a".into(), hidden: false }),
            ("secret".into(), GroupAlias::To { group: "b".into(), hidden: true }),
            ("both".into(), GroupAlias::Spread(vec!["a".into(), "b".into()])),
            ("a".into(), GroupAlias::To { group: "b".into(), hidden: false }),
        ]);
        assert_eq!(c.resolve("old").map(|r| r.group), Some(0));
        assert_eq!(c.resolve("secret").map(|r| r.group), Some(1));
        assert_eq!(
            c.resolve("a").map(|r| r.group),
            Some(0),
            "an alias never shadows a group"
        );
        let both = c.resolve("both").unwrap().group;
        assert_eq!(c.members()[both], vec![0, 1]);
        let listed: Vec<&str> = c.listed_names().collect();
        assert_eq!(listed, ["a", "b", "both", "old"]);
    }

    #[test]
    fn a_rebuilt_catalog_keeps_each_names_group_and_drops_emptied_ones() {
        let s = Settings::from_yaml(
            "model_list:\n  - {model_name: a, litellm_params: {model: openai/x, api_base: 'http://h'}}\n  - {model_name: b, litellm_params: {model: openai/y, api_base: 'http://h'}}\n  - {model_name: c, litellm_params: {model: openai/z, api_base: 'http://h'}}\n",
            &CliOverrides::default(),
        )
        .unwrap();
        let first = Catalog::new(&s.deployments, false);
        // `a` is gone, `c` stays, `d` is new (served by deployment 1, renamed).
        let mut renamed = s.deployments[1].clone();
        renamed.model_name = "d".into();
        let next = Catalog::build([&renamed, &s.deployments[2]], false, Some(&first));
        assert_eq!(next.resolve("c").map(|r| r.group), Some(2));
        assert_eq!(next.resolve("d").map(|r| r.group), Some(3));
        assert_eq!(next.resolve("a"), None);
        assert_eq!(next.resolve("b"), None);
        assert_eq!(next.name(0), "a", "an old group's index still names it");
        assert_eq!(next.members()[0], Vec::<usize>::new());
        let listed: Vec<&str> = next.listed_names().collect();
        assert_eq!(listed, ["c", "d"]);
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
