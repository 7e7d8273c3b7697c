//! `mock_response` and `mock_timeout`: answers and failures with no upstream called.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::gateway::sse_events;
use crate::support::{chat_body, eventually, Gateway, MockUpstream};

fn config(mock: &MockUpstream, params: &str, settings: &str) -> String {
    format!(
        "model_list:\n  - model_name: g\n    litellm_params: {{model: openai/m, api_base: '{}'{params}}}\n{settings}",
        mock.v1()
    )
}

#[actix_rt::test]
async fn a_configured_mock_response_answers_without_calling_the_upstream() {
    let mock = MockUpstream::start().await;
    let gw = Gateway::start(&config(&mock, ", mock_response: 'canned reply'", "")).await;
    let r = gw.post("/v1/chat/completions", None, &chat_body("g")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["choices"][0]["message"]["content"], "canned reply");
    assert_eq!(r.json()["usage"]["total_tokens"], 30);
    let r = gw
        .post(
            "/v1/completions",
            None,
            &json!({"model": "g", "prompt": "x"}),
        )
        .await;
    assert_eq!(r.json()["choices"][0]["text"], "canned reply");
    let r = gw
        .post("/v1/embeddings", None, &json!({"model": "g", "input": "x"}))
        .await;
    assert_eq!(r.json()["data"][0]["object"], "embedding");
    assert_eq!(mock.call_count(), 0);
}

#[actix_rt::test]
async fn a_request_mock_response_wins_and_is_not_forwarded() {
    let mock = MockUpstream::start().await;
    let gw = Gateway::start(&config(&mock, "", "")).await;
    let mut body = chat_body("g");
    body["mock_response"] = json!("from the request");
    let r = gw.post("/v1/chat/completions", None, &body).await;
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "from the request"
    );
    assert_eq!(mock.call_count(), 0);
}

#[actix_rt::test]
async fn a_streamed_mock_comes_in_several_chunks_with_usage() {
    let mock = MockUpstream::start().await;
    let gw = Gateway::start(&config(&mock, ", mock_response: 'one two three four'", "")).await;
    let mut body = chat_body("g");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let r = gw.post("/v1/chat/completions", None, &body).await;
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    let events = sse_events(&r.text);
    let parsed: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let text: String = parsed
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "one two three four");
    assert!(
        parsed
            .iter()
            .filter(|c| c["choices"][0]["delta"]["content"]
                .as_str()
                .is_some_and(|t| !t.is_empty()))
            .count()
            >= 4
    );
    assert_eq!(parsed.last().unwrap()["usage"]["total_tokens"], 30);
    assert_eq!(events.last().unwrap(), "[DONE]");
}

#[actix_rt::test]
async fn litellm_error_names_fail_the_attempt_with_their_status() {
    let mock = MockUpstream::start().await;
    let gw = Gateway::start(&config(&mock, "", "litellm_settings: {num_retries: 0}\n")).await;
    for (name, status, kind) in [
        ("litellm.RateLimitError", 429, "rate_limit_error"),
        ("litellm.Timeout", 408, "timeout"),
        ("litellm.InternalServerError", 500, "api_error"),
        (
            "litellm.ContextWindowExceededError",
            400,
            "invalid_request_error",
        ),
        (
            "litellm.ContentPolicyViolationError",
            400,
            "invalid_request_error",
        ),
    ] {
        let mut body = chat_body("g");
        body["mock_response"] = json!(name);
        let r = gw.post("/v1/chat/completions", None, &body).await;
        assert_eq!(r.status, status, "{name}: {}", r.text);
        assert_eq!(r.json()["error"]["type"], kind, "{name}");
        assert_eq!(r.json()["error"]["code"], status.to_string());
        assert!(r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains(name.trim_start_matches("litellm.")));
    }
    assert_eq!(mock.call_count(), 0);
}

#[actix_rt::test]
async fn a_mocked_error_counts_towards_cooldown_like_a_real_one() {
    let mock = MockUpstream::start().await;
    let gw = Gateway::start(&format!(
        "model_list:\n  - model_name: g\n    litellm_params: {{model: openai/m, mock_response: litellm.InternalServerError}}\n  - model_name: g\n    litellm_params: {{model: openai/m, api_base: '{}'}}\nlitellm_settings: {{num_retries: 0}}\nrouter_settings: {{allowed_fails: 0, cooldown_time: 60}}\n",
        mock.v1()
    ))
    .await;
    let mut failures = 0;
    for _ in 0..40 {
        if gw
            .post("/v1/chat/completions", None, &chat_body("g"))
            .await
            .status
            == 500
        {
            failures += 1;
        }
    }
    assert_eq!(failures, 1);
    assert!(
        eventually(Duration::from_secs(5), async || gw
            .deployment(0)
            .await
            .cooling_until
            .is_some())
        .await
    );
}

#[actix_rt::test]
async fn mock_timeout_times_the_attempt_out_after_timeout() {
    let mock = MockUpstream::start().await;
    let gw = Gateway::start(&config(&mock, "", "litellm_settings: {num_retries: 0}\n")).await;
    let mut body = chat_body("g");
    body["mock_timeout"] = json!(true);
    body["timeout"] = json!(0.3);
    let started = Instant::now();
    let r = gw.post("/v1/chat/completions", None, &body).await;
    let took = started.elapsed();
    assert_eq!(r.status, 408, "{}", r.text);
    assert_eq!(r.json()["error"]["type"], "timeout");
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert_eq!(mock.call_count(), 0);
}
