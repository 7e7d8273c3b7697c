//! `GET /metrics` read with a Prometheus text-format parser: counters checked against the
//! traffic the test sent, deployment state, and no secret anywhere in it.

use std::io::BufRead;
use std::time::Duration;

use prometheus_parse::{Scrape, Value as Metric};
use serde_json::json;

use crate::support::{chat_body, eventually, Behavior, Gateway, MockUpstream};

const MASTER: &str = "sk-metrics-master-0001";
const PROVIDER_KEY: &str = "sk-upstream-METRICSCANARY-0002";

/// A scrape of the gateway's `/metrics`, with no key.
async fn scrape(gw: &Gateway) -> (Scrape, String) {
    let r = gw.get("/metrics", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.header("content-type")
            .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")),
        "{:?}",
        r.header("content-type")
    );
    let lines = std::io::Cursor::new(r.text.clone()).lines();
    (
        Scrape::parse(lines).expect("the Prometheus text format"),
        r.text,
    )
}

/// The value of `metric` in the sample whose labels include all of `labels` (summed over the
/// samples that match).
fn value(s: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    s.samples
        .iter()
        .filter(|x| x.metric == metric && labels.iter().all(|(k, v)| x.labels.get(k) == Some(v)))
        .map(|x| match &x.value {
            Metric::Counter(v) | Metric::Gauge(v) | Metric::Untyped(v) => *v,
            Metric::Histogram(buckets) => buckets.last().map_or(0.0, |b| b.count),
            Metric::Summary(_) => 0.0,
        })
        .sum()
}

#[actix_rt::test]
async fn counters_match_the_traffic_sent_and_nothing_secret_shows() {
    let up = MockUpstream::start().await;
    let broken = MockUpstream::start().await;
    broken.set(Behavior::Fail(
        500,
        r#"{"error":{"message":"boom"}}"#.into(),
    ));
    let gw = Gateway::start(&format!(
        r#"model_list:
  - model_name: g
    litellm_params: {{model: openai/up-model, api_base: "{}", api_key: {PROVIDER_KEY}, input_cost_per_token: 0.001, output_cost_per_token: 0.002, rpm: 1000}}
    model_info: {{id: dep-up}}
  - model_name: bad
    litellm_params: {{model: openai/bad-model, api_base: "{}", api_key: {PROVIDER_KEY}}}
    model_info: {{id: dep-bad}}
router_settings:
  num_retries: 0
general_settings:
  master_key: {MASTER}
"#,
        up.v1(),
        broken.v1()
    ))
    .await;
    let generated = gw
        .post(
            "/key/generate",
            Some(MASTER),
            &json!({"key_alias": "team-a", "duration": null}),
        )
        .await;
    let key = generated.json()["key"].as_str().unwrap().to_owned();
    for _ in 0..5 {
        let r = gw
            .post("/v1/chat/completions", Some(&key), &chat_body("g"))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let mut streamed = chat_body("g");
    streamed["stream"] = json!(true);
    for _ in 0..2 {
        let r = gw.post("/v1/chat/completions", Some(&key), &streamed).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    for _ in 0..2 {
        let r = gw
            .post("/v1/chat/completions", Some(&key), &chat_body("bad"))
            .await;
        assert_eq!(r.status, 500, "{}", r.text);
    }

    let g = [("requested_model", "g"), ("api_key_alias", "team-a")];
    let mut last = None;
    let counted = eventually(Duration::from_secs(5), async || {
        let (s, _) = scrape(&gw).await;
        let done = value(&s, "litellm_proxy_total_requests_metric", &g) == 7.0
            && value(
                &s,
                "litellm_proxy_failed_requests_metric",
                &[("requested_model", "bad")],
            ) == 2.0;
        last = Some(s);
        done
    })
    .await;
    let s = last.unwrap();
    assert!(counted, "{:#?}", s.samples);
    let success = [("requested_model", "g"), ("status", "success")];
    assert_eq!(
        value(&s, "litellm_proxy_total_requests_metric", &success),
        7.0
    );
    let failure = [("requested_model", "bad"), ("status", "failure")];
    assert_eq!(
        value(&s, "litellm_proxy_total_requests_metric", &failure),
        2.0
    );
    // Each reply of the mock: 7 prompt tokens; 3 completion tokens (3 chunks when streamed).
    assert_eq!(value(&s, "litellm_input_tokens_metric", &g), 49.0);
    assert_eq!(value(&s, "litellm_output_tokens_metric", &g), 21.0);
    assert_eq!(value(&s, "litellm_total_tokens_metric", &g), 70.0);
    let spend = value(&s, "litellm_spend_metric", &g);
    assert!(
        (spend - (49.0 * 0.001 + 21.0 * 0.002)).abs() < 1e-9,
        "{spend}"
    );
    let latency = [("requested_model", "g")];
    assert_eq!(
        value(&s, "litellm_request_total_latency_metric_count", &latency),
        7.0
    );
    assert_eq!(
        value(&s, "litellm_overhead_latency_metric_count", &latency),
        7.0
    );
    assert!(
        value(&s, "litellm_overhead_latency_metric_sum", &latency)
            <= value(&s, "litellm_request_total_latency_metric_sum", &latency),
        "the gateway's own time is part of the whole"
    );
    // Per deployment: attempts, upstream errors by class, streams' time to first token.
    let up_dep = [("model_id", "dep-up"), ("model_group", "g")];
    assert_eq!(
        value(&s, "litellm_deployment_success_responses", &up_dep),
        7.0
    );
    assert_eq!(
        value(
            &s,
            "litellm_llm_api_time_to_first_token_metric_count",
            &up_dep
        ),
        2.0
    );
    let bad_dep = [
        ("model_id", "dep-bad"),
        ("exception_class", "InternalServerError"),
    ];
    assert_eq!(
        value(&s, "litellm_deployment_failure_responses", &bad_dep),
        2.0
    );
    // Live state, read at the scrape.
    assert_eq!(value(&s, "litellm_deployment_state", &up_dep), 0.0);
    assert_eq!(value(&s, "llmgate_deployment_rpm_used", &up_dep), 7.0);
    assert_eq!(
        value(&s, "litellm_remaining_requests_metric", &up_dep),
        993.0
    );
    assert_eq!(value(&s, "llmgate_deployment_in_flight", &up_dep), 0.0);
    assert_eq!(value(&s, "llmgate_database_up", &[]), 1.0);
    assert_eq!(
        value(&s, "llmgate_redis_up", &[]),
        -1.0,
        "no redis configured"
    );
    assert!(s
        .samples
        .iter()
        .any(|x| x.metric == "llmgate_spend_buffer_rows"));

    let (_, text) = scrape(&gw).await;
    for secret in ["METRICSCANARY", MASTER, &key] {
        assert!(!text.contains(secret), "{secret} in /metrics");
    }
}

#[actix_rt::test]
async fn a_cache_hit_is_counted_and_a_cooling_deployment_shows_its_state() {
    let first = MockUpstream::start().await;
    let second = MockUpstream::start().await;
    first.set(Behavior::Fail(503, "{}".into()));
    let gw = Gateway::start(&format!(
        r#"model_list:
  - model_name: g
    litellm_params: {{model: openai/m, api_base: "{}", order: 1}}
    model_info: {{id: first}}
  - model_name: g
    litellm_params: {{model: openai/m, api_base: "{}", order: 2}}
    model_info: {{id: second}}
router_settings:
  allowed_fails: 0
  cooldown_time: 60
  num_retries: 2
litellm_settings:
  cache: true
"#,
        first.v1(),
        second.v1()
    ))
    .await;
    // The first deployment (tried first) fails and cools down; the retry lands on the second,
    // whose answer is cached: the same request again is a hit.
    for _ in 0..3 {
        let r = gw.post("/v1/chat/completions", None, &chat_body("g")).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    assert_eq!(first.call_count(), 1);
    assert_eq!(second.call_count(), 1);
    let mut last = None;
    let shown = eventually(Duration::from_secs(5), async || {
        let (s, _) = scrape(&gw).await;
        let ok = value(&s, "litellm_deployment_state", &[("model_id", "first")]) == 2.0
            && value(&s, "litellm_cache_hits_metric", &[("requested_model", "g")]) == 2.0;
        last = Some(s);
        ok
    })
    .await;
    let s = last.unwrap();
    assert!(shown, "{:#?}", s.samples);
    assert!(
        value(
            &s,
            "llmgate_deployment_cooldown_seconds",
            &[("model_id", "first")]
        ) > 0.0
    );
    assert_eq!(
        value(&s, "litellm_deployment_state", &[("model_id", "second")]),
        0.0
    );
}

/// How many samples of `/metrics` carry key hash `token`.
fn series_of(s: &Scrape, token: &str) -> usize {
    s.samples
        .iter()
        .filter(|x| x.labels.get("hashed_api_key") == Some(token))
        .count()
}

#[actix_rt::test]
async fn a_deleted_or_regenerated_key_leaves_no_series_behind() {
    let up = MockUpstream::start().await;
    let gw = Gateway::start(&format!(
        r#"model_list:
  - model_name: g
    litellm_params: {{model: openai/up-model, api_base: "{}", api_key: {PROVIDER_KEY}, input_cost_per_token: 0.001}}
general_settings:
  master_key: {MASTER}
"#,
        up.v1()
    ))
    .await;
    let mut tokens = Vec::new();
    for alias in ["churn-deleted", "churn-regenerated", "churn-kept"] {
        let made = gw
            .post("/key/generate", Some(MASTER), &json!({"key_alias": alias}))
            .await;
        let key = made.json()["key"].as_str().unwrap().to_owned();
        let r = gw
            .post("/v1/chat/completions", Some(&key), &chat_body("g"))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        tokens.push((key, made.json()["token"].as_str().unwrap().to_owned()));
    }
    let all_counted = eventually(Duration::from_secs(5), async || {
        let (s, _) = scrape(&gw).await;
        tokens.iter().all(|(_, t)| series_of(&s, t) > 0)
    })
    .await;
    assert!(all_counted, "each key's requests show under its hash");

    let deleted = gw
        .post("/key/delete", Some(MASTER), &json!({"keys": [tokens[0].0]}))
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    let regenerated = gw
        .post(
            "/key/regenerate",
            Some(MASTER),
            &json!({"key": tokens[1].0}),
        )
        .await;
    assert_eq!(regenerated.status, 200, "{}", regenerated.text);

    let (s, _) = scrape(&gw).await;
    assert_eq!(series_of(&s, &tokens[0].1), 0, "the deleted key's series");
    assert_eq!(
        series_of(&s, &tokens[1].1),
        0,
        "the regenerated key's old series"
    );
    assert!(
        series_of(&s, &tokens[2].1) > 0,
        "a key still in use keeps its series"
    );
    assert_eq!(
        value(
            &s,
            "litellm_proxy_total_requests_metric",
            &[("api_key_alias", "churn-kept")]
        ),
        1.0
    );
}
