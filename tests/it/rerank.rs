//! `/rerank` (and `/v1/rerank`, `/v2/rerank`) in Cohere's format like chat: Cohere's `/v2/rerank`
//! (or `/v1/rerank`) and the compatible providers' `/rerank` on the wire (checked against
//! recorded fixtures), replies made whole in Cohere's shape, charged per search unit.

use serde_json::{json, Value};

use crate::support::db::{both, TestDb};
use crate::support::media_upstream::{
    assert_charged, media_config, new_key, reply_of, MediaUpstream, MASTER,
};
use crate::support::wire::fixture;
use crate::support::{assert_error_body, Gateway};

fn request_of(path: &str) -> Value {
    let case: Value = serde_json::from_str(&fixture(path)).unwrap();
    case["request"].clone()
}

#[actix_rt::test]
async fn cohere_rerank_goes_to_v2_and_is_charged_per_search_unit_on_sqlite_and_postgres() {
    for db in both() {
        let up = MediaUpstream::start();
        let models = format!("  - model_name: reranker\n    litellm_params: {{model: cohere/rerank-v3.5, api_base: '{}', api_key: co-key}}\n", up.base);
        let gw = Gateway::start(&media_config(&models, &db.url, "")).await;
        let key = new_key(&gw, json!({"models": ["reranker"]})).await;
        let mut body = request_of("cohere/rerank_v2.json");
        body["model"] = json!("reranker");
        body["return_documents"] = json!(true);

        let r = gw.post("/v1/rerank", Some(&key), &body).await;

        assert_eq!(r.status, 200, "{}", r.text);
        let sent = up.last();
        assert_eq!(sent.path, "/v2/rerank");
        assert_eq!(sent.headers["authorization"], "Bearer co-key");
        // v2 takes no `return_documents`: the gateway adds the documents itself.
        assert_eq!(sent.json(), request_of("cohere/rerank_v2.json"));
        let reply = r.json();
        let recorded = reply_of("cohere/rerank_v2.json");
        assert_eq!(reply["id"], recorded["id"]);
        assert_eq!(reply["results"][0]["index"], 2);
        assert_eq!(
            reply["results"][0]["document"]["text"],
            body["documents"][2]
        );
        assert_eq!(reply["meta"], recorded["meta"]);
        // Cohere's $2 per 1,000 searches.
        let row = assert_charged(&gw, &key, &r, Some(0.002)).await;
        assert_eq!(row["model"], "rerank-v3.5");
        gw.stop().await;
    }
}

#[actix_rt::test]
async fn max_chunks_per_doc_sends_cohere_v1_with_object_documents() {
    let up = MediaUpstream::start();
    let models = format!("  - model_name: reranker\n    litellm_params: {{model: cohere/rerank-english-v3.0, api_base: '{}', api_key: co-key}}\n", up.base);
    let gw = Gateway::start(&media_config(&models, &TestDb::sqlite().url, "")).await;
    let mut body = request_of("cohere/rerank_v1.json");
    body["model"] = json!("reranker");

    let r = gw.post("/v2/rerank", Some(MASTER), &body).await;

    assert_eq!(r.status, 200, "{}", r.text);
    let sent = up.last();
    assert_eq!(sent.path, "/v1/rerank");
    assert_eq!(sent.json(), request_of("cohere/rerank_v1.json"));
    assert_eq!(
        r.json()["results"],
        reply_of("cohere/rerank_v1.json")["results"]
    );
}

#[actix_rt::test]
async fn a_compatible_reranker_gets_cohere_shape_at_its_rerank_route_and_answers_in_it() {
    let up = MediaUpstream::start();
    let models = format!(
        "  - model_name: jina\n    litellm_params: {{model: jina_ai/jina-reranker-v2-base-multilingual, api_base: '{0}/compat/v1', api_key: jina-key}}\n  - model_name: vllm\n    litellm_params: {{model: hosted_vllm/BAAI/bge-reranker-v2-m3, api_base: '{0}/compat/v1'}}\n",
        up.base
    );
    let gw = Gateway::start(&media_config(&models, &TestDb::sqlite().url, "")).await;
    let key = new_key(&gw, json!({})).await;
    let mut body = request_of("jina_ai/rerank.json");
    body["model"] = json!("jina");

    let r = gw.post("/rerank", Some(&key), &body).await;

    assert_eq!(r.status, 200, "{}", r.text);
    let sent = up.last();
    assert_eq!(sent.path, "/compat/v1/rerank");
    assert_eq!(sent.json(), request_of("jina_ai/rerank.json"));
    let reply = r.json();
    assert_eq!(reply["results"], reply_of("jina_ai/rerank.json")["results"]);
    assert!(reply["id"].is_string());
    assert_eq!(reply["meta"]["billed_units"]["total_tokens"], 38);
    // Jina bills tokens: 38 at the table's price.
    let row = assert_charged(&gw, &key, &r, Some(38.0 * 1.8e-8)).await;
    assert_eq!(row["prompt_tokens"], 38);

    body["model"] = json!("vllm");
    let r = gw.post("/v1/rerank", Some(MASTER), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(up.last().json()["model"], "BAAI/bge-reranker-v2-m3");
}

#[actix_rt::test]
async fn a_rerank_mock_and_rerank_errors_in_the_contract_shape() {
    let up = MediaUpstream::start();
    let models = format!(
        "  - model_name: mock-rerank\n    litellm_params: {{model: cohere/rerank-v3.5, mock_response: ranked}}\n  - model_name: gpt\n    litellm_params: {{model: openai/gpt-4o-mini, api_base: '{}', api_key: k}}\n",
        up.v1()
    );
    let gw = Gateway::start(&media_config(&models, &TestDb::sqlite().url, "")).await;
    let key = new_key(&gw, json!({"models": ["gpt"]})).await;

    let r = gw
        .post("/v1/rerank", Some(MASTER), &json!({"model": "mock-rerank", "query": "q", "documents": ["a", "b", "c"], "top_n": 2, "return_documents": true}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let reply = r.json();
    assert_eq!(reply["results"].as_array().unwrap().len(), 2);
    assert_eq!(reply["results"][1]["document"]["text"], "b");
    assert_eq!(r.header("x-litellm-response-cost"), Some("0.002"));

    let missing = gw
        .post(
            "/v1/rerank",
            Some(MASTER),
            &json!({"model": "mock-rerank", "documents": ["a"]}),
        )
        .await;
    assert_eq!(missing.status, 400);
    assert_error_body(&missing.json(), 400, "invalid_request_error");
    assert_eq!(missing.json()["error"]["param"], "query");

    let denied = gw
        .post(
            "/rerank",
            Some(&key),
            &json!({"model": "mock-rerank", "query": "q", "documents": ["a"]}),
        )
        .await;
    assert_eq!(denied.status, 403);
    assert_error_body(&denied.json(), 403, "key_model_access_denied");

    let unsupported = gw
        .post(
            "/rerank",
            Some(&key),
            &json!({"model": "gpt", "query": "q", "documents": ["a"]}),
        )
        .await;
    assert_eq!(unsupported.status, 400, "{}", unsupported.text);
    let message = assert_error_body(&unsupported.json(), 400, "invalid_request_error");
    assert!(
        message.contains("openai") && message.contains("/rerank"),
        "{message}"
    );
    assert!(up.calls().is_empty());
}
