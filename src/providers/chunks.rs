//! The OpenAI chat chunks a stream translator writes for one upstream event, serialized as they
//! are made: the common deltas (role, text, reasoning, finish) straight from typed views, any
//! other chunk from a JSON value.

use bytes::Bytes;
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

/// A delta of role, text or reasoning (any may be absent).
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
    /// Adds a chunk given as JSON.
    pub fn push(&mut self, chunk: Json) {
        if let Ok(bytes) = serde_json::to_vec(&chunk) {
            self.0.push(Bytes::from(bytes));
        }
    }

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
}
