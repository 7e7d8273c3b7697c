//! The OpenAI chat chunks a stream translator writes for one upstream event, serialized as they
//! are made straight from typed views: role, text, reasoning and tool-call deltas, the finish
//! reason, and the closing usage chunk.

use bytes::Bytes;
use serde::ser::{SerializeStruct, Serializer};
use serde::Serialize;
use serde_json::Value as Json;

/// Who a stream's chunks say they are from.
#[derive(Debug, Clone, Copy)]
pub struct Head<'a> {
    /// The completion id.
    pub id: &'a str,
    /// The model.
    pub model: &'a str,
    /// Seconds since the epoch.
    pub created: u64,
}

/// A delta of role, text, reasoning or tool calls (any may be absent).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Delta<'a> {
    /// `assistant` on a stream's first chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    /// Generated text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<&'a str>,
    /// Reasoning (thinking) text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<&'a str>,
    /// Tool-call deltas.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<&'a [ToolCallDelta<'a>]>,
}

/// One tool call's delta: on the call's first, its `id`, `type` and function `name`; on the
/// argument pieces that follow, only `index` and `function.arguments`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ToolCallDelta<'a> {
    /// The call's position among the reply's tool calls.
    pub index: usize,
    /// The call's id, on its first delta only (with it, `"type": "function"`).
    pub id: Option<&'a str>,
    /// The function's name, on the call's first delta only.
    pub name: Option<&'a str>,
    /// The next piece of the arguments' JSON text (all of it, for an upstream that sends whole
    /// calls).
    pub arguments: &'a str,
}

impl Serialize for ToolCallDelta<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Function<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            name: Option<&'a str>,
            arguments: &'a str,
        }
        let fields = if self.id.is_some() { 4 } else { 2 };
        let mut call = serializer.serialize_struct("ToolCallDelta", fields)?;
        call.serialize_field("index", &self.index)?;
        if let Some(id) = self.id {
            call.serialize_field("id", id)?;
            call.serialize_field("type", "function")?;
        }
        call.serialize_field(
            "function",
            &Function {
                name: self.name,
                arguments: self.arguments,
            },
        )?;
        call.end()
    }
}

#[derive(Serialize)]
struct Chunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [Choice<'a>; 1],
}

#[derive(Serialize)]
struct Choice<'a> {
    index: u32,
    delta: Delta<'a>,
    finish_reason: Option<&'a str>,
}

#[derive(Serialize)]
struct UsageChunk<'a, U: Serialize> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [(); 0],
    usage: U,
}

/// The serialized chunks of one event.
#[derive(Debug, Default)]
pub struct Chunks(Vec<Bytes>);

impl Chunks {
    /// Adds a delta chunk (with `finish`, the stream's finish reason).
    pub fn delta(&mut self, head: Head<'_>, delta: Delta<'_>, finish: Option<&str>) {
        let chunk = Chunk {
            id: head.id,
            object: "chat.completion.chunk",
            created: head.created,
            model: head.model,
            choices: [Choice {
                index: 0,
                delta,
                finish_reason: finish,
            }],
        };
        if let Ok(bytes) = serde_json::to_vec(&chunk) {
            self.0.push(Bytes::from(bytes));
        }
    }

    /// Adds a stream's first chunk: `{"role": "assistant", "content": ""}`.
    pub fn role(&mut self, head: Head<'_>) {
        let delta = Delta {
            role: Some("assistant"),
            content: Some(""),
            ..Delta::default()
        };
        self.delta(head, delta, None);
    }

    /// Adds a text delta.
    pub fn content(&mut self, head: Head<'_>, text: &str) {
        let delta = Delta {
            content: Some(text),
            ..Delta::default()
        };
        self.delta(head, delta, None);
    }

    /// Adds a reasoning delta.
    pub fn reasoning(&mut self, head: Head<'_>, text: &str) {
        let delta = Delta {
            reasoning_content: Some(text),
            ..Delta::default()
        };
        self.delta(head, delta, None);
    }

    /// Adds a delta of one tool call.
    pub fn tool_call(&mut self, head: Head<'_>, call: ToolCallDelta<'_>) {
        let delta = Delta {
            tool_calls: Some(std::slice::from_ref(&call)),
            ..Delta::default()
        };
        self.delta(head, delta, None);
    }

    /// Adds the chunk closing the choice: an empty delta with the finish reason.
    pub fn finish(&mut self, head: Head<'_>, reason: &str) {
        self.delta(head, Delta::default(), Some(reason));
    }

    /// Adds a stream's closing usage chunk (`choices: []`).
    pub fn usage(&mut self, head: Head<'_>, usage: impl Serialize) {
        let chunk = UsageChunk {
            id: head.id,
            object: "chat.completion.chunk",
            created: head.created,
            model: head.model,
            choices: [],
            usage,
        };
        if let Ok(bytes) = serde_json::to_vec(&chunk) {
            self.0.push(Bytes::from(bytes));
        }
    }

    /// The chunks written so far.
    pub fn as_slice(&self) -> &[Bytes] {
        &self.0
    }

    /// Forgets the chunks (the buffer is kept).
    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// The chunks as JSON values (for tests and checks).
    pub fn json(&self) -> Vec<Json> {
        self.0
            .iter()
            .filter_map(|b| serde_json::from_slice(b).ok())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typed_delta_is_the_chunk_openai_sends() {
        let mut out = Chunks::default();
        let head = Head {
            id: "c1",
            model: "m",
            created: 7,
        };
        out.delta(
            head,
            Delta {
                content: Some("hi \"there\""),
                ..Delta::default()
            },
            None,
        );
        out.delta(head, Delta::default(), Some("stop"));
        out.usage(head, serde_json::json!({"total_tokens": 3}));
        assert_eq!(
            out.json(),
            vec![
                serde_json::json!({"id": "c1", "object": "chat.completion.chunk", "created": 7, "model": "m",
                    "choices": [{"index": 0, "delta": {"content": "hi \"there\""}, "finish_reason": null}]}),
                serde_json::json!({"id": "c1", "object": "chat.completion.chunk", "created": 7, "model": "m",
                    "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
                serde_json::json!({"id": "c1", "object": "chat.completion.chunk", "created": 7, "model": "m",
                    "choices": [], "usage": {"total_tokens": 3}}),
            ]
        );
    }

    #[test]
    fn a_tool_call_delta_names_the_call_on_its_first_piece_only() {
        let mut out = Chunks::default();
        let head = Head {
            id: "c1",
            model: "m",
            created: 7,
        };
        out.role(head);
        out.tool_call(
            head,
            ToolCallDelta {
                index: 1,
                id: Some("call_1"),
                name: Some("get_weather"),
                arguments: "",
            },
        );
        out.tool_call(
            head,
            ToolCallDelta {
                index: 1,
                arguments: "{\"city\": \"Paris\"}",
                ..ToolCallDelta::default()
            },
        );
        out.reasoning(head, "hmm");
        out.content(head, "ok");
        out.finish(head, "tool_calls");
        let deltas: Vec<Json> = out
            .json()
            .iter()
            .map(|c| c["choices"][0]["delta"].clone())
            .collect();
        assert_eq!(
            deltas,
            vec![
                serde_json::json!({"role": "assistant", "content": ""}),
                serde_json::json!({"tool_calls": [{"index": 1, "id": "call_1", "type": "function",
                    "function": {"name": "get_weather", "arguments": ""}}]}),
                serde_json::json!({"tool_calls": [{"index": 1,
                    "function": {"arguments": "{\"city\": \"Paris\"}"}}]}),
                serde_json::json!({"reasoning_content": "hmm"}),
                serde_json::json!({"content": "ok"}),
                serde_json::json!({}),
            ]
        );
        assert_eq!(out.json()[5]["choices"][0]["finish_reason"], "tool_calls");
    }
}
