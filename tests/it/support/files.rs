//! Calling the gateway's files and batches routes: multipart uploads, any method, raw bytes,
//! virtual keys, and the spend-log rows they leave.

use bytes::Bytes;
use diesel::sql_types::{BigInt, Double, Text};
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl, SqliteConnection};
use llmgate::db::DbTarget;
use serde_json::{json, Value};

use super::gateway::{Gateway, Reply};

/// The master key of the files and batches tests.
pub const MASTER: &str = "sk-master-files-0001";

/// A `multipart/form-data` body: text `fields`, then the file part (`name="file"`).
pub fn form(fields: &[(&str, &str)], file: Option<(&str, &[u8])>) -> (String, Vec<u8>) {
    let boundary = format!("llmgate-test-{:016x}", fastrand::u64(..));
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    }
    if let Some((filename, bytes)) = file {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n")
                .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// A batch input file's bytes: two chat requests, with a CR LF and a byte that is not UTF-8
/// on the way, so a re-encoded upload would show.
pub fn input_file() -> Vec<u8> {
    let mut bytes = br#"{"custom_id":"r1","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi\r\n"}]}}"#.to_vec();
    bytes.extend_from_slice(b"\n");
    bytes.extend_from_slice(br#"{"custom_id":"r2","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"caf"#);
    bytes.push(0xe9);
    bytes.extend_from_slice(b"\"}]}}\n");
    bytes
}

async fn read(
    mut res: awc::ClientResponse<
        impl futures_util::Stream<Item = Result<Bytes, awc::error::PayloadError>> + Unpin,
    >,
) -> (Reply, Bytes) {
    let body = res
        .body()
        .limit(64 * 1024 * 1024)
        .await
        .expect("body reads");
    let reply = Reply {
        status: res.status().as_u16(),
        headers: res.headers().clone(),
        text: String::from_utf8_lossy(&body).into_owned(),
    };
    (reply, body)
}

/// Uploads `body` (of `content_type`) to `path` with the bearer `key`.
pub async fn upload(
    gw: &Gateway,
    path: &str,
    key: &str,
    content_type: &str,
    body: Vec<u8>,
) -> Reply {
    let res = gw
        .client
        .post(format!("{}{path}", gw.base))
        .bearer_auth(key)
        .insert_header(("content-type", content_type))
        .send_body(body)
        .await
        .expect("gateway answers");
    read(res).await.0
}

/// Uploads `bytes` as `name` for `purpose`, with extra form `fields`, to `/v1/files`.
pub async fn upload_file(gw: &Gateway, key: &str, bytes: &[u8], fields: &[(&str, &str)]) -> Reply {
    let mut all = vec![("purpose", "batch")];
    all.extend_from_slice(fields);
    let (content_type, body) = form(&all, Some(("input.jsonl", bytes)));
    upload(gw, "/v1/files", key, &content_type, body).await
}

/// Calls `path` with `method` and the bearer `key` (a JSON body when given); the reply and its
/// raw bytes.
pub async fn call(
    gw: &Gateway,
    method: &str,
    path: &str,
    key: &str,
    body: Option<&Value>,
) -> (Reply, Bytes) {
    let method = awc::http::Method::from_bytes(method.as_bytes()).unwrap();
    let req = gw
        .client
        .request(method, format!("{}{path}", gw.base))
        .bearer_auth(key);
    let res = match body {
        Some(b) => req.send_json(b).await,
        None => req.send().await,
    }
    .expect("gateway answers");
    read(res).await
}

/// A new virtual key with these `/key/generate` fields.
pub async fn new_key(gw: &Gateway, fields: Value) -> String {
    let mut body = json!({"duration": null});
    for (k, v) in fields.as_object().unwrap() {
        body[k] = v.clone();
    }
    let r = gw.post("/key/generate", Some(MASTER), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()["key"].as_str().unwrap().to_owned()
}

/// One spend-log row, as the tests read it.
#[derive(QueryableByName, Debug, Clone, PartialEq)]
pub struct LogRow {
    /// The call id.
    #[diesel(sql_type = Text)]
    pub request_id: String,
    /// The upstream model.
    #[diesel(sql_type = Text)]
    pub model: String,
    /// The deployment's id.
    #[diesel(sql_type = Text)]
    pub model_id: String,
    /// `success` or `failure`.
    #[diesel(sql_type = Text)]
    pub status: String,
    /// USD.
    #[diesel(sql_type = Double)]
    pub spend: f64,
    /// Prompt tokens.
    #[diesel(sql_type = BigInt)]
    pub prompt_tokens: i64,
    /// Completion tokens.
    #[diesel(sql_type = BigInt)]
    pub completion_tokens: i64,
}

/// The spend-log rows of the key whose token is `token`, oldest first.
pub fn spend_rows(target: &DbTarget, token: &str) -> Vec<LogRow> {
    let q = format!(
        "SELECT request_id, model, model_id, status, spend, prompt_tokens, completion_tokens \
         FROM llmgate_spend_logs WHERE api_key = '{token}' ORDER BY start_time, request_id"
    );
    match target {
        DbTarget::Sqlite(path) => diesel::sql_query(q)
            .load(&mut SqliteConnection::establish(path).unwrap())
            .unwrap(),
        DbTarget::Postgres(url) => diesel::sql_query(q)
            .load(&mut PgConnection::establish(url).unwrap())
            .unwrap(),
    }
}

/// The spend recorded on the key whose token is `token`.
pub fn key_spend(target: &DbTarget, token: &str) -> f64 {
    #[derive(QueryableByName)]
    struct Spend {
        #[diesel(sql_type = Double)]
        spend: f64,
    }
    let q = format!("SELECT spend FROM llmgate_keys WHERE token = '{token}'");
    let row: Spend = match target {
        DbTarget::Sqlite(path) => diesel::sql_query(q)
            .get_result(&mut SqliteConnection::establish(path).unwrap())
            .unwrap(),
        DbTarget::Postgres(url) => diesel::sql_query(q)
            .get_result(&mut PgConnection::establish(url).unwrap())
            .unwrap(),
    };
    row.spend
}
