//! Gemini deployments end to end: OpenAI requests in, `generateContent` on the wire (checked
//! at a mock speaking it from recorded fixtures), OpenAI replies, streams and errors out.

use serde_json::{json, Value};

use crate::support::gateway::sse_events;
use crate::support::wire::{fixture, Script, WireMock};
use crate::support::{Gateway, MockUpstream};

fn reply_fixture() -> Value {
    serde_json::from_str(&fixture("gemini/reply_function_call.json")).unwrap()
}

async fn gemini_mock() -> WireMock {
    WireMock::start(Script {
        status: 200,
        body: reply_fixture()["gemini"].to_string(),
        sse: fixture("gemini/stream_function_call.sse"),
    })
    .await
}

fn config(base: &str) -> String {
    format!(
        "model_list:\n  - model_name: flash\n    litellm_params: {{model: gemini/gemini-2.5-flash, api_base: '{base}', api_key: gm-test-key}}\n"
    )
}

fn weather_request() -> Value {
    json!({
        "model": "flash",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather in Paris?"}
        ],
        "max_tokens": 50,
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
    })
}

#[actix_rt::test]
async fn a_chat_request_reaches_generate_content_and_comes_back_in_openai_shape() {
    let mock = gemini_mock().await;
    let gw = Gateway::start(&config(&mock.base)).await;

    let r = gw
        .post("/v1/chat/completions", None, &weather_request())
        .await;

    assert_eq!(r.status, 200, "{}", r.text);
    let got = r.json();
    let message = &got["choices"][0]["message"];
    assert_eq!(message["content"], "Let me check.");
    assert_eq!(
        message["reasoning_content"],
        "The user wants the weather in Paris."
    );
    assert_eq!(message["tool_calls"][0]["function"]["name"], "get_weather");
    assert_eq!(got["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(got["usage"]["completion_tokens"], 65);
    let call = &mock.calls()[0];
    assert_eq!(call.path, "/v1beta/models/gemini-2.5-flash:generateContent");
    assert_eq!(call.headers["x-goog-api-key"], "gm-test-key");
    assert!(
        !call.query.contains("key="),
        "the key must not travel in the URL"
    );
    assert_eq!(
        call.body,
        json!({
            "contents": [{"role": "user", "parts": [{"text": "Weather in Paris?"}]}],
            "systemInstruction": {"parts": [{"text": "Be brief."}]},
            "generationConfig": {"maxOutputTokens": 50},
            "tools": [{"functionDeclarations": [{"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]}],
        })
    );
}

#[actix_rt::test]
async fn a_stream_uses_stream_generate_content_and_ends_with_usage() {
    let mock = gemini_mock().await;
    let gw = Gateway::start(&config(&mock.base)).await;
    let mut body = weather_request();
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});

    let r = gw.post("/v1/chat/completions", None, &body).await;

    assert_eq!(r.status, 200, "{}", r.text);
    let call = &mock.calls()[0];
    assert_eq!(
        call.path,
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    );
    assert_eq!(call.query, "alt=sse");
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
    assert_eq!(text, "The sky is clear.");
    assert!(chunks
        .iter()
        .any(|c| c["choices"][0]["finish_reason"] == "tool_calls"));
    assert_eq!(chunks.last().unwrap()["usage"]["total_tokens"], 26);
}

#[actix_rt::test]
async fn embeddings_use_batch_embed_contents() {
    let mock = WireMock::start(Script {
        status: 200,
        body: r#"{"embeddings":[{"values":[0.5,-0.25]},{"values":[1.0,0.0]}]}"#.into(),
        sse: String::new(),
    })
    .await;
    let gw = Gateway::start(&format!(
        "model_list:\n  - model_name: embed\n    litellm_params: {{model: gemini/text-embedding-004, api_base: '{}', api_key: k}}\n",
        mock.base
    ))
    .await;

    let r = gw
        .post(
            "/v1/embeddings",
            None,
            &json!({"model": "embed", "input": ["hello", "world"]}),
        )
        .await;

    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["data"][0]["embedding"], json!([0.5, -0.25]));
    assert_eq!(r.json()["data"][1]["index"], 1);
    assert!(r.json()["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    let call = &mock.calls()[0];
    assert_eq!(
        call.path,
        "/v1beta/models/text-embedding-004:batchEmbedContents"
    );
    assert_eq!(
        call.body["requests"][1]["content"]["parts"][0]["text"],
        "world"
    );
}

#[actix_rt::test]
async fn a_token_limit_error_is_a_context_window_error_with_its_fallbacks() {
    let mock = gemini_mock().await;
    mock.set(Script {
        status: 400,
        body: json!({"error": {"code": 400, "message": "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).", "status": "INVALID_ARGUMENT"}}).to_string(),
        sse: String::new(),
    });
    let big = MockUpstream::start().await;
    let yaml = format!(
        "{}  - model_name: big\n    litellm_params: {{model: openai/big, api_base: '{}'}}\nlitellm_settings: {{context_window_fallbacks: [{{flash: [big]}}]}}\n",
        config(&mock.base),
        big.v1()
    );
    let gw = Gateway::start(&yaml).await;

    let r = gw
        .post("/v1/chat/completions", None, &weather_request())
        .await;

    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("x-litellm-attempted-fallbacks"), Some("1"));
    let gw = Gateway::start(&config(&mock.base)).await;
    let r = gw
        .post("/v1/chat/completions", None, &weather_request())
        .await;
    assert_eq!(r.status, 400);
    assert!(r.json()["error"]["message"].as_str().unwrap().starts_with(
        "litellm.ContextWindowExceededError: GeminiException - The input token count"
    ));
}
