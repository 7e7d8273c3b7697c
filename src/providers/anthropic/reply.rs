//! An Anthropic message as an OpenAI `chat.completion`: text, tool calls, thinking, the stop
//! reason and usage (cache tokens included). Read and written with borrowed, typed views: no
//! JSON tree is built.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Anthropic's `stop_reason` as OpenAI's `finish_reason`.
pub fn finish_reason(stop_reason: &str) -> &'static str {
    match stop_reason {
        "max_tokens" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        _ => "stop",
    }
}

/// Anthropic's token counts; a stream's later events fill in what its first left out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct TokenCounts {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
}

/// OpenAI's `usage`, with the cache counts LiteLLM adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OpenAiUsage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    prompt_tokens_details: CachedTokens,
    cache_creation_input_tokens: u64,
    cache_read_input_tokens: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
struct CachedTokens {
    cached_tokens: u64,
}

impl TokenCounts {
    /// Takes every count `later` has.
    pub fn merge(&mut self, later: TokenCounts) {
        self.input_tokens = later.input_tokens.or(self.input_tokens);
        self.output_tokens = later.output_tokens.or(self.output_tokens);
        self.cache_creation_input_tokens = later
            .cache_creation_input_tokens
            .or(self.cache_creation_input_tokens);
        self.cache_read_input_tokens = later
            .cache_read_input_tokens
            .or(self.cache_read_input_tokens);
    }

    /// As OpenAI counts: prompt tokens include those written to and read from the cache.
    pub fn openai(&self) -> OpenAiUsage {
        let written = self.cache_creation_input_tokens.unwrap_or(0);
        let read = self.cache_read_input_tokens.unwrap_or(0);
        let prompt = self.input_tokens.unwrap_or(0) + written + read;
        let completion = self.output_tokens.unwrap_or(0);
        OpenAiUsage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt + completion,
            prompt_tokens_details: CachedTokens {
                cached_tokens: read,
            },
            cache_creation_input_tokens: written,
            cache_read_input_tokens: read,
        }
    }
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    id: Cow<'a, str>,
    #[serde(borrow, default)]
    model: Cow<'a, str>,
    #[serde(borrow, default)]
    content: Vec<Block<'a>>,
    #[serde(borrow, default)]
    stop_reason: Option<Cow<'a, str>>,
    #[serde(default)]
    usage: TokenCounts,
}

/// Any content block; which fields are set depends on its `type`.
#[derive(Deserialize)]
struct Block<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    thinking: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    signature: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    data: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    input: Option<&'a RawValue>,
}

#[derive(Serialize)]
struct Completion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [Choice<'a>; 1],
    usage: OpenAiUsage,
}

#[derive(Serialize)]
struct Choice<'a> {
    index: u32,
    message: Reply<'a>,
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct Reply<'a> {
    role: &'static str,
    content: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<ToolCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    thinking_blocks: Vec<ThinkingBlock<'a>>,
}

#[derive(Serialize)]
struct ToolCall<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: Function<'a>,
}

#[derive(Serialize)]
struct Function<'a> {
    name: &'a str,
    arguments: &'a str,
}

#[derive(Serialize)]
struct ThinkingBlock<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signature: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a str>,
}

/// Appends `piece` to `acc`, borrowing while there is only one piece.
fn append<'a>(acc: &mut Option<Cow<'a, str>>, piece: &'a str) {
    match acc {
        None => *acc = Some(Cow::Borrowed(piece)),
        Some(text) => text.to_mut().push_str(piece),
    }
}

/// The OpenAI chat completion bytes for an Anthropic message's bytes, stamped `created`.
pub fn chat_completion(body: &[u8], created: u64) -> serde_json::Result<Vec<u8>> {
    let message: Message<'_> = serde_json::from_slice(body)?;
    let mut text: Option<Cow<'_, str>> = None;
    let mut reasoning: Option<Cow<'_, str>> = None;
    let mut thinking_blocks = Vec::new();
    let mut tool_calls = Vec::new();
    for block in &message.content {
        match block.kind.as_ref() {
            "text" => append(&mut text, block.text.as_deref().unwrap_or_default()),
            "thinking" | "redacted_thinking" => {
                if let Some(t) = block.thinking.as_deref() {
                    append(&mut reasoning, t);
                }
                thinking_blocks.push(ThinkingBlock {
                    kind: &block.kind,
                    thinking: block.thinking.as_deref(),
                    signature: block.signature.as_deref(),
                    data: block.data.as_deref(),
                });
            }
            "tool_use" => tool_calls.push(ToolCall {
                id: block.id.as_deref().unwrap_or_default(),
                kind: "function",
                function: Function {
                    name: block.name.as_deref().unwrap_or_default(),
                    arguments: block.input.map_or("{}", RawValue::get),
                },
            }),
            _ => {}
        }
    }
    let content = match text {
        None if !tool_calls.is_empty() => None,
        other => Some(other.unwrap_or_default()),
    };
    let finish = finish_reason(message.stop_reason.as_deref().unwrap_or("end_turn"));
    serde_json::to_vec(&Completion {
        id: &message.id,
        object: "chat.completion",
        created,
        model: &message.model,
        choices: [Choice {
            index: 0,
            message: Reply {
                role: "assistant",
                content,
                tool_calls,
                reasoning_content: reasoning,
                thinking_blocks,
            },
            finish_reason: finish,
        }],
        usage: message.usage.openai(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value as Json;

    fn fixture(name: &str) -> String {
        let path = format!(
            "{}/tests/fixtures/anthropic/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn a_reply_with_thinking_and_a_tool_call_translates_as_recorded() {
        let case: Json = serde_json::from_str(&fixture("reply_tool_use.json")).unwrap();
        let wire = case["anthropic"].to_string();
        let got: Json =
            serde_json::from_slice(&chat_completion(wire.as_bytes(), 1_700_000_000).unwrap())
                .unwrap();
        assert_eq!(got, case["openai"]);
    }

    #[test]
    fn a_text_only_reply_has_no_tool_calls_and_an_empty_one_has_empty_content() {
        let wire = br#"{"id":"m","model":"c","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}],"stop_reason":"max_tokens","usage":{"input_tokens":3,"output_tokens":4}}"#;
        let got: Json = serde_json::from_slice(&chat_completion(wire, 0).unwrap()).unwrap();
        assert_eq!(
            got["choices"][0],
            serde_json::json!({"index": 0, "message": {"role": "assistant", "content": "ab"}, "finish_reason": "length"})
        );
        assert_eq!(got["usage"]["total_tokens"], 7);
        let empty = br#"{"id":"m","model":"c","content":[],"stop_reason":"end_turn","usage":{}}"#;
        let got: Json = serde_json::from_slice(&chat_completion(empty, 0).unwrap()).unwrap();
        assert_eq!(got["choices"][0]["message"]["content"], "");
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
