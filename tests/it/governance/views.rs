//! The spend views: top keys and models over the last 30 days.

use serde_json::json;

use super::*;

#[actix_rt::test]
async fn the_top_keys_and_models_are_ranked_by_spend() {
    let Fixture { gw, .. } = fixture(None, "").await;
    let big = key_with(&gw, json!({"key_alias": "big"})).await;
    let small = key_with(&gw, json!({"key_alias": "small"})).await;
    for _ in 0..3 {
        ok_chat(&gw, &big, "gpt-test", json!({})).await;
    }
    ok_chat(&gw, &small, "other", json!({})).await;
    let keys = admin_get(&gw, "/global/spend/keys?limit=5").await;
    let keys = keys.as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0]["key_alias"], "big");
    assert_close(keys[0]["total_spend"].as_f64().unwrap(), 3.0 * COST, "big");
    assert_eq!(keys[1]["key_alias"], "small");
    let one = admin_get(&gw, "/global/spend/keys?limit=1").await;
    assert_eq!(one.as_array().unwrap().len(), 1);
    let models = admin_get(&gw, "/global/spend/models").await;
    assert_eq!(models[0]["model"], "gpt-test");
    assert_eq!(models[0]["total_tokens"], 30);
    assert_eq!(models[1]["model"], "other");
    refused(
        &gw.get("/global/spend/keys?limit=0", Some(MASTER)).await,
        400,
        "invalid_request_error",
    );
    refused(
        &gw.get("/global/spend/keys", Some(&small)).await,
        401,
        "auth_error",
    );
}
