//! Teams: the API and its members, a team's limits holding all its keys, member budgets,
//! blocking, models, and team spend.

use serde_json::json;

use super::*;
use crate::support::db::both;

async fn lifecycle(db: &TestDb) {
    let Fixture { gw, .. } = fixture(Some(db), "").await;
    let made = admin_post(
        &gw,
        "/team/new",
        json!({"team_id": "t1", "team_alias": "Research", "max_budget": 5.0,
               "members_with_roles": [{"user_id": "ann", "role": "admin"}, {"user_id": "bob"}]}),
    )
    .await;
    assert_eq!(made["team_id"], "t1");
    assert_eq!(made["team_alias"], "Research");
    assert_eq!(made["members_with_roles"].as_array().unwrap().len(), 2);
    // Members that were not users yet are made users.
    let ann = admin_get(&gw, "/user/info?user_id=ann").await;
    assert_eq!(ann["user_info"]["user_role"], "internal_user");
    assert_eq!(ann["teams"][0]["team_id"], "t1");
    assert_eq!(ann["teams"][0]["role"], "admin");

    let dup = gw
        .post("/team/new", Some(MASTER), &json!({"team_id": "t1"}))
        .await;
    refused(&dup, 400, "invalid_request_error");

    admin_post(
        &gw,
        "/team/member_add",
        json!({"team_id": "t1", "member": {"user_id": "cy", "role": "user"}, "max_budget_in_team": 0.5}),
    )
    .await;
    let updated = admin_post(
        &gw,
        "/team/member_update",
        json!({"team_id": "t1", "user_id": "cy", "role": "admin", "max_budget_in_team": 0.75}),
    )
    .await;
    assert_eq!(updated["role"], "admin");
    assert_eq!(updated["litellm_budget_table"]["max_budget"], 0.75);
    let after_delete = admin_post(
        &gw,
        "/team/member_delete",
        json!({"team_id": "t1", "user_id": "bob"}),
    )
    .await;
    let members: Vec<&str> = after_delete["members_with_roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(members, ["ann", "cy"]);

    let key = key_with(
        &gw,
        json!({"team_id": "t1", "user_id": "ann", "duration": null}),
    )
    .await;
    ok_chat(&gw, &key, "gpt-test", json!({})).await;
    let info = admin_get(&gw, "/team/info?team_id=t1").await;
    assert_eq!(info["team_info"]["team_alias"], "Research");
    assert_close(
        info["team_info"]["spend"].as_f64().unwrap(),
        COST,
        "live team spend",
    );
    assert_eq!(info["keys"].as_array().unwrap().len(), 1);
    let ann_in_team = info["team_memberships"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user_id"] == "ann")
        .unwrap();
    assert_close(
        ann_in_team["spend"].as_f64().unwrap(),
        COST,
        "ann's spend in the team",
    );

    let updated = admin_post(
        &gw,
        "/team/update",
        json!({"team_id": "t1", "team_alias": "R&D", "rpm_limit": 100}),
    )
    .await;
    assert_eq!(updated["team_alias"], "R&D");
    assert_eq!(updated["rpm_limit"], 100);
    let list = admin_get(&gw, "/team/list").await;
    assert_eq!(list.as_array().unwrap().len(), 1);

    // Spend reaches the database rolled up to the team and the member.
    flush(&gw).await;
    let stored = llmgate_state_spend(&gw, "team", "", "t1").await;
    assert_close(stored, COST, "stored team spend");
    assert_close(
        llmgate_state_spend(&gw, "member", "t1", "ann").await,
        COST,
        "stored member spend",
    );

    let gone = admin_post(&gw, "/team/delete", json!({"team_ids": ["t1"]})).await;
    assert_eq!(gone["deleted_teams"], json!(["t1"]));
    assert_eq!(gone["deleted_keys"], 1);
    refused(
        &chat(&gw, &key, "gpt-test", json!({})).await,
        401,
        "auth_error",
    );
    let missing = gw.get("/team/info?team_id=t1", Some(MASTER)).await;
    refused(&missing, 404, "not_found_error");
    // The audit log has the team's story.
    let audit = admin_get(&gw, "/audit/logs?table_name=LiteLLM_TeamTable").await;
    let actions: Vec<&str> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"created")
            && actions.contains(&"updated")
            && actions.contains(&"deleted"),
        "{actions:?}"
    );
}

/// An entity's stored spend, read straight from the database.
async fn llmgate_state_spend(gw: &Gateway, kind: &'static str, scope: &str, id: &str) -> f64 {
    let (scope, id) = (scope.to_owned(), id.to_owned());
    gw.state
        .db
        .run(move |db| async move { db.entity(kind, &scope, &id).await })
        .await
        .unwrap()
        .map_or(-1.0, |r| r.spend)
}

#[actix_rt::test]
async fn the_team_api_manages_teams_members_and_their_keys_on_sqlite_and_postgres() {
    for db in both() {
        lifecycle(&db).await;
    }
}

async fn team_budget(db: &TestDb) {
    let Fixture { gw, .. } = fixture(Some(db), "").await;
    admin_post(
        &gw,
        "/team/new",
        json!({"team_id": "t", "max_budget": COST * 1.5}),
    )
    .await;
    // Each key may spend as much as the team (a key's budget may not be more).
    let rich = key_with(&gw, json!({"team_id": "t", "max_budget": COST * 1.5})).await;
    let other = key_with(&gw, json!({"team_id": "t", "max_budget": COST * 1.5})).await;
    ok_chat(&gw, &rich, "gpt-test", json!({})).await;
    ok_chat(&gw, &other, "gpt-test", json!({})).await;
    // The team has spent 2 × COST of its 1.5 × COST: both keys are refused, each with a third
    // of its own budget left.
    for key in [&rich, &other] {
        let message = refused(
            &chat(&gw, key, "gpt-test", json!({})).await,
            400,
            "budget_exceeded",
        );
        assert!(message.contains("team t"), "{message}");
    }
    let solo = key_with(&gw, json!({"max_budget": 100.0})).await;
    ok_chat(&gw, &solo, "gpt-test", json!({})).await;
    // Raising the team's budget lets its keys through again at once.
    admin_post(
        &gw,
        "/team/update",
        json!({"team_id": "t", "max_budget": 100.0}),
    )
    .await;
    ok_chat(&gw, &rich, "gpt-test", json!({})).await;
}

#[actix_rt::test]
async fn a_key_under_a_team_whose_budget_is_spent_is_refused_even_with_its_own_budget_left_on_sqlite_and_postgres(
) {
    for db in both() {
        team_budget(&db).await;
    }
}

#[actix_rt::test]
async fn a_blocked_team_refuses_every_key_until_unblocked() {
    let Fixture { gw, .. } = fixture(None, "").await;
    admin_post(&gw, "/team/new", json!({"team_id": "t"})).await;
    let key = key_with(&gw, json!({"team_id": "t"})).await;
    ok_chat(&gw, &key, "gpt-test", json!({})).await;
    admin_post(&gw, "/team/block", json!({"team_id": "t"})).await;
    let message = refused(
        &chat(&gw, &key, "gpt-test", json!({})).await,
        401,
        "auth_error",
    );
    assert!(message.contains("team t is blocked"), "{message}");
    admin_post(&gw, "/team/unblock", json!({"team_id": "t"})).await;
    ok_chat(&gw, &key, "gpt-test", json!({})).await;
}

#[actix_rt::test]
async fn a_members_budget_in_the_team_holds_their_team_keys_but_not_their_other_keys() {
    let Fixture { gw, .. } = fixture(None, "").await;
    admin_post(
        &gw,
        "/team/new",
        json!({"team_id": "t", "members_with_roles": [{"user_id": "u"}]}),
    )
    .await;
    admin_post(
        &gw,
        "/team/member_update",
        json!({"team_id": "t", "user_id": "u", "max_budget_in_team": COST / 2.0}),
    )
    .await;
    let in_team = key_with(&gw, json!({"team_id": "t", "user_id": "u"})).await;
    let own = key_with(&gw, json!({"user_id": "u"})).await;
    ok_chat(&gw, &in_team, "gpt-test", json!({})).await;
    let message = refused(
        &chat(&gw, &in_team, "gpt-test", json!({})).await,
        400,
        "budget_exceeded",
    );
    assert!(message.contains("team member u of team t"), "{message}");
    ok_chat(&gw, &own, "gpt-test", json!({})).await;
}

#[actix_rt::test]
async fn a_teams_models_hold_its_keys_and_a_key_must_fit_its_team() {
    let Fixture { gw, .. } = fixture(None, "").await;
    admin_post(
        &gw,
        "/team/new",
        json!({"team_id": "t", "models": ["gpt-test"], "max_budget": 10.0, "rpm_limit": 50}),
    )
    .await;
    for (body, field) in [
        (json!({"team_id": "t", "models": ["other"]}), "models"),
        (json!({"team_id": "t", "max_budget": 11.0}), "max_budget"),
        (json!({"team_id": "t", "rpm_limit": 51}), "rpm_limit"),
        (json!({"team_id": "nope"}), "team_id"),
    ] {
        let r = gw.post("/key/generate", Some(MASTER), &body).await;
        refused(&r, 400, "invalid_request_error");
        assert_eq!(r.json()["error"]["param"], field, "{body}");
    }
    let key = key_with(&gw, json!({"team_id": "t", "models": ["gpt-test"]})).await;
    ok_chat(&gw, &key, "gpt-test", json!({})).await;
    // A key with no model list of its own is held to the team's.
    let open = key_with(&gw, json!({"team_id": "t"})).await;
    ok_chat(&gw, &open, "gpt-test", json!({})).await;
    refused(
        &chat(&gw, &open, "other", json!({})).await,
        403,
        "team_model_access_denied",
    );
    admin_post(
        &gw,
        "/team/update",
        json!({"team_id": "t", "models": ["other"]}),
    )
    .await;
    let r = chat(&gw, &key, "gpt-test", json!({})).await;
    // The key allows gpt-test, the team now does not.
    refused(&r, 403, "team_model_access_denied");
}

#[actix_rt::test]
async fn a_teams_rpm_limit_counts_the_requests_of_all_its_keys() {
    let Fixture { gw, .. } = fixture(None, "").await;
    admin_post(&gw, "/team/new", json!({"team_id": "t", "rpm_limit": 2})).await;
    let a = key_with(&gw, json!({"team_id": "t"})).await;
    let b = key_with(&gw, json!({"team_id": "t"})).await;
    ok_chat(&gw, &a, "gpt-test", json!({})).await;
    ok_chat(&gw, &b, "gpt-test", json!({})).await;
    let r = chat(&gw, &a, "gpt-test", json!({})).await;
    let message = refused(&r, 429, "rate_limit_error");
    assert!(
        message.contains("team t") && message.contains("rpm_limit=2"),
        "{message}"
    );
    assert!(r.header("retry-after").is_some());
}

#[actix_rt::test]
async fn team_spend_is_shown_per_team_and_per_day() {
    let Fixture { gw, .. } = fixture(None, "").await;
    admin_post(
        &gw,
        "/team/new",
        json!({"team_id": "t1", "team_alias": "Alpha"}),
    )
    .await;
    admin_post(
        &gw,
        "/team/new",
        json!({"team_id": "t2", "team_alias": "Beta"}),
    )
    .await;
    let a = key_with(&gw, json!({"team_id": "t1"})).await;
    let b = key_with(&gw, json!({"team_id": "t2"})).await;
    let none = key_with(&gw, json!({})).await;
    for _ in 0..2 {
        ok_chat(&gw, &a, "gpt-test", json!({})).await;
    }
    ok_chat(&gw, &b, "other", json!({})).await;
    ok_chat(&gw, &none, "gpt-test", json!({})).await;
    let teams = admin_get(&gw, "/global/spend/teams").await;
    let top = teams["total_spend_per_team"].as_array().unwrap();
    assert_eq!(top[0]["team_id"], "Alpha");
    assert_close(top[0]["total_spend"].as_f64().unwrap(), 2.0 * COST, "Alpha");
    let names: Vec<&str> = top.iter().map(|t| t["team_id"].as_str().unwrap()).collect();
    assert!(
        names.contains(&"Beta") && names.contains(&"Unassigned"),
        "{names:?}"
    );
    assert_eq!(teams["daily_spend"].as_array().unwrap().len(), 1);

    let activity = admin_get(&gw, "/team/daily/activity?team_ids=t1").await;
    let day = &activity["results"][0];
    assert_eq!(day["metrics"]["api_requests"], 2);
    assert_eq!(day["metrics"]["prompt_tokens"], 14);
    assert_close(
        day["metrics"]["spend"].as_f64().unwrap(),
        2.0 * COST,
        "t1's day",
    );
    assert_eq!(
        day["breakdown"]["model_groups"]["gpt-test"]["metrics"]["api_requests"],
        2
    );
    assert_eq!(activity["metadata"]["total_api_requests"], 2);
}

#[actix_rt::test]
async fn a_teams_budget_period_resets_its_spend_here_and_in_the_database() {
    let Fixture { gw, .. } = fixture(None, "").await;
    admin_post(
        &gw,
        "/team/new",
        json!({"team_id": "t", "max_budget": COST * 0.5, "budget_duration": "1s"}),
    )
    .await;
    let key = key_with(&gw, json!({"team_id": "t"})).await;
    ok_chat(&gw, &key, "gpt-test", json!({})).await;
    refused(
        &chat(&gw, &key, "gpt-test", json!({})).await,
        400,
        "budget_exceeded",
    );
    // Once the period has passed the team may spend again.
    let reset = crate::support::eventually(std::time::Duration::from_secs(5), async || {
        chat(&gw, &key, "gpt-test", json!({})).await.status == 200
    })
    .await;
    assert!(reset, "the team's budget reset after its period");
    flush(&gw).await;
    let stored = gw
        .state
        .db
        .run(|db| async move { db.entity("team", "", "t").await })
        .await
        .unwrap()
        .unwrap();
    assert_close(stored.spend, COST, "only the new period's spend is stored");
    assert!(
        stored.budget_reset_at.unwrap()
            > chrono::Utc::now().naive_utc() - chrono::Duration::seconds(2)
    );
}
