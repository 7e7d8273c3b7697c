//! A raw TCP client for the gateway: it writes exactly the bytes a test gives, at the pace the
//! test chooses, and tells what came back and whether the server closed the connection.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One connection to the gateway.
pub struct RawClient {
    stream: TcpStream,
    /// `host:port`.
    pub addr: String,
    received: Vec<u8>,
    closed: bool,
}

/// The head of a POST of `length` bytes of JSON to `path` (`None`: chunked).
pub fn post_head(addr: &str, path: &str, length: Option<usize>) -> String {
    let framing = match length {
        Some(n) => format!("content-length: {n}"),
        None => "transfer-encoding: chunked".to_owned(),
    };
    format!("POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n{framing}\r\n\r\n")
}

impl RawClient {
    /// Connects to the gateway at `base` (`http://host:port`).
    pub async fn connect(base: &str) -> Self {
        let addr = base.trim_start_matches("http://").to_owned();
        let stream = TcpStream::connect(&addr).await.expect("connects");
        Self {
            stream,
            addr,
            received: Vec::new(),
            closed: false,
        }
    }

    /// Writes `bytes`; `false` once the server no longer takes them (it closed or reset).
    pub async fn send(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).await.is_ok()
    }

    /// Writes `bytes` a piece of `piece` bytes every `gap` (reading what the server says in
    /// between), until done or the server said something more or closed; whether every byte
    /// was written.
    pub async fn trickle(&mut self, bytes: &[u8], piece: usize, gap: Duration) -> bool {
        let said_before = self.received.len();
        for part in bytes.chunks(piece) {
            if !self.send(part).await {
                return false;
            }
            self.read_for(gap).await;
            if self.closed || self.received.len() > said_before {
                return false;
            }
        }
        true
    }

    /// Reads whatever arrives within `within`.
    pub async fn read_for(&mut self, within: Duration) {
        let deadline = Instant::now() + within;
        let mut buf = vec![0u8; 64 * 1024];
        while !self.closed {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.stream.read(&mut buf)).await {
                Err(_) => return,
                Ok(Ok(0) | Err(_)) => self.closed = true,
                Ok(Ok(n)) => self.received.extend_from_slice(&buf[..n]),
            }
        }
    }

    /// Reads until the server closes the connection or `within` passes; whether it closed.
    pub async fn closed_within(&mut self, within: Duration) -> bool {
        self.read_for(within).await;
        self.closed
    }

    /// Reads until the text received contains `needle` or `within` passes; whether it does.
    pub async fn received_within(&mut self, needle: &str, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while !self.text().contains(needle) && !self.closed && Instant::now() < deadline {
            self.read_for(Duration::from_millis(50)).await;
        }
        self.text().contains(needle)
    }

    /// Everything received so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.received).into_owned()
    }

    /// The status of the first response received, if its status line is in.
    pub fn status(&self) -> Option<u16> {
        let text = self.text();
        let line = text.lines().next()?;
        line.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
    }

    /// The body of the first response received (after its head), parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        let text = self.text();
        let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    }
}
