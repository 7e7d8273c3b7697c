//! Fallbacks: a failed group hands the request to the next group (or deployment) in its chain.

use serde_json::json;

use crate::support::{chat_body, Behavior, Gateway, MockUpstream};

fn group(name: &str, mock: &MockUpstream, extra: &str) -> String {
    format!(
        "  - model_name: {name}\n    litellm_params: {{model: openai/{name}-upstream, api_base: '{}'{extra}}}\n",
        mock.v1()
    )
}

const BOOM: &str = r#"{"error":{"message":"boom"}}"#;

#[actix_rt::test]
async fn a_failing_group_falls_back_and_the_header_counts_it() {
    let (bad, good) = (MockUpstream::start().await, MockUpstream::start().await);
    bad.set(Behavior::Fail(500, BOOM.into()));
    let yaml = format!(
        "model_list:\n{}{}litellm_settings:\n  num_retries: 0\n  fallbacks: [{{a: [b]}}]\n",
        group("a", &bad, ""),
        group("b", &good, "")
    );
    let gw = Gateway::start(&yaml).await;
    let r = gw.post("/v1/chat/completions", None, &chat_body("a")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("x-litellm-attempted-fallbacks"), Some("1"));
    assert_eq!(r.header("x-litellm-model-group"), Some("b"));
    assert_eq!(good.last().body["model"], "b-upstream");
    assert_eq!((bad.call_count(), good.call_count()), (1, 1));
}

#[actix_rt::test]
async fn context_window_errors_use_their_own_chain_and_plain_400s_none() {
    let (small, big, other) = (
        MockUpstream::start().await,
        MockUpstream::start().await,
        MockUpstream::start().await,
    );
    small.set(Behavior::Fail(
        400,
        r#"{"error":{"message":"This model's maximum context length is 4097 tokens","code":"context_length_exceeded"}}"#.into(),
    ));
    let yaml = format!(
        "model_list:\n{}{}{}litellm_settings:\n  fallbacks: [{{small: [other]}}]\n  context_window_fallbacks: [{{small: [big]}}]\n",
        group("small", &small, ""),
        group("big", &big, ""),
        group("other", &other, "")
    );
    let gw = Gateway::start(&yaml).await;
    let r = gw
        .post("/v1/chat/completions", None, &chat_body("small"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("x-litellm-model-group"), Some("big"));
    assert_eq!(other.call_count(), 0);
    small.set(Behavior::Fail(
        400,
        r#"{"error":{"message":"bad temperature"}}"#.into(),
    ));
    let r = gw
        .post("/v1/chat/completions", None, &chat_body("small"))
        .await;
    assert_eq!(
        r.status, 400,
        "the request's own fault is not fallen back from"
    );
    assert_eq!((big.call_count(), other.call_count()), (1, 0));
}

#[actix_rt::test]
async fn content_policy_refusals_use_content_policy_fallbacks() {
    let lenient = MockUpstream::start().await;
    let yaml = format!(
        "model_list:\n  - model_name: strict\n    litellm_params: {{model: openai/s, mock_response: litellm.ContentPolicyViolationError}}\n{}litellm_settings:\n  content_policy_fallbacks: [{{strict: [lenient]}}]\n",
        group("lenient", &lenient, "")
    );
    let gw = Gateway::start(&yaml).await;
    let r = gw
        .post("/v1/chat/completions", None, &chat_body("strict"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(lenient.call_count(), 1);
}

#[actix_rt::test]
async fn default_fallbacks_serve_any_group_and_the_request_can_name_its_own() {
    let (bad, safe, chosen) = (
        MockUpstream::start().await,
        MockUpstream::start().await,
        MockUpstream::start().await,
    );
    bad.set(Behavior::Fail(503, BOOM.into()));
    let yaml = format!(
        "model_list:\n{}{}{}litellm_settings:\n  num_retries: 0\n  default_fallbacks: [safe]\n",
        group("bad", &bad, ""),
        group("safe", &safe, ""),
        group("chosen", &chosen, "")
    );
    let gw = Gateway::start(&yaml).await;
    let r = gw
        .post("/v1/chat/completions", None, &chat_body("bad"))
        .await;
    assert_eq!(
        r.header("x-litellm-model-group"),
        Some("safe"),
        "{}",
        r.text
    );
    let mut body = chat_body("bad");
    body["fallbacks"] = json!(["chosen"]);
    let r = gw.post("/v1/chat/completions", None, &body).await;
    assert_eq!(
        r.header("x-litellm-model-group"),
        Some("chosen"),
        "{}",
        r.text
    );
    assert!(
        chosen.last().body.get("fallbacks").is_none(),
        "fallbacks are not forwarded"
    );
    assert_eq!(safe.call_count(), 1);
}

#[actix_rt::test]
async fn max_fallbacks_caps_the_chain_and_the_last_error_is_returned() {
    let (a, b, c) = (
        MockUpstream::start().await,
        MockUpstream::start().await,
        MockUpstream::start().await,
    );
    a.set(Behavior::Fail(500, BOOM.into()));
    b.set(Behavior::Fail(
        502,
        r#"{"error":{"message":"b is down too"}}"#.into(),
    ));
    let yaml = format!(
        "model_list:\n{}{}{}litellm_settings:\n  num_retries: 0\n  fallbacks: [{{a: [b, c]}}]\nrouter_settings:\n  max_fallbacks: 1\n  disable_cooldowns: true\n",
        group("a", &a, ""),
        group("b", &b, ""),
        group("c", &c, "")
    );
    let gw = Gateway::start(&yaml).await;
    let r = gw.post("/v1/chat/completions", None, &chat_body("a")).await;
    assert_eq!(r.status, 502, "{}", r.text);
    assert!(r.text.contains("b is down too"));
    assert_eq!(c.call_count(), 0);
}

#[actix_rt::test]
async fn a_fallback_may_name_a_deployment_id() {
    let (bad, pinned, sibling) = (
        MockUpstream::start().await,
        MockUpstream::start().await,
        MockUpstream::start().await,
    );
    bad.set(Behavior::Fail(500, BOOM.into()));
    let yaml = format!(
        "model_list:\n{}{}    model_info: {{id: dep-pinned}}\n{}litellm_settings:\n  num_retries: 0\n  fallbacks: [{{a: [dep-pinned]}}]\n",
        group("a", &bad, ""),
        group("b", &pinned, ""),
        group("b", &sibling, "")
    );
    let gw = Gateway::start(&yaml).await;
    for _ in 0..5 {
        let r = gw.post("/v1/chat/completions", None, &chat_body("a")).await;
        assert_eq!(
            r.header("x-litellm-model-id"),
            Some("dep-pinned"),
            "{}",
            r.text
        );
    }
    assert_eq!(sibling.call_count(), 0);
}

#[actix_rt::test]
async fn a_group_with_every_deployment_cooling_falls_back() {
    let (bad, good) = (MockUpstream::start().await, MockUpstream::start().await);
    bad.set(Behavior::Fail(500, BOOM.into()));
    let yaml = format!(
        "model_list:\n{}{}litellm_settings:\n  num_retries: 0\n  fallbacks: [{{a: [b]}}]\nrouter_settings:\n  allowed_fails: 0\n  cooldown_time: 60\n",
        group("a", &bad, ""),
        group("b", &good, "")
    );
    let gw = Gateway::start(&yaml).await;
    for _ in 0..3 {
        let r = gw.post("/v1/chat/completions", None, &chat_body("a")).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    assert_eq!(
        bad.call_count(),
        1,
        "the cooling group is skipped straight to its fallback"
    );
    assert_eq!(good.call_count(), 3);
}

#[actix_rt::test]
async fn malformed_fallbacks_are_startup_errors_naming_the_path() {
    let err = llmgate::config::Settings::from_yaml(
        "litellm_settings:\n  fallbacks: [{a: 5}]\n",
        &llmgate::config::CliOverrides::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("litellm_settings.fallbacks[0]: "), "{err}");
}
