//! Ollama deployments end to end: OpenAI requests in, Ollama's native API on the wire (checked
//! at a mock speaking it from recorded fixtures, NDJSON streams included), OpenAI replies,
//! streams, embeddings and errors out.

use serde_json::{json, Value};

use crate::support::gateway::sse_events;
use crate::support::wire::{fixture, Script, WireMock};
use crate::support::Gateway;

fn case(name: &str) -> Value {
    serde_json::from_str(&fixture(&format!("ollama/{name}"))).unwrap()
}

/// A mock answering every call with `reply`'s recorded body, streaming `ndjson` when asked.
async fn ollama_mock(reply: &str, ndjson: &str) -> WireMock {
    WireMock::start_ndjson(Script {
        status: 200,
        body: case(reply)["ollama"].to_string(),
        sse: fixture(&format!("ollama/{ndjson}")),
    })
    .await
}

fn config(model: &str, base: &str, extra: &str) -> String {
    format!(
        "model_list:\n  - model_name: local\n    litellm_params: {{model: {model}, api_base: '{base}'{extra}}}\n"
    )
}

fn weather_request() -> Value {
    json!({
        "model": "local",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [
                {"type": "text", "text": "Weather where this photo was taken?"},
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}}
            ]}
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
        "max_tokens": 64,
        "temperature": 0.2,
    })
}

/// The stream's chunks, checking it ended with `[DONE]`.
fn chunks(text: &str) -> Vec<Value> {
    let events = sse_events(text);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"), "{text}");
    events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect()
}

#[actix_rt::test]
async fn an_ollama_chat_request_reaches_api_chat_and_comes_back_in_openai_shape() {
    let mock = ollama_mock("reply_chat_tool_call.json", "stream_chat_tool_call.ndjson").await;
    let gw = Gateway::start(&config(
        "ollama_chat/llama3.1",
        &mock.base,
        ", api_key: ollama-key, num_ctx: 8192",
    ))
    .await;

    let r = gw
        .post("/v1/chat/completions", None, &weather_request())
        .await;

    assert_eq!(r.status, 200, "{}", r.text);
    let call = &mock.calls()[0];
    assert_eq!(call.path, "/api/chat");
    assert_eq!(call.headers["authorization"], "Bearer ollama-key");
    assert_eq!(
        call.body,
        json!({
            "model": "llama3.1",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Weather where this photo was taken?", "images": ["/9j/4AAQ"]}
            ],
            "stream": false,
            "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
            "options": {"temperature": 0.2, "num_predict": 64, "num_ctx": 8192},
        })
    );
    let mut got = r.json();
    let id = got["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("chatcmpl-") && id.len() > 20, "{id}");
    let call_id = got["choices"][0]["message"]["tool_calls"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(call_id.starts_with("call_"), "{call_id}");
    let mut want = case("reply_chat_tool_call.json")["openai"].clone();
    for v in [&mut got, &mut want] {
        v["id"] = json!("");
        v["created"] = json!(0);
        v["choices"][0]["message"]["tool_calls"][0]["id"] = json!("");
    }
    assert_eq!(got, want);
    // Two replies never share a tool call id: clients send it back with the result.
    let again = gw
        .post("/v1/chat/completions", None, &weather_request())
        .await
        .json();
    assert_ne!(
        again["choices"][0]["message"]["tool_calls"][0]["id"],
        call_id.as_str()
    );
}

#[actix_rt::test]
async fn an_ndjson_stream_is_translated_chunk_by_chunk_with_tool_calls_and_usage() {
    let mock = ollama_mock("reply_chat_tool_call.json", "stream_chat_tool_call.ndjson").await;
    let gw = Gateway::start(&config("ollama_chat/llama3.1", &mock.base, "")).await;
    let mut body = weather_request();
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});

    let r = gw.post("/v1/chat/completions", None, &body).await;

    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(mock.calls()[0].body["stream"], true);
    assert!(!mock.calls()[0].headers.contains_key("authorization"));
    let chunks = chunks(&r.text);
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert!(chunks
        .iter()
        .all(|c| c["id"] == chunks[0]["id"] && c["model"] == "llama3.1"));
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Okay, let's check the weather.");
    let call = &chunks
        .iter()
        .find(|c| c["choices"][0]["delta"]["tool_calls"].is_array())
        .unwrap()["choices"][0]["delta"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_weather");
    assert_eq!(call["function"]["arguments"], r#"{"city":"Paris"}"#);
    assert!(chunks
        .iter()
        .any(|c| c["choices"][0]["finish_reason"] == "tool_calls"));
    let usage = &chunks.last().unwrap()["usage"];
    assert_eq!(
        (
            usage["prompt_tokens"].as_u64(),
            usage["completion_tokens"].as_u64()
        ),
        (Some(95), Some(27))
    );
}

#[actix_rt::test]
async fn ollama_flattens_chat_into_api_generate_and_serves_completions_through_it() {
    let mock = ollama_mock("reply_generate.json", "stream_generate.ndjson").await;
    let gw = Gateway::start(&format!(
        "{}environment_variables: {{OLLAMA_API_KEY: from-env}}\n",
        config("ollama/llama3.2", &mock.base, "")
    ))
    .await;

    let r = gw
        .post(
            "/v1/chat/completions",
            None,
            &json!({"model": "local", "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Why is the sky blue?"}
            ], "stop": "\n\n"}),
        )
        .await;

    assert_eq!(r.status, 200, "{}", r.text);
    let call = &mock.calls()[0];
    assert_eq!(call.path, "/api/generate");
    assert_eq!(call.headers["authorization"], "Bearer from-env");
    assert_eq!(
        call.body,
        json!({
            "model": "llama3.2",
            "prompt": "### System:\nBe brief.\n\n### User:\nWhy is the sky blue?\n\n",
            "stream": false,
            "options": {"stop": ["\n\n"]},
        })
    );
    let got = r.json();
    assert_eq!(
        got["choices"][0]["message"]["content"],
        "The sky is blue because of Rayleigh scattering: air scatters"
    );
    assert_eq!(got["choices"][0]["finish_reason"], "length");
    assert_eq!(got["model"], "llama3.2");
    assert_eq!(got["usage"]["total_tokens"], 38);

    let r = gw
        .post(
            "/v1/completions",
            None,
            &json!({"model": "local", "prompt": "Why is the sky blue?", "max_tokens": 12}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["object"], "text_completion");
    assert_eq!(
        r.json()["choices"][0]["text"],
        "The sky is blue because of Rayleigh scattering: air scatters"
    );
    assert_eq!(mock.calls()[1].body["options"]["num_predict"], 12);

    let r = gw
        .post(
            "/v1/chat/completions",
            None,
            &json!({"model": "local", "stream": true, "messages": [{"role": "user", "content": "Why?"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let chunks = chunks(&r.text);
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "The sky is blue.");
    assert!(chunks
        .iter()
        .any(|c| c["choices"][0]["finish_reason"] == "stop"));
    assert!(
        chunks.iter().all(|c| c.get("usage").is_none()),
        "no usage chunk unless asked"
    );
}

#[actix_rt::test]
async fn embeddings_go_to_api_embed_and_come_back_as_an_openai_list() {
    let mock = ollama_mock("reply_embed.json", "stream_generate.ndjson").await;
    let gw = Gateway::start(&config("ollama/all-minilm", &mock.base, "")).await;

    let r = gw
        .post(
            "/v1/embeddings",
            None,
            &json!({"model": "local", "input": ["first", "second"]}),
        )
        .await;

    assert_eq!(r.status, 200, "{}", r.text);
    let call = &mock.calls()[0];
    assert_eq!(call.path, "/api/embed");
    assert_eq!(
        call.body,
        json!({"model": "all-minilm", "input": ["first", "second"]})
    );
    assert_eq!(r.json(), case("reply_embed.json")["openai"]);

    let r = gw
        .post(
            "/v1/embeddings",
            None,
            &json!({"model": "local", "input": "first", "encoding_format": "base64"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.json()["data"][0]["embedding"].is_string(), "{}", r.text);
    assert!(mock.calls()[1].body.get("encoding_format").is_none());
}

#[actix_rt::test]
async fn a_missing_model_is_a_404_in_ollamas_words_and_unsupported_parameters_are_refused() {
    let mock = ollama_mock("reply_chat_tool_call.json", "stream_chat_tool_call.ndjson").await;
    mock.set(Script {
        status: 404,
        body: json!({"error": "model \"llama9\" not found, try pulling it first"}).to_string(),
        sse: String::new(),
    });
    let gw = Gateway::start(&config("ollama_chat/llama9", &mock.base, "")).await;

    let r = gw
        .post("/v1/chat/completions", None, &weather_request())
        .await;

    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(
        r.json()["error"]["message"],
        "litellm.NotFoundError: Ollama_chatException - model \"llama9\" not found, try pulling it first"
    );

    let mut body = weather_request();
    body["logit_bias"] = json!({"50256": -100});
    let r = gw.post("/v1/chat/completions", None, &body).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.json()["error"]["param"], "logit_bias");
    assert_eq!(mock.calls().len(), 1);

    body["drop_params"] = json!(true);
    mock.set(Script {
        status: 200,
        body: case("reply_chat_tool_call.json")["ollama"].to_string(),
        sse: String::new(),
    });
    let r = gw.post("/v1/chat/completions", None, &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(mock.calls()[1].body.get("logit_bias").is_none());
    assert!(mock.calls()[1].body["options"].get("logit_bias").is_none());
}

#[actix_rt::test]
async fn an_error_line_mid_stream_ends_the_stream_with_an_error_event() {
    let mock = WireMock::start_ndjson(Script {
        status: 200,
        body: String::new(),
        sse: "{\"model\":\"llama3.1\",\"message\":{\"role\":\"assistant\",\"content\":\"Hel\"},\"done\":false}\n{\"error\":\"an error was encountered while running the model: unexpected EOF\"}\n".into(),
    })
    .await;
    let gw = Gateway::start(&config("ollama_chat/llama3.1", &mock.base, "")).await;
    let mut body = weather_request();
    body["stream"] = json!(true);

    let r = gw.post("/v1/chat/completions", None, &body).await;

    assert_eq!(r.status, 200, "{}", r.text);
    let events = sse_events(&r.text);
    assert_ne!(events.last().map(String::as_str), Some("[DONE]"));
    let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
    assert_eq!(
        last["error"]["message"],
        "litellm.APIError: Ollama_chatException - an error was encountered while running the model: unexpected EOF"
    );
}

#[actix_rt::test]
async fn add_function_to_prompt_describes_tools_to_a_model_without_them() {
    let mock = ollama_mock("reply_generate.json", "stream_generate.ndjson").await;
    let with_tools = json!({
        "model": "local",
        "messages": [{"role": "user", "content": "Weather in Paris?"}],
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
    });

    // Without it, `ollama/` (the generate API) refuses tools.
    let gw = Gateway::start(&config("ollama/llama3.2", &mock.base, "")).await;
    let r = gw.post("/v1/chat/completions", None, &with_tools).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(mock.calls().is_empty());

    let gw = Gateway::start(&format!(
        "{}litellm_settings: {{add_function_to_prompt: true}}\n",
        config("ollama/llama3.2", &mock.base, "")
    ))
    .await;
    let r = gw.post("/v1/chat/completions", None, &with_tools).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let sent = &mock.calls()[0].body;
    let prompt = sent["prompt"].as_str().unwrap_or_default().to_owned()
        + sent["system"].as_str().unwrap_or_default();
    assert!(prompt.contains("You can call these functions"), "{sent}");
    assert!(prompt.contains("get_weather"), "{sent}");
    assert!(sent.get("tools").is_none(), "{sent}");
}
