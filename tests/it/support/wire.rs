//! A mock upstream that speaks a provider's own wire format from recorded fixtures: it answers
//! every POST with the scripted reply (a JSON body, or an SSE or NDJSON stream when the request
//! asks to stream: `"stream": true` in the body, or `alt=sse` in the query as Gemini asks) and
//! records each call.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;

use super::upstream::Recorded;

/// What the mock answers.
#[derive(Debug, Clone)]
pub struct Script {
    /// Status of a non-streamed reply.
    pub status: u16,
    /// The body of a non-streamed reply.
    pub body: String,
    /// The stream sent when the request has `"stream": true`: SSE text, one event per write
    /// (or NDJSON, one line per write, from a mock started with [`WireMock::start_ndjson`]).
    pub sse: String,
}

#[derive(Default)]
struct Shared {
    script: Mutex<Option<Script>>,
    calls: Mutex<Vec<Recorded>>,
    /// Streams are newline-delimited JSON (Ollama's) rather than SSE.
    ndjson: AtomicBool,
}

/// The running mock.
pub struct WireMock {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    shared: Arc<Shared>,
}

/// A fixture file's text (`tests/fixtures/<path>`).
pub fn fixture(path: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

impl WireMock {
    /// Starts the mock on a random port, answering with `script`.
    pub async fn start(script: Script) -> Self {
        let shared = Arc::new(Shared::default());
        *shared.script.lock().unwrap() = Some(script);
        let base = super::serve(shared.clone(), |c| {
            c.default_service(web::to(answer));
        });
        Self { base, shared }
    }

    /// Starts a mock whose streams are newline-delimited JSON: `script.sse` is sent one line
    /// per write, as `application/x-ndjson`.
    pub async fn start_ndjson(script: Script) -> Self {
        let mock = Self::start(script).await;
        mock.shared.ndjson.store(true, Ordering::Relaxed);
        mock
    }

    /// Replaces the script.
    pub fn set(&self, script: Script) {
        *self.shared.script.lock().unwrap() = Some(script);
    }

    /// The calls received so far.
    pub fn calls(&self) -> Vec<Recorded> {
        self.shared.calls.lock().unwrap().clone()
    }
}

async fn answer(req: HttpRequest, body: Bytes, shared: web::Data<Shared>) -> HttpResponse {
    let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    shared.calls.lock().unwrap().push(Recorded {
        path: req.path().to_owned(),
        query: req.query_string().to_owned(),
        headers,
        body: parsed.clone(),
    });
    let script = shared.script.lock().unwrap().clone().expect("no script");
    let streamed = parsed["stream"] == true || req.query_string().contains("alt=sse");
    if streamed && script.status == 200 {
        let (separator, content_type) = if shared.ndjson.load(Ordering::Relaxed) {
            ("\n", "application/x-ndjson")
        } else {
            ("\n\n", "text/event-stream")
        };
        let events: Vec<Result<Bytes, actix_web::Error>> = script
            .sse
            .split_inclusive(separator)
            .map(|e| Ok(Bytes::from(e.to_owned())))
            .collect();
        return HttpResponse::Ok()
            .content_type(content_type)
            .streaming(futures_util::stream::iter(events));
    }
    HttpResponse::build(actix_web::http::StatusCode::from_u16(script.status).unwrap())
        .content_type("application/json")
        .body(script.body)
}
