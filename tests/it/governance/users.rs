//! Users: the API, a user's limits holding all their keys together, their models, and their
//! daily activity.

use serde_json::json;

use super::*;
use crate::support::db::both;

async fn lifecycle(db: &TestDb) {
    let Fixture { gw, .. } = fixture(Some(db), "").await;
    admin_post(&gw, "/team/new", json!({"team_id": "t1"})).await;
    let made = admin_post(
        &gw,
        "/user/new",
        json!({"user_id": "ann", "user_email": "ann@example.com", "user_role": "internal_user",
               "max_budget": 3.0, "teams": ["t1"], "key_alias": "ann-key"}),
    )
    .await;
    assert_eq!(made["user_id"], "ann");
    assert_eq!(made["user_email"], "ann@example.com");
    assert_eq!(made["teams"], json!(["t1"]));
    assert_eq!(made["key_alias"], "ann-key");
    let key = made["key"]
        .as_str()
        .expect("a key is made with the user")
        .to_owned();
    ok_chat(&gw, &key, "gpt-test", json!({})).await;

    let info = admin_get(&gw, "/user/info?user_id=ann").await;
    assert_close(
        info["user_info"]["spend"].as_f64().unwrap(),
        COST,
        "live user spend",
    );
    assert_eq!(info["keys"][0]["user_id"], "ann");
    assert_eq!(info["teams"][0]["team_id"], "t1");
    // The user reads themself with their own key.
    let own = gw.get("/user/info", Some(&key)).await;
    assert_eq!(own.status, 200, "{}", own.text);
    assert_eq!(own.json()["user_id"], "ann");

    let bad_role = gw
        .post("/user/new", Some(MASTER), &json!({"user_role": "king"}))
        .await;
    assert!(refused(&bad_role, 400, "invalid_request_error").contains("user_role"));
    let dup = gw
        .post("/user/new", Some(MASTER), &json!({"user_id": "ann"}))
        .await;
    refused(&dup, 400, "invalid_request_error");

    let updated = admin_post(
        &gw,
        "/user/update",
        json!({"user_id": "ann", "user_alias": "Ann", "rpm_limit": 10}),
    )
    .await;
    assert_eq!(updated["user_alias"], "Ann");
    assert_eq!(updated["rpm_limit"], 10);
    admin_post(
        &gw,
        "/user/new",
        json!({"user_id": "viewer", "user_role": "proxy_admin_viewer", "auto_create_key": false}),
    )
    .await;
    let listed = admin_get(&gw, "/user/list?page_size=10").await;
    assert_eq!(listed["total"], 2);
    let viewers = admin_get(&gw, "/user/list?role=proxy_admin_viewer").await;
    assert_eq!(viewers["users"][0]["user_id"], "viewer");

    flush(&gw).await;
    let stored = gw
        .state
        .db
        .run(|db| async move { db.entity("user", "", "ann").await })
        .await
        .unwrap()
        .unwrap();
    assert_close(stored.spend, COST, "stored user spend");

    let gone = admin_post(&gw, "/user/delete", json!({"user_ids": ["ann"]})).await;
    assert_eq!(gone["deleted_users"], json!(["ann"]));
    assert_eq!(gone["deleted_keys"], 1);
    refused(
        &chat(&gw, &key, "gpt-test", json!({})).await,
        401,
        "auth_error",
    );
    refused(
        &gw.get("/user/info?user_id=ann", Some(MASTER)).await,
        404,
        "not_found_error",
    );
    // Their membership went with them.
    let team = admin_get(&gw, "/team/info?team_id=t1").await;
    assert_eq!(team["team_info"]["members_with_roles"], json!([]));
}

#[actix_rt::test]
async fn the_user_api_manages_users_with_their_keys_and_teams_on_sqlite_and_postgres() {
    for db in both() {
        lifecycle(&db).await;
    }
}

async fn user_budget(db: &TestDb) {
    let Fixture { gw, .. } = fixture(Some(db), "").await;
    admin_post(
        &gw,
        "/user/new",
        json!({"user_id": "u", "max_budget": COST * 1.5, "auto_create_key": false}),
    )
    .await;
    let a = key_with(&gw, json!({"user_id": "u", "max_budget": 50.0})).await;
    let b = key_with(&gw, json!({"user_id": "u"})).await;
    ok_chat(&gw, &a, "gpt-test", json!({})).await;
    ok_chat(&gw, &b, "gpt-test", json!({})).await;
    for key in [&a, &b] {
        let message = refused(
            &chat(&gw, key, "gpt-test", json!({})).await,
            400,
            "budget_exceeded",
        );
        assert!(message.contains("user u"), "{message}");
    }
    // Written and read back by a fresh cache entry, the spend still counts.
    flush(&gw).await;
    gw.state
        .actors()
        .router
        .do_send(llmgate::actors::ForgetEntity(
            llmgate::governance::EntityRef::new(llmgate::governance::EntityKind::User, "u"),
        ));
    refused(
        &chat(&gw, &a, "gpt-test", json!({})).await,
        400,
        "budget_exceeded",
    );
}

#[actix_rt::test]
async fn a_users_budget_holds_all_their_keys_together_on_sqlite_and_postgres() {
    for db in both() {
        user_budget(&db).await;
    }
}

#[actix_rt::test]
async fn a_users_models_and_rpm_limit_hold_every_key_of_theirs() {
    let Fixture { gw, .. } = fixture(None, "").await;
    admin_post(
        &gw,
        "/user/new",
        json!({"user_id": "u", "models": ["gpt-test"], "rpm_limit": 2, "auto_create_key": false}),
    )
    .await;
    let a = key_with(&gw, json!({"user_id": "u"})).await;
    let b = key_with(&gw, json!({"user_id": "u"})).await;
    refused(
        &chat(&gw, &a, "other", json!({})).await,
        403,
        "user_model_access_denied",
    );
    ok_chat(&gw, &a, "gpt-test", json!({})).await;
    ok_chat(&gw, &b, "gpt-test", json!({})).await;
    let message = refused(
        &chat(&gw, &b, "gpt-test", json!({})).await,
        429,
        "rate_limit_error",
    );
    assert!(
        message.contains("user u") && message.contains("rpm_limit=2"),
        "{message}"
    );
}

#[actix_rt::test]
async fn user_daily_activity_counts_each_users_requests_by_model_and_key() {
    let Fixture { gw, mock } = fixture(None, "").await;
    admin_post(
        &gw,
        "/user/new",
        json!({"user_id": "u", "auto_create_key": false}),
    )
    .await;
    let a = key_with(&gw, json!({"user_id": "u", "key_alias": "first"})).await;
    let b = key_with(&gw, json!({"user_id": "u"})).await;
    ok_chat(&gw, &a, "gpt-test", json!({})).await;
    ok_chat(&gw, &b, "other", json!({})).await;
    mock.set(crate::support::Behavior::Fail(
        500,
        r#"{"error":{"message":"boom","type":"server_error"}}"#.into(),
    ));
    let failed = chat(&gw, &b, "other", json!({"num_retries": 0})).await;
    assert_eq!(failed.status, 500, "{}", failed.text);
    let activity = admin_get(&gw, "/user/daily/activity?user_id=u").await;
    let day = &activity["results"][0];
    assert_eq!(day["date"], chrono::Utc::now().date_naive().to_string());
    assert_eq!(day["metrics"]["api_requests"], 3);
    assert_eq!(day["metrics"]["successful_requests"], 2);
    assert_eq!(day["metrics"]["failed_requests"], 1);
    assert_close(
        day["metrics"]["spend"].as_f64().unwrap(),
        2.0 * COST,
        "the day's spend",
    );
    let by_group = &day["breakdown"]["model_groups"];
    assert_eq!(by_group["gpt-test"]["metrics"]["api_requests"], 1);
    assert_eq!(by_group["other"]["metrics"]["api_requests"], 2);
    let keys = day["breakdown"]["api_keys"].as_object().unwrap();
    assert_eq!(keys.len(), 2);
    assert!(keys.values().any(|k| k["metadata"]["key_alias"] == "first"));
    assert_eq!(activity["metadata"]["total_api_requests"], 3);
    // A user reads only their own.
    let mine = gw.get("/user/daily/activity", Some(&a)).await;
    assert_eq!(mine.status, 200, "{}", mine.text);
    assert_eq!(mine.json()["metadata"]["total_api_requests"], 3);
    refused(
        &gw.get("/user/daily/activity?user_id=someone", Some(&a))
            .await,
        401,
        "auth_error",
    );
}
