//! Two in-process gateways sharing a Redis: budgets on the combined spend, a parallel slot that
//! frees itself when its instance dies, and a Redis that goes away mid-traffic (a private
//! `redis-server` this test starts and stops) failing nothing, with shared limits resuming
//! when it comes back.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use llmgate::config::{CliOverrides, Settings};
use serde_json::{json, Value};

use crate::support::binary::{free_port, Process};
use crate::support::redis_counts::{connect, requests_and_slots};
use crate::support::{chat_body, eventually, Behavior, Gateway, MockUpstream};

/// A `redis-server` of the test's own, on a free port; stopped on drop.
struct PrivateRedis {
    port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    fn start() -> Self {
        let mut r = Self {
            port: free_port(),
            child: None,
        };
        r.restart();
        r
    }

    fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().ok();
            c.wait().ok();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

fn settings_yaml(mock: &MockUpstream, redis_port: u16, extra: &str) -> String {
    format!(
        r#"model_list:
  - model_name: g
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "{}", api_key: sk-up, input_cost_per_token: 0.001, output_cost_per_token: 0.001}}
router_settings:
  redis_host: 127.0.0.1
  redis_port: {redis_port}
general_settings:
  master_key: sk-master-shared
{extra}"#,
        mock.v1()
    )
}

fn settings(mock: &MockUpstream, redis_port: u16, ns: &str, extra: &str) -> Settings {
    let yaml = settings_yaml(mock, redis_port, extra);
    let mut s = Settings::from_yaml(&yaml, &CliOverrides::default()).expect("config loads");
    s.redis.as_mut().unwrap().namespace = ns.to_owned();
    s
}

fn namespace() -> String {
    format!("llmgate-it-{}-{}", std::process::id(), fastrand::u64(..))
}

/// Two gateways on one Redis and one SQLite file (the database instances share).
async fn pair(mock: &MockUpstream, redis_port: u16, extra: &str) -> (Gateway, Gateway) {
    let ns = namespace();
    let db = crate::support::binary::temp_dir("shared").join("llmgate.db");
    let extra = format!("  database_url: 'sqlite://{}'\n{extra}", db.display());
    let a = Gateway::start_with(settings(mock, redis_port, &ns, &extra)).await;
    let b = Gateway::start_with(settings(mock, redis_port, &ns, &extra)).await;
    (a, b)
}

async fn new_key(gw: &Gateway, body: Value) -> String {
    let r = gw
        .post("/key/generate", Some("sk-master-shared"), &body)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()["key"].as_str().unwrap().to_owned()
}

#[actix_rt::test]
async fn a_budget_holds_on_the_spend_of_both_instances() {
    let mock = MockUpstream::start().await;
    let (a, b) = pair(&mock, 6379, "").await;
    let key = new_key(&a, json!({"max_budget": 0.1, "duration": null})).await;
    let (ok, allowed) = spend_a_budget_of_a_tenth(&a, &b, &key).await;
    assert_eq!(ok, allowed, "the key's budget counts both instances' spend");
}

#[actix_rt::test]
async fn the_proxy_budget_holds_on_the_spend_of_both_instances() {
    let mock = MockUpstream::start().await;
    let (a, b) = pair(&mock, 6379, "litellm_settings:\n  max_budget: 0.1\n").await;
    let (ok, allowed) = spend_a_budget_of_a_tenth(&a, &b, "sk-master-shared").await;
    assert_eq!(ok, allowed, "the proxy budget counts both instances' spend");
}

#[actix_rt::test]
async fn a_proxy_budget_that_resets_is_one_period_on_every_instance() {
    let mock = MockUpstream::start().await;
    let ns = namespace();
    let db = crate::support::binary::temp_dir("period").join("llmgate.db");
    let extra = format!(
        "  database_url: 'sqlite://{}'\nlitellm_settings:\n  max_budget: 0.1\n  budget_duration: 30d\n",
        db.display()
    );
    let a = Gateway::start_with(settings(&mock, 6379, &ns, &extra)).await;
    // The second instance starts in a later second: it must still count the first's period.
    actix_rt::time::sleep(Duration::from_millis(1100)).await;
    let b = Gateway::start_with(settings(&mock, 6379, &ns, &extra)).await;
    let (ok, allowed) = spend_a_budget_of_a_tenth(&a, &b, "sk-master-shared").await;
    assert_eq!(ok, allowed, "both instances count the same budget period");
}

/// Sends requests with `key` through `a` and `b` in turn, past a budget of 0.1: the successes,
/// and how many the budget allows. The mock's usage costs 0.03 a request here, so it allows
/// four in all, while each instance alone has seen at most two when the fourth is charged.
async fn spend_a_budget_of_a_tenth(a: &Gateway, b: &Gateway, key: &str) -> (usize, usize) {
    let first = a
        .post("/v1/chat/completions", Some(key), &chat_body("g"))
        .await;
    assert_eq!(first.status, 200, "{}", first.text);
    let cost: f64 = first
        .header("x-litellm-response-cost")
        .unwrap()
        .parse()
        .unwrap();
    assert!(cost > 0.0);
    let allowed = (0.1 / cost).ceil() as usize;
    let mut ok = 1;
    for i in 1..allowed + 4 {
        let gw = if i % 2 == 0 { a } else { b };
        let r = gw
            .post("/v1/chat/completions", Some(key), &chat_body("g"))
            .await;
        match r.status {
            200 => ok += 1,
            400 | 429 => assert!(r.text.contains("udget"), "{}", r.text),
            other => panic!("unexpected {other}: {}", r.text),
        }
        // The charge reaches Redis after the reply: let it land before the next request.
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    (ok, allowed)
}

#[actix_rt::test]
async fn cache_hits_count_against_a_key_limit_held_across_instances() {
    let mock = MockUpstream::start().await;
    let (a, b) = pair(
        &mock,
        6379,
        "litellm_settings:\n  cache: true\n  cache_params: {type: local}\n",
    )
    .await;
    let key = new_key(&a, json!({"rpm_limit": 3, "duration": null})).await;
    let mut ok = 0;
    for i in 0..8 {
        let gw = if i % 2 == 0 { &a } else { &b };
        let r = gw
            .post("/v1/chat/completions", Some(&key), &chat_body("g"))
            .await;
        if r.status == 200 {
            ok += 1;
        }
    }
    assert_eq!(
        ok, 3,
        "misses and hits on both instances count against rpm_limit"
    );
    assert!(mock.call_count() <= 2, "the other calls were cache hits");
}

#[actix_rt::test]
async fn a_parallel_slot_held_by_a_dead_instance_frees_itself() {
    let mock = MockUpstream::start().await;
    mock.set(Behavior::Delay(Duration::from_secs(30)));
    let ns = namespace();
    let dir = crate::support::binary::temp_dir("slots");
    let general = format!(
        "  database_url: 'sqlite://{}'\n",
        dir.join("llmgate.db").display()
    );
    // Requests time out after 2 s, so a slot lives at most 7 s.
    let mut yaml = settings_yaml(&mock, 6379, &general);
    yaml.push_str("litellm_settings:\n  request_timeout: 2\n");
    let path = dir.join("config.yaml");
    std::fs::write(&path, &yaml).unwrap();
    let config = path.display().to_string();
    let env_ns = ns.clone();
    let a = actix_rt::task::spawn_blocking(move || {
        Process::spawn(
            &["--config", &config],
            &[("LLMGATE_REDIS_NAMESPACE", env_ns.as_str())],
        )
    })
    .await
    .unwrap();
    let mut sb = Settings::from_yaml(&yaml, &CliOverrides::default()).unwrap();
    sb.redis.as_mut().unwrap().namespace = ns;
    let b = Gateway::start_with(sb).await;
    let key = new_key(&b, json!({"max_parallel_requests": 1, "duration": null})).await;
    // A takes the key's one slot with a slow request, and is killed holding it.
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(60))
        .finish();
    let slow = client
        .post(format!("{}/v1/chat/completions", a.base))
        .bearer_auth(&key)
        .send_json(&chat_body("g"));
    let held = actix_rt::spawn(async move {
        let _ = slow.await;
    });
    assert!(eventually(Duration::from_secs(5), async || mock.call_count() >= 1).await);
    let mut a = a;
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    held.abort();
    mock.set(Behavior::default());
    let refused = b
        .post("/v1/chat/completions", Some(&key), &chat_body("g"))
        .await;
    assert_eq!(
        refused.status, 429,
        "the dead instance's slot is held: {}",
        refused.text
    );
    let freed = eventually(Duration::from_secs(15), async || {
        b.post("/v1/chat/completions", Some(&key), &chat_body("g"))
            .await
            .status
            == 200
    })
    .await;
    assert!(freed, "the dead instance's slot expired");
}

#[actix_rt::test]
async fn redis_going_away_fails_nothing_and_shared_limits_resume_when_it_returns() {
    let mock = MockUpstream::start().await;
    let mut redis = PrivateRedis::start();
    let (a, b) = pair(&mock, redis.port, "").await;
    let key = new_key(&a, json!({"rpm_limit": 1000, "duration": null})).await;
    let tight = new_key(&a, json!({"rpm_limit": 4, "duration": null})).await;
    for i in 0..10 {
        let gw = if i % 2 == 0 { &a } else { &b };
        assert_eq!(
            gw.post("/v1/chat/completions", Some(&key), &chat_body("g"))
                .await
                .status,
            200
        );
    }
    redis.stop();
    // Redis is gone: every request still succeeds, none waits long.
    for i in 0..20 {
        let gw = if i % 2 == 0 { &a } else { &b };
        let started = Instant::now();
        let r = gw
            .post("/v1/chat/completions", Some(&key), &chat_body("g"))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "took {:?}",
            started.elapsed()
        );
    }
    // Redis is back: limits are shared again, so a key with rpm 4 gets 4 across both.
    redis.restart();
    // Resumed once a request through each instance used Redis without a failure.
    let up = |gw: &Gateway| gw.state.shared.as_ref().unwrap().redis.is_up();
    let resumed = eventually(Duration::from_secs(10), async || {
        let ok_a = a
            .post("/v1/chat/completions", Some(&key), &chat_body("g"))
            .await
            .status
            == 200;
        let ok_b = b
            .post("/v1/chat/completions", Some(&key), &chat_body("g"))
            .await
            .status
            == 200;
        ok_a && ok_b && up(&a) && up(&b)
    })
    .await;
    assert!(resumed);
    let mut ok = 0;
    for i in 0..10 {
        let gw = if i % 2 == 0 { &a } else { &b };
        if gw
            .post("/v1/chat/completions", Some(&tight), &chat_body("g"))
            .await
            .status
            == 200
        {
            ok += 1;
        }
    }
    assert_eq!(ok, 4, "the rpm limit holds across both instances again");
}

/// Sets the key's request window in Redis to `used` this second, as other instances' traffic
/// would.
async fn fill_rpm_window(ns: &str, token: &str, used: u64) {
    let mut conn = connect(6379).await;
    let second = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let _: () = ::redis::cmd("HSET")
        .arg(format!("{ns}:key:{token}:rpm"))
        .arg(second)
        .arg(used)
        .arg("sum")
        .arg(used)
        .arg("min")
        .arg(second)
        .query_async(&mut conn)
        .await
        .unwrap();
}

/// One gateway on the machine's Redis (a namespace of its own) and a key with `limits`: the
/// gateway, the namespace, the key and its stored token.
async fn alone_with_key(
    mock: &MockUpstream,
    mut limits: Value,
) -> (Gateway, String, String, String) {
    let ns = namespace();
    let gw = Gateway::start_with(settings(mock, 6379, &ns, "")).await;
    limits["duration"] = Value::Null;
    let generated = gw
        .post("/key/generate", Some("sk-master-shared"), &limits)
        .await;
    assert_eq!(generated.status, 200, "{}", generated.text);
    let field = |name: &str| generated.json()[name].as_str().unwrap().to_owned();
    let (key, token) = (field("key"), field("token"));
    (gw, ns, key, token)
}

#[actix_rt::test]
async fn a_key_far_from_its_limits_goes_upstream_early_and_still_waits_for_its_verdict() {
    let mock = MockUpstream::start().await;
    // (A limit of 100 is too tight for leases, which would admit the key's requests here.)
    let (gw, ns, key, token) = alone_with_key(&mock, json!({"rpm_limit": 100})).await;
    let body = chat_body("g");
    let ask = || gw.post("/v1/chat/completions", Some(&key), &body);
    // The first request waits for Redis; it finds the key far from its limit, so the second
    // goes upstream meanwhile, and its headers still carry Redis's count.
    let mut charged = 0.0;
    for remaining in ["99", "98"] {
        let r = ask().await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.header("x-ratelimit-remaining-requests"), Some(remaining));
        charged += r
            .header("x-litellm-response-cost")
            .unwrap()
            .parse::<f64>()
            .unwrap();
    }
    // Other instances use up the minute: the next request went upstream early, but Redis
    // refuses it, so the client gets the 429 and nothing is charged.
    fill_rpm_window(&ns, &token, 100).await;
    let calls = mock.call_count();
    let refused = ask().await;
    assert_eq!(refused.status, 429, "{}", refused.text);
    assert!(refused.text.contains("rpm_limit"), "{}", refused.text);
    assert_eq!(mock.call_count(), calls + 1, "it had gone upstream early");
    assert!(refused.header("x-litellm-response-cost").is_none());
    // Refused, the key waits for its verdict again: nothing more goes upstream.
    let again = ask().await;
    assert_eq!(again.status, 429, "{}", again.text);
    assert_eq!(
        mock.call_count(),
        calls + 1,
        "a refused key is not sent early"
    );
    let info = gw
        .get(&format!("/key/info?key={key}"), Some("sk-master-shared"))
        .await;
    let spent = info.json()["info"]["spend"].as_f64().unwrap();
    assert!(
        (spent - charged).abs() < 1e-9,
        "only the two answered requests are charged: {spent} against {charged}"
    );
}

#[actix_rt::test]
async fn a_stream_sent_upstream_early_is_relayed_whole_and_a_refused_one_is_a_429() {
    let mock = MockUpstream::start().await;
    let limits = json!({"rpm_limit": 100, "max_parallel_requests": 100});
    let (gw, ns, key, token) = alone_with_key(&mock, limits).await;
    let first = gw
        .post("/v1/chat/completions", Some(&key), &chat_body("g"))
        .await;
    assert_eq!(first.status, 200, "{}", first.text);
    let mut body = chat_body("g");
    body["stream"] = json!(true);
    let streamed = gw.post("/v1/chat/completions", Some(&key), &body).await;
    assert_eq!(streamed.status, 200, "{}", streamed.text);
    assert_eq!(
        streamed.header("x-ratelimit-remaining-requests"),
        Some("98")
    );
    assert!(
        streamed.text.trim_end().ends_with("data: [DONE]"),
        "{}",
        streamed.text
    );
    fill_rpm_window(&ns, &token, 100).await;
    let refused = gw.post("/v1/chat/completions", Some(&key), &body).await;
    assert_eq!(refused.status, 429, "{}", refused.text);
    assert!(!refused.text.contains("data:"), "{}", refused.text);
}

/// How many script calls (`EVALSHA`) the Redis on `port` has run.
async fn script_calls(port: u16) -> u64 {
    let mut conn = connect(port).await;
    let stats: String = ::redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut conn)
        .await
        .unwrap();
    stats
        .lines()
        .find_map(|l| l.strip_prefix("cmdstat_evalsha:calls="))
        .and_then(|rest| rest.split(',').next()?.parse().ok())
        .unwrap_or(0)
}

#[actix_rt::test]
async fn a_busy_key_far_from_its_limits_is_admitted_on_leases_and_redis_counts_each_request() {
    let mock = MockUpstream::start().await;
    let redis = PrivateRedis::start();
    let ns = namespace();
    let gw = Gateway::start_with(settings(&mock, redis.port, &ns, "")).await;
    let limits = json!({"rpm_limit": 100_000, "max_parallel_requests": 10_000, "duration": null});
    let generated = gw
        .post("/key/generate", Some("sk-master-shared"), &limits)
        .await;
    let (key, token) = (
        generated.json()["key"].as_str().unwrap().to_owned(),
        generated.json()["token"].as_str().unwrap().to_owned(),
    );
    let before = script_calls(redis.port).await;
    let body = chat_body("g");
    const SENT: u64 = 300;
    for _ in 0..SENT {
        let r = gw.post("/v1/chat/completions", Some(&key), &body).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    // One by one, each request asked for its own admission would make two calls (admit and
    // settle); on leases, most make only the settle call.
    let calls = script_calls(redis.port).await - before;
    assert!(
        calls < SENT * 4 / 3,
        "{calls} script calls for {SENT} requests"
    );
    // Copies leased and not used are given back: Redis's window holds exactly the requests
    // made, and no slot stays held.
    let mut conn = connect(redis.port).await;
    let mut seen = (0, 0);
    let exact = eventually(Duration::from_secs(5), async || {
        seen = requests_and_slots(&mut conn, &ns, &token).await;
        seen == (SENT, 0)
    })
    .await;
    assert!(exact, "redis counts (requests, slots held) {seen:?}");
}

#[actix_rt::test]
async fn leases_on_two_instances_admit_exactly_the_rpm_limit() {
    let mock = MockUpstream::start().await;
    let (a, b) = pair(&mock, 6379, "").await;
    // A limit of 256 lets each lease take 4 requests while the key is far from it.
    let key = new_key(
        &a,
        json!({"rpm_limit": 256, "max_parallel_requests": 1000, "duration": null}),
    )
    .await;
    let body = chat_body("g");
    let mut ok = 0;
    for round in 0..33 {
        let sends = (0..10).map(|i| {
            let gw = if (round + i) % 2 == 0 { &a } else { &b };
            gw.post("/v1/chat/completions", Some(&key), &body)
        });
        for r in futures_util::future::join_all(sends).await {
            match r.status {
                200 => ok += 1,
                429 => assert!(r.text.contains("rpm_limit"), "{}", r.text),
                other => panic!("{other}: {}", r.text),
            }
        }
    }
    assert_eq!(ok, 256, "330 requests over both instances");
}
