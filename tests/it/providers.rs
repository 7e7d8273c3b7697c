//! Providers: every model prefix reaches its route with its own key variable and auth header,
//! and a deployment's `litellm_params` (base, key, organization, headers, defaults) shape the call.

use base64::Engine as _;
use serde_json::{json, Value};

use crate::support::gateway::sse_events;
use crate::support::{chat_body, Gateway, MockUpstream};

/// A config with one deployment, `some-model`, of `model`; `params` are extra `litellm_params`
/// lines (raw YAML values) and `env` the `environment_variables` section.
fn config(model: &str, params: &[(&str, &str)], env: &[(&str, &str)]) -> String {
    let mut yaml = String::new();
    if !env.is_empty() {
        yaml.push_str("environment_variables:\n");
        for (name, value) in env {
            yaml.push_str(&format!("  {name}: \"{value}\"\n"));
        }
    }
    yaml.push_str("model_list:\n  - model_name: some-model\n    litellm_params:\n");
    yaml.push_str(&format!("      model: \"{model}\"\n"));
    for (key, value) in params {
        yaml.push_str(&format!("      {key}: {value}\n"));
    }
    yaml
}

/// A YAML string scalar.
fn quoted(s: &str) -> String {
    format!("\"{s}\"")
}

/// Checks that `prefix/some-model`, with its key only in `key_var`, calls the mock's
/// `/v1/chat/completions` with `Authorization: Bearer <key>` and the model name without prefix.
async fn openai_compatible_provider_serves_chat(prefix: &str, key_var: &str) {
    let mock = MockUpstream::start().await;
    let key = format!("sk-{prefix}-env-value");
    let yaml = config(
        &format!("{prefix}/some-model"),
        &[("api_base", &quoted(&mock.v1()))],
        &[(key_var, &key)],
    );
    let gw = Gateway::start(&yaml).await;

    let reply = gw
        .post("/v1/chat/completions", None, &chat_body("some-model"))
        .await;

    assert_eq!(reply.status, 200, "{prefix}: {}", reply.text);
    let body = reply.json();
    assert_eq!(body["object"], "chat.completion", "{prefix}: {body}");
    assert_eq!(
        body["choices"][0]["message"]["content"], "mock says hi",
        "{prefix}"
    );
    let seen = mock.last();
    assert_eq!(seen.path, "/v1/chat/completions", "{prefix}");
    assert_eq!(
        seen.headers.get("authorization").map(String::as_str),
        Some(format!("Bearer {key}").as_str()),
        "{prefix}: the key from {key_var}"
    );
    assert_eq!(seen.body["model"], "some-model", "{prefix}");
    assert_eq!(
        seen.body["messages"][0]["content"], "hello there",
        "{prefix}"
    );
}

macro_rules! openai_compatible {
    ($($test:ident => ($prefix:literal, $key_var:literal);)*) => {
        $(
            #[actix_rt::test]
            async fn $test() {
                openai_compatible_provider_serves_chat($prefix, $key_var).await;
            }
        )*
    };
}

openai_compatible! {
    openai_sends_the_key_from_openai_api_key_to_the_chat_route => ("openai", "OPENAI_API_KEY");
    openai_like_sends_the_key_from_its_variable_to_the_chat_route => ("openai_like", "OPENAI_LIKE_API_KEY");
    hosted_vllm_sends_the_key_from_its_variable_to_the_chat_route => ("hosted_vllm", "HOSTED_VLLM_API_KEY");
    groq_sends_the_key_from_its_variable_to_the_chat_route => ("groq", "GROQ_API_KEY");
    mistral_sends_the_key_from_its_variable_to_the_chat_route => ("mistral", "MISTRAL_API_KEY");
    deepseek_sends_the_key_from_its_variable_to_the_chat_route => ("deepseek", "DEEPSEEK_API_KEY");
    together_ai_sends_the_key_from_its_variable_to_the_chat_route => ("together_ai", "TOGETHERAI_API_KEY");
    fireworks_ai_sends_the_key_from_its_variable_to_the_chat_route => ("fireworks_ai", "FIREWORKS_AI_API_KEY");
    openrouter_sends_the_key_from_its_variable_to_the_chat_route => ("openrouter", "OPENROUTER_API_KEY");
    xai_sends_the_key_from_its_variable_to_the_chat_route => ("xai", "XAI_API_KEY");
    perplexity_sends_the_key_from_its_variable_to_the_chat_route => ("perplexity", "PERPLEXITYAI_API_KEY");
    deepinfra_sends_the_key_from_its_variable_to_the_chat_route => ("deepinfra", "DEEPINFRA_API_KEY");
    cerebras_sends_the_key_from_its_variable_to_the_chat_route => ("cerebras", "CEREBRAS_API_KEY");
    lm_studio_sends_the_key_from_its_variable_to_the_chat_route => ("lm_studio", "LM_STUDIO_API_KEY");
}

#[actix_rt::test]
async fn azure_uses_the_deployment_path_api_version_and_api_key_header() {
    let mock = MockUpstream::start().await;
    let yaml = config(
        "azure/some-model",
        &[
            ("api_base", &quoted(&mock.base)),
            ("api_version", "\"2024-06-01\""),
        ],
        &[("AZURE_API_KEY", "azure-env-key-value")],
    );
    let gw = Gateway::start(&yaml).await;

    let reply = gw
        .post("/v1/chat/completions", None, &chat_body("some-model"))
        .await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        reply.json()["choices"][0]["message"]["content"],
        "mock says hi"
    );
    let seen = mock.last();
    assert_eq!(seen.path, "/openai/deployments/some-model/chat/completions");
    assert_eq!(seen.query, "api-version=2024-06-01");
    assert_eq!(
        seen.headers.get("api-key").map(String::as_str),
        Some("azure-env-key-value")
    );
    assert!(
        !seen.headers.contains_key("authorization"),
        "azure must not get a bearer header: {:?}",
        seen.headers
    );
    assert_eq!(seen.body["model"], "some-model");
}

#[actix_rt::test]
async fn azure_without_an_api_version_still_sends_one() {
    let mock = MockUpstream::start().await;
    let yaml = config(
        "azure/some-model",
        &[("api_base", &quoted(&mock.base))],
        &[("AZURE_API_KEY", "azure-env-key-value")],
    );
    let gw = Gateway::start(&yaml).await;

    let reply = gw
        .post("/v1/chat/completions", None, &chat_body("some-model"))
        .await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    let query = mock.last().query;
    let version = query.strip_prefix("api-version=").unwrap_or_default();
    assert!(!version.is_empty(), "query: {query:?}");
}

#[actix_rt::test]
async fn azure_embeddings_use_the_deployment_path() {
    let mock = MockUpstream::start().await;
    let yaml = config(
        "azure/some-model",
        &[
            ("api_base", &quoted(&mock.base)),
            ("api_version", "\"2024-06-01\""),
        ],
        &[("AZURE_API_KEY", "azure-env-key-value")],
    );
    let gw = Gateway::start(&yaml).await;

    let reply = gw
        .post(
            "/v1/embeddings",
            None,
            &json!({"model": "some-model", "input": "hi"}),
        )
        .await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    let seen = mock.last();
    assert_eq!(seen.path, "/openai/deployments/some-model/embeddings");
    assert_eq!(seen.query, "api-version=2024-06-01");
    assert_eq!(
        reply.json()["data"][0]["embedding"],
        json!([0.5, -0.25, 1.0])
    );
}

#[actix_rt::test]
async fn text_completion_openai_serves_chat_through_the_completions_route() {
    let mock = MockUpstream::start().await;
    let yaml = config(
        "text-completion-openai/some-model",
        &[("api_base", &quoted(&mock.v1()))],
        &[("OPENAI_API_KEY", "sk-text-completion-env")],
    );
    let gw = Gateway::start(&yaml).await;

    let reply = gw
        .post("/v1/chat/completions", None, &chat_body("some-model"))
        .await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    let seen = mock.last();
    assert_eq!(seen.path, "/v1/completions");
    assert_eq!(
        seen.headers.get("authorization").map(String::as_str),
        Some("Bearer sk-text-completion-env")
    );
    assert_eq!(seen.body["model"], "some-model");
    assert_eq!(seen.body["prompt"], "hello there");
    assert!(seen.body.get("messages").is_none(), "{}", seen.body);
    let body = reply.json();
    assert_eq!(body["object"], "chat.completion", "{body}");
    assert_eq!(body["choices"][0]["message"]["role"], "assistant");
    assert_eq!(body["choices"][0]["message"]["content"], "mock says hi");
}

#[actix_rt::test]
async fn text_completion_openai_streams_chat_chunks_translated_from_completion_chunks() {
    let mock = MockUpstream::start().await;
    let yaml = config(
        "text-completion-openai/some-model",
        &[("api_base", &quoted(&mock.v1()))],
        &[("OPENAI_API_KEY", "sk-text-completion-env")],
    );
    let gw = Gateway::start(&yaml).await;
    let mut body = chat_body("some-model");
    body["stream"] = json!(true);

    let reply = gw.post("/v1/chat/completions", None, &body).await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(mock.last().path, "/v1/completions");
    let events = sse_events(&reply.text);
    assert_eq!(
        events.last().map(String::as_str),
        Some("[DONE]"),
        "{}",
        reply.text
    );
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let mut content = String::new();
    for chunk in &chunks {
        assert_eq!(chunk["object"], "chat.completion.chunk", "{chunk}");
        if let Some(text) = chunk["choices"][0]["delta"]["content"].as_str() {
            content.push_str(text);
        }
    }
    assert_eq!(content, "piece0 piece1 piece2 ");
}

#[actix_rt::test]
async fn the_base_url_comes_from_the_providers_base_variable_when_the_config_has_none() {
    let mock = MockUpstream::start().await;
    let yaml = config(
        "hosted_vllm/some-model",
        &[],
        &[
            ("HOSTED_VLLM_API_BASE", &mock.v1()),
            ("HOSTED_VLLM_API_KEY", "vllm-env-key"),
        ],
    );
    let gw = Gateway::start(&yaml).await;

    let reply = gw
        .post("/v1/chat/completions", None, &chat_body("some-model"))
        .await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    let seen = mock.last();
    assert_eq!(seen.path, "/v1/chat/completions");
    assert_eq!(
        seen.headers.get("authorization").map(String::as_str),
        Some("Bearer vllm-env-key")
    );
}

#[actix_rt::test]
async fn the_base_variable_replaces_a_providers_default_base() {
    let mock = MockUpstream::start().await;
    let yaml = config(
        "groq/some-model",
        &[],
        &[
            ("GROQ_API_BASE", &mock.v1()),
            ("GROQ_API_KEY", "groq-env-key"),
        ],
    );
    let gw = Gateway::start(&yaml).await;

    let reply = gw
        .post("/v1/chat/completions", None, &chat_body("some-model"))
        .await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(mock.last().path, "/v1/chat/completions");
}

#[actix_rt::test]
async fn the_configured_api_key_wins_over_the_key_variable() {
    let mock = MockUpstream::start().await;
    let yaml = config(
        "groq/some-model",
        &[
            ("api_base", &quoted(&mock.v1())),
            ("api_key", "sk-from-litellm-params"),
        ],
        &[("GROQ_API_KEY", "sk-from-the-environment")],
    );
    let gw = Gateway::start(&yaml).await;

    let reply = gw
        .post("/v1/chat/completions", None, &chat_body("some-model"))
        .await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        mock.last().headers.get("authorization").map(String::as_str),
        Some("Bearer sk-from-litellm-params")
    );
}

#[actix_rt::test]
async fn organization_is_sent_as_the_openai_organization_header() {
    let mock = MockUpstream::start().await;
    let yaml = config(
        "openai/some-model",
        &[
            ("api_base", &quoted(&mock.v1())),
            ("api_key", "sk-org-test"),
            ("organization", "org-llmgate-test"),
        ],
        &[],
    );
    let gw = Gateway::start(&yaml).await;

    let reply = gw
        .post("/v1/chat/completions", None, &chat_body("some-model"))
        .await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    let seen = mock.last();
    assert_eq!(
        seen.headers.get("openai-organization").map(String::as_str),
        Some("org-llmgate-test")
    );
    assert!(
        seen.body.get("organization").is_none(),
        "organization is a header, not a body field: {}",
        seen.body
    );
}

#[actix_rt::test]
async fn configured_headers_are_sent_upstream_and_not_in_the_body() {
    let mock = MockUpstream::start().await;
    let yaml = config(
        "openrouter/some-model",
        &[
            ("api_base", &quoted(&mock.v1())),
            ("api_key", "sk-headers-test"),
            (
                "headers",
                "{\"HTTP-Referer\": \"https://llmgate.test\", \"X-Title\": \"llmgate tests\"}",
            ),
        ],
        &[],
    );
    let gw = Gateway::start(&yaml).await;

    let reply = gw
        .post("/v1/chat/completions", None, &chat_body("some-model"))
        .await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    let seen = mock.last();
    assert_eq!(
        seen.headers.get("http-referer").map(String::as_str),
        Some("https://llmgate.test")
    );
    assert_eq!(
        seen.headers.get("x-title").map(String::as_str),
        Some("llmgate tests")
    );
    assert!(seen.body.get("headers").is_none(), "{}", seen.body);
}

#[actix_rt::test]
async fn extra_params_are_defaults_that_the_request_overrides() {
    let mock = MockUpstream::start().await;
    let yaml = config(
        "openai/some-model",
        &[
            ("api_base", &quoted(&mock.v1())),
            ("api_key", "sk-defaults-test"),
            ("temperature", "0.2"),
            ("max_tokens", "5"),
        ],
        &[],
    );
    let gw = Gateway::start(&yaml).await;

    let plain = gw
        .post("/v1/chat/completions", None, &chat_body("some-model"))
        .await;
    assert_eq!(plain.status, 200, "{}", plain.text);
    let seen = mock.last().body;
    assert_eq!(seen["temperature"], json!(0.2), "{seen}");
    assert_eq!(seen["max_tokens"], json!(5), "{seen}");

    let mut body = chat_body("some-model");
    body["temperature"] = json!(0.9);
    body["max_tokens"] = json!(9);
    let overridden = gw.post("/v1/chat/completions", None, &body).await;
    assert_eq!(overridden.status, 200, "{}", overridden.text);
    let seen = mock.last().body;
    assert_eq!(seen["temperature"], json!(0.9), "{seen}");
    assert_eq!(seen["max_tokens"], json!(9), "{seen}");
}

#[actix_rt::test]
async fn the_model_after_the_provider_prefix_keeps_its_own_slashes() {
    let mock = MockUpstream::start().await;
    let yaml = config(
        "openrouter/meta-llama/llama-3.1-8b",
        &[("api_base", &quoted(&mock.v1())), ("api_key", "sk-or")],
        &[],
    );
    let gw = Gateway::start(&yaml).await;

    let reply = gw
        .post("/v1/chat/completions", None, &chat_body("some-model"))
        .await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(mock.last().body["model"], "meta-llama/llama-3.1-8b");
}

#[actix_rt::test]
async fn an_api_base_ending_with_the_route_is_used_as_is() {
    let mock = MockUpstream::start().await;
    let base = format!("{}/chat/completions", mock.v1());
    let yaml = config(
        "openai/some-model",
        &[("api_base", &quoted(&base)), ("api_key", "sk-route")],
        &[],
    );
    let gw = Gateway::start(&yaml).await;

    let reply = gw
        .post("/v1/chat/completions", None, &chat_body("some-model"))
        .await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(mock.last().path, "/v1/chat/completions");
}

#[actix_rt::test]
async fn an_api_base_with_a_trailing_slash_gets_no_double_slash() {
    let mock = MockUpstream::start().await;
    let base = format!("{}/", mock.v1());
    let yaml = config(
        "openai/some-model",
        &[("api_base", &quoted(&base)), ("api_key", "sk-slash")],
        &[],
    );
    let gw = Gateway::start(&yaml).await;

    let reply = gw
        .post("/v1/chat/completions", None, &chat_body("some-model"))
        .await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(mock.last().path, "/v1/chat/completions");
}

#[actix_rt::test]
async fn completions_against_a_chat_only_deployment_are_translated_to_chat_and_back() {
    let mock = MockUpstream::start().await;
    let yaml = config(
        "openai/some-model",
        &[
            ("api_base", &quoted(&mock.v1())),
            ("api_key", "sk-translate"),
        ],
        &[],
    );
    let gw = Gateway::start(&yaml).await;

    let reply = gw
        .post(
            "/v1/completions",
            None,
            &json!({"model": "some-model", "prompt": "say hi", "max_tokens": 7}),
        )
        .await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    let seen = mock.last();
    assert_eq!(seen.path, "/v1/chat/completions");
    assert_eq!(
        seen.body["messages"],
        json!([{"role": "user", "content": "say hi"}])
    );
    assert!(seen.body.get("prompt").is_none(), "{}", seen.body);
    assert_eq!(seen.body["max_tokens"], 7);
    let body = reply.json();
    assert_eq!(body["object"], "text_completion", "{body}");
    assert_eq!(body["choices"][0]["text"], "mock says hi");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(body["usage"]["total_tokens"], 10);
}

#[actix_rt::test]
async fn completions_against_an_instruct_model_use_the_completions_route() {
    let mock = MockUpstream::start().await;
    let yaml = config(
        "openai/gpt-3.5-turbo-instruct",
        &[
            ("api_base", &quoted(&mock.v1())),
            ("api_key", "sk-instruct"),
        ],
        &[],
    );
    let gw = Gateway::start(&yaml).await;

    let reply = gw
        .post(
            "/v1/completions",
            None,
            &json!({"model": "some-model", "prompt": "say hi"}),
        )
        .await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    let seen = mock.last();
    assert_eq!(seen.path, "/v1/completions");
    assert_eq!(seen.body["prompt"], "say hi");
    assert_eq!(reply.json()["choices"][0]["text"], "mock says hi");
}

#[actix_rt::test]
async fn embeddings_reach_the_providers_embeddings_route() {
    let mock = MockUpstream::start().await;
    let yaml = config(
        "mistral/some-model",
        &[("api_base", &quoted(&mock.v1()))],
        &[("MISTRAL_API_KEY", "mistral-embed-key")],
    );
    let gw = Gateway::start(&yaml).await;

    let reply = gw
        .post(
            "/v1/embeddings",
            None,
            &json!({"model": "some-model", "input": ["a", "b"]}),
        )
        .await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    let seen = mock.last();
    assert_eq!(seen.path, "/v1/embeddings");
    assert_eq!(
        seen.headers.get("authorization").map(String::as_str),
        Some("Bearer mistral-embed-key")
    );
    assert_eq!(seen.body["model"], "some-model");
    assert_eq!(seen.body["input"], json!(["a", "b"]));
    let body = reply.json();
    assert_eq!(body["object"], "list");
    assert_eq!(body["data"][0]["embedding"], json!([0.5, -0.25, 1.0]));
}

#[actix_rt::test]
async fn embeddings_asked_as_base64_come_back_as_base64_when_the_upstream_sends_floats() {
    let mock = MockUpstream::start().await;
    let yaml = config(
        "openai/some-model",
        &[("api_base", &quoted(&mock.v1())), ("api_key", "sk-b64")],
        &[],
    );
    let gw = Gateway::start(&yaml).await;

    let reply = gw
        .post(
            "/v1/embeddings",
            None,
            &json!({"model": "some-model", "input": "hi", "encoding_format": "base64"}),
        )
        .await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    let body = reply.json();
    let encoded = body["data"][0]["embedding"]
        .as_str()
        .unwrap_or_else(|| panic!("the embedding is not a base64 string: {body}"));
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .expect("valid base64");
    let floats: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(floats, vec![0.5, -0.25, 1.0]);
}

fn chat_with_tools(model: &str) -> Value {
    let mut body = chat_body(model);
    body["tools"] = json!([{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]);
    body
}

#[actix_rt::test]
async fn a_parameter_the_provider_cannot_take_is_a_400_naming_it_without_drop_params() {
    let mock = MockUpstream::start().await;
    let yaml = config(
        "text-completion-openai/some-model",
        &[("api_base", &quoted(&mock.v1())), ("api_key", "sk-tools")],
        &[],
    );
    let gw = Gateway::start(&yaml).await;

    let reply = gw
        .post("/v1/chat/completions", None, &chat_with_tools("some-model"))
        .await;

    assert_eq!(reply.status, 400, "{}", reply.text);
    let body = reply.json();
    assert_eq!(body["error"]["param"], "tools", "{body}");
    assert_eq!(mock.call_count(), 0);
}

#[actix_rt::test]
async fn a_parameter_the_provider_cannot_take_is_dropped_with_drop_params() {
    let mock = MockUpstream::start().await;
    let mut yaml = config(
        "text-completion-openai/some-model",
        &[("api_base", &quoted(&mock.v1())), ("api_key", "sk-tools")],
        &[],
    );
    yaml.push_str("litellm_settings:\n  drop_params: true\n");
    let gw = Gateway::start(&yaml).await;

    let reply = gw
        .post("/v1/chat/completions", None, &chat_with_tools("some-model"))
        .await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    let seen = mock.last();
    assert_eq!(seen.path, "/v1/completions");
    assert!(seen.body.get("tools").is_none(), "{}", seen.body);
}
