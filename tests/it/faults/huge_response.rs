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

#[actix_rt::test]
async fn a_declared_length_over_the_limit_is_refused_before_reading() {
    let fault = Fault::HugeDeclared {
        status: 200,
        declared: 10 << 30,
    };
    let (mock, gw) = faulty(fault, ", timeout: 30").await;
    let started = Instant::now();
    let message = assert_error(&ask(&gw, false).await, 502, "api_connection_error");
    assert!(message.contains("declared"), "{message}");
    // The mock never sends the rest: only a refusal up front answers before the timeout.
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert_released_and_counted(&gw, Some(&mock), 1).await;
}

#[actix_rt::test]
async fn a_huge_error_body_is_read_only_to_its_first_64_kib() {
    let fault = Fault::HugeDeclared {
        status: 500,
        declared: 10 << 30,
    };
    let (mock, gw) = faulty(fault, ", timeout: 30").await;
    let started = Instant::now();
    let message = assert_error(&ask(&gw, false).await, 500, "server_error");
    assert!(message.ends_with("a huge error"), "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert_released_and_counted(&gw, Some(&mock), 1).await;
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
