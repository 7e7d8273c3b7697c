//! Users, teams, end users and tags: their APIs, the limits each holds requests to (the
//! tightest of all that apply), spend rolled up to each, roles on the management routes, and
//! the spend views, on SQLite and on the machine's PostgreSQL.

mod end_users;
mod roles;
mod shared;
mod tags;
mod teams;
mod users;
mod views;

use llmgate::actors::Flush;
use serde_json::{json, Value};

use crate::support::db::TestDb;
use crate::support::gateway::Reply;
use crate::support::{assert_error_body, chat_body, Gateway, MockUpstream};

pub const MASTER: &str = "sk-master-governance";

/// Prices of the `gpt-test` group, per token.
pub const IN: f64 = 0.001;
pub const OUT: f64 = 0.002;
/// The mock upstream's usage (7 prompt and 3 completion tokens) at those prices.
pub const COST: f64 = 7.0 * IN + 3.0 * OUT;

/// A gateway in front of a mock upstream with two priced groups, `gpt-test` and `other`.
pub struct Fixture {
    pub gw: Gateway,
    pub mock: MockUpstream,
}

/// Starts the fixture on `db` (an in-memory SQLite when `None`); `more` is appended to the
/// config (e.g. `litellm_settings:`).
pub async fn fixture(db: Option<&TestDb>, more: &str) -> Fixture {
    let mock = MockUpstream::start().await;
    let db_url = db.map_or(String::new(), |d| format!(", database_url: '{}'", d.url));
    let yaml = format!(
        "model_list:
  - model_name: gpt-test
    litellm_params: {{model: openai/gpt-test, api_base: '{mock}', input_cost_per_token: {IN}, output_cost_per_token: {OUT}}}
  - model_name: other
    litellm_params: {{model: openai/other, api_base: '{mock}', input_cost_per_token: {IN}, output_cost_per_token: {OUT}}}
general_settings: {{master_key: {MASTER}{db_url}}}
{more}
",
        mock = mock.v1(),
    );
    Fixture {
        gw: Gateway::start(&yaml).await,
        mock,
    }
}

/// POSTs as the master key and expects a 200; the body.
pub async fn admin_post(gw: &Gateway, path: &str, body: Value) -> Value {
    let r = gw.post(path, Some(MASTER), &body).await;
    assert_eq!(r.status, 200, "{path} {body}: {}", r.text);
    r.json()
}

/// GETs as the master key and expects a 200; the body.
pub async fn admin_get(gw: &Gateway, path: &str) -> Value {
    let r = gw.get(path, Some(MASTER)).await;
    assert_eq!(r.status, 200, "{path}: {}", r.text);
    r.json()
}

/// A new key with these settings (the plaintext).
pub async fn key_with(gw: &Gateway, body: Value) -> String {
    let made = admin_post(gw, "/key/generate", body).await;
    made["key"].as_str().expect("a key").to_owned()
}

/// A chat on `model` with `key`, with `extra` fields merged into the body.
pub async fn chat(gw: &Gateway, key: &str, model: &str, extra: Value) -> Reply {
    let mut body = chat_body(model);
    if let (Some(b), Value::Object(more)) = (body.as_object_mut(), extra) {
        b.extend(more);
    }
    gw.post("/v1/chat/completions", Some(key), &body).await
}

/// A chat that must succeed.
pub async fn ok_chat(gw: &Gateway, key: &str, model: &str, extra: Value) -> Reply {
    let r = chat(gw, key, model, extra).await;
    assert_eq!(r.status, 200, "{model}: {}", r.text);
    r
}

/// Asserts a refusal in the contract's shape; its message.
pub fn refused(r: &Reply, status: u16, kind: &str) -> String {
    assert_eq!(r.status, status, "{}", r.text);
    assert_error_body(&r.json(), status, kind)
}

/// Writes the spend batch.
pub async fn flush(gw: &Gateway) {
    gw.state
        .spend()
        .send(Flush)
        .await
        .expect("the spend actor runs")
        .expect("the flush is written");
}

/// `{"metadata": {"tags": tags}}`.
pub fn tagged(tags: &[&str]) -> Value {
    json!({"metadata": {"tags": tags}})
}

/// Asserts two amounts agree to within rounding.
pub fn assert_close(got: f64, want: f64, what: &str) {
    assert!(
        (got - want).abs() < 1e-9,
        "{what}: got {got}, expected {want}"
    );
}
