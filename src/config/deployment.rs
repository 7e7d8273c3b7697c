//! One `model_list` entry, validated: its provider, endpoint, credentials, limits and defaults.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value as Json};
use serde_yaml::Value;
use sha2::{Digest, Sha256};

use super::support::{is_known_param, SECRET_PARAMS};
use super::{de, CliOverrides, ConfigError, Env, Secret};
use crate::pricing::{self, Price};
use crate::providers::huggingface::prompt::Template as PromptTemplate;
use crate::providers::kind::{self, HuggingFaceApi, ProviderKind};
use crate::providers::vertex_ai;

/// The `vertex_*` keys of `litellm_params`, read for `vertex_ai/` deployments.
#[derive(Debug, Default)]
struct VertexParams {
    project: Option<String>,
    location: Option<String>,
    credentials: Option<String>,
}

/// Where a deployment was declared.
#[derive(Debug, Clone)]
pub enum DeploymentSource {
    /// `--model` on the command line.
    Cli {
        /// `--model`.
        model: String,
        /// `--alias`.
        alias: Option<String>,
        /// `--api_base`.
        api_base: Option<String>,
        /// `--api_version`.
        api_version: Option<String>,
    },
}

#[derive(Debug, Default, Deserialize)]
struct RawParams {
    #[serde(default, deserialize_with = "de::opt_string")]
    model: Option<String>,
    #[serde(default, deserialize_with = "de::opt_string")]
    api_base: Option<String>,
    #[serde(default, deserialize_with = "de::opt_string")]
    api_key: Option<String>,
    #[serde(default, deserialize_with = "de::opt_string")]
    api_version: Option<String>,
    #[serde(default, deserialize_with = "de::opt_string")]
    organization: Option<String>,
    #[serde(default, deserialize_with = "de::opt_u64")]
    rpm: Option<u64>,
    #[serde(default, deserialize_with = "de::opt_u64")]
    tpm: Option<u64>,
    #[serde(default, deserialize_with = "de::opt_f64")]
    weight: Option<f64>,
    #[serde(default, deserialize_with = "de::opt_u32")]
    order: Option<u32>,
    #[serde(default, deserialize_with = "de::opt_u32")]
    max_parallel_requests: Option<u32>,
    #[serde(default, deserialize_with = "de::opt_bool")]
    drop_params: Option<bool>,
    #[serde(default)]
    additional_drop_params: Option<Vec<String>>,
    #[serde(default, deserialize_with = "de::opt_f64")]
    timeout: Option<f64>,
    #[serde(default, deserialize_with = "de::opt_f64")]
    stream_timeout: Option<f64>,
    #[serde(default)]
    headers: Option<std::collections::BTreeMap<String, StringLike>>,
    #[serde(default, deserialize_with = "de::opt_string")]
    mock_response: Option<String>,
    #[serde(default, deserialize_with = "de::opt_string")]
    vertex_project: Option<String>,
    #[serde(default, deserialize_with = "de::opt_string")]
    vertex_location: Option<String>,
    #[serde(default)]
    vertex_credentials: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct StringLike(#[serde(deserialize_with = "de::opt_string")] Option<String>);

#[derive(Debug, Deserialize)]
struct RawEntry {
    #[serde(deserialize_with = "de::opt_string")]
    model_name: Option<String>,
    #[serde(default)]
    litellm_params: Option<Value>,
    #[serde(default)]
    model_info: Option<Value>,
}

/// A deployment: one upstream model endpoint that serves a model group.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// Position in `model_list`.
    pub index: usize,
    /// `model_info.id`, or a stable hash of the entry.
    pub id: String,
    /// The public name (the group).
    pub model_name: String,
    /// The protocol spoken upstream.
    pub provider: ProviderKind,
    /// The model name sent upstream; a `*` is replaced by the wildcard match.
    pub upstream_model: String,
    /// Base URL without a trailing slash; empty when unset (mock deployments).
    pub api_base: String,
    /// The base URL as shown in headers: no query string, no credentials.
    pub public_api_base: String,
    /// The provider key.
    pub api_key: Option<Secret>,
    /// The header carrying the key, built once: `authorization: Bearer ...` or Azure's `api-key`.
    pub auth_header: Option<(&'static str, Secret)>,
    /// Azure's `api-version`.
    pub api_version: Option<String>,
    /// OpenAI's organization header.
    pub organization: Option<String>,
    /// Extra headers sent upstream.
    pub headers: Vec<(String, String)>,
    /// Request parameters applied when the request does not set them.
    pub defaults: Map<String, Json>,
    /// Requests per minute (a weight for `simple-shuffle`).
    pub rpm: Option<u64>,
    /// Tokens per minute (a weight for `simple-shuffle`).
    pub tpm: Option<u64>,
    /// Share of traffic under `simple-shuffle`.
    pub weight: Option<f64>,
    /// Lower orders are tried first; higher ones only when no lower one is free.
    pub order: Option<u32>,
    /// Requests in flight at once (`max_parallel_requests`).
    pub max_parallel_requests: Option<u32>,
    /// `drop_params` for this deployment (the request's own setting wins).
    pub drop_params: Option<bool>,
    /// `additional_drop_params`: fields never sent to this deployment.
    pub additional_drop_params: Vec<String>,
    /// The most prompt tokens the model takes: `model_info.max_input_tokens`, else the price
    /// table's.
    pub context_window: Option<u64>,
    /// Whole-call timeout for this deployment.
    pub timeout: Option<Duration>,
    /// First-byte timeout for streams to this deployment.
    pub stream_timeout: Option<Duration>,
    /// A canned reply or LiteLLM error name; no upstream is called.
    pub mock_response: Option<String>,
    /// Whether the upstream takes `/completions` natively (else it is translated to chat).
    pub native_completions: bool,
    /// Whether only `/completions` is served (chat is translated to it).
    pub completions_only: bool,
    /// The chat template from `litellm_params` (`roles`, `initial_prompt_value` ...): a
    /// Hugging Face deployment that has one writes its own prompt for TGI's `generate`.
    pub prompt_template: Option<PromptTemplate>,
    /// `litellm_params` with every secret removed, for `/model/info`.
    pub public_params: Json,
    /// `model_info` with `id` filled in.
    pub model_info: Json,
    /// `model_name` contains `*`.
    pub is_wildcard: bool,
    /// Per-token prices: the config's, else the price table's (Azure through `base_model`).
    pub price: Option<Price>,
    /// Per-unit prices (image, character, second, query): each the config's, else the table's.
    pub units: crate::unit_pricing::UnitPrices,
    /// The model the price table knows this deployment as (`model_info.base_model`, else the
    /// upstream model), with its provider: images are priced by size and quality under it.
    pub priced_as: (String, String),
    /// Vertex AI's project, region and service account (`vertex_ai/` deployments only).
    pub vertex: Option<vertex_ai::Settings>,
    /// Bedrock's AWS credentials and region, for SigV4 (`bedrock/` deployments without an
    /// API key only).
    pub aws: Option<crate::providers::bedrock::sign::AwsAuth>,
}

impl Deployment {
    /// Builds the deployment at `model_list[index]` from the resolved YAML tree.
    pub fn from_yaml(
        index: usize,
        entry: &Value,
        env: &Env,
        cli: &CliOverrides,
    ) -> Result<Self, ConfigError> {
        Self::from_entry(index, entry, &format!("model_list[{index}]"), env, cli)
    }

    /// Builds a deployment from one `model_list` entry (resolved), however it came: errors
    /// name their path under `at` (`model_list[2]`; empty for a model sent to `/model/new`,
    /// whose errors then read `litellm_params.rpm: ...`).
    pub fn from_entry(
        index: usize,
        entry: &Value,
        at: &str,
        env: &Env,
        cli: &CliOverrides,
    ) -> Result<Self, ConfigError> {
        let under = |key: &str| {
            if at.is_empty() {
                key.to_owned()
            } else {
                format!("{at}.{key}")
            }
        };
        let at = at.to_owned();
        if !entry.is_mapping() {
            return Err(ConfigError::at(at, "expected a mapping"));
        }
        let raw: RawEntry = serde_path_to_error::deserialize(entry.clone())
            .map_err(|e| ConfigError::from_serde(e, &at))?;
        let model_name = raw
            .model_name
            .filter(|n| !n.is_empty())
            .ok_or_else(|| ConfigError::at(under("model_name"), "missing field"))?;
        let params_at = under("litellm_params");
        let params_tree = match raw.litellm_params {
            Some(v @ Value::Mapping(_)) => v,
            Some(_) => return Err(ConfigError::at(params_at, "expected a mapping")),
            None => return Err(ConfigError::at(params_at, "missing field")),
        };
        let params: RawParams = serde_path_to_error::deserialize(params_tree.clone())
            .map_err(|e| ConfigError::from_serde(e, &params_at))?;
        let info_at = under("model_info");
        let mut model_info = match raw.model_info {
            None | Some(Value::Null) => Map::new(),
            Some(v @ Value::Mapping(_)) => match to_json(&v) {
                Json::Object(m) => m,
                _ => Map::new(),
            },
            Some(_) => return Err(ConfigError::at(info_at, "expected a mapping")),
        };
        let params_json = to_json(&params_tree);
        let mut defaults = Map::new();
        let mut public_params = Map::new();
        if let Json::Object(map) = &params_json {
            for (k, v) in map {
                if !SECRET_PARAMS.contains(&k.as_str()) {
                    public_params.insert(k.clone(), v.clone());
                }
                if !is_known_param(k) {
                    defaults.insert(k.clone(), v.clone());
                }
            }
        }
        let id = match model_info.get("id") {
            Some(Json::String(s)) if !s.is_empty() => s.clone(),
            Some(Json::Number(n)) => n.to_string(),
            _ => stable_id(&model_name, &params_json),
        };
        model_info.insert("id".into(), Json::String(id.clone()));

        let model = params
            .model
            .clone()
            .filter(|m| !m.is_empty())
            .ok_or_else(|| ConfigError::at(format!("{params_at}.model"), "missing field"))?;
        let headers = params
            .headers
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(k, v)| v.0.map(|v| (k, v)))
            .collect();
        let mut deployment = Self::assemble(Assembly {
            index,
            id,
            model_name,
            model,
            model_path: format!("{params_at}.model"),
            api_base: params.api_base,
            api_key: params.api_key,
            api_version: params.api_version,
            organization: params.organization,
            headers,
            defaults,
            rpm: params.rpm,
            tpm: params.tpm,
            weight: params.weight,
            order: params.order,
            max_parallel_requests: params.max_parallel_requests,
            timeout: secs(params.timeout, &format!("{params_at}.timeout"))?,
            stream_timeout: secs(
                params.stream_timeout,
                &format!("{params_at}.stream_timeout"),
            )?,
            mock_response: params.mock_response,
            public_params: Json::Object(public_params),
            model_info: Json::Object(model_info),
            env,
            cli,
        })?;
        deployment.drop_params = params.drop_params;
        deployment.additional_drop_params = params.additional_drop_params.unwrap_or_default();
        crate::providers::bedrock::configure(&mut deployment, &params_json, env);
        let credentials = match params.vertex_credentials {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(v @ Value::Mapping(_)) => Some(to_json(&v).to_string()),
            Some(_) => {
                return Err(ConfigError::at(
                    format!("{params_at}.vertex_credentials"),
                    "expected the key's JSON (text or a mapping) or a file path",
                ))
            }
        };
        let vertex = VertexParams {
            project: params.vertex_project,
            location: params.vertex_location,
            credentials,
        };
        deployment.with_vertex(vertex, env, Some(&params_at))
    }

    /// Builds the deployment `--model` asks for.
    pub fn from_cli(
        index: usize,
        source: DeploymentSource,
        env: &Env,
        cli: &CliOverrides,
    ) -> Result<Self, ConfigError> {
        let DeploymentSource::Cli {
            model,
            alias,
            api_base,
            api_version,
        } = source;
        let model_name = alias.unwrap_or_else(|| model.clone());
        let mut public = Map::new();
        public.insert("model".into(), Json::String(model.clone()));
        if let Some(b) = &api_base {
            public.insert("api_base".into(), Json::String(b.clone()));
        }
        if let Some(v) = &api_version {
            public.insert("api_version".into(), Json::String(v.clone()));
        }
        let id = stable_id(&model_name, &public);
        let mut info = Map::new();
        info.insert("id".into(), Json::String(id.clone()));
        let mut deployment = Self::assemble(Assembly {
            index,
            id,
            model_name,
            model,
            model_path: "--model".into(),
            api_base,
            api_key: None,
            api_version,
            organization: None,
            headers: Vec::new(),
            defaults: Map::new(),
            rpm: None,
            tpm: None,
            weight: None,
            order: None,
            max_parallel_requests: None,
            timeout: None,
            stream_timeout: None,
            mock_response: None,
            public_params: Json::Object(public),
            model_info: Json::Object(info),
            env,
            cli,
        })?;
        crate::providers::bedrock::configure(&mut deployment, &Json::Null, env);
        deployment.with_vertex(VertexParams::default(), env, None)
    }

    /// Reads a `vertex_ai/` deployment's project, region and service account, and its
    /// regional endpoint when no `api_base` is set; `at` is where its `litellm_params` are.
    /// A mock deployment may go without.
    fn with_vertex(
        mut self,
        params: VertexParams,
        env: &Env,
        at: Option<&str>,
    ) -> Result<Self, ConfigError> {
        if !matches!(self.provider, ProviderKind::VertexAi(_)) {
            return Ok(self);
        }
        match vertex_ai::Settings::resolve(params.project, params.location, params.credentials, env)
        {
            Ok(settings) => {
                if self.api_base.is_empty() {
                    self.api_base = settings.default_base();
                    self.public_api_base = public_base(&self.api_base);
                }
                self.vertex = Some(settings);
            }
            Err(_) if self.mock_response.is_some() => {}
            Err((key, message)) => {
                let path = at.map_or_else(|| "--model".to_owned(), |a| format!("{a}.{key}"));
                return Err(ConfigError::at(path, message));
            }
        }
        Ok(self)
    }

    fn assemble(a: Assembly<'_>) -> Result<Self, ConfigError> {
        let (provider, upstream_model) = kind::parse_model(&a.model).ok_or_else(|| {
            ConfigError::at(
                &a.model_path,
                format!(
                    "unknown model {:?}: name the provider as provider/model (e.g. openai/{})",
                    a.model, a.model
                ),
            )
        })?;
        let upstream_model = upstream_model.to_owned();
        let prompt_template =
            PromptTemplate::from_params(&a.public_params).map_err(|(key, message)| {
                ConfigError::at(a.model_path.replace(".model", &format!(".{key}")), message)
            })?;
        // Hugging Face speaks chat unless the deployment writes its own prompt (raw TGI).
        let provider = match provider {
            ProviderKind::HuggingFace(f, _) => {
                let mode = a.model_info.get("mode").and_then(Json::as_str);
                let api = HuggingFaceApi::for_deployment(prompt_template.is_some(), mode);
                ProviderKind::HuggingFace(f, api)
            }
            other => other,
        };
        let flavor = provider.flavor();
        let api_base = a
            .api_base
            .filter(|b| !b.is_empty())
            .or_else(|| flavor.and_then(|f| f.base_env.iter().find_map(|v| a.env.get(v))))
            .or_else(|| provider.default_base().map(str::to_owned))
            .unwrap_or_default();
        let api_base = api_base.trim_end_matches('/').to_owned();
        let raw_tgi = matches!(
            provider,
            ProviderKind::HuggingFace(_, HuggingFaceApi::Generate)
        );
        let needs_base =
            raw_tgi || matches!(provider, ProviderKind::OpenAi(_) | ProviderKind::Azure(_));
        if api_base.is_empty() && needs_base && a.mock_response.is_none() {
            let which = if raw_tgi {
                "huggingface deployments on TGI's `generate` API (a prompt template, or `model_info.mode: completion`) need an api_base: the TGI server's URL".to_owned()
            } else {
                format!("{} deployments need an api_base", provider.name())
            };
            return Err(ConfigError::at(
                a.model_path.replace(".model", ".api_base"),
                which,
            ));
        }
        let api_key = a
            .api_key
            .filter(|k| !k.is_empty())
            .or_else(|| flavor.and_then(|f| f.key_env.iter().find_map(|v| a.env.get(v))))
            .map(Secret::new);
        let auth_header = api_key.as_ref().map(|k| match provider {
            ProviderKind::Azure(_) => ("api-key", k.clone()),
            ProviderKind::Anthropic(_) => ("x-api-key", k.clone()),
            ProviderKind::Gemini(_) => ("x-goog-api-key", k.clone()),
            _ => (
                "authorization",
                Secret::new(format!("Bearer {}", k.expose())),
            ),
        });
        let api_version = a.api_version.or_else(|| {
            matches!(provider, ProviderKind::Azure(_)).then(|| {
                a.env
                    .get("AZURE_API_VERSION")
                    .unwrap_or_else(|| DEFAULT_AZURE_API_VERSION.to_owned())
            })
        });
        let public_api_base = public_base(&api_base);
        let mut public_params = a.public_params;
        if let Some(Json::String(shown)) = public_params.get_mut("api_base") {
            *shown = public_base(shown);
        }
        let mut defaults = a.defaults;
        if let Some(t) = a.cli.temperature {
            defaults.entry("temperature").or_insert(Json::from(t));
        }
        if let Some(m) = a.cli.max_tokens {
            defaults.entry("max_tokens").or_insert(Json::from(m));
        }
        let price = configured_price(&public_params, &a.model_info).or_else(|| {
            let base = a.model_info.get("base_model").and_then(Json::as_str);
            match base {
                // `azure/gpt-4o` names its provider; a bare `gpt-4o` is the deployment's own.
                Some(b) => match b.split_once('/') {
                    Some(_) => kind::parse_model(b).and_then(|(k, m)| pricing::lookup(k.name(), m)),
                    None => pricing::lookup(provider.name(), b),
                },
                None => pricing::lookup(provider.name(), &upstream_model),
            }
        });
        let priced_as = match a.model_info.get("base_model").and_then(Json::as_str) {
            Some(b) => match kind::parse_model(b) {
                Some((k, m)) if b.contains('/') => (k.name().to_owned(), m.to_owned()),
                _ => (provider.name().to_owned(), b.to_owned()),
            },
            None => (provider.name().to_owned(), upstream_model.clone()),
        };
        let units = crate::unit_pricing::UnitPrices::configured(&public_params, &a.model_info)
            .or(pricing::unit_prices(&priced_as.0, &priced_as.1).unwrap_or_default());
        let context_window = a
            .model_info
            .get("max_input_tokens")
            .and_then(Json::as_u64)
            .or_else(|| pricing::context_window(provider.name(), &upstream_model));
        let mode = a.model_info.get("mode").and_then(Json::as_str);
        let completions_only = matches!(provider, ProviderKind::TextCompletion(_));
        // Adapters that translate chat take `/completions` as chat too, whatever the model.
        let translated = matches!(
            provider,
            ProviderKind::Anthropic(_)
                | ProviderKind::Ollama(_)
                | ProviderKind::Gemini(_)
                | ProviderKind::Cohere(_)
                | ProviderKind::HuggingFace(..)
                | ProviderKind::VertexAi(_)
                | ProviderKind::Bedrock(_)
        );
        let native_completions = completions_only
            || (!translated
                && (mode == Some("completion") || kind::is_text_completion_model(&upstream_model)));
        Ok(Self {
            index: a.index,
            id: a.id,
            is_wildcard: a.model_name.contains('*'),
            model_name: a.model_name,
            provider,
            upstream_model,
            public_api_base,
            api_base,
            api_key,
            auth_header,
            api_version,
            organization: a.organization,
            headers: a.headers,
            defaults,
            rpm: a.rpm,
            tpm: a.tpm,
            weight: a.weight,
            order: a.order,
            max_parallel_requests: a.max_parallel_requests,
            drop_params: None,
            additional_drop_params: Vec::new(),
            context_window,
            timeout: a.timeout,
            stream_timeout: a.stream_timeout,
            mock_response: a.mock_response,
            native_completions,
            completions_only,
            prompt_template,
            public_params,
            model_info: a.model_info,
            price,
            units,
            priced_as,
            vertex: None,
            aws: None,
        })
    }

    /// The price of a call to this deployment; a wildcard deployment is priced by the model
    /// the request named.
    pub fn price_for(&self, upstream_model: &str) -> Option<Price> {
        if self.is_wildcard && self.price.is_none() {
            return pricing::lookup(self.provider.name(), upstream_model);
        }
        self.price
    }

    /// The per-unit prices of a call to this deployment; a wildcard deployment is priced by the
    /// model the request named (its configured prices still win).
    pub fn units_for(&self, upstream_model: &str) -> crate::unit_pricing::UnitPrices {
        if self.is_wildcard {
            let table = pricing::unit_prices(self.provider.name(), upstream_model);
            return self.units.or(table.unwrap_or_default());
        }
        self.units
    }

    /// The provider and model the price table prices a call to this deployment under.
    pub fn priced_as<'a>(&'a self, upstream_model: &'a str) -> (&'a str, &'a str) {
        if self.is_wildcard {
            return (self.provider.name(), upstream_model);
        }
        (&self.priced_as.0, &self.priced_as.1)
    }

    /// What routing needs to know of this deployment: weight, limits, size and price.
    pub fn profile(&self) -> crate::routing::Profile {
        crate::routing::Profile {
            weight: self.shuffle_weight(),
            rpm: self.rpm,
            tpm: self.tpm,
            max_parallel: self.max_parallel_requests,
            context_window: self.context_window,
            cost_per_token: self
                .price
                .map(|p| p.input_cost_per_token + p.output_cost_per_token),
        }
    }

    /// The share of traffic `simple-shuffle` gives this deployment.
    pub fn shuffle_weight(&self) -> f64 {
        self.weight
            .or(self.rpm.map(|r| r as f64))
            .or(self.tpm.map(|t| t as f64))
            .unwrap_or(1.0)
    }
}

/// `input_cost_per_token` / `output_cost_per_token` from `litellm_params`, else `model_info`.
fn configured_price(params: &Json, info: &Json) -> Option<Price> {
    let get = |key: &str| {
        params.get(key).or_else(|| info.get(key)).and_then(|v| {
            v.as_f64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        })
    };
    let input = get("input_cost_per_token");
    let output = get("output_cost_per_token");
    (input.is_some() || output.is_some()).then(|| Price {
        input_cost_per_token: input.unwrap_or(0.0),
        output_cost_per_token: output.unwrap_or(0.0),
    })
}

/// Azure's `api-version` when neither the config nor `AZURE_API_VERSION` gives one.
pub const DEFAULT_AZURE_API_VERSION: &str = "2024-10-21";

struct Assembly<'a> {
    index: usize,
    id: String,
    model_name: String,
    model: String,
    model_path: String,
    api_base: Option<String>,
    api_key: Option<String>,
    api_version: Option<String>,
    organization: Option<String>,
    headers: Vec<(String, String)>,
    defaults: Map<String, Json>,
    rpm: Option<u64>,
    tpm: Option<u64>,
    weight: Option<f64>,
    order: Option<u32>,
    max_parallel_requests: Option<u32>,
    timeout: Option<Duration>,
    stream_timeout: Option<Duration>,
    mock_response: Option<String>,
    public_params: Json,
    model_info: Json,
    env: &'a Env,
    cli: &'a CliOverrides,
}

fn secs(v: Option<f64>, path: &str) -> Result<Option<Duration>, ConfigError> {
    v.map(|s| {
        Duration::try_from_secs_f64(s)
            .map_err(|_| ConfigError::at(path, "expected a non-negative number of seconds"))
    })
    .transpose()
}

/// A YAML tree as JSON; YAML-only shapes (non-string keys, tags) are flattened to strings.
fn to_json(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Number(n) => n
            .as_u64()
            .map(Json::from)
            .or_else(|| n.as_i64().map(Json::from))
            .or_else(|| n.as_f64().map(Json::from))
            .unwrap_or(Json::Null),
        Value::String(s) => Json::String(s.clone()),
        Value::Sequence(items) => Json::Array(items.iter().map(to_json).collect()),
        Value::Mapping(map) => Json::Object(
            map.iter()
                .map(|(k, v)| {
                    let key = match k {
                        Value::String(s) => s.clone(),
                        other => serde_yaml::to_string(other)
                            .unwrap_or_default()
                            .trim()
                            .to_owned(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
        Value::Tagged(t) => to_json(&t.value),
    }
}

/// An id that is the same across restarts for the same entry and differs between entries that
/// differ in anything, keys included (as LiteLLM's does); a one-way hash reveals no key.
fn stable_id(model_name: &str, params: &impl serde::Serialize) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"llmgate-deployment-id\0");
    hasher.update(model_name.as_bytes());
    hasher.update([0]);
    hasher.update(serde_json::to_vec(params).unwrap_or_default());
    let digest = hasher.finalize();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// `scheme://host[:port]/path` with any user info and query string removed.
fn public_base(base: &str) -> String {
    let no_query = base.split(['?', '#']).next().unwrap_or_default();
    match no_query.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority.rsplit('@').next().unwrap_or(authority);
            format!("{scheme}://{host}{path}")
        }
        None => no_query.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only(yaml: &str) -> Deployment {
        let text = format!("model_list:\n  - model_name: m\n{yaml}");
        let s = crate::config::Settings::from_yaml(&text, &CliOverrides::default()).unwrap();
        s.deployments.into_iter().next().unwrap()
    }

    #[test]
    fn prices_come_from_config_then_base_model_then_the_table() {
        let configured = only("    litellm_params: {model: openai/gpt-4o-mini, api_base: 'http://h', input_cost_per_token: 0.5, output_cost_per_token: 1.5}\n");
        assert_eq!(
            configured.price,
            Some(Price {
                input_cost_per_token: 0.5,
                output_cost_per_token: 1.5
            })
        );
        let azure = only("    litellm_params: {model: azure/my-deployment, api_base: 'http://h'}\n    model_info: {base_model: gpt-4o-mini}\n");
        assert_eq!(azure.price, pricing::lookup("azure", "gpt-4o-mini"));
        assert!(azure.price.is_some());
        let unnamed =
            only("    litellm_params: {model: azure/my-deployment, api_base: 'http://h'}\n");
        assert_eq!(
            unnamed.price, None,
            "an Azure deployment name is not a model name"
        );
        let table = only("    litellm_params: {model: openai/gpt-4o-mini, api_base: 'http://h'}\n");
        assert_eq!(table.price, pricing::lookup("openai", "gpt-4o-mini"));
    }

    #[test]
    fn a_huggingface_template_or_completion_mode_picks_raw_generate_which_needs_an_api_base() {
        let chat =
            only("    litellm_params: {model: huggingface/meta-llama/Llama-3.1-8B-Instruct}\n");
        assert_eq!(
            chat.provider,
            ProviderKind::HuggingFace(&kind::HUGGINGFACE, HuggingFaceApi::Chat)
        );
        assert!(chat.prompt_template.is_none());
        let templated = only("    litellm_params: {model: huggingface/m, api_base: 'http://tgi', bos_token: '<s>', temperature: 0.1}\n");
        assert!(matches!(
            templated.provider,
            ProviderKind::HuggingFace(_, HuggingFaceApi::Generate)
        ));
        assert!(!templated.defaults.contains_key("bos_token"));
        assert_eq!(templated.defaults["temperature"], 0.1);
        assert_eq!(templated.prompt_template.unwrap().bos_token, "<s>");
        let completion = only("    litellm_params: {model: huggingface/bigcode/starcoder, api_base: 'http://tgi'}\n    model_info: {mode: completion}\n");
        assert!(matches!(
            completion.provider,
            ProviderKind::HuggingFace(_, HuggingFaceApi::Generate)
        ));

        let refused = |params: &str| {
            let text = format!("model_list:\n  - model_name: m\n    litellm_params: {params}\n");
            crate::config::Settings::from_yaml(&text, &CliOverrides::default())
                .unwrap_err()
                .to_string()
        };
        let err = refused("{model: huggingface/m, roles: {user: {pre_message: 'U: '}}}");
        assert!(
            err.starts_with("model_list[0].litellm_params.api_base: huggingface deployments on TGI's `generate` API"),
            "{err}"
        );
        let err = refused("{model: huggingface/m, api_base: 'http://tgi', roles: [user]}");
        assert!(
            err.starts_with("model_list[0].litellm_params.roles: "),
            "{err}"
        );
    }

    #[test]
    fn public_base_drops_credentials_and_query() {
        assert_eq!(
            public_base("https://user:pw@example.com:8443/v1?key=secret"),
            "https://example.com:8443/v1"
        );
        assert_eq!(
            public_base("http://127.0.0.1:9/v1"),
            "http://127.0.0.1:9/v1"
        );
    }

    #[test]
    fn ids_are_stable_and_ignore_secrets() {
        let mut a = Map::new();
        a.insert("model".into(), Json::String("openai/x".into()));
        assert_eq!(stable_id("g", &a), stable_id("g", &a));
        assert_ne!(stable_id("g", &a), stable_id("h", &a));
        assert_eq!(stable_id("g", &a).len(), 64);
        let mut keyed = a.clone();
        keyed.insert("api_key".into(), Json::String("sk-1".into()));
        assert_ne!(stable_id("g", &a), stable_id("g", &keyed));
        assert!(!stable_id("g", &keyed).contains("sk-1"));
    }
}
