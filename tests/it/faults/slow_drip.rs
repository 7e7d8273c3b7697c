//! An upstream that drips its reply one byte every 200 ms (a minute for the whole reply): cut
//! at the deployment's `timeout`.

use std::time::Instant;

use super::*;

const DRIP: Duration = Duration::from_millis(200);

#[actix_rt::test]
async fn a_slow_drip_is_a_408_at_the_timeout() {
    let (mock, gw) = faulty(
        Fault::Drip {
            every: DRIP,
            stream: false,
        },
        ", timeout: 2",
    )
    .await;
    let started = Instant::now();
    let message = assert_error(&ask(&gw, false).await, 408, "timeout");
    let took = started.elapsed();
    assert!(message.starts_with("litellm.Timeout"), "{message}");
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(15),
        "{took:?}"
    );
    assert_released_and_counted(&gw, Some(&mock), 1).await;
}

#[actix_rt::test]
async fn a_slowly_dripping_stream_ends_with_an_in_band_408_at_the_timeout() {
    let (mock, gw) = faulty(
        Fault::Drip {
            every: DRIP,
            stream: true,
        },
        ", timeout: 2",
    )
    .await;
    let started = Instant::now();
    assert_in_band_error(&ask(&gw, true).await, 0, 408, "timeout");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(15),
        "{took:?}"
    );
    assert_released_and_counted(&gw, Some(&mock), 1).await;
}

#[actix_rt::test]
async fn a_dripping_deployment_falls_back_then_cools_down() {
    let mock = FaultyUpstream::start(Fault::Drip {
        every: DRIP,
        stream: false,
    })
    .await;
    assert_falls_back_then_cools(&mock.v1, ", timeout: 1").await;
    assert_eq!(mock.accepted(), 2);
}
