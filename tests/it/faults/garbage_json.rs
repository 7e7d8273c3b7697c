//! An upstream that answers 200 with garbage, or with JSON cut short.

use super::*;

#[actix_rt::test]
async fn a_200_that_is_not_json_is_a_502_in_the_error_shape() {
    let (mock, gw) = faulty(Fault::Garbage, "").await;
    let message = assert_error(&ask(&gw, false).await, 502, "api_connection_error");
    assert!(message.contains("unreadable reply"), "{message}");
    assert_released_and_counted(&gw, Some(&mock), 1).await;
}

#[actix_rt::test]
async fn a_200_with_truncated_json_is_a_502() {
    let (mock, gw) = faulty(Fault::TruncatedJson, "").await;
    assert_error(&ask(&gw, false).await, 502, "api_connection_error");
    assert_released_and_counted(&gw, Some(&mock), 1).await;
}

#[actix_rt::test]
async fn a_garbage_stream_that_ends_is_an_in_band_502() {
    let (mock, gw) = faulty(Fault::Garbage, "").await;
    assert_in_band_error(&ask(&gw, true).await, 0, 502, "api_connection_error");
    assert_released_and_counted(&gw, Some(&mock), 1).await;
}

#[actix_rt::test]
async fn a_deployment_answering_garbage_falls_back_then_cools_down() {
    let mock = FaultyUpstream::start(Fault::Garbage).await;
    assert_falls_back_then_cools(&mock.v1, "").await;
    assert_eq!(mock.accepted(), 2);
}
