//! A raw-TCP upstream that misbehaves on command: it reads each HTTP request, then answers with
//! the scripted fault (a reset, garbage, a cut body, an endless or dripping stream, a huge
//! reply) and counts the connections still open.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the next replies misbehave.
#[derive(Debug, Clone)]
pub enum Fault {
    /// A 200 JSON head declaring the whole reply, half of it, then a reset (`SO_LINGER` 0).
    ResetMidBody,
    /// An SSE head and `chunks` chunks, then a reset.
    ResetMidStream {
        /// Chunks sent before the reset.
        chunks: usize,
    },
    /// A 200 whose (honestly sized) body is not JSON.
    Garbage,
    /// A 200 whose complete HTTP body is JSON cut in half.
    TruncatedJson,
    /// A 200 declaring the whole reply, half of it, then a clean close.
    ClosedEarly,
    /// An SSE head and one chunk, then a keep-alive comment every `every`, never `[DONE]`.
    Endless {
        /// The gap between comments.
        every: Duration,
    },
    /// A 200 head, then the body (SSE when `stream`) one byte every `every`.
    Drip {
        /// The gap between bytes.
        every: Duration,
        /// An SSE body rather than a JSON one.
        stream: bool,
    },
    /// A 200 chunked body of `bytes` bytes: padded JSON, or (when `stream`) one SSE line
    /// that never ends.
    Huge {
        /// The body's size.
        bytes: usize,
        /// An SSE line rather than a JSON body.
        stream: bool,
    },
    /// A `status` head declaring a `Content-Length` of `declared`, 100 KiB of a JSON error, then
    /// silence while the connection stays open.
    HugeDeclared {
        /// The status sent.
        status: u16,
        /// The length declared.
        declared: u64,
    },
}

#[derive(Default)]
struct Shared {
    fault: Mutex<Option<Fault>>,
    accepted: AtomicUsize,
    open: AtomicUsize,
}

/// The running mock.
pub struct FaultyUpstream {
    /// `http://127.0.0.1:PORT/v1`, the `api_base`.
    pub v1: String,
    shared: Arc<Shared>,
}

/// An `api_base` on a port where nothing listens: connections are refused.
pub async fn refusing_base() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}/v1")
}

const REPLY: &str = r#"{"id":"chatcmpl-f","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"never whole"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#;
const CHUNK: &str = r#"data: {"id":"chatcmpl-f","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"piece "},"finish_reason":null}]}"#;

impl FaultyUpstream {
    /// Starts the mock on a random port with `fault`.
    pub async fn start(fault: Fault) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared::default());
        *shared.fault.lock().unwrap() = Some(fault);
        let serving = shared.clone();
        actix_rt::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                serving.accepted.fetch_add(1, Ordering::SeqCst);
                serving.open.fetch_add(1, Ordering::SeqCst);
                let shared = serving.clone();
                actix_rt::spawn(async move {
                    serve(socket, &shared).await;
                    shared.open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Self {
            v1: format!("http://127.0.0.1:{port}/v1"),
            shared,
        }
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Connections still open (the gateway has not closed them).
    pub fn open(&self) -> usize {
        self.shared.open.load(Ordering::SeqCst)
    }
}

/// Reads one request's head and body; `None` when the peer closed first.
async fn read_request(socket: &mut TcpStream) -> Option<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = socket.read(&mut chunk).await.ok().filter(|&n| n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = socket.read(&mut chunk).await.ok().filter(|&n| n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(())
}

fn head(status: u16, content_type: &str, length: Option<u64>) -> String {
    let framing = length.map_or_else(
        || "transfer-encoding: chunked".to_owned(),
        |n| format!("content-length: {n}"),
    );
    // `connection: close` keeps each connection to one reply, so none waits in the pool.
    format!(
        "HTTP/1.1 {status} Fault\r\ncontent-type: {content_type}\r\n{framing}\r\nconnection: close\r\n\r\n"
    )
}

fn chunked(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

/// Answers one connection with the fault, then waits for the gateway to close it.
async fn serve(mut socket: TcpStream, shared: &Shared) {
    if read_request(&mut socket).await.is_none() {
        return;
    }
    let fault = shared
        .fault
        .lock()
        .unwrap()
        .clone()
        .expect("a fault is set");
    let (mut reader, mut writer) = socket.into_split();
    let misbehave = async {
        if act(&fault, &mut writer).await {
            // Hold the connection until the gateway closes it.
            std::future::pending::<()>().await;
        }
    };
    let closed = async {
        let mut sink = [0u8; 1024];
        while reader.read(&mut sink).await.is_ok_and(|n| n > 0) {}
    };
    tokio::select! {
        () = misbehave => {}
        () = closed => {}
    }
    if matches!(fault, Fault::ResetMidBody | Fault::ResetMidStream { .. }) {
        if let Ok(socket) = reader.reunite(writer) {
            let _ = socket.set_zero_linger();
        }
    }
}

/// Writes the fault's reply; false when the connection is to be reset now.
async fn act(fault: &Fault, w: &mut tokio::net::tcp::OwnedWriteHalf) -> bool {
    let sse = "text/event-stream";
    let json = "application/json";
    let reply = REPLY.as_bytes();
    let half = &reply[..reply.len() / 2];
    let wrote = match fault {
        Fault::ResetMidBody | Fault::ClosedEarly => {
            let h = head(200, json, Some(reply.len() as u64));
            let ok = w.write_all(h.as_bytes()).await.is_ok() && w.write_all(half).await.is_ok();
            if ok && matches!(fault, Fault::ClosedEarly) {
                let _ = w.shutdown().await;
                return true;
            }
            return false;
        }
        Fault::ResetMidStream { chunks } => {
            let mut out = head(200, sse, None).into_bytes();
            for _ in 0..*chunks {
                out.extend(chunked(format!("{CHUNK}\n\n").as_bytes()));
            }
            let _ = w.write_all(&out).await;
            // Let the chunks reach the gateway before the reset overtakes them.
            actix_rt::time::sleep(Duration::from_millis(300)).await;
            return false;
        }
        Fault::Garbage => {
            let body = b"<html><body>502 Bad Gateway (nginx)</body></html>";
            let h = head(200, json, Some(body.len() as u64));
            w.write_all(&[h.as_bytes(), body].concat()).await
        }
        Fault::TruncatedJson => {
            let out = [
                head(200, json, None).as_bytes(),
                &chunked(half),
                b"0\r\n\r\n",
            ]
            .concat();
            w.write_all(&out).await
        }
        Fault::Endless { every } => {
            let first = [
                head(200, sse, None).into_bytes(),
                chunked(format!("{CHUNK}\n\n").as_bytes()),
            ]
            .concat();
            let mut ok = w.write_all(&first).await.is_ok();
            while ok {
                actix_rt::time::sleep(*every).await;
                ok = w.write_all(&chunked(b": keep-alive\n\n")).await.is_ok();
            }
            return true;
        }
        Fault::Drip { every, stream } => {
            let (content_type, body) = if *stream {
                (sse, format!("{CHUNK}\n\ndata: [DONE]\n\n").into_bytes())
            } else {
                (json, reply.to_vec())
            };
            if w.write_all(head(200, content_type, None).as_bytes())
                .await
                .is_err()
            {
                return true;
            }
            for byte in body {
                actix_rt::time::sleep(*every).await;
                if w.write_all(&chunked(&[byte])).await.is_err() {
                    break;
                }
            }
            return true;
        }
        Fault::Huge { bytes, stream } => {
            let (content_type, start) = if *stream {
                (sse, &b"data: {\"pad\":\""[..])
            } else {
                (json, &b"{\"pad\":\""[..])
            };
            let mut ok = w
                .write_all(head(200, content_type, None).as_bytes())
                .await
                .is_ok()
                && w.write_all(&chunked(start)).await.is_ok();
            let piece = chunked(&[b'a'; 64 * 1024]);
            let mut sent = start.len();
            while ok && sent < *bytes {
                ok = w.write_all(&piece).await.is_ok();
                sent += 64 * 1024;
            }
            return true;
        }
        Fault::HugeDeclared { status, declared } => {
            let mut body =
                br#"{"error":{"message":"a huge error","type":"server_error"}}"#.to_vec();
            body.resize(100 * 1024, b' ');
            let h = head(*status, json, Some(*declared));
            let _ = w.write_all(&[h.as_bytes(), &body].concat()).await;
            return true;
        }
    };
    if wrote.is_ok() {
        let _ = w.shutdown().await;
    }
    true
}
