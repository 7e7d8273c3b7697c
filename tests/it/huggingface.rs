//! Hugging Face deployments end to end: OpenAI chat relayed to `/v1/chat/completions`, or,
//! for a deployment with a prompt template (or `mode: completion`), the prompt written and sent
//! to TGI's `generate` / `generate_stream` (checked at a mock speaking them from recorded
//! fixtures), OpenAI replies, streams and errors out.

use serde_json::{json, Value};

use crate::support::gateway::sse_events;
use crate::support::wire::{fixture, Script, WireMock};
use crate::support::{Gateway, MockUpstream};

fn case(name: &str) -> Value {
    serde_json::from_str(&fixture(&format!("huggingface/{name}"))).unwrap()
}

/// A mock answering as TGI does: the recorded reply, or the recorded stream when asked.
async fn tgi_mock() -> WireMock {
    WireMock::start(Script {
        status: 200,
        body: case("reply_generate.json")["tgi"].to_string(),
        sse: fixture("huggingface/stream_generate.sse"),
    })
    .await
}

/// A deployment named `hf` on the custom template of `template_custom.json` (JSON is YAML).
fn templated_config(base: &str) -> String {
    let mut params = case("template_custom.json")["litellm_params"].clone();
    params["api_base"] = json!(base);
    params["api_key"] = json!("hf-test-token");
    format!("model_list:\n  - model_name: hf\n    litellm_params: {params}\n")
}

/// The conversation of a template case, addressed to `hf`.
fn request_of(case: &Value) -> Value {
    json!({"model": "hf", "messages": case["messages"], "max_tokens": 40, "temperature": 0.3})
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
async fn a_chat_deployment_relays_openai_chat_to_v1_with_the_bearer_token() {
    let reply = json!({
        "id": "chatcmpl-tgi", "object": "chat.completion", "created": 1_700_000_000,
        "model": "meta-llama/Llama-3.1-8B-Instruct",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Rome."}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 2, "total_tokens": 22},
    });
    let mock = WireMock::start(Script {
        status: 200,
        body: reply.to_string(),
        sse: String::new(),
    })
    .await;
    let gw = Gateway::start(&format!(
        "model_list:\n  - model_name: hf\n    litellm_params: {{model: huggingface/meta-llama/Llama-3.1-8B-Instruct, api_base: '{}', api_key: hf-test-token}}\n",
        mock.base
    ))
    .await;
    let messages = json!([{"role": "user", "content": "Capital of Italy?"}]);

    let r = gw
        .post(
            "/v1/chat/completions",
            None,
            &json!({"model": "hf", "messages": messages, "max_tokens": 8}),
        )
        .await;

    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["choices"][0]["message"]["content"], "Rome.");
    assert_eq!(r.json()["usage"]["total_tokens"], 22);
    let call = &mock.calls()[0];
    assert_eq!(call.path, "/v1/chat/completions");
    assert_eq!(call.headers["authorization"], "Bearer hf-test-token");
    assert_eq!(
        call.body,
        json!({"model": "meta-llama/Llama-3.1-8B-Instruct", "messages": messages, "max_tokens": 8})
    );
}

#[actix_rt::test]
async fn a_templated_deployment_sends_the_written_prompt_to_generate() {
    let mock = tgi_mock().await;
    let gw = Gateway::start(&templated_config(&mock.base)).await;
    let template = case("template_custom.json");

    let r = gw
        .post("/v1/chat/completions", None, &request_of(&template))
        .await;

    assert_eq!(r.status, 200, "{}", r.text);
    let call = &mock.calls()[0];
    assert_eq!(call.path, "/generate");
    assert_eq!(call.headers["authorization"], "Bearer hf-test-token");
    let prompt = template["prompt"].as_str().unwrap();
    assert_eq!(
        call.body,
        json!({
            "inputs": prompt,
            "parameters": {"details": true, "return_full_text": false, "max_new_tokens": 40, "temperature": 0.3},
            "stream": false,
        })
    );
    let got = r.json();
    assert_eq!(got["object"], "chat.completion");
    assert_eq!(got["model"], "my-org/vicuna-style-13b");
    assert_eq!(
        got["choices"][0]["message"],
        json!({"role": "assistant", "content": "The capital of Italy is Rome."})
    );
    assert_eq!(got["choices"][0]["finish_reason"], "stop");
    let prompt_tokens = llmgate::tokens::count(prompt);
    assert_eq!(
        got["usage"],
        json!({"prompt_tokens": prompt_tokens, "completion_tokens": 8, "total_tokens": prompt_tokens + 8})
    );
}

#[actix_rt::test]
async fn a_raw_stream_uses_generate_stream_and_ends_with_finish_and_usage() {
    let mock = tgi_mock().await;
    let gw = Gateway::start(&templated_config(&mock.base)).await;
    let mut body = request_of(&case("template_custom.json"));
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});

    let r = gw.post("/v1/chat/completions", None, &body).await;

    assert_eq!(r.status, 200, "{}", r.text);
    let call = &mock.calls()[0];
    assert_eq!(call.path, "/generate_stream");
    assert_eq!(call.body["stream"], true);
    let chunks = chunks(&r.text);
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "The capital of Italy is Rome.");
    assert_eq!(
        chunks[chunks.len() - 2]["choices"][0]["finish_reason"],
        "stop"
    );
    let usage = &chunks.last().unwrap()["usage"];
    assert_eq!(
        (&usage["prompt_tokens"], &usage["completion_tokens"]),
        (&json!(31), &json!(8))
    );
}

#[actix_rt::test]
async fn a_llama_3_model_in_completion_mode_gets_the_llama_3_prompt_for_chat_and_completions() {
    let mock = tgi_mock().await;
    let gw = Gateway::start(&format!(
        "model_list:\n  - model_name: hf\n    litellm_params: {{model: huggingface/meta-llama/Meta-Llama-3-8B-Instruct, api_base: '{}/v1'}}\n    model_info: {{mode: completion}}\n",
        mock.base
    ))
    .await;
    let llama = case("template_llama3.json");

    let r = gw
        .post("/v1/chat/completions", None, &request_of(&llama))
        .await;

    assert_eq!(r.status, 200, "{}", r.text);
    let call = &mock.calls()[0];
    assert_eq!(call.path, "/generate");
    assert_eq!(call.body["inputs"], llama["prompt"]);

    let r = gw
        .post(
            "/v1/completions",
            None,
            &json!({"model": "hf", "prompt": "Name a city."}),
        )
        .await;

    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["object"], "text_completion");
    assert_eq!(
        r.json()["choices"][0]["text"],
        "The capital of Italy is Rome."
    );
    assert_eq!(
        mock.calls()[1].body["inputs"],
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nName a city.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    );
}

#[actix_rt::test]
async fn a_tgi_token_limit_error_is_a_context_window_error_with_its_fallbacks() {
    let mock = tgi_mock().await;
    mock.set(Script {
        status: 422,
        body: json!({"error": "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096. Given: 4090 `inputs` tokens and 40 `max_new_tokens`", "error_type": "validation"}).to_string(),
        sse: String::new(),
    });
    let big = MockUpstream::start().await;
    let yaml = format!(
        "{}  - model_name: big\n    litellm_params: {{model: openai/big, api_base: '{}'}}\nlitellm_settings: {{context_window_fallbacks: [{{hf: [big]}}]}}\n",
        templated_config(&mock.base),
        big.v1()
    );
    let gw = Gateway::start(&yaml).await;
    let body = request_of(&case("template_custom.json"));

    let r = gw.post("/v1/chat/completions", None, &body).await;

    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("x-litellm-attempted-fallbacks"), Some("1"));
    let gw = Gateway::start(&templated_config(&mock.base)).await;
    let r = gw.post("/v1/chat/completions", None, &body).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(
        r.json()["error"]["message"],
        "litellm.ContextWindowExceededError: HuggingfaceException - Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096. Given: 4090 `inputs` tokens and 40 `max_new_tokens`"
    );
}
