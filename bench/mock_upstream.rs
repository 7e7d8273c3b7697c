//! A fast OpenAI-compatible mock upstream for benchmarking llmgate: canned, precomputed replies.
//!
//! Routes (each with and without the `/v1` prefix):
//! - `POST /chat/completions`: a fixed `chat.completion` body, or, when the request body
//!   holds `"stream": true`, an SSE stream of `--chunks` chunks `--chunk-delay-ms` apart,
//!   then a usage chunk (`choices: []`) and `data: [DONE]`.
//! - `POST /embeddings`: a fixed embedding list.
//! - `GET /models`: one model, `bench-model`.
//!
//! The first line on stdout is `listening on 127.0.0.1:PORT` (flushed), so a script can
//! start it with `--port 0` and read the port it got.

use std::io::Write;
use std::time::Duration;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use bytes::Bytes;
use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "bench_mock",
    about = "Fast OpenAI-compatible mock upstream for llmgate benchmarks"
)]
struct Args {
    /// Port to listen on, on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Number of worker threads.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Number of content chunks in a streamed reply.
    #[arg(long, default_value_t = 10)]
    chunks: usize,
    /// Delay between streamed content chunks, in milliseconds.
    #[arg(long = "chunk-delay-ms", default_value_t = 5)]
    chunk_delay_ms: u64,
}

/// Every reply body, built once at startup.
struct Canned {
    chat: Bytes,
    embeddings: Bytes,
    models: Bytes,
    /// One `data: {chunk}\n\n` frame per content chunk.
    chunks: Vec<Bytes>,
    /// The usage chunk followed by `data: [DONE]\n\n`, sent as one write.
    tail: Bytes,
    delay: Duration,
}

const CREATED: u64 = 1_700_000_000;

fn json_bytes(v: &serde_json::Value) -> Bytes {
    Bytes::from(serde_json::to_vec(v).expect("serialising a JSON value cannot fail"))
}

fn sse_frame(v: &serde_json::Value) -> Bytes {
    let mut out = b"data: ".to_vec();
    out.extend_from_slice(&serde_json::to_vec(v).expect("serialising a JSON value cannot fail"));
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

impl Canned {
    fn new(n_chunks: usize, delay_ms: u64) -> Self {
        let usage =
            serde_json::json!({"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30});
        let chat = json_bytes(&serde_json::json!({
            "id": "chatcmpl-bench0001",
            "object": "chat.completion",
            "created": CREATED,
            "model": "bench-model",
            "system_fingerprint": "fp_bench",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": "Hello! This is a canned reply from the benchmark mock."},
                "logprobs": null,
                "finish_reason": "stop"
            }],
            "usage": usage
        }));
        let embeddings = json_bytes(&serde_json::json!({
            "object": "list",
            "data": [{"object": "embedding", "index": 0, "embedding": [0.0123, -0.0456, 0.0789, 0.1011, -0.1213, 0.1415, -0.1617, 0.1819]}],
            "model": "bench-model",
            "usage": {"prompt_tokens": 10, "total_tokens": 10}
        }));
        let models = json_bytes(&serde_json::json!({
            "object": "list",
            "data": [{"id": "bench-model", "object": "model", "created": CREATED, "owned_by": "bench"}]
        }));
        let chunk = |delta: serde_json::Value, finish: serde_json::Value| {
            sse_frame(&serde_json::json!({
                "id": "chatcmpl-bench0001",
                "object": "chat.completion.chunk",
                "created": CREATED,
                "model": "bench-model",
                "system_fingerprint": "fp_bench",
                "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]
            }))
        };
        let chunks = (0..n_chunks)
            .map(|i| {
                let delta = if i == 0 {
                    serde_json::json!({"role": "assistant", "content": "tok0 "})
                } else {
                    serde_json::json!({"content": format!("tok{i} ")})
                };
                let finish = if i + 1 == n_chunks {
                    serde_json::json!("stop")
                } else {
                    serde_json::Value::Null
                };
                chunk(delta, finish)
            })
            .collect();
        let mut tail = sse_frame(&serde_json::json!({
            "id": "chatcmpl-bench0001",
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": "bench-model",
            "system_fingerprint": "fp_bench",
            "choices": [],
            "usage": usage
        }))
        .to_vec();
        tail.extend_from_slice(b"data: [DONE]\n\n");
        Canned {
            chat,
            embeddings,
            models,
            chunks,
            tail: Bytes::from(tail),
            delay: Duration::from_millis(delay_ms),
        }
    }
}

/// True when the body holds `"stream"` followed by `:` and `true` (whitespace allowed).
fn wants_stream(body: &[u8]) -> bool {
    const KEY: &[u8] = b"\"stream\"";
    let mut start = 0;
    while let Some(pos) = body[start..].windows(KEY.len()).position(|w| w == KEY) {
        let mut i = start + pos + KEY.len();
        let skip_ws = |mut i: usize| {
            while i < body.len() && body[i].is_ascii_whitespace() {
                i += 1;
            }
            i
        };
        i = skip_ws(i);
        if i < body.len() && body[i] == b':' {
            i = skip_ws(i + 1);
            if body[i..].starts_with(b"true") {
                return true;
            }
        }
        start = start + pos + KEY.len();
    }
    false
}

fn json_response(body: &Bytes) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        ))
        .body(body.clone())
}

async fn chat(body: Bytes, canned: web::Data<Canned>) -> HttpResponse {
    if !wants_stream(&body) {
        return json_response(&canned.chat);
    }
    let canned = canned.into_inner();
    // Chunk i is due at start + i * delay (a fixed schedule, so timer rounding does not
    // accumulate). State: index of the next frame; chunks first, then the tail, then end.
    let start = actix_rt::time::Instant::now();
    let stream = futures_util::stream::unfold(0usize, move |i| {
        let canned = canned.clone();
        async move {
            let n = canned.chunks.len();
            if i < n {
                if i > 0 && !canned.delay.is_zero() {
                    actix_rt::time::sleep_until(start + canned.delay * i as u32).await;
                }
                Some((Ok::<Bytes, std::io::Error>(canned.chunks[i].clone()), i + 1))
            } else if i == n {
                Some((Ok(canned.tail.clone()), i + 1))
            } else {
                None
            }
        }
    });
    HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        ))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-cache")))
        .streaming(stream)
}

async fn embeddings(canned: web::Data<Canned>) -> HttpResponse {
    json_response(&canned.embeddings)
}

async fn models(canned: web::Data<Canned>) -> HttpResponse {
    json_response(&canned.models)
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    HttpResponse::NotFound()
        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static("application/json")))
        .body(format!(
            r#"{{"error":{{"message":"bench mock: no route for {} {}","type":"invalid_request_error","param":null,"code":"404"}}}}"#,
            req.method(),
            req.path().replace('"', "")
        ))
}

fn main() -> std::io::Result<()> {
    env_logger::init();
    let args = Args::parse();
    let canned = web::Data::new(Canned::new(args.chunks, args.chunk_delay_ms));
    actix_rt::System::new().block_on(async move {
        let server = HttpServer::new(move || {
            App::new()
                .app_data(canned.clone())
                .app_data(web::PayloadConfig::new(64 * 1024 * 1024))
                .route("/chat/completions", web::post().to(chat))
                .route("/v1/chat/completions", web::post().to(chat))
                .route("/embeddings", web::post().to(embeddings))
                .route("/v1/embeddings", web::post().to(embeddings))
                .route("/models", web::get().to(models))
                .route("/v1/models", web::get().to(models))
                .default_service(web::to(not_found))
        })
        .workers(args.workers.max(1))
        // Without this, actix leaves Nagle on and small SSE writes can wait for an ACK.
        .tcp_nodelay(true)
        // Long enough that a gateway's pooled connections survive the pauses between runs.
        .keep_alive(Duration::from_secs(75))
        .backlog(4096)
        .max_connection_rate(4096)
        .disable_signals()
        .bind(("127.0.0.1", args.port))?;
        let addr = server
            .addrs()
            .first()
            .copied()
            .ok_or_else(|| std::io::Error::other("no bound address"))?;
        {
            let mut out = std::io::stdout().lock();
            writeln!(out, "listening on {addr}")?;
            out.flush()?;
        }
        server.run().await
    })
}
