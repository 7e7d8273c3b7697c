//! Slow clients are cut: a head or a body that trickles in past its timeout, and a kept-alive
//! connection left idle.

use std::time::{Duration, Instant};

use super::{assert_error, chat_bytes, config};
use crate::support::raw_client::{post_head, RawClient};
use crate::support::{Gateway, MockUpstream};

#[actix_rt::test]
async fn a_head_that_trickles_past_client_header_timeout_is_answered_408_and_closed() {
    let mock = MockUpstream::start().await;
    let gw = Gateway::start(&config(&mock, "client_header_timeout: 1")).await;
    let mut client = RawClient::connect(&gw.base).await;
    let started = Instant::now();
    // A byte every 250 ms: the whole head would take over 20 s.
    let head = post_head(&client.addr, "/v1/chat/completions", Some(10));
    let whole = client
        .trickle(head.as_bytes(), 1, Duration::from_millis(250))
        .await;
    assert!(!whole, "the server waited for the whole slow head");
    assert!(
        client.closed_within(Duration::from_secs(5)).await,
        "the connection stayed open: {}",
        client.text()
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "cut after {:?}, the bound is 1 s",
        started.elapsed()
    );
    assert_eq!(client.status(), Some(408), "{}", client.text());
    assert_eq!(mock.call_count(), 0);
}

#[actix_rt::test]
async fn a_body_that_trickles_past_client_body_timeout_is_cut_with_a_408_error_body() {
    let mock = MockUpstream::start().await;
    let gw = Gateway::start(&config(&mock, "client_body_timeout: 1")).await;
    let mut client = RawClient::connect(&gw.base).await;
    let body = chat_bytes(false);
    let head = post_head(&client.addr, "/v1/chat/completions", Some(body.len()));
    assert!(client.send(head.as_bytes()).await);
    let started = Instant::now();
    // Two bytes every 250 ms: the whole body would take over 10 s.
    let whole = client.trickle(&body, 2, Duration::from_millis(250)).await;
    assert!(!whole, "the server waited for the whole slow body");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "cut after {:?}, the bound is 1 s",
        started.elapsed()
    );
    assert!(
        client.closed_within(Duration::from_secs(5)).await,
        "the connection stayed open: {}",
        client.text()
    );
    assert_eq!(client.status(), Some(408), "{}", client.text());
    assert_error(&client.json(), 408, "timeout");
    assert_eq!(mock.call_count(), 0);
}

#[actix_rt::test]
async fn an_idle_kept_alive_connection_is_closed_after_keepalive_timeout() {
    let mock = MockUpstream::start().await;
    let gw = Gateway::start(&config(&mock, "keepalive_timeout: 1")).await;
    let mut client = RawClient::connect(&gw.base).await;
    let request = format!(
        "GET /health/liveliness HTTP/1.1\r\nhost: {}\r\n\r\n",
        client.addr
    );
    assert!(client.send(request.as_bytes()).await);
    assert!(
        client
            .received_within("I'm alive", Duration::from_secs(5))
            .await,
        "{}",
        client.text()
    );
    let idle_from = Instant::now();
    assert!(
        client.closed_within(Duration::from_secs(10)).await,
        "the idle connection stayed open"
    );
    assert!(
        idle_from.elapsed() < Duration::from_secs(4),
        "closed after {:?} idle, the bound is 1 s",
        idle_from.elapsed()
    );
    assert_eq!(client.status(), Some(200), "{}", client.text());
}

#[actix_rt::test]
async fn a_later_head_that_trickles_on_a_kept_alive_connection_is_answered_408_and_closed() {
    let mock = MockUpstream::start().await;
    // The keep-alive bound is far off: only the head's own bound can cut the trickle.
    let gw = Gateway::start(&config(
        &mock,
        "client_header_timeout: 1, keepalive_timeout: 30",
    ))
    .await;
    let mut client = RawClient::connect(&gw.base).await;
    let request = format!(
        "GET /health/liveliness HTTP/1.1\r\nhost: {}\r\n\r\n",
        client.addr
    );
    assert!(client.send(request.as_bytes()).await);
    assert!(
        client
            .received_within("I'm alive", Duration::from_secs(5))
            .await,
        "{}",
        client.text()
    );
    let first_answer = client.text().len();
    // Idle a while first: the wait between requests is the keep-alive's, not the head's.
    client.read_for(Duration::from_millis(1500)).await;
    let started = Instant::now();
    // A byte every 250 ms: the whole second head would take over 10 s.
    let whole = client
        .trickle(request.as_bytes(), 1, Duration::from_millis(250))
        .await;
    assert!(!whole, "the server waited for the whole slow second head");
    assert!(
        client.closed_within(Duration::from_secs(5)).await,
        "the connection stayed open: {}",
        client.text()
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "cut after {:?}, the bound is 1 s",
        started.elapsed()
    );
    let second = client.text()[first_answer..].to_owned();
    assert!(second.starts_with("HTTP/1.1 408 "), "{second}");
    let body = second.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let body: serde_json::Value = serde_json::from_str(body).expect(&second);
    assert_error(&body, 408, "timeout");
}
