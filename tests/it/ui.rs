//! The admin UI's files and the spend report its charts read, on SQLite and PostgreSQL.

use std::collections::HashMap;

use chrono::{Duration, Utc};
use serde_json::{json, Value};

use crate::support::db::both;
use crate::support::gateway::Reply;
use crate::support::{chat_body, Gateway, MockUpstream};

const MASTER: &str = "sk-ui-master";

fn config(mock: &MockUpstream, db_url: Option<&str>) -> String {
    let deployment = |name: &str, model: &str| {
        format!(
            "  - model_name: {name}\n    litellm_params: {{model: openai/{model}, api_base: '{}', \
             api_key: sk-upstream, input_cost_per_token: 0.000001, output_cost_per_token: 0.000002}}\n",
            mock.v1()
        )
    };
    let db = db_url.map_or(String::new(), |u| format!("  database_url: '{u}'\n"));
    format!(
        "model_list:\n{}{}general_settings:\n  master_key: {MASTER}\n  proxy_batch_write_at: 60\n{db}",
        deployment("alpha", "alpha-1"),
        deployment("beta", "beta-1"),
    )
}

fn assert_ui_headers(r: &Reply, content_type: &str) {
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("content-type"), Some(content_type));
    let csp = r.header("content-security-policy").expect("a CSP");
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(!csp.contains("http") && !csp.contains("unsafe"), "{csp}");
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
}

#[actix_rt::test]
async fn the_admin_ui_is_served_without_a_key_with_its_content_types_and_a_strict_csp() {
    let mock = MockUpstream::start().await;
    let gw = Gateway::start(&config(&mock, None)).await;
    let html = "text/html; charset=utf-8";
    for path in ["/ui", "/ui/", "/ui/index.html"] {
        let r = gw.get(path, None).await;
        assert_ui_headers(&r, html);
        assert!(r.text.contains("<script src=\"/ui/app.js\""), "{path}");
        assert!(r.text.contains("href=\"/ui/app.css\""), "{path}");
        assert!(!r.text.contains("http"), "the page names another origin");
    }
    let js = gw.get("/ui/app.js", None).await;
    assert_ui_headers(&js, "text/javascript; charset=utf-8");
    assert!(js.text.contains("sessionStorage"));
    // The one URL in the script is the SVG namespace, which is a name, never fetched.
    assert_eq!(
        js.text.matches("http").count(),
        js.text.matches("http://www.w3.org/2000/svg").count()
    );
    let css = gw.get("/ui/app.css", None).await;
    assert_ui_headers(&css, "text/css; charset=utf-8");
    assert!(!css.text.contains("http") && !css.text.contains("@import"));

    let missing = gw.get("/ui/secrets.txt", None).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error"]["type"], "not_found_error");
    assert_eq!(missing.json()["error"]["code"], "404");
    // The page is public; what it calls is not.
    assert_eq!(gw.get("/key/list", None).await.status, 401);
}

#[actix_rt::test]
async fn the_spend_report_needs_the_master_key_and_names_a_bad_parameter() {
    let mock = MockUpstream::start().await;
    let gw = Gateway::start(&config(&mock, None)).await;
    let path = "/global/spend/report?start_date=2026-01-01&end_date=2026-01-31";
    let r = gw.get(path, None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["type"], "auth_error");
    let key = gw
        .post("/key/generate", Some(MASTER), &json!({}))
        .await
        .json()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = gw.get(path, Some(&key)).await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert!(!r.text.contains(&key));

    for (query, param) in [
        ("end_date=2026-01-31", "start_date"),
        ("start_date=2026-01-01", "end_date"),
        ("start_date=01/01/2026&end_date=2026-01-31", "start_date"),
        ("start_date=2026-02-01&end_date=2026-01-31", "end_date"),
        (
            "start_date=2026-01-01&end_date=2026-01-31&group_by=everything",
            "group_by",
        ),
    ] {
        let r = gw
            .get(&format!("/global/spend/report?{query}"), Some(MASTER))
            .await;
        assert_eq!(r.status, 400, "{query}: {}", r.text);
        assert_eq!(r.json()["error"]["type"], "invalid_request_error");
        assert_eq!(r.json()["error"]["param"], param, "{query}");
        assert_eq!(r.json()["error"]["code"], "400");
    }
    let r = gw.get(path, Some(MASTER)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json(), json!([]));
}

async fn new_key(gw: &Gateway, body: Value) -> (String, String) {
    let r = gw.post("/key/generate", Some(MASTER), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    (
        v["key"].as_str().unwrap().to_owned(),
        v["token_id"].as_str().unwrap().to_owned(),
    )
}

/// Sends a chat request and returns the cost the gateway charged for it.
async fn charged(gw: &Gateway, key: &str, model: &str, user: Option<&str>) -> f64 {
    let mut body = chat_body(model);
    if let Some(u) = user {
        body["user"] = json!(u);
    }
    let r = gw.post("/v1/chat/completions", Some(key), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let cost: f64 = r
        .header("x-litellm-response-cost")
        .unwrap()
        .parse()
        .unwrap();
    assert!(cost > 0.0);
    cost
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

/// Sums a daily report's groups by their name, over every day.
fn totals_by(report: &Value, list: &str, name: &str) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    for day in report.as_array().unwrap() {
        assert!(day["group_by_day"]
            .as_str()
            .unwrap()
            .ends_with("T00:00:00+00:00"));
        for group in day[list].as_array().unwrap() {
            let key = match &group[name] {
                Value::Null => "null".to_owned(),
                v => v.as_str().unwrap().to_owned(),
            };
            let parts: f64 = group["metadata"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["spend"].as_f64().unwrap())
                .sum();
            let total = group["total_spend"].as_f64().unwrap();
            assert!(close(parts, total), "{group}");
            *out.entry(key).or_default() += total;
        }
    }
    out
}

#[actix_rt::test]
async fn the_spend_report_sums_real_requests_by_model_key_team_and_customer_on_sqlite_and_postgres()
{
    for db in both() {
        let mock = MockUpstream::start().await;
        let gw = Gateway::start(&config(&mock, Some(&db.url))).await;
        let r = gw
            .post("/team/new", Some(MASTER), &json!({"team_id": "team-a"}))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let (key_a, token_a) = new_key(&gw, json!({"team_id": "team-a", "duration": null})).await;
        let (key_b, token_b) = new_key(&gw, json!({"duration": null})).await;
        let a_alpha_for_customer = charged(&gw, &key_a, "alpha", Some("cust-1")).await;
        let a_alpha = a_alpha_for_customer + charged(&gw, &key_a, "alpha", None).await;
        let a_beta = charged(&gw, &key_a, "beta", None).await;
        let b_beta = charged(&gw, &key_b, "beta", Some("cust-1")).await;
        let master_alpha = charged(&gw, MASTER, "alpha", None).await;
        assert_eq!(mock.call_count(), 5);

        // Around today, so a request made just before midnight still counts.
        let today = Utc::now().date_naive();
        let range = format!(
            "start_date={}&end_date={}",
            today - Duration::days(1),
            today + Duration::days(1)
        );
        // The requests are still in the spend batch (written every 60 s): the report writes it.
        let report = |group_by: &str| {
            let path = format!("/global/spend/report?{range}&group_by={group_by}");
            let gw = &gw;
            async move {
                let r = gw.get(&path, Some(MASTER)).await;
                assert_eq!(r.status, 200, "{}", r.text);
                r.json()
            }
        };

        let models = totals_by(&report("model").await, "models", "model");
        assert_eq!(models.len(), 2, "{models:?}");
        assert!(close(models["alpha"], a_alpha + master_alpha), "{models:?}");
        assert!(close(models["beta"], a_beta + b_beta), "{models:?}");
        let by_model = report("model").await;
        let alpha = by_model[0]["models"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["model"] == "alpha")
            .unwrap()
            .clone();
        let mut keys: Vec<&str> = alpha["metadata"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["api_key"].as_str().unwrap())
            .collect();
        keys.sort_unstable();
        let mut expected = vec![token_a.as_str(), ""];
        expected.sort_unstable();
        assert_eq!(keys, expected, "the master key's spend has no key: {alpha}");
        assert_eq!(alpha["metadata"][0]["model"], "alpha-1");

        let teams = totals_by(&report("team").await, "teams", "team_name");
        assert!(close(teams["team-a"], a_alpha + a_beta), "{teams:?}");
        assert!(
            close(teams["Unassigned Team"], b_beta + master_alpha),
            "{teams:?}"
        );

        let customers = totals_by(&report("customer").await, "customers", "customer");
        assert_eq!(customers.len(), 2, "{customers:?}");
        assert!(
            close(customers["cust-1"], a_alpha_for_customer + b_beta),
            "{customers:?}"
        );
        assert!(
            close(
                customers["null"],
                a_alpha - a_alpha_for_customer + a_beta + master_alpha
            ),
            "{customers:?}"
        );

        // Per key over the whole period, LiteLLM's shape: the biggest spender first.
        let per_key = report("api_key").await;
        let rows = per_key.as_array().unwrap();
        assert_eq!(rows.len(), 3, "{per_key}");
        let a = rows.iter().find(|r| r["api_key"] == token_a).unwrap();
        assert!(close(a["total_cost"].as_f64().unwrap(), a_alpha + a_beta));
        assert!(a["total_input_tokens"].as_i64().unwrap() > 0);
        assert_eq!(a["model_details"].as_array().unwrap().len(), 2);
        let costs: Vec<f64> = rows
            .iter()
            .map(|r| r["total_cost"].as_f64().unwrap())
            .collect();
        assert!(costs.windows(2).all(|w| w[0] >= w[1]), "{costs:?}");

        // `api_key=` narrows the report to one key, given in plaintext or as its hash.
        for given in [&key_b, &token_b] {
            let r = gw
                .get(
                    &format!("/global/spend/report?{range}&api_key={given}"),
                    Some(MASTER),
                )
                .await;
            let only = r.json();
            assert_eq!(only.as_array().unwrap().len(), 1, "{only}");
            assert_eq!(only[0]["api_key"], token_b.as_str());
            assert!(close(only[0]["total_cost"].as_f64().unwrap(), b_beta));
        }

        // A period with no requests is empty.
        let r = gw
            .get(
                "/global/spend/report?start_date=2020-01-01&end_date=2020-01-31&group_by=model",
                Some(MASTER),
            )
            .await;
        assert_eq!(r.json(), json!([]));

        // `/key/list` with full objects shows each key's spend, as the UI lists it.
        let list = gw
            .get("/key/list?return_full_object=true&size=10", Some(MASTER))
            .await
            .json();
        let listed = list["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["token"] == token_a)
            .unwrap()
            .clone();
        assert!(close(listed["spend"].as_f64().unwrap(), a_alpha + a_beta));
        assert_eq!(listed["team_id"], "team-a");
        gw.stop().await;
    }
}

#[test]
fn the_docker_build_copies_the_ui_files_the_binary_embeds() {
    let dockerfile = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docker/Dockerfile"),
    )
    .unwrap();
    assert!(dockerfile.contains("COPY ui ./ui"), "{dockerfile}");
}
