//! Load balancing by weight, cooldowns from real upstream failures, and retries on other deployments.

use std::time::Duration;

use serde_json::json;

use crate::support::{chat_body, eventually, Behavior, Gateway, MockUpstream};

fn group(bases: &[(&str, &str)], settings: &str) -> String {
    let mut yaml = String::from("model_list:\n");
    for (base, extra) in bases {
        yaml.push_str(&format!(
            "  - model_name: g\n    litellm_params: {{model: openai/m, api_base: '{base}'{extra}}}\n"
        ));
    }
    yaml.push_str(settings);
    yaml
}

#[actix_rt::test]
async fn load_spreads_across_three_deployments_roughly_by_weight() {
    let mocks = [
        MockUpstream::start().await,
        MockUpstream::start().await,
        MockUpstream::start().await,
    ];
    let bases: Vec<String> = mocks.iter().map(MockUpstream::v1).collect();
    let gw = Gateway::start(&group(
        &[
            (&bases[0], ", weight: 1"),
            (&bases[1], ", weight: 2"),
            (&bases[2], ", weight: 5"),
        ],
        "",
    ))
    .await;
    let total = 400;
    for _ in 0..total {
        assert_eq!(
            gw.post("/v1/chat/completions", None, &chat_body("g"))
                .await
                .status,
            200
        );
    }
    let counts: Vec<usize> = mocks.iter().map(MockUpstream::call_count).collect();
    assert_eq!(counts.iter().sum::<usize>(), total);
    for (count, weight) in counts.iter().zip([1.0, 2.0, 5.0]) {
        let expected = total as f64 * weight / 8.0;
        assert!(
            (*count as f64 - expected).abs() < expected * 0.4 + 10.0,
            "counts {counts:?} do not follow weights 1:2:5"
        );
    }
}

#[actix_rt::test]
async fn rpm_is_the_weight_when_no_weight_is_given() {
    let mocks = [MockUpstream::start().await, MockUpstream::start().await];
    let gw = Gateway::start(&group(
        &[
            (&mocks[0].v1(), ", rpm: 10"),
            (&mocks[1].v1(), ", rpm: 990"),
        ],
        "",
    ))
    .await;
    for _ in 0..100 {
        gw.post("/v1/chat/completions", None, &chat_body("g")).await;
    }
    assert!(
        mocks[0].call_count() < 10,
        "{} calls to the rpm-10 deployment",
        mocks[0].call_count()
    );
}

#[actix_rt::test]
async fn a_deployment_in_cooldown_gets_no_traffic() {
    let failing = MockUpstream::start().await;
    let healthy = MockUpstream::start().await;
    failing.set(Behavior::Fail(
        500,
        r#"{"error":{"message":"boom"}}"#.into(),
    ));
    let gw = Gateway::start(&group(
        &[(&failing.v1(), ""), (&healthy.v1(), "")],
        "litellm_settings: {num_retries: 0}\nrouter_settings: {allowed_fails: 1, cooldown_time: 60}\n",
    ))
    .await;
    let mut sent = 0;
    while failing.call_count() < 2 {
        gw.post("/v1/chat/completions", None, &chat_body("g")).await;
        sent += 1;
        assert!(sent < 200, "the failing deployment was never picked");
    }
    assert!(
        eventually(Duration::from_secs(5), async || gw
            .deployment(0)
            .await
            .cooling_until
            .is_some())
        .await
    );
    for _ in 0..40 {
        let r = gw.post("/v1/chat/completions", None, &chat_body("g")).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    assert_eq!(failing.call_count(), 2, "a cooling deployment was called");
}

#[actix_rt::test]
async fn a_429_cools_a_deployment_at_once_when_its_group_has_others() {
    let limited = MockUpstream::start().await;
    let healthy = MockUpstream::start().await;
    limited.set(Behavior::Fail(
        429,
        r#"{"error":{"message":"slow down"}}"#.into(),
    ));
    let gw = Gateway::start(&group(
        &[(&limited.v1(), ""), (&healthy.v1(), "")],
        "litellm_settings: {num_retries: 0}\nrouter_settings: {allowed_fails: 3, cooldown_time: 60}\n",
    ))
    .await;
    let mut sent = 0;
    while limited.call_count() < 1 {
        gw.post("/v1/chat/completions", None, &chat_body("g")).await;
        sent += 1;
        assert!(sent < 200);
    }
    assert!(
        eventually(Duration::from_secs(5), async || gw
            .deployment(0)
            .await
            .cooling_until
            .is_some())
        .await
    );
    for _ in 0..30 {
        gw.post("/v1/chat/completions", None, &chat_body("g")).await;
    }
    assert_eq!(limited.call_count(), 1);
}

#[actix_rt::test]
async fn connection_failures_count_towards_cooldown() {
    let dead = format!(
        "http://127.0.0.1:{}/v1",
        crate::support::binary::free_port()
    );
    let healthy = MockUpstream::start().await;
    let gw = Gateway::start(&group(
        &[(&dead, ""), (&healthy.v1(), "")],
        "litellm_settings: {num_retries: 0}\nrouter_settings: {allowed_fails: 0, cooldown_time: 60}\n",
    ))
    .await;
    let mut failures = 0;
    for _ in 0..60 {
        if gw
            .post("/v1/chat/completions", None, &chat_body("g"))
            .await
            .status
            == 502
        {
            failures += 1;
        }
    }
    assert_eq!(failures, 1, "the dead endpoint kept taking traffic");
}

#[actix_rt::test]
async fn a_failed_attempt_is_retried_on_another_deployment_and_the_header_says_so() {
    let failing = MockUpstream::start().await;
    let healthy = MockUpstream::start().await;
    failing.set(Behavior::Fail(
        503,
        r#"{"error":{"message":"down"}}"#.into(),
    ));
    let gw = Gateway::start(&group(
        &[
            // `order` makes the failing one the first pick, every time.
            (&failing.v1(), ", order: 1"),
            (&healthy.v1(), ", order: 2"),
        ],
        "litellm_settings: {num_retries: 1}\nrouter_settings: {allowed_fails: 100}\n",
    ))
    .await;
    let r = gw.post("/v1/chat/completions", None, &chat_body("g")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("x-litellm-attempted-retries"), Some("1"));
    assert_eq!((failing.call_count(), healthy.call_count()), (1, 1));
}

#[actix_rt::test]
async fn client_errors_are_neither_retried_nor_counted() {
    let mock = MockUpstream::start().await;
    mock.set(Behavior::Fail(400, r#"{"error":{"message":"bad"}}"#.into()));
    let gw = Gateway::start(&group(
        &[(&mock.v1(), "")],
        "router_settings: {allowed_fails: 0, num_retries: 3}\n",
    ))
    .await;
    for _ in 0..5 {
        assert_eq!(
            gw.post("/v1/chat/completions", None, &chat_body("g"))
                .await
                .status,
            400
        );
    }
    assert_eq!(mock.call_count(), 5);
    assert_eq!(gw.deployment(0).await.cooling_until, None);
}

#[actix_rt::test]
async fn when_every_deployment_cools_the_answer_is_a_429_with_retry_after() {
    let mock = MockUpstream::start().await;
    mock.set(Behavior::Fail(
        500,
        r#"{"error":{"message":"boom"}}"#.into(),
    ));
    let gw = Gateway::start(&group(
        &[(&mock.v1(), "")],
        "litellm_settings: {num_retries: 0}\nrouter_settings: {allowed_fails: 0, cooldown_time: 30}\n",
    ))
    .await;
    assert_eq!(
        gw.post("/v1/chat/completions", None, &chat_body("g"))
            .await
            .status,
        500
    );
    assert!(
        eventually(Duration::from_secs(5), async || gw
            .deployment(0)
            .await
            .cooling_until
            .is_some())
        .await
    );
    let r = gw.post("/v1/chat/completions", None, &chat_body("g")).await;
    assert_eq!(r.status, 429, "{}", r.text);
    assert_eq!(r.json()["error"]["type"], "rate_limit_error");
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("model=g"));
    let after: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((25..=30).contains(&after), "retry-after {after}");
    assert_eq!(mock.call_count(), 1);
}

#[actix_rt::test]
async fn disable_cooldowns_keeps_a_failing_deployment_in_rotation() {
    let mock = MockUpstream::start().await;
    mock.set(Behavior::Fail(
        500,
        r#"{"error":{"message":"boom"}}"#.into(),
    ));
    let gw = Gateway::start(&group(
        &[(&mock.v1(), "")],
        "litellm_settings: {num_retries: 0}\nrouter_settings: {allowed_fails: 0, disable_cooldowns: true}\n",
    ))
    .await;
    for _ in 0..5 {
        assert_eq!(
            gw.post("/v1/chat/completions", None, &chat_body("g"))
                .await
                .status,
            500
        );
    }
    assert_eq!(mock.call_count(), 5);
    let _ = json!(null);
}

#[actix_rt::test]
async fn model_group_alias_routes_names_hides_them_and_spreads_over_groups() {
    let (a, b) = (MockUpstream::start().await, MockUpstream::start().await);
    let yaml = format!(
        "model_list:\n  - model_name: a\n    litellm_params: {{model: openai/a, api_base: '{}'}}\n  - model_name: b\n    litellm_params: {{model: openai/b, api_base: '{}'}}\nrouter_settings:\n  model_group_alias:\n    gpt-4: a\n    internal: {{model: b, hidden: true}}\n    everything: [a, b]\n",
        a.v1(),
        b.v1()
    );
    let gw = Gateway::start(&yaml).await;
    let r = gw
        .post("/v1/chat/completions", None, &chat_body("gpt-4"))
        .await;
    assert_eq!((r.status, a.call_count()), (200, 1), "{}", r.text);
    let r = gw
        .post("/v1/chat/completions", None, &chat_body("internal"))
        .await;
    assert_eq!((r.status, b.call_count()), (200, 1), "{}", r.text);
    for _ in 0..60 {
        assert_eq!(
            gw.post("/v1/chat/completions", None, &chat_body("everything"))
                .await
                .status,
            200
        );
    }
    assert!(
        a.call_count() > 10 && b.call_count() > 10,
        "{} / {}",
        a.call_count(),
        b.call_count()
    );
    let listed: Vec<String> = gw.get("/v1/models", None).await.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, ["a", "b", "everything", "gpt-4"]);
}

#[actix_rt::test]
async fn model_info_shows_each_deployments_live_state() {
    let (bad, good) = (MockUpstream::start().await, MockUpstream::start().await);
    bad.set(Behavior::Fail(
        500,
        r#"{"error":{"message":"boom"}}"#.into(),
    ));
    let gw = Gateway::start(&group(
        &[(&bad.v1(), ", order: 1"), (&good.v1(), ", order: 2")],
        "litellm_settings: {num_retries: 1}\nrouter_settings: {allowed_fails: 0, cooldown_time: 60}\n",
    ))
    .await;
    assert_eq!(
        gw.post("/v1/chat/completions", None, &chat_body("g"))
            .await
            .status,
        200
    );
    let info = gw.get("/model/info", None).await.json();
    let (bad_live, good_live) = (&info["data"][0]["live"], &info["data"][1]["live"]);
    assert!(bad_live["cooldown_until"].is_string(), "{info}");
    assert_eq!(bad_live["rpm_used"], 1);
    assert_eq!(good_live["cooldown_until"], serde_json::Value::Null);
    assert_eq!(
        (
            good_live["rpm_used"].as_u64(),
            good_live["tpm_used"].as_u64()
        ),
        (Some(1), Some(10))
    );
    assert_eq!(good_live["in_flight"], 0);
    assert!(good_live["latency_ms"].as_f64().unwrap() >= 0.0);
}

#[actix_rt::test]
async fn lower_order_deployments_take_all_traffic_until_they_are_unavailable() {
    let (first, second) = (MockUpstream::start().await, MockUpstream::start().await);
    let gw = Gateway::start(&group(
        &[(&second.v1(), ", order: 2, weight: 1000"), (&first.v1(), ", order: 1, weight: 1")],
        "litellm_settings: {num_retries: 1}\nrouter_settings: {allowed_fails: 0, cooldown_time: 60}\n",
    ))
    .await;
    for _ in 0..20 {
        assert_eq!(
            gw.post("/v1/chat/completions", None, &chat_body("g"))
                .await
                .status,
            200
        );
    }
    assert_eq!((first.call_count(), second.call_count()), (20, 0));
    first.set(Behavior::Fail(
        500,
        r#"{"error":{"message":"boom"}}"#.into(),
    ));
    for _ in 0..10 {
        assert_eq!(
            gw.post("/v1/chat/completions", None, &chat_body("g"))
                .await
                .status,
            200
        );
    }
    assert_eq!(
        first.call_count(),
        21,
        "the order-1 deployment cooled after one failure"
    );
    assert_eq!(second.call_count(), 10);
}

#[actix_rt::test]
async fn retry_policy_sets_retries_per_error_class() {
    let (bad, good) = (MockUpstream::start().await, MockUpstream::start().await);
    bad.set(Behavior::Fail(
        400,
        r#"{"error":{"message":"odd request"}}"#.into(),
    ));
    let two = [(bad.v1(), ", order: 1"), (good.v1(), ", order: 2")];
    let pairs: Vec<(&str, &str)> = two.iter().map(|(b, e)| (b.as_str(), *e)).collect();
    // By default a 400 is the request's fault: no retry.
    let gw = Gateway::start(&group(&pairs, "litellm_settings: {num_retries: 3}\n")).await;
    assert_eq!(
        gw.post("/v1/chat/completions", None, &chat_body("g"))
            .await
            .status,
        400
    );
    assert_eq!(good.call_count(), 0);
    gw.stop().await;
    // retry_policy can grant 400s a retry (on another deployment)...
    let gw = Gateway::start(&group(
        &pairs,
        "litellm_settings: {num_retries: 3}\nrouter_settings: {retry_policy: {BadRequestErrorRetries: 1}}\n",
    ))
    .await;
    let r = gw.post("/v1/chat/completions", None, &chat_body("g")).await;
    assert_eq!(
        (r.status, r.header("x-litellm-attempted-retries")),
        (200, Some("1")),
        "{}",
        r.text
    );
    gw.stop().await;
    // ...and take retries away from a class num_retries would retry.
    bad.set(Behavior::Fail(
        503,
        r#"{"error":{"message":"down"}}"#.into(),
    ));
    let before = good.call_count();
    let gw = Gateway::start(&group(
        &pairs,
        "litellm_settings: {num_retries: 3}\nrouter_settings: {retry_policy: {InternalServerErrorRetries: 0}, disable_cooldowns: true}\n",
    ))
    .await;
    assert_eq!(
        gw.post("/v1/chat/completions", None, &chat_body("g"))
            .await
            .status,
        503
    );
    assert_eq!(good.call_count(), before);
    assert!(llmgate::config::Settings::from_yaml(
        "router_settings: {retry_policy: {NopeRetries: 1}}\n",
        &Default::default()
    )
    .unwrap_err()
    .to_string()
    .starts_with("router_settings.retry_policy.NopeRetries: "));
}

#[actix_rt::test]
async fn an_upstream_retry_after_is_the_least_cooldown_and_the_next_429_says_when() {
    let mock = MockUpstream::start().await;
    mock.set(Behavior::RateLimited(30));
    let gw = Gateway::start(&group(
        &[(&mock.v1(), "")],
        "litellm_settings: {num_retries: 0}\nrouter_settings: {allowed_fails: 0, cooldown_time: 1}\n",
    ))
    .await;
    let r = gw.post("/v1/chat/completions", None, &chat_body("g")).await;
    assert_eq!(r.status, 429, "{}", r.text);
    let sent = std::time::Instant::now();
    assert!(
        eventually(Duration::from_secs(2), async || gw
            .deployment(0)
            .await
            .cooling_until
            .is_some_and(|until| until >= sent + Duration::from_secs(28)))
        .await,
        "the cooldown is shorter than the upstream's retry-after: {:?}",
        gw.deployment(0).await.cooling_until
    );
    let r = gw.post("/v1/chat/completions", None, &chat_body("g")).await;
    assert_eq!(r.status, 429, "{}", r.text);
    let after: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((28..=30).contains(&after), "retry-after {after}");
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("1 cooling down"));
    assert_eq!(mock.call_count(), 1);
}

#[actix_rt::test]
async fn a_timed_out_attempt_counts_against_its_deployment_and_is_retried_on_another() {
    let (slow, fast) = (MockUpstream::start().await, MockUpstream::start().await);
    slow.set(Behavior::Delay(Duration::from_secs(2)));
    let gw = Gateway::start(&group(
        &[
            (&slow.v1(), ", order: 1, timeout: 0.2"),
            (&fast.v1(), ", order: 2"),
        ],
        "litellm_settings: {num_retries: 1}\n",
    ))
    .await;
    let started = std::time::Instant::now();
    let r = gw.post("/v1/chat/completions", None, &chat_body("g")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(started.elapsed() < Duration::from_millis(1500));
    assert_eq!(r.header("x-litellm-attempted-retries"), Some("1"));
    assert_eq!((slow.call_count(), fast.call_count()), (1, 1));
    assert!(
        eventually(Duration::from_secs(2), async || gw
            .deployment(0)
            .await
            .failures_this_minute
            == 1)
        .await
    );
}
