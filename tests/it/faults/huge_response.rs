//! An upstream whose reply is bigger than the gateway holds: refused at the limit (32 MiB for
//! a whole body, 1 MiB for one stream line), or at once when its declared length is over it.

use std::time::Instant;

use super::*;

const LIMIT: usize = 32 * 1024 * 1024;

#[actix_rt::test]
async fn a_body_over_the_limit_is_a_502_without_reading_it_all() {
    let fault = Fault::Huge {
        bytes: 4 * LIMIT,
        stream: false,
    };
    let (mock, gw) = faulty(fault, "").await;
    let message = assert_error(&ask(&gw, false).await, 502, "api_connection_error");
    assert!(message.contains("larger than"), "{message}");
    assert_released_and_counted(&gw, Some(&mock), 1).await;
}

/// Asks a mock that declares `declared` bytes with `status` and never sends them: only an
/// answer decided up front comes before the 30 s timeout. Its error message.
async fn answered_up_front(status: u16, declared: u64, expect: u16, kind: &str) -> String {
    let (mock, gw) = faulty(Fault::HugeDeclared { status, declared }, ", timeout: 30").await;
    let started = Instant::now();
    let message = assert_error(&ask(&gw, false).await, expect, kind);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert_released_and_counted(&gw, Some(&mock), 1).await;
    message
}

#[actix_rt::test]
async fn a_declared_length_over_the_limit_is_refused_before_reading() {
    let message = answered_up_front(200, 10 << 30, 502, "api_connection_error").await;
    assert!(message.contains("declared"), "{message}");
}

#[actix_rt::test]
async fn a_huge_error_body_is_read_only_to_its_first_64_kib() {
    let message = answered_up_front(500, 10 << 30, 500, "server_error").await;
    assert!(message.ends_with("a huge error"), "{message}");
}

#[actix_rt::test]
async fn a_stream_line_that_never_ends_is_cut_at_1_mib_with_an_in_band_502() {
    let fault = Fault::Huge {
        bytes: 4 * LIMIT,
        stream: true,
    };
    let (mock, gw) = faulty(fault, ", timeout: 60").await;
    let message = assert_in_band_error(&ask(&gw, true).await, 0, 502, "api_connection_error");
    assert!(message.contains("longer than"), "{message}");
    assert_released_and_counted(&gw, Some(&mock), 1).await;
}
