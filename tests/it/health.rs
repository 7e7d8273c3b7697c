//! `GET /health` against mock upstreams that are up, down, slow and gone: a real call to each
//! (an embedding call for embedding models), all at once within `health_check_timeout`; and
//! the background checks, served at once and cooling a failing deployment down.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::binary::free_port;
use crate::support::{eventually, Behavior, Gateway, MockUpstream};

const MASTER: &str = "sk-health-master-0001";
const PROVIDER_KEY: &str = "sk-upstream-HEALTHCANARY-0002";

struct Upstreams {
    up: MockUpstream,
    down: MockUpstream,
    slow: MockUpstream,
    gone: String,
}

async fn upstreams() -> Upstreams {
    let up = MockUpstream::start().await;
    let down = MockUpstream::start().await;
    down.set(Behavior::Fail(
        500,
        r#"{"error":{"message":"down for maintenance"}}"#.into(),
    ));
    let slow = MockUpstream::start().await;
    slow.set(Behavior::Delay(Duration::from_secs(5)));
    let gone = format!("http://127.0.0.1:{}/v1", free_port());
    Upstreams {
        up,
        down,
        slow,
        gone,
    }
}

fn config(u: &Upstreams, general: &str) -> String {
    format!(
        r#"model_list:
  - model_name: chat
    litellm_params: {{model: openai/up-model, api_base: "{up}", api_key: {PROVIDER_KEY}}}
    model_info: {{id: chat-up}}
  - model_name: chat
    litellm_params: {{model: openai/down-model, api_base: "{down}", api_key: {PROVIDER_KEY}}}
    model_info: {{id: chat-down}}
  - model_name: embed
    litellm_params: {{model: openai/embed-model, api_base: "{up}", api_key: {PROVIDER_KEY}}}
    model_info: {{id: embed-up, mode: embedding}}
  - model_name: slow
    litellm_params: {{model: openai/slow-model, api_base: "{slow}", api_key: {PROVIDER_KEY}}}
    model_info: {{id: slow}}
  - model_name: gone
    litellm_params: {{model: openai/gone-model, api_base: "{gone}", api_key: {PROVIDER_KEY}}}
    model_info: {{id: gone}}
router_settings:
  cooldown_time: 60
general_settings:
  master_key: {MASTER}
  health_check_timeout: 1
{general}"#,
        up = u.up.v1(),
        down = u.down.v1(),
        slow = u.slow.v1(),
        gone = u.gone,
    )
}

fn ids(report: &Value, list: &str) -> Vec<String> {
    let mut ids: Vec<String> = report[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["model_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

#[actix_rt::test]
async fn health_calls_every_deployment_at_once_and_names_the_unhealthy_ones() {
    let u = upstreams().await;
    let gw = Gateway::start(&config(&u, "")).await;
    assert_eq!(gw.get("/health", None).await.status, 401, "a key is needed");

    let started = Instant::now();
    let r = gw.get("/health", Some(MASTER)).await;
    let took = started.elapsed();
    assert_eq!(r.status, 200, "{}", r.text);
    let report = r.json();
    assert_eq!(ids(&report, "healthy_endpoints"), ["chat-up", "embed-up"]);
    assert_eq!(
        ids(&report, "unhealthy_endpoints"),
        ["chat-down", "gone", "slow"]
    );
    assert_eq!(report["healthy_count"], 2);
    assert_eq!(report["unhealthy_count"], 3);
    // In parallel: the slow one's second of timeout bounds the whole.
    assert!(took < Duration::from_millis(2500), "{took:?}");
    let error_of = |id: &str| {
        report["unhealthy_endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["model_id"] == id)
            .map(|e| e["error"].as_str().unwrap_or_default().to_owned())
            .unwrap()
    };
    assert!(
        error_of("chat-down").contains("down for maintenance"),
        "{report}"
    );
    assert!(error_of("slow").contains("1 s"), "{report}");
    assert!(!error_of("gone").is_empty(), "{report}");
    // Real calls: a chat of one token, and an embedding for the embedding model.
    let paths: Vec<String> = u.up.calls().iter().map(|c| c.path.clone()).collect();
    assert!(
        paths.iter().any(|p| p.ends_with("/chat/completions")),
        "{paths:?}"
    );
    assert!(
        paths.iter().any(|p| p.ends_with("/embeddings")),
        "{paths:?}"
    );
    let chat_call =
        u.up.calls()
            .into_iter()
            .find(|c| c.path.ends_with("/chat/completions"))
            .unwrap();
    assert_eq!(chat_call.body["max_tokens"], 1);
    assert!(!r.text.contains("HEALTHCANARY"), "{}", r.text);
    assert!(report["healthy_endpoints"][0].get("api_key").is_none());

    // One group only.
    let only = gw.get("/health?model=embed", Some(MASTER)).await.json();
    assert_eq!(ids(&only, "healthy_endpoints"), ["embed-up"]);
    assert_eq!(only["unhealthy_count"], 0);
}

#[actix_rt::test]
async fn background_checks_are_served_at_once_and_cool_a_failing_deployment_down() {
    let u = upstreams().await;
    let gw = Gateway::start(&config(
        &u,
        "  background_health_checks: true\n  health_check_interval: 1\n",
    ))
    .await;
    // No request was made: the checker called the upstreams by itself.
    let checked = eventually(Duration::from_secs(5), async || {
        u.up.call_count() >= 2 && u.down.call_count() >= 1 && gw.state.health.last().is_some()
    })
    .await;
    assert!(checked, "the background checks did not run");
    let started = Instant::now();
    let r = gw.get("/health", Some(MASTER)).await;
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "served from the last round, not a new one: {:?}",
        started.elapsed()
    );
    let report = r.json();
    assert_eq!(
        ids(&report, "unhealthy_endpoints"),
        ["chat-down", "gone", "slow"]
    );
    // The failing deployment shares its group: it is cooled down, and shown so.
    let state = gw.get("/model/state", Some(MASTER)).await;
    assert_eq!(state.status, 200, "{}", state.text);
    let state = state.json();
    let entry = |id: &str| {
        state["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["model_id"] == id)
            .cloned()
            .unwrap()
    };
    let down = entry("chat-down");
    assert_eq!(down["healthy"], false, "{down}");
    assert!(down["cooldown_until"].is_string(), "{down}");
    assert_eq!(down["last_health_check"]["healthy"], false, "{down}");
    let up = entry("chat-up");
    assert_eq!(up["healthy"], true, "{up}");
    assert!(up["cooldown_until"].is_null(), "{up}");
    // Alone in its group, a failing deployment is not taken out (there is nowhere else to go).
    assert!(entry("gone")["cooldown_until"].is_null());
    assert!(!state.to_string().contains("HEALTHCANARY"));
    // Requests to the group go to the healthy one only.
    let calls = u.down.call_count();
    for _ in 0..4 {
        let r = gw
            .post(
                "/v1/chat/completions",
                Some(MASTER),
                &crate::support::chat_body("chat"),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    assert!(
        u.down.call_count() <= calls + 1,
        "requests went to the cooled-down deployment"
    );
    assert_eq!(
        gw.get("/model/state", None).await.status,
        401,
        "the state needs the master key"
    );
}
