//! Tags: the API, a tag's budget, limits and models holding every request that carries it (from
//! `metadata.tags`, the `x-litellm-tags` header or its key's tags), and spend per tag.

use serde_json::json;

use super::*;
use crate::support::db::both;

async fn lifecycle(db: &TestDb) {
    let Fixture { gw, .. } = fixture(Some(db), "").await;
    let made = admin_post(
        &gw,
        "/tag/new",
        json!({"name": "prod", "description": "production traffic", "models": ["gpt-test"], "max_budget": 5.0}),
    )
    .await;
    assert_eq!(made["name"], "prod");
    assert_eq!(made["description"], "production traffic");
    refused(
        &gw.post("/tag/new", Some(MASTER), &json!({"name": "prod"}))
            .await,
        400,
        "invalid_request_error",
    );
    refused(
        &gw.post("/tag/new", Some(MASTER), &json!({"description": "no name"}))
            .await,
        400,
        "invalid_request_error",
    );
    ok_chat(&gw, MASTER, "gpt-test", tagged(&["prod"])).await;
    let info = admin_post(&gw, "/tag/info", json!({"names": ["prod"]})).await;
    assert_close(
        info["prod"]["spend"].as_f64().unwrap(),
        COST,
        "live tag spend",
    );
    let updated = admin_post(
        &gw,
        "/tag/update",
        json!({"name": "prod", "description": "prod"}),
    )
    .await;
    assert_eq!(updated["description"], "prod");
    let list = admin_get(&gw, "/tag/list").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    flush(&gw).await;
    let stored = gw
        .state
        .db
        .run(|db| async move { db.entity("tag", "", "prod").await })
        .await
        .unwrap()
        .unwrap();
    assert_close(stored.spend, COST, "stored tag spend");
    let logs = admin_get(&gw, "/spend/logs").await;
    assert_eq!(logs[0]["request_tags"], json!(["prod"]));
    admin_post(&gw, "/tag/delete", json!({"name": "prod"})).await;
    refused(
        &gw.post("/tag/info", Some(MASTER), &json!({"names": ["prod"]}))
            .await,
        404,
        "not_found_error",
    );
}

#[actix_rt::test]
async fn the_tag_api_manages_tags_and_their_spend_on_sqlite_and_postgres() {
    for db in both() {
        lifecycle(&db).await;
    }
}

async fn tag_budget(db: &TestDb) {
    let Fixture { gw, .. } = fixture(Some(db), "").await;
    admin_post(
        &gw,
        "/tag/new",
        json!({"name": "batch", "max_budget": COST * 1.5}),
    )
    .await;
    let key = key_with(&gw, json!({"max_budget": 50.0})).await;
    let tagged_key = key_with(&gw, json!({"tags": ["batch"]})).await;
    ok_chat(&gw, &key, "gpt-test", tagged(&["batch", "misc"])).await;
    // The header carries tags too.
    let r = gw
        .post_with(
            "/v1/chat/completions",
            &[
                ("authorization", &format!("Bearer {key}")),
                ("x-litellm-tags", "batch"),
            ],
            &crate::support::chat_body("gpt-test"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let message = refused(
        &chat(&gw, &key, "gpt-test", tagged(&["batch"])).await,
        400,
        "budget_exceeded",
    );
    assert!(message.contains("tag batch"), "{message}");
    // A key's own tags count as the request's.
    refused(
        &chat(&gw, &tagged_key, "gpt-test", json!({})).await,
        400,
        "budget_exceeded",
    );
    ok_chat(&gw, &key, "gpt-test", tagged(&["misc"])).await;
    ok_chat(&gw, &key, "gpt-test", json!({})).await;
}

#[actix_rt::test]
async fn a_tags_budget_refuses_every_request_that_carries_it_on_sqlite_and_postgres() {
    for db in both() {
        tag_budget(&db).await;
    }
}

#[actix_rt::test]
async fn a_tags_models_and_rpm_limit_hold_the_requests_that_carry_it() {
    let Fixture { gw, .. } = fixture(None, "").await;
    admin_post(
        &gw,
        "/tag/new",
        json!({"name": "eu", "models": ["gpt-test"], "rpm_limit": 1}),
    )
    .await;
    refused(
        &chat(&gw, MASTER, "other", tagged(&["eu"])).await,
        403,
        "tag_model_access_denied",
    );
    ok_chat(&gw, MASTER, "gpt-test", tagged(&["eu"])).await;
    let message = refused(
        &chat(&gw, MASTER, "gpt-test", tagged(&["eu"])).await,
        429,
        "rate_limit_error",
    );
    assert!(message.contains("tag eu"), "{message}");
}

#[actix_rt::test]
async fn spend_per_tag_counts_every_tag_including_unregistered_ones() {
    let Fixture { gw, .. } = fixture(None, "").await;
    ok_chat(&gw, MASTER, "gpt-test", tagged(&["a", "b"])).await;
    ok_chat(&gw, MASTER, "gpt-test", tagged(&["a"])).await;
    let spend = admin_get(&gw, "/spend/tags").await;
    let rows = spend.as_array().unwrap();
    assert_eq!(rows[0]["individual_request_tag"], "a");
    assert_eq!(rows[0]["log_count"], 2);
    assert_close(rows[0]["total_spend"].as_f64().unwrap(), 2.0 * COST, "a");
    assert_eq!(rows[1]["individual_request_tag"], "b");
    let global = admin_get(&gw, "/global/spend/tags?tags=b").await;
    let b = &global["spend_per_tag"];
    assert_eq!(b.as_array().unwrap().len(), 1);
    assert_eq!(b[0]["name"], "b");
    assert_eq!(b[0]["log_count"], 1);
    assert_close(b[0]["spend"].as_f64().unwrap(), COST, "b");
    let activity = admin_get(&gw, "/tag/daily/activity?tags=a").await;
    assert_eq!(activity["metadata"]["total_api_requests"], 2);
}

#[actix_rt::test]
async fn cache_hits_count_against_a_tags_rpm_limit() {
    let more = "litellm_settings:\n  cache: true\n  cache_params: {type: local}\n";
    let Fixture { gw, mock } = fixture(None, more).await;
    admin_post(&gw, "/tag/new", json!({"name": "t", "rpm_limit": 2})).await;
    let first = ok_chat(&gw, MASTER, "gpt-test", tagged(&["t"])).await;
    assert!(first.header("x-litellm-cache-key").is_none());
    let hit = ok_chat(&gw, MASTER, "gpt-test", tagged(&["t"])).await;
    assert!(
        hit.header("x-litellm-cache-key").is_some(),
        "the second is a hit"
    );
    refused(
        &chat(&gw, MASTER, "gpt-test", tagged(&["t"])).await,
        429,
        "rate_limit_error",
    );
    assert_eq!(mock.call_count(), 1);
}
