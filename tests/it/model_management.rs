//! Models managed through the API (`store_model_in_db`): added, changed and deleted at runtime,
//! stored in SQLite or PostgreSQL with their credentials sealed, served at once here and soon
//! by every other instance on the same database (at once with Redis).

use std::time::Duration;

use diesel::sql_types::Text;
use diesel::{sql_query, Connection, PgConnection, QueryableByName, RunQueryDsl, SqliteConnection};
use llmgate::config::{CliOverrides, Settings};
use llmgate::db::DbTarget;
use serde_json::{json, Value};

use crate::support::binary::{temp_dir, Process};
use crate::support::db::{both, TestDb};
use crate::support::gateway::Reply;
use crate::support::{assert_error_body, chat_body, eventually, Behavior, Gateway, MockUpstream};

const MASTER: &str = "sk-master-models";
/// The provider key the stored model carries: never answered, never logged, never stored as is.
const UPSTREAM_KEY: &str = "sk-upstream-stored-0123456789";

fn yaml(mock: &MockUpstream, db: Option<&TestDb>, general: &str, more: &str) -> String {
    let db = db.map_or(String::new(), |d| format!("  database_url: '{}'\n", d.url));
    format!(
        "model_list:
  - model_name: from-config
    litellm_params: {{model: openai/from-config, api_base: '{mock}', api_key: sk-config}}
    model_info: {{id: config-model}}
general_settings:
  master_key: {MASTER}
  store_model_in_db: true
{db}{general}{more}",
        mock = mock.v1()
    )
}

async fn gateway(mock: &MockUpstream, db: Option<&TestDb>, general: &str) -> Gateway {
    Gateway::start(&yaml(mock, db, general, "")).await
}

fn new_model(name: &str, api_base: &str) -> Value {
    json!({
        "model_name": name,
        "litellm_params": {"model": "openai/gpt-4o-mini", "api_base": api_base, "api_key": UPSTREAM_KEY},
        "model_info": {"mode": "chat", "team": "research"},
    })
}

async fn add(gw: &Gateway, body: &Value) -> Value {
    let r = gw.post("/model/new", Some(MASTER), body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(!r.text.contains(UPSTREAM_KEY), "{}", r.text);
    r.json()
}

async fn chat(gw: &Gateway, model: &str) -> Reply {
    gw.post("/v1/chat/completions", Some(MASTER), &chat_body(model))
        .await
}

#[derive(QueryableByName)]
struct StoredParams {
    #[diesel(sql_type = Text)]
    litellm_params: String,
}

/// The stored `litellm_params` text of model `id`, read straight from the table.
fn stored_params(db: &TestDb, id: &str) -> String {
    let query = format!("SELECT litellm_params FROM llmgate_proxy_models WHERE id = '{id}'");
    let rows: Vec<StoredParams> = match &db.target {
        DbTarget::Postgres(url) => {
            let mut c = PgConnection::establish(url).unwrap();
            sql_query(query).load(&mut c).unwrap()
        }
        DbTarget::Sqlite(path) => {
            let mut c = SqliteConnection::establish(path).unwrap();
            sql_query(query).load(&mut c).unwrap()
        }
    };
    rows.into_iter()
        .next()
        .map(|r| r.litellm_params)
        .unwrap_or_default()
}

#[actix_rt::test]
async fn a_model_added_through_the_api_serves_at_once_and_is_listed_everywhere_on_both_backends() {
    let mock = MockUpstream::start().await;
    for db in both() {
        let gw = gateway(&mock, Some(&db), "").await;
        assert_eq!(chat(&gw, "added").await.status, 400, "not there before");

        let added = add(&gw, &new_model("added", &mock.v1())).await;
        let id = added["model_id"].as_str().unwrap().to_owned();
        assert_eq!(added["model_name"], "added");
        assert_eq!(added["model_info"]["id"], id.as_str());
        assert_eq!(added["model_info"]["db_model"], true);
        assert_eq!(added["model_info"]["team"], "research");
        assert_eq!(added["litellm_params"]["api_base"], mock.v1().as_str());
        assert!(added["litellm_params"].get("api_key").is_none(), "{added}");

        let r = chat(&gw, "added").await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.header("x-litellm-model-id"), Some(id.as_str()));
        assert_eq!(
            mock.last().headers["authorization"],
            format!("Bearer {UPSTREAM_KEY}")
        );

        let models = gw.get("/v1/models", Some(MASTER)).await.json();
        let ids: Vec<&str> = models["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["id"].as_str())
            .collect();
        assert_eq!(ids, ["from-config", "added"]);

        let info = gw.get("/model/info", Some(MASTER)).await;
        assert!(!info.text.contains(UPSTREAM_KEY), "{}", info.text);
        let info = info.json();
        let by_name = |name: &str| {
            info["data"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["model_name"] == name)
                .cloned()
                .unwrap_or(Value::Null)
        };
        assert_eq!(by_name("added")["model_info"]["db_model"], true);
        assert_eq!(by_name("from-config")["model_info"]["db_model"], false);

        let state = gw.get("/model/state", Some(MASTER)).await.json();
        let ids: Vec<&str> = state["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["model_id"].as_str())
            .collect();
        assert_eq!(ids, ["config-model", id.as_str()]);

        let health = gw.get("/health?model=added", Some(MASTER)).await;
        assert_eq!(health.json()["healthy_count"], 1, "{}", health.text);
        assert!(!health.text.contains(UPSTREAM_KEY));

        let metrics = gw.get("/metrics", None).await.text;
        assert!(
            metrics.contains(&format!("model_id=\"{id}\"")),
            "the new deployment has its series"
        );

        let stored = stored_params(&db, &id);
        assert!(!stored.contains(UPSTREAM_KEY), "{stored}");
        assert!(stored.contains("llmgate:aes-256-gcm:"), "{stored}");
        assert!(stored.contains("gpt-4o-mini"), "the rest stays readable");

        let audit = gw
            .get(
                "/audit/logs?table_name=LiteLLM_ProxyModelTable",
                Some(MASTER),
            )
            .await;
        assert!(!audit.text.contains(UPSTREAM_KEY), "{}", audit.text);
        let audit = audit.json();
        assert_eq!(audit["data"][0]["action"], "created", "{audit}");
        assert_eq!(audit["data"][0]["object_id"], id.as_str());
        gw.stop().await;
    }
}

#[actix_rt::test]
async fn an_update_moves_the_api_base_and_limits_and_a_delete_stops_routing_on_both_backends() {
    let first = MockUpstream::start().await;
    let second = MockUpstream::start().await;
    for db in both() {
        let more = "router_settings:\n  enable_pre_call_checks: true\n";
        let gw = Gateway::start(&yaml(&first, Some(&db), "", more)).await;
        let added = add(&gw, &new_model("moving", &first.v1())).await;
        let id = added["model_id"].as_str().unwrap().to_owned();
        assert_eq!(chat(&gw, "moving").await.status, 200);
        let before = second.call_count();

        let update = json!({
            "model_info": {"id": id},
            "litellm_params": {"api_base": second.v1(), "rpm": 2},
        });
        let r = gw.post("/model/update", Some(MASTER), &update).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(!r.text.contains(UPSTREAM_KEY), "{}", r.text);
        assert_eq!(r.json()["litellm_params"]["rpm"], 2);

        assert_eq!(chat(&gw, "moving").await.status, 200);
        assert_eq!(second.call_count(), before + 1, "the new api_base is used");
        assert_eq!(
            second.last().headers["authorization"],
            format!("Bearer {UPSTREAM_KEY}"),
            "the stored key is kept when the update does not send one"
        );
        assert_eq!(
            chat(&gw, "moving").await.status,
            429,
            "rpm: 2 now binds, counting this minute's requests from before the update"
        );

        let r = gw
            .client
            .patch(format!("{}/model/{id}/update", gw.base))
            .bearer_auth(MASTER)
            .send_json(&json!({"model_name": "moved", "litellm_params": {"rpm": 100}}))
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap();
        assert_eq!(r["model_name"], "moved", "{r}");
        assert_eq!(chat(&gw, "moving").await.status, 400, "renamed");
        assert_eq!(chat(&gw, "moved").await.status, 200);

        let r = gw
            .post("/model/delete", Some(MASTER), &json!({"id": id}))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(
            r.json()["message"],
            format!("Model: {id} deleted successfully")
        );
        let gone = chat(&gw, "moved").await;
        assert_eq!(gone.status, 400);
        assert!(
            assert_error_body(&gone.json(), 400, "invalid_request_error").contains("/v1/models")
        );
        assert_eq!(stored_params(&db, &id), "", "the row is gone");
        let metrics = gw.get("/metrics", None).await.text;
        assert!(
            !metrics.contains(&format!("model_id=\"{id}\"")),
            "a removed deployment's series go"
        );
        let state = gw.get("/model/state", Some(MASTER)).await.text;
        assert!(!state.contains(&id), "{state}");
        let again = gw
            .post("/model/delete", Some(MASTER), &json!({"id": id}))
            .await;
        assert_eq!(again.status, 400, "{}", again.text);
        gw.stop().await;
    }
}

#[actix_rt::test]
async fn a_request_in_flight_completes_when_its_model_is_deleted() {
    let slow = MockUpstream::start().await;
    slow.set(Behavior::Delay(Duration::from_millis(800)));
    let gw = gateway(&slow, None, "").await;
    let id = add(&gw, &new_model("slow", &slow.v1())).await["model_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (base, body) = (gw.base.clone(), chat_body("slow"));
    let in_flight = actix_rt::spawn(async move {
        let client = awc::Client::builder()
            .timeout(Duration::from_secs(30))
            .finish();
        let res = client
            .post(format!("{base}/v1/chat/completions"))
            .bearer_auth(MASTER)
            .send_json(&body)
            .await
            .unwrap();
        res.status().as_u16()
    });
    assert!(
        eventually(Duration::from_secs(5), async || slow.call_count() == 1).await,
        "the request reached the upstream"
    );

    let r = gw
        .post("/model/delete", Some(MASTER), &json!({"id": id}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(chat(&gw, "slow").await.status, 400, "no longer routed");
    assert_eq!(
        in_flight.await.unwrap(),
        200,
        "the request in flight completes"
    );
}

/// Two gateways on one PostgreSQL database; `general` is added to `general_settings`.
async fn pair(
    db: &TestDb,
    mock: &MockUpstream,
    general: &str,
    redis_ns: Option<&str>,
) -> (Gateway, Gateway) {
    let more = if redis_ns.is_some() {
        "router_settings:\n  redis_host: 127.0.0.1\n  redis_port: 6379\n"
    } else {
        ""
    };
    let settings = || {
        let mut s = Settings::from_yaml(
            &yaml(mock, Some(db), general, more),
            &CliOverrides::default(),
        )
        .expect("config loads");
        if let (Some(ns), Some(redis)) = (redis_ns, s.redis.as_mut()) {
            redis.namespace = ns.to_owned();
        }
        s
    };
    let a = Gateway::start_with(settings()).await;
    let b = Gateway::start_with(settings()).await;
    (a, b)
}

#[actix_rt::test]
async fn a_second_instance_on_the_same_postgres_follows_every_change_within_the_poll_interval() {
    let first = MockUpstream::start().await;
    let second = MockUpstream::start().await;
    let db = TestDb::postgres();
    let (a, b) = pair(&db, &first, "  model_sync_interval: 0.3\n", None).await;
    assert_eq!(chat(&b, "shared").await.status, 400);

    let id = add(&a, &new_model("shared", &first.v1())).await["model_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let within = Duration::from_secs(5);
    assert!(
        eventually(within, async || chat(&b, "shared").await.status == 200).await,
        "the other instance serves the new model"
    );

    let update = json!({"model_info": {"id": id}, "litellm_params": {"api_base": second.v1()}});
    assert_eq!(
        a.post("/model/update", Some(MASTER), &update).await.status,
        200
    );
    assert!(
        eventually(within, async || {
            let before = second.call_count();
            chat(&b, "shared").await.status == 200 && second.call_count() == before + 1
        })
        .await,
        "the other instance follows the update"
    );

    assert_eq!(
        a.post("/model/delete", Some(MASTER), &json!({"id": id}))
            .await
            .status,
        200
    );
    assert!(
        eventually(within, async || chat(&b, "shared").await.status == 400).await,
        "the other instance stops routing the deleted model"
    );
    a.stop().await;
    b.stop().await;
}

#[actix_rt::test]
async fn with_redis_the_other_instance_hears_of_a_change_at_once() {
    let mock = MockUpstream::start().await;
    let db = TestDb::postgres();
    let ns = format!(
        "llmgate-it-models-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    );
    // The poll is an hour away: only the announcement can bring the change.
    let (a, b) = pair(&db, &mock, "  model_sync_interval: 3600\n", Some(&ns)).await;
    let channel = a.state.shared.as_ref().unwrap().channel();
    let mut redis = crate::support::redis_counts::connect(6379).await;
    let subscribed = eventually(Duration::from_secs(5), async || {
        let counts: Vec<(String, i64)> = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(&channel)
            .query_async(&mut redis)
            .await
            .unwrap_or_default();
        counts.first().is_some_and(|(_, n)| *n >= 2)
    })
    .await;
    assert!(subscribed, "both instances listen");

    add(&a, &new_model("announced", &mock.v1())).await;
    assert!(
        eventually(Duration::from_secs(2), async || chat(&b, "announced")
            .await
            .status
            == 200)
        .await,
        "the other instance serves the new model at once"
    );
    a.stop().await;
    b.stop().await;
}

#[actix_rt::test]
async fn stored_models_survive_a_restart_and_their_credentials_never_reach_the_log() {
    let mock = MockUpstream::start().await;
    let dir = temp_dir("models-restart");
    let db = dir.join("llmgate.db");
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "model_list: []\ngeneral_settings:\n  master_key: {MASTER}\n  store_model_in_db: true\n  database_url: 'sqlite://{}'\n",
            db.display()
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let start = || {
        let config = config.clone();
        actix_rt::task::spawn_blocking(move || {
            Process::spawn(&["--config", &config, "--detailed_debug"], &[])
        })
    };
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish();
    let post = async |p: &Process, path: &str, body: &Value| {
        let mut res = client
            .post(format!("{}{path}", p.base))
            .bearer_auth(MASTER)
            .send_json(body)
            .await
            .unwrap();
        let text = res.body().await.unwrap();
        (
            res.status().as_u16(),
            String::from_utf8_lossy(&text).into_owned(),
        )
    };

    let first = start().await.unwrap();
    let (status, text) = post(&first, "/model/new", &new_model("kept", &mock.v1())).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        post(&first, "/v1/chat/completions", &chat_body("kept"))
            .await
            .0,
        200
    );
    let first_log = first.log();
    drop(first);

    let second = start().await.unwrap();
    let (status, text) = post(&second, "/v1/chat/completions", &chat_body("kept")).await;
    assert_eq!(status, 200, "served after a restart: {text}");
    assert_eq!(
        mock.last().headers["authorization"],
        format!("Bearer {UPSTREAM_KEY}")
    );
    for log in [first_log, second.log()] {
        assert!(
            !log.contains(UPSTREAM_KEY),
            "a credential in the log:\n{log}"
        );
    }
}

#[actix_rt::test]
async fn an_os_environ_reference_is_stored_as_written_and_resolved_when_served() {
    let mock = MockUpstream::start().await;
    let db = TestDb::sqlite();
    let env = "environment_variables:\n  LLMGATE_MODELS_TEST_KEY: sk-from-the-environment\n";
    let gw = Gateway::start(&yaml(&mock, Some(&db), "", env)).await;
    let mut body = new_model("from-env", &mock.v1());
    body["litellm_params"]["api_key"] = json!("os.environ/LLMGATE_MODELS_TEST_KEY");
    let id = add(&gw, &body).await["model_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(stored_params(&db, &id).contains("os.environ/LLMGATE_MODELS_TEST_KEY"));
    assert_eq!(chat(&gw, "from-env").await.status, 200);
    assert_eq!(
        mock.last().headers["authorization"],
        "Bearer sk-from-the-environment"
    );
}

#[actix_rt::test]
async fn without_store_model_in_db_the_model_api_answers_litellms_error() {
    let mock = MockUpstream::start().await;
    let yaml = format!(
        "model_list:\n  - model_name: m\n    litellm_params: {{model: openai/m, api_base: '{}'}}\ngeneral_settings: {{master_key: {MASTER}}}\n",
        mock.v1()
    );
    let gw = Gateway::start(&yaml).await;
    for (path, body) in [
        ("/model/new", new_model("x", &mock.v1())),
        ("/model/update", json!({"model_info": {"id": "x"}})),
        ("/model/delete", json!({"id": "x"})),
    ] {
        let r = gw.post(path, Some(MASTER), &body).await;
        assert_eq!(r.status, 500, "{path}: {}", r.text);
        let message = assert_error_body(&r.json(), 500, "internal_server_error");
        assert_eq!(
            message,
            "Set `'STORE_MODEL_IN_DB='True'` in your env to enable this feature."
        );
    }
}

#[actix_rt::test]
async fn invalid_models_are_refused_with_a_400_naming_the_field() {
    let mock = MockUpstream::start().await;
    let gw = gateway(&mock, None, "").await;
    let refused = async |body: Value| {
        let r = gw.post("/model/new", Some(MASTER), &body).await;
        assert_eq!(r.status, 400, "{}", r.text);
        let body = r.json();
        assert_error_body(&body, 400, "invalid_request_error");
        (
            body["error"]["param"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        )
    };
    let base = mock.v1();
    let (param, message) = refused(json!({"model_name": "m", "litellm_params": {"model": "openai/x", "api_base": base, "rpm": "lots"}})).await;
    assert_eq!(param, "litellm_params.rpm");
    assert!(message.starts_with("litellm_params.rpm: "), "{message}");
    let (param, message) =
        refused(json!({"model_name": "m", "litellm_params": {"model": "not-a-known-model"}})).await;
    assert_eq!(param, "litellm_params.model");
    assert!(message.contains("unknown model"), "{message}");
    let (param, _) =
        refused(json!({"litellm_params": {"model": "openai/x", "api_base": base}})).await;
    assert_eq!(param, "model_name");
    let (param, _) = refused(json!({"model_name": "m", "litellm_params": ["openai/x"]})).await;
    assert_eq!(param, "litellm_params");
    let (param, message) = refused(json!({"model_name": "m", "litellm_params": {"model": "openai/x", "api_base": base, "api_key": "os.environ/LLMGATE_SURELY_UNSET_KEY"}})).await;
    assert_eq!(param, "litellm_params.api_key");
    assert!(message.contains("LLMGATE_SURELY_UNSET_KEY"), "{message}");
    let (param, _) = refused(json!({"model_name": "m", "litellm_params": {"model": "openai/x", "api_base": base}, "model_info": {"id": "config-model"}})).await;
    assert_eq!(param, "model_info.id", "an id in use");
    let r = gw
        .post_raw("/model/new", Some(MASTER), b"{not json".to_vec())
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(chat(&gw, "m").await.status, 400, "nothing was added");
}

#[actix_rt::test]
async fn a_config_model_cannot_be_changed_or_deleted_through_the_api() {
    let mock = MockUpstream::start().await;
    let gw = gateway(&mock, None, "").await;
    let update = json!({"model_info": {"id": "config-model"}, "litellm_params": {"rpm": 1}});
    let r = gw.post("/model/update", Some(MASTER), &update).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(
        r.text.contains("Cannot edit config-based model"),
        "{}",
        r.text
    );
    let r = gw
        .post(
            "/model/delete",
            Some(MASTER),
            &json!({"id": "config-model"}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.text.contains("config file"), "{}", r.text);
    let unknown = json!({"model_info": {"id": "nope"}, "litellm_params": {"rpm": 1}});
    assert_eq!(
        gw.post("/model/update", Some(MASTER), &unknown)
            .await
            .status,
        404
    );
    assert_eq!(chat(&gw, "from-config").await.status, 200, "still served");
}

#[actix_rt::test]
async fn only_the_master_key_may_change_models() {
    let mock = MockUpstream::start().await;
    let gw = gateway(&mock, None, "").await;
    let r = gw
        .post("/key/generate", Some(MASTER), &json!({"duration": null}))
        .await;
    let key = r.json()["key"].as_str().unwrap().to_owned();
    for (path, body) in [
        ("/model/new", new_model("x", &mock.v1())),
        (
            "/model/update",
            json!({"model_info": {"id": "config-model"}}),
        ),
        ("/model/delete", json!({"id": "config-model"})),
    ] {
        let r = gw.post(path, Some(&key), &body).await;
        assert_eq!(r.status, 401, "{path}: {}", r.text);
        assert_error_body(&r.json(), 401, "auth_error");
        assert_eq!(gw.post(path, None, &body).await.status, 401);
    }
    assert_eq!(chat(&gw, "x").await.status, 400, "nothing was added");
}
