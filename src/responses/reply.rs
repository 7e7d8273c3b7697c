//! A chat completion as a Response object: output items (reasoning, the message's text, function
//! calls), status from the finish reason, usage in the Responses names, and the request's
//! settings echoed as OpenAI echoes them.

use serde_json::{json, Map, Value as Json};

use super::ids;

/// What every Response of one request repeats from it (OpenAI's defaults where it said
/// nothing): the fields in OpenAI's order, `id`, `created_at`, `model`, `output` and `usage`
/// left to fill.
pub fn skeleton(fields: &Map<String, Json>, metadata: Option<&Json>) -> Map<String, Json> {
    let echo = |key: &str, default: Json| {
        fields
            .get(key)
            .filter(|v| !v.is_null())
            .cloned()
            .unwrap_or(default)
    };
    let text = {
        let mut text = echo("text", json!({}));
        if text.get("format").is_none_or(Json::is_null) {
            text["format"] = json!({"type": "text"});
        }
        text
    };
    let reasoning = json!({
        "effort": fields.get("reasoning").and_then(|r| r.get("effort")).cloned().unwrap_or(Json::Null),
        "summary": fields.get("reasoning").and_then(|r| r.get("summary")).cloned().unwrap_or(Json::Null),
    });
    let mut r = Map::new();
    r.insert("id".into(), Json::Null);
    r.insert("object".into(), json!("response"));
    r.insert("created_at".into(), Json::Null);
    r.insert("status".into(), json!("in_progress"));
    r.insert("background".into(), json!(false));
    r.insert("error".into(), Json::Null);
    r.insert("incomplete_details".into(), Json::Null);
    r.insert("instructions".into(), echo("instructions", Json::Null));
    r.insert(
        "max_output_tokens".into(),
        echo("max_output_tokens", Json::Null),
    );
    r.insert("model".into(), Json::Null);
    r.insert("output".into(), json!([]));
    r.insert(
        "parallel_tool_calls".into(),
        echo("parallel_tool_calls", json!(true)),
    );
    r.insert(
        "previous_response_id".into(),
        echo("previous_response_id", Json::Null),
    );
    r.insert("reasoning".into(), reasoning);
    r.insert("store".into(), echo("store", json!(true)));
    r.insert("temperature".into(), echo("temperature", json!(1.0)));
    r.insert("text".into(), text);
    r.insert("tool_choice".into(), echo("tool_choice", json!("auto")));
    r.insert("tools".into(), echo("tools", json!([])));
    r.insert("top_p".into(), echo("top_p", json!(1.0)));
    r.insert("truncation".into(), echo("truncation", json!("disabled")));
    r.insert("usage".into(), Json::Null);
    r.insert("user".into(), echo("user", Json::Null));
    r.insert(
        "metadata".into(),
        metadata.cloned().unwrap_or_else(|| json!({})),
    );
    r
}

/// Chat's `usage` in the Responses names (`input_tokens`, `output_tokens` and their details);
/// a `cost` the gateway added is kept.
pub fn usage(chat: &Json) -> Json {
    let n = |v: &Json| v.as_u64().unwrap_or(0);
    let input = n(&chat["prompt_tokens"]);
    let output = n(&chat["completion_tokens"]);
    let total = chat["total_tokens"].as_u64().unwrap_or(input + output);
    let mut u = json!({
        "input_tokens": input,
        "input_tokens_details": {"cached_tokens": n(&chat["prompt_tokens_details"]["cached_tokens"])},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": n(&chat["completion_tokens_details"]["reasoning_tokens"])},
        "total_tokens": total,
    });
    if let Some(cost) = chat.get("cost").filter(|c| c.is_number()) {
        u["cost"] = cost.clone();
    }
    u
}

/// The status and `incomplete_details` a chat finish reason means.
pub fn status_of(finish_reason: Option<&str>) -> (&'static str, Json) {
    match finish_reason {
        Some("length") => ("incomplete", json!({"reason": "max_output_tokens"})),
        Some("content_filter") => ("incomplete", json!({"reason": "content_filter"})),
        _ => ("completed", Json::Null),
    }
}

/// A finished reasoning item.
pub fn reasoning_item(id: &str, text: &str) -> Json {
    json!({"id": id, "type": "reasoning", "summary": [{"type": "summary_text", "text": text}]})
}

/// A finished output text part.
pub fn text_part(text: &str) -> Json {
    json!({"type": "output_text", "annotations": [], "logprobs": [], "text": text})
}

/// A message item with its parts (`status` `in_progress` while streaming, then `completed`).
pub fn message_item(id: &str, status: &str, content: Vec<Json>) -> Json {
    json!({"id": id, "type": "message", "status": status, "content": content, "role": "assistant"})
}

/// A function call item.
pub fn call_item(id: &str, status: &str, call_id: &str, name: &str, arguments: &str) -> Json {
    json!({"id": id, "type": "function_call", "status": status, "arguments": arguments, "call_id": call_id, "name": name})
}

/// The output items of a chat reply's first choice.
fn output_items(message: &Json) -> Vec<Json> {
    let mut output = Vec::new();
    if let Some(reasoning) = message["reasoning_content"]
        .as_str()
        .filter(|r| !r.is_empty())
    {
        output.push(reasoning_item(&ids::item("rs"), reasoning));
    }
    let calls = message["tool_calls"].as_array().filter(|c| !c.is_empty());
    let text = match &message["content"] {
        Json::String(s) => Some(s.clone()),
        // Some providers answer with parts.
        Json::Array(parts) => Some(
            parts
                .iter()
                .filter_map(|p| p["text"].as_str())
                .collect::<String>(),
        ),
        _ => None,
    };
    match text {
        Some(text) if !text.is_empty() || calls.is_none() => output.push(message_item(
            &ids::item("msg"),
            "completed",
            vec![text_part(&text)],
        )),
        None if calls.is_none() => output.push(message_item(
            &ids::item("msg"),
            "completed",
            vec![text_part("")],
        )),
        _ => {}
    }
    for call in calls.into_iter().flatten() {
        let id = call["id"]
            .as_str()
            .map_or_else(|| ids::item("call"), str::to_owned);
        output.push(call_item(
            &ids::item("fc"),
            "completed",
            &id,
            call["function"]["name"].as_str().unwrap_or_default(),
            call["function"]["arguments"].as_str().unwrap_or("{}"),
        ));
    }
    output
}

/// A chat completion as the Response `id`, on the request's `skeleton`.
pub fn from_chat(chat: &Json, mut skeleton: Map<String, Json>, id: &str) -> Json {
    let choice = &chat["choices"][0];
    let (status, incomplete) = status_of(choice["finish_reason"].as_str());
    let created = chat["created"]
        .as_u64()
        .unwrap_or_else(crate::providers::unix_now);
    skeleton.insert("id".into(), json!(id));
    skeleton.insert("created_at".into(), json!(created));
    skeleton.insert("status".into(), json!(status));
    skeleton.insert("incomplete_details".into(), incomplete);
    skeleton.insert("model".into(), chat["model"].clone());
    skeleton.insert(
        "output".into(),
        Json::Array(output_items(&choice["message"])),
    );
    if chat["usage"].is_object() {
        skeleton.insert("usage".into(), usage(&chat["usage"]));
    }
    Json::Object(skeleton)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Item ids are random: the recorded fixtures hold placeholders.
    fn without_ids(mut v: Json) -> Json {
        if let Some(items) = v["output"].as_array_mut() {
            for item in items {
                item["id"] = json!("ID");
            }
        }
        v
    }

    #[test]
    fn the_recorded_chat_reply_becomes_the_recorded_response() {
        let case: Json = serde_json::from_str(include_str!(
            "../../tests/fixtures/openai/responses_reply_from_chat.json"
        ))
        .unwrap();
        let request = case["request"].as_object().unwrap();
        let got = from_chat(&case["chat"], skeleton(request, None), "resp_test");
        assert_eq!(without_ids(got), case["response"]);
    }

    #[test]
    fn a_length_stop_is_incomplete_and_tool_calls_without_text_have_no_message() {
        let chat = json!({"id": "c", "created": 5, "model": "m", "choices": [{"index": 0, "finish_reason": "length",
            "message": {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]}}]});
        let r = from_chat(&chat, skeleton(&Map::new(), None), "resp_1");
        assert_eq!(r["status"], "incomplete");
        assert_eq!(
            r["incomplete_details"],
            json!({"reason": "max_output_tokens"})
        );
        assert_eq!(r["output"].as_array().unwrap().len(), 1);
        assert_eq!(r["output"][0]["type"], "function_call");
        assert_eq!(r["output"][0]["call_id"], "call_1");
        assert_eq!(r["usage"], Json::Null);
        assert_eq!(r["tools"], json!([]));
        assert_eq!(r["text"], json!({"format": {"type": "text"}}));
    }

    #[test]
    fn usage_is_renamed_and_keeps_the_cost() {
        let u = usage(
            &json!({"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10,
            "completion_tokens_details": {"reasoning_tokens": 2}, "cost": 0.5}),
        );
        assert_eq!(
            u,
            json!({"input_tokens": 7, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 3,
                "output_tokens_details": {"reasoning_tokens": 2}, "total_tokens": 10, "cost": 0.5})
        );
    }
}
