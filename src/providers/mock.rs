//! `mock_response`: canned replies and LiteLLM error names, answered without any upstream.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde_json::{json, Value as Json};

use super::{ErrorKind, Operation, ProviderError, Usage};

/// The usage LiteLLM reports for mock replies.
pub const MOCK_USAGE: Usage = Usage {
    prompt_tokens: 10,
    completion_tokens: 20,
    total_tokens: 30,
};

/// What a `mock_response` value asks for.
pub enum Mock<'a> {
    /// Reply with this content.
    Reply(&'a str),
    /// Fail the attempt with this error.
    Fail(ProviderError),
}

fn error(status: u16, kind: ErrorKind, name: &str, text: &str) -> ProviderError {
    ProviderError {
        status,
        kind,
        message: format!("litellm.{name}: {text}"),
        upstream_type: None,
        param: None,
        retry_after: None,
    }
}

/// Reads a `mock_response` value: a LiteLLM error name fails, anything else is content.
pub fn interpret(value: &str) -> Mock<'_> {
    let name = value.strip_prefix("litellm.").unwrap_or("");
    let failure = match name {
        "RateLimitError" => error(429, ErrorKind::Status, name, "This is a mock rate limit error"),
        "Timeout" => error(408, ErrorKind::Timeout, name, "This is a mock timeout error"),
        "InternalServerError" => error(500, ErrorKind::Status, name, "This is a mock internal server error"),
        "ServiceUnavailableError" => error(503, ErrorKind::Status, name, "This is a mock service unavailable error"),
        "BadRequestError" => error(400, ErrorKind::Status, name, "This is a mock bad request error"),
        "AuthenticationError" => error(401, ErrorKind::Status, name, "This is a mock authentication error"),
        "NotFoundError" => error(404, ErrorKind::Status, name, "This is a mock not found error"),
        "APIConnectionError" => error(502, ErrorKind::Connection, name, "This is a mock connection error"),
        "ContextWindowExceededError" => error(
            400,
            ErrorKind::ContextWindow,
            name,
            "This is a mock context window exceeded error: the prompt is longer than the model's context window",
        ),
        "ContentPolicyViolationError" => error(
            400,
            ErrorKind::ContentPolicy,
            name,
            "This is a mock content policy violation error",
        ),
        _ => return Mock::Reply(value),
    };
    Mock::Fail(failure)
}

/// A mock `timeout` error for `mock_timeout`.
pub fn timeout_error(after: std::time::Duration) -> ProviderError {
    error(
        408,
        ErrorKind::Timeout,
        "Timeout",
        &format!(
            "This is a mock timeout error: no reply within {} seconds",
            after.as_secs_f64()
        ),
    )
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn call_id(prefix: &str) -> String {
    format!("{prefix}-{}", crate::providers::random_uuid().simple())
}

/// A full (non-streamed) mock reply for `op`.
pub fn reply(op: Operation, model: &str, content: &str) -> Json {
    let created = now_secs();
    match op {
        // A Responses request is mocked as chat, then translated like any chat reply.
        Operation::Chat | Operation::Responses => json!({
            "id": call_id("chatcmpl"),
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": MOCK_USAGE,
        }),
        Operation::Completion => json!({
            "id": call_id("cmpl"),
            "object": "text_completion",
            "created": created,
            "model": model,
            "choices": [{"text": content, "index": 0, "logprobs": null, "finish_reason": "stop"}],
            "usage": MOCK_USAGE,
        }),
        Operation::Embedding => json!({
            "object": "list",
            "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2, 0.3]}],
            "model": model,
            "usage": {"prompt_tokens": MOCK_USAGE.prompt_tokens, "total_tokens": MOCK_USAGE.prompt_tokens},
        }),
        media => super::media::mock::reply(media, model, content, &serde_json::Map::new()),
    }
}

/// Splits `content` into pieces of at least `min_len` bytes, each cut before a space (so each
/// keeps its leading space); `min_len` 1 gives one piece per word.
fn pieces(content: &str, min_len: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in content.char_indices() {
        if c == ' ' && i > start && i - start >= min_len {
            out.push(&content[start..i]);
            start = i;
        }
    }
    if start < content.len() {
        out.push(&content[start..]);
    }
    out
}

/// One choice of a whole reply sent as a stream.
#[derive(Debug, Clone, Copy, Default)]
pub struct StreamedChoice<'a> {
    /// The choice's index.
    pub index: u64,
    /// Its text (the message's content, or a completion's text).
    pub content: Option<&'a str>,
    /// Its reasoning text.
    pub reasoning: Option<&'a str>,
    /// The message's `tool_calls` (a list).
    pub tool_calls: Option<&'a Json>,
    /// The message's legacy `function_call`.
    pub function_call: Option<&'a Json>,
    /// Why it ended.
    pub finish_reason: &'a str,
}

/// A whole reply to send as SSE chunks.
#[derive(Debug, Clone, Copy)]
pub struct StreamedReply<'a> {
    /// The completion id.
    pub id: &'a str,
    /// Seconds since the epoch.
    pub created: u64,
    /// The model.
    pub model: &'a str,
    /// Its choices.
    pub choices: &'a [StreamedChoice<'a>],
    /// The usage chunk's `usage`, when the client gets one.
    pub usage: Option<&'a Json>,
    /// Text is sent in pieces of at least this many bytes, cut at spaces.
    pub piece_len: usize,
}

/// A whole reply as SSE events: per choice a role chunk (chat), its text in pieces, its tool
/// calls, a finish chunk; then the usage chunk when given, then `[DONE]`.
pub fn reply_events(op: Operation, reply: &StreamedReply<'_>) -> Vec<Bytes> {
    let chat = op != Operation::Completion;
    let object = if chat {
        "chat.completion.chunk"
    } else {
        "text_completion"
    };
    let chunk = |choices: Json| json!({"id": reply.id, "object": object, "created": reply.created, "model": reply.model, "choices": choices});
    let delta = |index: u64, delta: Json, finish: Option<&str>| {
        chunk(json!([{"index": index, "delta": delta, "finish_reason": finish}]))
    };
    let text = |index: u64, text: &str, finish: Option<&str>| {
        chunk(json!([{"index": index, "text": text, "logprobs": null, "finish_reason": finish}]))
    };
    let mut events = Vec::new();
    for c in reply.choices {
        let content = c.content.unwrap_or("");
        if !chat {
            for piece in pieces(content, reply.piece_len) {
                events.push(text(c.index, piece, None));
            }
            events.push(text(c.index, "", Some(c.finish_reason)));
            continue;
        }
        events.push(delta(
            c.index,
            json!({"role": "assistant", "content": ""}),
            None,
        ));
        if let Some(r) = c.reasoning.filter(|r| !r.is_empty()) {
            events.push(delta(c.index, json!({"reasoning_content": r}), None));
        }
        for piece in pieces(content, reply.piece_len) {
            events.push(delta(c.index, json!({"content": piece}), None));
        }
        for (i, call) in c
            .tool_calls
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let mut call = call.clone();
            if let Json::Object(m) = &mut call {
                m.insert("index".into(), json!(i));
            }
            events.push(delta(c.index, json!({"tool_calls": [call]}), None));
        }
        if let Some(f) = c.function_call {
            events.push(delta(c.index, json!({"function_call": f}), None));
        }
        events.push(delta(c.index, json!({}), Some(c.finish_reason)));
    }
    if let Some(usage) = reply.usage {
        let mut last = chunk(json!([]));
        last["usage"] = usage.clone();
        events.push(last);
    }
    let mut out: Vec<Bytes> = events
        .iter()
        .map(|e| Bytes::from(format!("data: {e}\n\n")))
        .collect();
    out.push(Bytes::from_static(b"data: [DONE]\n\n"));
    out
}

/// A mock reply as SSE events: a role chunk, one chunk per word, a finish chunk, the usage
/// chunk when asked for, then `[DONE]`.
pub fn stream_events(
    op: Operation,
    model: &str,
    content: &str,
    usage_cost: Option<f64>,
) -> Vec<Bytes> {
    let chat = op != Operation::Completion;
    let id = call_id(if chat { "chatcmpl" } else { "cmpl" });
    let usage = usage_cost.map(|cost| {
        let mut u = json!(MOCK_USAGE);
        u["cost"] = json!(cost);
        u
    });
    let choice = StreamedChoice {
        content: Some(content),
        finish_reason: "stop",
        ..StreamedChoice::default()
    };
    reply_events(
        op,
        &StreamedReply {
            id: &id,
            created: now_secs(),
            model,
            choices: &[choice],
            usage: usage.as_ref(),
            piece_len: 1,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_names_fail_and_other_text_replies() {
        assert!(matches!(interpret("litellm.RateLimitError"), Mock::Fail(e) if e.status == 429));
        assert!(matches!(interpret("litellm.Timeout"), Mock::Fail(e) if e.status == 408));
        assert!(
            matches!(interpret("litellm.ContextWindowExceededError"), Mock::Fail(e) if e.kind == ErrorKind::ContextWindow)
        );
        assert!(matches!(
            interpret("hello there"),
            Mock::Reply("hello there")
        ));
    }

    #[test]
    fn streamed_mock_has_several_chunks_usage_and_done() {
        let events = stream_events(Operation::Chat, "m", "one two three", Some(0.5));
        assert_eq!(events.len(), 1 + 3 + 1 + 1 + 1);
        assert!(std::str::from_utf8(&events[5])
            .unwrap()
            .contains("\"usage\""));
        assert_eq!(&events[6][..], b"data: [DONE]\n\n");
        let text: String = events[1..4]
            .iter()
            .map(|e| {
                let v: Json = serde_json::from_slice(&e[6..]).unwrap();
                v["choices"][0]["delta"]["content"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(text, "one two three");
    }
}
