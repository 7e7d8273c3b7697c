//! Cohere deployments end to end: OpenAI requests in, Cohere's v2 API on the wire (checked at a
//! mock speaking it from recorded fixtures), OpenAI replies, streams, embeddings and errors out.

use serde_json::{json, Value};

use crate::support::gateway::sse_events;
use crate::support::wire::{fixture, Script, WireMock};
use crate::support::Gateway;

fn case(name: &str) -> Value {
    serde_json::from_str(&fixture(&format!("cohere/{name}"))).unwrap()
}

async fn cohere_mock() -> WireMock {
    WireMock::start(Script {
        status: 200,
        body: case("reply_tool_call.json")["cohere"].to_string(),
        sse: fixture("cohere/stream_tool_call.sse"),
    })
    .await
}

fn config(base: &str, extra: &str) -> String {
    format!(
        "model_list:\n  - model_name: command\n    litellm_params: {{model: cohere_chat/command-r-plus, api_base: '{base}', api_key: co-test-key}}\n{extra}"
    )
}

fn weather_request() -> Value {
    json!({
        "model": "command",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather in Paris?"}
        ],
        "max_tokens": 50,
        "top_p": 0.8,
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
    })
}

#[actix_rt::test]
async fn a_chat_request_reaches_v2_chat_and_comes_back_in_openai_shape() {
    let mock = cohere_mock().await;
    let gw = Gateway::start(&config(&mock.base, "")).await;

    let r = gw
        .post("/v1/chat/completions", None, &weather_request())
        .await;

    assert_eq!(r.status, 200, "{}", r.text);
    let got = r.json();
    assert_eq!(got["id"], "c14c80c3-18eb-4519-9460-6c92edd8cfb4");
    assert_eq!(got["model"], "command-r-plus");
    let message = &got["choices"][0]["message"];
    assert_eq!(message["content"], "I will look up the weather in Paris.");
    assert_eq!(
        message["tool_calls"][0],
        json!({"id": "get_weather_k8ymp5a1y7nn", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}})
    );
    assert_eq!(got["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(
        (
            &got["usage"]["prompt_tokens"],
            &got["usage"]["completion_tokens"]
        ),
        (&json!(982), &json!(54))
    );
    // `cohere_chat/` models are priced from the table's `cohere/` entries.
    let cost: f64 = r
        .header("x-litellm-response-cost")
        .unwrap()
        .parse()
        .unwrap();
    assert!(cost > 0.0, "cost {cost}");
    let call = &mock.calls()[0];
    assert_eq!(call.path, "/v2/chat");
    assert_eq!(call.headers["authorization"], "Bearer co-test-key");
    assert_eq!(
        call.body,
        json!({
            "model": "command-r-plus",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Weather in Paris?"}
            ],
            "max_tokens": 50,
            "p": 0.8,
            "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
        })
    );
}

#[actix_rt::test]
async fn a_stream_relays_the_tool_plan_and_both_tool_calls_then_usage() {
    let mock = cohere_mock().await;
    let gw = Gateway::start(&config(&mock.base, "")).await;
    let mut body = weather_request();
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});

    let r = gw.post("/v1/chat/completions", None, &body).await;

    assert_eq!(r.status, 200, "{}", r.text);
    let call = &mock.calls()[0];
    assert_eq!(call.path, "/v2/chat");
    assert_eq!(call.body["stream"], true);
    assert!(call.body.get("stream_options").is_none());
    let events = sse_events(&r.text);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "I will check the weather.");
    let mut arguments = [String::new(), String::new()];
    for c in &chunks {
        for call in c["choices"][0]["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let index = call["index"].as_u64().unwrap() as usize;
            arguments[index].push_str(call["function"]["arguments"].as_str().unwrap());
        }
    }
    let parsed: Vec<Value> = arguments
        .iter()
        .map(|a| serde_json::from_str(a).unwrap())
        .collect();
    assert_eq!(
        parsed,
        [json!({"city": "Paris"}), json!({"city": "Madrid"})]
    );
    assert!(chunks
        .iter()
        .any(|c| c["choices"][0]["finish_reason"] == "tool_calls"));
    let usage = &chunks.last().unwrap()["usage"];
    assert_eq!(
        (&usage["prompt_tokens"], &usage["total_tokens"]),
        (&json!(980), &json!(1041))
    );
}

#[actix_rt::test]
async fn embeddings_use_v2_embed_with_the_requested_input_type() {
    let mock = WireMock::start(Script {
        status: 200,
        body: case("reply_embed.json")["cohere"].to_string(),
        sse: String::new(),
    })
    .await;
    let gw = Gateway::start(&format!(
        "model_list:\n  - model_name: embed\n    litellm_params: {{model: cohere/embed-english-v3.0, api_base: '{}', api_key: k}}\n",
        mock.base
    ))
    .await;

    let r = gw
        .post(
            "/v1/embeddings",
            None,
            &json!({"model": "embed", "input": ["hello", "goodbye"], "input_type": "search_query"}),
        )
        .await;

    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json(), case("reply_embed.json")["openai"]);
    let call = &mock.calls()[0];
    assert_eq!(call.path, "/v2/embed");
    assert_eq!(
        call.body,
        json!({"model": "embed-english-v3.0", "texts": ["hello", "goodbye"], "input_type": "search_query", "embedding_types": ["float"]})
    );

    gw.post(
        "/v1/embeddings",
        None,
        &json!({"model": "embed", "input": "hello"}),
    )
    .await;
    assert_eq!(mock.calls()[1].body["input_type"], "search_document");
}

#[actix_rt::test]
async fn cohere_errors_keep_their_message_and_unsupported_parameters_are_refused() {
    let mock = cohere_mock().await;
    mock.set(Script {
        status: 401,
        body: json!({"message": "invalid api token"}).to_string(),
        sse: String::new(),
    });
    let gw = Gateway::start(&config(&mock.base, "litellm_settings: {num_retries: 0}\n")).await;

    let r = gw
        .post("/v1/chat/completions", None, &weather_request())
        .await;

    assert_eq!(r.status, 401, "{}", r.text);
    assert_eq!(
        r.json()["error"]["message"],
        "litellm.AuthenticationError: CohereException - invalid api token"
    );

    let mut with_n = weather_request();
    with_n["n"] = json!(2);
    let calls_before = mock.calls().len();
    let r = gw.post("/v1/chat/completions", None, &with_n).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.json()["error"]["param"], "n");
    assert_eq!(mock.calls().len(), calls_before, "refused before any call");

    mock.set(Script {
        status: 200,
        body: case("reply_tool_call.json")["cohere"].to_string(),
        sse: String::new(),
    });
    with_n["drop_params"] = json!(true);
    let r = gw.post("/v1/chat/completions", None, &with_n).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(mock.calls().last().unwrap().body.get("n").is_none());
}
