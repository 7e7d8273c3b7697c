//! `/files` passed through to OpenAI and Azure deployments (a real mock of their files API on
//! a random port): uploads re-sent intact, the deployment chosen by model or provider, each
//! key reaching only its own files, errors in the contract's shape, and a spend-log row per
//! call, on SQLite and PostgreSQL.

use llmgate::actors::Flush;
use llmgate::keys::hash_key;
use serde_json::{json, Value};

use crate::support::assert_error_body;
use crate::support::db::both;
use crate::support::files::{
    call, form, input_file, new_key, spend_rows, upload, upload_file, MASTER,
};
use crate::support::files_upstream::FilesUpstream;
use crate::support::Gateway;

const OPENAI_KEY: &str = "sk-upstream-openai-files";
const AZURE_KEY: &str = "azure-upstream-key-files";

/// One OpenAI deployment (`gpt-files`) on `openai`, and `extra` entries of `model_list`.
fn config(openai: &FilesUpstream, extra_models: &str, settings: &str) -> String {
    format!(
        "model_list:
  - model_name: gpt-files
    litellm_params: {{model: openai/gpt-4o-mini, api_base: '{}', api_key: {OPENAI_KEY}}}
    model_info: {{id: openai-files}}
{extra_models}general_settings:
  master_key: {MASTER}
{settings}",
        openai.v1()
    )
}

fn azure_entry(name: &str, azure: &FilesUpstream, id: &str) -> String {
    format!(
        "  - model_name: {name}
    litellm_params: {{model: azure/gpt-4o-batch, api_base: '{}', api_key: {AZURE_KEY}, api_version: '2024-10-21'}}
    model_info: {{id: {id}}}
",
        azure.base
    )
}

fn id_of(reply_text: &str) -> String {
    let v: Value = serde_json::from_str(reply_text).unwrap();
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id: {reply_text}"))
        .to_owned()
}

fn ids(list: &Value) -> Vec<String> {
    let mut ids: Vec<String> = list["data"]
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

#[actix_rt::test]
async fn an_upload_reaches_the_openai_deployment_as_the_client_sent_it() {
    let openai = FilesUpstream::start().await;
    let gw = Gateway::start(&config(&openai, "", "")).await;
    let key = new_key(&gw, json!({})).await;
    let bytes = input_file();
    let (content_type, body) = form(&[("purpose", "batch")], Some(("input.jsonl", &bytes)));

    let r = upload(&gw, "/v1/files", &key, &content_type, body.clone()).await;

    assert_eq!(r.status, 200, "{}", r.text);
    let id = id_of(&r.text);
    assert_eq!(r.json()["purpose"], "batch");
    assert_eq!(r.json()["bytes"], bytes.len());
    let sent = openai.calls_to("POST", "/v1/files");
    assert_eq!(sent.len(), 1);
    assert_eq!(
        &sent[0].body[..],
        &body[..],
        "the form is re-sent byte for byte"
    );
    assert_eq!(sent[0].headers["content-type"], content_type);
    assert_eq!(
        sent[0].headers["authorization"],
        format!("Bearer {OPENAI_KEY}")
    );
    assert_eq!(&openai.file_bytes(&id).unwrap()[..], &bytes[..]);
    assert_eq!(r.header("x-litellm-model-id"), Some("openai-files"));
    assert_eq!(r.header("x-litellm-model-group"), Some("gpt-files"));
    assert_eq!(r.header("x-litellm-response-cost"), Some("0"));
    assert!(r.header("x-litellm-call-id").is_some());
    assert_eq!(r.header("llm_provider-x-mock-files"), Some("yes"));
}

#[actix_rt::test]
async fn the_gateways_own_form_fields_are_taken_out_and_the_file_arrives_unchanged() {
    let openai = FilesUpstream::start().await;
    let gw = Gateway::start(&config(&openai, "", "")).await;
    let bytes = input_file();

    let r = upload_file(
        &gw,
        MASTER,
        &bytes,
        &[("model", "gpt-files"), ("custom_llm_provider", "openai")],
    )
    .await;

    assert_eq!(r.status, 200, "{}", r.text);
    let sent = &openai.calls_to("POST", "/v1/files")[0];
    let upstream_form =
        llmgate::files::multipart::Form::parse(&sent.headers["content-type"], sent.body.clone())
            .unwrap();
    let names: Vec<&str> = upstream_form
        .parts()
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(names, ["purpose", "file"]);
    assert_eq!(&openai.file_bytes(&id_of(&r.text)).unwrap()[..], &bytes[..]);
}

#[actix_rt::test]
async fn each_key_reaches_only_its_own_files_and_the_master_key_reaches_all() {
    for db in both() {
        let openai = FilesUpstream::start().await;
        let settings = format!("  database_url: '{}'\n", db.url);
        let gw = Gateway::start(&config(&openai, "", &settings)).await;
        let (a, b) = (new_key(&gw, json!({})).await, new_key(&gw, json!({})).await);
        let a1 = id_of(&upload_file(&gw, &a, b"one\n", &[]).await.text);
        let a2 = id_of(&upload_file(&gw, &a, b"two\n", &[]).await.text);
        let b1 = id_of(&upload_file(&gw, &b, b"three\n", &[]).await.text);

        let (listed, _) = call(&gw, "GET", "/v1/files", &a, None).await;
        assert_eq!(listed.status, 200, "{}", listed.text);
        let mut want = vec![a1.clone(), a2.clone()];
        want.sort();
        assert_eq!(ids(&listed.json()), want, "{:?}", db.target);
        assert_eq!(
            ids(&call(&gw, "GET", "/files", &b, None).await.0.json()),
            [b1]
        );
        assert_eq!(
            ids(&call(&gw, "GET", "/v1/files", MASTER, None).await.0.json()).len(),
            3
        );

        // Another key's file is not there for this key: 404, and the upstream never hears of it.
        let before = openai.calls().len();
        for (method, path) in [
            ("GET", format!("/v1/files/{a1}")),
            ("GET", format!("/v1/files/{a1}/content")),
            ("DELETE", format!("/v1/files/{a1}")),
        ] {
            let (r, _) = call(&gw, method, &path, &b, None).await;
            assert_error_body(&r.json(), 404, "not_found_error");
        }
        assert_eq!(openai.calls().len(), before);

        let (got, _) = call(&gw, "GET", &format!("/v1/files/{a1}"), &a, None).await;
        assert_eq!(got.status, 200, "{}", got.text);
        assert_eq!(got.json()["id"], a1.as_str());
        let (content, bytes) = call(&gw, "GET", &format!("/v1/files/{a1}/content"), &a, None).await;
        assert_eq!(content.status, 200);
        assert_eq!(&bytes[..], b"one\n");
        let (deleted, _) = call(&gw, "DELETE", &format!("/v1/files/{a1}"), &a, None).await;
        assert_eq!(
            deleted.json(),
            json!({"id": a1, "object": "file", "deleted": true})
        );
        assert!(!openai.holds_file(&a1));
        let (gone, _) = call(&gw, "GET", &format!("/v1/files/{a1}"), MASTER, None).await;
        assert_error_body(&gone.json(), 404, "not_found_error");
        let (unknown, _) = call(&gw, "GET", "/v1/files/file-never-made", MASTER, None).await;
        assert_error_body(&unknown.json(), 404, "not_found_error");
        gw.stop().await;
    }
}

#[actix_rt::test]
async fn a_keys_list_pages_over_other_keys_files_to_its_limit() {
    let openai = FilesUpstream::start().await;
    let gw = Gateway::start(&config(&openai, "", "")).await;
    let (a, b) = (new_key(&gw, json!({})).await, new_key(&gw, json!({})).await);
    let mut mine = Vec::new();
    for n in 0..3 {
        mine.push(id_of(
            &upload_file(&gw, &a, format!("{n}").as_bytes(), &[])
                .await
                .text,
        ));
        for _ in 0..2 {
            upload_file(&gw, &b, b"not a's", &[]).await;
        }
    }

    let (first, _) = call(&gw, "GET", "/v1/files?limit=2&order=asc", &a, None).await;
    let first = first.json();
    assert_eq!(first["data"].as_array().unwrap().len(), 2, "{first}");
    assert_eq!(first["has_more"], true);
    let after = first["last_id"].as_str().unwrap();
    let (rest, _) = call(
        &gw,
        "GET",
        &format!("/v1/files?limit=2&order=asc&after={after}"),
        &a,
        None,
    )
    .await;
    let rest = rest.json();
    assert_eq!(rest["has_more"], false, "{rest}");
    let mut seen = ids(&first);
    seen.extend(ids(&rest));
    seen.sort();
    mine.sort();
    assert_eq!(seen, mine);
    let (bad, _) = call(&gw, "GET", "/v1/files?limit=lots", &a, None).await;
    assert_error_body(&bad.json(), 400, "invalid_request_error");
    assert_eq!(bad.json()["error"]["param"], "limit");
}

#[actix_rt::test]
async fn azure_files_use_the_resource_url_with_the_api_version_and_the_api_key_header() {
    let openai = FilesUpstream::start().await;
    let azure = FilesUpstream::start().await;
    let gw = Gateway::start(&config(
        &openai,
        &azure_entry("gpt-batch", &azure, "azure-files"),
        "",
    ))
    .await;
    let bytes = input_file();

    let r = upload_file(&gw, MASTER, &bytes, &[("custom_llm_provider", "azure")]).await;

    assert_eq!(r.status, 200, "{}", r.text);
    let id = id_of(&r.text);
    let sent = &azure.calls()[0];
    assert_eq!(sent.path, "/openai/files");
    assert_eq!(sent.query, "api-version=2024-10-21");
    assert_eq!(sent.headers["api-key"], AZURE_KEY);
    assert!(!sent.headers.contains_key("authorization"));
    assert_eq!(r.header("x-litellm-model-id"), Some("azure-files"));
    assert!(openai.calls().is_empty());

    let (content, got) = call(&gw, "GET", &format!("/v1/files/{id}/content"), MASTER, None).await;
    assert_eq!(content.status, 200);
    assert_eq!(&got[..], &bytes[..]);
    let last = azure.calls().pop().unwrap();
    assert_eq!(last.path, format!("/openai/files/{id}/content"));
    assert_eq!(last.query, "api-version=2024-10-21");

    let (listed, _) = call(&gw, "GET", "/azure/v1/files?purpose=batch", MASTER, None).await;
    assert_eq!(ids(&listed.json()), [id]);
    assert_eq!(
        azure.calls().pop().unwrap().query,
        "api-version=2024-10-21&purpose=batch"
    );
}

#[actix_rt::test]
async fn the_model_picks_the_deployment_and_a_key_not_allowed_it_gets_403() {
    let openai = FilesUpstream::start().await;
    let azure = FilesUpstream::start().await;
    let extra = format!(
        "{}  - model_name: claude
    litellm_params: {{model: anthropic/claude-3-5-haiku-latest, api_key: k}}
",
        azure_entry("gpt-batch", &azure, "azure-files")
    );
    let gw = Gateway::start(&config(&openai, &extra, "")).await;
    let limited = new_key(&gw, json!({"models": ["gpt-files"]})).await;

    let by_model = upload_file(&gw, MASTER, b"x", &[("model", "gpt-batch")]).await;
    assert!(azure.holds_file(&id_of(&by_model.text)));
    let by_target = upload_file(&gw, MASTER, b"x", &[("target_model_names", "gpt-batch")]).await;
    assert!(azure.holds_file(&id_of(&by_target.text)));
    let by_default = upload_file(&gw, &limited, b"x", &[]).await;
    assert!(
        openai.holds_file(&id_of(&by_default.text)),
        "openai is the default provider"
    );

    let denied = upload_file(&gw, &limited, b"x", &[("model", "gpt-batch")]).await;
    assert_error_body(&denied.json(), 403, "key_model_access_denied");
    let no_azure = upload_file(&gw, &limited, b"x", &[("custom_llm_provider", "azure")]).await;
    assert_eq!(
        no_azure.json()["error"]["param"],
        "custom_llm_provider",
        "{}",
        no_azure.text
    );
    assert_error_body(&no_azure.json(), 400, "invalid_request_error");
    let not_files = upload_file(&gw, MASTER, b"x", &[("model", "claude")]).await;
    assert_eq!(
        not_files.json()["error"]["param"],
        "model",
        "{}",
        not_files.text
    );
    let unknown_provider =
        upload_file(&gw, MASTER, b"x", &[("custom_llm_provider", "vertex_ai")]).await;
    assert_error_body(&unknown_provider.json(), 400, "invalid_request_error");
    let two = upload_file(
        &gw,
        MASTER,
        b"x",
        &[("target_model_names", "gpt-files, gpt-batch")],
    )
    .await;
    assert_eq!(two.json()["error"]["param"], "target_model_names");
    assert_eq!(
        azure.calls().len() + openai.calls().len(),
        3,
        "refusals reach no upstream"
    );
}

#[actix_rt::test]
async fn forms_without_a_file_or_purpose_are_400s_naming_the_field() {
    let openai = FilesUpstream::start().await;
    let gw = Gateway::start(&config(&openai, "", "")).await;

    let (ct, body) = form(&[("purpose", "batch")], None);
    let no_file = upload(&gw, "/v1/files", MASTER, &ct, body).await;
    assert_error_body(&no_file.json(), 400, "invalid_request_error");
    assert_eq!(no_file.json()["error"]["param"], "file");
    let (ct, body) = form(&[], Some(("f.jsonl", b"x")));
    let no_purpose = upload(&gw, "/v1/files", MASTER, &ct, body).await;
    assert_eq!(
        no_purpose.json()["error"]["param"],
        "purpose",
        "{}",
        no_purpose.text
    );
    let json_body = gw
        .post("/v1/files", Some(MASTER), &json!({"purpose": "batch"}))
        .await;
    assert_error_body(&json_body.json(), 400, "invalid_request_error");
    assert_eq!(json_body.json()["error"]["param"], "file");
    let broken = upload(
        &gw,
        "/v1/files",
        MASTER,
        "multipart/form-data; boundary=zz",
        b"--zz\r\nno end".to_vec(),
    )
    .await;
    assert_error_body(&broken.json(), 400, "invalid_request_error");
    assert!(openai.calls().is_empty());
}

#[actix_rt::test]
async fn an_upload_over_max_request_size_is_a_413_in_the_contract_shape() {
    let openai = FilesUpstream::start().await;
    let gw = Gateway::start(&config(&openai, "", "  max_request_size_mb: 1\n")).await;

    let r = upload_file(&gw, MASTER, &vec![b'a'; 1_200_000], &[]).await;

    assert_error_body(&r.json(), 413, "invalid_request_error");
    assert!(openai.calls().is_empty());
}

#[actix_rt::test]
async fn keys_are_checked_before_anything_is_looked_up_or_sent() {
    let openai = FilesUpstream::start().await;
    let gw = Gateway::start(&config(&openai, "", "")).await;
    let owner = new_key(&gw, json!({})).await;
    let id = id_of(&upload_file(&gw, &owner, b"x", &[]).await.text);
    let blocked = new_key(&gw, json!({})).await;
    gw.post("/key/block", Some(MASTER), &json!({"key": blocked}))
        .await;
    let limited = new_key(&gw, json!({"rpm_limit": 1})).await;
    let before = openai.calls().len();

    let (unknown, _) = call(&gw, "GET", &format!("/v1/files/{id}"), "sk-not-a-key", None).await;
    assert_error_body(&unknown.json(), 401, "auth_error");
    let (none, _) = call(&gw, "GET", "/v1/files", "", None).await;
    assert_eq!(none.status, 401);
    let (refused, _) = call(&gw, "GET", "/v1/files", &blocked, None).await;
    assert_error_body(&refused.json(), 401, "auth_error");
    assert_eq!(openai.calls().len(), before);

    assert_eq!(
        call(&gw, "GET", "/v1/files", &limited, None).await.0.status,
        200
    );
    let (second, _) = call(&gw, "GET", "/v1/files", &limited, None).await;
    assert_error_body(&second.json(), 429, "rate_limit_error");
    assert!(second.header("retry-after").is_some());
}

#[actix_rt::test]
async fn upstream_errors_keep_their_status_and_an_unreachable_upstream_is_a_502() {
    let openai = FilesUpstream::start().await;
    let gw = Gateway::start(&config(&openai, "", "")).await;
    let id = id_of(&upload_file(&gw, MASTER, b"x", &[]).await.text);

    openai.fail(
        503,
        r#"{"error":{"message":"files are resting","type":"server_error"}}"#,
    );
    let (r, _) = call(&gw, "GET", &format!("/v1/files/{id}"), MASTER, None).await;
    let message = assert_error_body(&r.json(), 503, "server_error");
    assert!(message.contains("files are resting"), "{message}");

    openai.recover();
    openai.stop().await;
    // The stopped server's worker may still answer on a pooled connection for a moment.
    let gone = crate::support::eventually(std::time::Duration::from_secs(10), async || {
        call(&gw, "GET", "/v1/files", MASTER, None).await.0.status == 502
    })
    .await;
    assert!(gone, "an unreachable upstream became a 502");
    let (r, _) = call(&gw, "GET", "/v1/files", MASTER, None).await;
    assert_error_body(&r.json(), 502, "api_connection_error");
}

#[actix_rt::test]
async fn every_files_call_leaves_a_spend_log_row_costing_nothing() {
    for db in both() {
        let openai = FilesUpstream::start().await;
        let settings = format!("  database_url: '{}'\n", db.url);
        let gw = Gateway::start(&config(&openai, "", &settings)).await;
        let key = new_key(&gw, json!({})).await;

        let up = upload_file(&gw, &key, b"x", &[]).await;
        let id = id_of(&up.text);
        let calls = [
            ("GET", "/v1/files".to_owned()),
            ("GET", format!("/v1/files/{id}")),
            ("GET", format!("/v1/files/{id}/content")),
            ("DELETE", format!("/v1/files/{id}")),
        ];
        let mut call_ids = vec![up.header("x-litellm-call-id").unwrap().to_owned()];
        for (method, path) in &calls {
            let (r, _) = call(&gw, method, path, &key, None).await;
            assert_eq!(r.status, 200, "{path}: {}", r.text);
            call_ids.push(r.header("x-litellm-call-id").unwrap().to_owned());
        }
        let up2 = upload_file(&gw, &key, b"y", &[]).await;
        openai.fail(500, r#"{"error":{"message":"boom"}}"#);
        let (failed, _) = call(
            &gw,
            "GET",
            &format!("/v1/files/{}", id_of(&up2.text)),
            &key,
            None,
        )
        .await;
        assert_eq!(failed.status, 500);
        gw.state.spend().send(Flush).await.unwrap().unwrap();

        let rows = spend_rows(&db.target, &hash_key(&key));
        assert_eq!(rows.len(), 7, "{rows:?}");
        for row in &rows {
            assert_eq!(row.spend, 0.0);
            assert_eq!(row.model, "gpt-4o-mini");
            assert_eq!(row.model_id, "openai-files");
        }
        let logged: Vec<&str> = rows.iter().map(|r| r.request_id.as_str()).collect();
        for id in &call_ids {
            assert!(logged.contains(&id.as_str()), "{id} in {logged:?}");
        }
        assert_eq!(rows.iter().filter(|r| r.status == "failure").count(), 1);
        gw.stop().await;
    }
}

#[actix_rt::test]
async fn a_regenerated_key_keeps_the_files_it_uploaded() {
    for db in both() {
        let openai = FilesUpstream::start().await;
        let settings = format!("  database_url: '{}'\n", db.url);
        let gw = Gateway::start(&config(&openai, "", &settings)).await;
        let old = new_key(&gw, json!({})).await;
        let id = id_of(&upload_file(&gw, &old, b"kept", &[]).await.text);

        let fresh = gw
            .post("/key/regenerate", Some(MASTER), &json!({"key": old}))
            .await;
        assert_eq!(fresh.status, 200, "{}", fresh.text);
        let new = fresh.json()["key"].as_str().unwrap().to_owned();

        let (got, bytes) = call(&gw, "GET", &format!("/v1/files/{id}/content"), &new, None).await;
        assert_eq!(got.status, 200, "{:?}: {}", db.target, got.text);
        assert_eq!(&bytes[..], b"kept");
        assert_eq!(
            ids(&call(&gw, "GET", "/v1/files", &new, None).await.0.json()),
            std::slice::from_ref(&id)
        );
        let (stale, _) = call(&gw, "GET", &format!("/v1/files/{id}"), &old, None).await;
        assert_eq!(stale.status, 401);
        gw.stop().await;
    }
}
