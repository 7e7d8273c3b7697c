//! Anthropic deployments end to end: OpenAI requests in, the Messages API on the wire (checked
//! at a mock speaking it from recorded fixtures), OpenAI replies, streams and errors out.

use serde_json::{json, Value};

use crate::support::gateway::sse_events;
use crate::support::wire::{fixture, Script, WireMock};
use crate::support::{Gateway, MockUpstream};

fn reply_fixture() -> Value {
    serde_json::from_str(&fixture("anthropic/reply_tool_use.json")).unwrap()
}

async fn anthropic_mock() -> WireMock {
    WireMock::start(Script {
        status: 200,
        body: reply_fixture()["anthropic"].to_string(),
        sse: fixture("anthropic/stream_tool_use.sse"),
    })
    .await
}

fn config(base: &str, extra: &str) -> String {
    format!(
        "model_list:\n  - model_name: claude\n    litellm_params: {{model: anthropic/claude-3-7-sonnet-20250219, api_base: '{base}', api_key: sk-ant-test-key{extra}}}\n"
    )
}

fn weather_request() -> Value {
    json!({
        "model": "claude",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather in Paris?"}
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
    })
}

#[actix_rt::test]
async fn a_chat_request_reaches_the_messages_api_and_comes_back_in_openai_shape() {
    let mock = anthropic_mock().await;
    let gw = Gateway::start(&config(&mock.base, "")).await;

    let r = gw
        .post("/v1/chat/completions", None, &weather_request())
        .await;

    assert_eq!(r.status, 200, "{}", r.text);
    let mut got = r.json();
    let mut want = reply_fixture()["openai"].clone();
    got["created"] = json!(0);
    want["created"] = json!(0);
    assert_eq!(got, want);
    let call = &mock.calls()[0];
    assert_eq!(call.path, "/v1/messages");
    assert_eq!(call.headers["x-api-key"], "sk-ant-test-key");
    assert_eq!(call.headers["anthropic-version"], "2023-06-01");
    assert!(!call.headers.contains_key("authorization"));
    assert_eq!(
        call.body,
        json!({
            "model": "claude-3-7-sonnet-20250219",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]}],
            "system": [{"type": "text", "text": "Be brief."}],
            "max_tokens": 4096,
            "tools": [{"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
        })
    );
    // Priced from the table with the cache tokens counted as prompt tokens.
    let cost: f64 = r
        .header("x-litellm-response-cost")
        .unwrap()
        .parse()
        .unwrap();
    assert!(cost > 0.0, "cost {cost}");
}

#[actix_rt::test]
async fn a_stream_is_translated_chunk_by_chunk_with_tool_calls_and_usage() {
    let mock = anthropic_mock().await;
    let gw = Gateway::start(&config(&mock.base, "")).await;
    let mut body = weather_request();
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});

    let r = gw.post("/v1/chat/completions", None, &body).await;

    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(mock.calls()[0].body["stream"], true);
    let events = sse_events(&r.text);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Okay, let's check the weather.");
    let arguments: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
        .collect();
    assert_eq!(arguments, r#"{"city": "Paris"}"#);
    assert!(chunks
        .iter()
        .any(|c| c["choices"][0]["finish_reason"] == "tool_calls"));
    let usage = &chunks.last().unwrap()["usage"];
    assert_eq!(
        (
            usage["prompt_tokens"].as_u64(),
            usage["completion_tokens"].as_u64()
        ),
        (Some(472), Some(89))
    );
    assert!(usage["cost"].as_f64().unwrap() > 0.0);
}

#[actix_rt::test]
async fn a_prompt_too_long_error_is_a_context_window_error_with_its_fallbacks() {
    let mock = anthropic_mock().await;
    mock.set(Script {
        status: 400,
        body: json!({"type": "error", "error": {"type": "invalid_request_error", "message": "prompt is too long: 208310 tokens > 200000 maximum"}}).to_string(),
        sse: String::new(),
    });
    let big = MockUpstream::start().await;
    let yaml = format!(
        "{}  - model_name: big\n    litellm_params: {{model: openai/big, api_base: '{}'}}\nlitellm_settings: {{context_window_fallbacks: [{{claude: [big]}}]}}\n",
        config(&mock.base, ""),
        big.v1()
    );
    let gw = Gateway::start(&yaml).await;

    let r = gw
        .post("/v1/chat/completions", None, &weather_request())
        .await;

    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("x-litellm-attempted-fallbacks"), Some("1"));
    assert_eq!(big.call_count(), 1);

    // Without a fallback the client sees the provider's words in LiteLLM's shape.
    let gw = Gateway::start(&config(&mock.base, "")).await;
    let r = gw
        .post("/v1/chat/completions", None, &weather_request())
        .await;
    assert_eq!(r.status, 400);
    let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.starts_with(
            "litellm.ContextWindowExceededError: AnthropicException - prompt is too long"
        ),
        "{message}"
    );
}

#[actix_rt::test]
async fn unsupported_openai_parameters_are_refused_or_dropped() {
    let mock = anthropic_mock().await;
    let gw = Gateway::start(&config(&mock.base, "")).await;
    let mut body = weather_request();
    body["seed"] = json!(7);

    let r = gw.post("/v1/chat/completions", None, &body).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.json()["error"]["param"], "seed");
    assert!(mock.calls().is_empty());

    body["drop_params"] = json!(true);
    let r = gw.post("/v1/chat/completions", None, &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(mock.calls()[0].body.get("seed").is_none());

    let r = gw
        .post(
            "/v1/embeddings",
            None,
            &json!({"model": "claude", "input": "hi"}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(mock.calls().len(), 1);
}

#[actix_rt::test]
async fn the_key_comes_from_anthropic_api_key_and_completions_are_served_through_chat() {
    let mock = anthropic_mock().await;
    let yaml = format!(
        "model_list:\n  - model_name: claude\n    litellm_params: {{model: anthropic/claude-3-7-sonnet-20250219, api_base: '{}/v1'}}\nenvironment_variables: {{ANTHROPIC_API_KEY: sk-ant-from-env}}\n",
        mock.base
    );
    let gw = Gateway::start(&yaml).await;

    let r = gw
        .post(
            "/v1/completions",
            None,
            &json!({"model": "claude", "prompt": "Say hi", "max_tokens": 20}),
        )
        .await;

    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["object"], "text_completion");
    assert_eq!(r.json()["choices"][0]["text"], "I'll look that up.");
    let call = &mock.calls()[0];
    assert_eq!(call.path, "/v1/messages");
    assert_eq!(call.headers["x-api-key"], "sk-ant-from-env");
    assert_eq!(call.body["max_tokens"], 20);
    assert_eq!(
        call.body["messages"],
        json!([{"role": "user", "content": [{"type": "text", "text": "Say hi"}]}])
    );
}

#[actix_rt::test]
async fn drop_params_and_additional_drop_params_may_be_set_per_deployment() {
    let mock = anthropic_mock().await;
    let openai = MockUpstream::start().await;
    let yaml = format!(
        "{}  - model_name: gpt\n    litellm_params: {{model: openai/gpt-x, api_base: '{}', additional_drop_params: [user]}}\n",
        config(&mock.base, ", drop_params: true"),
        openai.v1()
    );
    let gw = Gateway::start(&yaml).await;
    let mut body = weather_request();
    body["seed"] = json!(7);

    // The deployment drops what Anthropic cannot take; neither setting travels upstream.
    let r = gw.post("/v1/chat/completions", None, &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let sent = &mock.calls()[0].body;
    assert!(
        sent.get("seed").is_none() && sent.get("drop_params").is_none(),
        "{sent}"
    );

    // The request's own setting still wins.
    body["drop_params"] = json!(false);
    let r = gw.post("/v1/chat/completions", None, &body).await;
    assert_eq!(r.status, 400, "{}", r.text);

    let r = gw
        .post(
            "/v1/chat/completions",
            None,
            &json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}], "user": "u-1"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let sent = openai.last().body;
    assert!(
        sent.get("user").is_none() && sent.get("additional_drop_params").is_none(),
        "{sent}"
    );
}
