//! The gateway started in-process on a random port, from YAML, with a client to call it.

use std::time::Duration;

use actix_web::web;
use llmgate::actors::Inspect;
use llmgate::config::{CliOverrides, Settings, SpendJournal};
use llmgate::db::DbTarget;
use llmgate::routing::DeploymentSnapshot;
use llmgate::state::AppState;
use serde_json::Value;

/// A running gateway.
pub struct Gateway {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Its shared state.
    pub state: web::Data<AppState>,
    /// A client with a generous timeout.
    pub client: awc::Client,
    handle: actix_web::dev::ServerHandle,
}

/// A reply read whole.
pub struct Reply {
    /// The status.
    pub status: u16,
    /// The headers (lowercase names).
    pub headers: actix_web::http::header::HeaderMap,
    /// The body text.
    pub text: String,
}

impl Reply {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Gateway {
    /// Starts a gateway from config YAML with one worker.
    pub async fn start(yaml: &str) -> Self {
        let settings = Settings::from_yaml(yaml, &CliOverrides::default()).expect("config loads");
        Self::start_with(settings).await
    }

    /// Starts a gateway from settings.
    pub async fn start_with(mut settings: Settings) -> Self {
        // Unless a test names a database, each gateway gets its own in-memory SQLite.
        if settings.database == DbTarget::Sqlite("llmgate.db".into()) {
            settings.database = DbTarget::Sqlite(":memory:".into());
        }
        // And its own spend journal, so every test runs with answers waiting for it.
        if settings.spend_journal == SpendJournal::Default {
            settings.spend_journal =
                SpendJournal::At(super::binary::temp_dir("journal").join("spend.journal"));
        }
        let running = llmgate::server::start(settings, "127.0.0.1", 0, 1)
            .await
            .expect("starts");
        let handle = running.server.handle();
        actix_rt::spawn(running.server);
        let client = awc::Client::builder()
            .timeout(Duration::from_secs(30))
            .finish();
        Self {
            base: format!("http://{}", running.addr),
            state: running.state,
            client,
            handle,
        }
    }

    /// POSTs `body` as JSON to `path` with the bearer `key`.
    pub async fn post(&self, path: &str, key: Option<&str>, body: &Value) -> Reply {
        self.post_raw(path, key, serde_json::to_vec(body).unwrap())
            .await
    }

    /// POSTs raw bytes to `path`.
    pub async fn post_raw(&self, path: &str, key: Option<&str>, body: Vec<u8>) -> Reply {
        let mut req = self
            .client
            .post(format!("{}{path}", self.base))
            .insert_header(("content-type", "application/json"));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        let res = req.send_body(body).await.expect("gateway answers");
        read(res).await
    }

    /// POSTs `body` as JSON to `path` with these extra headers.
    pub async fn post_with(&self, path: &str, headers: &[(&str, &str)], body: &Value) -> Reply {
        let mut req = self
            .client
            .post(format!("{}{path}", self.base))
            .insert_header(("content-type", "application/json"));
        for (name, value) in headers {
            req = req.insert_header((*name, *value));
        }
        let res = req
            .send_body(serde_json::to_vec(body).unwrap())
            .await
            .expect("gateway answers");
        read(res).await
    }

    /// GETs `path` with the bearer `key`.
    pub async fn get(&self, path: &str, key: Option<&str>) -> Reply {
        let mut req = self.client.get(format!("{}{path}", self.base));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        read(req.send().await.expect("gateway answers")).await
    }

    /// The live state of deployment `index`.
    pub async fn deployment(&self, index: usize) -> DeploymentSnapshot {
        self.state.actors();
        self.state
            .topology()
            .addr(index)
            .expect("a deployment at this index")
            .send(Inspect)
            .await
            .unwrap()
    }

    /// Stops the server.
    pub async fn stop(&self) {
        self.handle.stop(false).await;
    }
}

async fn read<S>(mut res: awc::ClientResponse<S>) -> Reply
where
    S: futures_util::Stream<Item = Result<bytes::Bytes, awc::error::PayloadError>> + Unpin,
{
    let body = res
        .body()
        .limit(64 * 1024 * 1024)
        .await
        .expect("body reads");
    Reply {
        status: res.status().as_u16(),
        headers: res.headers().clone(),
        text: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// Parses an SSE body into its `data:` payloads.
pub fn sse_events(text: &str) -> Vec<String> {
    text.split("\n\n")
        .filter_map(|e| {
            e.lines()
                .find_map(|l| l.strip_prefix("data: "))
                .map(str::to_owned)
        })
        .collect()
}
