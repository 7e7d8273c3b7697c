//! An upstream that resets the connection in the middle of a JSON body.

use super::*;

#[actix_rt::test]
async fn a_reset_mid_body_is_a_502_and_releases_the_deployment() {
    let (mock, gw) = faulty(Fault::ResetMidBody, "").await;
    assert_error(&ask(&gw, false).await, 502, "api_connection_error");
    assert_released_and_counted(&gw, Some(&mock), 1).await;
}

#[actix_rt::test]
async fn a_body_closed_before_its_declared_length_is_a_502() {
    let (mock, gw) = faulty(Fault::ClosedEarly, "").await;
    assert_error(&ask(&gw, false).await, 502, "api_connection_error");
    assert_released_and_counted(&gw, Some(&mock), 1).await;
}

#[actix_rt::test]
async fn a_deployment_that_resets_falls_back_then_cools_down() {
    let mock = FaultyUpstream::start(Fault::ResetMidBody).await;
    assert_falls_back_then_cools(&mock.v1, "").await;
    assert_eq!(mock.accepted(), 2);
}
