//! Oversized requests are refused before they are buffered: a declared length over the limit,
//! a chunked body as it passes the limit, a head too large or with too many fields (actix
//! answers both 431 and closes the connection).

use std::time::{Duration, Instant};

use super::{assert_error, config};
use crate::support::raw_client::{post_head, RawClient};
use crate::support::{Gateway, MockUpstream};

/// `max_request_size_mb: 0.01`: about 10 KB.
const SMALL_LIMIT: &str = "max_request_size_mb: 0.01";

#[actix_rt::test]
async fn a_declared_length_over_the_limit_is_refused_413_before_the_body_is_read() {
    let mock = MockUpstream::start().await;
    // A long body timeout: only the declared length can explain a prompt answer.
    let gw = Gateway::start(&config(
        &mock,
        &format!("{SMALL_LIMIT}, client_body_timeout: 60"),
    ))
    .await;
    let mut client = RawClient::connect(&gw.base).await;
    let head = post_head(
        &client.addr,
        "/v1/chat/completions",
        Some(100 * 1024 * 1024),
    );
    assert!(client.send(head.as_bytes()).await);
    // No byte of the body is sent: the answer cannot wait for it.
    assert!(
        client
            .received_within("\r\n\r\n{", Duration::from_secs(5))
            .await,
        "no answer to the head alone: {}",
        client.text()
    );
    assert_eq!(client.status(), Some(413), "{}", client.text());
    assert!(
        client.closed_within(Duration::from_secs(10)).await,
        "the connection stayed open"
    );
    assert_error(&client.json(), 413, "invalid_request_error");
    assert_eq!(mock.call_count(), 0);
}

#[actix_rt::test]
async fn a_chunked_body_is_cut_as_it_passes_the_limit_and_its_connection_closed() {
    let mock = MockUpstream::start().await;
    let gw = Gateway::start(&config(
        &mock,
        &format!("{SMALL_LIMIT}, client_body_timeout: 60, client_disconnect_timeout: 1"),
    ))
    .await;
    let mut client = RawClient::connect(&gw.base).await;
    let head = post_head(&client.addr, "/v1/chat/completions", None);
    assert!(client.send(head.as_bytes()).await);
    let chunk = format!("1000\r\n{}\r\n", "x".repeat(0x1000));
    let started = Instant::now();
    // 4 KB every 50 ms, 1000 times: 4 MB over 50 s, unless the gateway stops it.
    let mut sent = 0;
    while sent < 1000 && client.status().is_none() {
        if !client.send(chunk.as_bytes()).await {
            break;
        }
        sent += 1;
        client.read_for(Duration::from_millis(50)).await;
    }
    assert!(
        client
            .received_within("\r\n\r\n{", Duration::from_secs(5))
            .await,
        "no answer: {}",
        client.text()
    );
    assert_eq!(client.status(), Some(413), "{}", client.text());
    assert!(
        sent <= 20,
        "{sent} chunks of 4 KB were taken past a 10 KB limit"
    );
    assert_error(&client.json(), 413, "invalid_request_error");
    // The rest of the body is not drained for as long as the client sends it: the connection
    // closes though the client keeps sending.
    let refused_at = Instant::now();
    while client.send(chunk.as_bytes()).await && refused_at.elapsed() < Duration::from_secs(15) {
        if client.closed_within(Duration::from_millis(50)).await {
            break;
        }
    }
    assert!(
        refused_at.elapsed() < Duration::from_secs(8),
        "the connection stayed open {:?} after the refusal (client_disconnect_timeout: 1)",
        refused_at.elapsed()
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(mock.call_count(), 0);
}

#[actix_rt::test]
async fn a_head_over_the_size_limit_is_answered_431_and_closed() {
    let mock = MockUpstream::start().await;
    let gw = Gateway::start(&config(&mock, "")).await;
    let mut client = RawClient::connect(&gw.base).await;
    // actix refuses heads past 128 KB.
    let head = format!(
        "GET /health/liveliness HTTP/1.1\r\nhost: {}\r\nx-filler: {}\r\n\r\n",
        client.addr,
        "a".repeat(140 * 1024)
    );
    client.send(head.as_bytes()).await;
    assert!(
        client.closed_within(Duration::from_secs(5)).await,
        "the connection hangs: {}",
        client.text()
    );
    assert_eq!(client.status(), Some(431), "{}", client.text());
}

#[actix_rt::test]
async fn a_head_with_too_many_fields_is_answered_431_and_closed() {
    let mock = MockUpstream::start().await;
    let gw = Gateway::start(&config(&mock, "")).await;
    let mut client = RawClient::connect(&gw.base).await;
    // actix reads at most 96 fields.
    let fields: String = (0..200).map(|i| format!("x-field-{i}: v\r\n")).collect();
    let head = format!(
        "GET /health/liveliness HTTP/1.1\r\nhost: {}\r\n{fields}\r\n",
        client.addr
    );
    client.send(head.as_bytes()).await;
    assert!(
        client.closed_within(Duration::from_secs(5)).await,
        "the connection hangs: {}",
        client.text()
    );
    assert_eq!(client.status(), Some(431), "{}", client.text());
}

#[actix_rt::test]
async fn a_management_route_refuses_an_oversized_body_in_the_contracts_shape() {
    let mock = MockUpstream::start().await;
    let gw = Gateway::start(&config(
        &mock,
        &format!("{SMALL_LIMIT}, master_key: sk-client-faults-master-0001"),
    ))
    .await;
    // Declared over the limit: refused before a byte of it is read.
    let mut client = RawClient::connect(&gw.base).await;
    let head = post_head(&client.addr, "/key/generate", Some(100 * 1024 * 1024)).replace(
        "\r\n\r\n",
        "\r\nauthorization: Bearer sk-client-faults-master-0001\r\n\r\n",
    );
    assert!(client.send(head.as_bytes()).await);
    assert!(
        client
            .received_within("\r\n\r\n{", Duration::from_secs(5))
            .await,
        "no answer to the head alone: {}",
        client.text()
    );
    assert_eq!(client.status(), Some(413), "{}", client.text());
    assert_error(&client.json(), 413, "invalid_request_error");
    assert!(
        client.closed_within(Duration::from_secs(10)).await,
        "the connection stayed open"
    );
    // Sent whole by an ordinary client, it gets the same answer.
    let big = serde_json::json!({"metadata": {"pad": "x".repeat(20 * 1024)}});
    let reply = gw
        .post("/key/generate", Some("sk-client-faults-master-0001"), &big)
        .await;
    assert_eq!(reply.status, 413, "{}", reply.text);
    assert_error(&reply.json(), 413, "invalid_request_error");
}
