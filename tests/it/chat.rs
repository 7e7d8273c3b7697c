//! Every model route, the headers on replies, and what reaches the upstream.

use serde_json::json;

use crate::support::{chat_body, Gateway, MockUpstream};

fn config(mock: &MockUpstream) -> String {
    format!(
        r#"
model_list:
  - model_name: gpt-test
    litellm_params: {{model: openai/upstream-gpt, api_base: "{v1}", api_key: sk-up}}
  - model_name: embed-test
    litellm_params: {{model: openai/upstream-embed, api_base: "{v1}", api_key: sk-up}}
"#,
        v1 = mock.v1()
    )
}

#[actix_rt::test]
async fn chat_answers_on_every_path_and_the_model_is_replaced() {
    let mock = MockUpstream::start().await;
    let gw = Gateway::start(&config(&mock)).await;
    for path in [
        "/chat/completions",
        "/v1/chat/completions",
        "/openai/deployments/gpt-test/chat/completions",
        "/engines/gpt-test/chat/completions",
    ] {
        let r = gw.post(path, None, &chat_body("gpt-test")).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        assert_eq!(r.json()["choices"][0]["message"]["content"], "mock says hi");
        let seen = mock.last();
        assert_eq!(seen.path, "/v1/chat/completions");
        assert_eq!(seen.body["model"], "upstream-gpt");
    }
}

#[actix_rt::test]
async fn completions_and_embeddings_answer_with_and_without_v1() {
    let mock = MockUpstream::start().await;
    let gw = Gateway::start(&config(&mock)).await;
    for path in [
        "/completions",
        "/v1/completions",
        "/engines/gpt-test/completions",
    ] {
        let r = gw
            .post(
                path,
                None,
                &json!({"model": "gpt-test", "prompt": "say hi"}),
            )
            .await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        assert_eq!(r.json()["object"], "text_completion");
        assert_eq!(r.json()["choices"][0]["text"], "mock says hi");
    }
    for path in [
        "/embeddings",
        "/v1/embeddings",
        "/openai/deployments/embed-test/embeddings",
    ] {
        let r = gw
            .post(
                path,
                None,
                &json!({"model": "embed-test", "input": "hi", "encoding_format": "base64"}),
            )
            .await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        // The mock sends floats; the client asked for base64 (0.5, -0.25, 1.0 as f32 LE).
        assert_eq!(r.json()["data"][0]["embedding"], json!("AAAAPwAAgL4AAIA/"));
        assert_eq!(mock.last().path, "/v1/embeddings");
        assert_eq!(mock.last().body["encoding_format"], "base64");
    }
}

#[actix_rt::test]
async fn gateway_only_fields_are_consumed_and_the_rest_forwarded_as_sent() {
    let mock = MockUpstream::start().await;
    let gw = Gateway::start(&config(&mock)).await;
    let body = json!({
        "model": "gpt-test",
        "messages": [{"role": "user", "content": "hi", "name": "bob"}],
        "temperature": 0.3,
        "logit_bias": {"50256": -100},
        "some_future_param": {"nested": [1, 2]},
        "metadata": {"trace": "x"}, "fallbacks": ["a"], "num_retries": 0, "caching": true,
        "cache": {"no-cache": true}, "drop_params": true, "request_timeout": 30,
        "context_window_fallbacks": [], "content_policy_fallbacks": [], "additional_drop_params": []
    });
    let r = gw.post("/v1/chat/completions", None, &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        mock.last().body,
        json!({
            "model": "upstream-gpt",
            "messages": [{"role": "user", "content": "hi", "name": "bob"}],
            "temperature": 0.3,
            "logit_bias": {"50256": -100},
            "some_future_param": {"nested": [1, 2]}
        })
    );
}

#[actix_rt::test]
async fn replies_carry_the_litellm_headers_and_the_upstreams_prefixed() {
    let mock = MockUpstream::start().await;
    let gw = Gateway::start(&format!(
        "model_list:\n  - model_name: g\n    litellm_params: {{model: openai/m, api_base: 'http://user:pw@127.0.0.1:{}/v1?secret=1', api_key: sk-up}}\n    model_info: {{id: dep-1}}\n",
        mock.base.rsplit(':').next().unwrap()
    ))
    .await;
    let mut req = gw
        .client
        .post(format!("{}/v1/chat/completions", gw.base))
        .insert_header(("x-litellm-call-id", "my-call-42"));
    req = req.insert_header(("content-type", "application/json"));
    let mut res = req.send_json(&chat_body("g")).await.unwrap();
    let body = res.body().await.unwrap();
    let h = |n: &str| res.headers().get(n).map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(res.status(), 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(h("x-litellm-call-id").as_deref(), Some("my-call-42"));
    assert_eq!(h("x-litellm-model-id").as_deref(), Some("dep-1"));
    assert_eq!(h("x-litellm-model-group").as_deref(), Some("g"));
    let base = h("x-litellm-model-api-base").unwrap();
    assert!(
        !base.contains("pw") && !base.contains("secret") && base.ends_with("/v1"),
        "{base}"
    );
    assert_eq!(
        h("x-litellm-version").as_deref(),
        Some(env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(h("x-litellm-attempted-retries").as_deref(), Some("0"));
    assert_eq!(h("x-litellm-attempted-fallbacks").as_deref(), Some("0"));
    assert_eq!(h("llm_provider-x-mock-header").as_deref(), Some("plain"));
    for n in [
        "x-litellm-response-duration-ms",
        "x-litellm-overhead-duration-ms",
    ] {
        let v: f64 = h(n).unwrap().parse().unwrap();
        assert!(v >= 0.0);
    }
}

#[actix_rt::test]
async fn a_call_id_is_generated_when_the_client_sends_none() {
    let mock = MockUpstream::start().await;
    let gw = Gateway::start(&config(&mock)).await;
    let a = gw
        .post("/v1/chat/completions", None, &chat_body("gpt-test"))
        .await;
    let b = gw
        .post("/v1/chat/completions", None, &chat_body("gpt-test"))
        .await;
    let (a, b) = (
        a.header("x-litellm-call-id").unwrap().to_owned(),
        b.header("x-litellm-call-id").unwrap().to_owned(),
    );
    assert_eq!(a.len(), 36);
    assert_ne!(a, b);
}

#[actix_rt::test]
async fn models_lists_groups_and_model_info_hides_secrets() {
    let mock = MockUpstream::start().await;
    let gw = Gateway::start(&format!(
        "model_list:\n  - model_name: a\n    litellm_params: {{model: openai/x, api_base: '{v1}', api_key: sk-secret-canary, aws_secret_access_key: canary2}}\n    model_info: {{mode: chat, max_tokens: 100}}\n  - model_name: b\n    litellm_params: {{model: openai/y, api_base: '{v1}'}}\n  - model_name: a\n    litellm_params: {{model: openai/z, api_base: '{v1}'}}\n",
        v1 = mock.v1()
    ))
    .await;
    for path in ["/models", "/v1/models"] {
        let r = gw.get(path, None).await;
        assert_eq!(
            r.json(),
            json!({"object": "list", "data": [
                {"id": "a", "object": "model", "created": 1677610602, "owned_by": "openai"},
                {"id": "b", "object": "model", "created": 1677610602, "owned_by": "openai"}]})
        );
    }
    for path in ["/model/info", "/v1/model/info"] {
        let r = gw.get(path, None).await;
        assert!(!r.text.contains("canary"), "{}", r.text);
        let data = r.json()["data"].as_array().unwrap().clone();
        assert_eq!(data.len(), 3);
        assert_eq!(data[0]["model_name"], "a");
        assert_eq!(data[0]["litellm_params"]["model"], "openai/x");
        assert_eq!(data[0]["model_info"]["mode"], "chat");
        assert_eq!(data[0]["model_info"]["id"].as_str().unwrap().len(), 64);
    }
}

#[actix_rt::test]
async fn health_probes_answer_without_a_key() {
    let gw = Gateway::start("general_settings: {master_key: sk-m}\n").await;
    for path in ["/health/liveliness", "/health/liveness"] {
        let r = gw.get(path, None).await;
        assert_eq!((r.status, r.json()), (200, json!("I'm alive!")));
    }
    let r = gw.get("/health/readiness", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "healthy");
    assert_eq!(r.json()["db"], "connected");
    assert_eq!(r.json()["litellm_version"], env!("CARGO_PKG_VERSION"));
}

#[actix_rt::test]
async fn chat_against_a_text_completion_deployment_is_translated_both_ways() {
    let mock = MockUpstream::start().await;
    let gw = Gateway::start(&format!(
        "model_list:\n  - model_name: instruct\n    litellm_params: {{model: text-completion-openai/gpt-3.5-turbo-instruct, api_base: '{}'}}\n",
        mock.v1()
    ))
    .await;
    let r = gw
        .post("/v1/chat/completions", None, &chat_body("instruct"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(mock.last().path, "/v1/completions");
    assert_eq!(mock.last().body["prompt"], "hello there");
    assert_eq!(r.json()["object"], "chat.completion");
    assert_eq!(r.json()["choices"][0]["message"]["content"], "mock says hi");
}

#[actix_rt::test]
async fn wildcard_groups_route_any_matching_name() {
    let mock = MockUpstream::start().await;
    let gw = Gateway::start(&format!(
        "model_list:\n  - model_name: 'openai/*'\n    litellm_params: {{model: 'openai/*', api_base: '{}'}}\n",
        mock.v1()
    ))
    .await;
    let r = gw
        .post("/v1/chat/completions", None, &chat_body("openai/gpt-4o"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(mock.last().body["model"], "gpt-4o");
    let r = gw
        .post("/v1/chat/completions", None, &chat_body("anthropic/claude"))
        .await;
    assert_eq!(r.status, 400);
}
