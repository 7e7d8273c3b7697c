//! Translation cost of the Anthropic and Gemini adapters, on the recorded fixtures: per request
//! (the OpenAI request to the provider's, and the provider's reply back, each to and from
//! bytes) and per streamed event (a provider event to its OpenAI chunk bytes). Prints PASS or
//! FAIL against the targets (under 20 µs per request, under 2 µs per chunk). Stream
//! translators write their chunks as bytes, so the per-event figure includes serialization.
//!
//!   cargo run --release --example bench_translate

use std::hint::black_box;
use std::time::{Duration, Instant};

use llmgate::providers::chunks::Chunks;
use llmgate::providers::stream::Step;
use llmgate::providers::{anthropic, gemini};
use serde_json::{Map, Value as Json};

const ROUNDS: usize = 20_000;

fn fixture(path: &str) -> String {
    let path = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
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

/// The recorded stream's `data:` payloads.
fn events(sse: &str) -> Vec<&str> {
    sse.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect()
}

/// Times one provider and prints its rows.
fn report(
    name: &str,
    to_wire: Duration,
    from_wire: Duration,
    per_stream: Duration,
    stream_events: usize,
) {
    let per_request = to_wire + from_wire;
    let per_event = per_stream / stream_events as u32;
    println!("{name}:");
    println!("  OpenAI request to the provider's: {to_wire:?}");
    println!("  provider's reply to chat.completion: {from_wire:?}");
    println!(
        "  per request, both ways: {per_request:?} (target < 20 µs) {}",
        verdict(per_request, Duration::from_micros(20))
    );
    println!(
        "  per streamed event: {per_event:?} over {stream_events} events (target < 2 µs) {}",
        verdict(per_event, Duration::from_micros(2))
    );
}

fn openai_fields(case: &str) -> Map<String, Json> {
    let request: Json = serde_json::from_str(&fixture(case)).unwrap();
    request["openai"].as_object().unwrap().clone()
}

fn main() {
    let none = Map::new();
    println!("mean of {ROUNDS} runs on the recorded fixtures (tests/fixtures/)");

    let fields = openai_fields("anthropic/request_tools_images.json");
    let reply: Json = serde_json::from_str(&fixture("anthropic/reply_tool_use.json")).unwrap();
    let reply = serde_json::to_vec(&reply["anthropic"]).unwrap();
    let sse = fixture("anthropic/stream_tool_use.sse");
    let stream = events(&sse);
    let to_wire = mean(|| {
        let body = anthropic::chat_request("claude", black_box(&fields), &none, false, &[]);
        black_box(serde_json::to_vec(&body).unwrap());
    });
    let from_wire = mean(|| {
        black_box(anthropic::reply::chat_completion(black_box(&reply), 1).unwrap());
    });
    let per_stream = mean(|| {
        let mut t = anthropic::stream::AnthropicStream::new(1);
        let mut chunks = Chunks::default();
        for e in &stream {
            chunks.clear();
            let step = t.event(black_box(e.as_bytes()), &mut chunks);
            black_box(chunks.as_slice());
            black_box(step == Step::Done);
        }
    });
    report("anthropic", to_wire, from_wire, per_stream, stream.len());

    let fields = openai_fields("gemini/request_tools_images.json");
    let reply: Json = serde_json::from_str(&fixture("gemini/reply_function_call.json")).unwrap();
    let reply = serde_json::to_vec(&reply["gemini"]).unwrap();
    let sse = fixture("gemini/stream_function_call.sse");
    let stream = events(&sse);
    let to_wire = mean(|| {
        let body = gemini::chat_request(black_box(&fields), &none, &[]);
        black_box(serde_json::to_vec(&body).unwrap());
    });
    let from_wire = mean(|| {
        black_box(gemini::reply::chat_completion(black_box(&reply), "gemini", 1).unwrap());
    });
    let per_stream = mean(|| {
        let mut t = gemini::stream::GeminiStream::new("gemini", 1);
        let mut chunks = Chunks::default();
        for e in &stream {
            chunks.clear();
            t.event(black_box(e.as_bytes()), &mut chunks);
            black_box(chunks.as_slice());
        }
    });
    report("gemini", to_wire, from_wire, per_stream, stream.len());
}
