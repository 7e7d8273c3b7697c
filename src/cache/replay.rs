//! A cached reply sent to a streaming request: its choices replayed as well-formed SSE chunks
//! (through the same writer as `mock_response` streams), ending with `[DONE]`.

use std::borrow::Cow;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value as Json};

use super::entry::Entry;
use crate::providers::mock::{reply_events, StreamedChoice, StreamedReply};
use crate::providers::Operation;

/// Text is replayed in pieces of about this many bytes (cut at spaces).
const PIECE_LEN: usize = 64;

#[derive(Deserialize)]
struct ReplyView<'a> {
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(default)]
    created: Option<u64>,
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(borrow)]
    choices: Vec<ChoiceView<'a>>,
    #[serde(default)]
    usage: Option<Json>,
}

#[derive(Deserialize)]
struct ChoiceView<'a> {
    #[serde(default)]
    index: Option<u64>,
    #[serde(borrow, default)]
    message: Option<MessageView<'a>>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct MessageView<'a> {
    #[serde(borrow, default)]
    content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(default)]
    tool_calls: Option<Json>,
    #[serde(default)]
    function_call: Option<Json>,
}

/// The SSE events replaying `entry` for a chat or completion stream, with the usage chunk
/// (cost 0: a hit costs nothing) when `with_usage`; `None` when the entry is not a reply
/// of that kind (an embedding, say), which is then treated as a miss.
pub fn sse_events(op: Operation, entry: &Entry, with_usage: bool) -> Option<Vec<Bytes>> {
    if op == Operation::Embedding {
        return None;
    }
    let view: ReplyView<'_> = serde_json::from_slice(&entry.body).ok()?;
    if view.choices.is_empty() {
        return None;
    }
    let choices: Vec<StreamedChoice<'_>> = view
        .choices
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let message = c.message.as_ref();
            StreamedChoice {
                index: c.index.unwrap_or(i as u64),
                content: message
                    .and_then(|m| m.content.as_deref())
                    .or(c.text.as_deref()),
                reasoning: message.and_then(|m| m.reasoning_content.as_deref()),
                tool_calls: message.and_then(|m| m.tool_calls.as_ref()),
                function_call: message
                    .and_then(|m| m.function_call.as_ref())
                    .filter(|f| !f.is_null()),
                finish_reason: c.finish_reason.as_deref().unwrap_or("stop"),
            }
        })
        .collect();
    let usage = with_usage.then(|| {
        let mut u = view
            .usage
            .clone()
            .filter(Json::is_object)
            .unwrap_or_else(|| json!(entry.usage));
        u["cost"] = json!(0.0);
        u
    });
    Some(reply_events(
        op,
        &StreamedReply {
            id: view.id.as_deref().unwrap_or("chatcmpl-cache"),
            created: view.created.unwrap_or(0),
            model: view.model.as_deref().unwrap_or(""),
            choices: &choices,
            usage: usage.as_ref(),
            piece_len: PIECE_LEN,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::Usage;

    fn events(op: Operation, body: Json, with_usage: bool) -> Vec<Json> {
        let entry = Entry::new(Bytes::from(body.to_string()), Usage::new(1, 2));
        let out = sse_events(op, &entry, with_usage).unwrap();
        assert_eq!(out.last().unwrap().as_ref(), b"data: [DONE]\n\n");
        out[..out.len() - 1]
            .iter()
            .map(|e| {
                let text = std::str::from_utf8(e).unwrap();
                let data = text
                    .strip_prefix("data: ")
                    .unwrap()
                    .strip_suffix("\n\n")
                    .unwrap();
                serde_json::from_str(data).unwrap()
            })
            .collect()
    }

    #[test]
    fn a_cached_chat_reply_replays_as_chunks_with_tool_calls_and_usage() {
        let body = json!({"id": "c1", "object": "chat.completion", "created": 3, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Sure.",
                "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}});
        let chunks = events(Operation::Chat, body, true);
        assert!(chunks[..chunks.len() - 1]
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk" && c["id"] == "c1"));
        assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(chunks[1]["choices"][0]["delta"]["content"], "Sure.");
        let call = &chunks[2]["choices"][0]["delta"]["tool_calls"][0];
        assert_eq!(call["index"], 0);
        assert_eq!(call["function"]["name"], "f");
        assert_eq!(chunks[3]["choices"][0]["finish_reason"], "tool_calls");
        let usage = chunks.last().unwrap();
        assert_eq!(usage["choices"], json!([]));
        assert_eq!(usage["usage"]["total_tokens"], 6);
        assert_eq!(usage["usage"]["cost"], 0.0);
    }

    #[test]
    fn a_cached_completion_replays_as_text_chunks_without_usage_unless_asked() {
        let body = json!({"id": "t", "object": "text_completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "text": "hello there", "logprobs": null, "finish_reason": "length"}]});
        let chunks = events(Operation::Completion, body, false);
        let text: String = chunks
            .iter()
            .map(|c| c["choices"][0]["text"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(text, "hello there");
        assert_eq!(
            chunks.last().unwrap()["choices"][0]["finish_reason"],
            "length"
        );
        assert!(chunks.iter().all(|c| c.get("usage").is_none()));
    }

    #[test]
    fn an_embedding_is_not_replayed_as_a_stream() {
        let entry = Entry::new(Bytes::from_static(b"{\"data\":[]}"), Usage::default());
        assert!(sse_events(Operation::Embedding, &entry, false).is_none());
        assert!(sse_events(Operation::Chat, &entry, false).is_none());
    }
}
