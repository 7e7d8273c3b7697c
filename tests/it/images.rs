//! `/images/generations` like chat: routed by model group (with and without `/v1`, and Azure's
//! deployment path), charged per image by size and quality or by the tokens reported, logged,
//! mocked, retried and fallen back, with errors in the contract's shape.

use serde_json::json;

use crate::support::db::{both, TestDb};
use crate::support::media_upstream::{
    assert_charged, media_config, new_key, reply_of, MediaUpstream, MASTER,
};
use crate::support::{assert_error_body, eventually, Gateway};

fn deployment(name: &str, model: &str, base: &str, extra: &str) -> String {
    format!("  - model_name: {name}\n    litellm_params: {{model: {model}, api_base: '{base}', api_key: sk-up{extra}}}\n")
}

#[actix_rt::test]
async fn an_image_request_reaches_its_deployment_and_is_charged_per_hd_image_on_sqlite_and_postgres(
) {
    for db in both() {
        let up = MediaUpstream::start();
        let models = deployment("painter", "openai/dall-e-3", &up.v1(), "");
        let gw = Gateway::start(&media_config(&models, &db.url, "")).await;
        let key = new_key(&gw, json!({"models": ["painter"]})).await;

        let r = gw
            .post(
                "/v1/images/generations",
                Some(&key),
                &json!({"model": "painter", "prompt": "a lighthouse at dusk, watercolour", "n": 2,
                        "size": "1024x1024", "quality": "hd", "metadata": {"team": "art"}}),
            )
            .await;

        assert_eq!(r.status, 200, "{}", r.text);
        let reply = r.json();
        assert_eq!(reply["data"].as_array().unwrap().len(), 2);
        assert_eq!(
            reply["data"][0],
            reply_of("openai/images_dall_e_3.json")["data"][0]
        );
        let sent = up.last();
        assert_eq!(sent.path, "/v1/images/generations");
        assert_eq!(sent.headers["authorization"], "Bearer sk-up");
        assert_eq!(
            sent.json(),
            json!({"model": "dall-e-3", "prompt": "a lighthouse at dusk, watercolour", "n": 2, "size": "1024x1024", "quality": "hd"})
        );
        assert_eq!(r.header("x-litellm-model-group"), Some("painter"));
        assert!(r.header("x-litellm-model-id").is_some());
        assert_eq!(r.header("llm_provider-x-mock-media"), Some("yes"));
        // LiteLLM's DALL-E 3 HD price per pixel: 1024 x 1024 pixels, two images (about $0.08 each).
        let row = assert_charged(&gw, &key, &r, Some(7.629e-08 * 1024.0 * 1024.0 * 2.0)).await;
        assert_eq!(
            (row["model"].as_str(), row["model_group"].as_str()),
            (Some("dall-e-3"), Some("painter"))
        );
        assert_eq!(row["metadata"], json!({"team": "art"}));
        gw.stop().await;
    }
}

#[actix_rt::test]
async fn gpt_image_1_is_charged_by_the_tokens_it_reports_at_the_route_without_v1() {
    let up = MediaUpstream::start();
    let models = deployment("gpt-image", "openai/gpt-image-1", &up.v1(), "");
    let gw = Gateway::start(&media_config(&models, &TestDb::sqlite().url, "")).await;
    let key = new_key(&gw, json!({})).await;

    let r = gw
        .post(
            "/images/generations",
            Some(&key),
            &json!({"model": "gpt-image", "prompt": "a red bicycle", "quality": "low"}),
        )
        .await;

    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["usage"]["output_tokens"], 272);
    // 12 text tokens at $5 and 272 image tokens at $40 per million.
    let row = assert_charged(&gw, &key, &r, Some(12.0 * 5e-6 + 272.0 * 4e-5)).await;
    assert_eq!(
        (
            row["prompt_tokens"].as_i64(),
            row["completion_tokens"].as_i64()
        ),
        (Some(12), Some(272))
    );
}

#[actix_rt::test]
async fn azure_images_use_the_deployment_path_and_a_client_may_name_the_model_in_its_path() {
    let up = MediaUpstream::start();
    let models = format!(
        "  - model_name: azure-painter\n    litellm_params: {{model: azure/my-dalle, api_base: '{}', api_key: az-key, api_version: '2024-10-21'}}\n    model_info: {{base_model: azure/dall-e-3}}\n",
        up.base
    );
    let gw = Gateway::start(&media_config(&models, &TestDb::sqlite().url, "")).await;

    let r = gw
        .post(
            "/openai/deployments/azure-painter/images/generations",
            Some(MASTER),
            &json!({"prompt": "a cat", "quality": "standard", "size": "1024x1792"}),
        )
        .await;

    assert_eq!(r.status, 200, "{}", r.text);
    let sent = up.last();
    assert_eq!(sent.path, "/openai/deployments/my-dalle/images/generations");
    assert_eq!(sent.query, "api-version=2024-10-21");
    assert_eq!(sent.headers["api-key"], "az-key");
    // Priced through the base model: DALL-E 3 standard at 1024x1792 (about $0.08).
    let cost: f64 = r
        .header("x-litellm-response-cost")
        .unwrap()
        .parse()
        .unwrap();
    assert!((cost - 4.359e-08 * 1024.0 * 1792.0).abs() < 1e-9, "{cost}");
}

#[actix_rt::test]
async fn an_image_mock_response_answers_in_the_images_shape_at_the_configured_price_per_image() {
    let models = "  - model_name: mock-painter\n    litellm_params: {model: openai/dall-e-2, mock_response: 'a mock picture', output_cost_per_image: 0.5}\n";
    let gw = Gateway::start(&media_config(models, &TestDb::sqlite().url, "")).await;
    let key = new_key(&gw, json!({})).await;

    let r = gw
        .post(
            "/v1/images/generations",
            Some(&key),
            &json!({"model": "mock-painter", "prompt": "x", "n": 3, "response_format": "b64_json"}),
        )
        .await;

    assert_eq!(r.status, 200, "{}", r.text);
    let reply = r.json();
    assert_eq!(reply["data"].as_array().unwrap().len(), 3);
    assert!(reply["data"][0]["b64_json"].is_string());
    assert_eq!(reply["data"][0]["revised_prompt"], "a mock picture");
    assert_charged(&gw, &key, &r, Some(1.5)).await;
}

#[actix_rt::test]
async fn image_errors_are_in_the_contract_shape() {
    let up = MediaUpstream::start();
    let models = deployment("painter", "openai/dall-e-3", &up.v1(), "")
        + &deployment("claude", "anthropic/claude-3-5-haiku-latest", &up.base, "");
    let gw = Gateway::start(&media_config(&models, &TestDb::sqlite().url, "")).await;
    let key = new_key(&gw, json!({"models": ["claude"]})).await;

    let missing = gw
        .post(
            "/v1/images/generations",
            Some(MASTER),
            &json!({"model": "painter"}),
        )
        .await;
    assert_eq!(missing.status, 400);
    assert_error_body(&missing.json(), 400, "invalid_request_error");
    assert_eq!(missing.json()["error"]["param"], "prompt");

    let unknown = gw
        .post(
            "/v1/images/generations",
            Some(MASTER),
            &json!({"model": "nope", "prompt": "x"}),
        )
        .await;
    assert_eq!(unknown.status, 400);
    assert!(
        assert_error_body(&unknown.json(), 400, "invalid_request_error").contains("/v1/models")
    );

    let denied = gw
        .post(
            "/v1/images/generations",
            Some(&key),
            &json!({"model": "painter", "prompt": "x"}),
        )
        .await;
    assert_eq!(denied.status, 403, "{}", denied.text);
    assert_error_body(&denied.json(), 403, "key_model_access_denied");

    let unsupported = gw
        .post(
            "/images/generations",
            Some(&key),
            &json!({"model": "claude", "prompt": "x"}),
        )
        .await;
    assert_eq!(unsupported.status, 400, "{}", unsupported.text);
    let message = assert_error_body(&unsupported.json(), 400, "invalid_request_error");
    assert!(
        message.contains("anthropic") && message.contains("/images/generations"),
        "{message}"
    );
    assert!(up.calls().is_empty());

    let bad_json = gw
        .post_raw("/v1/images/generations", Some(MASTER), b"{".to_vec())
        .await;
    assert_eq!(bad_json.status, 400);
    assert_error_body(&bad_json.json(), 400, "invalid_request_error");
}

#[actix_rt::test]
async fn a_failing_image_group_falls_back_to_another_and_cools_down() {
    let up = MediaUpstream::start();
    let models = deployment("broken", "openai/fail-503", &up.v1(), "")
        + &deployment("painter", "openai/dall-e-3", &up.v1(), "");
    let extra = "litellm_settings:\n  num_retries: 0\n  fallbacks: [{broken: [painter]}]\n";
    let gw = Gateway::start(&media_config(&models, &TestDb::sqlite().url, extra)).await;

    let r = gw
        .post(
            "/v1/images/generations",
            Some(MASTER),
            &json!({"model": "broken", "prompt": "x"}),
        )
        .await;

    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("x-litellm-attempted-fallbacks"), Some("1"));
    assert_eq!(r.header("x-litellm-model-group"), Some("painter"));
    let paths: Vec<String> = up
        .calls()
        .iter()
        .map(|c| c.json()["model"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(paths, ["fail-503", "dall-e-3"]);
    let counted = eventually(std::time::Duration::from_secs(5), async || {
        gw.deployment(0).await.failures_this_minute >= 1
    })
    .await;
    assert!(counted, "the failing deployment's failure is counted");
}

#[actix_rt::test]
async fn the_logging_callbacks_hear_of_an_image_request_with_its_call_type_and_cost() {
    let up = MediaUpstream::start();
    let models = deployment("painter", "openai/dall-e-3", &up.v1(), "");
    let extra = format!(
        "litellm_settings:\n  success_callback: [generic_api]\nenvironment_variables:\n  GENERIC_LOGGER_ENDPOINT: '{}/log'\n",
        up.base
    );
    let gw = Gateway::start(&media_config(&models, &TestDb::sqlite().url, &extra)).await;

    let r = gw
        .post(
            "/v1/images/generations",
            Some(MASTER),
            &json!({"model": "painter", "prompt": "a cat", "quality": "hd"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    let logged = || {
        up.calls()
            .iter()
            .filter(|c| c.path == "/log")
            .flat_map(|c| c.json().as_array().cloned().unwrap_or_default())
            .collect::<Vec<_>>()
    };
    let heard = eventually(std::time::Duration::from_secs(10), async || {
        !logged().is_empty()
    })
    .await;
    assert!(heard, "the callback heard nothing");
    let event = &logged()[0];
    assert_eq!(event["call_type"], "aimage_generation");
    assert_eq!(event["model_group"], "painter");
    let cost: f64 = r
        .header("x-litellm-response-cost")
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (event["response_cost"].as_f64().unwrap() - cost).abs() < 1e-12,
        "{event}"
    );
}
