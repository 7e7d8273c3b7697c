//! Two llmgate processes sharing the machine's Redis and one PostgreSQL database, traffic
//! alternated between them: key and deployment limits hold across both, a cooldown and a
//! blocked key reach the other instance, and the stored spend is the sum of both.

use std::time::Duration;

use diesel::sql_types::Double;
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};
use serde_json::{json, Value};

use crate::support::binary::{temp_dir, Process};
use crate::support::db::TestDb;
use crate::support::{chat_body, eventually, Behavior, MockUpstream};

/// One reply, read whole.
struct Answer {
    status: u16,
    cost: Option<f64>,
    body: Value,
}

struct Instance {
    process: Process,
    client: awc::Client,
}

impl Instance {
    async fn start(config: &str, namespace: &str) -> Self {
        let (config, namespace) = (config.to_owned(), namespace.to_owned());
        let process = actix_rt::task::spawn_blocking(move || {
            Process::spawn(
                &["--config", &config],
                &[("LLMGATE_REDIS_NAMESPACE", namespace.as_str())],
            )
        })
        .await
        .unwrap();
        let client = awc::Client::builder()
            .timeout(Duration::from_secs(30))
            .finish();
        Self { process, client }
    }

    async fn post(&self, path: &str, key: &str, body: &Value) -> Answer {
        let mut res = self
            .client
            .post(format!("{}{path}", self.process.base))
            .bearer_auth(key)
            .send_json(body)
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}\n{}", self.process.log()));
        let cost = res
            .headers()
            .get("x-litellm-response-cost")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let body = res
            .json::<Value>()
            .limit(1 << 20)
            .await
            .unwrap_or(Value::Null);
        Answer {
            status: res.status().as_u16(),
            cost,
            body,
        }
    }

    async fn get(&self, path: &str) -> Value {
        let mut res = self
            .client
            .get(format!("{}{path}", self.process.base))
            .bearer_auth("sk-master-instances")
            .send()
            .await
            .unwrap();
        res.json::<Value>().limit(1 << 20).await.unwrap()
    }
}

fn config(
    db: &TestDb,
    healthy: &MockUpstream,
    limited: &MockUpstream,
    broken: &MockUpstream,
) -> String {
    let yaml = format!(
        r#"model_list:
  - model_name: g
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "{healthy}", api_key: sk-up}}
  - model_name: limited
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "{limited}", api_key: sk-up, rpm: 20}}
  - model_name: flaky
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "{broken}", api_key: sk-up}}
    model_info: {{id: flaky-broken}}
  - model_name: flaky
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "{healthy}", api_key: sk-up}}
    model_info: {{id: flaky-healthy}}
router_settings:
  routing_strategy: usage-based-routing-v2
  redis_host: 127.0.0.1
  redis_port: 6379
  allowed_fails: 1
  cooldown_time: 60
general_settings:
  master_key: sk-master-instances
  database_url: "{db}"
  proxy_batch_write_at: 1
"#,
        healthy = healthy.v1(),
        limited = limited.v1(),
        broken = broken.v1(),
        db = db.url,
    );
    let path = temp_dir("instances").join("config.yaml");
    std::fs::write(&path, yaml).unwrap();
    path.display().to_string()
}

#[derive(QueryableByName)]
struct Total {
    #[diesel(sql_type = Double)]
    spend: f64,
}

/// Every key's spend, summed, as stored.
fn stored_key_spend(db: &TestDb) -> f64 {
    let mut c = PgConnection::establish(&db.url).unwrap();
    diesel::sql_query("SELECT COALESCE(SUM(spend), 0.0) AS spend FROM llmgate_keys")
        .get_result::<Total>(&mut c)
        .unwrap()
        .spend
}

fn namespace() -> String {
    format!("llmgate-it-{}-{}", std::process::id(), fastrand::u64(..))
}

#[actix_rt::test]
async fn two_instances_hold_limits_share_cooldowns_key_changes_and_spend() {
    let db = TestDb::postgres();
    let (healthy, limited, broken) = (
        MockUpstream::start().await,
        MockUpstream::start().await,
        MockUpstream::start().await,
    );
    broken.set(Behavior::Fail(500, "upstream broke".into()));
    let cfg = config(&db, &healthy, &limited, &broken);
    let ns = namespace();
    let a = Instance::start(&cfg, &ns).await;
    let b = Instance::start(&cfg, &ns).await;
    let both = [&a, &b];

    // A key with rpm_limit 30: exactly 30 successes in the minute across both instances.
    let generated = a
        .post(
            "/key/generate",
            "sk-master-instances",
            &json!({"rpm_limit": 30, "duration": null}),
        )
        .await;
    assert_eq!(generated.status, 200, "{}", generated.body);
    let key = generated.body["key"].as_str().unwrap().to_owned();
    let mut spent = 0.0;
    let mut ok = 0;
    for i in 0..40 {
        let r = both[i % 2]
            .post("/v1/chat/completions", &key, &chat_body("g"))
            .await;
        match r.status {
            200 => {
                ok += 1;
                spent += r.cost.expect("a cost header");
            }
            429 => assert_eq!(r.body["error"]["type"], "rate_limit_error", "{}", r.body),
            other => panic!("unexpected {other}: {}", r.body),
        }
    }
    assert_eq!(ok, 30, "successes across both instances");

    // A deployment with rpm 20 gets at most 20 calls, whichever instance routes.
    let mut limited_ok = 0;
    for i in 0..30 {
        let r = both[i % 2]
            .post(
                "/v1/chat/completions",
                "sk-master-instances",
                &chat_body("limited"),
            )
            .await;
        if r.status == 200 {
            limited_ok += 1;
        }
    }
    assert_eq!(limited.call_count(), 20);
    assert_eq!(limited_ok, 20);

    // Failures through A cool the broken deployment down; B hears of it and keeps off it.
    let mut tries = 0;
    while broken.call_count() < 2 && tries < 40 {
        let r = a
            .post(
                "/v1/chat/completions",
                "sk-master-instances",
                &chat_body("flaky"),
            )
            .await;
        assert_eq!(r.status, 200, "the healthy deployment answers: {}", r.body);
        tries += 1;
    }
    assert_eq!(broken.call_count(), 2, "two failures start the cooldown");
    let cooling_on_b = eventually(Duration::from_secs(1), async || {
        let info = b.get("/model/info").await;
        info["data"].as_array().unwrap().iter().any(|d| {
            d["model_info"]["id"] == "flaky-broken" && !d["live"]["cooldown_until"].is_null()
        })
    })
    .await;
    assert!(cooling_on_b, "B sees A's cooldown within a second");
    let calls_before = broken.call_count();
    for _ in 0..10 {
        let r = b
            .post(
                "/v1/chat/completions",
                "sk-master-instances",
                &chat_body("flaky"),
            )
            .await;
        assert_eq!(r.status, 200);
    }
    assert_eq!(
        broken.call_count(),
        calls_before,
        "B never calls the cooling deployment"
    );

    // A key blocked through A is refused by B within a second.
    let open = a
        .post(
            "/key/generate",
            "sk-master-instances",
            &json!({"duration": null}),
        )
        .await;
    let open_key = open.body["key"].as_str().unwrap().to_owned();
    let r = b
        .post("/v1/chat/completions", &open_key, &chat_body("g"))
        .await;
    assert_eq!(r.status, 200);
    spent += r.cost.unwrap();
    let blocked = a
        .post(
            "/key/block",
            "sk-master-instances",
            &json!({"key": open_key}),
        )
        .await;
    assert_eq!(blocked.status, 200, "{}", blocked.body);
    let refused_on_b = eventually(Duration::from_secs(1), async || {
        let r = b
            .post("/v1/chat/completions", &open_key, &chat_body("g"))
            .await;
        if r.status == 200 {
            // Not heard yet: this one is charged too.
            spent += r.cost.unwrap();
        }
        r.status == 401
    })
    .await;
    assert!(refused_on_b, "B refuses the blocked key within a second");

    // The stored spend is the sum of what both instances charged.
    assert!(spent > 0.0);
    let stored = eventually(Duration::from_secs(10), async || {
        (stored_key_spend(&db) - spent).abs() < 1e-9
    })
    .await;
    assert!(
        stored,
        "database spend {} equals the sum of both instances' charges {spent}",
        stored_key_spend(&db)
    );
}
