//! The outgoing request for one attempt: URL, headers and body for the deployment's provider.

use bytes::Bytes;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value as Json};

use super::{
    anthropic, bedrock, cohere, gemini, huggingface, ollama, translate, vertex_ai, ErrorKind,
    Operation, ProviderError, ProviderKind,
};
use crate::config::Deployment;

/// How the reply must be reshaped for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reshape {
    /// Sent back as the upstream wrote it.
    None,
    /// The client asked `/completions`; the deployment answered chat.
    CompletionFromChat,
    /// The client asked chat; the deployment answered `/completions`.
    ChatFromCompletion,
}

/// Everything needed to send one attempt upstream, but the deployment's own headers.
#[derive(Debug)]
pub struct PreparedCall {
    /// The full URL.
    pub url: String,
    /// The JSON body.
    pub body: Bytes,
    /// How to reshape the reply.
    pub reshape: Reshape,
    /// The prompt's tokens when the gateway wrote the prompt (Hugging Face's `generate`), for
    /// the usage the upstream does not report.
    pub prompt_tokens: Option<u64>,
}

/// What a provider's call builder is given.
#[derive(Clone, Copy)]
pub struct CallInput<'a> {
    /// The operation on the wire (after any reshaping).
    pub op: Operation,
    /// The deployment.
    pub deployment: &'a Deployment,
    /// The upstream model.
    pub model: &'a str,
    /// The client's fields (translated for the wire operation).
    pub fields: &'a Map<String, Json>,
    /// Whether the client asked for a stream.
    pub stream: bool,
    /// What to do with fields the provider cannot take.
    pub drop: &'a DropPolicy<'a>,
    /// How the reply is reshaped.
    pub reshape: Reshape,
}

impl CallInput<'_> {
    /// The call to `url` with `request` as its JSON body.
    pub fn prepared(
        &self,
        url: String,
        request: &impl Serialize,
        prompt_tokens: Option<u64>,
    ) -> Result<PreparedCall, ProviderError> {
        let body = serde_json::to_vec(request).map_err(|e| encode_error(self.deployment, e))?;
        Ok(PreparedCall {
            url,
            body: Bytes::from(body),
            reshape: self.reshape,
            prompt_tokens,
        })
    }
}

/// What to do with request fields a provider cannot take.
#[derive(Debug, Default)]
pub struct DropPolicy<'a> {
    /// `drop_params`: drop them (else the request fails with a 400 naming the first).
    pub unsupported: bool,
    /// `additional_drop_params`: fields never forwarded.
    pub always: &'a [String],
    /// `add_function_to_prompt`: a deployment that cannot take tools gets them described in
    /// the prompt instead.
    pub functions_to_prompt: bool,
}

/// The request body as sent upstream: the client's fields, the deployment's model and defaults.
struct Outgoing<'a> {
    model: &'a str,
    fields: &'a Map<String, Json>,
    defaults: &'a Map<String, Json>,
    force_usage: bool,
    skip: &'a [String],
}

impl Serialize for Outgoing<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("model", self.model)?;
        let skipped = |k: &String| self.skip.iter().any(|s| s == k);
        for (k, v) in self.fields {
            if (self.force_usage && k == "stream_options") || skipped(k) {
                continue;
            }
            m.serialize_entry(k, v)?;
        }
        for (k, v) in self.defaults {
            if !self.fields.contains_key(k) && !skipped(k) {
                m.serialize_entry(k, v)?;
            }
        }
        if self.force_usage {
            let mut options = self
                .fields
                .get("stream_options")
                .and_then(Json::as_object)
                .cloned()
                .unwrap_or_default();
            options.insert("include_usage".into(), Json::Bool(true));
            m.serialize_entry("stream_options", &options)?;
        }
        m.end()
    }
}

/// Joins `base` and `route` unless `base` already ends with the route; a query string on the
/// base stays at the end.
pub(crate) fn join(base: &str, route: &str) -> String {
    let (path, query) = match base.split_once('?') {
        Some((p, q)) => (p.trim_end_matches('/'), Some(q)),
        None => (base, None),
    };
    let mut url = if path.ends_with(route) {
        path.to_owned()
    } else {
        format!("{path}{route}")
    };
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    url
}

/// Builds the attempt for `deployment`; `fields` are the client's (no `model`, no gateway fields).
pub fn prepare(
    op: Operation,
    deployment: &Deployment,
    model: &str,
    fields: &Map<String, Json>,
    stream: bool,
    drop: &DropPolicy<'_>,
) -> Result<PreparedCall, ProviderError> {
    let reshape = match op {
        Operation::Chat if deployment.completions_only => Reshape::ChatFromCompletion,
        Operation::Completion if !deployment.native_completions => Reshape::CompletionFromChat,
        _ => Reshape::None,
    };
    let wire_op = match reshape {
        Reshape::None => op,
        Reshape::ChatFromCompletion => Operation::Completion,
        Reshape::CompletionFromChat => Operation::Chat,
    };
    let prompted;
    let fields = if drop.functions_to_prompt
        && !takes_tools(deployment)
        && (fields.contains_key("tools") || fields.contains_key("functions"))
    {
        prompted = translate::tools_into_prompt(fields);
        &prompted
    } else {
        fields
    };
    let translated;
    let fields = match reshape {
        Reshape::None => fields,
        Reshape::ChatFromCompletion => {
            let unsupported = translate::CHAT_ONLY_PARAMS
                .iter()
                .find(|p| fields.contains_key(**p) && !drop.always.iter().any(|a| a == *p));
            if let (Some(param), false) = (unsupported, drop.unsupported) {
                return Err(unsupported_param(deployment, model, param));
            }
            translated = translate::chat_request_to_completion(fields);
            &translated
        }
        Reshape::CompletionFromChat => {
            translated = translate::completion_request_to_chat(fields);
            &translated
        }
    };
    let call = CallInput {
        op: wire_op,
        deployment,
        model,
        fields,
        stream,
        drop,
        reshape,
    };
    match deployment.provider {
        ProviderKind::Anthropic(_) => return anthropic_call(&call),
        ProviderKind::Gemini(_) => return gemini_call(&call),
        ProviderKind::Cohere(_) => return cohere_call(&call),
        ProviderKind::Bedrock(_) => return bedrock_call(&call),
        ProviderKind::VertexAi(_) => return vertex_ai::call(&call),
        ProviderKind::HuggingFace(_, huggingface::Api::Generate) => return huggingface_call(&call),
        ProviderKind::Ollama(flavor) => {
            let api = ollama::Api::for_call(flavor, wire_op == Operation::Embedding);
            return ollama_call(api, &call);
        }
        _ => {}
    }
    let body = serde_json::to_vec(&Outgoing {
        model,
        fields,
        defaults: &deployment.defaults,
        force_usage: stream && wire_op != Operation::Embedding,
        skip: drop.always,
    })
    .map_err(|e| encode_error(deployment, e))?;
    let url = match deployment.provider {
        ProviderKind::Azure(_) => {
            let path = if deployment.api_base.contains("/openai/deployments/") {
                join(&deployment.api_base, wire_op.route())
            } else {
                let route = format!("/openai/deployments/{model}{}", wire_op.route());
                join(&deployment.api_base, &route)
            };
            match &deployment.api_version {
                Some(v) if path.contains('?') => format!("{path}&api-version={v}"),
                Some(v) => format!("{path}?api-version={v}"),
                None => path,
            }
        }
        ProviderKind::OpenAi(_)
        | ProviderKind::TextCompletion(_)
        | ProviderKind::Anthropic(_)
        | ProviderKind::Ollama(_)
        | ProviderKind::Gemini(_)
        | ProviderKind::Cohere(_)
        | ProviderKind::VertexAi(_)
        | ProviderKind::Bedrock(_)
        | ProviderKind::NotYet(_) => join(&deployment.api_base, wire_op.route()),
        // TGI and Inference Endpoints serve OpenAI's API under `/v1` of the server's root.
        ProviderKind::HuggingFace(..) => {
            let path = deployment.api_base.split('?').next().unwrap_or_default();
            if path.ends_with("/v1") || path.ends_with(wire_op.route()) {
                join(&deployment.api_base, wire_op.route())
            } else {
                join(&deployment.api_base, &format!("/v1{}", wire_op.route()))
            }
        }
    };
    Ok(PreparedCall {
        url,
        body: Bytes::from(body),
        reshape,
        prompt_tokens: None,
    })
}

fn encode_error(deployment: &Deployment, e: serde_json::Error) -> ProviderError {
    ProviderError::connection(
        deployment.provider,
        format!("cannot encode the request: {e}"),
    )
}

/// The Messages API call for a chat request (completions arrive here already as chat).
fn anthropic_call(call: &CallInput<'_>) -> Result<PreparedCall, ProviderError> {
    let CallInput {
        op,
        deployment,
        model,
        fields,
        stream,
        drop,
        ..
    } = *call;
    if op == Operation::Embedding {
        return Err(bad_request(
            format!("anthropic does not serve embeddings (model={model})"),
            "model",
        ));
    }
    refuse_unsupported(deployment, model, drop, || {
        anthropic::first_unsupported(fields, &deployment.defaults, drop.always)
    })?;
    let request = anthropic::chat_request(model, fields, &deployment.defaults, stream, drop.always);
    let route = if deployment.api_base.ends_with("/v1") {
        "/messages"
    } else {
        "/v1/messages"
    };
    call.prepared(join(&deployment.api_base, route), &request, None)
}

/// The Gemini call: `generateContent`, `streamGenerateContent?alt=sse` or
/// `batchEmbedContents` on the model, under `/v1beta` unless the base names a version.
fn gemini_call(call: &CallInput<'_>) -> Result<PreparedCall, ProviderError> {
    let CallInput {
        op,
        deployment,
        model,
        fields,
        stream,
        drop,
        ..
    } = *call;
    let (method, request) = if op == Operation::Embedding {
        ("batchEmbedContents", gemini::embed_request(model, fields))
    } else {
        refuse_unsupported(deployment, model, drop, || {
            gemini::first_unsupported(fields, &deployment.defaults, drop.always)
        })?;
        let method = if stream {
            "streamGenerateContent?alt=sse"
        } else {
            "generateContent"
        };
        (
            method,
            gemini::chat_request(fields, &deployment.defaults, drop.always),
        )
    };
    let base = deployment.api_base.trim_end_matches('/');
    let versioned = base.ends_with("/v1beta") || base.ends_with("/v1");
    let url = format!(
        "{base}{}/models/{model}:{method}",
        if versioned { "" } else { "/v1beta" }
    );
    call.prepared(url, &request, None)
}

/// The Cohere call: `/v2/chat` for chat (completions arrive here already as chat), `/v2/embed`
/// for embeddings; a base that already ends in `/v2` gets no second one.
fn cohere_call(call: &CallInput<'_>) -> Result<PreparedCall, ProviderError> {
    let CallInput {
        op,
        deployment,
        model,
        fields,
        stream,
        drop,
        ..
    } = *call;
    let (route, request) = if op == Operation::Embedding {
        let request = cohere::embed_request(model, fields, &deployment.defaults, drop.always);
        ("/embed", request)
    } else {
        refuse_unsupported(deployment, model, drop, || {
            cohere::first_unsupported(fields, &deployment.defaults, drop.always)
        })?;
        let request =
            cohere::chat_request(model, fields, &deployment.defaults, stream, drop.always);
        ("/chat", request)
    };
    let versioned = deployment
        .api_base
        .split('?')
        .next()
        .is_some_and(|path| path.trim_end_matches('/').ends_with("/v2"));
    let route = if versioned {
        route.to_owned()
    } else {
        format!("/v2{route}")
    };
    call.prepared(join(&deployment.api_base, &route), &request, None)
}

/// The Bedrock call: Converse (`/model/{id}/converse`, `/converse-stream` when streaming) for
/// chat (completions arrive here already as chat), InvokeModel (`/model/{id}/invoke`) for
/// Titan and Cohere embeddings. SigV4 headers are added when it is sent (`client::send`).
fn bedrock_call(call: &CallInput<'_>) -> Result<PreparedCall, ProviderError> {
    let CallInput {
        op,
        deployment,
        model,
        fields,
        stream,
        drop,
        ..
    } = *call;
    let (action, request) = if op == Operation::Embedding {
        let request = bedrock::embed_request(model, fields, &deployment.defaults)
            .map_err(|message| bad_request(format!("BedrockException - {message}"), "input"))?;
        ("invoke", request)
    } else {
        refuse_unsupported(deployment, model, drop, || {
            bedrock::first_unsupported(fields, &deployment.defaults, drop.always)
        })?;
        let action = if stream {
            "converse-stream"
        } else {
            "converse"
        };
        (
            action,
            bedrock::chat_request(fields, &deployment.defaults, drop.always),
        )
    };
    let route = format!("/model/{}/{action}", bedrock::encode_model_id(model));
    call.prepared(join(&deployment.api_base, &route), &request, None)
}

/// TGI's raw `generate` call (`generate_stream` when streaming) at the server's root: chat
/// written into one prompt with the deployment's template, counted for the usage.
fn huggingface_call(call: &CallInput<'_>) -> Result<PreparedCall, ProviderError> {
    let CallInput {
        op,
        deployment,
        model,
        fields,
        stream,
        drop,
        ..
    } = *call;
    if op == Operation::Embedding {
        return Err(bad_request(
            format!("huggingface serves no embeddings through TGI's `generate` API (model={model}); use a deployment without a prompt template"),
            "model",
        ));
    }
    refuse_unsupported(deployment, model, drop, || {
        huggingface::first_unsupported(fields, &deployment.defaults, drop.always)
    })?;
    let messages = fields
        .get("messages")
        .or_else(|| deployment.defaults.get("messages"))
        .and_then(Json::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let prompt = huggingface::prompt::write(deployment.prompt_template.as_ref(), model, messages);
    let request =
        huggingface::generate_request(&prompt, fields, &deployment.defaults, stream, drop.always);
    let root = deployment
        .api_base
        .strip_suffix("/v1")
        .unwrap_or(&deployment.api_base);
    call.prepared(
        join(root, huggingface::Api::generate_route(stream)),
        &request,
        Some(crate::tokens::count(&prompt)),
    )
}

/// The Ollama call for a chat (to `/api/chat` or `/api/generate`) or embedding request.
fn ollama_call(api: ollama::Api, call: &CallInput<'_>) -> Result<PreparedCall, ProviderError> {
    let CallInput {
        deployment,
        model,
        fields,
        stream,
        drop,
        ..
    } = *call;
    refuse_unsupported(deployment, model, drop, || {
        ollama::first_unsupported(api, fields, &deployment.defaults, drop.always)
    })?;
    let request = ollama::request(
        api,
        model,
        fields,
        &deployment.defaults,
        stream,
        drop.always,
    )
    .map_err(|message| {
        let display = deployment.provider.display();
        bad_request(format!("{display}Exception - {message}"), "messages")
    })?;
    call.prepared(join(&deployment.api_base, api.route()), &request, None)
}

/// Whether the deployment's API takes tools (the legacy completions API, Ollama's `generate` and
/// TGI's raw `generate` do not).
fn takes_tools(deployment: &Deployment) -> bool {
    match deployment.provider {
        ProviderKind::TextCompletion(_) => false,
        ProviderKind::Ollama(f) => f.prefix != "ollama",
        ProviderKind::HuggingFace(_, api) => {
            api != crate::providers::kind::HuggingFaceApi::Generate
        }
        _ => !deployment.completions_only,
    }
}

/// LiteLLM's `BadRequestError` for a request this deployment cannot serve, naming `param`.
pub(crate) fn bad_request(message: String, param: &str) -> ProviderError {
    ProviderError {
        status: 400,
        kind: ErrorKind::Status,
        message: format!("litellm.BadRequestError: {message}"),
        upstream_type: Some("invalid_request_error".into()),
        param: Some(param.to_owned()),
        retry_after: None,
    }
}

/// Refuses the first parameter the adapter has no counterpart for (as `found` names it),
/// unless `drop_params` lets it be dropped.
pub(crate) fn refuse_unsupported(
    deployment: &Deployment,
    model: &str,
    drop: &DropPolicy<'_>,
    found: impl FnOnce() -> Option<&'static str>,
) -> Result<(), ProviderError> {
    match found().filter(|_| !drop.unsupported) {
        Some(param) => Err(unsupported_param(deployment, model, param)),
        None => Ok(()),
    }
}

/// LiteLLM's `UnsupportedParamsError`: a 400 naming the parameter and how to drop it.
fn unsupported_param(deployment: &Deployment, model: &str, param: &str) -> ProviderError {
    ProviderError {
        status: 400,
        kind: ErrorKind::Status,
        message: format!(
            "litellm.UnsupportedParamsError: {} does not support parameters: ['{param}'], for model={model}. To drop these, set `drop_params: true` in litellm_settings (or send `drop_params: true` in the request).",
            deployment.provider.name()
        ),
        upstream_type: Some("invalid_request_error".into()),
        param: Some(param.to_owned()),
        retry_after: None,
    }
}

/// The headers `deployment` sends with every call: its key, organization and extra headers.
pub fn deployment_headers(deployment: &Deployment) -> impl Iterator<Item = (&str, &str)> {
    let auth = deployment
        .auth_header
        .as_ref()
        .map(|(name, value)| (*name, value.expose()));
    let org = deployment
        .organization
        .as_deref()
        .filter(|_| matches!(deployment.provider, ProviderKind::OpenAi(_)))
        .map(|org| ("openai-organization", org));
    let version = matches!(deployment.provider, ProviderKind::Anthropic(_))
        .then_some(("anthropic-version", anthropic::API_VERSION));
    auth.into_iter().chain(org).chain(version).chain(
        deployment
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CliOverrides, Settings};

    fn deployment(yaml_params: &str) -> Deployment {
        let text = format!("model_list:\n  - model_name: m\n    litellm_params: {yaml_params}\n");
        let s = Settings::from_yaml(&text, &CliOverrides::default()).unwrap();
        s.deployments.into_iter().next().unwrap()
    }

    fn fields(json: &str) -> Map<String, Json> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn openai_body_keeps_client_fields_and_adds_defaults_it_lacks() {
        let d = deployment("{model: openai/gpt-x, api_base: 'http://h/v1', api_key: k, temperature: 0.2, max_tokens: 5}");
        let call = prepare(
            Operation::Chat,
            &d,
            "gpt-x",
            &fields(r#"{"messages":[],"max_tokens":9,"foo":1}"#),
            false,
            &DropPolicy::default(),
        )
        .unwrap();
        let body: Json = serde_json::from_slice(&call.body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"model":"gpt-x","messages":[],"max_tokens":9,"foo":1,"temperature":0.2})
        );
        assert_eq!(call.url, "http://h/v1/chat/completions");
        assert_eq!(
            deployment_headers(&d).collect::<Vec<_>>(),
            vec![("authorization", "Bearer k")]
        );
    }

    #[test]
    fn streams_ask_the_upstream_for_usage() {
        let d = deployment("{model: openai/gpt-x, api_base: 'http://h/v1'}");
        let call = prepare(
            Operation::Chat,
            &d,
            "gpt-x",
            &fields(r#"{"stream":true,"stream_options":{"include_usage":false,"x":1}}"#),
            true,
            &DropPolicy::default(),
        )
        .unwrap();
        let body: Json = serde_json::from_slice(&call.body).unwrap();
        assert_eq!(
            body["stream_options"],
            serde_json::json!({"include_usage":true,"x":1})
        );
    }

    #[test]
    fn azure_uses_deployment_paths_api_version_and_api_key() {
        let d = deployment("{model: azure/my-dep, api_base: 'https://r.openai.azure.com/', api_key: k, api_version: '2024-06-01'}");
        let call = prepare(
            Operation::Embedding,
            &d,
            "my-dep",
            &Map::new(),
            false,
            &DropPolicy::default(),
        )
        .unwrap();
        assert_eq!(call.url, "https://r.openai.azure.com/openai/deployments/my-dep/embeddings?api-version=2024-06-01");
        assert_eq!(
            deployment_headers(&d).collect::<Vec<_>>(),
            vec![("api-key", "k")]
        );
    }

    #[test]
    fn huggingface_speaks_chat_under_v1_unless_a_template_makes_it_raw_generate() {
        let model = "meta-llama/Llama-3.1-8B-Instruct";
        let f = fields(r#"{"messages":[{"role":"user","content":"hi"}],"max_tokens":5}"#);
        let none = DropPolicy::default();
        let endpoint = deployment(&format!(
            "{{model: huggingface/{model}, api_base: 'https://ep.endpoints.huggingface.cloud/', api_key: hf}}"
        ));
        let call = prepare(Operation::Chat, &endpoint, model, &f, false, &none).unwrap();
        assert_eq!(
            call.url,
            "https://ep.endpoints.huggingface.cloud/v1/chat/completions"
        );
        let body: Json = serde_json::from_slice(&call.body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5})
        );
        assert_eq!(call.prompt_tokens, None);
        assert_eq!(
            deployment_headers(&endpoint).collect::<Vec<_>>(),
            vec![("authorization", "Bearer hf")]
        );
        let router = deployment(&format!("{{model: huggingface/{model}}}"));
        let call = prepare(Operation::Chat, &router, model, &f, false, &none).unwrap();
        assert_eq!(
            call.url,
            "https://router.huggingface.co/v1/chat/completions"
        );

        let raw = deployment(
            "{model: huggingface/my-org/m, api_base: 'http://tgi:8080/v1', roles: {user: {pre_message: 'U: ', post_message: ' | '}}, final_prompt_value: 'A: '}",
        );
        let call = prepare(Operation::Chat, &raw, "my-org/m", &f, true, &none).unwrap();
        assert_eq!(call.url, "http://tgi:8080/generate_stream");
        let body: Json = serde_json::from_slice(&call.body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "inputs": "U: hi | A: ",
                "parameters": {"details": true, "return_full_text": false, "max_new_tokens": 5},
                "stream": true,
            })
        );
        assert_eq!(
            call.prompt_tokens,
            Some(crate::tokens::count("U: hi | A: "))
        );
        let call = prepare(Operation::Chat, &raw, "my-org/m", &f, false, &none).unwrap();
        assert_eq!(call.url, "http://tgi:8080/generate");
        let input = fields(r#"{"input":"hi"}"#);
        let err =
            prepare(Operation::Embedding, &raw, "my-org/m", &input, false, &none).unwrap_err();
        assert_eq!((err.status, err.param.as_deref()), (400, Some("model")));
        let tools = fields(r#"{"messages":[],"tools":[]}"#);
        let err = prepare(Operation::Chat, &raw, "my-org/m", &tools, false, &none).unwrap_err();
        assert_eq!((err.status, err.param.as_deref()), (400, Some("tools")));
    }

    #[test]
    fn a_query_on_the_base_stays_at_the_end() {
        assert_eq!(
            join("http://h/v1?x=1", "/embeddings"),
            "http://h/v1/embeddings?x=1"
        );
    }

    #[test]
    fn a_base_that_already_ends_with_the_route_is_used_as_is() {
        let d = deployment("{model: openai/x, api_base: 'http://h/v1/chat/completions'}");
        let call = prepare(
            Operation::Chat,
            &d,
            "x",
            &Map::new(),
            false,
            &DropPolicy::default(),
        )
        .unwrap();
        assert_eq!(call.url, "http://h/v1/chat/completions");
    }

    #[test]
    fn ollama_chat_goes_to_api_chat_with_a_bearer_key_and_ollama_to_api_generate() {
        let chat =
            deployment("{model: ollama_chat/llama3.1, api_base: 'http://h:11434/', api_key: k}");
        let f = fields(r#"{"messages":[{"role":"user","content":"hi"}],"max_tokens":5}"#);
        let call = prepare(
            Operation::Chat,
            &chat,
            "llama3.1",
            &f,
            false,
            &DropPolicy::default(),
        )
        .unwrap();
        assert_eq!(call.url, "http://h:11434/api/chat");
        let body: Json = serde_json::from_slice(&call.body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"model":"llama3.1","messages":[{"role":"user","content":"hi"}],"stream":false,"options":{"num_predict":5}})
        );
        assert_eq!(
            deployment_headers(&chat).collect::<Vec<_>>(),
            vec![("authorization", "Bearer k")]
        );

        let generate = deployment("{model: ollama/llama3.1:8b-instruct}");
        assert_eq!(generate.api_base, "http://localhost:11434");
        assert!(generate.auth_header.is_none());
        let call = prepare(
            Operation::Completion,
            &generate,
            "llama3.1",
            &fields(r#"{"prompt":"hi"}"#),
            true,
            &DropPolicy::default(),
        )
        .unwrap();
        assert_eq!(call.url, "http://localhost:11434/api/generate");
        assert_eq!(call.reshape, Reshape::CompletionFromChat);
        let body: Json = serde_json::from_slice(&call.body).unwrap();
        assert_eq!(body["prompt"], "### User:\nhi\n\n");
        let call = prepare(
            Operation::Embedding,
            &generate,
            "llama3.1",
            &fields(r#"{"input":"hi"}"#),
            false,
            &DropPolicy::default(),
        )
        .unwrap();
        assert_eq!(call.url, "http://localhost:11434/api/embed");
    }

    #[test]
    fn completions_on_a_chat_deployment_become_chat() {
        let d = deployment("{model: openai/gpt-x, api_base: 'http://h/v1'}");
        let call = prepare(
            Operation::Completion,
            &d,
            "gpt-x",
            &fields(r#"{"prompt":"hi"}"#),
            false,
            &DropPolicy::default(),
        )
        .unwrap();
        assert_eq!(call.reshape, Reshape::CompletionFromChat);
        assert_eq!(call.url, "http://h/v1/chat/completions");
        let body: Json = serde_json::from_slice(&call.body).unwrap();
        assert_eq!(
            body["messages"],
            serde_json::json!([{"role":"user","content":"hi"}])
        );
    }

    #[test]
    fn cohere_goes_to_v2_chat_and_embed_with_a_bearer_key() {
        let d = deployment("{model: cohere_chat/command-r-plus, api_key: k}");
        assert_eq!(d.api_base, "https://api.cohere.com");
        let chat = fields(r#"{"messages":[{"role":"user","content":"hi"}]}"#);
        let none = DropPolicy::default();
        let call = prepare(Operation::Chat, &d, "command-r-plus", &chat, true, &none).unwrap();
        assert_eq!(call.url, "https://api.cohere.com/v2/chat");
        let body: Json = serde_json::from_slice(&call.body).unwrap();
        assert_eq!(
            (&body["model"], &body["stream"]),
            (&"command-r-plus".into(), &true.into())
        );
        assert_eq!(
            deployment_headers(&d).collect::<Vec<_>>(),
            vec![("authorization", "Bearer k")]
        );
        let completion = fields(r#"{"prompt":"hi"}"#);
        let call = prepare(Operation::Completion, &d, "c", &completion, false, &none).unwrap();
        assert_eq!(call.reshape, Reshape::CompletionFromChat);

        let versioned = deployment("{model: cohere/embed-english-v3.0, api_base: 'http://h/v2/'}");
        let input = fields(r#"{"input":["a"]}"#);
        let call = prepare(Operation::Embedding, &versioned, "e", &input, false, &none).unwrap();
        assert_eq!(call.url, "http://h/v2/embed");

        let n = fields(r#"{"messages":[],"n":2}"#);
        let err = prepare(Operation::Chat, &d, "command-r-plus", &n, false, &none).unwrap_err();
        assert_eq!((err.status, err.param.as_deref()), (400, Some("n")));
    }
}

#[cfg(test)]
mod drop_tests {
    use super::*;
    use crate::config::{CliOverrides, Settings};

    fn text_deployment() -> Deployment {
        let text = "model_list:\n  - model_name: m\n    litellm_params: {model: text-completion-openai/i, api_base: 'http://h/v1'}\n";
        Settings::from_yaml(text, &CliOverrides::default())
            .unwrap()
            .deployments
            .remove(0)
    }

    #[test]
    fn tools_on_a_completions_only_deployment_fail_unless_dropped() {
        let d = text_deployment();
        let f: Map<String, Json> =
            serde_json::from_str(r#"{"messages":[{"role":"user","content":"x"}],"tools":[]}"#)
                .unwrap();
        let err = prepare(Operation::Chat, &d, "i", &f, false, &DropPolicy::default()).unwrap_err();
        assert_eq!((err.status, err.param.as_deref()), (400, Some("tools")));
        let dropping = DropPolicy {
            unsupported: true,
            ..DropPolicy::default()
        };
        let call = prepare(Operation::Chat, &d, "i", &f, false, &dropping).unwrap();
        assert!(!String::from_utf8_lossy(&call.body).contains("tools"));
    }

    #[test]
    fn additional_drop_params_are_never_sent() {
        let d = text_deployment();
        let f: Map<String, Json> =
            serde_json::from_str(r#"{"prompt":"x","user":"u","seed":1}"#).unwrap();
        let always = vec!["user".to_owned()];
        let call = prepare(
            Operation::Completion,
            &d,
            "i",
            &f,
            false,
            &DropPolicy {
                always: &always,
                ..DropPolicy::default()
            },
        )
        .unwrap();
        let body: Json = serde_json::from_slice(&call.body).unwrap();
        assert_eq!(body, serde_json::json!({"model":"i","prompt":"x","seed":1}));
    }
}
