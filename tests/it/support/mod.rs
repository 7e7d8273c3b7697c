//! Test support: a scriptable OpenAI-wire mock upstream, an in-process gateway, and a binary runner.

pub mod binary;
pub mod db;
pub mod gateway;
pub mod redis_counts;
pub mod tcp_proxy;
pub mod upstream;
pub mod wire;

use std::time::{Duration, Instant};

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
