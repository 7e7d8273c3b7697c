//! A Bedrock Converse reply as an OpenAI `chat.completion` (and the typed views the stream
//! translator shares), and InvokeModel embedding replies (Titan, Cohere) as an OpenAI list.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value as Json};

/// A Converse reply.
#[derive(Deserialize)]
struct Response<'a> {
    #[serde(borrow)]
    output: Output<'a>,
    #[serde(borrow, default, rename = "stopReason")]
    stop_reason: Option<Cow<'a, str>>,
    #[serde(default)]
    usage: TokenUsage,
}

#[derive(Deserialize)]
struct Output<'a> {
    #[serde(borrow)]
    message: Message<'a>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    content: Vec<Block<'a>>,
}

#[derive(Deserialize)]
struct Block<'a> {
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "toolUse")]
    tool_use: Option<ToolUse<'a>>,
    #[serde(borrow, default, rename = "reasoningContent")]
    reasoning: Option<Reasoning<'a>>,
}

#[derive(Deserialize)]
struct ToolUse<'a> {
    #[serde(borrow, rename = "toolUseId")]
    id: Cow<'a, str>,
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow, default)]
    input: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Reasoning<'a> {
    #[serde(borrow, default, rename = "reasoningText")]
    text: Option<ReasoningText<'a>>,
}

#[derive(Deserialize)]
struct ReasoningText<'a> {
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
}

/// Converse's `usage` (also the stream's `metadata.usage`).
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenUsage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
    #[serde(default)]
    cache_read_input_tokens: u64,
}

impl TokenUsage {
    /// OpenAI's `usage`.
    pub fn openai(&self) -> Json {
        let mut usage = json!({
            "prompt_tokens": self.input_tokens,
            "completion_tokens": self.output_tokens,
            "total_tokens": self.input_tokens + self.output_tokens,
        });
        if self.cache_read_input_tokens > 0 {
            usage["prompt_tokens_details"] =
                json!({ "cached_tokens": self.cache_read_input_tokens });
        }
        usage
    }
}

/// OpenAI's finish reason for a Converse `stopReason`.
pub fn finish_reason(stop: &str) -> &'static str {
    match stop {
        "tool_use" => "tool_calls",
        "max_tokens" | "model_context_window_exceeded" => "length",
        "guardrail_intervened" | "content_filtered" => "content_filter",
        _ => "stop",
    }
}

/// The OpenAI `chat.completion` for a Converse reply `body`.
pub fn chat_completion(body: &[u8], model: &str, created: u64) -> serde_json::Result<Json> {
    let r: Response<'_> = serde_json::from_slice(body)?;
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut calls = Vec::new();
    for block in &r.output.message.content {
        if let Some(t) = &block.text {
            text.push_str(t);
        }
        if let Some(t) = block
            .reasoning
            .as_ref()
            .and_then(|r| r.text.as_ref())
            .and_then(|t| t.text.as_deref())
        {
            reasoning.push_str(t);
        }
        if let Some(call) = &block.tool_use {
            calls.push(json!({
                "id": call.id,
                "type": "function",
                "function": {
                    "name": call.name,
                    "arguments": call.input.map_or("{}", RawValue::get),
                },
            }));
        }
    }
    let mut message = Map::new();
    message.insert("role".into(), json!("assistant"));
    message.insert(
        "content".into(),
        if text.is_empty() && !calls.is_empty() {
            Json::Null
        } else {
            Json::String(text)
        },
    );
    if !reasoning.is_empty() {
        message.insert("reasoning_content".into(), Json::String(reasoning));
    }
    if !calls.is_empty() {
        message.insert("tool_calls".into(), Json::Array(calls));
    }
    let finish = finish_reason(r.stop_reason.as_deref().unwrap_or("end_turn"));
    Ok(json!({
        "id": format!("chatcmpl-{}", crate::providers::random_uuid()),
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": r.usage.openai(),
    }))
}

#[derive(Deserialize)]
struct EmbedReply {
    /// Titan's one vector.
    #[serde(default)]
    embedding: Option<Vec<f64>>,
    #[serde(default, rename = "inputTextTokenCount")]
    input_tokens: Option<u64>,
    /// Cohere's vectors, one per text (`embeddings_by_type` replies give `float`).
    #[serde(default)]
    embeddings: Option<Json>,
}

/// The OpenAI embeddings list for an InvokeModel reply (Titan's `embedding` or Cohere's
/// `embeddings`); tokens the reply does not count are counted from the request's `fields`.
pub fn embeddings(
    body: &[u8],
    model: &str,
    fields: &Map<String, Json>,
) -> serde_json::Result<Json> {
    let r: EmbedReply = serde_json::from_slice(body)?;
    let vectors: Vec<Json> = match (r.embedding, r.embeddings) {
        (Some(one), _) => vec![Json::from(one)],
        (None, Some(Json::Array(list))) => list,
        (None, Some(Json::Object(by_type))) => by_type
            .get("float")
            .and_then(Json::as_array)
            .cloned()
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    let tokens = r.input_tokens.unwrap_or_else(|| match fields.get("input") {
        Some(Json::String(s)) => crate::tokens::count(s),
        Some(Json::Array(items)) => items
            .iter()
            .filter_map(Json::as_str)
            .map(crate::tokens::count)
            .sum(),
        _ => 0,
    });
    let data: Vec<Json> = vectors
        .into_iter()
        .enumerate()
        .map(|(i, v)| json!({"object": "embedding", "index": i, "embedding": v}))
        .collect();
    Ok(json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Json {
        let path = format!(
            "{}/tests/fixtures/bedrock/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn a_tool_use_reply_becomes_the_recorded_openai_completion() {
        let case = fixture("reply_tool_use.json");
        let body = serde_json::to_vec(&case["bedrock"]).unwrap();
        let mut got = chat_completion(&body, "anthropic.claude-3-haiku", 1_700_000_000).unwrap();
        assert!(got["id"].as_str().unwrap().starts_with("chatcmpl-"));
        got["id"] = json!("chatcmpl-x");
        assert_eq!(got, case["openai"]);
    }

    #[test]
    fn stop_reasons_map_to_openai_finish_reasons() {
        for (stop, finish) in [
            ("end_turn", "stop"),
            ("stop_sequence", "stop"),
            ("max_tokens", "length"),
            ("tool_use", "tool_calls"),
            ("guardrail_intervened", "content_filter"),
            ("content_filtered", "content_filter"),
        ] {
            assert_eq!(finish_reason(stop), finish);
        }
    }

    #[test]
    fn titan_and_cohere_embeddings_become_openai_lists() {
        let titan = chat_free(br#"{"embedding":[0.5,-0.25],"inputTextTokenCount":3}"#);
        assert_eq!(titan["data"][0]["embedding"], json!([0.5, -0.25]));
        assert_eq!(titan["usage"]["prompt_tokens"], 3);
        let cohere = chat_free(br#"{"id":"x","embeddings":[[1.0],[2.0]],"texts":["a","b"]}"#);
        assert_eq!(cohere["data"][1]["index"], 1);
        assert_eq!(cohere["data"][1]["embedding"], json!([2.0]));
    }

    fn chat_free(body: &[u8]) -> Json {
        let fields: Map<String, Json> =
            serde_json::from_value(json!({"input": ["a", "b"]})).unwrap();
        embeddings(body, "m", &fields).unwrap()
    }
}
