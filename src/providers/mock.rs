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
        Operation::Chat => json!({
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
    }
}

/// Splits `content` into word-sized pieces, each keeping its leading space.
fn pieces(content: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in content.char_indices() {
        if c == ' ' && i > start {
            out.push(&content[start..i]);
            start = i;
        }
    }
    if start < content.len() {
        out.push(&content[start..]);
    }
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
    let created = now_secs();
    let chat = op != Operation::Completion;
    let id = call_id(if chat { "chatcmpl" } else { "cmpl" });
    let chunk = |choice: Json| {
        let object = if chat {
            "chat.completion.chunk"
        } else {
            "text_completion"
        };
        json!({"id": id, "object": object, "created": created, "model": model, "choices": [choice]})
    };
    let mut events = Vec::new();
    if chat {
        events.push(chunk(json!({"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null})));
    }
    for piece in pieces(content) {
        events.push(if chat {
            chunk(json!({"index": 0, "delta": {"content": piece}, "finish_reason": null}))
        } else {
            chunk(json!({"index": 0, "text": piece, "logprobs": null, "finish_reason": null}))
        });
    }
    events.push(if chat {
        chunk(json!({"index": 0, "delta": {}, "finish_reason": "stop"}))
    } else {
        chunk(json!({"index": 0, "text": "", "logprobs": null, "finish_reason": "stop"}))
    });
    if let Some(cost) = usage_cost {
        let mut last = chunk(Json::Null);
        last["choices"] = json!([]);
        last["usage"] = json!(MOCK_USAGE);
        last["usage"]["cost"] = json!(cost);
        events.push(last);
    }
    let mut out: Vec<Bytes> = events
        .iter()
        .map(|e| Bytes::from(format!("data: {e}\n\n")))
        .collect();
    out.push(Bytes::from_static(b"data: [DONE]\n\n"));
    out
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
