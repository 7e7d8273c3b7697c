//! A mock upstream for images, audio, moderations and rerank, answering from the recorded
//! fixtures in tests/fixtures (OpenAI's, Cohere's and Jina AI's wire formats): speech as audio
//! chunks sent apart, transcripts as JSON or text by `response_format`, and `fail-<status>`
//! models failing. It records every call with its raw body (a form, for uploads). With it, what
//! the media tests share: their config, keys, and the check that a reply was charged.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::http::header::HeaderMap;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{json, Value};

use super::wire::fixture;

/// The audio chunks a speech reply streams, in order.
pub const SPEECH_CHUNKS: [&[u8]; 3] = [b"ID3\x04audio-one|", b"audio-two|", b"audio-three"];

/// One call the mock received.
#[derive(Debug, Clone)]
pub struct Call {
    /// The path.
    pub path: String,
    /// The query string.
    pub query: String,
    /// Lowercase header names to values.
    pub headers: HashMap<String, String>,
    /// The raw body.
    pub body: Bytes,
}

impl Call {
    /// The body as JSON (`Null` when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// A multipart body's parts: name, file name, bytes.
    pub async fn form(&self) -> Vec<(String, Option<String>, Bytes)> {
        let mut headers = HeaderMap::new();
        headers.insert(
            actix_web::http::header::CONTENT_TYPE,
            self.headers["content-type"].parse().unwrap(),
        );
        let body = self.body.clone();
        let mut parts = actix_multipart::Multipart::new(
            &headers,
            futures_util::stream::once(async { Ok(body) }),
        );
        let mut out = Vec::new();
        while let Some(part) = parts.next().await {
            let mut part = part.unwrap();
            let name = part.name().unwrap_or_default().to_owned();
            let file = part
                .content_disposition()
                .and_then(|d| d.get_filename())
                .map(str::to_owned);
            let data = part.bytes(64 << 20).await.unwrap().unwrap();
            out.push((name, file, data));
        }
        out
    }
}

#[derive(Default)]
struct Shared {
    calls: Mutex<Vec<Call>>,
    speech_gap: Mutex<Duration>,
    speech_chunks_sent: AtomicUsize,
}

/// The running mock.
pub struct MediaUpstream {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    shared: Arc<Shared>,
}

impl MediaUpstream {
    /// Starts the mock on a random port.
    pub fn start() -> Self {
        let shared = Arc::new(Shared::default());
        let base = super::serve(shared.clone(), |c| {
            c.app_data(web::PayloadConfig::new(64 << 20))
                .default_service(web::to(answer));
        });
        Self { base, shared }
    }

    /// `base` + `/v1`.
    pub fn v1(&self) -> String {
        format!("{}/v1", self.base)
    }

    /// Speech chunks are sent this far apart.
    pub fn set_speech_gap(&self, gap: Duration) {
        *self.shared.speech_gap.lock().unwrap() = gap;
    }

    /// Speech chunks written so far.
    pub fn speech_chunks_sent(&self) -> usize {
        self.shared.speech_chunks_sent.load(Ordering::SeqCst)
    }

    /// The calls received so far.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.calls.lock().unwrap().clone()
    }

    /// The last call.
    pub fn last(&self) -> Call {
        self.calls().pop().expect("the mock received no call")
    }
}

/// A fixture's `reply`.
pub fn reply_of(path: &str) -> Value {
    let case: Value = serde_json::from_str(&fixture(path)).unwrap();
    case["reply"].clone()
}

async fn answer(req: HttpRequest, body: Bytes, shared: web::Data<Shared>) -> HttpResponse {
    let call = Call {
        path: req.path().to_owned(),
        query: req.query_string().to_owned(),
        headers: req
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
            .collect(),
        body,
    };
    shared.calls.lock().unwrap().push(call.clone());
    let form = if call
        .headers
        .get("content-type")
        .is_some_and(|c| c.starts_with("multipart/"))
    {
        call.form().await
    } else {
        Vec::new()
    };
    let field = |name: &str| {
        form.iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, _, d)| String::from_utf8_lossy(d).into_owned())
    };
    let model = field("model")
        .or_else(|| call.json()["model"].as_str().map(str::to_owned))
        .unwrap_or_default();
    if let Some(status) = model
        .strip_prefix("fail-")
        .and_then(|s| s.parse::<u16>().ok())
    {
        return HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
            .content_type("application/json")
            .body(json!({"error": {"message": format!("upstream failed with {status}"), "type": "server_error", "param": null, "code": null}}).to_string());
    }
    let path = call.path.as_str();
    let ok = |v: Value| {
        HttpResponse::Ok()
            .insert_header(("x-mock-media", "yes"))
            .json(v)
    };
    if path.ends_with("/images/generations") {
        let name = if model.contains("gpt-image") {
            "openai/images_gpt_image_1.json"
        } else {
            "openai/images_dall_e_3.json"
        };
        let mut reply = reply_of(name);
        let n = call.json()["n"].as_u64().unwrap_or(1) as usize;
        let first = reply["data"][0].clone();
        reply["data"] = Value::Array(vec![first; n]);
        return ok(reply);
    }
    if path.ends_with("/audio/speech") {
        let gap = *shared.speech_gap.lock().unwrap();
        let shared = shared.into_inner();
        let chunks = futures_util::stream::iter(SPEECH_CHUNKS).then(move |chunk| {
            let shared = shared.clone();
            async move {
                if !gap.is_zero() {
                    actix_rt::time::sleep(gap).await;
                }
                shared.speech_chunks_sent.fetch_add(1, Ordering::SeqCst);
                Ok::<_, actix_web::Error>(Bytes::from_static(chunk))
            }
        });
        return HttpResponse::Ok()
            .content_type("audio/mpeg")
            .insert_header(("x-mock-media", "yes"))
            .streaming(chunks);
    }
    if path.ends_with("/audio/transcriptions") || path.ends_with("/audio/translations") {
        let transcript = reply_of("openai/transcription_verbose.json");
        let text = transcript["text"].as_str().unwrap_or_default().to_owned();
        return match field("response_format").as_deref() {
            Some("verbose_json") => ok(transcript),
            Some("text") => HttpResponse::Ok()
                .content_type("text/plain; charset=utf-8")
                .body(format!("{text}\n")),
            _ => ok(json!({"text": text})),
        };
    }
    if path.ends_with("/moderations") {
        return ok(reply_of("openai/moderation.json"));
    }
    if path.ends_with("/v1/rerank") && !path.starts_with("/compat") {
        return ok(reply_of("cohere/rerank_v1.json"));
    }
    if path.ends_with("/v2/rerank") {
        return ok(reply_of("cohere/rerank_v2.json"));
    }
    if path.ends_with("/rerank") {
        return ok(reply_of("jina_ai/rerank.json"));
    }
    HttpResponse::NotFound().body(format!("no route {path}"))
}

/// The master key of the media tests' gateways.
pub const MASTER: &str = "sk-master-media-0001";

/// A config with `models` (YAML `model_list` entries), the master key and `db_url`, and
/// `extra` top-level YAML after it.
pub fn media_config(models: &str, db_url: &str, extra: &str) -> String {
    format!(
        "model_list:\n{models}general_settings:\n  master_key: {MASTER}\n  database_url: '{db_url}'\n  proxy_batch_write_at: 60\n{extra}"
    )
}

/// A new virtual key with `body`'s settings (never expiring).
pub async fn new_key(gw: &super::Gateway, mut body: Value) -> String {
    body["duration"] = Value::Null;
    let r = gw.post("/key/generate", Some(MASTER), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()["key"].as_str().unwrap().to_owned()
}

/// What a reply was charged: its `x-litellm-response-cost`, its spend-log row (written first)
/// and the key's spend as `/key/info` tells it; each check fails the test when they disagree
/// with the cost header or with `expected` (when given).
pub async fn assert_charged(
    gw: &super::Gateway,
    key: &str,
    reply: &super::gateway::Reply,
    expected: Option<f64>,
) -> Value {
    let cost: f64 = reply
        .header("x-litellm-response-cost")
        .expect("a cost header")
        .parse()
        .unwrap();
    if let Some(e) = expected {
        assert!((cost - e).abs() < 1e-9, "cost {cost}, expected {e}");
    }
    let key_spend: f64 = reply
        .header("x-litellm-key-spend")
        .expect("a key-spend header")
        .parse()
        .unwrap();
    gw.state
        .spend()
        .send(llmgate::actors::Flush)
        .await
        .unwrap()
        .unwrap();
    let id = reply.header("x-litellm-call-id").expect("a call id");
    let logs = gw
        .get(&format!("/spend/logs?request_id={id}"), Some(MASTER))
        .await;
    assert_eq!(logs.status, 200, "{}", logs.text);
    let rows = logs.json();
    assert_eq!(rows.as_array().map(Vec::len), Some(1), "{rows}");
    let row = rows[0].clone();
    assert_eq!(row["status"], "success", "{row}");
    assert!(
        (row["spend"].as_f64().unwrap() - cost).abs() < 1e-12,
        "{row} vs {cost}"
    );
    let info = gw.get(&format!("/key/info?key={key}"), Some(MASTER)).await;
    let spend = info.json()["info"]["spend"].as_f64().unwrap();
    assert!(
        (spend - key_spend).abs() < 1e-12,
        "key spend {spend}, header {key_spend}"
    );
    row
}
