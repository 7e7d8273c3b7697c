//! `POST /v1/messages`: Anthropic-format clients in front of any deployment, replies, streams,
//! errors and token counts in Anthropic's shape.

use serde_json::{json, Value};

use crate::support::gateway::sse_events;
use crate::support::wire::{fixture, Script, WireMock};
use crate::support::{Behavior, Gateway, MockUpstream};

fn openai_group(base: &str) -> String {
    format!(
        "model_list:\n  - model_name: gpt\n    litellm_params: {{model: openai/gpt-x, api_base: '{base}'}}\ngeneral_settings: {{master_key: sk-master-1234567890}}\n"
    )
}

const KEY: &[(&str, &str)] = &[("x-api-key", "sk-master-1234567890")];

fn ask(model: &str) -> Value {
    json!({
        "model": model,
        "max_tokens": 64,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "Say hi"}],
    })
}

#[actix_rt::test]
async fn an_openai_deployment_answers_a_messages_request_in_anthropic_shape() {
    let mock = MockUpstream::start().await;
    let gw = Gateway::start(&openai_group(&mock.v1())).await;

    let r = gw.post_with("/v1/messages", KEY, &ask("gpt")).await;

    assert_eq!(r.status, 200, "{}", r.text);
    let m = r.json();
    assert_eq!(m["type"], "message");
    assert_eq!(m["role"], "assistant");
    assert_eq!(
        m["content"],
        json!([{"type": "text", "text": "mock says hi"}])
    );
    assert_eq!(m["stop_reason"], "end_turn");
    assert!(m["usage"]["input_tokens"].as_u64().unwrap() > 0);
    let sent = mock.last().body;
    assert_eq!(
        sent["messages"],
        json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hi"}])
    );
    assert_eq!(sent["max_tokens"], 64);
    assert!(r.header("x-litellm-model-id").is_some());
}

#[actix_rt::test]
async fn a_streamed_messages_request_gets_anthropic_events() {
    let mock = MockUpstream::start().await;
    mock.set(Behavior::Normal {
        chunks: 3,
        gap: std::time::Duration::ZERO,
        usage: true,
    });
    let gw = Gateway::start(&openai_group(&mock.v1())).await;
    let mut body = ask("gpt");
    body["stream"] = json!(true);

    let r = gw.post_with("/v1/messages", KEY, &body).await;

    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    let kinds: Vec<&str> = r
        .text
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(kinds.first(), Some(&"message_start"));
    assert_eq!(kinds.last(), Some(&"message_stop"));
    assert!(kinds.contains(&"content_block_delta"));
    let events: Vec<Value> = sse_events(&r.text)
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let text: String = events
        .iter()
        .filter_map(|e| e["delta"]["text"].as_str())
        .collect();
    assert_eq!(text, "piece0 piece1 piece2 ");
    let delta = events
        .iter()
        .find(|e| e["type"] == "message_delta")
        .unwrap();
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert!(delta["usage"]["output_tokens"].as_u64().unwrap() > 0);
    assert_eq!(mock.last().body["stream_options"]["include_usage"], true);
}

#[actix_rt::test]
async fn an_anthropic_deployment_round_trips_tool_use() {
    let case: Value = serde_json::from_str(&fixture("anthropic/reply_tool_use.json")).unwrap();
    let mock = WireMock::start(Script {
        status: 200,
        body: case["anthropic"].to_string(),
        sse: fixture("anthropic/stream_tool_use.sse"),
    })
    .await;
    let gw = Gateway::start(&format!(
        "model_list:\n  - model_name: claude\n    litellm_params: {{model: anthropic/claude-3-7-sonnet-20250219, api_base: '{}', api_key: sk-ant}}\n",
        mock.base
    ))
    .await;

    let r = gw.post_with("/v1/messages", &[], &ask("claude")).await;

    assert_eq!(r.status, 200, "{}", r.text);
    let content = &r.json()["content"];
    assert_eq!(
        content[1],
        json!({"type": "text", "text": "I'll look that up."})
    );
    assert_eq!(
        content[2],
        json!({"type": "tool_use", "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "name": "get_weather", "input": {"city": "Paris", "unit": "celsius"}})
    );
    assert_eq!(r.json()["stop_reason"], "tool_use");
    assert_eq!(r.json()["usage"]["cache_read_input_tokens"], 2048);
    assert_eq!(
        mock.calls()[0].body["system"],
        json!([{"type": "text", "text": "Be brief."}])
    );
}

#[actix_rt::test]
async fn errors_come_back_in_anthropic_shape_with_their_status() {
    let mock = MockUpstream::start().await;
    let gw = Gateway::start(&openai_group(&mock.v1())).await;

    let r = gw.post_with("/v1/messages", &[], &ask("gpt")).await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert_eq!(r.json()["type"], "error");
    assert_eq!(r.json()["error"]["type"], "authentication_error");

    let r = gw.post_with("/v1/messages", KEY, &ask("nope")).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("nope"));

    let r = gw
        .post_with("/v1/messages", KEY, &json!({"model": "gpt"}))
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("messages"));

    mock.set(Behavior::Fail(
        503,
        r#"{"error":{"message":"down"}}"#.into(),
    ));
    let r = gw.post_with("/v1/messages", KEY, &ask("gpt")).await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert_eq!(r.json()["error"]["type"], "api_error");
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("down"));
}

#[actix_rt::test]
async fn count_tokens_counts_the_prompt() {
    let mock = MockUpstream::start().await;
    let gw = Gateway::start(&openai_group(&mock.v1())).await;

    let r = gw
        .post_with("/v1/messages/count_tokens", KEY, &ask("gpt"))
        .await;

    assert_eq!(r.status, 200, "{}", r.text);
    // 3 to prime + (3 + "Be brief." 3) + (3 + "Say hi" 2), as for the same chat request.
    assert_eq!(r.json(), json!({"input_tokens": 14}));
    assert_eq!(mock.call_count(), 0);
}
