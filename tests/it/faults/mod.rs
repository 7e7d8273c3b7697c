//! Fault injection: one file per way an upstream can misbehave, each showing the client's
//! error, the deployment's slot and connection released, and the failure counted.

mod connection_refused;
mod endless_stream;
mod garbage_json;
mod huge_response;
mod reset_mid_body;
mod reset_mid_stream;
mod slow_drip;

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::faulty::{Fault, FaultyUpstream};
use crate::support::gateway::{sse_events, Reply};
use crate::support::{eventually, Gateway, MockUpstream};

/// How long released resources may take to show, on a loaded machine.
const SETTLE: Duration = Duration::from_secs(10);

/// A gateway with one deployment, `bad`, at `api_base`, never retried; `extra` is added to its
/// `litellm_params` (a `timeout`, say).
async fn gateway(api_base: &str, extra: &str) -> Gateway {
    Gateway::start(&format!(
        "model_list:\n\
         - {{model_name: bad, litellm_params: {{model: openai/m, api_base: '{api_base}'{extra}}}}}\n\
         router_settings: {{num_retries: 0}}\n"
    ))
    .await
}

/// A chat request to `bad`, streamed or not.
fn request(stream: bool) -> Value {
    json!({"model": "bad", "stream": stream, "messages": [{"role": "user", "content": "hi"}]})
}

/// Sends a chat request to `bad`.
async fn ask(gw: &Gateway, stream: bool) -> Reply {
    gw.post("/v1/chat/completions", None, &request(stream))
        .await
}

/// Checks `r` is the contract's error body with `status` and `kind`; its message.
fn assert_error(r: &Reply, status: u16, kind: &str) -> String {
    assert_eq!(r.status, status, "{}", r.text);
    crate::support::assert_error_body(&r.json(), status, kind)
}

/// Checks a stream ended with one in-band error event with `code` and `kind`, after `chunks`
/// relayed chunks and nothing else (no `[DONE]`).
fn assert_in_band_error(r: &Reply, chunks: usize, code: u16, kind: &str) -> String {
    assert_eq!(r.status, 200, "{}", r.text);
    let events = sse_events(&r.text);
    assert_eq!(events.len(), chunks + 1, "{}", r.text);
    let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
    assert_eq!(last["error"]["code"], code.to_string(), "{}", r.text);
    assert_eq!(last["error"]["type"], kind, "{}", r.text);
    last["error"]["message"].as_str().unwrap().to_owned()
}

/// Waits until the deployment has nothing in flight and counts `failures`, and (with a mock) the
/// mock sees no open connection.
async fn assert_released_and_counted(gw: &Gateway, mock: Option<&FaultyUpstream>, failures: u64) {
    let settled = eventually(SETTLE, async || {
        let d = gw.deployment(0).await;
        d.in_flight == 0 && d.failures_this_minute == failures && mock.is_none_or(|m| m.open() == 0)
    })
    .await;
    let d = gw.deployment(0).await;
    assert!(
        settled,
        "in flight {}, failures {} (want {failures}), open connections {:?}",
        d.in_flight,
        d.failures_this_minute,
        mock.map(FaultyUpstream::open)
    );
}

/// With `allowed_fails: 1` and a fallback, requests to a deployment at `api_base` are answered
/// by the healthy one; after its second failure it cools down and is not called again.
async fn assert_falls_back_then_cools(api_base: &str, extra: &str) {
    let healthy = MockUpstream::start().await;
    let gw = Gateway::start(&format!(
        "model_list:\n\
         - {{model_name: bad, litellm_params: {{model: openai/m, api_base: '{api_base}'{extra}}}}}\n\
         - {{model_name: good, litellm_params: {{model: openai/m, api_base: '{}'}}}}\n\
         router_settings: {{num_retries: 0, allowed_fails: 1, cooldown_time: 60}}\n\
         litellm_settings: {{fallbacks: [{{bad: [good]}}]}}\n",
        healthy.v1()
    ))
    .await;
    for _ in 0..3 {
        let r = ask(&gw, false).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.header("x-litellm-attempted-fallbacks"), Some("1"));
    }
    let d = gw.deployment(0).await;
    assert_eq!(
        d.requests_this_minute, 2,
        "the cooled deployment was called again"
    );
    assert!(d.cooling_until.is_some(), "not cooling after two failures");
    // (Cooling down starts its failure count afresh.)
    assert_eq!(d.in_flight, 0);
    assert_eq!(healthy.call_count(), 3);
}

/// A fault mock and a gateway in front of it.
async fn faulty(fault: Fault, extra: &str) -> (FaultyUpstream, Gateway) {
    let mock = FaultyUpstream::start(fault).await;
    let gw = gateway(&mock.v1, extra).await;
    (mock, gw)
}
