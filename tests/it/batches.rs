//! `/batches` passed through to OpenAI and Azure deployments (a real mock of their batches API
//! on a random port): a batch runs on the deployment that holds its input file, each key
//! reaches only its own batches, and a completed batch's cost is charged to its key once, on
//! SQLite and PostgreSQL.

use llmgate::actors::Flush;
use llmgate::keys::hash_key;
use serde_json::{json, Value};

use crate::support::assert_error_body;
use crate::support::db::both;
use crate::support::files::{
    call, input_file, key_spend, new_key, spend_rows, upload_file, MASTER,
};
use crate::support::files_upstream::FilesUpstream;
use crate::support::Gateway;

/// Two OpenAI deployments on two upstreams (`gpt-a`, `gpt-b`, priced), and `settings`.
fn config(a: &FilesUpstream, b: &FilesUpstream, settings: &str) -> String {
    format!(
        "model_list:
  - model_name: gpt-a
    litellm_params: {{model: openai/gpt-4o-mini, api_base: '{}', api_key: sk-a, input_cost_per_token: 0.000002, output_cost_per_token: 0.000008}}
    model_info: {{id: deployment-a}}
  - model_name: gpt-b
    litellm_params: {{model: openai/gpt-4o, api_base: '{}', api_key: sk-b, input_cost_per_token: 0.000002, output_cost_per_token: 0.000008}}
    model_info: {{id: deployment-b}}
general_settings:
  master_key: {MASTER}
{settings}",
        a.v1(),
        b.v1()
    )
}

fn batch_request(input_file_id: &str) -> Value {
    json!({"input_file_id": input_file_id, "endpoint": "/v1/chat/completions",
        "completion_window": "24h", "metadata": {"job": "nightly"}})
}

fn id_of(reply: &Value) -> String {
    reply["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id: {reply}"))
        .to_owned()
}

/// An output file answering two requests: 30 prompt and 8 completion tokens in all.
const OUTPUT: &str = concat!(
    r#"{"id":"batch_req_1","custom_id":"r1","response":{"status_code":200,"request_id":"q1","body":{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o","choices":[],"usage":{"prompt_tokens":20,"completion_tokens":5,"total_tokens":25}}},"error":null}"#,
    "\n",
    r#"{"id":"batch_req_2","custom_id":"r2","response":{"status_code":200,"request_id":"q2","body":{"id":"chatcmpl-2","object":"chat.completion","model":"gpt-4o","choices":[],"usage":{"prompt_tokens":10,"completion_tokens":3,"total_tokens":13}}},"error":null}"#,
    "\n",
);

/// Half the deployment's prices (batch pricing), for `OUTPUT`'s usage.
const BATCH_COST: f64 = 30.0 * 0.000001 + 8.0 * 0.000004;

#[actix_rt::test]
async fn a_batch_runs_on_the_deployment_that_holds_its_input_file() {
    let (a, b) = (FilesUpstream::start().await, FilesUpstream::start().await);
    let gw = Gateway::start(&config(&a, &b, "")).await;
    let key = new_key(&gw, json!({})).await;
    let up = upload_file(&gw, &key, &input_file(), &[("model", "gpt-b")]).await;
    let file = id_of(&up.json());

    let (created, _) = call(
        &gw,
        "POST",
        "/v1/batches",
        &key,
        Some(&batch_request(&file)),
    )
    .await;

    assert_eq!(created.status, 200, "{}", created.text);
    let batch = id_of(&created.json());
    assert!(b.holds_batch(&batch));
    assert!(a.calls().is_empty(), "nothing went to the other deployment");
    let sent: Value = serde_json::from_slice(&b.calls_to("POST", "/v1/batches")[0].body).unwrap();
    assert_eq!(sent, batch_request(&file));
    assert_eq!(created.header("x-litellm-model-id"), Some("deployment-b"));

    let (got, _) = call(&gw, "GET", &format!("/v1/batches/{batch}"), &key, None).await;
    assert_eq!(got.json()["status"], "validating");
    let (cancelled, _) = call(&gw, "POST", &format!("/batches/{batch}/cancel"), &key, None).await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.text);
    assert_eq!(cancelled.json()["status"], "cancelling");
    let (listed, _) = call(&gw, "GET", "/v1/batches?model=gpt-b", &key, None).await;
    assert_eq!(
        listed.json()["data"][0]["id"],
        batch.as_str(),
        "{}",
        listed.text
    );
    assert!(a.calls().is_empty());
}

#[actix_rt::test]
async fn a_key_reaches_only_its_own_batches_and_files() {
    for db in both() {
        let (a, b) = (FilesUpstream::start().await, FilesUpstream::start().await);
        let settings = format!("  database_url: '{}'\n", db.url);
        let gw = Gateway::start(&config(&a, &b, &settings)).await;
        let (mine, theirs) = (new_key(&gw, json!({})).await, new_key(&gw, json!({})).await);
        let file = id_of(&upload_file(&gw, &mine, &input_file(), &[]).await.json());
        let (created, _) = call(
            &gw,
            "POST",
            "/v1/batches",
            &mine,
            Some(&batch_request(&file)),
        )
        .await;
        let batch = id_of(&created.json());
        let before = a.calls().len();

        let (on_their_file, _) = call(
            &gw,
            "POST",
            "/v1/batches",
            &theirs,
            Some(&batch_request(&file)),
        )
        .await;
        assert_error_body(&on_their_file.json(), 404, "not_found_error");
        for (method, path) in [
            ("GET", format!("/v1/batches/{batch}")),
            ("POST", format!("/v1/batches/{batch}/cancel")),
        ] {
            let (r, _) = call(&gw, method, &path, &theirs, None).await;
            assert_error_body(&r.json(), 404, "not_found_error");
        }
        assert_eq!(a.calls().len(), before, "{:?}", db.target);

        let (theirs_listed, _) = call(&gw, "GET", "/v1/batches", &theirs, None).await;
        assert_eq!(
            theirs_listed.json()["data"],
            json!([]),
            "{}",
            theirs_listed.text
        );
        let (mine_listed, _) = call(&gw, "GET", "/v1/batches", &mine, None).await;
        assert_eq!(mine_listed.json()["data"][0]["id"], batch.as_str());
        let (master_sees, _) =
            call(&gw, "GET", &format!("/v1/batches/{batch}"), MASTER, None).await;
        assert_eq!(master_sees.status, 200);
        gw.stop().await;
    }
}

#[actix_rt::test]
async fn a_completed_batchs_cost_is_charged_to_its_key_once() {
    for db in both() {
        let (a, b) = (FilesUpstream::start().await, FilesUpstream::start().await);
        let settings = format!("  database_url: '{}'\n", db.url);
        let gw = Gateway::start(&config(&a, &b, &settings)).await;
        let key = new_key(&gw, json!({})).await;
        let file = id_of(
            &upload_file(&gw, &key, &input_file(), &[("model", "gpt-b")])
                .await
                .json(),
        );
        let (created, _) = call(
            &gw,
            "POST",
            "/v1/batches",
            &key,
            Some(&batch_request(&file)),
        )
        .await;
        let batch = id_of(&created.json());
        let output = b.complete(&batch, OUTPUT);

        // The master key looking first charges nothing: the batch is its key's.
        let (peek, _) = call(&gw, "GET", &format!("/v1/batches/{batch}"), MASTER, None).await;
        assert_eq!(peek.header("x-litellm-response-cost"), Some("0"));
        // Several looks at once charge it once between them.
        let path = format!("/v1/batches/{batch}");
        let looks = (0..4).map(|_| call(&gw, "GET", &path, &key, None));
        let mut costs = Vec::new();
        for (done, _) in futures_util::future::join_all(looks).await {
            assert_eq!(done.json()["status"], "completed");
            let cost = done.header("x-litellm-response-cost").unwrap();
            costs.push(cost.parse::<f64>().unwrap());
        }
        assert_eq!(costs.iter().filter(|c| **c > 0.0).count(), 1, "{costs:?}");
        let cost: f64 = costs.iter().sum();
        assert!((cost - BATCH_COST).abs() < 1e-12, "{cost} vs {BATCH_COST}");
        let (again, _) = call(&gw, "GET", &path, &key, None).await;
        assert_eq!(again.header("x-litellm-response-cost"), Some("0"));

        // The output file is the key's to read.
        let (content, bytes) = call(
            &gw,
            "GET",
            &format!("/v1/files/{output}/content"),
            &key,
            None,
        )
        .await;
        assert_eq!(content.status, 200, "{}", content.text);
        assert_eq!(&bytes[..], OUTPUT.as_bytes());

        gw.state.spend().send(Flush).await.unwrap().unwrap();
        let token = hash_key(&key);
        assert!(
            (key_spend(&db.target, &token) - BATCH_COST).abs() < 1e-12,
            "{:?}",
            db.target
        );
        let rows = spend_rows(&db.target, &token);
        let charged: Vec<_> = rows.iter().filter(|r| r.spend > 0.0).collect();
        assert_eq!(charged.len(), 1, "{rows:?}");
        assert_eq!(
            (charged[0].prompt_tokens, charged[0].completion_tokens),
            (30, 8)
        );
        assert_eq!(charged[0].model_id, "deployment-b");
        gw.stop().await;
    }
}

#[actix_rt::test]
async fn azure_batches_use_the_resource_url_with_the_api_version() {
    let azure = FilesUpstream::start().await;
    let yaml = format!(
        "model_list:
  - model_name: gpt-batch
    litellm_params: {{model: azure/gpt-4o-batch, api_base: '{}', api_key: azure-key, api_version: '2025-03-01-preview'}}
general_settings:
  master_key: {MASTER}
",
        azure.base
    );
    let gw = Gateway::start(&yaml).await;
    let file = id_of(
        &upload_file(
            &gw,
            MASTER,
            &input_file(),
            &[("custom_llm_provider", "azure")],
        )
        .await
        .json(),
    );

    let (created, _) = call(
        &gw,
        "POST",
        "/azure/v1/batches",
        MASTER,
        Some(&batch_request(&file)),
    )
    .await;

    assert_eq!(created.status, 200, "{}", created.text);
    let batch = id_of(&created.json());
    let sent = azure.calls_to("POST", "/batches").pop().unwrap();
    assert_eq!(sent.path, "/openai/batches");
    assert_eq!(sent.query, "api-version=2025-03-01-preview");
    assert_eq!(sent.headers["api-key"], "azure-key");
    call(
        &gw,
        "POST",
        &format!("/v1/batches/{batch}/cancel"),
        MASTER,
        None,
    )
    .await;
    let cancel = azure.calls().pop().unwrap();
    assert_eq!(cancel.path, format!("/openai/batches/{batch}/cancel"));
    assert_eq!(cancel.query, "api-version=2025-03-01-preview");
}

#[actix_rt::test]
async fn a_batch_request_missing_a_field_is_a_400_naming_it() {
    let (a, b) = (FilesUpstream::start().await, FilesUpstream::start().await);
    let gw = Gateway::start(&config(&a, &b, "")).await;
    let file = id_of(&upload_file(&gw, MASTER, &input_file(), &[]).await.json());

    for field in ["input_file_id", "endpoint", "completion_window"] {
        let mut body = batch_request(&file);
        body.as_object_mut().unwrap().remove(field);
        let (r, _) = call(&gw, "POST", "/v1/batches", MASTER, Some(&body)).await;
        assert_error_body(&r.json(), 400, "invalid_request_error");
        assert_eq!(r.json()["error"]["param"], field);
    }
    let mut wrong = batch_request(&file);
    wrong["metadata"] = json!("not an object");
    let (r, _) = call(&gw, "POST", "/v1/batches", MASTER, Some(&wrong)).await;
    assert_eq!(r.json()["error"]["param"], "metadata");
    let r = gw
        .post_raw("/v1/batches", Some(MASTER), b"{not json".to_vec())
        .await;
    assert_error_body(&r.json(), 400, "invalid_request_error");
    let (unknown, _) = call(
        &gw,
        "POST",
        "/v1/batches",
        MASTER,
        Some(&batch_request("file-nope")),
    )
    .await;
    assert_error_body(&unknown.json(), 404, "not_found_error");
    assert!(a.calls_to("POST", "/batches").is_empty());
}
