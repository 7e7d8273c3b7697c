//! Spend tracking against real databases: totals exact under concurrency, nothing lost when the
//! database goes away or the process is stopped, budgets that reset, and outages handled.

use std::time::Duration;

use diesel::sql_types::{BigInt, Double, Text};
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl, SqliteConnection};
use llmgate::actors::Flush;
use llmgate::db::DbTarget;
use serde_json::{json, Value};

use crate::support::binary::{free_port, temp_dir, Process};
use crate::support::db::{both, TestDb};
use crate::support::tcp_proxy::TcpProxy;
use crate::support::{chat_body, eventually, Gateway};

const PRICED: &str = "model_list:\n  - model_name: g\n    litellm_params: {model: openai/m, mock_response: 'four words of reply', input_cost_per_token: 0.000001, output_cost_per_token: 0.000002}\n";
/// 10 prompt tokens × 1e-6 + 20 completion tokens × 2e-6, LiteLLM's mock usage.
const COST: f64 = 0.00005;

fn config(db_url: &str, extra: &str) -> String {
    format!("{PRICED}general_settings:\n  master_key: sk-master-spend-0001\n  database_url: '{db_url}'\n  proxy_batch_write_at: 60\n{extra}")
}

#[derive(QueryableByName, Debug)]
struct Totals {
    #[diesel(sql_type = Double)]
    key_spend: f64,
    #[diesel(sql_type = Double)]
    log_spend: f64,
    #[diesel(sql_type = BigInt)]
    rows: i64,
}

const TOTALS: &str = "SELECT (SELECT COALESCE(SUM(spend), 0.0) FROM llmgate_keys) AS key_spend, \
     (SELECT COALESCE(SUM(spend), 0.0) FROM llmgate_spend_logs WHERE api_key <> '') AS log_spend, \
     (SELECT COUNT(*) FROM llmgate_spend_logs) AS rows";

/// Key totals and spend-log sums read straight from the database.
fn totals(target: &DbTarget) -> Totals {
    match target {
        DbTarget::Sqlite(path) => {
            let mut c = SqliteConnection::establish(path).unwrap();
            diesel::sql_query(TOTALS).get_result(&mut c).unwrap()
        }
        DbTarget::Postgres(url) => {
            let mut c = PgConnection::establish(url).unwrap();
            diesel::sql_query(TOTALS).get_result(&mut c).unwrap()
        }
    }
}

#[derive(QueryableByName, Debug)]
struct Id {
    #[diesel(sql_type = Text)]
    request_id: String,
}

fn logged_ids(target: &DbTarget) -> Vec<String> {
    let q = "SELECT request_id FROM llmgate_spend_logs";
    let rows: Vec<Id> = match target {
        DbTarget::Sqlite(path) => diesel::sql_query(q)
            .load(&mut SqliteConnection::establish(path).unwrap())
            .unwrap(),
        DbTarget::Postgres(url) => diesel::sql_query(q)
            .load(&mut PgConnection::establish(url).unwrap())
            .unwrap(),
    };
    rows.into_iter().map(|r| r.request_id).collect()
}

async fn new_key(gw: &Gateway, extra: Value) -> String {
    let mut body = json!({"duration": null});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let r = gw
        .post("/key/generate", Some("sk-master-spend-0001"), &body)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()["key"].as_str().unwrap().to_owned()
}

#[actix_rt::test]
async fn spend_totals_equal_the_spend_log_after_concurrent_traffic_from_many_keys() {
    for db in both() {
        let gw = Gateway::start(&config(&db.url, "")).await;
        let mut keys = Vec::new();
        for _ in 0..8 {
            keys.push(new_key(&gw, json!({})).await);
        }
        let per_key = 25;
        let mut tasks = Vec::new();
        for key in &keys {
            for _ in 0..per_key {
                let client = gw.client.clone();
                let url = format!("{}/v1/chat/completions", gw.base);
                let key = key.clone();
                tasks.push(async move {
                    let res = client
                        .post(url)
                        .bearer_auth(key)
                        .send_json(&chat_body("g"))
                        .await
                        .unwrap();
                    res.status().as_u16()
                });
            }
        }
        let statuses = futures_util::future::join_all(tasks).await;
        assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
        gw.state.spend().send(Flush).await.unwrap().unwrap();
        let t = totals(&db.target);
        let n = (keys.len() * per_key) as f64;
        assert_eq!(t.rows, (keys.len() * per_key) as i64, "{:?}", db.target);
        assert!((t.key_spend - t.log_spend).abs() < 1e-9, "{t:?}");
        assert!((t.key_spend - n * COST).abs() < 1e-9, "{t:?}");
        for key in &keys {
            let info = gw
                .get(
                    &format!("/key/info?key={key}"),
                    Some("sk-master-spend-0001"),
                )
                .await;
            let spend = info.json()["info"]["spend"].as_f64().unwrap();
            assert!((spend - per_key as f64 * COST).abs() < 1e-9, "{spend}");
        }
        gw.stop().await;
    }
}

#[actix_rt::test]
async fn a_flush_cut_off_from_the_database_keeps_its_batch_and_writes_it_when_the_database_returns()
{
    let db = TestDb::postgres();
    let proxy = TcpProxy::start("127.0.0.1:5432").await;
    let gw = Gateway::start(&config(&db.url_via_port(proxy.port), "")).await;
    let key = new_key(&gw, json!({})).await;
    for _ in 0..5 {
        assert_eq!(
            gw.post("/v1/chat/completions", Some(&key), &chat_body("g"))
                .await
                .status,
            200
        );
    }
    proxy.cut();
    let cut_flush = gw.state.spend().send(Flush).await.unwrap();
    assert!(
        cut_flush.is_err(),
        "a flush without a database cannot succeed"
    );
    // /metrics shows the failed write and the rows still waiting.
    let metrics = gw.get("/metrics", None).await.text;
    let read = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no {name} in {metrics}"))
    };
    assert!(
        read("llmgate_spend_flush_failures_total ") >= 1.0,
        "{metrics}"
    );
    assert_eq!(read("llmgate_spend_buffer_rows "), 5.0, "{metrics}");
    assert_eq!(read("llmgate_database_up "), 0.0, "{metrics}");
    // The key is cached: requests keep working while the database is away.
    for _ in 0..5 {
        assert_eq!(
            gw.post("/v1/chat/completions", Some(&key), &chat_body("g"))
                .await
                .status,
            200
        );
    }
    proxy.restore();
    let mut flushed = false;
    for _ in 0..50 {
        if gw.state.spend().send(Flush).await.unwrap().is_ok() {
            flushed = true;
            break;
        }
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        flushed,
        "the flush never succeeded after the database came back"
    );
    let t = totals(&db.target);
    assert_eq!(t.rows, 10);
    assert!((t.key_spend - 10.0 * COST).abs() < 1e-9, "{t:?}");
    assert!((t.log_spend - t.key_spend).abs() < 1e-9, "{t:?}");
}

#[actix_rt::test]
async fn an_idle_gateway_makes_no_spend_write() {
    let db = TestDb::postgres();
    let proxy = TcpProxy::start("127.0.0.1:5432").await;
    let gw = Gateway::start(
        &config(&db.url_via_port(proxy.port), "")
            .replace("proxy_batch_write_at: 60", "proxy_batch_write_at: 0.05"),
    )
    .await;
    let key = new_key(&gw, json!({})).await;
    let ok = gw
        .post("/v1/chat/completions", Some(&key), &chat_body("g"))
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    gw.state
        .spend()
        .send(Flush)
        .await
        .unwrap()
        .expect("written");
    // With nothing new to write, twenty intervals pass without a database call: not one
    // connection is tried once the one the pool held is cut.
    proxy.cut();
    let before = proxy.accepted();
    actix_rt::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        proxy.accepted(),
        before,
        "an idle interval called the database"
    );
    proxy.restore();
    gw.stop().await;
}

#[actix_rt::test]
async fn while_the_database_is_down_cached_keys_work_and_unknown_keys_get_503() {
    let db = TestDb::postgres();
    let proxy = TcpProxy::start("127.0.0.1:5432").await;
    let gw = Gateway::start(&config(&db.url_via_port(proxy.port), "")).await;
    let cached = new_key(&gw, json!({}));
    let cached = cached.await;
    let uncached = "sk-never-seen-before-0000000000";
    proxy.cut();
    assert_eq!(
        gw.post("/v1/chat/completions", Some(&cached), &chat_body("g"))
            .await
            .status,
        200
    );
    let r = gw
        .post("/v1/chat/completions", Some(uncached), &chat_body("g"))
        .await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert!(!r.text.contains("postgres://"), "{}", r.text);
    let ready = gw.get("/health/readiness", None).await;
    assert_eq!(ready.json()["db"], "Not connected");
    proxy.restore();
    assert!(
        eventually(Duration::from_secs(10), async || {
            gw.get("/health/readiness", None).await.json()["db"] == "connected"
        })
        .await
    );
    assert_eq!(
        gw.post("/v1/chat/completions", Some(uncached), &chat_body("g"))
            .await
            .status,
        401
    );
}

#[actix_rt::test]
async fn disable_spend_logs_keeps_key_totals_but_writes_no_rows() {
    let db = TestDb::sqlite();
    let gw = Gateway::start(&config(&db.url, "  disable_spend_logs: true\n")).await;
    let key = new_key(&gw, json!({})).await;
    for _ in 0..3 {
        gw.post("/v1/chat/completions", Some(&key), &chat_body("g"))
            .await;
    }
    gw.state.spend().send(Flush).await.unwrap().unwrap();
    let t = totals(&db.target);
    assert_eq!(t.rows, 0);
    assert!((t.key_spend - 3.0 * COST).abs() < 1e-9, "{t:?}");
}

#[actix_rt::test]
async fn a_key_budget_window_resets_its_spend_on_schedule() {
    let db = TestDb::sqlite();
    let gw = Gateway::start(&config(&db.url, "")).await;
    let key = new_key(
        &gw,
        json!({"max_budget": COST * 1.5, "budget_duration": "2s"}),
    )
    .await;
    let info = gw
        .get(
            &format!("/key/info?key={key}"),
            Some("sk-master-spend-0001"),
        )
        .await;
    assert!(
        info.json()["info"]["budget_reset_at"].is_string(),
        "{}",
        info.text
    );
    assert_eq!(
        gw.post("/v1/chat/completions", Some(&key), &chat_body("g"))
            .await
            .status,
        200
    );
    assert_eq!(
        gw.post("/v1/chat/completions", Some(&key), &chat_body("g"))
            .await
            .status,
        200
    );
    let refused = gw
        .post("/v1/chat/completions", Some(&key), &chat_body("g"))
        .await;
    assert_eq!(
        (refused.status, refused.json()["error"]["type"].as_str()),
        (400, Some("budget_exceeded"))
    );
    assert!(
        eventually(Duration::from_secs(6), async || {
            gw.post("/v1/chat/completions", Some(&key), &chat_body("g"))
                .await
                .status
                == 200
        })
        .await,
        "the budget never reset"
    );
    gw.state.spend().send(Flush).await.unwrap().unwrap();
    let info = gw
        .get(
            &format!("/key/info?key={key}"),
            Some("sk-master-spend-0001"),
        )
        .await;
    let spend = info.json()["info"]["spend"].as_f64().unwrap();
    assert!(
        (spend - COST).abs() < 1e-9,
        "spend after the reset: {spend}"
    );
}

#[actix_rt::test]
async fn spend_logs_filter_by_key_request_and_date_and_global_spend_adds_up() {
    let db = TestDb::sqlite();
    let gw = Gateway::start(&config(&db.url, "")).await;
    let a = new_key(&gw, json!({})).await;
    let b = new_key(&gw, json!({})).await;
    let mut req = gw
        .client
        .post(format!("{}/v1/chat/completions", gw.base))
        .bearer_auth(&a);
    req = req.insert_header(("x-litellm-call-id", "call-abc"));
    assert_eq!(req.send_json(&chat_body("g")).await.unwrap().status(), 200);
    gw.post("/v1/chat/completions", Some(&b), &chat_body("g"))
        .await;
    gw.post("/v1/chat/completions", Some(&b), &chat_body("g"))
        .await;
    gw.state.spend().send(Flush).await.unwrap().unwrap();
    let by_key = gw
        .get(
            &format!("/spend/logs?api_key={b}"),
            Some("sk-master-spend-0001"),
        )
        .await
        .json();
    assert_eq!(by_key.as_array().unwrap().len(), 2);
    let row = &gw
        .get(
            "/spend/logs?request_id=call-abc",
            Some("sk-master-spend-0001"),
        )
        .await
        .json()[0];
    assert_eq!(row["model_group"], "g");
    assert_eq!(row["status"], "success");
    assert_eq!(row["total_tokens"], 30);
    assert!((row["spend"].as_f64().unwrap() - COST).abs() < 1e-12);
    assert_eq!(
        row["api_key"].as_str().unwrap().len(),
        64,
        "keys appear only hashed"
    );
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let dated = gw
        .get(
            &format!("/spend/logs?start_date={today}&end_date={today}"),
            Some("sk-master-spend-0001"),
        )
        .await;
    assert_eq!(dated.json().as_array().unwrap().len(), 3);
    let none = gw
        .get(
            "/spend/logs?start_date=2001-01-01&end_date=2001-01-02",
            Some("sk-master-spend-0001"),
        )
        .await;
    assert_eq!(none.json(), json!([]));
    let bad = gw
        .get(
            "/spend/logs?start_date=yesterday",
            Some("sk-master-spend-0001"),
        )
        .await;
    assert_eq!(
        (bad.status, bad.json()["error"]["param"].as_str()),
        (400, Some("start_date"))
    );
    let global = gw
        .get("/global/spend", Some("sk-master-spend-0001"))
        .await
        .json();
    assert!(
        (global["spend"].as_f64().unwrap() - 3.0 * COST).abs() < 1e-9,
        "{global}"
    );
    assert_eq!(
        gw.get("/spend/logs", Some(&a)).await.status,
        401,
        "spend reads are for the master key"
    );
}

#[actix_rt::test]
async fn the_proxy_budget_refuses_everyone_once_crossed() {
    let db = TestDb::sqlite();
    let gw = Gateway::start(&config(&db.url, &format!("  max_budget: {}\n", COST * 1.5))).await;
    let key = new_key(&gw, json!({})).await;
    assert_eq!(
        gw.post("/v1/chat/completions", Some(&key), &chat_body("g"))
            .await
            .status,
        200
    );
    assert_eq!(
        gw.post(
            "/v1/chat/completions",
            Some("sk-master-spend-0001"),
            &chat_body("g")
        )
        .await
        .status,
        200
    );
    for caller in [key.as_str(), "sk-master-spend-0001"] {
        let r = gw
            .post("/v1/chat/completions", Some(caller), &chat_body("g"))
            .await;
        assert_eq!(
            (r.status, r.json()["error"]["type"].as_str()),
            (400, Some("budget_exceeded")),
            "{}",
            r.text
        );
    }
}

#[actix_rt::test]
async fn a_database_that_is_down_at_startup_is_a_clear_error_and_exit() {
    let closed = free_port();
    let dir = temp_dir("dbdown");
    let cfg = dir.join("config.yaml");
    std::fs::write(
        &cfg,
        config(
            &format!("postgres://postgres@127.0.0.1:{closed}/nothing"),
            "",
        ),
    )
    .unwrap();
    let out = crate::support::binary::bin()
        .args([
            "--config",
            cfg.to_str().unwrap(),
            "--port",
            &free_port().to_string(),
        ])
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot open the database (PostgreSQL)"),
        "{err}"
    );
}

#[actix_rt::test]
async fn a_sigterm_during_traffic_loses_no_answered_requests_spend() {
    let db = TestDb::sqlite();
    let dir = temp_dir("sigterm");
    let cfg = dir.join("config.yaml");
    std::fs::write(&cfg, config(&db.url, "")).unwrap();
    let proc = Process::spawn(
        &["--config", cfg.to_str().unwrap(), "--num_workers", "2"],
        &[],
    );
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(10))
        .finish();
    let mut res = client
        .post(format!("{}/key/generate", proc.base))
        .bearer_auth("sk-master-spend-0001")
        .send_json(&json!({"duration": null}))
        .await
        .unwrap();
    let key = res.json::<Value>().await.unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut answered = Vec::new();
    let pid = proc.child.id();
    for i in 0..200 {
        if i == 120 {
            std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .unwrap();
        }
        let sent = client
            .post(format!("{}/v1/chat/completions", proc.base))
            .bearer_auth(&key)
            .send_json(&chat_body("g"))
            .await;
        match sent {
            Ok(r) if r.status() == 200 => {
                answered.push(
                    r.headers()
                        .get("x-litellm-call-id")
                        .unwrap()
                        .to_str()
                        .unwrap()
                        .to_owned(),
                );
            }
            _ => {}
        }
    }
    let mut proc = proc;
    let status = proc.child.wait().unwrap();
    assert!(status.success(), "{}", proc.log());
    assert!(answered.len() >= 120, "only {} answered", answered.len());
    let logged = logged_ids(&db.target);
    for id in &answered {
        assert!(
            logged.contains(id),
            "answered request {id} has no spend row; log:\n{}",
            proc.log()
        );
    }
    let t = totals(&db.target);
    assert!(
        (t.key_spend - answered.len() as f64 * COST).abs() < 1e-9,
        "{t:?}"
    );
    // A restart on the same database carries on from the stored spend.
    let again = Process::spawn(&["--config", cfg.to_str().unwrap()], &[]);
    let mut info = client
        .get(format!("{}/key/info?key={key}", again.base))
        .bearer_auth("sk-master-spend-0001")
        .send()
        .await
        .unwrap();
    let spend = info.json::<Value>().await.unwrap()["info"]["spend"]
        .as_f64()
        .unwrap();
    assert!((spend - answered.len() as f64 * COST).abs() < 1e-9);
}

#[actix_rt::test]
async fn changing_a_keys_settings_never_overwrites_the_spend_counted_since_it_was_read() {
    for db in both() {
        let gw = Gateway::start(&config(&db.url, "")).await;
        let key = new_key(&gw, json!({"max_budget": 1.0})).await;
        for _ in 0..3 {
            gw.post("/v1/chat/completions", Some(&key), &chat_body("g"))
                .await;
        }
        gw.state.spend().send(Flush).await.unwrap().unwrap();
        for body in [json!({"key": key, "max_budget": 2.0}), json!({"key": key})] {
            assert_eq!(
                gw.post("/key/update", Some("sk-master-spend-0001"), &body)
                    .await
                    .status,
                200
            );
        }
        assert_eq!(
            gw.post(
                "/key/block",
                Some("sk-master-spend-0001"),
                &json!({"key": key})
            )
            .await
            .status,
            200
        );
        assert_eq!(
            gw.post(
                "/key/unblock",
                Some("sk-master-spend-0001"),
                &json!({"key": key})
            )
            .await
            .status,
            200
        );
        gw.post("/v1/chat/completions", Some(&key), &chat_body("g"))
            .await;
        let regenerated = gw
            .post(
                "/key/regenerate",
                Some("sk-master-spend-0001"),
                &json!({"key": key}),
            )
            .await;
        let new_key = regenerated.json()["key"].as_str().unwrap().to_owned();
        gw.post("/v1/chat/completions", Some(&new_key), &chat_body("g"))
            .await;
        gw.state.spend().send(Flush).await.unwrap().unwrap();
        let t = totals(&db.target);
        assert!((t.key_spend - 5.0 * COST).abs() < 1e-9, "{t:?}");
        let info = gw
            .get(
                &format!("/key/info?key={new_key}"),
                Some("sk-master-spend-0001"),
            )
            .await
            .json();
        assert!(
            (info["info"]["spend"].as_f64().unwrap() - 5.0 * COST).abs() < 1e-9,
            "{info}"
        );
        assert_eq!(info["info"]["max_budget"], 2.0);
        // An admin may set the spend explicitly.
        let set = gw
            .post(
                "/key/update",
                Some("sk-master-spend-0001"),
                &json!({"key": new_key, "spend": 0.5}),
            )
            .await;
        assert_eq!(set.json()["spend"], 0.5, "{}", set.text);
        gw.stop().await;
    }
}

#[actix_rt::test]
async fn the_proxy_budget_window_resets_on_schedule() {
    let db = TestDb::sqlite();
    let extra = format!("  max_budget: {}\n  budget_duration: 2s\n", COST * 0.5);
    let gw = Gateway::start(&config(&db.url, &extra)).await;
    assert_eq!(
        gw.post(
            "/v1/chat/completions",
            Some("sk-master-spend-0001"),
            &chat_body("g")
        )
        .await
        .status,
        200
    );
    let refused = gw
        .post(
            "/v1/chat/completions",
            Some("sk-master-spend-0001"),
            &chat_body("g"),
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert!(
        eventually(Duration::from_secs(6), async || {
            gw.post(
                "/v1/chat/completions",
                Some("sk-master-spend-0001"),
                &chat_body("g"),
            )
            .await
            .status
                == 200
        })
        .await,
        "the proxy budget never reset"
    );
}
