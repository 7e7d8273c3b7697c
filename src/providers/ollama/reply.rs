//! An Ollama reply as OpenAI's: `/api/chat` and `/api/generate` replies as a `chat.completion`
//! (text, thinking, tool calls, finish reason, usage), `/api/embed` replies as an embedding
//! list. Read and written with borrowed, typed views: no JSON tree is built.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value as Json;

use super::tool_call_id;
use crate::providers::Usage;

/// Ollama's `done_reason` as OpenAI's `finish_reason` (a reply that called tools says so).
pub fn finish_reason(done_reason: Option<&str>, called_tools: bool) -> &'static str {
    match done_reason {
        _ if called_tools => "tool_calls",
        Some("length") => "length",
        _ => "stop",
    }
}

/// Any Ollama reply or stream line: which fields are set depends on the endpoint.
#[derive(Deserialize)]
pub(super) struct Wire<'a> {
    /// The model that answered.
    #[serde(borrow, default)]
    pub model: Cow<'a, str>,
    /// `/api/chat`'s message.
    #[serde(borrow, default)]
    pub message: Option<WireMessage<'a>>,
    /// `/api/generate`'s text.
    #[serde(borrow, default)]
    pub response: Option<Cow<'a, str>>,
    /// `/api/generate`'s thinking.
    #[serde(borrow, default)]
    pub thinking: Option<Cow<'a, str>>,
    /// `/api/embed`'s vectors, passed on as written.
    #[serde(borrow, default)]
    pub embeddings: Option<Vec<&'a RawValue>>,
    /// The last line of a stream (always set on a whole reply).
    #[serde(default)]
    pub done: bool,
    /// Why generation stopped: `stop`, `length`, `load` ...
    #[serde(borrow, default)]
    pub done_reason: Option<Cow<'a, str>>,
    /// Prompt tokens (left out when the whole prompt was cached).
    #[serde(default)]
    pub prompt_eval_count: Option<u64>,
    /// Generated tokens.
    #[serde(default)]
    pub eval_count: Option<u64>,
    /// A stream's failure: usually a string.
    #[serde(default)]
    pub error: Option<Json>,
}

/// `/api/chat`'s assistant message (or a stream line's piece of it).
#[derive(Deserialize)]
pub(super) struct WireMessage<'a> {
    /// Text.
    #[serde(borrow, default)]
    pub content: Cow<'a, str>,
    /// A thinking model's reasoning.
    #[serde(borrow, default)]
    pub thinking: Option<Cow<'a, str>>,
    /// Tools the model called, each whole.
    #[serde(borrow, default)]
    pub tool_calls: Vec<WireToolCall<'a>>,
}

/// One tool call.
#[derive(Deserialize)]
pub(super) struct WireToolCall<'a> {
    /// Newer Ollama versions name their calls; older ones do not.
    #[serde(borrow, default)]
    pub id: Option<Cow<'a, str>>,
    /// The function called.
    #[serde(borrow)]
    pub function: WireFunction<'a>,
}

/// A called function: its name and arguments (a JSON object).
#[derive(Deserialize)]
pub(super) struct WireFunction<'a> {
    /// The tool's name.
    #[serde(borrow, default)]
    pub name: Cow<'a, str>,
    /// The arguments as written.
    #[serde(borrow, default)]
    pub arguments: Option<&'a RawValue>,
}

impl WireFunction<'_> {
    /// The arguments as OpenAI's JSON string (Ollama sends an object).
    pub fn arguments_text(&self) -> Cow<'_, str> {
        match self.arguments.map(RawValue::get) {
            None => Cow::Borrowed("{}"),
            Some(raw) if raw.starts_with('"') => {
                serde_json::from_str::<String>(raw).map_or(Cow::Borrowed(raw), Cow::Owned)
            }
            Some(raw) => Cow::Borrowed(raw),
        }
    }
}

impl Wire<'_> {
    /// The reply's token counts as OpenAI's usage.
    pub fn usage(&self) -> Usage {
        Usage::new(
            self.prompt_eval_count.unwrap_or(0),
            self.eval_count.unwrap_or(0),
        )
    }
}

#[derive(Serialize)]
struct Completion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [Choice<'a>; 1],
    usage: Usage,
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
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<ToolCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<&'a str>,
}

#[derive(Serialize)]
struct ToolCall<'a> {
    id: Cow<'a, str>,
    #[serde(rename = "type")]
    kind: &'static str,
    function: Function<'a>,
}

#[derive(Serialize)]
struct Function<'a> {
    name: &'a str,
    arguments: Cow<'a, str>,
}

#[derive(Serialize)]
struct EmbeddingList<'a> {
    object: &'static str,
    data: Vec<Embedding<'a>>,
    model: &'a str,
    usage: EmbeddingUsage,
}

#[derive(Serialize)]
struct Embedding<'a> {
    object: &'static str,
    index: usize,
    embedding: &'a RawValue,
}

#[derive(Serialize)]
struct EmbeddingUsage {
    prompt_tokens: u64,
    total_tokens: u64,
}

/// The OpenAI reply bytes for an Ollama reply's bytes: an embedding list for `/api/embed`, else
/// a chat completion named `id` and stamped `created`.
pub fn openai(body: &[u8], id: &str, created: u64) -> serde_json::Result<Vec<u8>> {
    let wire: Wire<'_> = serde_json::from_slice(body)?;
    if let Some(vectors) = &wire.embeddings {
        let prompt_tokens = wire.prompt_eval_count.unwrap_or(0);
        return serde_json::to_vec(&EmbeddingList {
            object: "list",
            data: vectors
                .iter()
                .enumerate()
                .map(|(index, embedding)| Embedding {
                    object: "embedding",
                    index,
                    embedding,
                })
                .collect(),
            model: &wire.model,
            usage: EmbeddingUsage {
                prompt_tokens,
                total_tokens: prompt_tokens,
            },
        });
    }
    let (text, thinking, calls) = match &wire.message {
        Some(m) => (m.content.as_ref(), m.thinking.as_deref(), &m.tool_calls[..]),
        None => (
            wire.response.as_deref().unwrap_or_default(),
            wire.thinking.as_deref(),
            &[][..],
        ),
    };
    let tool_calls: Vec<ToolCall<'_>> = calls
        .iter()
        .enumerate()
        .map(|(n, call)| ToolCall {
            id: call
                .id
                .as_deref()
                .map_or_else(|| Cow::Owned(tool_call_id(id, n)), Cow::Borrowed),
            kind: "function",
            function: Function {
                name: &call.function.name,
                arguments: call.function.arguments_text(),
            },
        })
        .collect();
    let content = (!text.is_empty() || tool_calls.is_empty()).then_some(text);
    let finish = finish_reason(wire.done_reason.as_deref(), !tool_calls.is_empty());
    serde_json::to_vec(&Completion {
        id,
        object: "chat.completion",
        created,
        model: &wire.model,
        choices: [Choice {
            index: 0,
            message: Reply {
                role: "assistant",
                content,
                tool_calls,
                reasoning_content: thinking.filter(|t| !t.is_empty()),
            },
            finish_reason: finish,
        }],
        usage: wire.usage(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Json {
        let path = format!(
            "{}/tests/fixtures/ollama/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn translate(wire: &Json) -> Json {
        let bytes = openai(wire.to_string().as_bytes(), "chatcmpl-0123", 1_700_000_000).unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn a_chat_reply_with_a_tool_call_translates_as_recorded() {
        let case = fixture("reply_chat_tool_call.json");
        assert_eq!(translate(&case["ollama"]), case["openai"]);
    }

    #[test]
    fn a_generate_reply_cut_at_the_length_limit_translates_as_recorded() {
        let case = fixture("reply_generate.json");
        assert_eq!(translate(&case["ollama"]), case["openai"]);
    }

    #[test]
    fn an_embed_reply_becomes_an_embedding_list() {
        let case = fixture("reply_embed.json");
        assert_eq!(translate(&case["ollama"]), case["openai"]);
    }

    #[test]
    fn thinking_becomes_reasoning_content_and_upstream_call_ids_are_kept() {
        let got = translate(&serde_json::json!({
            "model": "qwen3",
            "message": {"role": "assistant", "content": "Hi", "thinking": "Greet back.",
                        "tool_calls": [{"id": "call_x", "function": {"name": "f", "arguments": "{\"a\":1}"}}]},
            "done": true,
        }));
        let message = &got["choices"][0]["message"];
        assert_eq!(message["content"], "Hi");
        assert_eq!(message["reasoning_content"], "Greet back.");
        assert_eq!(message["tool_calls"][0]["id"], "call_x");
        assert_eq!(
            message["tool_calls"][0]["function"]["arguments"],
            "{\"a\":1}"
        );
        assert_eq!(got["usage"]["total_tokens"], 0);
    }

    #[test]
    fn done_reasons_map_to_finish_reasons() {
        assert_eq!(finish_reason(Some("stop"), false), "stop");
        assert_eq!(finish_reason(Some("length"), false), "length");
        assert_eq!(finish_reason(Some("load"), false), "stop");
        assert_eq!(finish_reason(None, false), "stop");
        assert_eq!(finish_reason(Some("stop"), true), "tool_calls");
    }
}
