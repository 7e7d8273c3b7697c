//! Google Vertex AI (`vertex_ai/`, `vertex_ai_beta/`): Gemini models through the Gemini
//! translations, Anthropic's models through the Messages API translations (`rawPredict`),
//! text embeddings through `predict`, all with a service account's OAuth token.

pub mod account;
pub mod token;

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{json, Map, Value as Json};

use super::request::{bad_request, refuse_unsupported, CallInput, PreparedCall};
use super::{anthropic, gemini, Operation, ProviderError};
pub use account::ServiceAccount;

/// The `anthropic_version` Anthropic's models on Vertex take in the body.
pub const ANTHROPIC_VERSION: &str = "vertex-2023-10-16";

/// The region used when neither the deployment nor `VERTEXAI_LOCATION` names one.
pub const DEFAULT_LOCATION: &str = "us-central1";

/// Which publisher's model a Vertex deployment calls, and so which wire format it speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Google's Gemini models: `generateContent`.
    Gemini,
    /// Anthropic's Claude models: the Messages API through `rawPredict`.
    Anthropic,
}

impl Family {
    /// The family of `model`: Anthropic's for `claude*` names, else Google's.
    pub fn of(model: &str) -> Self {
        if model.starts_with("claude") {
            Self::Anthropic
        } else {
            Self::Gemini
        }
    }

    fn publisher(self) -> &'static str {
        match self {
            Self::Gemini => "google",
            Self::Anthropic => "anthropic",
        }
    }
}

/// A Vertex deployment's project, region and service account.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The Google Cloud project.
    pub project: String,
    /// The region (`us-central1`).
    pub location: String,
    /// Who the calls are made as.
    pub account: Arc<ServiceAccount>,
}

impl Settings {
    /// The deployment's settings: `vertex_project`, else `VERTEXAI_PROJECT`, else the key's
    /// `project_id`; `vertex_location`, else `VERTEXAI_LOCATION`, else `us-central1`; the key
    /// from `vertex_credentials` (JSON text or a file path), else `GOOGLE_APPLICATION_CREDENTIALS`.
    pub fn resolve(
        project: Option<String>,
        location: Option<String>,
        credentials: Option<String>,
        env: &crate::config::Env,
    ) -> Result<Self, (&'static str, String)> {
        let source = credentials
            .filter(|c| !c.trim().is_empty())
            .or_else(|| env.get("GOOGLE_APPLICATION_CREDENTIALS"))
            .ok_or((
                "vertex_credentials",
                "vertex_ai deployments need a service account key: vertex_credentials (its JSON or a file path) or GOOGLE_APPLICATION_CREDENTIALS".to_owned(),
            ))?;
        let account = ServiceAccount::load(&source).map_err(|e| ("vertex_credentials", e))?;
        let project = project
            .filter(|p| !p.is_empty())
            .or_else(|| env.get("VERTEXAI_PROJECT"))
            .or_else(|| account.project_id.clone())
            .ok_or((
                "vertex_project",
                "vertex_ai deployments need a project: vertex_project, VERTEXAI_PROJECT or the key's project_id".to_owned(),
            ))?;
        let location = location
            .filter(|l| !l.is_empty())
            .or_else(|| env.get("VERTEXAI_LOCATION"))
            .unwrap_or_else(|| DEFAULT_LOCATION.to_owned());
        Ok(Self {
            project,
            location,
            account: Arc::new(account),
        })
    }

    /// The regional endpoint used when the deployment sets no `api_base`.
    pub fn default_base(&self) -> String {
        format!("https://{}-aiplatform.googleapis.com", self.location)
    }
}

/// The URL of `method` on `model`: `{base}/v1/projects/{project}/locations/{location}/
/// publishers/{publisher}/models/{model}:{method}` (`v1beta1` for `vertex_ai_beta/`); a base
/// that already names the version gets no second one.
pub fn url(
    base: &str,
    beta: bool,
    settings: &Settings,
    family: Family,
    model: &str,
    method: &str,
) -> String {
    let base = base.trim_end_matches('/');
    let version = if beta { "/v1beta1" } else { "/v1" };
    let version = if base.ends_with("/v1") || base.ends_with("/v1beta1") {
        ""
    } else {
        version
    };
    format!(
        "{base}{version}/projects/{}/locations/{}/publishers/{}/models/{model}:{method}",
        settings.project,
        settings.location,
        family.publisher()
    )
}

/// The Vertex call for a chat (completions arrive already as chat) or embedding request.
pub fn call(call: &CallInput<'_>) -> Result<PreparedCall, ProviderError> {
    let CallInput {
        op,
        deployment,
        model,
        fields,
        stream,
        drop,
        ..
    } = *call;
    let settings = deployment.vertex.as_ref().ok_or_else(|| {
        ProviderError::connection(deployment.provider, "the deployment has no vertex settings")
    })?;
    let family = Family::of(model);
    let defaults = &deployment.defaults;
    let (method, request) = match (family, op) {
        (Family::Anthropic, Operation::Embedding) => {
            return Err(bad_request(
                format!("Anthropic's models on vertex_ai serve no embeddings (model={model})"),
                "model",
            ));
        }
        (Family::Gemini, Operation::Embedding) => ("predict", predict_request(fields)),
        (Family::Anthropic, _) => {
            refuse_unsupported(deployment, model, drop, || {
                anthropic::first_unsupported(fields, defaults, drop.always)
            })?;
            let mut request = anthropic::chat_request(model, fields, defaults, stream, drop.always);
            if let Some(body) = request.as_object_mut() {
                body.remove("model");
                body.insert("anthropic_version".into(), json!(ANTHROPIC_VERSION));
            }
            let method = if stream {
                "streamRawPredict"
            } else {
                "rawPredict"
            };
            (method, request)
        }
        (Family::Gemini, _) => {
            refuse_unsupported(deployment, model, drop, || {
                gemini::first_unsupported(fields, defaults, drop.always)
            })?;
            let method = if stream {
                "streamGenerateContent?alt=sse"
            } else {
                "generateContent"
            };
            (method, gemini::chat_request(fields, defaults, drop.always))
        }
    };
    let beta = deployment.provider.name() == "vertex_ai_beta";
    let url = url(&deployment.api_base, beta, settings, family, model, method);
    call.prepared(url, &request, None)
}

/// The `predict` request for an OpenAI embeddings request: one instance per input text, and
/// `dimensions` as `outputDimensionality`.
pub fn predict_request(fields: &Map<String, Json>) -> Json {
    let instances: Vec<Json> = match fields.get("input") {
        Some(Json::String(s)) => vec![json!({"content": s})],
        Some(Json::Array(items)) => items
            .iter()
            .filter_map(Json::as_str)
            .map(|t| json!({"content": t}))
            .collect(),
        _ => Vec::new(),
    };
    let mut request = json!({"instances": instances});
    if let Some(d) = fields.get("dimensions") {
        request["parameters"] = json!({"outputDimensionality": d});
    }
    request
}

/// The OpenAI embeddings list for a `predict` reply, its usage from each prediction's
/// `statistics.token_count`.
pub fn embeddings(body: &[u8], model: &str) -> serde_json::Result<Json> {
    #[derive(Deserialize)]
    struct Predictions {
        predictions: Vec<Prediction>,
    }
    #[derive(Deserialize)]
    struct Prediction {
        embeddings: Embedding,
    }
    #[derive(Deserialize)]
    struct Embedding {
        values: Json,
        #[serde(default)]
        statistics: Option<Statistics>,
    }
    #[derive(Deserialize)]
    struct Statistics {
        #[serde(default)]
        token_count: f64,
    }
    let reply: Predictions = serde_json::from_slice(body)?;
    let mut tokens = 0u64;
    let data: Vec<Json> = reply
        .predictions
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            if let Some(s) = &p.embeddings.statistics {
                // Counts arrive as floats (`7.0`): whole numbers, never negative.
                #[expect(
                    clippy::cast_possible_truncation,
                    clippy::cast_sign_loss,
                    reason = "token counts are small non-negative whole numbers"
                )]
                let count = s.token_count.max(0.0) as u64;
                tokens += count;
            }
            json!({"object": "embedding", "index": i, "embedding": p.embeddings.values})
        })
        .collect();
    Ok(json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }))
}

/// A whole Vertex reply as OpenAI's: Anthropic's or Gemini's translation, by the model.
pub fn openai_reply(op: Operation, model: &str, body: &[u8]) -> serde_json::Result<Vec<u8>> {
    match (Family::of(model), op) {
        (Family::Anthropic, _) => anthropic::reply::chat_completion(body, super::unix_now()),
        (Family::Gemini, Operation::Embedding) => {
            embeddings(body, model).and_then(|v| serde_json::to_vec(&v))
        }
        (Family::Gemini, _) => gemini::reply::chat_completion(body, model, super::unix_now()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::request::{DropPolicy, Reshape};

    fn call_for(
        op: Operation,
        deployment: &crate::config::Deployment,
        model: &str,
        fields: &Map<String, Json>,
        stream: bool,
        drop: &DropPolicy<'_>,
        reshape: Reshape,
    ) -> Result<PreparedCall, ProviderError> {
        call(&CallInput {
            op,
            deployment,
            model,
            fields,
            stream,
            drop,
            reshape,
        })
    }

    fn settings() -> Settings {
        let rsa = openssl::rsa::Rsa::generate(2048).unwrap();
        let pem = String::from_utf8(rsa.private_key_to_pem().unwrap()).unwrap();
        let key = json!({"type": "service_account", "client_email": "a@p.iam.gserviceaccount.com", "private_key": pem, "project_id": "key-project"}).to_string();
        Settings::resolve(None, None, Some(key), &crate::config::Env::default()).unwrap()
    }

    #[test]
    fn urls_name_project_location_publisher_and_method() {
        let mut s = settings();
        assert_eq!(
            (s.project.as_str(), s.location.as_str()),
            ("key-project", DEFAULT_LOCATION)
        );
        assert_eq!(
            s.default_base(),
            "https://us-central1-aiplatform.googleapis.com"
        );
        s.project = "p".into();
        s.location = "europe-west4".into();
        let base = "https://europe-west4-aiplatform.googleapis.com";
        assert_eq!(
            url(base, false, &s, Family::of("gemini-2.5-flash"), "gemini-2.5-flash", "generateContent"),
            "https://europe-west4-aiplatform.googleapis.com/v1/projects/p/locations/europe-west4/publishers/google/models/gemini-2.5-flash:generateContent"
        );
        assert_eq!(
            url("http://h/v1/", false, &s, Family::of("claude-sonnet-4@20250514"), "claude-sonnet-4@20250514", "streamRawPredict"),
            "http://h/v1/projects/p/locations/europe-west4/publishers/anthropic/models/claude-sonnet-4@20250514:streamRawPredict"
        );
        assert_eq!(
            url("http://h", true, &s, Family::Gemini, "m", "predict"),
            "http://h/v1beta1/projects/p/locations/europe-west4/publishers/google/models/m:predict"
        );
    }

    #[test]
    fn the_deployment_project_and_location_win_over_the_key() {
        let rsa = openssl::rsa::Rsa::generate(2048).unwrap();
        let pem = String::from_utf8(rsa.private_key_to_pem().unwrap()).unwrap();
        let key = json!({"client_email": "a@b", "private_key": pem}).to_string();
        let env = crate::config::Env::default();
        let s = Settings::resolve(
            Some("mine".into()),
            Some("asia-east1".into()),
            Some(key.clone()),
            &env,
        )
        .unwrap();
        assert_eq!(
            (s.project.as_str(), s.location.as_str()),
            ("mine", "asia-east1")
        );
        let err = Settings::resolve(None, None, Some(key), &env).unwrap_err();
        assert_eq!(err.0, "vertex_project");
    }

    #[test]
    fn predict_requests_and_replies_translate() {
        let fields: Map<String, Json> =
            serde_json::from_value(json!({"input": ["a", "b"], "dimensions": 8})).unwrap();
        assert_eq!(
            predict_request(&fields),
            json!({"instances": [{"content": "a"}, {"content": "b"}], "parameters": {"outputDimensionality": 8}})
        );
        let reply = json!({"predictions": [
            {"embeddings": {"values": [0.5, -0.25], "statistics": {"token_count": 2.0, "truncated": false}}},
            {"embeddings": {"values": [1.0], "statistics": {"token_count": 3}}}
        ]});
        let got = embeddings(reply.to_string().as_bytes(), "text-embedding-005").unwrap();
        assert_eq!(
            got,
            json!({"object": "list", "data": [
                {"object": "embedding", "index": 0, "embedding": [0.5, -0.25]},
                {"object": "embedding", "index": 1, "embedding": [1.0]}
            ], "model": "text-embedding-005", "usage": {"prompt_tokens": 5, "total_tokens": 5}})
        );
    }

    fn deployment(model: &str, extra: &str) -> crate::config::Deployment {
        let rsa = openssl::rsa::Rsa::generate(2048).unwrap();
        let pem = String::from_utf8(rsa.private_key_to_pem().unwrap()).unwrap();
        let key = json!({"client_email": "a@b", "private_key": pem, "project_id": "kp"});
        let yaml = format!(
            "model_list:\n  - model_name: m\n    litellm_params: {{model: {model}, vertex_credentials: '{key}'{extra}}}\n"
        );
        let settings = crate::config::Settings::from_yaml(&yaml, &Default::default()).unwrap();
        settings.deployments.into_iter().next().unwrap()
    }

    #[test]
    fn anthropic_on_vertex_sends_the_messages_body_without_model_at_the_regional_endpoint() {
        let d = deployment(
            "vertex_ai/claude-sonnet-4@20250514",
            ", vertex_location: europe-west1",
        );
        assert_eq!(d.api_base, "https://europe-west1-aiplatform.googleapis.com");
        let fields: Map<String, Json> =
            serde_json::from_value(json!({"messages": [{"role": "user", "content": "hi"}]}))
                .unwrap();
        let none = DropPolicy::default();
        let model = "claude-sonnet-4@20250514";
        let call = call_for(
            Operation::Chat,
            &d,
            model,
            &fields,
            true,
            &none,
            Reshape::None,
        )
        .unwrap();
        assert_eq!(
            call.url,
            "https://europe-west1-aiplatform.googleapis.com/v1/projects/kp/locations/europe-west1/publishers/anthropic/models/claude-sonnet-4@20250514:streamRawPredict"
        );
        let body: Json = serde_json::from_slice(&call.body).unwrap();
        assert_eq!(
            body,
            json!({
                "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
                "max_tokens": anthropic::DEFAULT_MAX_TOKENS,
                "stream": true,
                "anthropic_version": ANTHROPIC_VERSION,
            })
        );
        let input: Map<String, Json> = serde_json::from_value(json!({"input": "x"})).unwrap();
        let err = call_for(
            Operation::Embedding,
            &d,
            model,
            &input,
            false,
            &none,
            Reshape::None,
        )
        .unwrap_err();
        assert_eq!((err.status, err.param.as_deref()), (400, Some("model")));

        let beta = deployment("vertex_ai_beta/gemini-2.5-pro", ", api_base: 'http://h/'");
        let call = call_for(
            Operation::Chat,
            &beta,
            "gemini-2.5-pro",
            &fields,
            false,
            &none,
            Reshape::None,
        )
        .unwrap();
        assert_eq!(
            call.url,
            "http://h/v1beta1/projects/kp/locations/us-central1/publishers/google/models/gemini-2.5-pro:generateContent"
        );
    }

    #[test]
    fn a_vertex_deployment_without_credentials_is_refused_naming_the_key() {
        let yaml = "model_list:\n  - model_name: m\n    litellm_params: {model: vertex_ai/gemini-2.5-flash, vertex_credentials: '/nonexistent/sa.json'}\n";
        let err = crate::config::Settings::from_yaml(yaml, &Default::default()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("model_list[0].litellm_params.vertex_credentials: cannot read"),
            "{err}"
        );
        let mock = "model_list:\n  - model_name: m\n    litellm_params: {model: vertex_ai/gemini-2.5-flash, mock_response: hi}\n";
        assert!(crate::config::Settings::from_yaml(mock, &Default::default()).is_ok());
    }
}
