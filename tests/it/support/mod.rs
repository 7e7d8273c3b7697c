//! Test support: a scriptable OpenAI-wire mock upstream, an in-process gateway, and a binary runner.

pub mod binary;
pub mod db;
pub mod faulty;
pub mod files;
pub mod files_upstream;
pub mod gateway;
pub mod media_upstream;
pub mod raw_client;
pub mod redis_counts;
pub mod tcp_proxy;
pub mod upstream;
pub mod wire;

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpServer};

pub use gateway::Gateway;
pub use upstream::{Behavior, MockUpstream};

/// Polls `check` until it returns true or `within` passes.
pub async fn eventually(within: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A chat body for `model`.
pub fn chat_body(model: &str) -> serde_json::Value {
    serde_json::json!({"model": model, "messages": [{"role": "user", "content": "hello there"}]})
}

/// Starts a one-worker HTTP server on a random port of 127.0.0.1, with `data` as its app data
/// and the routes `routes` adds; its base URL (`http://127.0.0.1:PORT`).
pub fn serve<T: Send + Sync + 'static>(
    data: Arc<T>,
    routes: fn(&mut web::ServiceConfig),
) -> String {
    let data = web::Data::from(data);
    let server = HttpServer::new(move || App::new().app_data(data.clone()).configure(routes))
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", 0))
        .unwrap();
    let port = server.addrs()[0].port();
    actix_rt::spawn(server.run());
    format!("http://127.0.0.1:{port}")
}

/// Checks `body` is the contract's error body (COMPAT §errors) for `status` and `kind`: a
/// non-empty message, `type`, `param` present and `code` the status as a string. Its message.
pub fn assert_error_body(body: &serde_json::Value, status: u16, kind: &str) -> String {
    let e = &body["error"];
    assert_eq!(e["code"], status.to_string(), "{body}");
    assert_eq!(e["type"], kind, "{body}");
    assert!(e.get("param").is_some(), "{body}");
    let message = e["message"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "{body}");
    message.to_owned()
}
