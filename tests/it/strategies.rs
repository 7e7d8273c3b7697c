//! Routing strategies and the router's limits, seen from outside: which mock upstream took
//! how many calls, and what the client got back.

use std::time::{Duration, Instant};

use futures_util::future::{join_all, select, Either};
use serde_json::{json, Value};

use crate::support::gateway::Reply;
use crate::support::{chat_body, eventually, Behavior, Gateway, MockUpstream};

/// One group `g` with a deployment per `(api_base, extra litellm_params)`, then `settings`.
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

const BOOM: &str = r#"{"error":{"message":"boom"}}"#;

async fn chat(gw: &Gateway, body: &Value) -> Reply {
    gw.post("/v1/chat/completions", None, body).await
}

/// `chat_body("g")` with `stream: true`.
fn stream_body() -> Value {
    let mut body = chat_body("g");
    body["stream"] = json!(true);
    body
}

/// `chat_body("g")` with `max_tokens`.
fn with_max_tokens(max_tokens: u64) -> Value {
    let mut body = chat_body("g");
    body["max_tokens"] = json!(max_tokens);
    body
}

/// `n` requests in flight together, the i-th sent `i * stagger` after the first.
async fn concurrently(gw: &Gateway, n: usize, stagger: Duration, body: &Value) -> Vec<Reply> {
    join_all((0..n).map(|i| async move {
        actix_rt::time::sleep(stagger * i as u32).await;
        chat(gw, body).await
    }))
    .await
}

/// Lets the deployments publish their latest state to the router (it is at most 25 ms stale).
async fn let_router_catch_up() {
    actix_rt::time::sleep(Duration::from_millis(60)).await;
}

fn statuses(replies: &[Reply]) -> Vec<u16> {
    replies.iter().map(|r| r.status).collect()
}

#[actix_rt::test]
async fn least_busy_steers_new_requests_away_from_the_deployment_with_requests_piling_up() {
    let (slow, fast) = (MockUpstream::start().await, MockUpstream::start().await);
    slow.set(Behavior::Delay(Duration::from_millis(1200)));
    let gw = Gateway::start(&group(
        &[(&slow.v1(), ""), (&fast.v1(), "")],
        "router_settings: {routing_strategy: least-busy}\n",
    ))
    .await;
    // A client that sends its next request as soon as the last one was answered or got stuck
    // at the slow deployment: the slow one's requests stay in flight while the rest go on.
    let body = chat_body("g");
    let mut in_flight = Vec::new();
    for _ in 0..16 {
        let before = slow.call_count();
        let request = Box::pin(chat(&gw, &body));
        let stuck = Box::pin(async {
            while slow.call_count() == before {
                actix_rt::time::sleep(Duration::from_millis(5)).await;
            }
        });
        match select(request, stuck).await {
            Either::Left((reply, _)) => assert_eq!(reply.status, 200, "{}", reply.text),
            Either::Right(((), request)) => in_flight.push(request),
        }
        let_router_catch_up().await;
    }
    let (a, b) = (slow.call_count(), fast.call_count());
    assert_eq!(a + b, 16);
    assert!(
        a <= 3,
        "least-busy sent {a} requests to the busy deployment and {b} to the idle one"
    );
    for reply in join_all(in_flight).await {
        assert_eq!(reply.status, 200, "{}", reply.text);
    }
}

#[actix_rt::test]
async fn usage_based_v2_makes_rpm_a_hard_limit_and_answers_429_past_it() {
    let (a, b) = (MockUpstream::start().await, MockUpstream::start().await);
    let gw = Gateway::start(&group(
        &[(&a.v1(), ", rpm: 3"), (&b.v1(), ", rpm: 3")],
        "router_settings: {routing_strategy: usage-based-routing-v2}\n",
    ))
    .await;
    for i in 0..6 {
        let r = chat(&gw, &chat_body("g")).await;
        assert_eq!(r.status, 200, "request {i}: {}", r.text);
    }
    assert_eq!((a.call_count(), b.call_count()), (3, 3));
    let r = chat(&gw, &chat_body("g")).await;
    assert_eq!(r.status, 429, "{}", r.text);
    let error = &r.json()["error"];
    assert_eq!(error["type"], "rate_limit_error", "{}", r.text);
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("model=g"), "{message}");
    assert!(message.contains("at its rpm"), "{message}");
    let after: u64 = r
        .header("retry-after")
        .expect("a retry-after header")
        .parse()
        .unwrap();
    assert!((1..=60).contains(&after), "retry-after {after}");
    assert_eq!(
        (a.call_count(), b.call_count()),
        (3, 3),
        "a deployment took a 4th call"
    );
}

#[actix_rt::test]
async fn usage_based_v2_reserves_prompt_plus_max_tokens_and_reconciles_to_real_usage() {
    let mock = MockUpstream::start().await;
    let gw = Gateway::start(&group(
        &[(&mock.v1(), ", tpm: 100")],
        "litellm_settings: {num_retries: 0}\nrouter_settings: {routing_strategy: usage-based-routing-v2}\n",
    ))
    .await;
    // The prompt plus 500 tokens of answer can never fit in 100 tokens a minute.
    let r = chat(&gw, &with_max_tokens(500)).await;
    assert_eq!(r.status, 429, "{}", r.text);
    assert_eq!(r.json()["error"]["type"], "rate_limit_error");
    assert_eq!(mock.call_count(), 0, "the upstream was called");
    // About 8 prompt tokens + 50 are reserved; the call really uses what the mock reports (10).
    let r = chat(&gw, &with_max_tokens(50)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let used = r.json()["usage"]["total_tokens"].as_u64().unwrap();
    assert!(
        eventually(Duration::from_secs(2), async || gw
            .deployment(0)
            .await
            .tokens_this_minute
            == used)
        .await,
        "tokens_this_minute is {}, the call used {used}",
        gw.deployment(0).await.tokens_this_minute
    );
    // 10 used + ~78 asked fits under 100 only if the ~58 reserved were given back.
    let r = chat(&gw, &with_max_tokens(70)).await;
    assert_eq!(
        r.status, 200,
        "the first call's reservation still counts: {}",
        r.text
    );
    assert_eq!(mock.call_count(), 2);
    assert!(
        eventually(Duration::from_secs(2), async || gw
            .deployment(0)
            .await
            .tokens_this_minute
            == 2 * used)
        .await
    );
}

#[actix_rt::test]
async fn rpm_is_only_a_weight_under_simple_shuffle_unless_pre_call_checks_are_on() {
    let mock = MockUpstream::start().await;
    let gw = Gateway::start(&group(&[(&mock.v1(), ", rpm: 1")], "")).await;
    for i in 0..3 {
        let r = chat(&gw, &chat_body("g")).await;
        assert_eq!(r.status, 200, "request {i}: {}", r.text);
    }
    assert_eq!(mock.call_count(), 3);
    gw.stop().await;

    let strict = MockUpstream::start().await;
    let gw = Gateway::start(&group(
        &[(&strict.v1(), ", rpm: 1")],
        "router_settings: {enable_pre_call_checks: true}\n",
    ))
    .await;
    let r = chat(&gw, &chat_body("g")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = chat(&gw, &chat_body("g")).await;
    assert_eq!(r.status, 429, "{}", r.text);
    assert_eq!(r.json()["error"]["type"], "rate_limit_error");
    assert_eq!(strict.call_count(), 1);
}

/// Groups `small` (50-token window) and `big`, each with one deployment.
fn small_and_big(small: &MockUpstream, big: &MockUpstream, settings: &str) -> String {
    format!(
        "model_list:\n  - model_name: small\n    litellm_params: {{model: openai/m, api_base: '{}'}}\n    model_info: {{max_input_tokens: 50}}\n  - model_name: big\n    litellm_params: {{model: openai/m, api_base: '{}'}}\n    model_info: {{max_input_tokens: 100000}}\nrouter_settings: {{enable_pre_call_checks: true}}\n{settings}",
        small.v1(),
        big.v1()
    )
}

fn long_prompt(model: &str) -> Value {
    let text = "word ".repeat(400);
    json!({"model": model, "messages": [{"role": "user", "content": text}]})
}

#[actix_rt::test]
async fn pre_call_checks_send_a_prompt_too_long_for_the_window_to_context_window_fallbacks() {
    let (small, big) = (MockUpstream::start().await, MockUpstream::start().await);
    let gw = Gateway::start(&small_and_big(
        &small,
        &big,
        "litellm_settings: {context_window_fallbacks: [{small: [big]}]}\n",
    ))
    .await;
    let r = chat(&gw, &long_prompt("small")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("x-litellm-attempted-fallbacks"), Some("1"));
    assert_eq!(r.header("x-litellm-model-group"), Some("big"));
    assert_eq!(
        (small.call_count(), big.call_count()),
        (0, 1),
        "the small deployment was called with a prompt it cannot hold"
    );
    let r = chat(&gw, &chat_body("small")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("x-litellm-attempted-fallbacks"), Some("0"));
    assert_eq!((small.call_count(), big.call_count()), (1, 1));
    gw.stop().await;

    // Without a fallback the client is told the prompt is too long.
    let (small, big) = (MockUpstream::start().await, MockUpstream::start().await);
    let gw = Gateway::start(&small_and_big(&small, &big, "")).await;
    let r = chat(&gw, &long_prompt("small")).await;
    assert_eq!(r.status, 400, "{}", r.text);
    let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("ContextWindowExceededError"), "{message}");
    assert_eq!((small.call_count(), big.call_count()), (0, 0));
}

#[actix_rt::test]
async fn max_parallel_requests_caps_a_deployments_requests_in_flight() {
    let mock = MockUpstream::start().await;
    mock.set(Behavior::Delay(Duration::from_millis(300)));
    let gw = Gateway::start(&group(
        &[(&mock.v1(), ", max_parallel_requests: 2")],
        "litellm_settings: {num_retries: 0}\n",
    ))
    .await;
    let replies = concurrently(&gw, 4, Duration::ZERO, &chat_body("g")).await;
    let mut got = statuses(&replies);
    got.sort_unstable();
    assert_eq!(got, [200, 200, 429, 429]);
    for r in replies.iter().filter(|r| r.status == 429) {
        assert_eq!(r.json()["error"]["type"], "rate_limit_error", "{}", r.text);
        assert!(r.text.contains("max_parallel_requests"), "{}", r.text);
    }
    assert_eq!(mock.call_count(), 2);
    gw.stop().await;

    // With a sibling free, the excess goes there instead of failing.
    let (capped, free) = (MockUpstream::start().await, MockUpstream::start().await);
    capped.set(Behavior::Delay(Duration::from_millis(300)));
    let gw = Gateway::start(&group(
        &[
            (&capped.v1(), ", max_parallel_requests: 1"),
            (&free.v1(), ""),
        ],
        "litellm_settings: {num_retries: 0}\n",
    ))
    .await;
    let replies = concurrently(&gw, 6, Duration::ZERO, &chat_body("g")).await;
    assert_eq!(statuses(&replies), [200; 6]);
    assert!(
        capped.call_count() <= 1,
        "{} requests in flight at once on a deployment limited to 1",
        capped.call_count()
    );
    assert_eq!(capped.call_count() + free.call_count(), 6);
}

/// Sends sequential requests until both mocks were called (each is measured once).
async fn until_both_called(gw: &Gateway, a: &MockUpstream, b: &MockUpstream, body: &Value) {
    let mut sent = 0;
    while a.call_count() == 0 || b.call_count() == 0 {
        let r = chat(gw, body).await;
        assert_eq!(r.status, 200, "{}", r.text);
        sent += 1;
        assert!(sent < 12, "an unmeasured deployment was not tried first");
        let_router_catch_up().await;
    }
}

#[actix_rt::test]
async fn latency_based_prefers_the_faster_deployment_unless_the_buffer_admits_both() {
    let (slow, fast) = (MockUpstream::start().await, MockUpstream::start().await);
    slow.set(Behavior::Delay(Duration::from_millis(150)));
    let gw = Gateway::start(&group(
        &[(&slow.v1(), ""), (&fast.v1(), "")],
        "router_settings: {routing_strategy: latency-based-routing}\n",
    ))
    .await;
    until_both_called(&gw, &slow, &fast, &chat_body("g")).await;
    let before = fast.call_count();
    for _ in 0..20 {
        assert_eq!(chat(&gw, &chat_body("g")).await.status, 200);
    }
    let to_fast = fast.call_count() - before;
    assert!(to_fast >= 18, "only {to_fast} of 20 went to the faster one");
    gw.stop().await;

    // A buffer of 1000x the fastest latency admits both.
    let (slow, fast) = (MockUpstream::start().await, MockUpstream::start().await);
    slow.set(Behavior::Delay(Duration::from_millis(30)));
    let gw = Gateway::start(&group(
        &[(&slow.v1(), ""), (&fast.v1(), "")],
        "router_settings:\n  routing_strategy: latency-based-routing\n  routing_strategy_args: {lowest_latency_buffer: 1000}\n",
    ))
    .await;
    until_both_called(&gw, &slow, &fast, &chat_body("g")).await;
    let before = (slow.call_count(), fast.call_count());
    for _ in 0..30 {
        assert_eq!(chat(&gw, &chat_body("g")).await.status, 200);
    }
    let got = (slow.call_count() - before.0, fast.call_count() - before.1);
    assert!(
        got.0 >= 5 && got.1 >= 5,
        "with the buffer, traffic was split {got:?}"
    );
}

#[actix_rt::test]
async fn latency_based_judges_streams_by_time_to_first_token_and_others_per_token() {
    // `quick` answers whole replies at once but streams its first chunk 150 ms late; `steady`
    // waits 60 ms before any reply, then streams at once.
    let (quick, steady) = (MockUpstream::start().await, MockUpstream::start().await);
    steady.set(Behavior::Delay(Duration::from_millis(60)));
    let gw = Gateway::start(&group(
        &[(&quick.v1(), ""), (&steady.v1(), "")],
        "router_settings:\n  routing_strategy: latency-based-routing\n  routing_strategy_args: {max_latency_list_size: 50}\n",
    ))
    .await;
    // Whole replies: both are measured, then `quick` takes them (lower latency per token).
    until_both_called(&gw, &quick, &steady, &chat_body("g")).await;
    for _ in 0..20 {
        assert_eq!(chat(&gw, &chat_body("g")).await.status, 200);
    }
    assert!(
        quick.call_count() >= 19,
        "whole replies went {} / {}",
        quick.call_count(),
        steady.call_count()
    );
    quick.set(Behavior::Normal {
        chunks: 3,
        gap: Duration::from_millis(150),
        usage: true,
    });
    let_router_catch_up().await;
    // Streams: each is measured once for its time to first token.
    let streamed_before = (quick.call_count(), steady.call_count());
    let mut sent = 0;
    while quick.call_count() == streamed_before.0 || steady.call_count() == streamed_before.1 {
        let r = chat(&gw, &stream_body()).await;
        assert_eq!(r.status, 200, "{}", r.text);
        sent += 1;
        assert!(
            sent < 6,
            "a deployment without a first-token time was not tried"
        );
        let_router_catch_up().await;
    }
    // Now streams go to `steady` (60 ms to first token against 150 ms)...
    let before = steady.call_count();
    for _ in 0..10 {
        let r = chat(&gw, &stream_body()).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let streams_to_steady = steady.call_count() - before;
    // ...while whole replies still go to `quick` (its mean per token is still the lowest).
    let before = quick.call_count();
    for _ in 0..10 {
        assert_eq!(chat(&gw, &chat_body("g")).await.status, 200);
    }
    let whole_to_quick = quick.call_count() - before;
    assert!(
        streams_to_steady >= 9,
        "only {streams_to_steady} of 10 streams went to the earlier first token"
    );
    assert!(
        whole_to_quick >= 9,
        "only {whole_to_quick} of 10 whole replies went to the lower latency per token"
    );
}

#[actix_rt::test]
async fn cost_based_takes_the_cheapest_and_the_dearer_only_while_it_cools() {
    let (cheap, dear) = (MockUpstream::start().await, MockUpstream::start().await);
    let gw = Gateway::start(&group(
        &[
            (
                &dear.v1(),
                ", input_cost_per_token: 0.00001, output_cost_per_token: 0.00003",
            ),
            (
                &cheap.v1(),
                ", input_cost_per_token: 0.000001, output_cost_per_token: 0.000002",
            ),
        ],
        "litellm_settings: {num_retries: 0}\nrouter_settings: {routing_strategy: cost-based-routing, allowed_fails: 0, cooldown_time: 60}\n",
    ))
    .await;
    for _ in 0..10 {
        assert_eq!(chat(&gw, &chat_body("g")).await.status, 200);
    }
    assert_eq!((cheap.call_count(), dear.call_count()), (10, 0));
    cheap.set(Behavior::Fail(500, BOOM.into()));
    assert_eq!(chat(&gw, &chat_body("g")).await.status, 500);
    assert!(
        eventually(Duration::from_secs(2), async || gw
            .deployment(1)
            .await
            .cooling_until
            .is_some())
        .await
    );
    for _ in 0..5 {
        let r = chat(&gw, &chat_body("g")).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    assert_eq!((cheap.call_count(), dear.call_count()), (11, 5));
}

/// Sends requests until `mock` has been called `calls` times in all.
async fn until_called(gw: &Gateway, mock: &MockUpstream, calls: usize) {
    let mut sent = 0;
    while mock.call_count() < calls {
        chat(gw, &chat_body("g")).await;
        sent += 1;
        assert!(sent < 100, "the deployment was never picked");
    }
}

#[actix_rt::test]
async fn allowed_fails_policy_counts_an_error_class_against_its_own_allowance() {
    let limited = MockUpstream::start().await;
    let healthy = MockUpstream::start().await;
    limited.set(Behavior::Fail(
        429,
        r#"{"error":{"message":"slow down"}}"#.into(),
    ));
    let gw = Gateway::start(&group(
        &[(&limited.v1(), ", weight: 1000"), (&healthy.v1(), ", weight: 1")],
        "litellm_settings: {num_retries: 0}\nrouter_settings:\n  cooldown_time: 60\n  allowed_fails_policy: {RateLimitErrorAllowedFails: 3}\n",
    ))
    .await;
    // Without the policy, a 429 in a group with others cools at once; with it, three are allowed.
    for n in 1..=3 {
        until_called(&gw, &limited, n).await;
        assert_eq!(
            gw.deployment(0).await.cooling_until,
            None,
            "cooling after {n} rate-limit errors"
        );
    }
    until_called(&gw, &limited, 4).await;
    assert!(
        eventually(Duration::from_secs(2), async || gw
            .deployment(0)
            .await
            .cooling_until
            .is_some())
        .await,
        "not cooling after a 4th rate-limit error"
    );
    for _ in 0..10 {
        assert_eq!(chat(&gw, &chat_body("g")).await.status, 200);
    }
    assert_eq!(limited.call_count(), 4);
    gw.stop().await;

    // The policy beats allowed_fails for the class it names: one 500 is one too many.
    let down = MockUpstream::start().await;
    down.set(Behavior::Fail(500, BOOM.into()));
    let gw = Gateway::start(&group(
        &[(&down.v1(), "")],
        "litellm_settings: {num_retries: 0}\nrouter_settings:\n  allowed_fails: 5\n  cooldown_time: 60\n  allowed_fails_policy: {InternalServerErrorAllowedFails: 0}\n",
    ))
    .await;
    assert_eq!(chat(&gw, &chat_body("g")).await.status, 500);
    assert!(
        eventually(Duration::from_secs(2), async || gw
            .deployment(0)
            .await
            .cooling_until
            .is_some())
        .await,
        "allowed_fails (5) was used instead of the policy (0)"
    );
    assert_eq!(chat(&gw, &chat_body("g")).await.status, 429);
    assert_eq!(down.call_count(), 1);
}

#[actix_rt::test]
async fn retry_after_is_the_least_wait_before_retrying_the_same_deployment() {
    let mock = MockUpstream::start().await;
    mock.set(Behavior::Fail(500, BOOM.into()));
    let gw = Gateway::start(&group(
        &[(&mock.v1(), "")],
        "litellm_settings: {num_retries: 1}\nrouter_settings: {retry_after: 1, disable_cooldowns: true}\n",
    ))
    .await;
    let started = Instant::now();
    let r = chat(&gw, &chat_body("g")).await;
    let took = started.elapsed();
    assert_eq!(r.status, 500, "{}", r.text);
    assert_eq!(mock.call_count(), 2);
    assert!(
        took >= Duration::from_secs(1),
        "retried after {took:?}, under retry_after"
    );
    gw.stop().await;

    // Without it the first backoff is 0.5 s +-25%.
    let mock = MockUpstream::start().await;
    mock.set(Behavior::Fail(500, BOOM.into()));
    let gw = Gateway::start(&group(
        &[(&mock.v1(), "")],
        "litellm_settings: {num_retries: 1}\nrouter_settings: {disable_cooldowns: true}\n",
    ))
    .await;
    let started = Instant::now();
    let r = chat(&gw, &chat_body("g")).await;
    let took = started.elapsed();
    assert_eq!(r.status, 500, "{}", r.text);
    assert_eq!(mock.call_count(), 2);
    assert!(
        took >= Duration::from_millis(370) && took < Duration::from_secs(1),
        "retried after {took:?}"
    );
}

#[actix_rt::test]
async fn a_stream_timeout_in_the_body_bounds_the_wait_for_the_first_byte() {
    let mock = MockUpstream::start().await;
    mock.set(Behavior::Delay(Duration::from_secs(3)));
    let gw = Gateway::start(&group(
        &[(&mock.v1(), "")],
        "litellm_settings: {num_retries: 0}\n",
    ))
    .await;
    let mut body = stream_body();
    body["stream_timeout"] = json!(0.1);
    let started = Instant::now();
    let r = chat(&gw, &body).await;
    let took = started.elapsed();
    assert_eq!(r.status, 408, "{}", r.text);
    assert_eq!(r.json()["error"]["type"], "timeout", "{}", r.text);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Timeout"),
        "{}",
        r.text
    );
    // Far under the upstream's 3 s, with room for a loaded machine.
    assert!(
        took < Duration::from_millis(1500),
        "timed out after {took:?}"
    );
    assert!(
        mock.last().body.get("stream_timeout").is_none(),
        "stream_timeout was sent upstream"
    );
    let r = chat(&gw, &stream_body()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains("[DONE]"), "{}", r.text);
    assert_eq!(mock.call_count(), 2);
}

#[actix_rt::test]
async fn max_parallel_requests_never_refuses_a_strictly_sequential_client() {
    let mock = MockUpstream::start().await;
    mock.set(Behavior::Delay(Duration::from_millis(50)));
    let gw = Gateway::start(&group(
        &[(&mock.v1(), ", max_parallel_requests: 1")],
        "litellm_settings: {num_retries: 0}\n",
    ))
    .await;
    // One request at a time never has two in flight.
    let mut got = Vec::new();
    for _ in 0..5 {
        let r = chat(&gw, &chat_body("g")).await;
        got.push((r.status, r.header("retry-after").map(str::to_owned)));
    }
    assert_eq!(gw.deployment(0).await.in_flight, 0);
    assert!(
        got.iter().all(|(status, _)| *status == 200),
        "sequential requests got {got:?}; the upstream saw {} calls",
        mock.call_count()
    );
}

#[actix_rt::test]
async fn a_tpm_limit_admits_the_next_request_once_the_last_one_is_reconciled() {
    let mock = MockUpstream::start().await;
    let gw = Gateway::start(&group(
        &[(&mock.v1(), ", tpm: 100")],
        "litellm_settings: {num_retries: 0}\nrouter_settings: {routing_strategy: usage-based-routing-v2}\n",
    ))
    .await;
    let r = chat(&gw, &with_max_tokens(50)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // The deployment itself knows the call used 10 tokens, so ~58 more fit under 100...
    assert!(
        eventually(Duration::from_secs(2), async || gw
            .deployment(0)
            .await
            .tokens_this_minute
            == 10)
        .await
    );
    // ...even if the router's view still counts the ~58 reserved for the finished call.
    let r = chat(&gw, &with_max_tokens(50)).await;
    assert_eq!(
        r.status,
        200,
        "refused (retry-after {:?}) while the deployment had used {} of 100 tokens: {}",
        r.header("retry-after"),
        gw.deployment(0).await.tokens_this_minute,
        r.text
    );
}
