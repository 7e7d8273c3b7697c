//! Streaming: chunks relayed as they arrive, usage captured and added, failures in-band, and a
//! client that leaves releasing everything.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::gateway::sse_events;
use crate::support::{eventually, Behavior, Gateway, MockUpstream};

fn config(mock: &MockUpstream, extra: &str) -> String {
    format!(
        "model_list:\n  - model_name: g\n    litellm_params: {{model: openai/m, api_base: '{}'}}\n{extra}",
        mock.v1()
    )
}

fn stream_body(include_usage: bool) -> Value {
    let mut b = json!({"model": "g", "stream": true, "messages": [{"role": "user", "content": "count to three"}]});
    if include_usage {
        b["stream_options"] = json!({"include_usage": true});
    }
    b
}

fn contents(events: &[String]) -> String {
    events
        .iter()
        .filter(|e| *e != "[DONE]")
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

#[actix_rt::test]
async fn the_first_chunk_reaches_the_client_before_the_upstream_sends_the_last() {
    let mock = MockUpstream::start().await;
    mock.set(Behavior::Normal {
        chunks: 5,
        gap: Duration::from_millis(150),
        usage: true,
    });
    let gw = Gateway::start(&config(&mock, "")).await;
    let started = Instant::now();
    let mut res = gw
        .client
        .post(format!("{}/v1/chat/completions", gw.base))
        .send_json(&stream_body(false))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers().get("content-type").unwrap(),
        "text/event-stream"
    );
    let mut seen = String::new();
    let mut sent_when_first_arrived = None;
    while let Some(chunk) = res.next().await {
        seen.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
        if sent_when_first_arrived.is_none() && seen.contains("piece0") {
            sent_when_first_arrived = Some((mock.chunks_sent(), started.elapsed()));
        }
    }
    let (sent, at) = sent_when_first_arrived.expect("a content chunk arrived");
    assert!(
        sent < 5,
        "the upstream had sent {sent} of 5 chunks when the first arrived"
    );
    assert!(at < Duration::from_millis(600), "first chunk after {at:?}");
    let events = sse_events(&seen);
    assert_eq!(contents(&events), "piece0 piece1 piece2 piece3 piece4 ");
    assert_eq!(events.last().unwrap(), "[DONE]");
}

#[actix_rt::test]
async fn the_usage_chunk_comes_only_when_asked_though_the_upstream_is_always_asked() {
    let mock = MockUpstream::start().await;
    let gw = Gateway::start(&config(&mock, "")).await;

    let plain = gw
        .post("/v1/chat/completions", None, &stream_body(false))
        .await;
    assert_eq!(mock.last().body["stream_options"]["include_usage"], true);
    assert!(
        sse_events(&plain.text)
            .iter()
            .all(|e| !e.contains("\"usage\":{")),
        "{}",
        plain.text
    );

    let with_usage = gw
        .post("/v1/chat/completions", None, &stream_body(true))
        .await;
    let events = sse_events(&with_usage.text);
    let usage_chunk: Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(usage_chunk["usage"]["total_tokens"], 10);
    assert_eq!(events.last().unwrap(), "[DONE]");
    assert!(
        eventually(Duration::from_secs(5), async || gw
            .deployment(0)
            .await
            .tokens_this_minute
            == 20)
        .await,
        "both streams are counted"
    );
}

#[actix_rt::test]
async fn usage_is_counted_with_the_tokenizer_when_the_upstream_sends_none() {
    let mock = MockUpstream::start().await;
    mock.set(Behavior::Normal {
        chunks: 3,
        gap: Duration::ZERO,
        usage: false,
    });
    let gw = Gateway::start(&config(&mock, "")).await;
    let r = gw
        .post("/v1/chat/completions", None, &stream_body(true))
        .await;
    let events = sse_events(&r.text);
    let usage: Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
    // "piece0 piece1 piece2 " in cl100k_base, and "count to three" (3) plus 3 + 3 framing tokens.
    let completion = llmgate::tokens::count("piece0 piece1 piece2 ");
    assert!(completion >= 6, "{completion}");
    assert_eq!(
        usage["usage"],
        json!({"prompt_tokens": 9, "completion_tokens": completion, "total_tokens": 9 + completion, "cost": 0.0})
    );
    assert_eq!(usage["id"], "chatcmpl-mock");
    let total = 9 + completion;
    assert!(
        eventually(Duration::from_secs(5), async || gw
            .deployment(0)
            .await
            .tokens_this_minute
            == total)
        .await
    );
}

#[actix_rt::test]
async fn always_include_stream_usage_adds_the_usage_chunk() {
    let mock = MockUpstream::start().await;
    let gw = Gateway::start(&config(
        &mock,
        "general_settings: {always_include_stream_usage: true}\n",
    ))
    .await;
    let r = gw
        .post("/v1/chat/completions", None, &stream_body(false))
        .await;
    let events = sse_events(&r.text);
    assert!(
        events[events.len() - 2].contains("\"total_tokens\":10"),
        "{}",
        r.text
    );
}

#[actix_rt::test]
async fn an_upstream_failure_mid_stream_is_one_in_band_error_event() {
    let mock = MockUpstream::start().await;
    mock.set(Behavior::BreakMidStream { after: 2 });
    let gw = Gateway::start(&config(&mock, "")).await;
    let r = gw
        .post("/v1/chat/completions", None, &stream_body(false))
        .await;
    assert_eq!(r.status, 200);
    let events = sse_events(&r.text);
    assert_eq!(contents(&events), "piece0 piece1 ");
    let errors: Vec<&String> = events.iter().filter(|e| e.contains("\"error\"")).collect();
    assert_eq!(errors.len(), 1, "{}", r.text);
    let err: Value = serde_json::from_str(errors[0]).unwrap();
    assert_eq!(err["error"]["code"], "502");
    assert_eq!(err["error"]["type"], "api_connection_error");
    assert_eq!(
        events.last(),
        Some(errors[0]),
        "the stream ends after the error"
    );
    assert!(
        eventually(Duration::from_secs(5), async || gw
            .deployment(0)
            .await
            .failures_this_minute
            == 1)
        .await
    );
}

#[actix_rt::test]
async fn a_client_that_disconnects_mid_stream_releases_its_slot_and_the_upstream_connection() {
    let mock = MockUpstream::start().await;
    mock.set(Behavior::Normal {
        chunks: 200,
        gap: Duration::from_millis(25),
        usage: true,
    });
    let gw = Gateway::start(&config(&mock, "")).await;
    let addr = gw.base.trim_start_matches("http://").to_owned();
    let mut socket = actix_rt::net::TcpStream::connect(&addr).await.unwrap();
    let body = serde_json::to_string(&stream_body(false)).unwrap();
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 8192];
    let mut got = String::new();
    while !got.contains("piece1") {
        let n = socket.read(&mut buf).await.unwrap();
        assert!(n > 0, "stream closed early: {got}");
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert_eq!(gw.deployment(0).await.in_flight, 1);
    drop(socket);
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
        eventually(Duration::from_secs(5), async || mock.streams_dropped() == 1).await,
        "the upstream connection was not closed"
    );
    assert!(mock.chunks_sent() < 200);
    assert_eq!(
        gw.deployment(0).await.failures_this_minute,
        0,
        "a client leaving is not the deployment's failure"
    );
    // What was generated before the client left is still charged, marked cancelled.
    gw.state
        .spend()
        .send(llmgate::actors::Flush)
        .await
        .unwrap()
        .unwrap();
    let logs = gw.get("/spend/logs", None).await.json();
    let row = &logs[0];
    assert_eq!(row["status"], "cancelled", "{logs}");
    assert!(row["completion_tokens"].as_i64().unwrap() >= 2, "{logs}");
}

#[actix_rt::test]
async fn stream_timeout_bounds_the_wait_for_the_first_byte() {
    let mock = MockUpstream::start().await;
    mock.set(Behavior::Delay(Duration::from_secs(3)));
    let gw = Gateway::start(&config(
        &mock,
        "router_settings: {stream_timeout: 0.3}\nlitellm_settings: {num_retries: 0}\n",
    ))
    .await;
    let started = Instant::now();
    let r = gw
        .post("/v1/chat/completions", None, &stream_body(false))
        .await;
    assert_eq!(r.status, 408, "{}", r.text);
    assert_eq!(r.json()["error"]["type"], "timeout");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[actix_rt::test]
async fn a_streamed_completion_through_a_chat_deployment_comes_back_as_text_completion_chunks() {
    let mock = MockUpstream::start().await;
    let gw = Gateway::start(&config(&mock, "")).await;
    let r = gw
        .post(
            "/v1/completions",
            None,
            &json!({"model": "g", "prompt": "hi", "stream": true}),
        )
        .await;
    let events = sse_events(&r.text);
    let first: Value = serde_json::from_str(&events[0]).unwrap();
    assert_eq!(first["object"], "text_completion");
    assert_eq!(first["choices"][0]["text"], "piece0 ");
    assert_eq!(events.last().unwrap(), "[DONE]");
    assert_eq!(mock.last().path, "/v1/chat/completions");
}
