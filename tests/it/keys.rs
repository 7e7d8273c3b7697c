//! Virtual keys through HTTP: the key API, every rejection, durations, aliases and model
//! lists, costs and spend, on SQLite and on the machine's PostgreSQL.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Months, Utc};
use diesel::sql_types::{Double, Text};
use diesel::{sql_query, Connection, PgConnection, QueryableByName, RunQueryDsl, SqliteConnection};
use llmgate::actors::Flush;
use llmgate::db::DbTarget;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::support::db::{both, TestDb};
use crate::support::gateway::{sse_events, Reply};
use crate::support::{chat_body, eventually, Behavior, Gateway, MockUpstream};

const MASTER: &str = "sk-master";

/// Prices of the `gpt-test` group, per token.
const GPT_IN: f64 = 0.001;
const GPT_OUT: f64 = 0.002;
/// Prices of the `cheap` group, per token.
const CHEAP_IN: f64 = 0.0001;
const CHEAP_OUT: f64 = 0.0002;
/// The mock upstream's usage: 7 prompt and 3 completion tokens (a stream of 3 chunks too).
const GPT_COST: f64 = 7.0 * GPT_IN + 3.0 * GPT_OUT;
const CHEAP_COST: f64 = 7.0 * CHEAP_IN + 3.0 * CHEAP_OUT;
/// A `mock_response` reply: 10 prompt and 20 completion tokens at the `gpt-test` prices.
const CANNED_COST: f64 = 10.0 * GPT_IN + 20.0 * GPT_OUT;

/// A gateway in front of a mock upstream (`gpt-test`, in access group `beta`, and `cheap`), a
/// `mock_response` group (`canned`) and a slow upstream (`slow`, priced like `gpt-test`).
struct Fixture {
    gw: Gateway,
    mock: MockUpstream,
    slow: MockUpstream,
}

/// Starts the fixture on `db` (the default in-memory SQLite when `None`); `general` is added
/// inside `general_settings`, `more` after it.
async fn fixture(db: Option<&TestDb>, general: &str, more: &str) -> Fixture {
    let mock = MockUpstream::start().await;
    let slow = MockUpstream::start().await;
    slow.set(Behavior::Delay(Duration::from_millis(1500)));
    let db_url = db.map_or(String::new(), |d| format!(", database_url: '{}'", d.url));
    let yaml = format!(
        "model_list:
  - model_name: gpt-test
    litellm_params: {{model: openai/gpt-test, api_base: '{mock}', input_cost_per_token: {GPT_IN}, output_cost_per_token: {GPT_OUT}}}
    model_info: {{access_groups: [beta]}}
  - model_name: cheap
    litellm_params: {{model: openai/cheap, api_base: '{mock}', input_cost_per_token: {CHEAP_IN}, output_cost_per_token: {CHEAP_OUT}}}
  - model_name: canned
    litellm_params: {{model: openai/canned, mock_response: 'canned reply', input_cost_per_token: {GPT_IN}, output_cost_per_token: {GPT_OUT}}}
  - model_name: slow
    litellm_params: {{model: openai/slow, api_base: '{slow}', input_cost_per_token: {GPT_IN}, output_cost_per_token: {GPT_OUT}}}
general_settings: {{master_key: {MASTER}{db_url}{general}}}
{more}
",
        mock = mock.v1(),
        slow = slow.v1(),
    );
    Fixture {
        gw: Gateway::start(&yaml).await,
        mock,
        slow,
    }
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn assert_close(got: f64, want: f64, what: &str) {
    assert!(
        (got - want).abs() < 1e-9,
        "{what}: got {got}, expected {want}"
    );
}

fn header_f64(r: &Reply, name: &str) -> f64 {
    let v = r
        .header(name)
        .unwrap_or_else(|| panic!("no {name} header; status {} {}", r.status, r.text));
    v.parse()
        .unwrap_or_else(|e| panic!("{name}: {v:?} is not a number ({e})"))
}

fn time_of(v: &Value) -> DateTime<Utc> {
    let text = v.as_str().unwrap_or_else(|| panic!("not a time: {v}"));
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text:?} is not ISO 8601 ({e})"))
        .with_timezone(&Utc)
}

fn assert_about(got: DateTime<Utc>, want: DateTime<Utc>, what: &str) {
    let off = (got - want).num_seconds().abs();
    assert!(off <= 30, "{what}: got {got}, expected about {want}");
}

/// Asserts the reply is an error with this status and `type`.
fn assert_refused(r: &Reply, status: u16, kind: &str, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.text);
    let body = r.json();
    assert_eq!(body["error"]["type"], kind, "{what}: {}", r.text);
    assert_eq!(
        body["error"]["code"],
        status.to_string(),
        "{what}: {}",
        r.text
    );
}

async fn generate(gw: &Gateway, body: Value) -> Value {
    let r = gw.post("/key/generate", Some(MASTER), &body).await;
    assert_eq!(r.status, 200, "generate {body}: {}", r.text);
    r.json()
}

/// A new key with these settings (the plaintext).
async fn key_with(gw: &Gateway, body: Value) -> String {
    generate(gw, body)
        .await
        .get("key")
        .and_then(Value::as_str)
        .expect("generate answers the key")
        .to_owned()
}

async fn chat(gw: &Gateway, key: &str, model: &str) -> Reply {
    gw.post("/v1/chat/completions", Some(key), &chat_body(model))
        .await
}

async fn ok_chat(gw: &Gateway, key: &str, model: &str) -> Reply {
    let r = chat(gw, key, model).await;
    assert_eq!(r.status, 200, "{model}: {}", r.text);
    r
}

async fn post_master(gw: &Gateway, path: &str, body: Value) -> Value {
    let r = gw.post(path, Some(MASTER), &body).await;
    assert_eq!(r.status, 200, "{path} {body}: {}", r.text);
    r.json()
}

async fn key_info(gw: &Gateway, key: &str) -> Value {
    let r = gw.get(&format!("/key/info?key={key}"), Some(MASTER)).await;
    assert_eq!(r.status, 200, "/key/info: {}", r.text);
    r.json()["info"].clone()
}

async fn flush(gw: &Gateway) {
    gw.state
        .spend()
        .send(Flush)
        .await
        .expect("the spend actor runs")
        .expect("the flush is written");
}

fn model_ids(r: &Reply) -> BTreeSet<String> {
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()["data"]
        .as_array()
        .expect("data is a list")
        .iter()
        .map(|m| m["id"].as_str().expect("id").to_owned())
        .collect()
}

fn model_info_names(r: &Reply) -> BTreeSet<String> {
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()["data"]
        .as_array()
        .expect("data is a list")
        .iter()
        .map(|m| m["model_name"].as_str().expect("model_name").to_owned())
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

// ---- Raw rows, read past the gateway.

#[derive(QueryableByName)]
struct StoredKey {
    #[diesel(sql_type = Text)]
    token: String,
    #[diesel(sql_type = Text)]
    key_name: String,
    #[diesel(sql_type = Double)]
    spend: f64,
}

#[derive(QueryableByName)]
struct StoredLog {
    #[diesel(sql_type = Text)]
    api_key: String,
    #[diesel(sql_type = Double)]
    spend: f64,
}

#[derive(QueryableByName)]
struct RowText {
    #[diesel(sql_type = Text)]
    row_text: String,
}

const KEYS_SQL: &str = "SELECT token, key_name, spend FROM llmgate_keys ORDER BY token";
const LOGS_SQL: &str = "SELECT api_key, spend FROM llmgate_spend_logs";

fn stored_keys(db: &TestDb) -> Vec<StoredKey> {
    match &db.target {
        DbTarget::Sqlite(path) => sql_query(KEYS_SQL)
            .load(&mut SqliteConnection::establish(path).expect("opens the SQLite file"))
            .expect("reads llmgate_keys"),
        DbTarget::Postgres(url) => sql_query(KEYS_SQL)
            .load(&mut PgConnection::establish(url).expect("connects"))
            .expect("reads llmgate_keys"),
    }
}

fn stored_logs(db: &TestDb) -> Vec<StoredLog> {
    match &db.target {
        DbTarget::Sqlite(path) => sql_query(LOGS_SQL)
            .load(&mut SqliteConnection::establish(path).expect("opens the SQLite file"))
            .expect("reads llmgate_spend_logs"),
        DbTarget::Postgres(url) => sql_query(LOGS_SQL)
            .load(&mut PgConnection::establish(url).expect("connects"))
            .expect("reads llmgate_spend_logs"),
    }
}

/// Everything the database holds, as text: the SQLite files' bytes, or every row of every
/// llmgate table on PostgreSQL.
fn everything_stored(db: &TestDb) -> String {
    match &db.target {
        DbTarget::Sqlite(path) => ["", "-wal", "-journal", "-shm"]
            .iter()
            .filter_map(|suffix| std::fs::read(format!("{path}{suffix}")).ok())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .collect(),
        DbTarget::Postgres(url) => {
            let mut conn = PgConnection::establish(url).expect("connects");
            [
                "llmgate_keys",
                "llmgate_key_model_spend",
                "llmgate_spend_logs",
            ]
            .iter()
            .flat_map(|table| {
                sql_query(format!("SELECT CAST(t AS TEXT) AS row_text FROM {table} t"))
                    .load::<RowText>(&mut conn)
                    .expect("reads a table")
            })
            .map(|r| r.row_text)
            .collect::<Vec<_>>()
            .join("\n")
        }
    }
}

// ---- 1. The lifecycle.

async fn whole_lifecycle(db: &TestDb) {
    let Fixture { gw, .. } = fixture(Some(db), "", "").await;
    let alias = format!("alice-{}", fastrand::u32(..));
    let sent = json!({
        "models": ["gpt-test", "cheap", "canned"],
        "aliases": {"my-gpt": "gpt-test"},
        "key_alias": alias,
        "config": {"note": "x"},
        "spend": 0.25,
        "max_budget": 10.0,
        "budget_duration": "30d",
        "tpm_limit": 100_000,
        "rpm_limit": 1000,
        "max_parallel_requests": 10,
        "model_max_budget": {"gpt-test": 5.0},
        "model_rpm_limit": {"gpt-test": 500},
        "model_tpm_limit": {"gpt-test": 50_000},
        "metadata": {"team": "search"},
        "user_id": "user-1",
        "team_id": "team-1",
        "tags": ["a", "b"],
        "blocked": false,
    });
    let mut body = sent.clone();
    body["duration"] = json!("30d");
    // A team key needs its team.
    post_master(&gw, "/team/new", json!({"team_id": "team-1"})).await;
    let before = Utc::now();
    let issued = generate(&gw, body).await;
    for (field, value) in sent.as_object().unwrap() {
        assert_eq!(&issued[field], value, "{field} echoed: {issued}");
    }
    let key = issued["key"].as_str().expect("key").to_owned();
    assert!(key.starts_with("sk-"), "{key}");
    assert!(
        key.len() >= 3 + 22,
        "at least 128 bits of randomness: {key}"
    );
    assert_eq!(
        issued["key_name"],
        format!("sk-...{}", &key[key.len() - 4..])
    );
    assert_eq!(issued["token_id"], sha256_hex(&key));
    assert_about(
        time_of(&issued["expires"]),
        before + chrono::Duration::days(30),
        "expires",
    );
    assert_about(time_of(&issued["created_at"]), before, "created_at");
    assert!(!issued.to_string().contains("\"token\":\"sk-"), "{issued}");

    // The key works, is charged, and sees its own info.
    let r = ok_chat(&gw, &key, "gpt-test").await;
    assert_close(
        header_f64(&r, "x-litellm-key-spend"),
        0.25 + GPT_COST,
        "key spend starts from the given spend",
    );
    let info = key_info(&gw, &key).await;
    for field in [
        "models",
        "aliases",
        "key_alias",
        "max_budget",
        "rpm_limit",
        "metadata",
        "tags",
    ] {
        assert_eq!(info[field], sent[field], "/key/info {field}: {info}");
    }
    assert_close(
        info["spend"].as_f64().unwrap(),
        0.25 + GPT_COST,
        "info spend",
    );
    assert_about(
        time_of(&info["expires"]),
        before + chrono::Duration::days(30),
        "info expires",
    );
    assert_about(
        time_of(&info["budget_reset_at"]),
        before + chrono::Duration::days(30),
        "budget_reset_at",
    );
    let own = gw.get("/key/info", Some(&key)).await;
    assert_eq!(own.status, 200, "a key reads its own info: {}", own.text);
    assert_eq!(own.json()["info"]["key_alias"], alias.as_str());
    let own = gw.get(&format!("/key/info?key={key}"), Some(&key)).await;
    assert_eq!(own.status, 200, "?key= naming itself: {}", own.text);

    // Another key may not read it, nor be read by it.
    let other = key_with(
        &gw,
        json!({"key_alias": format!("bob-{}", fastrand::u32(..))}),
    )
    .await;
    let r = gw.get(&format!("/key/info?key={key}"), Some(&other)).await;
    assert_refused(&r, 401, "auth_error", "a key asking about another");
    assert!(!r.text.contains(&sha256_hex(&key)), "{}", r.text);
    let r = gw
        .get(
            &format!("/key/info?key=sk-never-issued-{}", fastrand::u64(..)),
            Some(MASTER),
        )
        .await;
    assert_eq!(r.status, 404, "unknown key info: {}", r.text);

    // Update: limits and models change at once.
    let updated = post_master(
        &gw,
        "/key/update",
        json!({"key": key, "models": ["cheap"], "rpm_limit": 7, "metadata": {"v": 2}}),
    )
    .await;
    assert_eq!(updated["models"], json!(["cheap"]), "{updated}");
    assert_eq!(updated["rpm_limit"], 7, "{updated}");
    assert_refused(
        &chat(&gw, &key, "gpt-test").await,
        403,
        "key_model_access_denied",
        "after the update",
    );
    let r = ok_chat(&gw, &key, "cheap").await;
    assert_eq!(r.header("x-ratelimit-limit-requests"), Some("7"));
    let info = key_info(&gw, &key).await;
    assert_eq!(info["models"], json!(["cheap"]));
    assert_eq!(info["metadata"], json!({"v": 2}));
    assert_eq!(info["key_alias"], alias.as_str(), "untouched fields stay");

    // Block and unblock.
    post_master(&gw, "/key/block", json!({"key": key})).await;
    assert_refused(
        &chat(&gw, &key, "cheap").await,
        401,
        "auth_error",
        "blocked",
    );
    assert_eq!(key_info(&gw, &key).await["blocked"], true);
    post_master(&gw, "/key/unblock", json!({"key": key})).await;
    ok_chat(&gw, &key, "cheap").await;

    // The database holds hashes only.
    let stored = stored_keys(db);
    let tokens: BTreeSet<String> = stored.iter().map(|k| k.token.clone()).collect();
    assert_eq!(tokens, [sha256_hex(&key), sha256_hex(&other)].into());
    assert!(stored.iter().all(|k| k.key_name.starts_with("sk-...")));
    flush(&gw).await;
    let everything = everything_stored(db);
    assert!(!everything.is_empty());
    for plaintext in [&key, &other] {
        assert!(
            !everything.contains(plaintext.as_str()),
            "the plaintext key {plaintext} is stored"
        );
    }
    assert!(everything.contains(&sha256_hex(&key)));

    // Listing: hashes, paged.
    let page1 = gw.get("/key/list?page=1&size=1", Some(MASTER)).await;
    assert_eq!(page1.status, 200, "{}", page1.text);
    let page2 = gw.get("/key/list?page=2&size=1", Some(MASTER)).await;
    let (p1, p2) = (page1.json(), page2.json());
    assert_eq!(p1["total_count"], 2, "{p1}");
    assert_eq!(p1["total_pages"], 2, "{p1}");
    assert_eq!(p1["keys"].as_array().unwrap().len(), 1, "{p1}");
    let listed: BTreeSet<String> = [&p1, &p2]
        .iter()
        .flat_map(|p| p["keys"].as_array().unwrap().clone())
        .map(|k| k.as_str().expect("a hash").to_owned())
        .collect();
    assert_eq!(listed, tokens);
    for text in [&page1.text, &page2.text] {
        assert!(!text.contains(&key) && !text.contains(&other), "{text}");
    }
    let all = gw
        .get("/key/list?page=1&size=10", Some(MASTER))
        .await
        .json();
    assert_eq!(all["keys"].as_array().unwrap().len(), 2, "{all}");
    assert_eq!(all["total_pages"], 1, "{all}");

    // Regenerate: the old key stops, the new one works with the same settings.
    let spend_before = key_info(&gw, &key).await["spend"].as_f64().unwrap();
    let fresh = post_master(&gw, "/key/regenerate", json!({"key": key})).await;
    let new_key = fresh["key"].as_str().expect("a new key").to_owned();
    assert_ne!(new_key, key);
    assert!(new_key.starts_with("sk-"));
    assert_eq!(fresh["token_id"], sha256_hex(&new_key));
    assert_eq!(fresh["key_alias"], alias.as_str());
    assert_refused(
        &chat(&gw, &key, "cheap").await,
        401,
        "auth_error",
        "the old key",
    );
    let r = ok_chat(&gw, &new_key, "cheap").await;
    assert_close(
        header_f64(&r, "x-litellm-key-spend"),
        spend_before + CHEAP_COST,
        "the regenerated key keeps its spend",
    );

    // Delete by key and by alias.
    let deleted = post_master(&gw, "/key/delete", json!({"keys": [new_key]})).await;
    assert_eq!(deleted, json!({"deleted_keys": [new_key]}));
    assert_refused(
        &chat(&gw, &new_key, "cheap").await,
        401,
        "auth_error",
        "deleted",
    );
    let r = gw
        .get(&format!("/key/info?key={new_key}"), Some(MASTER))
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
    ok_chat(&gw, &other, "cheap").await;
    let other_alias = key_info(&gw, &other).await["key_alias"].clone();
    let deleted = post_master(&gw, "/key/delete", json!({"key_aliases": [other_alias]})).await;
    assert_eq!(
        deleted["deleted_keys"].as_array().map(Vec::len),
        Some(1),
        "{deleted}"
    );
    assert_refused(
        &chat(&gw, &other, "cheap").await,
        401,
        "auth_error",
        "deleted by alias",
    );
    assert!(stored_keys(db).is_empty());
    let all = gw.get("/key/list", Some(MASTER)).await.json();
    assert_eq!(all["total_count"], 0, "{all}");
}

#[actix_rt::test]
async fn the_whole_key_lifecycle_works_through_http_on_sqlite_and_postgres() {
    for db in both() {
        whole_lifecycle(&db).await;
    }
}

#[actix_rt::test]
async fn a_caller_chosen_key_is_kept_and_accepted_from_every_key_header() {
    let Fixture { gw, .. } = fixture(None, "", "").await;
    let chosen = format!("sk-my-own-chosen-key-{}", fastrand::u32(..));
    let issued = generate(&gw, json!({"key": chosen})).await;
    assert_eq!(issued["key"], chosen.as_str());
    assert_eq!(issued["token_id"], sha256_hex(&chosen));
    assert_eq!(
        issued["key_name"],
        format!("sk-...{}", &chosen[chosen.len() - 4..])
    );
    let again = gw
        .post("/key/generate", Some(MASTER), &json!({"key": chosen}))
        .await;
    assert_eq!(again.status, 400, "a key issued twice: {}", again.text);
    for (name, value) in [
        ("x-litellm-api-key", chosen.clone()),
        ("authorization", format!("Bearer {chosen}")),
        ("api-key", chosen.clone()),
        ("x-api-key", chosen.clone()),
        ("x-goog-api-key", chosen.clone()),
    ] {
        let res = gw
            .client
            .post(format!("{}/v1/chat/completions", gw.base))
            .insert_header((name, value))
            .send_json(&chat_body("gpt-test"))
            .await
            .expect("the gateway answers");
        assert_eq!(res.status().as_u16(), 200, "{name}");
        let spend: f64 = res
            .headers()
            .get("x-litellm-key-spend")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name}: the request is charged to the key"));
        assert!(spend > 0.0, "{name}: {spend}");
    }
}

#[actix_rt::test]
async fn key_management_routes_refuse_a_virtual_key() {
    let Fixture { gw, .. } = fixture(None, "", "").await;
    let key = key_with(&gw, json!({})).await;
    let victim = key_with(&gw, json!({"key_alias": "victim"})).await;
    for (path, body) in [
        ("/key/generate", json!({})),
        ("/key/update", json!({"key": victim, "max_budget": 0.0})),
        ("/key/block", json!({"key": victim})),
        ("/key/unblock", json!({"key": victim})),
        ("/key/regenerate", json!({"key": victim})),
        ("/key/delete", json!({"keys": [victim]})),
        ("/key/delete", json!({"key_aliases": ["victim"]})),
    ] {
        let r = gw.post(path, Some(&key), &body).await;
        assert_refused(&r, 401, "auth_error", path);
    }
    for path in ["/key/list", "/key/list?page=1&size=10"] {
        assert_refused(&gw.get(path, Some(&key)).await, 401, "auth_error", path);
    }
    // Nothing changed.
    ok_chat(&gw, &victim, "gpt-test").await;
    assert_eq!(key_info(&gw, &victim).await["max_budget"], Value::Null);
    let listed = gw.get("/key/list", Some(MASTER)).await.json();
    assert_eq!(listed["total_count"], 2, "{listed}");
}

// ---- 2. Rejections.

async fn each_rejection(db: &TestDb) {
    let Fixture { gw, mock, .. } = fixture(Some(db), "", "").await;

    assert_refused(
        &chat(&gw, "sk-never-issued-0123456789", "gpt-test").await,
        401,
        "auth_error",
        "unknown key",
    );
    assert_refused(
        &gw.post("/v1/chat/completions", None, &chat_body("gpt-test"))
            .await,
        401,
        "auth_error",
        "no key",
    );

    let blocked = key_with(&gw, json!({"blocked": true})).await;
    assert_refused(
        &chat(&gw, &blocked, "gpt-test").await,
        401,
        "auth_error",
        "blocked",
    );

    // Expiry: a one-second key is refused once its second is over.
    let short = key_with(&gw, json!({"duration": "1s"})).await;
    let mut last = None;
    let expired = eventually(Duration::from_secs(5), async || {
        let r = chat(&gw, &short, "canned").await;
        let done = r.status != 200;
        last = Some(r);
        done
    })
    .await;
    assert!(expired, "a 1s key still works after 5s");
    assert_refused(&last.unwrap(), 400, "expired_key", "expired");

    // A budget crossed by real requests.
    let calls = mock.call_count();
    let budget = key_with(&gw, json!({"max_budget": 0.02})).await;
    ok_chat(&gw, &budget, "gpt-test").await;
    let r = ok_chat(&gw, &budget, "gpt-test").await;
    assert_close(
        header_f64(&r, "x-litellm-key-spend"),
        2.0 * GPT_COST,
        "spend",
    );
    for model in ["gpt-test", "cheap"] {
        assert_refused(
            &chat(&gw, &budget, model).await,
            400,
            "budget_exceeded",
            "over budget",
        );
    }
    assert_eq!(
        mock.call_count(),
        calls + 2,
        "refused requests reach no upstream"
    );

    let narrow = key_with(&gw, json!({"models": ["cheap"]})).await;
    assert_refused(
        &chat(&gw, &narrow, "gpt-test").await,
        403,
        "key_model_access_denied",
        "model not allowed",
    );

    // rpm_limit: headers on the replies, then a 429 with retry-after.
    let rpm = key_with(&gw, json!({"rpm_limit": 2})).await;
    for remaining in ["1", "0"] {
        let r = ok_chat(&gw, &rpm, "gpt-test").await;
        assert_eq!(r.header("x-ratelimit-limit-requests"), Some("2"));
        assert_eq!(r.header("x-ratelimit-remaining-requests"), Some(remaining));
    }
    let r = chat(&gw, &rpm, "cheap").await;
    assert_refused(&r, 429, "rate_limit_error", "rpm_limit");
    let wait: u64 = r
        .header("retry-after")
        .expect("retry-after")
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "retry-after {wait}");

    // tpm_limit: each reply uses 10 tokens.
    let tpm = key_with(&gw, json!({"tpm_limit": 15})).await;
    for remaining in ["15", "5"] {
        let r = ok_chat(&gw, &tpm, "gpt-test").await;
        assert_eq!(r.header("x-ratelimit-limit-tokens"), Some("15"));
        assert_eq!(r.header("x-ratelimit-remaining-tokens"), Some(remaining));
    }
    let r = chat(&gw, &tpm, "gpt-test").await;
    assert_refused(&r, 429, "rate_limit_error", "tpm_limit");
    assert!(r.header("retry-after").is_some(), "tpm retry-after");

    // A key without limits gets no rate-limit headers.
    let free = key_with(&gw, json!({})).await;
    let r = ok_chat(&gw, &free, "gpt-test").await;
    assert!(r.header("x-ratelimit-limit-requests").is_none());

    // max_parallel_requests: two at once on a slow upstream, one refused.
    let parallel = key_with(&gw, json!({"max_parallel_requests": 1})).await;
    let (a, b) =
        futures_util::future::join(chat(&gw, &parallel, "slow"), chat(&gw, &parallel, "slow"))
            .await;
    let (ok, refused) = if a.status == 200 { (a, b) } else { (b, a) };
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_refused(&refused, 429, "rate_limit_error", "max_parallel_requests");
    assert!(refused.header("retry-after").is_some());
    ok_chat(&gw, &parallel, "canned").await;

    // Per-model limits leave the other models alone.
    let model_rpm = key_with(&gw, json!({"model_rpm_limit": {"gpt-test": 1}})).await;
    ok_chat(&gw, &model_rpm, "gpt-test").await;
    let r = chat(&gw, &model_rpm, "gpt-test").await;
    assert_refused(&r, 429, "rate_limit_error", "model_rpm_limit");
    assert!(r.header("retry-after").is_some());
    ok_chat(&gw, &model_rpm, "cheap").await;

    let model_tpm = key_with(&gw, json!({"model_tpm_limit": {"gpt-test": 5}})).await;
    ok_chat(&gw, &model_tpm, "gpt-test").await;
    let r = chat(&gw, &model_tpm, "gpt-test").await;
    assert_refused(&r, 429, "rate_limit_error", "model_tpm_limit");
    assert!(r.header("retry-after").is_some());
    ok_chat(&gw, &model_tpm, "cheap").await;

    let model_budget = key_with(&gw, json!({"model_max_budget": {"gpt-test": 0.01}})).await;
    ok_chat(&gw, &model_budget, "gpt-test").await;
    assert_refused(
        &chat(&gw, &model_budget, "gpt-test").await,
        400,
        "budget_exceeded",
        "model_max_budget",
    );
    ok_chat(&gw, &model_budget, "cheap").await;
}

#[actix_rt::test]
async fn each_rejection_has_its_exact_status_and_error_type_on_sqlite_and_postgres() {
    for db in both() {
        each_rejection(&db).await;
    }
}

#[actix_rt::test]
async fn every_model_route_enforces_the_key() {
    let Fixture { gw, .. } = fixture(None, "", "").await;
    let key = key_with(&gw, json!({"models": ["cheap"]})).await;
    let routes = |model: &str| {
        vec![
            ("/chat/completions".to_owned(), chat_body(model)),
            ("/v1/chat/completions".to_owned(), chat_body(model)),
            (
                "/v1/completions".to_owned(),
                json!({"model": model, "prompt": "hi"}),
            ),
            (
                "/v1/embeddings".to_owned(),
                json!({"model": model, "input": "hi"}),
            ),
            (
                format!("/openai/deployments/{model}/chat/completions"),
                json!({"messages": [{"role": "user", "content": "hi"}]}),
            ),
            (
                format!("/engines/{model}/completions"),
                json!({"prompt": "hi"}),
            ),
        ]
    };
    for (path, body) in routes("gpt-test") {
        let r = gw.post(&path, Some(&key), &body).await;
        assert_refused(&r, 403, "key_model_access_denied", &path);
    }
    for (path, body) in routes("cheap") {
        let r = gw.post(&path, Some(&key), &body).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        assert!(r.header("x-litellm-key-spend").is_some(), "{path}: charged");
    }
    let r = gw
        .post(
            "/v1/embeddings",
            Some(&key),
            &json!({"model": "cheap", "input": "hi"}),
        )
        .await;
    assert_close(
        header_f64(&r, "x-litellm-response-cost"),
        4.0 * CHEAP_IN,
        "embedding cost (4 prompt tokens)",
    );
    post_master(&gw, "/key/block", json!({"key": key})).await;
    for (path, body) in routes("cheap") {
        let r = gw.post(&path, Some(&key), &body).await;
        assert_refused(&r, 401, "auth_error", &path);
    }
}

async fn proxy_budget(db: &TestDb) {
    let Fixture { gw, .. } = fixture(Some(db), ", max_budget: 0.02", "").await;
    let key = key_with(&gw, json!({})).await;
    ok_chat(&gw, &key, "gpt-test").await;
    ok_chat(&gw, MASTER, "gpt-test").await;
    let spent = gw.get("/global/spend", Some(MASTER)).await.json();
    assert_close(
        spent["spend"].as_f64().unwrap(),
        2.0 * GPT_COST,
        "/global/spend",
    );
    let late = key_with(&gw, json!({})).await;
    for (who, k) in [
        ("the key", key.as_str()),
        ("a new key", &late),
        ("the master key", MASTER),
    ] {
        assert_refused(
            &chat(&gw, k, "cheap").await,
            400,
            "budget_exceeded",
            &format!("proxy budget for {who}"),
        );
    }
}

#[actix_rt::test]
async fn the_proxy_wide_budget_refuses_everyone_once_crossed_on_sqlite_and_postgres() {
    for db in both() {
        proxy_budget(&db).await;
    }
}

// ---- 3. Durations.

#[actix_rt::test]
async fn durations_are_parsed_strictly_and_set_expires() {
    let Fixture { gw, .. } = fixture(None, "", "").await;
    let now = Utc::now();
    for (text, secs) in [
        ("30s", 30),
        ("30m", 1800),
        ("30min", 1800),
        ("30h", 30 * 3600),
        ("30d", 30 * 86_400),
    ] {
        let issued = generate(&gw, json!({"duration": text})).await;
        assert_about(
            time_of(&issued["expires"]),
            now + chrono::Duration::seconds(secs),
            text,
        );
    }
    let issued = generate(&gw, json!({"duration": "1mo"})).await;
    assert_about(
        time_of(&issued["expires"]),
        now.checked_add_months(Months::new(1)).unwrap(),
        "1mo",
    );
    for bad in [
        json!("30"),
        json!("30x"),
        json!("1y"),
        json!(5),
        json!("1.5h"),
        json!(""),
    ] {
        let r = gw
            .post("/key/generate", Some(MASTER), &json!({"duration": bad}))
            .await;
        assert_refused(&r, 400, "invalid_request_error", &format!("duration {bad}"));
        assert_eq!(r.json()["error"]["param"], "duration", "{bad}: {}", r.text);
    }
    let omitted = generate(&gw, json!({})).await;
    assert_about(
        time_of(&omitted["expires"]),
        now + chrono::Duration::hours(1),
        "the default duration",
    );
    let never = generate(&gw, json!({"duration": null})).await;
    assert_eq!(never["expires"], Value::Null, "{never}");
    let key = never["key"].as_str().unwrap();
    assert_eq!(key_info(&gw, key).await["expires"], Value::Null);
}

#[actix_rt::test]
async fn default_key_generate_params_set_the_default_duration() {
    let Fixture { gw, .. } = fixture(
        None,
        "",
        "litellm_settings: {default_key_generate_params: {duration: 2h}}",
    )
    .await;
    let now = Utc::now();
    let issued = generate(&gw, json!({})).await;
    assert_about(
        time_of(&issued["expires"]),
        now + chrono::Duration::hours(2),
        "the configured default",
    );
    let never = generate(&gw, json!({"duration": null})).await;
    assert_eq!(never["expires"], Value::Null);
}

// ---- 4. Aliases and model lists.

#[actix_rt::test]
async fn a_key_alias_routes_its_public_name_to_the_group() {
    let Fixture { gw, mock, .. } = fixture(None, "", "").await;
    let key = key_with(&gw, json!({"aliases": {"my-gpt": "gpt-test"}})).await;
    let r = ok_chat(&gw, &key, "my-gpt").await;
    assert_eq!(r.header("x-litellm-model-group"), Some("gpt-test"));
    assert_eq!(mock.last().body["model"], "gpt-test");
    assert_close(
        header_f64(&r, "x-litellm-response-cost"),
        GPT_COST,
        "alias cost",
    );

    let plain = key_with(&gw, json!({})).await;
    let r = chat(&gw, &plain, "my-gpt").await;
    assert_refused(&r, 400, "invalid_request_error", "another key's alias");
    assert!(r.text.contains("/v1/models"), "{}", r.text);

    // `models` may name the alias itself.
    let only_alias = key_with(
        &gw,
        json!({"models": ["my-gpt"], "aliases": {"my-gpt": "gpt-test"}}),
    )
    .await;
    ok_chat(&gw, &only_alias, "my-gpt").await;
    assert_refused(
        &chat(&gw, &only_alias, "cheap").await,
        403,
        "key_model_access_denied",
        "outside the alias",
    );
}

#[actix_rt::test]
async fn models_may_name_groups_and_access_groups_and_empty_means_all() {
    let Fixture { gw, .. } = fixture(None, "", "").await;
    let beta = key_with(&gw, json!({"models": ["beta"]})).await;
    ok_chat(&gw, &beta, "gpt-test").await;
    for model in ["cheap", "canned"] {
        assert_refused(
            &chat(&gw, &beta, model).await,
            403,
            "key_model_access_denied",
            model,
        );
    }
    let group = key_with(&gw, json!({"models": ["cheap", "canned"]})).await;
    ok_chat(&gw, &group, "cheap").await;
    ok_chat(&gw, &group, "canned").await;
    assert_refused(
        &chat(&gw, &group, "gpt-test").await,
        403,
        "key_model_access_denied",
        "gpt-test",
    );
    let all = key_with(&gw, json!({"models": []})).await;
    for model in ["gpt-test", "cheap", "canned"] {
        ok_chat(&gw, &all, model).await;
    }
}

#[actix_rt::test]
async fn model_lists_show_only_what_the_key_may_use() {
    let Fixture { gw, .. } = fixture(None, "", "").await;
    let everything = set(&["gpt-test", "cheap", "canned", "slow"]);
    let beta = key_with(&gw, json!({"models": ["beta"]})).await;
    let two = key_with(&gw, json!({"models": ["cheap", "canned"]})).await;
    let all = key_with(&gw, json!({})).await;
    for prefix in ["", "/v1"] {
        let models = format!("{prefix}/models");
        let info = format!("{prefix}/model/info");
        assert_eq!(
            model_ids(&gw.get(&models, Some(&beta)).await),
            set(&["gpt-test"])
        );
        assert_eq!(
            model_info_names(&gw.get(&info, Some(&beta)).await),
            set(&["gpt-test"])
        );
        assert_eq!(
            model_ids(&gw.get(&models, Some(&two)).await),
            set(&["cheap", "canned"])
        );
        assert_eq!(
            model_info_names(&gw.get(&info, Some(&two)).await),
            set(&["cheap", "canned"])
        );
        assert_eq!(model_ids(&gw.get(&models, Some(&all)).await), everything);
        assert_eq!(
            model_info_names(&gw.get(&info, Some(&all)).await),
            everything
        );
        assert_eq!(model_ids(&gw.get(&models, Some(MASTER)).await), everything);
    }
    // An update shows in the list at once.
    post_master(
        &gw,
        "/key/update",
        json!({"key": beta, "models": ["cheap"]}),
    )
    .await;
    assert_eq!(
        model_ids(&gw.get("/v1/models", Some(&beta)).await),
        set(&["cheap"])
    );
    assert_refused(
        &gw.get("/v1/models", Some("sk-never-issued-0123456789"))
            .await,
        401,
        "auth_error",
        "unknown key lists models",
    );
}

// ---- 5. Costs and spend.

async fn costs_and_spend(db: &TestDb) {
    let Fixture { gw, .. } = fixture(Some(db), "", "").await;
    let key = key_with(&gw, json!({})).await;
    let other = key_with(&gw, json!({})).await;
    let mut total = 0.0;
    let mut call_ids = Vec::new();

    for (model, cost) in [
        ("gpt-test", GPT_COST),
        ("cheap", CHEAP_COST),
        ("canned", CANNED_COST),
    ] {
        let r = ok_chat(&gw, &key, model).await;
        total += cost;
        assert_close(header_f64(&r, "x-litellm-response-cost"), cost, model);
        assert_close(header_f64(&r, "x-litellm-key-spend"), total, model);
        call_ids.push(r.header("x-litellm-call-id").expect("call id").to_owned());
    }

    // Streams carry their cost in the final usage chunk.
    for (model, cost) in [("gpt-test", GPT_COST), ("canned", CANNED_COST)] {
        let mut body = chat_body(model);
        body["stream"] = json!(true);
        body["stream_options"] = json!({"include_usage": true});
        let r = gw.post("/v1/chat/completions", Some(&key), &body).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let usage = sse_events(&r.text)
            .iter()
            .filter(|e| *e != "[DONE]")
            .filter_map(|e| serde_json::from_str::<Value>(e).ok())
            .find(|e| e["usage"].is_object())
            .unwrap_or_else(|| panic!("no usage chunk: {}", r.text))["usage"]
            .clone();
        assert_close(
            usage["cost"].as_f64().unwrap_or(f64::NAN),
            cost,
            &format!("stream usage.cost of {model}: {usage}"),
        );
        total += cost;
    }
    let r = ok_chat(&gw, &key, "gpt-test").await;
    total += GPT_COST;
    assert_close(
        header_f64(&r, "x-litellm-key-spend"),
        total,
        "the key spend includes the streams",
    );

    let r = ok_chat(&gw, &other, "gpt-test").await;
    assert_close(
        header_f64(&r, "x-litellm-key-spend"),
        GPT_COST,
        "another key",
    );
    let r = ok_chat(&gw, MASTER, "cheap").await;
    assert_close(
        header_f64(&r, "x-litellm-response-cost"),
        CHEAP_COST,
        "master",
    );

    flush(&gw).await;
    assert_close(
        key_info(&gw, &key).await["spend"].as_f64().unwrap(),
        total,
        "/key/info spend",
    );
    let logs = gw
        .get(&format!("/spend/logs?api_key={key}"), Some(MASTER))
        .await;
    assert_eq!(logs.status, 200, "{}", logs.text);
    let rows = logs.json().as_array().expect("a list of rows").clone();
    assert_eq!(rows.len(), 6, "{}", logs.text);
    let hash = sha256_hex(&key);
    assert!(
        rows.iter().all(|r| r["api_key"] == hash.as_str()),
        "{}",
        logs.text
    );
    assert!(
        rows.iter().all(|r| r["status"] == "success"),
        "{}",
        logs.text
    );
    let logged: f64 = rows.iter().map(|r| r["spend"].as_f64().unwrap()).sum();
    assert_close(logged, total, "spend-log rows");
    assert!(!logs.text.contains(&key), "{}", logs.text);

    let one = gw
        .get(
            &format!("/spend/logs?request_id={}", call_ids[0]),
            Some(MASTER),
        )
        .await
        .json();
    let one = one.as_array().expect("a list");
    assert_eq!(one.len(), 1, "{one:?}");
    assert_eq!(one[0]["model_group"], "gpt-test");
    assert_eq!(one[0]["prompt_tokens"], 7);
    assert_eq!(one[0]["completion_tokens"], 3);
    assert_eq!(one[0]["total_tokens"], 10);
    assert_close(one[0]["spend"].as_f64().unwrap(), GPT_COST, "one row");

    // The stored totals agree with the stored rows.
    let stored = stored_keys(db);
    let stored_spend = |token: &str| {
        stored
            .iter()
            .find(|k| k.token == token)
            .unwrap_or_else(|| panic!("no row for {token}"))
            .spend
    };
    assert_close(stored_spend(&hash), total, "llmgate_keys.spend");
    assert_close(
        stored_spend(&sha256_hex(&other)),
        GPT_COST,
        "the other key's row",
    );
    let rows = stored_logs(db);
    let of = |token: &str| -> f64 {
        rows.iter()
            .filter(|r| r.api_key == token)
            .map(|r| r.spend)
            .sum()
    };
    assert_close(of(&hash), total, "llmgate_spend_logs for the key");
    assert_close(
        of(&sha256_hex(&other)),
        GPT_COST,
        "llmgate_spend_logs for the other",
    );
    assert_eq!(rows.len(), 8, "one row per request");

    let global = gw.get("/global/spend", Some(MASTER)).await;
    assert_eq!(global.status, 200, "{}", global.text);
    assert_close(
        global.json()["spend"].as_f64().unwrap(),
        total + GPT_COST + CHEAP_COST,
        "/global/spend",
    );
}

#[actix_rt::test]
async fn costs_are_charged_to_keys_and_agree_with_the_spend_logs_on_sqlite_and_postgres() {
    for db in both() {
        costs_and_spend(&db).await;
    }
}

async fn regenerate_keeps_unwritten_spend(db: &TestDb) {
    // A long batch interval: the spend is still buffered when the key is regenerated.
    let Fixture { gw, .. } = fixture(Some(db), ", proxy_batch_write_at: 3600", "").await;
    let key = key_with(&gw, json!({"max_budget": 0.02})).await;
    ok_chat(&gw, &key, "gpt-test").await;
    ok_chat(&gw, &key, "gpt-test").await;
    let fresh = post_master(&gw, "/key/regenerate", json!({"key": key})).await;
    let new_key = fresh["key"].as_str().unwrap().to_owned();
    assert_refused(
        &chat(&gw, &new_key, "gpt-test").await,
        400,
        "budget_exceeded",
        "the regenerated key is over the budget the old one spent",
    );
    flush(&gw).await;
    assert_close(
        key_info(&gw, &new_key).await["spend"].as_f64().unwrap(),
        2.0 * GPT_COST,
        "spend after the flush",
    );
}

#[actix_rt::test]
async fn a_regenerated_key_keeps_the_spend_not_yet_written_on_sqlite_and_postgres() {
    for db in both() {
        regenerate_keeps_unwritten_spend(&db).await;
    }
}

async fn regenerate_keeps_in_flight_spend(db: &TestDb) {
    let Fixture { gw, slow, .. } = fixture(Some(db), ", proxy_batch_write_at: 3600", "").await;
    let key = key_with(&gw, json!({})).await;
    let regenerate = async {
        // Once the slow request is at the upstream, the key changes under it.
        let started = eventually(Duration::from_secs(5), async || slow.call_count() == 1).await;
        assert!(started, "the slow request never reached the upstream");
        post_master(&gw, "/key/regenerate", json!({"key": key})).await
    };
    let (reply, fresh) = futures_util::future::join(chat(&gw, &key, "slow"), regenerate).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_close(
        header_f64(&reply, "x-litellm-response-cost"),
        GPT_COST,
        "slow cost",
    );
    let new_key = fresh["key"].as_str().unwrap().to_owned();
    let r = ok_chat(&gw, &new_key, "cheap").await;
    assert_close(
        header_f64(&r, "x-litellm-key-spend"),
        GPT_COST + CHEAP_COST,
        "the live spend keeps the request that was in flight during the regeneration",
    );
    flush(&gw).await;
    assert_close(
        stored_keys(db)
            .iter()
            .find(|k| k.token == sha256_hex(&new_key))
            .expect("the regenerated key's row")
            .spend,
        GPT_COST + CHEAP_COST,
        "the stored spend keeps the request that was in flight during the regeneration",
    );
}

#[actix_rt::test]
async fn a_request_in_flight_while_its_key_is_regenerated_is_still_charged_on_sqlite_and_postgres()
{
    for db in both() {
        regenerate_keeps_in_flight_spend(&db).await;
    }
}

// ---- 6. Changes take effect at once.

async fn changes_take_effect_at_once(db: &TestDb) {
    let Fixture { gw, .. } = fixture(Some(db), "", "").await;
    let key = key_with(&gw, json!({})).await;
    // Used once, so it is cached.
    ok_chat(&gw, &key, "gpt-test").await;

    let update = |body: Value| post_master(&gw, "/key/update", body);
    update(json!({"key": key, "max_budget": 0.001})).await;
    assert_refused(
        &chat(&gw, &key, "gpt-test").await,
        400,
        "budget_exceeded",
        "budget",
    );
    update(json!({"key": key, "max_budget": null})).await;
    ok_chat(&gw, &key, "gpt-test").await;

    update(json!({"key": key, "rpm_limit": 2})).await;
    assert_refused(
        &chat(&gw, &key, "gpt-test").await,
        429,
        "rate_limit_error",
        "rpm",
    );
    update(json!({"key": key, "rpm_limit": null})).await;
    ok_chat(&gw, &key, "gpt-test").await;

    update(json!({"key": key, "models": ["cheap"]})).await;
    assert_refused(
        &chat(&gw, &key, "gpt-test").await,
        403,
        "key_model_access_denied",
        "models",
    );
    ok_chat(&gw, &key, "cheap").await;

    update(json!({"key": key, "duration": "1s"})).await;
    let mut last = None;
    let expired = eventually(Duration::from_secs(5), async || {
        let r = chat(&gw, &key, "cheap").await;
        let done = r.status != 200;
        last = Some(r);
        done
    })
    .await;
    assert!(expired, "an updated duration never expired the key");
    assert_refused(&last.unwrap(), 400, "expired_key", "updated duration");
    update(json!({"key": key, "duration": null})).await;
    ok_chat(&gw, &key, "cheap").await;

    post_master(&gw, "/key/block", json!({"key": key})).await;
    assert_refused(&chat(&gw, &key, "cheap").await, 401, "auth_error", "block");
    assert_refused(
        &gw.get("/v1/models", Some(&key)).await,
        401,
        "auth_error",
        "a blocked key lists models",
    );
    post_master(&gw, "/key/unblock", json!({"key": key})).await;
    ok_chat(&gw, &key, "cheap").await;

    post_master(&gw, "/key/delete", json!({"keys": [key]})).await;
    assert_refused(&chat(&gw, &key, "cheap").await, 401, "auth_error", "delete");
    assert_refused(
        &gw.get("/v1/models", Some(&key)).await,
        401,
        "auth_error",
        "a deleted key lists models",
    );
}

#[actix_rt::test]
async fn a_key_update_block_or_delete_takes_effect_at_once_on_sqlite_and_postgres() {
    for db in both() {
        changes_take_effect_at_once(&db).await;
    }
}
