//! Where a new file (or a list of files or batches) goes: the deployment of a named model
//! group that speaks OpenAI's or Azure's files API, else the first deployment of the named
//! provider (`custom_llm_provider`, `openai` by default) the key may use.

use crate::config::Deployment;
use crate::error::ApiError;
use crate::keys::{KeyRecord, Rejection};
use crate::providers::ProviderKind;
use crate::topology::Topology;

/// The providers whose files and batches APIs the gateway passes through.
pub const PROVIDERS: &[&str] = &["openai", "azure"];

/// Request fields only the gateway reads to place a call; never sent upstream.
pub const GATEWAY_FIELDS: &[&str] = &["model", "target_model_names", "custom_llm_provider"];

/// What a request says about where it goes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// A model group (or alias), from `model` or `target_model_names`.
    pub model: Option<String>,
    /// `custom_llm_provider`, or the provider in the path.
    pub provider: Option<String>,
}

impl Wanted {
    /// From the request's `model`, `target_model_names` (a comma-separated list) and
    /// `custom_llm_provider`: only one model may be named, and only a provider the gateway
    /// passes files to.
    pub fn new(
        model: Option<String>,
        target_model_names: Option<String>,
        provider: Option<String>,
    ) -> Result<Self, ApiError> {
        let mut targets: Vec<&str> = Vec::new();
        for name in target_model_names.iter().flat_map(|t| t.split(',')) {
            let name = name.trim();
            if !name.is_empty() && !targets.contains(&name) {
                targets.push(name);
            }
        }
        if targets.len() > 1 {
            return Err(ApiError::bad_request(
                format!(
                    "target_model_names names {} models ({}); llmgate keeps a file on one deployment: name one model",
                    targets.len(),
                    targets.join(", ")
                ),
                Some("target_model_names"),
            ));
        }
        let model = model
            .map(|m| m.trim().to_owned())
            .filter(|m| !m.is_empty())
            .or_else(|| targets.first().map(|t| (*t).to_owned()));
        let provider = provider
            .map(|p| p.trim().to_ascii_lowercase())
            .filter(|p| !p.is_empty());
        if let Some(p) = provider.as_deref().filter(|p| !PROVIDERS.contains(p)) {
            return Err(ApiError::bad_request(
                format!(
                    "custom_llm_provider={p}: llmgate passes files and batches to openai and azure only"
                ),
                Some("custom_llm_provider"),
            ));
        }
        Ok(Self { model, provider })
    }
}

/// The provider name a deployment's files API answers to, if it has one.
pub fn files_provider(d: &Deployment) -> Option<&'static str> {
    match d.provider {
        ProviderKind::OpenAi(f) if f.prefix == "openai" => Some("openai"),
        ProviderKind::Azure(_) => Some("azure"),
        _ => None,
    }
}

/// A deployment chosen for a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chosen {
    /// The deployment's index.
    pub index: usize,
    /// The group it is charged to.
    pub group: usize,
}

/// The deployment a call goes to. `key` is the caller's virtual key (`None` for the master
/// key); `roll` in `[0, 1)` picks among a group's deployments that hold files.
pub fn choose(
    topology: &Topology,
    wanted: &Wanted,
    key: Option<&KeyRecord>,
    roll: f64,
) -> Result<Chosen, ApiError> {
    let catalog = &topology.catalog;
    if let Some(asked) = &wanted.model {
        return in_group(topology, asked, key, roll);
    }
    let provider = wanted.provider.as_deref().unwrap_or("openai");
    let may_use = |d: &Deployment, group: usize| {
        key.is_none_or(|k| catalog.key_may_use(&k.models, &d.model_name, group))
    };
    topology
        .live()
        .filter(|d| files_provider(d) == Some(provider))
        .find_map(|d| {
            let group = catalog.resolve(&d.model_name)?.group;
            may_use(d, group).then_some(Chosen {
                index: d.index,
                group,
            })
        })
        .ok_or_else(|| {
            ApiError::bad_request(
                format!(
                    "no {provider} deployment {} to hold files and batches: send `model` (or `target_model_names`) naming a model group with an openai/ or azure/ deployment, or `custom_llm_provider` (openai or azure)",
                    if key.is_some() { "this key may use" } else { "is configured" }
                ),
                Some(if wanted.provider.is_some() {
                    "custom_llm_provider"
                } else {
                    "model"
                }),
            )
        })
}

/// A deployment of the group `asked` names (through the key's aliases) that holds files.
fn in_group(
    topology: &Topology,
    asked: &str,
    key: Option<&KeyRecord>,
    roll: f64,
) -> Result<Chosen, ApiError> {
    let catalog = &topology.catalog;
    let name = key
        .and_then(|k| k.aliases.get(asked))
        .map_or(asked, String::as_str);
    let resolved = catalog
        .resolve(name)
        .ok_or_else(|| ApiError::UnknownModel(name.to_owned()))?;
    let group = resolved.group;
    if let Some(k) = key {
        // `models` may name the group, or the alias the client asked for; a blocked key is
        // refused as blocked by its admission.
        let allowed = catalog.key_may_use(&k.models, name, group)
            || (asked != name && k.models.iter().any(|m| m == asked));
        if !k.row.blocked && !allowed {
            return Err(ApiError::Key(Rejection::ModelDenied(asked.to_owned())));
        }
    }
    let capable: Vec<usize> = catalog.members()[group]
        .iter()
        .copied()
        .filter(|&i| topology.get(i).and_then(files_provider).is_some())
        .collect();
    if capable.is_empty() {
        return Err(ApiError::bad_request(
            format!(
                "model={name} has no openai/ or azure/ deployment: llmgate passes files and batches to those only"
            ),
            Some("model"),
        ));
    }
    let pick = ((roll * capable.len() as f64) as usize).min(capable.len() - 1);
    Ok(Chosen {
        index: capable[pick],
        group,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CliOverrides, Settings};
    use crate::db::models::KeyRow;
    use crate::topology::Wanted as Desired;

    fn settings() -> Settings {
        Settings::from_yaml(
            "model_list:
  - model_name: chat
    litellm_params: {model: anthropic/claude-3-5-haiku-latest, api_key: k}
  - model_name: chat
    litellm_params: {model: azure/gpt-4o, api_base: 'https://r.openai.azure.com', api_key: k, api_version: '2024-10-21'}
  - model_name: groq
    litellm_params: {model: groq/llama-3.1-8b-instant, api_key: k}
  - model_name: gpt
    litellm_params: {model: openai/gpt-4o, api_key: k}
  - model_name: gpt-b
    litellm_params: {model: openai/gpt-4o-mini, api_key: k}
",
            &CliOverrides::default(),
        )
        .unwrap()
    }

    fn key(models: &[&str]) -> KeyRecord {
        let now = chrono::Utc::now().naive_utc();
        let row = KeyRow {
            token: "t".into(),
            key_name: "sk-...t".into(),
            key_alias: None,
            spend: 0.0,
            max_budget: None,
            budget_duration: None,
            budget_reset_at: None,
            expires: None,
            models: serde_json::to_string(models).unwrap(),
            aliases: r#"{"fast": "gpt-b"}"#.into(),
            config: "{}".into(),
            metadata: "{}".into(),
            model_max_budget: "{}".into(),
            model_rpm_limit: "{}".into(),
            model_tpm_limit: "{}".into(),
            tpm_limit: None,
            rpm_limit: None,
            max_parallel_requests: None,
            user_id: None,
            team_id: None,
            tags: "[]".into(),
            blocked: false,
            created_at: now,
            updated_at: now,
            allowed_cache_controls: "[]".into(),
        };
        KeyRecord::new(row, Default::default())
    }

    fn wanted(model: Option<&str>, provider: Option<&str>) -> Wanted {
        Wanted::new(model.map(Into::into), None, provider.map(Into::into)).unwrap()
    }

    #[test]
    fn a_named_group_sends_the_call_to_its_deployment_that_holds_files() {
        let s = settings();
        let topology = Topology::initial(Desired::from_config(&s), &s);
        for roll in [0.0, 0.5, 0.99] {
            let c = choose(&topology, &wanted(Some("chat"), None), None, roll);
            assert_eq!(c.unwrap().index, 1, "only the azure deployment holds files");
        }
    }

    #[test]
    fn without_a_model_the_first_deployment_of_the_provider_the_key_may_use_is_chosen() {
        let s = settings();
        let topology = Topology::initial(Desired::from_config(&s), &s);
        let open = choose(&topology, &Wanted::default(), None, 0.0).unwrap();
        assert_eq!(open.index, 3, "openai is the default provider");
        let limited = key(&["gpt-b"]);
        let c = choose(&topology, &Wanted::default(), Some(&limited), 0.0);
        assert_eq!(c.unwrap().index, 4);
        let azure = choose(&topology, &wanted(None, Some("Azure")), None, 0.0);
        assert_eq!(azure.unwrap().index, 1);
    }

    #[test]
    fn a_model_the_key_may_not_use_is_a_403_and_an_alias_resolves_through_the_key() {
        let s = settings();
        let topology = Topology::initial(Desired::from_config(&s), &s);
        let k = key(&["gpt-b", "fast"]);
        let denied = choose(&topology, &wanted(Some("gpt"), None), Some(&k), 0.0);
        assert!(matches!(denied, Err(ApiError::Key(Rejection::ModelDenied(m))) if m == "gpt"));
        let alias = choose(&topology, &wanted(Some("fast"), None), Some(&k), 0.0);
        assert_eq!(alias.unwrap().index, 4);
    }

    #[test]
    fn calls_no_deployment_can_take_are_400s_naming_what_to_send() {
        let s = settings();
        let topology = Topology::initial(Desired::from_config(&s), &s);
        let groq = choose(&topology, &wanted(Some("groq"), None), None, 0.0);
        assert!(matches!(groq, Err(ApiError::BadRequest { param: Some(p), .. }) if p == "model"));
        let unknown = choose(&topology, &wanted(Some("nope"), None), None, 0.0);
        assert!(matches!(unknown, Err(ApiError::UnknownModel(_))));
        let none =
            choose(&topology, &Wanted::default(), Some(&key(&["chat"])), 0.0).map(|c| c.index);
        assert!(matches!(none, Err(ApiError::BadRequest { .. })), "{none:?}");
        let bad = Wanted::new(None, None, Some("vertex_ai".into()));
        assert!(
            matches!(bad, Err(ApiError::BadRequest { param: Some(p), .. }) if p == "custom_llm_provider")
        );
    }

    #[test]
    fn target_model_names_may_name_one_model_once() {
        let one = Wanted::new(None, Some(" gpt , gpt,".into()), None).unwrap();
        assert_eq!(one.model.as_deref(), Some("gpt"));
        let two = Wanted::new(None, Some("gpt, chat".into()), None);
        assert!(
            matches!(two, Err(ApiError::BadRequest { param: Some(p), .. }) if p == "target_model_names")
        );
    }
}
