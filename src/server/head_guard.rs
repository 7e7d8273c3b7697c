//! A bound on every request head of a connection, not only its first: the stream under actix's
//! HTTP/1 dispatcher is wrapped, and a head that has started but not ended within
//! `client_header_timeout` is answered 408 and the connection closed.
//!
//! actix arms its own head timer only for a connection's first request, and its keep-alive
//! timer is cleared by any byte read, so without this a client could trickle a second request's
//! head into a kept-alive connection for ever.
//!
//! The guard follows the bytes, not the parser: a head starts with the first byte read after a
//! response began (or on a new connection) and ends at its blank line (`\r\n\r\n`); a response
//! starts with a write that begins with a final (non-1xx) status line.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::web::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Where a connection is between its requests and responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No byte of a new head read yet (after a response began, or on a new connection).
    AwaitingHead,
    /// A head has started: it must end before the deadline.
    InHead,
    /// The head ended (its body, if any, is bounded where it is read).
    AfterHead,
    /// The deadline passed: the refusal was sent; reads end, writes are dropped.
    Expired,
}

/// A connection's stream, with its heads bounded in time.
pub struct HeadGuarded<T> {
    io: T,
    limit: Duration,
    phase: Phase,
    /// How many bytes of `\r\n\r\n` the head read so far ends with.
    blank_line: u8,
    /// Whether a response was written since the current head started.
    wrote_in_head: bool,
    deadline: Pin<Box<Sleep>>,
    /// The whole 408 response sent when a head is too slow.
    refusal: Bytes,
}

impl<T> HeadGuarded<T> {
    /// Wraps `io`; each head must arrive whole within `limit`, or `refusal` is written and the
    /// connection ends.
    pub fn new(io: T, limit: Duration, refusal: Bytes) -> Self {
        Self {
            io,
            limit,
            phase: Phase::AwaitingHead,
            blank_line: 0,
            wrote_in_head: false,
            deadline: Box::pin(tokio::time::sleep_until(Instant::now() + limit)),
            refusal,
        }
    }

    /// Follows bytes just read: a new head starts the clock, a blank line stops it.
    fn on_read(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if self.phase == Phase::AwaitingHead {
            self.phase = Phase::InHead;
            self.blank_line = 0;
            self.wrote_in_head = false;
            self.deadline.as_mut().reset(Instant::now() + self.limit);
        }
        if self.phase != Phase::InHead {
            return;
        }
        for &b in bytes {
            self.blank_line = match (self.blank_line, b) {
                (0 | 2, b'\r') => self.blank_line + 1,
                (1 | 3, b'\n') => self.blank_line + 1,
                (_, b'\r') => 1,
                _ => 0,
            };
            if self.blank_line == 4 {
                self.phase = Phase::AfterHead;
                return;
            }
        }
    }

    /// Follows bytes about to be written: a final response's status line ends the request.
    fn on_write(&mut self, bytes: &[u8]) {
        if self.phase == Phase::InHead {
            self.wrote_in_head = true;
        }
        if starts_final_response(bytes) {
            self.phase = Phase::AwaitingHead;
        }
    }
}

/// Whether `bytes` begin an HTTP/1 response with a final status (`100 Continue` does not end a
/// request: its body follows).
fn starts_final_response(bytes: &[u8]) -> bool {
    bytes.len() > 9
        && (bytes.starts_with(b"HTTP/1.1 ") || bytes.starts_with(b"HTTP/1.0 "))
        && bytes[9] != b'1'
}

/// The 408 sent for a slow head, whole, with `body` (the contract's error body).
pub fn refusal(body: &str) -> Bytes {
    Bytes::from(format!(
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    ))
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for HeadGuarded<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.phase {
            Phase::Expired => return Poll::Ready(Ok(())),
            Phase::InHead if this.deadline.as_mut().poll(cx).is_ready() => {
                this.phase = Phase::Expired;
                // Nothing of a response is on the wire: the client is told why. (A response
                // under way, which only a pipelining client could see here, is just cut.)
                if !this.wrote_in_head {
                    let _ = Pin::new(&mut this.io).poll_write(cx, &this.refusal);
                    let _ = Pin::new(&mut this.io).poll_flush(cx);
                }
                log::debug!("a request head did not arrive within {:?}", this.limit);
                return Poll::Ready(Ok(()));
            }
            _ => {}
        }
        let before = buf.filled().len();
        let read = Pin::new(&mut this.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = read {
            this.on_read(&buf.filled()[before..]);
        }
        read
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for HeadGuarded<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.phase == Phase::Expired {
            return Poll::Ready(Ok(buf.len()));
        }
        this.on_write(buf);
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.phase == Phase::Expired {
            return Poll::Ready(Ok(bufs.iter().map(|b| b.len()).sum()));
        }
        if let Some(first) = bufs.iter().find(|b| !b.is_empty()) {
            this.on_write(first);
        }
        Pin::new(&mut this.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const LIMIT: Duration = Duration::from_secs(1);

    fn guarded() -> (
        HeadGuarded<tokio::io::DuplexStream>,
        tokio::io::DuplexStream,
    ) {
        let (server, client) = tokio::io::duplex(64 * 1024);
        (
            HeadGuarded::new(server, LIMIT, refusal("{\"error\":{}}")),
            client,
        )
    }

    /// Reads what is there within a moment: the bytes, and whether the stream ended.
    async fn read_some(io: &mut (impl AsyncRead + Unpin)) -> (Vec<u8>, bool) {
        let mut buf = vec![0u8; 4096];
        match tokio::time::timeout(Duration::from_millis(10), io.read(&mut buf)).await {
            Ok(Ok(0)) => (Vec::new(), true),
            Ok(Ok(n)) => (buf[..n].to_vec(), false),
            Ok(Err(e)) => panic!("{e}"),
            Err(_) => (Vec::new(), false),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn requests_whose_heads_arrive_in_time_pass_through_untouched() {
        let (mut server, mut client) = guarded();
        for _ in 0..3 {
            client
                .write_all(b"GET / HTTP/1.1\r\nhost: a\r\n")
                .await
                .unwrap();
            tokio::time::sleep(LIMIT / 2).await;
            client.write_all(b"\r\n").await.unwrap();
            let (got, ended) = read_some(&mut server).await;
            assert!(!ended);
            assert!(got.ends_with(b"\r\n\r\n"), "{got:?}");
            tokio::time::sleep(LIMIT * 3).await;
            server.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.unwrap();
            assert!(read_some(&mut client).await.0.starts_with(b"HTTP/1.1 200"));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_second_head_that_trickles_past_the_limit_gets_the_refusal_and_the_end() {
        let (mut server, mut client) = guarded();
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        read_some(&mut server).await;
        server.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.unwrap();
        read_some(&mut client).await;
        // The idle time between requests is not the head's (keep-alive bounds it).
        tokio::time::sleep(LIMIT * 5).await;
        client.write_all(b"GET / HT").await.unwrap();
        let (got, ended) = read_some(&mut server).await;
        assert_eq!((got.as_slice(), ended), (&b"GET / HT"[..], false));
        tokio::time::sleep(LIMIT).await;
        let (_, ended) = read_some(&mut server).await;
        assert!(ended, "the slow head was not cut");
        let (said, _) = read_some(&mut client).await;
        assert!(said.starts_with(b"HTTP/1.1 408 "), "{said:?}");
        // What the dispatcher writes after the cut is dropped.
        server.write_all(b"HTTP/1.1 400 Bad\r\n\r\n").await.unwrap();
        assert!(read_some(&mut client).await.0.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_after_100_continue_is_not_taken_for_a_head() {
        let (mut server, mut client) = guarded();
        client
            .write_all(b"POST / HTTP/1.1\r\nexpect: 100-continue\r\ncontent-length: 4\r\n\r\n")
            .await
            .unwrap();
        read_some(&mut server).await;
        server
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .await
            .unwrap();
        client.write_all(b"ab").await.unwrap();
        read_some(&mut server).await;
        tokio::time::sleep(LIMIT * 3).await;
        client.write_all(b"cd").await.unwrap();
        let (got, ended) = read_some(&mut server).await;
        assert_eq!((got.as_slice(), ended), (&b"cd"[..], false));
    }

    #[test]
    fn only_a_final_status_line_starts_a_response() {
        assert!(starts_final_response(b"HTTP/1.1 200 OK\r\n"));
        assert!(starts_final_response(b"HTTP/1.0 408 Request Timeout\r\n"));
        assert!(!starts_final_response(b"HTTP/1.1 100 Continue\r\n"));
        assert!(!starts_final_response(b"data: {\"HTTP/1.1 200\"}\n\n"));
    }
}
