//! An SSE stream that keeps sending keep-alive comments and never `[DONE]`: cut at the
//! deployment's `timeout` with an in-band timeout error.

use std::time::Instant;

use super::*;

#[actix_rt::test]
async fn an_endless_stream_is_cut_at_the_timeout_with_an_in_band_408() {
    let every = Duration::from_millis(100);
    let (mock, gw) = faulty(Fault::Endless { every }, ", timeout: 2").await;
    let started = Instant::now();
    let message = assert_in_band_error(&ask(&gw, true).await, 1, 408, "timeout");
    let took = started.elapsed();
    assert!(message.starts_with("litellm.Timeout"), "{message}");
    // Never before the bound; well before a loaded machine's slack runs out (the upstream
    // itself would never stop).
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(15),
        "{took:?}"
    );
    assert_released_and_counted(&gw, Some(&mock), 1).await;
}
