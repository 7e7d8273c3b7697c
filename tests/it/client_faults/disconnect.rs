//! A client that hangs up cancels its upstream call, streamed or not, and frees what it held:
//! the deployment's slot, the live-request count, with no spend charged for nothing delivered.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{chat_bytes, config};
use crate::support::raw_client::{post_head, RawClient};
use crate::support::{eventually, Behavior, Gateway, MockUpstream};

/// Sends a chat request whose upstream answers only after 60 s, waits until the upstream has
/// it, hangs up, and checks that the call and everything it held are released.
async fn hanging_up_cancels_the_upstream_call(stream: bool) {
    let mock = MockUpstream::start().await;
    mock.set(Behavior::Delay(Duration::from_secs(60)));
    let gw = Gateway::start(&config(&mock, "")).await;
    let mut client = RawClient::connect(&gw.base).await;
    let body = chat_bytes(stream);
    let head = post_head(&client.addr, "/v1/chat/completions", Some(body.len()));
    assert!(client.send(head.as_bytes()).await);
    assert!(client.send(&body).await);
    assert!(
        eventually(Duration::from_secs(10), async || mock.call_count() == 1).await,
        "the upstream never got the call"
    );
    assert_eq!(gw.deployment(0).await.in_flight, 1);
    drop(client);
    assert!(
        eventually(Duration::from_secs(10), async || mock.delays_cancelled()
            == 1)
        .await,
        "the upstream call ran on after the client left"
    );
    assert!(
        eventually(Duration::from_secs(5), async || gw
            .deployment(0)
            .await
            .in_flight
            == 0)
        .await,
        "the deployment's slot was not released"
    );
    assert!(
        eventually(Duration::from_secs(5), async || gw
            .state
            .live_requests
            .load(Ordering::SeqCst)
            == 0)
        .await,
        "the request is still counted live"
    );
    assert_eq!(
        gw.deployment(0).await.failures_this_minute,
        0,
        "a client leaving is not the deployment's failure"
    );
    // Nothing was delivered: one row, costing nothing.
    gw.state
        .spend()
        .send(llmgate::actors::Flush)
        .await
        .unwrap()
        .unwrap();
    let logs = gw.get("/spend/logs", None).await.json();
    let rows = logs.as_array().expect("a list of rows");
    assert_eq!(rows.len(), 1, "{logs}");
    assert_eq!(rows[0]["spend"], 0.0, "{logs}");
    assert_eq!(mock.call_count(), 1, "a client that left is not retried");
}

#[actix_rt::test]
async fn a_client_that_hangs_up_cancels_its_plain_upstream_call() {
    hanging_up_cancels_the_upstream_call(false).await;
}

#[actix_rt::test]
async fn a_client_that_hangs_up_before_the_first_chunk_cancels_its_upstream_stream() {
    hanging_up_cancels_the_upstream_call(true).await;
}
