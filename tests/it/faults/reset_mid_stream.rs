//! An upstream that resets the connection after some SSE chunks.

use super::*;

#[actix_rt::test]
async fn a_reset_mid_stream_ends_the_stream_with_one_in_band_502() {
    let (mock, gw) = faulty(Fault::ResetMidStream { chunks: 2 }, "").await;
    let message = assert_in_band_error(&ask(&gw, true).await, 2, 502, "api_connection_error");
    assert!(message.contains("stream interrupted"), "{message}");
    assert_released_and_counted(&gw, Some(&mock), 1).await;
}

#[actix_rt::test]
async fn a_reset_before_the_first_chunk_is_an_in_band_502_too() {
    let (mock, gw) = faulty(Fault::ResetMidStream { chunks: 0 }, "").await;
    assert_in_band_error(&ask(&gw, true).await, 0, 502, "api_connection_error");
    assert_released_and_counted(&gw, Some(&mock), 1).await;
}
