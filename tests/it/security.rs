//! Security: weak master keys refused at startup, the client address filter (allowed_ips,
//! blocked_ips, X-Forwarded-For from trusted proxies only, IPv4 and IPv6), CORS, virtual keys
//! kept out of every management route, and the audit log of key changes (written in the
//! change's own transaction) on SQLite and PostgreSQL.

use std::process::Stdio;
use std::time::Duration;

use actix_web::http::Method;
use diesel::sql_types::BigInt;
use diesel::{sql_query, Connection, PgConnection, QueryableByName, RunQueryDsl, SqliteConnection};
use llmgate::config::{CliOverrides, Settings};
use llmgate::db::DbTarget;
use serde_json::{json, Value};

use crate::support::binary::{bin, free_port, temp_dir, Process};
use crate::support::db::{both, TestDb};
use crate::support::gateway::Reply;
use crate::support::{chat_body, Gateway, MockUpstream};

const MASTER: &str = "sk-security-master-0001";

/// One mock-answered group and `general` inside `general_settings`.
fn yaml(general: &str) -> String {
    format!(
        "model_list:\n  - model_name: g\n    litellm_params: {{model: openai/g, mock_response: hi}}\ngeneral_settings:\n  master_key: {MASTER}\n{general}"
    )
}

// ---- 1. Weak master keys.

/// Environment variables for a spawned binary.
type Env = Vec<(String, String)>;

/// How a run of the binary that is expected to stop ended.
struct Exit {
    code: Option<i32>,
    stderr: String,
}

/// Runs the binary on `config` with `env` and `args`; it must exit within 20 s.
async fn run_to_exit(config: &str, args: &[&str], env: &[(&str, &str)]) -> Exit {
    let mut cmd = bin();
    cmd.args(["--config", config, "--host", "127.0.0.1", "--port"])
        .arg(free_port().to_string())
        .args(args)
        .env_remove("LITELLM_MASTER_KEY")
        .env_remove("DATABASE_URL")
        .env_remove("LLMGATE_ALLOW_WEAK_MASTER_KEY")
        .env_remove("LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY")
        .env("LLMGATE_SQLITE_PATH", temp_dir("weak").join("llmgate.db"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    actix_rt::task::spawn_blocking(move || {
        let mut child = cmd.spawn().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while child.try_wait().unwrap().is_none() {
            if std::time::Instant::now() > deadline {
                child.kill().ok();
                panic!("llmgate kept running with a weak master key");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        Exit {
            code: out.status.code(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    })
    .await
    .unwrap()
}

fn config_file(tag: &str, master_key_line: &str) -> String {
    let path = temp_dir(tag).join("config.yaml");
    let text = format!(
        "model_list:\n  - model_name: g\n    litellm_params: {{model: openai/g, mock_response: hi}}\n{master_key_line}"
    );
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn assert_refused_weak(run: &Exit, what: &str) {
    assert!(
        matches!(run.code, Some(c) if c != 0),
        "{what}: exit {:?}",
        run.code
    );
    for needed in [
        "master key is weak",
        "LITELLM_MASTER_KEY",
        "--allow-weak-master-key",
        "LLMGATE_ALLOW_WEAK_MASTER_KEY",
    ] {
        assert!(
            run.stderr.contains(needed),
            "{what}: {needed} not in {}",
            run.stderr
        );
    }
}

#[actix_rt::test]
async fn a_published_or_short_master_key_stops_the_proxy_with_a_clear_error() {
    let in_config = config_file("weak-config", "general_settings: {master_key: sk-1234}\n");
    let run = run_to_exit(&in_config, &[], &[]).await;
    assert_refused_weak(&run, "sk-1234 in the config");
    assert!(run.stderr.contains("published"), "{}", run.stderr);
    // Never echoed back whole, not even in the refusal.
    assert!(!run.stderr.contains("sk-1234"), "{}", run.stderr);

    let from_env = config_file("weak-env", "");
    let run = run_to_exit(&from_env, &[], &[("LITELLM_MASTER_KEY", "sk-1234")]).await;
    assert_refused_weak(&run, "sk-1234 from LITELLM_MASTER_KEY");

    let short = config_file(
        "weak-short",
        "general_settings: {master_key: sk-abc-123456}\n",
    );
    let run = run_to_exit(&short, &[], &[]).await;
    assert_refused_weak(&run, "a 13-character key");
    assert!(run.stderr.contains("at least 16"), "{}", run.stderr);
}

async fn serves(args: Vec<String>, env: Env) -> Process {
    actix_rt::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Process::spawn(&args, &env)
    })
    .await
    .unwrap()
}

#[actix_rt::test]
async fn a_weak_master_key_starts_only_when_the_operator_says_so() {
    let weak = config_file("weak-permit", "general_settings: {master_key: sk-1234}\n");
    let permitted_in_config = config_file(
        "weak-permit-config",
        "general_settings: {master_key: sk-1234, dangerously_permit_weak_or_unset_master_key: true}\n",
    );
    let cases: [(&str, Vec<String>, Env); 4] = [
        (
            "--allow-weak-master-key",
            vec![
                "--config".into(),
                weak.clone(),
                "--allow-weak-master-key".into(),
            ],
            vec![],
        ),
        (
            "LLMGATE_ALLOW_WEAK_MASTER_KEY",
            vec!["--config".into(), weak.clone()],
            vec![("LLMGATE_ALLOW_WEAK_MASTER_KEY".into(), "true".into())],
        ),
        (
            "LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY",
            vec!["--config".into(), weak.clone()],
            vec![(
                "LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY".into(),
                "True".into(),
            )],
        ),
        (
            "general_settings.dangerously_permit_weak_or_unset_master_key",
            vec!["--config".into(), permitted_in_config],
            vec![],
        ),
    ];
    for (how, args, env) in cases {
        let gateway = serves(args, env).await;
        let client = awc::Client::default();
        let mut r = client
            .get(format!("{}/v1/models", gateway.base))
            .bearer_auth("sk-1234")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{how}: {}", gateway.log());
        let _ = r.body().await;
        assert!(
            gateway
                .log()
                .lines()
                .any(|l| l.contains("WARN") && l.contains("WEAK MASTER KEY")),
            "{how}: no warning: {}",
            gateway.log()
        );
    }
}

// ---- 2. The client address filter.

async fn get(gw: &Gateway, path: &str, headers: &[(&str, &str)]) -> Reply {
    get_at(&gw.client, &gw.base, path, headers).await
}

async fn get_at(client: &awc::Client, base: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req = client.get(format!("{base}{path}")).bearer_auth(MASTER);
    for h in headers {
        req = req.insert_header(*h);
    }
    let mut res = req.send().await.expect("the gateway answers");
    let body = res.body().await.expect("body reads");
    Reply {
        status: res.status().as_u16(),
        headers: res.headers().clone(),
        text: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn assert_ip_refused(r: &Reply, what: &str) {
    assert_eq!(r.status, 403, "{what}: {}", r.text);
    assert_eq!(
        r.json(),
        json!({"error": {"message": "Access forbidden: IP address not allowed.", "type": "auth_error", "param": null, "code": "403"}}),
        "{what}"
    );
}

#[actix_rt::test]
async fn allowed_ips_admits_only_listed_addresses_and_ranges() {
    let outside = Gateway::start(&yaml("  allowed_ips: ['10.0.0.0/8', '192.168.1.1']\n")).await;
    assert_ip_refused(
        &get(&outside, "/v1/models", &[]).await,
        "127.0.0.1 not listed",
    );
    assert_ip_refused(
        &get(&outside, "/key/list", &[]).await,
        "management routes too",
    );
    // A probe reveals nothing: orchestrators reach it from anywhere.
    assert_eq!(get(&outside, "/health/liveliness", &[]).await.status, 200);
    assert_eq!(get(&outside, "/health/readiness", &[]).await.status, 200);

    let inside = Gateway::start(&yaml("  allowed_ips: ['10.0.0.0/8', '127.0.0.0/30']\n")).await;
    assert_eq!(get(&inside, "/v1/models", &[]).await.status, 200);
    let single = Gateway::start(&yaml("  allowed_ips: ['127.0.0.1']\n")).await;
    assert_eq!(get(&single, "/v1/models", &[]).await.status, 200);
}

#[actix_rt::test]
async fn blocked_ips_refuses_listed_addresses_everywhere_even_when_allowed() {
    let blocked = Gateway::start(&yaml(
        "  allowed_ips: ['127.0.0.1']\n  blocked_ips: ['127.0.0.0/8']\n",
    ))
    .await;
    assert_ip_refused(&get(&blocked, "/v1/models", &[]).await, "blocked range");
    assert_ip_refused(
        &get(&blocked, "/health/liveliness", &[]).await,
        "blocked probe",
    );
    let other = Gateway::start(&yaml("  blocked_ips: ['127.0.0.2', '::1']\n")).await;
    assert_eq!(get(&other, "/v1/models", &[]).await.status, 200);
}

#[actix_rt::test]
async fn x_forwarded_for_is_believed_only_from_a_trusted_proxy_and_read_from_the_right() {
    let trusted = Gateway::start(&yaml(
        "  allowed_ips: ['203.0.113.0/24']\n  use_x_forwarded_for: true\n  trusted_proxy_ranges: ['127.0.0.1']\n",
    ))
    .await;
    let xff = |v: &'static str| [("x-forwarded-for", v)];
    assert_eq!(
        get(&trusted, "/v1/models", &xff("203.0.113.5"))
            .await
            .status,
        200
    );
    assert_ip_refused(
        &get(&trusted, "/v1/models", &xff("198.51.100.1")).await,
        "a forwarded client outside the list",
    );
    // The client wrote an allowed address first; the proxy appended the one it saw.
    assert_ip_refused(
        &get(&trusted, "/v1/models", &xff("203.0.113.5, 198.51.100.1")).await,
        "a spoofed leftmost entry",
    );
    // Two trusted hops: the first untrusted entry from the right is the client.
    assert_eq!(
        get(
            &trusted,
            "/v1/models",
            &xff("198.51.100.1, 203.0.113.9, 127.0.0.1")
        )
        .await
        .status,
        200
    );
    assert_ip_refused(
        &get(&trusted, "/v1/models", &[]).await,
        "the proxy itself, with no header",
    );

    // use_x_forwarded_for alone: anyone could send the header, so it is not believed.
    let untrusted = Gateway::start(&yaml(
        "  allowed_ips: ['203.0.113.0/24']\n  use_x_forwarded_for: true\n",
    ))
    .await;
    assert_ip_refused(
        &get(&untrusted, "/v1/models", &xff("203.0.113.5")).await,
        "no trusted proxy configured",
    );
    // A peer outside trusted_proxy_ranges: its header is not believed either.
    let elsewhere = Gateway::start(&yaml(
        "  allowed_ips: ['203.0.113.0/24']\n  use_x_forwarded_for: true\n  trusted_proxy_ranges: ['10.0.0.0/8']\n",
    ))
    .await;
    assert_ip_refused(
        &get(&elsewhere, "/v1/models", &xff("203.0.113.5")).await,
        "a peer that is not a trusted proxy",
    );
    // The same addresses through a trusted proxy that does not set use_x_forwarded_for.
    let off = Gateway::start(&yaml(
        "  allowed_ips: ['203.0.113.0/24']\n  trusted_proxy_ranges: ['127.0.0.1']\n",
    ))
    .await;
    assert_ip_refused(
        &get(&off, "/v1/models", &xff("203.0.113.5")).await,
        "use_x_forwarded_for off",
    );
}

/// A gateway listening on IPv6's loopback.
async fn start_on_ipv6(general: &str) -> (String, actix_web::dev::ServerHandle) {
    let mut settings =
        Settings::from_yaml(&yaml(general), &CliOverrides::default()).expect("config loads");
    settings.database = DbTarget::Sqlite(":memory:".into());
    let running = llmgate::server::start(settings, "::1", 0, 1)
        .await
        .expect("binds [::1]");
    let handle = running.server.handle();
    actix_rt::spawn(running.server);
    (format!("http://[::1]:{}", running.addr.port()), handle)
}

#[actix_rt::test]
async fn ipv6_clients_and_ranges_are_filtered_too() {
    let client = awc::Client::default();
    let (allowed, _a) = start_on_ipv6("  allowed_ips: ['::1']\n").await;
    assert_eq!(
        get_at(&client, &allowed, "/v1/models", &[]).await.status,
        200
    );
    let (v4_only, _b) = start_on_ipv6("  allowed_ips: ['127.0.0.1']\n").await;
    assert_ip_refused(
        &get_at(&client, &v4_only, "/v1/models", &[]).await,
        "::1 against an IPv4 list",
    );
    let (proxied, _c) = start_on_ipv6(
        "  allowed_ips: ['2001:db8::/32']\n  blocked_ips: ['2001:db8:bad::/48']\n  use_x_forwarded_for: true\n  trusted_proxy_ranges: ['::1/128']\n",
    )
    .await;
    let via = |ip: &'static str| [("x-forwarded-for", ip)];
    assert_eq!(
        get_at(&client, &proxied, "/v1/models", &via("2001:db8:1::7"))
            .await
            .status,
        200
    );
    assert_ip_refused(
        &get_at(&client, &proxied, "/v1/models", &via("2001:db8:bad::7")).await,
        "a blocked IPv6 range",
    );
    assert_ip_refused(
        &get_at(&client, &proxied, "/v1/models", &via("2001:db9::1")).await,
        "outside the IPv6 range",
    );
}

// ---- 3. CORS.

async fn preflight(gw: &Gateway, origin: &str, method: &str) -> Reply {
    let mut res = gw
        .client
        .request(Method::OPTIONS, format!("{}/v1/chat/completions", gw.base))
        .insert_header(("origin", origin))
        .insert_header(("access-control-request-method", method))
        .insert_header((
            "access-control-request-headers",
            "authorization, content-type",
        ))
        .send()
        .await
        .unwrap();
    let body = res.body().await.unwrap();
    Reply {
        status: res.status().as_u16(),
        headers: res.headers().clone(),
        text: String::from_utf8_lossy(&body).into_owned(),
    }
}

#[actix_rt::test]
async fn any_origin_may_call_by_default_without_credentials() {
    let gw = Gateway::start(&yaml("")).await;
    let pre = preflight(&gw, "https://chat.example.org", "POST").await;
    assert_eq!(pre.status, 200, "{}", pre.text);
    assert_eq!(
        pre.header("access-control-allow-origin"),
        Some("https://chat.example.org")
    );
    let allowed_headers = pre
        .header("access-control-allow-headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(
        allowed_headers.contains("authorization"),
        "{allowed_headers}"
    );
    assert_eq!(pre.header("access-control-allow-credentials"), None);

    let r = get(&gw, "/v1/models", &[("origin", "https://chat.example.org")]).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://chat.example.org")
    );
    // A request without an Origin carries no CORS headers.
    let plain = get(&gw, "/v1/models", &[]).await;
    assert_eq!(plain.header("access-control-allow-origin"), None);
}

#[actix_rt::test]
async fn cors_settings_limit_origins_methods_and_allow_credentials() {
    let gw = Gateway::start(&yaml(
        "  cors_allow_origins: ['https://app.example.com']\n  cors_allow_credentials: true\n  cors_allow_methods: ['GET', 'POST']\n",
    ))
    .await;
    let ok = preflight(&gw, "https://app.example.com", "POST").await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(
        ok.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(ok.header("access-control-allow-credentials"), Some("true"));

    let other = preflight(&gw, "https://evil.example.net", "POST").await;
    assert_ne!(other.status, 200);
    assert_eq!(other.header("access-control-allow-origin"), None);
    let method = preflight(&gw, "https://app.example.com", "DELETE").await;
    assert_ne!(method.status, 200);

    // Served, but without the headers a browser needs to hand the answer to the page.
    let r = get(&gw, "/v1/models", &[("origin", "https://evil.example.net")]).await;
    assert_eq!(r.header("access-control-allow-origin"), None);
    // The admin UI's own calls (same origin) still work.
    let own = get(&gw, "/key/list", &[("origin", gw.base.as_str())]).await;
    assert_eq!(own.status, 200, "{}", own.text);
}

// ---- 4. Virtual keys and management routes.

async fn generate(gw: &Gateway, body: Value) -> String {
    let r = gw.post("/key/generate", Some(MASTER), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()["key"].as_str().unwrap().to_owned()
}

#[actix_rt::test]
async fn a_virtual_key_reads_only_its_own_info_and_no_management_route() {
    let gw = Gateway::start(&yaml("")).await;
    let key = generate(&gw, json!({"key_alias": "caller"})).await;
    let other = generate(&gw, json!({"key_alias": "other"})).await;

    // Its own info, with or without naming itself.
    for path in ["/key/info".to_owned(), format!("/key/info?key={key}")] {
        let r = gw.get(&path, Some(&key)).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        assert_eq!(r.json()["info"]["key_alias"], "caller");
    }
    let regenerate_at = format!("/key/{other}/regenerate");
    let posts = [
        ("/key/generate", json!({})),
        ("/key/update", json!({"key": other, "max_budget": 0})),
        ("/key/block", json!({"key": other})),
        ("/key/unblock", json!({"key": other})),
        ("/key/regenerate", json!({"key": other})),
        (regenerate_at.as_str(), json!({})),
        ("/key/delete", json!({"keys": [other]})),
        ("/key/delete", json!({"key_aliases": ["other"]})),
    ];
    for (path, body) in &posts {
        let r = gw.post(path, Some(&key), body).await;
        assert_eq!(r.status, 401, "{path}: {}", r.text);
        assert_eq!(r.json()["error"]["type"], "auth_error", "{path}");
    }
    let gets = [
        format!("/key/info?key={other}"),
        "/key/list".into(),
        "/key/list?return_full_object=true".into(),
        "/spend/logs".into(),
        "/global/spend".into(),
        "/global/spend/report?start_date=2026-01-01&end_date=2026-12-31".into(),
        "/model/state".into(),
        "/audit/logs".into(),
    ];
    for path in &gets {
        let r = gw.get(path, Some(&key)).await;
        assert_eq!(r.status, 401, "{path}: {}", r.text);
        assert_eq!(r.json()["error"]["type"], "auth_error", "{path}");
        assert!(!r.text.contains("\"other\""), "{path} leaked: {}", r.text);
    }
    // Nothing changed: the audit log holds the two creations alone.
    let audit = gw.get("/audit/logs", Some(MASTER)).await.json();
    assert_eq!(audit["total"], 2, "{audit}");
    let info = gw
        .get(&format!("/key/info?key={other}"), Some(MASTER))
        .await;
    assert_eq!(info.json()["info"]["blocked"], false);
}

#[actix_rt::test]
async fn a_made_up_or_expired_key_is_refused_by_the_routes_that_call_no_upstream() {
    let gw = Gateway::start(&yaml("")).await;
    let count =
        json!({"model": "g", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]});
    let r = gw
        .post(
            "/v1/messages/count_tokens",
            Some("sk-made-up-key-0000"),
            &count,
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.text);
    let expired = generate(&gw, json!({"duration": "1s"})).await;
    let ok = gw
        .post("/v1/messages/count_tokens", Some(&expired), &count)
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let lapsed = crate::support::eventually(Duration::from_secs(10), async || {
        gw.get("/v1/models", Some(&expired)).await.status == 400
    })
    .await;
    assert!(lapsed, "the key never expired");
    for path in ["/v1/models", "/model/info", "/health"] {
        let r = gw.get(path, Some(&expired)).await;
        assert_eq!(r.status, 400, "{path}: {}", r.text);
        assert_eq!(r.json()["error"]["type"], "expired_key", "{path}");
    }
}

// ---- 5. The audit log.

async fn audit(gw: &Gateway, query: &str) -> Value {
    let r = gw.get(&format!("/audit/logs{query}"), Some(MASTER)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()
}

fn actions(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap().to_owned())
        .collect()
}

fn sha256_hex(text: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn key_changes_are_audited(db: &TestDb) {
    let gw = Gateway::start(&yaml(&format!("  database_url: '{}'\n", db.url))).await;
    let started = chrono::Utc::now() - chrono::Duration::seconds(1);
    let key = "sk-audited-PLAINTEXTCANARY-0001";
    let r = gw
        .post_with(
            "/key/generate",
            &[
                ("authorization", &format!("Bearer {MASTER}")),
                ("litellm-changed-by", "alice@example.com"),
            ],
            &json!({"key": key, "key_alias": "audited", "max_budget": 5}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let token = sha256_hex(key);
    let post = |path: &'static str, body: Value| {
        let gw = &gw;
        async move {
            let r = gw.post(path, Some(MASTER), &body).await;
            assert_eq!(r.status, 200, "{path}: {}", r.text);
            r.json()
        }
    };
    post(
        "/key/update",
        json!({"key": key, "max_budget": 7.5, "models": ["g"]}),
    )
    .await;
    post("/key/block", json!({"key": key})).await;
    post("/key/unblock", json!({"key": key})).await;
    let new_key = post("/key/regenerate", json!({"key": key})).await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let new_token = sha256_hex(&new_key);
    post("/key/delete", json!({"keys": [new_key]})).await;

    let all = audit(&gw, "").await;
    assert_eq!(
        actions(&all),
        ["deleted", "rotated", "updated", "blocked", "updated", "created"],
        "{all}"
    );
    assert_eq!(all["total"], 6);
    let rows = all["data"].as_array().unwrap();
    for row in rows {
        assert_eq!(row["table_name"], "LiteLLM_VerificationToken");
        let at = chrono::DateTime::parse_from_rfc3339(row["updated_at"].as_str().unwrap()).unwrap();
        assert!(at >= started && at <= chrono::Utc::now(), "{row}");
    }
    let (deleted, rotated, update) = (&rows[0], &rows[1], &rows[4]);
    let created = &rows[5];
    // Who.
    assert_eq!(created["changed_by"], "alice@example.com");
    assert_eq!(update["changed_by"], "master_key");
    assert_eq!(update["changed_by_api_key"], "master_key");
    // What: the fields that changed, before and after.
    assert_eq!(created["object_id"], token.as_str());
    assert_eq!(created["before_value"], Value::Null);
    assert_eq!(created["updated_values"]["key_alias"], "audited");
    assert_eq!(created["updated_values"]["max_budget"], 5.0);
    assert_eq!(
        update["before_value"],
        json!({"max_budget": 5.0, "models": []})
    );
    assert_eq!(
        update["updated_values"],
        json!({"max_budget": 7.5, "models": ["g"]})
    );
    assert_eq!(rows[3]["updated_values"], json!({"blocked": true}));
    assert_eq!(rows[2]["updated_values"], json!({"blocked": false}));
    assert_eq!(rotated["object_id"], token.as_str());
    assert_eq!(rotated["before_value"]["token"], token.as_str());
    assert_eq!(rotated["updated_values"]["token"], new_token.as_str());
    assert_eq!(deleted["object_id"], new_token.as_str());
    assert_eq!(deleted["before_value"]["key_alias"], "audited");
    assert_eq!(deleted["updated_values"], Value::Null);
    // Never a plaintext key, in the answer or in the database.
    assert!(!all.to_string().contains("PLAINTEXTCANARY"), "{all}");
    assert!(!all.to_string().contains(&new_key), "{all}");
    assert!(!all.to_string().contains(MASTER), "{all}");
    let stored = audit_rows_text(db);
    assert_eq!(stored.len(), 6);
    assert!(stored
        .iter()
        .all(|r| !r.contains("PLAINTEXTCANARY") && !r.contains(&new_key)));

    // Filters and pages.
    let of_key = audit(&gw, &format!("?object_id={key}")).await;
    assert_eq!(
        actions(&of_key),
        ["rotated", "updated", "blocked", "updated", "created"]
    );
    assert_eq!(actions(&audit(&gw, "?action=created").await), ["created"]);
    assert_eq!(
        audit(&gw, "?changed_by=alice@example.com").await["total"],
        1
    );
    let page = audit(&gw, "?page=2&page_size=4").await;
    assert_eq!(actions(&page), ["updated", "created"]);
    assert_eq!(page["total_pages"], 2);
    assert_eq!(audit(&gw, "?end_date=2020-01-01").await["total"], 0);
    let bad = gw.get("/audit/logs?page_size=501", Some(MASTER)).await;
    assert_eq!(bad.status, 400);
}

#[actix_rt::test]
async fn every_key_change_is_audited_with_who_what_and_when_on_sqlite_and_postgres() {
    for db in both() {
        key_changes_are_audited(&db).await;
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct RowText {
    #[diesel(sql_type = diesel::sql_types::Text)]
    row_text: String,
}

fn audit_rows_text(db: &TestDb) -> Vec<String> {
    let sql = "SELECT id || ' ' || changed_by || ' ' || changed_by_api_key || ' ' || object_id || ' ' || COALESCE(before_value, '') || ' ' || COALESCE(updated_values, '') AS row_text FROM llmgate_audit_logs";
    let rows: Vec<RowText> = match &db.target {
        DbTarget::Sqlite(path) => sql_query(sql)
            .load(&mut SqliteConnection::establish(path).unwrap())
            .unwrap(),
        DbTarget::Postgres(url) => sql_query(sql)
            .load(&mut PgConnection::establish(url).unwrap())
            .unwrap(),
    };
    rows.into_iter().map(|r| r.row_text).collect()
}

fn count(db: &TestDb, sql: &str) -> i64 {
    let rows: Vec<Count> = match &db.target {
        DbTarget::Sqlite(path) => sql_query(sql)
            .load(&mut SqliteConnection::establish(path).unwrap())
            .unwrap(),
        DbTarget::Postgres(url) => sql_query(sql)
            .load(&mut PgConnection::establish(url).unwrap())
            .unwrap(),
    };
    rows[0].n
}

fn execute(db: &TestDb, sql: &str) {
    match &db.target {
        DbTarget::Sqlite(path) => {
            sql_query(sql)
                .execute(&mut SqliteConnection::establish(path).unwrap())
                .unwrap();
        }
        DbTarget::Postgres(url) => {
            sql_query(sql)
                .execute(&mut PgConnection::establish(url).unwrap())
                .unwrap();
        }
    }
}

async fn no_change_without_its_audit_row(db: &TestDb) {
    let gw = Gateway::start(&yaml(&format!("  database_url: '{}'\n", db.url))).await;
    let key = generate(&gw, json!({"key_alias": "kept", "max_budget": 1})).await;
    let keys_sql = "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM llmgate_keys";
    assert_eq!(count(db, keys_sql), 1);
    // The audit log cannot be written any more: each change must fail whole.
    execute(db, "DROP TABLE llmgate_audit_logs");

    let r = gw
        .post("/key/generate", Some(MASTER), &json!({"key_alias": "lost"}))
        .await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert_eq!(
        count(db, keys_sql),
        1,
        "a key was created without its audit row"
    );
    let r = gw
        .post(
            "/key/update",
            Some(MASTER),
            &json!({"key": key, "max_budget": 9}),
        )
        .await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert_eq!(
        count(
            db,
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM llmgate_keys WHERE max_budget = 1"
        ),
        1,
        "a key was updated without its audit row"
    );
    let r = gw
        .post("/key/regenerate", Some(MASTER), &json!({"key": key}))
        .await;
    assert_eq!(r.status, 503, "{}", r.text);
    let r = gw
        .post("/key/delete", Some(MASTER), &json!({"keys": [key]}))
        .await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert_eq!(
        count(
            db,
            &format!(
                "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM llmgate_keys WHERE token = '{}'",
                sha256_hex(&key)
            )
        ),
        1,
        "a key was deleted or rotated without its audit row"
    );
    // The key still works as it was.
    let chat = gw
        .post("/v1/chat/completions", Some(&key), &chat_body("g"))
        .await;
    assert_eq!(chat.status, 200, "{}", chat.text);
}

#[actix_rt::test]
async fn a_key_change_whose_audit_row_cannot_be_written_does_not_happen_on_sqlite_and_postgres() {
    for db in both() {
        no_change_without_its_audit_row(&db).await;
    }
}

#[actix_rt::test]
async fn store_audit_logs_false_keeps_no_audit_rows() {
    let gw = Gateway::start(&format!(
        "{}litellm_settings: {{store_audit_logs: false}}\n",
        yaml("")
    ))
    .await;
    let key = generate(&gw, json!({})).await;
    let r = gw
        .post("/key/delete", Some(MASTER), &json!({"keys": [key]}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(audit(&gw, "").await["total"], 0);
}

#[actix_rt::test]
async fn only_the_master_key_reads_the_audit_log() {
    let mock = MockUpstream::start().await;
    let gw = Gateway::start(&format!(
        "model_list:\n  - model_name: g\n    litellm_params: {{model: openai/g, api_base: '{}'}}\ngeneral_settings: {{master_key: {MASTER}}}\n",
        mock.v1()
    ))
    .await;
    assert_eq!(gw.get("/audit/logs", None).await.status, 401);
    assert_eq!(
        gw.get("/audit/logs", Some("sk-not-the-master-key"))
            .await
            .status,
        401
    );
    assert_eq!(gw.get("/audit/logs", Some(MASTER)).await.status, 200);
}
