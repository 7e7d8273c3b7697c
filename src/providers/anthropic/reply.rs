//! An Anthropic message as an OpenAI `chat.completion`: text, tool calls, thinking, the stop
//! reason and usage (cache tokens included).

use serde_json::{json, Map, Value as Json};

/// Anthropic's `stop_reason` as OpenAI's `finish_reason`.
pub fn finish_reason(stop_reason: &str) -> &'static str {
    match stop_reason {
        "max_tokens" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        _ => "stop",
    }
}

/// Anthropic's `usage` as OpenAI's: prompt tokens include those written to and read from the
/// cache, and both are also shown apart, as LiteLLM does.
pub fn usage(u: &Json) -> Json {
    let n = |k: &str| u.get(k).and_then(Json::as_u64).unwrap_or(0);
    let (input, output) = (n("input_tokens"), n("output_tokens"));
    let (written, read) = (
        n("cache_creation_input_tokens"),
        n("cache_read_input_tokens"),
    );
    let prompt = input + written + read;
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": output,
        "total_tokens": prompt + output,
        "prompt_tokens_details": {"cached_tokens": read},
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": read,
    })
}

/// The OpenAI chat completion for an Anthropic `message`, stamped `created`.
pub fn chat_completion(message: &Json, created: u64) -> Json {
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut thinking_blocks = Vec::new();
    let mut tool_calls = Vec::new();
    for block in message["content"].as_array().into_iter().flatten() {
        match block["type"].as_str() {
            Some("text") => text.push_str(block["text"].as_str().unwrap_or_default()),
            Some("thinking") => {
                reasoning.push_str(block["thinking"].as_str().unwrap_or_default());
                thinking_blocks.push(block.clone());
            }
            Some("redacted_thinking") => thinking_blocks.push(block.clone()),
            Some("tool_use") => tool_calls.push(json!({
                "id": block["id"],
                "type": "function",
                "function": {
                    "name": block["name"],
                    "arguments": block["input"].to_string(),
                },
            })),
            _ => {}
        }
    }
    let mut reply = Map::new();
    reply.insert("role".into(), Json::from("assistant"));
    reply.insert(
        "content".into(),
        if text.is_empty() && !tool_calls.is_empty() {
            Json::Null
        } else {
            Json::from(text)
        },
    );
    if !tool_calls.is_empty() {
        reply.insert("tool_calls".into(), Json::Array(tool_calls));
    }
    if !thinking_blocks.is_empty() {
        reply.insert("reasoning_content".into(), Json::from(reasoning));
        reply.insert("thinking_blocks".into(), Json::Array(thinking_blocks));
    }
    let finish = finish_reason(message["stop_reason"].as_str().unwrap_or("end_turn"));
    json!({
        "id": message["id"],
        "object": "chat.completion",
        "created": created,
        "model": message["model"],
        "choices": [{"index": 0, "message": reply, "finish_reason": finish}],
        "usage": usage(&message["usage"]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Json {
        let path = format!(
            "{}/tests/fixtures/anthropic/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    #[test]
    fn a_reply_with_thinking_and_a_tool_call_translates_as_recorded() {
        let case = fixture("reply_tool_use.json");
        assert_eq!(
            chat_completion(&case["anthropic"], 1_700_000_000),
            case["openai"]
        );
    }

    #[test]
    fn stop_reasons_map_to_finish_reasons() {
        for (stop, finish) in [
            ("end_turn", "stop"),
            ("stop_sequence", "stop"),
            ("max_tokens", "length"),
            ("tool_use", "tool_calls"),
            ("refusal", "content_filter"),
        ] {
            assert_eq!(finish_reason(stop), finish);
        }
    }
}
