//! A deployment that speaks the Responses API (OpenAI, Azure, or any declaring it in
//! `model_info.supported_endpoints`): the request passed through with the deployment's model,
//! the reply relayed with its id made routable, and the stream relayed event by event, its usage
//! read from `response.completed` (which goes out last, with the call's cost added).

use std::borrow::Cow;
use std::collections::VecDeque;

use bytes::Bytes;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde::Deserialize;
use serde_json::{json, Map, Value as Json};

use super::ids::Scope;
use crate::config::Deployment;
use crate::providers::request::{PreparedCall, Reshape};
use crate::providers::stream::{Passthrough, Seen, Step};
use crate::providers::{ProviderError, ProviderKind, Usage};

/// Whether `deployment` is called with the Responses API itself: OpenAI's own API and Azure
/// have it; any other OpenAI-compatible server may declare it in
/// `model_info.supported_endpoints` (as in LiteLLM).
pub fn serves_responses(deployment: &Deployment) -> bool {
    match deployment.provider {
        ProviderKind::Azure(_) => true,
        ProviderKind::OpenAi(flavor) if flavor.prefix == "openai" => true,
        ProviderKind::OpenAi(_) | ProviderKind::HuggingFace(..) => deployment.model_info
            ["supported_endpoints"]
            .as_array()
            .is_some_and(|e| {
                e.iter()
                    .any(|v| matches!(v.as_str(), Some("/v1/responses" | "/responses")))
            }),
        _ => false,
    }
}

/// The URL of the Responses API at `deployment`, with `path` after it (`""`, `/{id}`,
/// `/{id}/input_items`) and the client's `query`.
///
/// OpenAI: `{api_base}/responses`. Azure: `{endpoint}/openai/responses?api-version=...`, or
/// under the v1 API (`api_base` ending in `/openai/v1`) `{api_base}/responses`, which takes no
/// dated `api-version`.
pub fn url(deployment: &Deployment, path: &str, query: &str) -> String {
    let (base, base_query) = match deployment.api_base.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (deployment.api_base.as_str(), None),
    };
    let base = base.trim_end_matches('/');
    let mut params: Vec<String> = base_query
        .into_iter()
        .filter(|q| !q.is_empty())
        .map(str::to_owned)
        .collect();
    let root = match deployment.provider {
        ProviderKind::Azure(_) => {
            // A chat-style base names a deployment: the Responses API is at the resource.
            let endpoint = base
                .find("/openai/deployments/")
                .map_or(base, |at| &base[..at]);
            let v1 = endpoint.ends_with("/openai/v1");
            if let Some(v) = &deployment.api_version {
                if (!v1 || matches!(v.as_str(), "preview" | "latest"))
                    && !params.iter().any(|p| p.starts_with("api-version="))
                {
                    params.push(format!("api-version={v}"));
                }
            }
            if endpoint.ends_with("/responses") {
                endpoint.to_owned()
            } else if v1 || endpoint.ends_with("/openai") {
                format!("{endpoint}/responses")
            } else {
                format!("{endpoint}/openai/responses")
            }
        }
        _ if base.ends_with("/responses") => base.to_owned(),
        _ => format!("{base}/responses"),
    };
    if !query.is_empty() {
        params.push(query.to_owned());
    }
    let mut url = format!("{root}{path}");
    if !params.is_empty() {
        url.push('?');
        url.push_str(&params.join("&"));
    }
    url
}

/// The body sent upstream: the client's fields with the deployment's model, and the
/// deployment's default parameters in the Responses API's names.
struct Outgoing<'a> {
    model: &'a str,
    fields: &'a Map<String, Json>,
    defaults: &'a Map<String, Json>,
    skip: &'a [String],
}

/// A deployment default's name in the Responses API (`max_tokens` is `max_output_tokens`);
/// `None` for chat-only parameters it would refuse.
fn default_name(key: &str) -> Option<&str> {
    match key {
        "max_tokens" | "max_completion_tokens" => Some("max_output_tokens"),
        "stream_options" | "n" | "stop" | "response_format" | "presence_penalty"
        | "frequency_penalty" | "logit_bias" | "logprobs" | "seed" => None,
        other => Some(other),
    }
}

impl Serialize for Outgoing<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("model", self.model)?;
        let skipped = |k: &str| self.skip.iter().any(|s| s == k);
        for (k, v) in self.fields {
            if k != "model" && !skipped(k) {
                m.serialize_entry(k, v)?;
            }
        }
        for (k, v) in self.defaults {
            match default_name(k) {
                Some(name) if !self.fields.contains_key(name) && !skipped(k) => {
                    m.serialize_entry(name, v)?;
                }
                _ => {}
            }
        }
        m.end()
    }
}

/// The call that creates the response at `deployment` (model `model`), `fields` as sent.
pub fn call(
    deployment: &Deployment,
    model: &str,
    fields: &Map<String, Json>,
    skip: &[String],
) -> Result<PreparedCall, ProviderError> {
    let body = serde_json::to_vec(&Outgoing {
        model,
        fields,
        defaults: &deployment.defaults,
        skip,
    })
    .map_err(|e| {
        ProviderError::connection(
            deployment.provider,
            format!("cannot encode the request: {e}"),
        )
    })?;
    Ok(PreparedCall {
        url: url(deployment, "", ""),
        body: Bytes::from(body),
        reshape: Reshape::None,
        prompt_tokens: None,
    })
}

/// A Response's `usage` as the gateway counts it.
pub fn usage_of(usage: &Json) -> Option<Usage> {
    let input = usage.get("input_tokens")?.as_u64()?;
    let output = usage["output_tokens"].as_u64().unwrap_or(0);
    let mut u = Usage::new(input, output);
    if let Some(total) = usage["total_tokens"].as_u64() {
        u.total_tokens = total;
    }
    Some(u)
}

/// A whole Response from the upstream, its id made routable (`scope`); and its usage.
pub fn reply(body: &[u8], scope: &Scope) -> serde_json::Result<(Bytes, Option<Usage>)> {
    let mut response: Json = serde_json::from_slice(body)?;
    rewrite_id(&mut response, scope);
    let usage = usage_of(&response["usage"]);
    Ok((Bytes::from(serde_json::to_vec(&response)?), usage))
}

/// Replaces a Response's (or a deletion's) upstream `id` with the routable one.
pub fn rewrite_id(response: &mut Json, scope: &Scope) {
    if let Some(id) = response.get("id").and_then(Json::as_str) {
        if super::ids::decode(id).is_none() {
            let encoded = scope.encode(id);
            response["id"] = Json::from(encoded);
        }
    }
}

#[derive(Deserialize)]
struct EventView<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default)]
    sequence_number: Option<u64>,
    #[serde(borrow, default)]
    delta: Option<Cow<'a, str>>,
}

/// Reads a Responses API stream on its way to the client.
pub struct NativeEvents {
    scope: Scope,
    /// The `event:` name waiting for its `data:`.
    event: Option<String>,
    /// The last sequence number seen.
    seq: u64,
    /// The final event, sent last (with the cost) once the spend is durable.
    held: Option<(String, Json)>,
    /// The upstream's own failure event went out.
    failed: bool,
}

impl NativeEvents {
    /// A reader whose responses' ids are made routable with `scope`.
    pub fn new(scope: Scope) -> Self {
        Self {
            scope,
            event: None,
            seq: 0,
            held: None,
            failed: false,
        }
    }

    fn event(kind: &str, data: &[u8]) -> Bytes {
        let mut e = Vec::with_capacity(data.len() + kind.len() + 16);
        e.extend_from_slice(b"event: ");
        e.extend_from_slice(kind.as_bytes());
        e.extend_from_slice(b"\ndata: ");
        e.extend_from_slice(data);
        e.extend_from_slice(b"\n\n");
        Bytes::from(e)
    }

    /// A lifecycle event with its response's id rewritten.
    fn rewritten(&self, data: &[u8]) -> Option<Json> {
        let mut value: Json = serde_json::from_slice(data).ok()?;
        rewrite_id(&mut value["response"], &self.scope);
        Some(value)
    }

    fn dispatch(&mut self, data: &[u8], out: &mut VecDeque<Bytes>, text: &mut String) -> Seen {
        let name = self.event.take();
        let Ok(view) = serde_json::from_slice::<EventView<'_>>(data) else {
            // Not an event we read: relayed untouched.
            out.push_back(Self::event(name.as_deref().unwrap_or("message"), data));
            return Seen::more();
        };
        if let Some(n) = view.sequence_number {
            self.seq = self.seq.max(n);
        }
        let kind = view.kind.as_ref();
        let mut seen = Seen::more();
        match kind {
            "response.output_text.delta" => {
                if let Some(delta) = &view.delta {
                    text.push_str(delta);
                }
                seen.output = true;
            }
            "response.function_call_arguments.delta"
            | "response.reasoning_summary_text.delta"
            | "response.reasoning_text.delta"
            | "response.refusal.delta" => seen.output = true,
            "response.created" | "response.in_progress" | "response.queued" => {
                if let Some(value) = self.rewritten(data) {
                    out.push_back(Self::event(kind, value.to_string().as_bytes()));
                    return seen;
                }
            }
            "response.completed" | "response.incomplete" => {
                if let Some(value) = self.rewritten(data) {
                    seen.usage = usage_of(&value["response"]["usage"]);
                    self.held = Some((kind.to_owned(), value));
                    seen.step = Step::Done;
                    return seen;
                }
            }
            "response.failed" | "error" => {
                let value = if kind == "error" {
                    serde_json::from_slice::<Json>(data).ok()
                } else {
                    self.rewritten(data)
                };
                let error = value.as_ref().map(|v| {
                    if kind == "error" {
                        v.clone()
                    } else {
                        v["response"]["error"].clone()
                    }
                });
                let field = |k: &str| {
                    error
                        .as_ref()
                        .and_then(|e| e[k].as_str())
                        .map(str::to_owned)
                };
                seen.step = Step::Failed {
                    kind: field("code").unwrap_or_else(|| "api_error".into()),
                    message: field("message").unwrap_or_else(|| "the response failed".into()),
                };
                self.failed = true;
                let data = value.map_or_else(|| data.to_vec(), |v| v.to_string().into_bytes());
                out.push_back(Self::event(kind, &data));
                return seen;
            }
            _ => {}
        }
        out.push_back(Self::event(name.as_deref().unwrap_or(kind), data));
        seen
    }
}

impl Passthrough for NativeEvents {
    fn line(&mut self, line: &[u8], out: &mut VecDeque<Bytes>, text: &mut String) -> Seen {
        if let Some(name) = line.strip_prefix(b"event:") {
            self.event = Some(String::from_utf8_lossy(name.trim_ascii()).into_owned());
            return Seen::more();
        }
        let Some(data) = line.strip_prefix(b"data:") else {
            // Blank separators (written anew after each event), comments, `id:`, `retry:`.
            return Seen::more();
        };
        let data = data.trim_ascii();
        if data == b"[DONE]" || data.is_empty() {
            return Seen::more();
        }
        self.dispatch(data, out, text)
    }

    fn ending(&mut self, cost: f64) -> Bytes {
        let Some((kind, mut value)) = self.held.take() else {
            return Bytes::new();
        };
        if value["response"]["usage"].is_object() {
            value["response"]["usage"]["cost"] = json!(cost);
        }
        Self::event(&kind, value.to_string().as_bytes())
    }

    fn error(&mut self, body: &Json) -> Bytes {
        if self.failed {
            return Bytes::new();
        }
        self.failed = true;
        self.seq += 1;
        let e = &body["error"];
        let data = json!({
            "type": "error",
            "sequence_number": self.seq,
            "code": e["type"],
            "message": e["message"],
            "param": e["param"],
        });
        Self::event("error", data.to_string().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CliOverrides, Settings};

    fn deployment(params: &str, info: &str) -> Deployment {
        let text = format!(
            "model_list:\n  - model_name: m\n    litellm_params: {params}\n    model_info: {info}\n"
        );
        let s = Settings::from_yaml(&text, &CliOverrides::default()).unwrap();
        s.deployments.into_iter().next().unwrap()
    }

    fn scope() -> Scope {
        Scope {
            provider: "openai",
            deployment_id: "d1".into(),
            owner: None,
        }
    }

    #[test]
    fn openai_and_azure_serve_responses_and_others_only_when_declared() {
        let openai = deployment("{model: openai/gpt-4o, api_key: k}", "{}");
        let azure = deployment(
            "{model: azure/dep, api_base: 'https://r.openai.azure.com', api_key: k, api_version: 2025-03-01-preview}",
            "{}",
        );
        let groq = deployment("{model: groq/llama, api_key: k}", "{}");
        let declared = deployment(
            "{model: hosted_vllm/m, api_base: 'http://h/v1'}",
            "{supported_endpoints: ['/v1/chat/completions', '/v1/responses']}",
        );
        let claude = deployment("{model: anthropic/claude-x, api_key: k}", "{}");
        assert!(serves_responses(&openai));
        assert!(serves_responses(&azure));
        assert!(!serves_responses(&groq));
        assert!(serves_responses(&declared));
        assert!(!serves_responses(&claude));
    }

    #[test]
    fn urls_follow_each_provider() {
        let openai = deployment(
            "{model: openai/gpt-4o, api_base: 'http://h/v1', api_key: k}",
            "{}",
        );
        assert_eq!(url(&openai, "", ""), "http://h/v1/responses");
        assert_eq!(
            url(&openai, "/resp_1/input_items", "limit=5"),
            "http://h/v1/responses/resp_1/input_items?limit=5"
        );
        let azure = deployment(
            "{model: azure/dep, api_base: 'https://r.openai.azure.com/', api_key: k, api_version: 2025-03-01-preview}",
            "{}",
        );
        assert_eq!(
            url(&azure, "", ""),
            "https://r.openai.azure.com/openai/responses?api-version=2025-03-01-preview"
        );
        assert_eq!(
            url(&azure, "/resp_1", ""),
            "https://r.openai.azure.com/openai/responses/resp_1?api-version=2025-03-01-preview"
        );
        let chat_style = deployment(
            "{model: azure/dep, api_base: 'https://r.openai.azure.com/openai/deployments/dep', api_key: k, api_version: 2025-04-01-preview}",
            "{}",
        );
        assert_eq!(
            url(&chat_style, "", ""),
            "https://r.openai.azure.com/openai/responses?api-version=2025-04-01-preview"
        );
        let v1 = deployment(
            "{model: azure/dep, api_base: 'https://r.openai.azure.com/openai/v1', api_key: k, api_version: 2024-10-21}",
            "{}",
        );
        assert_eq!(
            url(&v1, "", ""),
            "https://r.openai.azure.com/openai/v1/responses"
        );
    }

    #[test]
    fn the_body_carries_the_deployment_model_and_its_defaults_in_responses_names() {
        let d = deployment(
            "{model: openai/gpt-4o, api_key: k, max_tokens: 100, temperature: 0.3, stop: ['x']}",
            "{}",
        );
        let fields = json!({"model": "public", "input": "hi", "temperature": 0.9})
            .as_object()
            .unwrap()
            .clone();
        let c = call(&d, "gpt-4o", &fields, &[]).unwrap();
        let body: Json = serde_json::from_slice(&c.body).unwrap();
        assert_eq!(
            body,
            json!({"model": "gpt-4o", "input": "hi", "temperature": 0.9, "max_output_tokens": 100})
        );
    }

    #[test]
    fn a_reply_gets_a_routable_id_and_its_usage_is_read() {
        let body = br#"{"id":"resp_up","object":"response","usage":{"input_tokens":9,"output_tokens":4,"total_tokens":13}}"#;
        let (out, usage) = reply(body, &scope()).unwrap();
        let out: Json = serde_json::from_slice(&out).unwrap();
        let decoded = super::super::ids::decode(out["id"].as_str().unwrap()).unwrap();
        assert_eq!(decoded.upstream_id, "resp_up");
        assert_eq!(usage, Some(Usage::new(9, 4)));
    }

    #[test]
    fn the_recorded_stream_is_relayed_with_ids_rewritten_and_the_completion_held() {
        let sse = include_str!("../../tests/fixtures/openai/responses_stream.sse");
        let mut events = NativeEvents::new(scope());
        let mut out = VecDeque::new();
        let mut text = String::new();
        let mut steps = Vec::new();
        let mut usage = None;
        for line in sse.lines() {
            let seen = events.line(line.as_bytes(), &mut out, &mut text);
            usage = seen.usage.or(usage);
            if seen.step != Step::More {
                steps.push(seen.step);
            }
        }
        assert_eq!(steps, [Step::Done]);
        assert_eq!(usage, Some(Usage::new(37, 11)));
        assert_eq!(text, "Hi there!");
        let relayed: String = out
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect();
        assert!(
            !relayed.contains("response.completed"),
            "held until the spend is durable"
        );
        assert!(
            !relayed.contains("\"resp_67ccf"),
            "ids rewritten: {relayed}"
        );
        let last = String::from_utf8(events.ending(0.25).to_vec()).unwrap();
        assert!(last.starts_with("event: response.completed\ndata: "));
        let data: Json =
            serde_json::from_str(last.lines().nth(1).unwrap().strip_prefix("data: ").unwrap())
                .unwrap();
        assert_eq!(data["response"]["usage"]["cost"], 0.25);
        assert_eq!(
            super::super::ids::decode(data["response"]["id"].as_str().unwrap())
                .unwrap()
                .deployment_id,
            "d1"
        );
        // The relay's own errors come after the last upstream sequence number.
        let e = String::from_utf8(
            events
                .error(&json!({"error": {"message": "m", "type": "timeout", "param": null, "code": "408"}}))
                .to_vec(),
        )
        .unwrap();
        assert!(e.contains("\"type\":\"error\""), "{e}");
    }

    #[test]
    fn an_upstream_failure_event_is_relayed_and_fails_the_stream_once() {
        let mut events = NativeEvents::new(scope());
        let mut out = VecDeque::new();
        let mut text = String::new();
        events.line(b"event: response.failed", &mut out, &mut text);
        let seen = events.line(
            br#"data: {"type":"response.failed","sequence_number":3,"response":{"id":"resp_x","status":"failed","error":{"code":"server_error","message":"boom"}}}"#,
            &mut out,
            &mut text,
        );
        assert_eq!(
            seen.step,
            Step::Failed {
                kind: "server_error".into(),
                message: "boom".into()
            }
        );
        assert_eq!(out.len(), 1);
        assert!(events.error(&json!({"error": {}})).is_empty());
    }
}
