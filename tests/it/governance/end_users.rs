//! End users (the request's `user`): the API, their budgets, limits and blocking whatever key
//! sends them, the default budget, and their spend tracked from their first request.

use serde_json::json;

use super::*;
use crate::support::db::both;

async fn lifecycle(db: &TestDb) {
    let Fixture { gw, .. } = fixture(Some(db), "").await;
    let made = admin_post(
        &gw,
        "/end_user/new",
        json!({"user_id": "cust-1", "alias": "Acme", "max_budget": 10.0, "rpm_limit": 100,
               "allowed_model_region": "eu", "default_model": "gpt-test"}),
    )
    .await;
    assert_eq!(made["user_id"], "cust-1");
    assert_eq!(made["alias"], "Acme");
    assert_eq!(made["allowed_model_region"], "eu");
    assert_eq!(made["litellm_budget_table"]["max_budget"], 10.0);
    let dup = gw
        .post("/end_user/new", Some(MASTER), &json!({"user_id": "cust-1"}))
        .await;
    refused(&dup, 400, "invalid_request_error");

    ok_chat(&gw, MASTER, "gpt-test", json!({"user": "cust-1"})).await;
    let info = admin_get(&gw, "/end_user/info?end_user_id=cust-1").await;
    assert_close(info["spend"].as_f64().unwrap(), COST, "live end user spend");
    // LiteLLM's customer routes are the same.
    let same = admin_get(&gw, "/customer/info?end_user_id=cust-1").await;
    assert_eq!(same["alias"], "Acme");

    let updated = admin_post(
        &gw,
        "/end_user/update",
        json!({"user_id": "cust-1", "alias": "Acme Ltd"}),
    )
    .await;
    assert_eq!(updated["alias"], "Acme Ltd");

    // An end user nobody registered is known by their spend.
    ok_chat(&gw, MASTER, "gpt-test", json!({"user": "walk-in"})).await;
    flush(&gw).await;
    let walk_in = admin_get(&gw, "/end_user/info?end_user_id=walk-in").await;
    assert_close(
        walk_in["spend"].as_f64().unwrap(),
        COST,
        "an unregistered end user's spend",
    );
    let listed = admin_get(&gw, "/end_user/list").await;
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["cust-1", "walk-in"]);
    // The spend log names the end user.
    let logs = admin_get(&gw, "/spend/logs").await;
    assert!(
        logs.as_array()
            .unwrap()
            .iter()
            .any(|l| l["end_user"] == "walk-in"),
        "{logs}"
    );

    let gone = admin_post(&gw, "/end_user/delete", json!({"user_ids": ["cust-1"]})).await;
    assert_eq!(gone["deleted_end_users"], json!(["cust-1"]));
    refused(
        &gw.get("/end_user/info?end_user_id=cust-1", Some(MASTER))
            .await,
        404,
        "not_found_error",
    );
}

#[actix_rt::test]
async fn the_end_user_api_manages_end_users_and_tracks_unregistered_ones_on_sqlite_and_postgres() {
    for db in both() {
        lifecycle(&db).await;
    }
}

async fn end_user_budget(db: &TestDb) {
    let Fixture { gw, .. } = fixture(Some(db), "").await;
    admin_post(
        &gw,
        "/end_user/new",
        json!({"user_id": "c", "max_budget": COST * 1.5}),
    )
    .await;
    let a = key_with(&gw, json!({"max_budget": 50.0})).await;
    let b = key_with(&gw, json!({})).await;
    ok_chat(&gw, &a, "gpt-test", json!({"user": "c"})).await;
    ok_chat(&gw, &b, "gpt-test", json!({"user": "c"})).await;
    // Any key, and the master key, sending this end user is refused; others go on.
    for key in [a.as_str(), b.as_str(), MASTER] {
        let message = refused(
            &chat(&gw, key, "gpt-test", json!({"user": "c"})).await,
            400,
            "budget_exceeded",
        );
        assert!(message.contains("end user c"), "{message}");
    }
    ok_chat(&gw, &a, "gpt-test", json!({"user": "someone-else"})).await;
    ok_chat(&gw, &a, "gpt-test", json!({})).await;
}

#[actix_rt::test]
async fn an_end_users_budget_refuses_them_whatever_key_sends_them_on_sqlite_and_postgres() {
    for db in both() {
        end_user_budget(&db).await;
    }
}

#[actix_rt::test]
async fn a_blocked_end_user_is_refused_until_unblocked_and_their_rpm_limit_holds() {
    let Fixture { gw, .. } = fixture(None, "").await;
    admin_post(
        &gw,
        "/end_user/new",
        json!({"user_id": "c", "rpm_limit": 1}),
    )
    .await;
    ok_chat(&gw, MASTER, "gpt-test", json!({"user": "c"})).await;
    let message = refused(
        &chat(&gw, MASTER, "gpt-test", json!({"user": "c"})).await,
        429,
        "rate_limit_error",
    );
    assert!(message.contains("end user c"), "{message}");
    admin_post(&gw, "/end_user/new", json!({"user_id": "d"})).await;
    admin_post(&gw, "/end_user/block", json!({"user_ids": ["d"]})).await;
    let message = refused(
        &chat(&gw, MASTER, "gpt-test", json!({"user": "d"})).await,
        401,
        "auth_error",
    );
    assert!(message.contains("end user d is blocked"), "{message}");
    admin_post(&gw, "/customer/unblock", json!({"user_ids": ["d"]})).await;
    ok_chat(&gw, MASTER, "gpt-test", json!({"user": "d"})).await;
}

#[actix_rt::test]
async fn max_end_user_budget_holds_every_end_user_without_a_budget_of_their_own() {
    let more = format!("litellm_settings:\n  max_end_user_budget: {}\n", COST * 0.5);
    let Fixture { gw, .. } = fixture(None, &more).await;
    let key = key_with(&gw, json!({})).await;
    ok_chat(&gw, &key, "gpt-test", json!({"user": "anyone"})).await;
    refused(
        &chat(&gw, &key, "gpt-test", json!({"user": "anyone"})).await,
        400,
        "budget_exceeded",
    );
    ok_chat(&gw, &key, "gpt-test", json!({"user": "someone-new"})).await;
    // One with a budget of their own is held to that instead.
    admin_post(
        &gw,
        "/end_user/new",
        json!({"user_id": "vip", "max_budget": 100.0}),
    )
    .await;
    for _ in 0..3 {
        ok_chat(&gw, &key, "gpt-test", json!({"user": "vip"})).await;
    }
}
