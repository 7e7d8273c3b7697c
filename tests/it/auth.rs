//! Master-key authentication from every header LiteLLM accepts.

use serde_json::json;

use crate::support::{chat_body, Gateway, MockUpstream};

async fn gateway(mock: &MockUpstream, extra: &str) -> Gateway {
    Gateway::start(&format!(
        "model_list:\n  - model_name: g\n    litellm_params: {{model: openai/m, api_base: '{}'}}\ngeneral_settings: {{master_key: sk-master-1{extra}}}\n",
        mock.v1()
    ))
    .await
}

async fn status_with(gw: &Gateway, header: (&str, &str)) -> u16 {
    let res = gw
        .client
        .post(format!("{}/v1/chat/completions", gw.base))
        .insert_header(header)
        .send_json(&chat_body("g"))
        .await
        .unwrap();
    res.status().as_u16()
}

#[actix_rt::test]
async fn the_master_key_is_accepted_from_every_listed_header() {
    let mock = MockUpstream::start().await;
    let gw = gateway(&mock, ", litellm_key_header_name: X-My-Key").await;
    for header in [
        ("x-litellm-api-key", "sk-master-1"),
        ("x-litellm-api-key", "Bearer sk-master-1"),
        ("authorization", "Bearer sk-master-1"),
        ("authorization", "bearer sk-master-1"),
        ("api-key", "sk-master-1"),
        ("x-api-key", "sk-master-1"),
        ("x-goog-api-key", "sk-master-1"),
        ("x-my-key", "sk-master-1"),
    ] {
        assert_eq!(status_with(&gw, header).await, 200, "{header:?}");
    }
}

#[actix_rt::test]
async fn a_missing_or_wrong_key_is_a_401_auth_error_that_never_echoes_the_key() {
    let mock = MockUpstream::start().await;
    let gw = gateway(&mock, "").await;
    let r = gw.post("/v1/chat/completions", None, &chat_body("g")).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["type"], "auth_error");
    assert_eq!(r.json()["error"]["code"], "401");
    let r = gw
        .post(
            "/v1/chat/completions",
            Some("sk-wrong-but-long-key-9876"),
            &chat_body("g"),
        )
        .await;
    assert_eq!(r.status, 401);
    assert!(!r.text.contains("sk-wrong-but-long-key-9876"), "{}", r.text);
    for path in ["/v1/models", "/model/info"] {
        assert_eq!(gw.get(path, None).await.status, 401, "{path}");
        assert_eq!(
            gw.get(path, Some("sk-master-1")).await.status,
            200,
            "{path}"
        );
    }
    assert_eq!(mock.call_count(), 0);
}

#[actix_rt::test]
async fn the_master_key_can_come_from_litellm_master_key_in_the_environment_overlay() {
    let mock = MockUpstream::start().await;
    let gw = Gateway::start(&format!(
        "model_list:\n  - model_name: g\n    litellm_params: {{model: openai/m, api_base: '{}'}}\nenvironment_variables: {{LITELLM_MASTER_KEY: sk-from-env}}\n",
        mock.v1()
    ))
    .await;
    assert_eq!(
        gw.post("/v1/chat/completions", None, &chat_body("g"))
            .await
            .status,
        401
    );
    assert_eq!(
        gw.post("/v1/chat/completions", Some("sk-from-env"), &chat_body("g"))
            .await
            .status,
        200
    );
}

#[actix_rt::test]
async fn with_no_master_key_every_route_is_open() {
    let mock = MockUpstream::start().await;
    let gw = Gateway::start(&format!(
        "model_list:\n  - model_name: g\n    litellm_params: {{model: openai/m, api_base: '{}'}}\n",
        mock.v1()
    ))
    .await;
    assert_eq!(
        gw.post("/v1/chat/completions", None, &chat_body("g"))
            .await
            .status,
        200
    );
    assert_eq!(
        gw.post("/v1/chat/completions", Some("anything"), &chat_body("g"))
            .await
            .status,
        200
    );
    assert_eq!(
        gw.get("/v1/models", None).await.json()["data"][0]["id"],
        json!("g")
    );
}
