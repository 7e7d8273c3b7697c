//! `/moderations` like chat: routed (with and without `/v1`), logged at no cost unless priced,
//! a missing model defaulting to the configured moderation model, mocks and errors.

use serde_json::json;

use crate::support::db::TestDb;
use crate::support::media_upstream::{
    assert_charged, media_config, new_key, reply_of, MediaUpstream, MASTER,
};
use crate::support::{assert_error_body, Gateway};

fn models(base: &str) -> String {
    format!(
        "  - model_name: chat\n    litellm_params: {{model: openai/gpt-4o-mini, mock_response: hi}}\n  - model_name: safety\n    litellm_params: {{model: openai/omni-moderation-latest, api_base: '{base}', api_key: sk-up}}\n  - model_name: priced-safety\n    litellm_params: {{model: openai/text-moderation-latest, api_base: '{base}', api_key: sk-up, input_cost_per_token: 0.001}}\n"
    )
}

#[actix_rt::test]
async fn a_moderation_is_routed_relayed_and_logged_at_no_cost() {
    let up = MediaUpstream::start();
    let gw = Gateway::start(&media_config(&models(&up.v1()), &TestDb::sqlite().url, "")).await;
    let key = new_key(&gw, json!({})).await;

    for path in ["/v1/moderations", "/moderations"] {
        let r = gw
            .post(
                path,
                Some(&key),
                &json!({"model": "safety", "input": "I want to hug my cat."}),
            )
            .await;

        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json(), reply_of("openai/moderation.json"));
        assert_eq!(
            up.last().json(),
            json!({"model": "omni-moderation-latest", "input": "I want to hug my cat."})
        );
        assert_eq!(r.header("x-litellm-model-group"), Some("safety"));
        assert_charged(&gw, &key, &r, Some(0.0)).await;
    }
}

#[actix_rt::test]
async fn a_moderation_without_a_model_goes_to_the_first_moderation_group() {
    let up = MediaUpstream::start();
    let gw = Gateway::start(&media_config(&models(&up.v1()), &TestDb::sqlite().url, "")).await;

    let r = gw
        .post(
            "/v1/moderations",
            Some(MASTER),
            &json!({"input": ["a", "b"]}),
        )
        .await;

    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("x-litellm-model-group"), Some("safety"));
    assert_eq!(up.last().json()["model"], "omni-moderation-latest");
}

#[actix_rt::test]
async fn a_priced_moderation_is_charged_for_its_input_tokens() {
    let up = MediaUpstream::start();
    let gw = Gateway::start(&media_config(&models(&up.v1()), &TestDb::sqlite().url, "")).await;
    let key = new_key(&gw, json!({})).await;

    let r = gw
        .post(
            "/v1/moderations",
            Some(&key),
            &json!({"model": "priced-safety", "input": "hello world"}),
        )
        .await;

    assert_eq!(r.status, 200, "{}", r.text);
    // "hello world" is two tokens.
    let row = assert_charged(&gw, &key, &r, Some(0.002)).await;
    assert_eq!(row["prompt_tokens"], 2);
}

#[actix_rt::test]
async fn a_moderation_mock_answers_one_result_per_input_and_errors_name_their_field() {
    let models = "  - model_name: mock-safety\n    litellm_params: {model: openai/omni-moderation-latest, mock_response: ok}\n";
    let gw = Gateway::start(&media_config(models, &TestDb::sqlite().url, "")).await;

    let r = gw
        .post(
            "/moderations",
            Some(MASTER),
            &json!({"model": "mock-safety", "input": ["a", "b", "c"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["results"].as_array().unwrap().len(), 3);
    assert_eq!(r.json()["results"][2]["flagged"], false);

    let missing = gw
        .post(
            "/v1/moderations",
            Some(MASTER),
            &json!({"model": "mock-safety"}),
        )
        .await;
    assert_eq!(missing.status, 400);
    assert_error_body(&missing.json(), 400, "invalid_request_error");
    assert_eq!(missing.json()["error"]["param"], "input");

    let failing = gw
        .post("/v1/moderations", Some(MASTER), &json!({"model": "mock-safety", "input": "x", "mock_response": "litellm.RateLimitError", "num_retries": 0}))
        .await;
    assert_eq!(failing.status, 429, "{}", failing.text);
    assert_error_body(&failing.json(), 429, "rate_limit_error");
}

#[actix_rt::test]
async fn with_no_moderation_model_configured_a_missing_model_is_a_400_naming_model() {
    let models = "  - model_name: chat\n    litellm_params: {model: openai/gpt-4o-mini, mock_response: hi}\n";
    let gw = Gateway::start(&media_config(models, &TestDb::sqlite().url, "")).await;

    let r = gw
        .post("/v1/moderations", Some(MASTER), &json!({"input": "x"}))
        .await;

    assert_eq!(r.status, 400, "{}", r.text);
    assert_error_body(&r.json(), 400, "invalid_request_error");
    assert_eq!(r.json()["error"]["param"], "model");
}
