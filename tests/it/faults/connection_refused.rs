//! An upstream that refuses the connection: a 502 before any stream begins, counted, cooled.

use super::*;
use crate::support::faulty::refusing_base;

#[actix_rt::test]
async fn a_refused_connection_is_a_502_connection_error_and_counts_against_the_deployment() {
    let gw = gateway(&refusing_base().await, "").await;
    let message = assert_error(&ask(&gw, false).await, 502, "api_connection_error");
    assert!(
        message.starts_with("litellm.APIConnectionError"),
        "{message}"
    );
    assert_released_and_counted(&gw, None, 1).await;
}

#[actix_rt::test]
async fn a_refused_stream_is_a_502_before_any_event() {
    let gw = gateway(&refusing_base().await, "").await;
    assert_error(&ask(&gw, true).await, 502, "api_connection_error");
    assert_released_and_counted(&gw, None, 1).await;
}

#[actix_rt::test]
async fn a_refusing_deployment_falls_back_then_cools_down() {
    assert_falls_back_then_cools(&refusing_base().await, "").await;
}
