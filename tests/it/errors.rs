//! Every error case answers in LiteLLM's shape with the contract's status and type.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::{chat_body, Behavior, Gateway, MockUpstream};

fn config(api_base: &str, extra: &str) -> String {
    format!(
        "model_list:\n  - model_name: g\n    litellm_params: {{model: openai/m, api_base: '{api_base}'}}\nlitellm_settings: {{num_retries: 0}}\n{extra}"
    )
}

fn assert_error(body: &Value, status: u16, kind: &str) {
    crate::support::assert_error_body(body, status, kind);
}

#[actix_rt::test]
async fn malformed_json_is_a_400() {
    let mock = MockUpstream::start().await;
    let gw = Gateway::start(&config(&mock.v1(), "")).await;
    let r = gw
        .post_raw(
            "/v1/chat/completions",
            None,
            b"{\"model\": \"g\", ".to_vec(),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_error(&r.json(), 400, "invalid_request_error");
    let r = gw
        .post_raw("/v1/chat/completions", None, b"[1,2]".to_vec())
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(mock.call_count(), 0);
}

#[actix_rt::test]
async fn missing_and_mistyped_fields_are_400s_naming_the_field() {
    let mock = MockUpstream::start().await;
    let gw = Gateway::start(&config(&mock.v1(), "")).await;
    let cases = [
        (
            "/v1/chat/completions",
            json!({"messages": [{"role": "user", "content": "x"}]}),
            "model",
        ),
        (
            "/v1/chat/completions",
            json!({"model": 42, "messages": []}),
            "model",
        ),
        ("/v1/chat/completions", json!({"model": "g"}), "messages"),
        (
            "/v1/chat/completions",
            json!({"model": "g", "messages": "hi"}),
            "messages",
        ),
        (
            "/v1/chat/completions",
            json!({"model": "g", "messages": [{"role": "user"}], "stream": "yes"}),
            "stream",
        ),
        ("/v1/completions", json!({"model": "g"}), "prompt"),
        (
            "/v1/completions",
            json!({"model": "g", "prompt": 7}),
            "prompt",
        ),
        ("/v1/embeddings", json!({"model": "g"}), "input"),
    ];
    for (path, body, field) in cases {
        let r = gw.post(path, None, &body).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text);
        assert_error(&r.json(), 400, "invalid_request_error");
        assert_eq!(r.json()["error"]["param"], field, "{body}");
    }
    assert_eq!(mock.call_count(), 0);
}

#[actix_rt::test]
async fn an_unknown_model_is_a_400_pointing_at_v1_models() {
    let mock = MockUpstream::start().await;
    let gw = Gateway::start(&config(&mock.v1(), "")).await;
    let r = gw
        .post("/v1/chat/completions", None, &chat_body("no-such-model"))
        .await;
    assert_eq!(r.status, 400);
    assert_error(&r.json(), 400, "invalid_request_error");
    let msg = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        msg.contains("/v1/models") && msg.contains("no-such-model"),
        "{msg}"
    );
}

#[actix_rt::test]
async fn a_body_over_max_request_size_mb_is_a_413() {
    let mock = MockUpstream::start().await;
    let gw = Gateway::start(&config(
        &mock.v1(),
        "general_settings: {max_request_size_mb: 0.01}\n",
    ))
    .await;
    let big = "x".repeat(20_000);
    let r = gw
        .post(
            "/v1/chat/completions",
            None,
            &json!({"model": "g", "messages": [{"role": "user", "content": big}]}),
        )
        .await;
    assert_eq!(r.status, 413, "{}", r.text);
    assert_error(&r.json(), 413, "invalid_request_error");
    let small = gw.post("/v1/chat/completions", None, &chat_body("g")).await;
    assert_eq!(small.status, 200);
}

#[actix_rt::test]
async fn upstream_errors_keep_their_status_and_message() {
    let mock = MockUpstream::start().await;
    let gw = Gateway::start(&config(
        &mock.v1(),
        "router_settings: {disable_cooldowns: true}\n",
    ))
    .await;
    for (status, kind) in [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (404, "not_found_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (503, "api_error"),
    ] {
        mock.set(Behavior::Fail(
            status,
            format!(r#"{{"error":{{"message":"upstream says {status}","type":null,"param":null,"code":null}}}}"#),
        ));
        let r = gw.post("/v1/chat/completions", None, &chat_body("g")).await;
        assert_eq!(r.status, status, "{}", r.text);
        assert_error(&r.json(), status, kind);
        let msg = r.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(msg.contains(&format!("upstream says {status}")), "{msg}");
        assert!(msg.starts_with("litellm."), "{msg}");
    }
}

#[actix_rt::test]
async fn an_upstream_error_type_and_param_are_passed_on() {
    let mock = MockUpstream::start().await;
    mock.set(Behavior::Fail(400, r#"{"error":{"message":"bad temperature","type":"invalid_request_error","param":"temperature","code":"bad"}}"#.into()));
    let gw = Gateway::start(&config(&mock.v1(), "")).await;
    let r = gw.post("/v1/chat/completions", None, &chat_body("g")).await;
    assert_eq!(r.json()["error"]["param"], "temperature");
}

#[actix_rt::test]
async fn an_unreachable_upstream_is_a_502_api_connection_error() {
    let port = crate::support::binary::free_port();
    let gw = Gateway::start(&config(&format!("http://127.0.0.1:{port}/v1"), "")).await;
    let r = gw.post("/v1/chat/completions", None, &chat_body("g")).await;
    assert_eq!(r.status, 502, "{}", r.text);
    assert_error(&r.json(), 502, "api_connection_error");
}

#[actix_rt::test]
async fn request_timeout_litellm_params_timeout_and_the_request_timeout_each_give_a_408() {
    let mock = MockUpstream::start().await;
    mock.set(Behavior::Delay(Duration::from_secs(3)));
    let configs = [
        config(&mock.v1(), "").replace("num_retries: 0}", "num_retries: 0, request_timeout: 0.3}"),
        format!("model_list:\n  - model_name: g\n    litellm_params: {{model: openai/m, api_base: '{}', timeout: 0.3}}\nlitellm_settings: {{num_retries: 0}}\n", mock.v1()),
        config(&mock.v1(), "router_settings: {timeout: 0.3}\n"),
    ];
    for yaml in configs {
        let gw = Gateway::start(&yaml).await;
        let started = Instant::now();
        let r = gw.post("/v1/chat/completions", None, &chat_body("g")).await;
        assert_eq!(r.status, 408, "{yaml}: {}", r.text);
        assert_error(&r.json(), 408, "timeout");
        assert!(started.elapsed() < Duration::from_secs(2), "{yaml}");
        gw.stop().await;
    }
    let gw = Gateway::start(&config(&mock.v1(), "")).await;
    let mut body = chat_body("g");
    body["request_timeout"] = json!(0.3);
    let r = gw.post("/v1/chat/completions", None, &body).await;
    assert_eq!(r.status, 408, "{}", r.text);
}

#[actix_rt::test]
async fn unknown_routes_are_404s_in_the_error_shape() {
    let gw = Gateway::start("").await;
    let r = gw.get("/v1/nothing-here", None).await;
    assert_eq!(r.status, 404);
    assert_error(&r.json(), 404, "not_found_error");
}
