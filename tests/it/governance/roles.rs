//! Roles on the management routes: what a proxy admin, an admin viewer, an internal user, an
//! internal user viewer and a team's admin may do with their keys, and what they may not.

use serde_json::{json, Value};

use super::*;

/// A user with `role` and their key.
async fn user_key(gw: &Gateway, id: &str, role: &str) -> String {
    let made = admin_post(
        gw,
        "/user/new",
        json!({"user_id": id, "user_role": role, "duration": null}),
    )
    .await;
    made["key"].as_str().unwrap().to_owned()
}

async fn post_as(
    gw: &Gateway,
    key: &str,
    path: &str,
    body: Value,
) -> crate::support::gateway::Reply {
    gw.post(path, Some(key), &body).await
}

#[actix_rt::test]
async fn an_internal_user_manages_only_their_own_keys_and_sees_only_their_own_spend() {
    let Fixture { gw, .. } = fixture(None, "").await;
    let ann = user_key(&gw, "ann", "internal_user").await;
    let bob = user_key(&gw, "bob", "internal_user").await;
    // Ann makes a key: it is hers whatever she leaves out.
    let r = post_as(&gw, &ann, "/key/generate", json!({"key_alias": "ann-2"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["user_id"], "ann");
    let ann2 = r.json()["key"].as_str().unwrap().to_owned();
    ok_chat(&gw, &ann2, "gpt-test", json!({})).await;
    ok_chat(&gw, &bob, "gpt-test", json!({})).await;
    // Not for Bob, not a user, not a team.
    refused(
        &post_as(&gw, &ann, "/key/generate", json!({"user_id": "bob"})).await,
        401,
        "auth_error",
    );
    refused(
        &post_as(&gw, &ann, "/user/new", json!({"user_id": "eve"})).await,
        401,
        "auth_error",
    );
    refused(
        &post_as(&gw, &ann, "/team/new", json!({"team_id": "t"})).await,
        401,
        "auth_error",
    );
    // Her keys she may change and delete; Bob's she may neither read nor touch.
    let r = post_as(
        &gw,
        &ann,
        "/key/update",
        json!({"key": ann2, "max_budget": 1.0}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    refused(
        &post_as(
            &gw,
            &ann,
            "/key/update",
            json!({"key": bob, "max_budget": 0.0}),
        )
        .await,
        401,
        "auth_error",
    );
    refused(
        &post_as(&gw, &ann, "/key/update", json!({"key": ann2, "spend": 0.0})).await,
        401,
        "auth_error",
    );
    refused(
        &gw.get(&format!("/key/info?key={bob}"), Some(&ann)).await,
        401,
        "auth_error",
    );
    refused(
        &post_as(&gw, &ann, "/key/delete", json!({"keys": [bob]})).await,
        401,
        "auth_error",
    );
    let listed = gw.get("/key/list", Some(&ann)).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.json()["total_count"], 2, "ann's two keys only");
    flush(&gw).await;
    let logs = gw.get("/spend/logs", Some(&ann)).await;
    assert_eq!(logs.status, 200, "{}", logs.text);
    let logs = logs.json();
    assert_eq!(logs.as_array().unwrap().len(), 1);
    assert_eq!(logs[0]["user"], "ann");
    refused(
        &gw.get("/spend/logs?user_id=bob", Some(&ann)).await,
        401,
        "auth_error",
    );
    refused(
        &gw.get("/global/spend", Some(&ann)).await,
        401,
        "auth_error",
    );
    refused(
        &gw.get("/user/info?user_id=bob", Some(&ann)).await,
        401,
        "auth_error",
    );
    let r = post_as(&gw, &ann, "/key/delete", json!({"keys": [ann2]})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    refused(
        &chat(&gw, &ann2, "gpt-test", json!({})).await,
        401,
        "auth_error",
    );
    // The audit log names her as the one who changed it.
    let audit = admin_get(&gw, "/audit/logs?action=deleted").await;
    assert_eq!(audit["data"][0]["changed_by"], "ann");
}

#[actix_rt::test]
async fn viewers_read_what_their_role_allows_and_change_nothing() {
    let Fixture { gw, .. } = fixture(None, "").await;
    let viewer = user_key(&gw, "vic", "internal_user_viewer").await;
    let admin_viewer = user_key(&gw, "ava", "proxy_admin_viewer").await;
    let other = key_with(&gw, json!({"user_id": "zed"})).await;
    let r = gw.get("/key/info", Some(&viewer)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    refused(
        &post_as(&gw, &viewer, "/key/generate", json!({})).await,
        401,
        "auth_error",
    );
    refused(
        &gw.get(&format!("/key/info?key={other}"), Some(&viewer))
            .await,
        401,
        "auth_error",
    );
    // The admin viewer reads everything...
    for path in [
        "/key/list",
        "/user/list",
        "/team/list",
        "/global/spend",
        "/global/spend/keys",
        "/spend/logs",
        "/audit/logs",
    ] {
        let r = gw.get(path, Some(&admin_viewer)).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
    }
    let r = gw
        .get(&format!("/key/info?key={other}"), Some(&admin_viewer))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // ...and changes nothing.
    for (path, body) in [
        ("/key/generate", json!({})),
        ("/key/block", json!({"key": other})),
        ("/user/new", json!({})),
        ("/team/new", json!({})),
        ("/end_user/new", json!({"user_id": "c"})),
        ("/tag/new", json!({"name": "t"})),
    ] {
        refused(
            &post_as(&gw, &admin_viewer, path, body).await,
            401,
            "auth_error",
        );
    }
    ok_chat(&gw, &other, "gpt-test", json!({})).await;
}

#[actix_rt::test]
async fn a_proxy_admins_key_manages_like_the_master_key() {
    let Fixture { gw, .. } = fixture(None, "").await;
    let admin = user_key(&gw, "root", "proxy_admin").await;
    for (path, body) in [
        ("/team/new", json!({"team_id": "t"})),
        (
            "/user/new",
            json!({"user_id": "u", "auto_create_key": false}),
        ),
        ("/key/generate", json!({"user_id": "u", "team_id": "t"})),
        ("/tag/new", json!({"name": "x"})),
    ] {
        let r = post_as(&gw, &admin, path, body).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
    }
}

#[actix_rt::test]
async fn a_teams_admin_manages_its_members_and_keys_and_no_other_team() {
    let Fixture { gw, .. } = fixture(None, "").await;
    let lead = user_key(&gw, "lead", "internal_user_viewer").await;
    admin_post(
        &gw,
        "/team/new",
        json!({"team_id": "t", "members_with_roles": [{"user_id": "lead", "role": "admin"}]}),
    )
    .await;
    admin_post(&gw, "/team/new", json!({"team_id": "other"})).await;
    let r = post_as(
        &gw,
        &lead,
        "/team/member_add",
        json!({"team_id": "t", "member": {"user_id": "new", "role": "user"}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = post_as(
        &gw,
        &lead,
        "/key/generate",
        json!({"team_id": "t", "user_id": "new"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let team_key = r.json()["key"].as_str().unwrap().to_owned();
    let r = post_as(&gw, &lead, "/key/block", json!({"key": team_key})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    refused(
        &chat(&gw, &team_key, "gpt-test", json!({})).await,
        401,
        "auth_error",
    );
    let r = gw.get("/team/info?team_id=t", Some(&lead)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = post_as(
        &gw,
        &lead,
        "/team/update",
        json!({"team_id": "t", "team_alias": "The Team"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // Not the team's budget (an admin's call), not another team.
    refused(
        &post_as(
            &gw,
            &lead,
            "/team/update",
            json!({"team_id": "t", "max_budget": 1000.0}),
        )
        .await,
        401,
        "auth_error",
    );
    refused(
        &post_as(
            &gw,
            &lead,
            "/team/member_add",
            json!({"team_id": "other", "member": {"user_id": "x"}}),
        )
        .await,
        401,
        "auth_error",
    );
    refused(
        &post_as(&gw, &lead, "/key/generate", json!({"team_id": "other"})).await,
        401,
        "auth_error",
    );
    refused(
        &gw.get("/team/info?team_id=other", Some(&lead)).await,
        401,
        "auth_error",
    );
}
