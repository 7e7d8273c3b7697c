//! Two instances on one Redis and one database: a team's rate limit and an end user's budget
//! hold across both, counted once in Redis.

use llmgate::config::{CliOverrides, Settings};
use serde_json::json;

use super::*;

/// Two gateways on the machine's Redis (a namespace of their own, also returned) and one
/// SQLite file.
async fn pair(mock: &MockUpstream) -> (Gateway, Gateway, String) {
    let db = crate::support::binary::temp_dir("governance-shared").join("llmgate.db");
    let ns = format!("llmgate-gov-{}-{}", std::process::id(), fastrand::u64(..));
    let yaml = format!(
        "model_list:
  - model_name: gpt-test
    litellm_params: {{model: openai/gpt-test, api_base: '{}', input_cost_per_token: {IN}, output_cost_per_token: {OUT}}}
router_settings: {{redis_host: 127.0.0.1, redis_port: 6379}}
general_settings: {{master_key: {MASTER}, database_url: 'sqlite://{}'}}
",
        mock.v1(),
        db.display()
    );
    let settings = || {
        let mut s = Settings::from_yaml(&yaml, &CliOverrides::default()).expect("config loads");
        s.redis.as_mut().expect("redis is set").namespace = ns.clone();
        s
    };
    let a = Gateway::start_with(settings()).await;
    let b = Gateway::start_with(settings()).await;
    (a, b, ns)
}

/// The spend Redis has counted for end user `id` in its all-time budget counter.
async fn counted_spend(ns: &str, id: &str) -> f64 {
    let mut conn = crate::support::redis_counts::connect(6379).await;
    let spent: Option<f64> = redis::cmd("GET")
        .arg(format!("{ns}:end_user:0::{id}:spend:all"))
        .query_async(&mut conn)
        .await
        .unwrap();
    spent.unwrap_or(0.0)
}

#[actix_rt::test]
async fn a_teams_rpm_limit_holds_across_instances() {
    let mock = MockUpstream::start().await;
    let (a, b, _) = pair(&mock).await;
    admin_post(&a, "/team/new", json!({"team_id": "t", "rpm_limit": 4})).await;
    let key = key_with(&a, json!({"team_id": "t", "duration": null})).await;
    let mut ok = 0;
    for i in 0..8 {
        let gw = if i % 2 == 0 { &a } else { &b };
        let r = chat(gw, &key, "gpt-test", json!({})).await;
        match r.status {
            200 => ok += 1,
            429 => {
                let message = refused(&r, 429, "rate_limit_error");
                assert!(message.contains("team t"), "{message}");
            }
            other => panic!("unexpected {other}: {}", r.text),
        }
    }
    assert_eq!(
        ok, 4,
        "the team's 4 requests a minute, counted across both instances"
    );
}

#[actix_rt::test]
async fn an_end_users_budget_counts_the_spend_of_both_instances() {
    let mock = MockUpstream::start().await;
    let (a, b, ns) = pair(&mock).await;
    admin_post(
        &a,
        "/end_user/new",
        json!({"user_id": "c", "max_budget": COST * 2.5}),
    )
    .await;
    let mut ok = 0;
    for i in 0..6 {
        let gw = if i % 2 == 0 { &a } else { &b };
        let r = chat(gw, MASTER, "gpt-test", json!({"user": "c"})).await;
        match r.status {
            200 => ok += 1,
            400 => {
                refused(&r, 400, "budget_exceeded");
            }
            other => panic!("unexpected {other}: {}", r.text),
        }
        // The charge reaches Redis after the reply: the next request waits until it has landed.
        let landed = crate::support::eventually(std::time::Duration::from_secs(5), async || {
            counted_spend(&ns, "c").await >= ok as f64 * COST - 1e-12
        })
        .await;
        assert!(landed, "the spend of {ok} requests reached redis");
    }
    assert_eq!(
        ok, 3,
        "spend of 2 × COST on two instances leaves room for one more, then none"
    );
}
