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

async fn every_view(db: &TestDb) {
    let Fixture { gw, .. } = fixture(Some(db), "").await;
    admin_post(
        &gw,
        "/team/new",
        json!({"team_id": "t", "team_alias": "Alpha"}),
    )
    .await;
    admin_post(
        &gw,
        "/user/new",
        json!({"user_id": "u", "auto_create_key": false}),
    )
    .await;
    let key = key_with(
        &gw,
        json!({"team_id": "t", "user_id": "u", "key_alias": "k"}),
    )
    .await;
    ok_chat(&gw, &key, "gpt-test", tagged(&["x"])).await;
    ok_chat(&gw, &key, "other", json!({"user": "c"})).await;
    let keys = admin_get(&gw, "/global/spend/keys").await;
    assert_eq!(keys[0]["key_alias"], "k");
    assert_close(
        keys[0]["total_spend"].as_f64().unwrap(),
        2.0 * COST,
        "the key",
    );
    let models = admin_get(&gw, "/global/spend/models").await;
    assert_eq!(models.as_array().unwrap().len(), 2);
    assert_eq!(models[0]["total_tokens"], 10);
    let teams = admin_get(&gw, "/global/spend/teams").await;
    assert_eq!(teams["total_spend_per_team"][0]["team_id"], "Alpha");
    let tags = admin_get(&gw, "/spend/tags").await;
    assert_eq!(tags[0]["individual_request_tag"], "x");
    for path in [
        "/user/daily/activity?user_id=u",
        "/team/daily/activity?team_ids=t",
        "/end_user/daily/activity?end_user_ids=c",
        "/tag/daily/activity?tags=x",
    ] {
        let day = admin_get(&gw, path).await;
        let want = if path.contains("end_user") || path.contains("tag") {
            1
        } else {
            2
        };
        assert_eq!(day["metadata"]["total_api_requests"], want, "{path}: {day}");
        assert_eq!(day["results"].as_array().unwrap().len(), 1, "{path}");
    }
}

#[actix_rt::test]
async fn every_spend_view_reads_the_same_on_sqlite_and_postgres() {
    for db in crate::support::db::both() {
        every_view(&db).await;
    }
}
