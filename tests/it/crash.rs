//! Crashes and stops of the real binary under traffic: after `kill -9` and a restart on the same
//! database, the spend of every answered request is there exactly once; a SIGTERM lets a stream
//! in progress finish and the process exit 0.

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;
use std::time::{Duration, Instant};

use diesel::sql_types::{Double, Text};
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl, SqliteConnection};
use llmgate::db::DbTarget;
use serde_json::{json, Value};

use crate::support::binary::{temp_dir, Process};
use crate::support::db::TestDb;
use crate::support::{Behavior, MockUpstream};

/// Clients sending at once.
const WORKERS: usize = 8;

fn config(api_base: &str, db_url: &str, write_every: f64) -> String {
    format!(
        "model_list:\n  - model_name: g\n    litellm_params: {{model: openai/m, api_base: '{api_base}', api_key: sk-up, input_cost_per_token: 0.000001, output_cost_per_token: 0.000002}}\n\
         general_settings:\n  master_key: sk-durability-master-key-01\n  database_url: '{db_url}'\n  proxy_batch_write_at: {write_every}\n"
    )
}

#[derive(QueryableByName, Debug)]
struct Row {
    #[diesel(sql_type = Text)]
    request_id: String,
    #[diesel(sql_type = Text)]
    api_key: String,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Double)]
    spend: f64,
}

#[derive(QueryableByName, Debug)]
struct Spend {
    #[diesel(sql_type = Double)]
    spend: f64,
}

fn query<T>(target: &DbTarget, sql: &str) -> Vec<T>
where
    T: QueryableByName<diesel::sqlite::Sqlite> + QueryableByName<diesel::pg::Pg> + 'static,
{
    match target {
        DbTarget::Sqlite(path) => diesel::sql_query(sql)
            .load(&mut SqliteConnection::establish(path).unwrap())
            .unwrap(),
        DbTarget::Postgres(url) => diesel::sql_query(sql)
            .load(&mut PgConnection::establish(url).unwrap())
            .unwrap(),
    }
}

fn client() -> awc::Client {
    awc::Client::builder()
        .timeout(Duration::from_secs(20))
        .finish()
}

async fn new_key(base: &str) -> String {
    let mut res = client()
        .post(format!("{base}/key/generate"))
        .bearer_auth("sk-durability-master-key-01")
        .send_json(&json!({"duration": null}))
        .await
        .unwrap();
    res.json::<Value>().await.unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Sends one request; its call id when it was answered in full (a stream through `[DONE]`).
async fn one(base: &str, key: &str, stream: bool) -> Option<String> {
    let body = json!({"model": "g", "stream": stream,
        "messages": [{"role": "user", "content": "hello there"}]});
    let mut res = client()
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(key)
        .send_json(&body)
        .await
        .ok()?;
    if res.status() != 200 {
        return None;
    }
    let id = res
        .headers()
        .get("x-litellm-call-id")?
        .to_str()
        .ok()?
        .to_owned();
    let body = res.body().limit(1 << 20).await.ok()?;
    let text = String::from_utf8_lossy(&body);
    let whole = if stream {
        text.contains("data: [DONE]")
    } else {
        serde_json::from_str::<Value>(&text).is_ok_and(|v| v["object"] == "chat.completion")
    };
    whole.then_some(id)
}

/// Drives streaming and plain requests from `workers` clients at once, kills the gateway with
/// SIGKILL once 50 are answered (or 10 s passed); the ids of the requests answered in full.
async fn traffic_until_killed(proc: &mut Process, key: &str, workers: usize) -> HashSet<String> {
    let answered = Rc::new(RefCell::new(HashSet::new()));
    let stop = Rc::new(std::cell::Cell::new(false));
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (answered, stop) = (answered.clone(), stop.clone());
        let (base, key) = (proc.base.clone(), key.to_owned());
        tasks.push(actix_rt::spawn(async move {
            let mut n = 0usize;
            while !stop.get() {
                if let Some(id) = one(&base, &key, (w + n).is_multiple_of(2)).await {
                    answered.borrow_mut().insert(id);
                }
                n += 1;
            }
        }));
    }
    // Let answers (and some batch writes) happen, then kill mid-traffic.
    let started = Instant::now();
    while answered.borrow().len() < 50 && started.elapsed() < Duration::from_secs(10) {
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    proc.child.kill().unwrap();
    proc.child.wait().unwrap();
    stop.set(true);
    for t in tasks {
        t.await.unwrap();
    }
    let answered = answered.borrow().clone();
    answered
}

async fn a_kill_9_loses_no_answered_spend_and_counts_none_twice(db: TestDb, write_every: f64) {
    let upstream = MockUpstream::start().await;
    upstream.set(Behavior::Normal {
        chunks: 4,
        gap: Duration::from_millis(2),
        usage: true,
    });
    let dir = temp_dir("crash");
    let cfg = dir.join("config.yaml");
    std::fs::write(&cfg, config(&upstream.v1(), &db.url, write_every)).unwrap();
    let journal = dir.join("spend.journal");
    let journal = journal.to_str().unwrap();
    let env = [("LLMGATE_SPEND_JOURNAL", journal)];
    let args = ["--config", cfg.to_str().unwrap(), "--num_workers", "2"];
    let mut proc = Process::spawn(&args, &env);
    let key = new_key(&proc.base).await;
    // Twice: a run that replayed a journal must number its own changes after it.
    let mut answered = HashSet::new();
    for _ in 0..2 {
        let round = traffic_until_killed(&mut proc, &key, WORKERS).await;
        assert!(
            round.len() >= 20,
            "only {} answered: {}",
            round.len(),
            proc.log()
        );
        answered.extend(round);
        // The restart replays the journal before it serves.
        proc = Process::spawn(&args, &env);
    }
    let again = proc;
    let rows: Vec<Row> = query(
        &db.target,
        "SELECT request_id, api_key, status, spend FROM llmgate_spend_logs",
    );
    let ok: HashSet<&str> = rows
        .iter()
        .filter(|r| r.status == "success")
        .map(|r| r.request_id.as_str())
        .collect();
    let lost: Vec<_> = answered
        .iter()
        .filter(|id| !ok.contains(id.as_str()))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} answered requests have no spend row: {lost:?}\nrestart:\n{}",
        lost.len(),
        answered.len(),
        again.log()
    );
    // Requests the upstream served but whose answer the kill cut off may be charged too; there
    // are at most as many as were in flight.
    assert!(
        ok.len() <= answered.len() + 2 * WORKERS,
        "{} > {}",
        ok.len(),
        answered.len()
    );
    assert!(rows
        .iter()
        .filter(|r| r.status == "success")
        .all(|r| r.spend > 0.0));
    let token = llmgate::keys::hash_key(&key);
    let logged: f64 = rows
        .iter()
        .filter(|r| r.api_key == token)
        .map(|r| r.spend)
        .sum();
    let key_spend = query::<Spend>(
        &db.target,
        &format!("SELECT spend FROM llmgate_keys WHERE token = '{token}'"),
    )[0]
    .spend;
    let proxy_spend = query::<Spend>(
        &db.target,
        "SELECT spend FROM llmgate_proxy_spend WHERE id = 1",
    )[0]
    .spend;
    assert!(
        (key_spend - logged).abs() < 1e-9,
        "key {key_spend} vs rows {logged}"
    );
    assert!(
        (proxy_spend - logged).abs() < 1e-9,
        "proxy {proxy_spend} vs rows {logged}"
    );
    assert!(
        again.log().contains("replayed") || write_every < 1.0,
        "nothing was replayed: {}",
        again.log()
    );

    // The restarted gateway carries on from there, and the key's spend shows it.
    let mut info = client()
        .get(format!("{}/key/info?key={key}", again.base))
        .bearer_auth("sk-durability-master-key-01")
        .send()
        .await
        .unwrap();
    let shown = info.json::<Value>().await.unwrap()["info"]["spend"]
        .as_f64()
        .unwrap();
    assert!((shown - logged).abs() < 1e-9, "{shown} vs {logged}");
}

#[actix_rt::test]
async fn a_kill_9_mid_traffic_on_sqlite_loses_no_answered_spend_and_counts_none_twice() {
    // Spend is written every 60 s: everything answered is only in the journal at the kill.
    a_kill_9_loses_no_answered_spend_and_counts_none_twice(TestDb::sqlite(), 60.0).await;
}

#[actix_rt::test]
async fn a_kill_9_mid_traffic_on_postgres_loses_no_answered_spend_and_counts_none_twice() {
    // Spend is written every 0.5 s: the kill lands between writes (or during one), and the
    // journal may hold changes the database already has, which the replay must skip.
    a_kill_9_loses_no_answered_spend_and_counts_none_twice(TestDb::postgres(), 0.5).await;
}

#[actix_rt::test]
async fn a_stream_in_progress_at_sigterm_completes_and_the_process_exits_0() {
    let upstream = MockUpstream::start().await;
    upstream.set(Behavior::Normal {
        chunks: 15,
        gap: Duration::from_millis(100),
        usage: true,
    });
    let db = TestDb::sqlite();
    let dir = temp_dir("sigterm-stream");
    let cfg = dir.join("config.yaml");
    std::fs::write(&cfg, config(&upstream.v1(), &db.url, 60.0)).unwrap();
    let journal = dir.join("spend.journal");
    let env = [("LLMGATE_SPEND_JOURNAL", journal.to_str().unwrap())];
    let mut proc = Process::spawn(&["--config", cfg.to_str().unwrap()], &env);
    let body = json!({"model": "g", "stream": true,
        "messages": [{"role": "user", "content": "hello there"}]});
    let mut res = client()
        .post(format!("{}/v1/chat/completions", proc.base))
        .bearer_auth("sk-durability-master-key-01")
        .send_json(&body)
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let id = res
        .headers()
        .get("x-litellm-call-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    // The first chunk is here: the stream is in progress.
    let mut text = String::new();
    use futures_util::StreamExt;
    while !text.contains("data: ") {
        let chunk = res.next().await.unwrap().unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    std::process::Command::new("kill")
        .args(["-TERM", &proc.child.id().to_string()])
        .status()
        .unwrap();
    // No new request is served while the stream goes on.
    actix_rt::time::sleep(Duration::from_millis(200)).await;
    let late = awc::Client::builder()
        .timeout(Duration::from_millis(500))
        .finish()
        .get(format!("{}/health/liveliness", proc.base))
        .send()
        .await;
    assert!(
        late.is_err(),
        "a request after SIGTERM was served: {:?}",
        late.map(|r| r.status())
    );
    while let Some(chunk) = res.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
    }
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert_eq!(text.matches("\"content\"").count(), 15, "{text}");
    let status = proc.child.wait().unwrap();
    assert!(status.success(), "{status:?}\n{}", proc.log());
    let rows: Vec<Row> = query(
        &db.target,
        "SELECT request_id, api_key, status, spend FROM llmgate_spend_logs",
    );
    assert!(
        rows.iter()
            .any(|r| r.request_id == id && r.status == "success"),
        "{rows:?}"
    );
    // A clean stop leaves no journal behind: the database holds everything.
    assert!(!journal.exists(), "{}", proc.log());
}
