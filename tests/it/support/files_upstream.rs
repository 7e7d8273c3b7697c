//! A real HTTP server on a random port speaking OpenAI's (and Azure's) files and batches APIs:
//! it keeps uploaded files and batches in memory, pages lists as OpenAI does, completes a
//! batch on demand, records every call with its raw body, and fails on demand.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use bytes::Bytes;
use llmgate::files::multipart::Form;
use serde_json::{json, Value};

/// One request the mock received.
#[derive(Debug, Clone)]
pub struct Call {
    /// `GET`, `POST`, `DELETE`.
    pub method: String,
    /// The path.
    pub path: String,
    /// The query string.
    pub query: String,
    /// Lowercase header names to values.
    pub headers: HashMap<String, String>,
    /// The raw body.
    pub body: Bytes,
}

#[derive(Debug, Clone)]
struct StoredFile {
    object: Value,
    bytes: Bytes,
}

#[derive(Default)]
struct Shared {
    prefix: String,
    next: AtomicU64,
    files: Mutex<Vec<StoredFile>>,
    batches: Mutex<Vec<Value>>,
    calls: Mutex<Vec<Call>>,
    failing: Mutex<Option<(u16, String)>>,
}

/// The running mock; a clone controls the same server.
#[derive(Clone)]
pub struct FilesUpstream {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    shared: Arc<Shared>,
    server: actix_web::dev::ServerHandle,
}

impl FilesUpstream {
    /// Starts the mock on a random port; its ids carry a prefix of their own, so two mocks
    /// never hand out the same id.
    pub async fn start() -> Self {
        let shared = Arc::new(Shared {
            prefix: format!("{:08x}", fastrand::u32(..)),
            ..Shared::default()
        });
        let data = web::Data::from(shared.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(256 * 1024 * 1024))
                .default_service(web::to(answer))
        })
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", 0))
        .unwrap();
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        actix_rt::spawn(server);
        Self {
            base: format!("http://127.0.0.1:{port}"),
            shared,
            server: handle,
        }
    }

    /// `base` + `/v1`, OpenAI's `api_base`.
    pub fn v1(&self) -> String {
        format!("{}/v1", self.base)
    }

    /// Requests received so far.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.calls.lock().unwrap().clone()
    }

    /// Requests received whose path ends with `suffix`.
    pub fn calls_to(&self, method: &str, suffix: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.method == method && c.path.ends_with(suffix))
            .collect()
    }

    /// The bytes of a stored file.
    pub fn file_bytes(&self, id: &str) -> Option<Bytes> {
        let files = self.shared.files.lock().unwrap();
        files
            .iter()
            .find(|f| f.object["id"] == id)
            .map(|f| f.bytes.clone())
    }

    /// Whether the mock holds a file with this id.
    pub fn holds_file(&self, id: &str) -> bool {
        self.file_bytes(id).is_some()
    }

    /// Whether the mock holds a batch with this id.
    pub fn holds_batch(&self, id: &str) -> bool {
        self.shared
            .batches
            .lock()
            .unwrap()
            .iter()
            .any(|b| b["id"] == id)
    }

    /// Completes batch `id` with an output file holding `output` (JSONL); the output file's id.
    pub fn complete(&self, id: &str, output: &str) -> String {
        let file = self.store(
            "batch_output",
            "batch_output.jsonl",
            Bytes::from(output.to_owned()),
        );
        let mut batches = self.shared.batches.lock().unwrap();
        let batch = batches.iter_mut().find(|b| b["id"] == id).expect("a batch");
        batch["status"] = json!("completed");
        batch["output_file_id"] = json!(file);
        batch["completed_at"] = json!(1_700_000_100);
        file
    }

    /// Answers every request with `status` and `body` until `recover` is called.
    pub fn fail(&self, status: u16, body: &str) {
        *self.shared.failing.lock().unwrap() = Some((status, body.to_owned()));
    }

    /// Answers normally again.
    pub fn recover(&self) {
        *self.shared.failing.lock().unwrap() = None;
    }

    /// Stops the server.
    pub async fn stop(&self) {
        self.server.stop(false).await;
    }

    fn store(&self, purpose: &str, filename: &str, bytes: Bytes) -> String {
        store(&self.shared, purpose, filename, bytes)
    }
}

fn store(shared: &Shared, purpose: &str, filename: &str, bytes: Bytes) -> String {
    let n = shared.next.fetch_add(1, Ordering::SeqCst);
    let id = format!("file-{}{n:04}", shared.prefix);
    let object = json!({"id": id, "object": "file", "bytes": bytes.len(), "created_at": 1_700_000_000 + n,
        "filename": filename, "purpose": purpose, "status": "processed", "expires_at": null, "status_details": null});
    shared
        .files
        .lock()
        .unwrap()
        .push(StoredFile { object, bytes });
    id
}

fn error(status: u16, message: &str) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
        .insert_header(("x-mock-files", "error"))
        .json(json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": null}}))
}

fn ok(value: Value) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("x-mock-files", "yes"))
        .json(value)
}

/// A page of `items` (newest first unless `order=asc`) after `after`, at most `limit`.
fn page(items: Vec<Value>, query: &HashMap<String, String>, default_limit: usize) -> Value {
    let mut items = items;
    if query.get("order").map(String::as_str) != Some("asc") {
        items.reverse();
    }
    if let Some(after) = query.get("after") {
        if let Some(at) = items.iter().position(|i| i["id"] == after.as_str()) {
            items.drain(..=at);
        }
    }
    let limit = query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(default_limit);
    let has_more = items.len() > limit;
    items.truncate(limit);
    json!({"object": "list", "first_id": items.first().map(|i| i["id"].clone()),
        "last_id": items.last().map(|i| i["id"].clone()), "has_more": has_more, "data": items})
}

async fn answer(req: HttpRequest, body: Bytes, shared: web::Data<Shared>) -> HttpResponse {
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                v.to_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let method = req.method().as_str().to_owned();
    shared.calls.lock().unwrap().push(Call {
        method: method.clone(),
        path: req.path().to_owned(),
        query: req.query_string().to_owned(),
        headers,
        body: body.clone(),
    });
    if let Some((status, body)) = shared.failing.lock().unwrap().clone() {
        return HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
            .content_type("application/json")
            .body(body);
    }
    let query: HashMap<String, String> =
        web::Query::<HashMap<String, String>>::from_query(req.query_string())
            .map(|q| q.into_inner())
            .unwrap_or_default();
    let path = req.path();
    let Some(at) = path.find("/files").or_else(|| path.find("/batches")) else {
        return error(404, &format!("no route {path}"));
    };
    let segments: Vec<&str> = path[at + 1..].split('/').collect();
    match (method.as_str(), segments.as_slice()) {
        ("POST", ["files"]) => {
            let content_type = req
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let Ok(form) = Form::parse(content_type, body) else {
                return error(400, "expected a multipart form");
            };
            let (Some(purpose), Some(file)) = (form.text("purpose"), form.part_named("file"))
            else {
                return error(400, "'file' and 'purpose' are required");
            };
            let filename = file.filename.clone().unwrap_or_else(|| "upload".into());
            let id = store(&shared, &purpose, &filename, form.data(file));
            let files = shared.files.lock().unwrap();
            ok(files
                .iter()
                .find(|f| f.object["id"] == id.as_str())
                .unwrap()
                .object
                .clone())
        }
        ("GET", ["files"]) => {
            let files = shared.files.lock().unwrap();
            let items = files
                .iter()
                .map(|f| f.object.clone())
                .filter(|o| {
                    query
                        .get("purpose")
                        .is_none_or(|p| o["purpose"] == p.as_str())
                })
                .collect();
            ok(page(items, &query, 10_000))
        }
        (m, ["files", id] | ["files", id, "content"]) => {
            let mut files = shared.files.lock().unwrap();
            let Some(at) = files.iter().position(|f| f.object["id"] == *id) else {
                return error(404, &format!("No such File object: {id}"));
            };
            match (m, segments.len()) {
                ("GET", 2) => ok(files[at].object.clone()),
                ("GET", 3) => HttpResponse::Ok()
                    .content_type("application/octet-stream")
                    .insert_header(("x-mock-files", "content"))
                    .body(files[at].bytes.clone()),
                ("DELETE", 2) => {
                    files.remove(at);
                    ok(json!({"id": id, "object": "file", "deleted": true}))
                }
                _ => error(405, "method not allowed"),
            }
        }
        ("POST", ["batches"]) => {
            let Ok(request) = serde_json::from_slice::<Value>(&body) else {
                return error(400, "expected JSON");
            };
            let input = request["input_file_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if !shared
                .files
                .lock()
                .unwrap()
                .iter()
                .any(|f| f.object["id"] == input.as_str())
            {
                return error(400, &format!("input file {input} not found"));
            }
            let n = shared.next.fetch_add(1, Ordering::SeqCst);
            let batch = json!({"id": format!("batch_{}{n:04}", shared.prefix), "object": "batch",
                "endpoint": request["endpoint"], "errors": null, "input_file_id": input,
                "completion_window": request["completion_window"], "status": "validating",
                "output_file_id": null, "error_file_id": null, "created_at": 1_700_000_000 + n,
                "in_progress_at": null, "expires_at": null, "finalizing_at": null, "completed_at": null,
                "failed_at": null, "expired_at": null, "cancelling_at": null, "cancelled_at": null,
                "request_counts": {"total": 0, "completed": 0, "failed": 0},
                "metadata": request.get("metadata").cloned().unwrap_or(Value::Null)});
            shared.batches.lock().unwrap().push(batch.clone());
            ok(batch)
        }
        ("GET", ["batches"]) => {
            let items = shared.batches.lock().unwrap().clone();
            ok(page(items, &query, 20))
        }
        (m, ["batches", id] | ["batches", id, "cancel"]) => {
            let mut batches = shared.batches.lock().unwrap();
            let Some(batch) = batches.iter_mut().find(|b| b["id"] == *id) else {
                return error(404, &format!("No such Batch object: {id}"));
            };
            match (m, segments.len()) {
                ("GET", 2) => ok(batch.clone()),
                ("POST", 3) => {
                    batch["status"] = json!("cancelling");
                    batch["cancelling_at"] = json!(1_700_000_050);
                    ok(batch.clone())
                }
                _ => error(405, "method not allowed"),
            }
        }
        _ => error(404, &format!("no route {method} {path}")),
    }
}
