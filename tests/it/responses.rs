//! `/v1/responses` (the OpenAI Responses API): passed through to OpenAI and Azure deployments
//! (checked at a mock speaking it from recorded fixtures), translated to chat for the others
//! (Anthropic's Messages API, an OpenAI-compatible chat server), streams included; charged,
//! logged and routed like chat; `previous_response_id`, retrieval and deletion.

use llmgate::actors::Flush;
use serde_json::{json, Value};

use crate::support::wire::{fixture, Script, WireMock};
use crate::support::{assert_error_body, Behavior, Gateway, MockUpstream};

const MASTER: &str = "sk-master-responses-1";
/// Prices set on every deployment here, so costs are known exactly.
const PRICES: &str = "input_cost_per_token: 0.000001, output_cost_per_token: 0.000002";

fn cost(input: u64, output: u64) -> f64 {
    input as f64 * 0.000001 + output as f64 * 0.000002
}

/// `deployments`: a model name and its `litellm_params`, then `model_info` after a `|`.
fn config(deployments: &[(&str, String)], extra: &str) -> String {
    let mut yaml = String::from("model_list:\n");
    for (name, params) in deployments {
        let (params, info) = params.split_once('|').unwrap_or((params, ""));
        yaml.push_str(&format!(
            "  - model_name: {name}\n    litellm_params: {{{params}, {PRICES}}}\n"
        ));
        if !info.is_empty() {
            yaml.push_str(&format!("    model_info: {{{info}}}\n"));
        }
    }
    yaml.push_str(&format!(
        "litellm_settings:\n  num_retries: 0\n{extra}general_settings:\n  master_key: {MASTER}\n"
    ));
    yaml
}

/// An OpenAI deployment `id` at a mock that speaks the Responses API from the fixtures.
async fn native_mock() -> WireMock {
    WireMock::start(Script {
        status: 200,
        body: fixture("openai/responses_reply.json"),
        sse: fixture("openai/responses_stream.sse"),
    })
    .await
}

fn native(base: &str, id: &str) -> String {
    format!("model: openai/gpt-4.1, api_base: '{base}/v1', api_key: sk-upstream-native|id: {id}")
}

async fn anthropic_mock() -> WireMock {
    let reply: Value = serde_json::from_str(&fixture("anthropic/reply_tool_use.json")).unwrap();
    WireMock::start(Script {
        status: 200,
        body: reply["anthropic"].to_string(),
        sse: fixture("anthropic/stream_tool_use.sse"),
    })
    .await
}

fn anthropic(base: &str) -> String {
    format!(
        "model: anthropic/claude-3-7-sonnet-20250219, api_base: '{base}', api_key: sk-ant-upstream"
    )
}

/// An OpenAI-compatible server without the Responses API (served through chat).
fn chat_only(base: &str) -> String {
    format!("model: hosted_vllm/llama-3.1-8b, api_base: '{base}'")
}

fn upstream_response_id() -> String {
    let reply: Value = serde_json::from_str(&fixture("openai/responses_reply.json")).unwrap();
    reply["id"].as_str().unwrap().to_owned()
}

/// A stream's events: the `event:` name (which must match the data's `type`) and the data.
fn events(text: &str) -> Vec<Value> {
    text.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let name = e
                .lines()
                .find_map(|l| l.strip_prefix("event: "))
                .unwrap_or_else(|| panic!("no event line in {e:?}"));
            let data: Value = serde_json::from_str(
                e.lines()
                    .find_map(|l| l.strip_prefix("data: "))
                    .unwrap_or_else(|| panic!("no data line in {e:?}")),
            )
            .unwrap();
            assert_eq!(data["type"], name, "{e}");
            data
        })
        .collect()
}

fn kinds(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

fn header_f64(r: &crate::support::gateway::Reply, name: &str) -> f64 {
    r.header(name)
        .unwrap_or_else(|| panic!("no {name}"))
        .parse()
        .unwrap()
}

fn output_text(response: &Value) -> String {
    response["output"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "message")
        .flat_map(|i| i["content"].as_array().unwrap().iter())
        .filter_map(|p| p["text"].as_str())
        .collect()
}

async fn new_key(gw: &Gateway) -> String {
    let r = gw
        .post("/key/generate", Some(MASTER), &json!({"duration": null}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()["key"].as_str().unwrap().to_owned()
}

#[actix_rt::test]
async fn an_openai_deployment_gets_the_request_as_sent_and_its_reply_relayed() {
    let mock = native_mock().await;
    let gw = Gateway::start(&config(&[("gpt", native(&mock.base, "native-1"))], "")).await;
    let body = json!({
        "model": "gpt",
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "Say hi"}]}],
        "instructions": "You are a helpful assistant.",
        "temperature": 0.5,
        "include": ["reasoning.encrypted_content"],
        "metadata": {"team": "a"},
        "mock_timeout": null,
    });

    let r = gw.post("/v1/responses", Some(MASTER), &body).await;

    assert_eq!(r.status, 200, "{}", r.text);
    let call = &mock.calls()[0];
    assert_eq!(call.path, "/v1/responses");
    assert_eq!(call.headers["authorization"], "Bearer sk-upstream-native");
    assert_eq!(
        call.body,
        json!({
            "model": "gpt-4.1",
            "input": [{"role": "user", "content": [{"type": "input_text", "text": "Say hi"}]}],
            "instructions": "You are a helpful assistant.",
            "temperature": 0.5,
            "include": ["reasoning.encrypted_content"],
        }),
        "the request as sent, the deployment's model, no gateway field"
    );
    let mut got = r.json();
    let mut want: Value = serde_json::from_str(&fixture("openai/responses_reply.json")).unwrap();
    let id = got["id"].as_str().unwrap().to_owned();
    assert_ne!(id, upstream_response_id(), "the id names the deployment");
    got["id"] = json!(null);
    want["id"] = json!(null);
    assert_eq!(got, want, "the reply relayed as is");
    assert_eq!(r.header("x-litellm-model-id"), Some("native-1"));
    assert!((header_f64(&r, "x-litellm-response-cost") - cost(37, 11)).abs() < 1e-12);
}

#[actix_rt::test]
async fn an_openai_stream_is_relayed_event_by_event_with_the_cost_in_response_completed() {
    let mock = native_mock().await;
    let gw = Gateway::start(&config(&[("gpt", native(&mock.base, "native-1"))], "")).await;

    let r = gw
        .post(
            "/responses",
            Some(MASTER),
            &json!({"model": "gpt", "input": "Say hi", "stream": true}),
        )
        .await;

    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    let sent = &mock.calls()[0].body;
    assert_eq!(sent["stream"], true);
    assert!(sent.get("stream_options").is_none(), "{sent}");
    let got = events(&r.text);
    let want = events(&fixture("openai/responses_stream.sse"));
    assert_eq!(kinds(&got), kinds(&want), "every event, in order");
    assert!(!r.text.contains("[DONE]"));
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g["sequence_number"], w["sequence_number"]);
        if w.get("response").is_none() {
            assert_eq!(g, w, "relayed as is");
        }
    }
    let ids: Vec<&str> = got
        .iter()
        .filter_map(|e| e["response"]["id"].as_str())
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(ids
        .iter()
        .all(|id| *id == ids[0] && *id != upstream_response_id()));
    let completed = &got.last().unwrap()["response"];
    assert_eq!(completed["usage"]["input_tokens"], 37);
    let streamed_cost = completed["usage"]["cost"].as_f64().unwrap();
    assert!(
        (streamed_cost - cost(37, 11)).abs() < 1e-12,
        "{streamed_cost}"
    );
}

#[actix_rt::test]
async fn azure_gets_the_responses_api_at_its_resource_with_its_api_version() {
    let mock = native_mock().await;
    let azure = format!(
        "model: azure/my-gpt, api_base: '{}', api_key: azure-key-1, api_version: 2025-03-01-preview",
        mock.base
    );
    let gw = Gateway::start(&config(&[("gpt", azure)], "")).await;

    let r = gw
        .post(
            "/v1/responses",
            Some(MASTER),
            &json!({"model": "gpt", "input": "hi"}),
        )
        .await;

    assert_eq!(r.status, 200, "{}", r.text);
    let call = &mock.calls()[0];
    assert_eq!(call.path, "/openai/responses");
    assert_eq!(call.query, "api-version=2025-03-01-preview");
    assert_eq!(call.headers["api-key"], "azure-key-1");
    assert_eq!(call.body["model"], "my-gpt");
}

#[actix_rt::test]
async fn an_anthropic_deployment_answers_through_the_messages_api_as_a_response_object() {
    let mock = anthropic_mock().await;
    let gw = Gateway::start(&config(&[("claude", anthropic(&mock.base))], "")).await;
    let body = json!({
        "model": "claude",
        "instructions": "Be brief.",
        "input": "Weather in Paris?",
        "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}],
        "max_output_tokens": 300,
    });

    let r = gw.post("/v1/responses", Some(MASTER), &body).await;

    assert_eq!(r.status, 200, "{}", r.text);
    let call = &mock.calls()[0];
    assert_eq!(call.path, "/v1/messages");
    assert_eq!(
        call.body["system"],
        json!([{"type": "text", "text": "Be brief."}])
    );
    assert_eq!(
        call.body["messages"],
        json!([{"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]}])
    );
    assert_eq!(call.body["max_tokens"], 300);
    assert_eq!(call.body["tools"][0]["name"], "get_weather");
    let response = r.json();
    assert!(response["id"].as_str().unwrap().starts_with("resp_"));
    assert_eq!(response["object"], "response");
    assert_eq!(response["status"], "completed");
    assert_eq!(response["model"], "claude-3-7-sonnet-20250219");
    assert_eq!(response["instructions"], "Be brief.");
    assert_eq!(response["max_output_tokens"], 300);
    let types: Vec<&str> = response["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["reasoning", "message", "function_call"]);
    assert_eq!(
        response["output"][0]["summary"][0]["text"],
        "The user wants the weather; call the tool."
    );
    assert_eq!(output_text(&response), "I'll look that up.");
    let call_item = &response["output"][2];
    assert_eq!(call_item["call_id"], "toolu_01T1x1fJ34qAmk2tNTrN7Up6");
    assert_eq!(call_item["name"], "get_weather");
    assert_eq!(
        call_item["arguments"],
        r#"{"city":"Paris","unit":"celsius"}"#
    );
    // Anthropic's cache tokens count as input, as for chat.
    assert_eq!(response["usage"]["input_tokens"], 2620);
    assert_eq!(
        response["usage"]["input_tokens_details"]["cached_tokens"],
        2048
    );
    assert_eq!(response["usage"]["output_tokens"], 91);
    assert_eq!(response["usage"]["total_tokens"], 2711);
    assert!((header_f64(&r, "x-litellm-response-cost") - cost(2620, 91)).abs() < 1e-12);
}

#[actix_rt::test]
async fn an_anthropic_stream_becomes_the_responses_event_sequence() {
    let mock = anthropic_mock().await;
    let gw = Gateway::start(&config(&[("claude", anthropic(&mock.base))], "")).await;

    let r = gw
        .post(
            "/v1/responses",
            Some(MASTER),
            &json!({"model": "claude", "input": "Weather in Paris?", "stream": true}),
        )
        .await;

    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(mock.calls()[0].body["stream"], true);
    let got = events(&r.text);
    let k = kinds(&got);
    assert_eq!(
        &k[..3],
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added"
        ]
    );
    assert_eq!(k.last(), Some(&"response.completed"));
    for expected in [
        "response.reasoning_summary_text.delta",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
    ] {
        assert!(k.contains(&expected), "{expected} in {k:?}");
    }
    let numbers: Vec<u64> = got
        .iter()
        .map(|e| e["sequence_number"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, (0..got.len() as u64).collect::<Vec<_>>());
    let text: String = got
        .iter()
        .filter(|e| e["type"] == "response.output_text.delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert_eq!(text, "Okay, let's check the weather.");
    let arguments: String = got
        .iter()
        .filter(|e| e["type"] == "response.function_call_arguments.delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert_eq!(arguments, r#"{"city": "Paris"}"#);
    let done = &got.last().unwrap()["response"];
    assert_eq!(done["status"], "completed");
    assert_eq!(output_text(done), "Okay, let's check the weather.");
    assert_eq!(done["output"][2]["arguments"], r#"{"city": "Paris"}"#);
    assert_eq!(done["usage"]["input_tokens"], 472);
    assert_eq!(done["usage"]["output_tokens"], 89);
    let streamed_cost = done["usage"]["cost"].as_f64().unwrap();
    assert!(
        (streamed_cost - cost(472, 89)).abs() < 1e-12,
        "{streamed_cost}"
    );
}

#[actix_rt::test]
async fn a_chat_only_deployment_serves_responses_with_and_without_a_stream() {
    let mock = MockUpstream::start().await;
    let gw = Gateway::start(&config(&[("llama", chat_only(&mock.v1()))], "")).await;

    let r = gw
        .post(
            "/v1/responses",
            Some(MASTER),
            &json!({"model": "llama", "input": "hello there", "max_output_tokens": 20}),
        )
        .await;

    assert_eq!(r.status, 200, "{}", r.text);
    let call = mock.last();
    assert_eq!(call.path, "/v1/chat/completions");
    assert_eq!(
        call.body,
        json!({"model": "llama-3.1-8b", "messages": [{"role": "user", "content": "hello there"}], "max_tokens": 20})
    );
    let response = r.json();
    assert_eq!(output_text(&response), "mock says hi");
    assert_eq!(response["usage"]["input_tokens"], 7);
    assert_eq!(response["usage"]["output_tokens"], 3);

    let r = gw
        .post(
            "/v1/responses",
            Some(MASTER),
            &json!({"model": "llama", "input": "hello there", "stream": true}),
        )
        .await;

    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        mock.last().body["stream_options"],
        json!({"include_usage": true}),
        "usage is asked of the upstream"
    );
    let got = events(&r.text);
    let text: String = got
        .iter()
        .filter(|e| e["type"] == "response.output_text.delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert_eq!(text, "piece0 piece1 piece2 ");
    let done = &got.last().unwrap()["response"];
    assert_eq!(got.last().unwrap()["type"], "response.completed");
    assert_eq!(output_text(done), "piece0 piece1 piece2 ");
    assert_eq!(done["usage"]["input_tokens"], 7);
    assert!((done["usage"]["cost"].as_f64().unwrap() - cost(7, 3)).abs() < 1e-12);
}

#[actix_rt::test]
async fn function_calls_and_their_outputs_go_to_chat_as_tool_calls_and_tool_messages() {
    let mock = MockUpstream::start().await;
    let gw = Gateway::start(&config(&[("llama", chat_only(&mock.v1()))], "")).await;
    let body = json!({
        "model": "llama",
        "input": [
            {"role": "user", "content": "Weather in Paris?"},
            {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "18C"},
        ],
        "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}],
        "tool_choice": "auto",
    });

    let r = gw.post("/v1/responses", Some(MASTER), &body).await;

    assert_eq!(r.status, 200, "{}", r.text);
    let sent = mock.last().body;
    assert_eq!(
        sent["messages"],
        json!([
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
        ])
    );
    assert_eq!(
        sent["tools"],
        json!([{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}])
    );
    assert_eq!(sent["tool_choice"], "auto");
}

#[actix_rt::test]
async fn previous_response_id_continues_a_conversation_served_through_chat() {
    let mock = MockUpstream::start().await;
    let gw = Gateway::start(&config(&[("llama", chat_only(&mock.v1()))], "")).await;
    let first = gw
        .post(
            "/v1/responses",
            Some(MASTER),
            &json!({"model": "llama", "input": "first question", "instructions": "Be brief."}),
        )
        .await
        .json();
    let id = first["id"].as_str().unwrap();

    let r = gw
        .post(
            "/v1/responses",
            Some(MASTER),
            &json!({"model": "llama", "input": "second question", "previous_response_id": id}),
        )
        .await;

    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["previous_response_id"], id);
    assert_eq!(
        mock.last().body["messages"],
        json!([
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "mock says hi"},
            {"role": "user", "content": "second question"},
        ]),
        "the earlier turn, not its instructions"
    );

    let unstored = gw
        .post(
            "/v1/responses",
            Some(MASTER),
            &json!({"model": "llama", "input": "x", "store": false}),
        )
        .await
        .json();
    for unknown in ["resp_never_seen", unstored["id"].as_str().unwrap()] {
        let r = gw
            .post(
                "/v1/responses",
                Some(MASTER),
                &json!({"model": "llama", "input": "x", "previous_response_id": unknown}),
            )
            .await;
        assert_eq!(r.status, 400, "{}", r.text);
        assert_eq!(r.json()["error"]["param"], "previous_response_id");
    }
}

#[actix_rt::test]
async fn previous_response_id_of_a_native_response_reaches_the_deployment_holding_it() {
    let (a, b) = (native_mock().await, native_mock().await);
    let gw = Gateway::start(&config(
        &[
            ("gpt", native(&a.base, "dep-a")),
            ("gpt", native(&b.base, "dep-b")),
        ],
        "",
    ))
    .await;
    let first = gw
        .post(
            "/v1/responses",
            Some(MASTER),
            &json!({"model": "gpt", "input": "hi"}),
        )
        .await;
    assert_eq!(first.status, 200, "{}", first.text);
    let holder = first.header("x-litellm-model-id").unwrap().to_owned();
    let id = first.json()["id"].as_str().unwrap().to_owned();

    for _ in 0..6 {
        let r = gw
            .post(
                "/v1/responses",
                Some(MASTER),
                &json!({"model": "gpt", "input": "more", "previous_response_id": id}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.header("x-litellm-model-id"), Some(holder.as_str()));
    }
    let (held, other) = if holder == "dep-a" {
        (&a, &b)
    } else {
        (&b, &a)
    };
    let follow_ups: Vec<_> = held
        .calls()
        .into_iter()
        .filter(|c| c.body["input"] == "more")
        .collect();
    assert_eq!(follow_ups.len(), 6);
    assert!(follow_ups
        .iter()
        .all(|c| c.body["previous_response_id"] == upstream_response_id()));
    assert!(other.calls().iter().all(|c| c.body["input"] != "more"));
}

#[actix_rt::test]
async fn retrieve_delete_and_input_items_reach_the_deployment_that_made_the_response() {
    let mock = native_mock().await;
    let gw = Gateway::start(&config(&[("gpt", native(&mock.base, "native-1"))], "")).await;
    let id = gw
        .post(
            "/v1/responses",
            Some(MASTER),
            &json!({"model": "gpt", "input": "hi"}),
        )
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let upstream = upstream_response_id();

    let got = gw.get(&format!("/v1/responses/{id}"), Some(MASTER)).await;
    assert_eq!(got.status, 200, "{}", got.text);
    assert_eq!(
        got.json()["id"],
        id.as_str(),
        "named as the client knows it"
    );
    assert_eq!(
        mock.calls().last().unwrap().path,
        format!("/v1/responses/{upstream}")
    );

    let items = gw
        .get(
            &format!("/responses/{id}/input_items?limit=5&order=asc"),
            Some(MASTER),
        )
        .await;
    assert_eq!(items.status, 200, "{}", items.text);
    let call = mock.calls().last().unwrap().clone();
    assert_eq!(call.path, format!("/v1/responses/{upstream}/input_items"));
    assert_eq!(call.query, "limit=5&order=asc");
    assert_eq!(call.headers["authorization"], "Bearer sk-upstream-native");

    let deleted = gw
        .client
        .delete(format!("{}/v1/responses/{id}", gw.base))
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    assert_eq!(
        mock.calls().last().unwrap().path,
        format!("/v1/responses/{upstream}")
    );

    let translated = gw
        .get("/v1/responses/resp_0123456789abcdef", Some(MASTER))
        .await;
    assert_eq!(translated.status, 404, "{}", translated.text);
    assert_error_body(&translated.json(), 404, "not_found_error");
    assert_eq!(
        gw.get(&format!("/v1/responses/{id}"), None).await.status,
        401
    );
}

#[actix_rt::test]
async fn a_key_cannot_read_or_continue_another_keys_response() {
    let mock = native_mock().await;
    let gw = Gateway::start(&config(&[("gpt", native(&mock.base, "native-1"))], "")).await;
    let (alice, bob) = (new_key(&gw).await, new_key(&gw).await);
    let made = gw
        .post(
            "/v1/responses",
            Some(&alice),
            &json!({"model": "gpt", "input": "secret"}),
        )
        .await;
    assert_eq!(made.status, 200, "{}", made.text);
    let id = made.json()["id"].as_str().unwrap().to_owned();

    assert_eq!(
        gw.get(&format!("/v1/responses/{id}"), Some(&alice))
            .await
            .status,
        200
    );
    assert_eq!(
        gw.get(&format!("/v1/responses/{id}"), Some(MASTER))
            .await
            .status,
        200
    );
    let r = gw.get(&format!("/v1/responses/{id}"), Some(&bob)).await;
    assert_eq!(r.status, 404, "{}", r.text);
    let r = gw
        .post(
            "/v1/responses",
            Some(&bob),
            &json!({"model": "gpt", "input": "x", "previous_response_id": id}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.json()["error"]["param"], "previous_response_id");
}

#[actix_rt::test]
async fn bad_requests_and_upstream_errors_are_in_the_contract_shape() {
    let mock = MockUpstream::start().await;
    let gw = Gateway::start(&config(&[("llama", chat_only(&mock.v1()))], "")).await;
    let cases = [
        (json!({"model": "llama"}), "input"),
        (json!({"model": "llama", "input": 7}), "input"),
        (
            json!({"model": "llama", "input": "x", "tools": [{"type": "web_search"}]}),
            "tools[0].type",
        ),
        (
            json!({"model": "llama", "input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file-1"}]}]}),
            "input[0].content[0].image_url",
        ),
        (json!({"input": "x"}), "model"),
    ];
    for (body, param) in cases {
        let r = gw.post("/v1/responses", Some(MASTER), &body).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text);
        assert_error_body(&r.json(), 400, "invalid_request_error");
        assert_eq!(r.json()["error"]["param"], param, "{body}");
    }
    let r = gw
        .post_raw("/v1/responses", Some(MASTER), b"{not json".to_vec())
        .await;
    assert_eq!(r.status, 400);
    let r = gw
        .post(
            "/v1/responses",
            Some(MASTER),
            &json!({"model": "nope", "input": "x"}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.text.contains("/v1/models"), "{}", r.text);
    assert_eq!(
        gw.post(
            "/v1/responses",
            None,
            &json!({"model": "llama", "input": "x"})
        )
        .await
        .status,
        401
    );

    mock.set(Behavior::Fail(
        503,
        r#"{"error":{"message":"overloaded","type":"server_error"}}"#.into(),
    ));
    let r = gw
        .post(
            "/v1/responses",
            Some(MASTER),
            &json!({"model": "llama", "input": "x"}),
        )
        .await;
    assert_eq!(r.status, 503, "{}", r.text);
    let message = assert_error_body(&r.json(), 503, "server_error");
    assert!(message.contains("overloaded"), "{message}");
}

#[actix_rt::test]
async fn an_error_after_a_stream_began_is_the_responses_error_event_then_the_end() {
    let mock = MockUpstream::start().await;
    mock.set(Behavior::BreakMidStream { after: 2 });
    let cut = WireMock::start(Script {
        status: 200,
        body: String::new(),
        // The recorded stream without its `response.completed`.
        sse: fixture("openai/responses_stream.sse")
            .split_inclusive("\n\n")
            .filter(|e| !e.contains("response.completed"))
            .collect(),
    })
    .await;
    let gw = Gateway::start(&config(
        &[
            ("llama", chat_only(&mock.v1())),
            ("gpt", native(&cut.base, "native-1")),
        ],
        "",
    ))
    .await;

    for model in ["llama", "gpt"] {
        let r = gw
            .post(
                "/v1/responses",
                Some(MASTER),
                &json!({"model": model, "input": "x", "stream": true}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let got = events(&r.text);
        let last = got.last().unwrap();
        assert_eq!(last["type"], "error", "{model}: {:?}", kinds(&got));
        assert_eq!(last["code"], "api_connection_error");
        assert!(
            last["message"].as_str().unwrap().contains("stream"),
            "{last}"
        );
        assert!(!kinds(&got).contains(&"response.completed"));
        let numbers: Vec<u64> = got
            .iter()
            .map(|e| e["sequence_number"].as_u64().unwrap())
            .collect();
        assert!(
            numbers.windows(2).all(|w| w[1] == w[0] + 1),
            "{model}: {numbers:?}"
        );
    }
}

#[actix_rt::test]
async fn the_key_is_charged_the_cost_header_and_a_spend_log_row_is_written() {
    let native_upstream = native_mock().await;
    let anthropic_upstream = anthropic_mock().await;
    let gw = Gateway::start(&config(
        &[
            ("gpt", native(&native_upstream.base, "native-1")),
            ("claude", anthropic(&anthropic_upstream.base)),
        ],
        "",
    ))
    .await;
    let key = new_key(&gw).await;
    let spend = async || {
        gw.get(&format!("/key/info?key={key}"), Some(MASTER))
            .await
            .json()["info"]["spend"]
            .as_f64()
            .unwrap()
    };

    let mut total = 0.0;
    for (model, call_id) in [("gpt", "resp-call-native"), ("claude", "resp-call-claude")] {
        let auth = format!("Bearer {key}");
        let headers = [
            ("authorization", auth.as_str()),
            ("x-litellm-call-id", call_id),
        ];
        let r = gw
            .post_with(
                "/v1/responses",
                &headers,
                &json!({"model": model, "input": "hi"}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        total += header_f64(&r, "x-litellm-response-cost");
        assert!((header_f64(&r, "x-litellm-key-spend") - total).abs() < 1e-12);
        assert!((spend().await - total).abs() < 1e-12);
    }
    let streamed = gw
        .post(
            "/v1/responses",
            Some(&key),
            &json!({"model": "gpt", "input": "hi", "stream": true}),
        )
        .await;
    total += events(&streamed.text).last().unwrap()["response"]["usage"]["cost"]
        .as_f64()
        .unwrap();
    assert!(
        (spend().await - total).abs() < 1e-12,
        "a stream is charged its final event's cost"
    );

    gw.state.spend().send(Flush).await.unwrap().unwrap();
    let row = &gw
        .get("/spend/logs?request_id=resp-call-native", Some(MASTER))
        .await
        .json()[0];
    assert_eq!(row["model_group"], "gpt");
    assert_eq!(row["status"], "success");
    assert_eq!(row["prompt_tokens"], 37);
    assert_eq!(row["completion_tokens"], 11);
    assert!((row["spend"].as_f64().unwrap() - cost(37, 11)).abs() < 1e-12);
    let row = &gw
        .get("/spend/logs?request_id=resp-call-claude", Some(MASTER))
        .await
        .json()[0];
    assert_eq!(row["model_group"], "claude");
    assert_eq!(row["total_tokens"], 2711);
}

#[actix_rt::test]
async fn mock_response_answers_a_responses_request_without_an_upstream() {
    let gw = Gateway::start(&config(
        &[(
            "mocked",
            "model: openai/gpt-4.1, mock_response: 'canned reply here'".to_owned(),
        )],
        "",
    ))
    .await;

    let r = gw
        .post(
            "/v1/responses",
            Some(MASTER),
            &json!({"model": "mocked", "input": "x"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let response = r.json();
    assert_eq!(response["object"], "response");
    assert_eq!(output_text(&response), "canned reply here");
    assert_eq!(response["usage"]["total_tokens"], 30);
    assert!((header_f64(&r, "x-litellm-response-cost") - cost(10, 20)).abs() < 1e-12);

    let r = gw
        .post(
            "/v1/responses",
            Some(MASTER),
            &json!({"model": "mocked", "input": "x", "stream": true}),
        )
        .await;
    let got = events(&r.text);
    assert_eq!(got.last().unwrap()["type"], "response.completed");
    assert_eq!(
        output_text(&got.last().unwrap()["response"]),
        "canned reply here"
    );

    let r = gw
        .post(
            "/v1/responses",
            Some(MASTER),
            &json!({"model": "mocked", "input": "x", "mock_response": "litellm.RateLimitError"}),
        )
        .await;
    assert_eq!(r.status, 429, "{}", r.text);
}

#[actix_rt::test]
async fn callbacks_log_a_responses_call_as_aresponses() {
    let receiver = WireMock::start(Script {
        status: 200,
        body: "{}".into(),
        sse: String::new(),
    })
    .await;
    let mock = MockUpstream::start().await;
    let extra = format!(
        "  success_callback: [generic_api]\nenvironment_variables:\n  GENERIC_LOGGER_ENDPOINT: '{}/logs'\n",
        receiver.base
    );
    let gw = Gateway::start(&config(&[("llama", chat_only(&mock.v1()))], &extra)).await;

    let r = gw
        .post(
            "/v1/responses",
            Some(MASTER),
            &json!({"model": "llama", "input": "hello there"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    gw.state.callbacks.flush().await;

    let payloads: Vec<Value> = receiver
        .calls()
        .iter()
        .flat_map(|c| c.body.as_array().cloned().unwrap_or_default())
        .collect();
    assert_eq!(payloads.len(), 1, "{payloads:#?}");
    assert_eq!(payloads[0]["call_type"], "aresponses");
    assert_eq!(payloads[0]["model_group"], "llama");
    assert_eq!(payloads[0]["prompt_tokens"], 7);
    assert_eq!(payloads[0]["status"], "success");
}
