//! Translation cost for the Anthropic adapter, on the recorded fixtures: per request (the
//! OpenAI request to the Messages API and the reply back, each to and from bytes) and per
//! streamed event (an Anthropic event to its OpenAI chunk bytes). Prints PASS or FAIL against
//! the targets (under 20 µs per request, under 2 µs per chunk).
//!
//!   cargo run --release --example bench_translate

use std::hint::black_box;
use std::time::{Duration, Instant};

use llmgate::providers::anthropic::{chat_request, reply, stream::AnthropicStream};
use serde_json::{Map, Value as Json};

const ROUNDS: usize = 20_000;

fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/anthropic/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(path).expect("fixture")
}

/// Runs `f` `ROUNDS` times after a warm-up; the mean time per run.
fn mean(mut f: impl FnMut()) -> Duration {
    for _ in 0..ROUNDS / 10 {
        f();
    }
    let started = Instant::now();
    for _ in 0..ROUNDS {
        f();
    }
    started.elapsed() / ROUNDS as u32
}

fn verdict(took: Duration, limit: Duration) -> &'static str {
    if took < limit {
        "PASS"
    } else {
        "FAIL"
    }
}

fn main() {
    let request: Json = serde_json::from_str(&fixture("request_tools_images.json")).unwrap();
    let fields: Map<String, Json> = request["openai"].as_object().unwrap().clone();
    let defaults = Map::new();
    let reply_case: Json = serde_json::from_str(&fixture("reply_tool_use.json")).unwrap();
    let reply_bytes = serde_json::to_vec(&reply_case["anthropic"]).unwrap();
    let sse = fixture("stream_tool_use.sse");
    let events: Vec<&str> = sse
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();

    let to_wire = mean(|| {
        let body = chat_request(
            "claude-3-7-sonnet-20250219",
            black_box(&fields),
            &defaults,
            false,
            &[],
        );
        black_box(serde_json::to_vec(&body).unwrap());
    });
    let from_wire = mean(|| {
        black_box(reply::chat_completion(black_box(&reply_bytes), 1).unwrap());
    });
    let per_stream = mean(|| {
        let mut t = AnthropicStream::new(1);
        let mut chunks = Vec::new();
        for e in &events {
            chunks.clear();
            t.event(black_box(e.as_bytes()), &mut chunks);
            for c in &chunks {
                black_box(serde_json::to_vec(c).unwrap());
            }
        }
    });
    let per_event = per_stream / events.len() as u32;
    let per_request = to_wire + from_wire;
    println!("anthropic translation, mean of {ROUNDS} runs on the recorded fixtures:");
    println!("  request to the Messages API (6 messages, tools, images) {to_wire:?}");
    println!("  reply to chat.completion (thinking, text, tool call)     {from_wire:?}");
    println!(
        "  per request, both ways: {per_request:?} (target < 20 µs) {}",
        verdict(per_request, Duration::from_micros(20))
    );
    println!(
        "  per streamed event: {per_event:?} over {} events (target < 2 µs) {}",
        events.len(),
        verdict(per_event, Duration::from_micros(2))
    );
}
