//! A real HTTP server on a random port speaking OpenAI's wire format: it can stream, delay,
//! fail on demand, count calls, and tell when a client dropped a stream or a delayed call.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use bytes::Bytes;
use serde_json::{json, Value};

/// How the mock answers the next requests.
#[derive(Debug, Clone)]
pub enum Behavior {
    /// A normal reply (streamed when asked), `chunks` content pieces `gap` apart.
    Normal {
        /// Content pieces in a stream.
        chunks: usize,
        /// Pause before each piece.
        gap: Duration,
        /// Include usage (in the body, or as the final chunk when asked for).
        usage: bool,
    },
    /// Answer with this status and body.
    Fail(u16, String),
    /// Answer 429 with a `retry-after` of this many seconds.
    RateLimited(u64),
    /// Wait this long before the head of the reply.
    Delay(Duration),
    /// Stream `after` chunks, then break the connection.
    BreakMidStream {
        /// Chunks sent before the break.
        after: usize,
    },
}

impl Default for Behavior {
    fn default() -> Self {
        Self::Normal {
            chunks: 3,
            gap: Duration::ZERO,
            usage: true,
        }
    }
}

/// One request the mock received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The path.
    pub path: String,
    /// The query string.
    pub query: String,
    /// Lowercase header names to values.
    pub headers: HashMap<String, String>,
    /// The JSON body.
    pub body: Value,
}

#[derive(Default)]
struct Shared {
    behavior: Mutex<Behavior>,
    calls: Mutex<Vec<Recorded>>,
    chunks_sent: AtomicUsize,
    streams_finished: AtomicUsize,
    streams_dropped: AtomicUsize,
    delays_cancelled: AtomicUsize,
}

/// The running mock; a clone controls the same server.
#[derive(Clone)]
pub struct MockUpstream {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    shared: Arc<Shared>,
    server: actix_web::dev::ServerHandle,
}

impl MockUpstream {
    /// Starts the mock on a random port.
    pub async fn start() -> Self {
        let shared = Arc::new(Shared::default());
        let data = web::Data::from(shared.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(64 * 1024 * 1024))
                .default_service(web::to(answer))
        })
        .workers(1)
        .tcp_nodelay(true)
        // A gateway that hangs up ends the call here too, so a cancelled call can be seen.
        .h1_allow_half_closed(false)
        .disable_signals()
        .bind(("127.0.0.1", 0))
        .unwrap();
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        actix_rt::spawn(server);
        Self {
            base: format!("http://127.0.0.1:{port}"),
            shared,
            server: handle,
        }
    }

    /// `base` + `/v1`, the usual `api_base`.
    pub fn v1(&self) -> String {
        format!("{}/v1", self.base)
    }

    /// Sets how the next requests are answered.
    pub fn set(&self, behavior: Behavior) {
        *self.shared.behavior.lock().unwrap() = behavior;
    }

    /// Requests received so far.
    pub fn calls(&self) -> Vec<Recorded> {
        self.shared.calls.lock().unwrap().clone()
    }

    /// How many requests were received.
    pub fn call_count(&self) -> usize {
        self.shared.calls.lock().unwrap().len()
    }

    /// The last request received.
    pub fn last(&self) -> Recorded {
        self.calls().pop().expect("the mock received no request")
    }

    /// Stream chunks written so far.
    pub fn chunks_sent(&self) -> usize {
        self.shared.chunks_sent.load(Ordering::SeqCst)
    }

    /// Streams dropped by the client before they finished.
    pub fn streams_dropped(&self) -> usize {
        self.shared.streams_dropped.load(Ordering::SeqCst)
    }

    /// Calls in a `Delay` whose client hung up before the reply's head was sent.
    pub fn delays_cancelled(&self) -> usize {
        self.shared.delays_cancelled.load(Ordering::SeqCst)
    }

    /// Stops the server.
    pub async fn stop(&self) {
        self.server.stop(false).await;
    }
}

/// Counts a delayed call as cancelled if it is dropped before its delay ends.
struct DelayGuard {
    shared: Arc<Shared>,
    over: bool,
}

impl Drop for DelayGuard {
    fn drop(&mut self) {
        if !self.over {
            self.shared.delays_cancelled.fetch_add(1, Ordering::SeqCst);
        }
    }
}

fn chunk(model: &str, choice: Value) -> Bytes {
    let c = json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1, "model": model, "choices": [choice]});
    Bytes::from(format!("data: {c}\n\n"))
}

/// Counts a stream as dropped unless it was marked finished.
struct StreamGuard {
    shared: Arc<Shared>,
    finished: bool,
}

impl StreamGuard {
    fn finish(&mut self) {
        self.finished = true;
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let counter = if self.finished {
            &self.shared.streams_finished
        } else {
            &self.shared.streams_dropped
        };
        counter.fetch_add(1, Ordering::SeqCst);
    }
}

async fn answer(req: HttpRequest, body: Bytes, shared: web::Data<Shared>) -> HttpResponse {
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                v.to_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    shared.calls.lock().unwrap().push(Recorded {
        path: req.path().to_owned(),
        query: req.query_string().to_owned(),
        headers,
        body: parsed.clone(),
    });
    let behavior = shared.behavior.lock().unwrap().clone();
    let model = parsed["model"].as_str().unwrap_or("mock-model").to_owned();
    let (chunks, gap, usage) = match behavior {
        Behavior::Fail(status, body) => {
            return HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
                .insert_header(("x-mock-header", "failed"))
                .content_type("application/json")
                .body(body)
        }
        Behavior::RateLimited(secs) => {
            return HttpResponse::TooManyRequests()
                .insert_header(("retry-after", secs.to_string()))
                .content_type("application/json")
                .body(r#"{"error":{"message":"Rate limit reached","type":"requests"}}"#)
        }
        Behavior::Delay(d) => {
            let mut guard = DelayGuard {
                shared: shared.clone().into_inner(),
                over: false,
            };
            actix_rt::time::sleep(d).await;
            guard.over = true;
            (3, Duration::ZERO, true)
        }
        Behavior::BreakMidStream { after } => (after, Duration::from_millis(30), false),
        Behavior::Normal { chunks, gap, usage } => (chunks, gap, usage),
    };
    let breaks = matches!(behavior, Behavior::BreakMidStream { .. });
    let path = req.path();
    if path.ends_with("/embeddings") {
        return HttpResponse::Ok().json(json!({"object": "list", "model": model,
            "data": [{"object": "embedding", "index": 0, "embedding": [0.5, -0.25, 1.0]}],
            "usage": {"prompt_tokens": 4, "total_tokens": 4}}));
    }
    let text_api = path.ends_with("/completions") && !path.ends_with("/chat/completions");
    if parsed["stream"] == json!(true) {
        let include_usage = usage && parsed["stream_options"]["include_usage"] == json!(true);
        let guard = StreamGuard {
            shared: shared.clone().into_inner(),
            finished: false,
        };
        let state = (0usize, guard);
        let stream = futures_util::stream::unfold(state, move |(i, mut guard)| {
            let model = model.clone();
            async move {
                if i > chunks + 2 {
                    guard.finish();
                    return None;
                }
                if i <= chunks && !gap.is_zero() {
                    actix_rt::time::sleep(gap).await;
                }
                let item = if i < chunks {
                    guard.shared.chunks_sent.fetch_add(1, Ordering::SeqCst);
                    Ok(if text_api {
                        let c = json!({"id": "cmpl-mock", "object": "text_completion", "created": 1, "model": model,
                            "choices": [{"text": format!("piece{i} "), "index": 0, "logprobs": null, "finish_reason": null}]});
                        Bytes::from(format!("data: {c}\n\n"))
                    } else {
                        chunk(
                            &model,
                            json!({"index": 0, "delta": {"content": format!("piece{i} ")}, "finish_reason": null}),
                        )
                    })
                } else if i == chunks && breaks {
                    Err(actix_web::error::ErrorInternalServerError(
                        "broken on purpose",
                    ))
                } else if i == chunks {
                    Ok(chunk(
                        &model,
                        json!({"index": 0, "delta": {}, "finish_reason": "stop"}),
                    ))
                } else if i == chunks + 1 {
                    if include_usage {
                        let c = json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1, "model": model, "choices": [],
                            "usage": {"prompt_tokens": 7, "completion_tokens": chunks, "total_tokens": 7 + chunks}});
                        Ok(Bytes::from(format!("data: {c}\n\n")))
                    } else {
                        Ok(Bytes::new())
                    }
                } else {
                    Ok(Bytes::from_static(b"data: [DONE]\n\n"))
                };
                Some((item, (i + 1, guard)))
            }
        });
        return HttpResponse::Ok()
            .insert_header(("x-mock-header", "streamed"))
            .content_type("text/event-stream")
            .streaming(stream);
    }
    let usage_json = if usage {
        json!({"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10})
    } else {
        Value::Null
    };
    let reply = if text_api {
        json!({"id": "cmpl-mock", "object": "text_completion", "created": 1, "model": model,
            "choices": [{"text": "mock says hi", "index": 0, "logprobs": null, "finish_reason": "stop"}], "usage": usage_json})
    } else {
        json!({"id": "chatcmpl-mock", "object": "chat.completion", "created": 1, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "mock says hi"}, "finish_reason": "stop"}], "usage": usage_json})
    };
    HttpResponse::Ok()
        .insert_header(("x-mock-header", "plain"))
        .json(reply)
}
