//! A Gemini `GenerateContentResponse` as an OpenAI `chat.completion` (and the typed views the
//! stream translator shares): text, thoughts, function calls, finish reasons and usage.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{json, Value as Json};

/// One response, or one streamed chunk of it.
#[derive(Deserialize)]
pub struct Response<'a> {
    #[serde(borrow, default)]
    pub(super) candidates: Vec<Candidate<'a>>,
    #[serde(default, rename = "usageMetadata")]
    pub(super) usage: Option<UsageMetadata>,
    #[serde(borrow, default, rename = "modelVersion")]
    pub(super) model_version: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "responseId")]
    pub(super) response_id: Option<Cow<'a, str>>,
    #[serde(default, rename = "promptFeedback")]
    pub(super) prompt_feedback: Option<Json>,
    /// An error sent in place of a chunk.
    #[serde(default)]
    pub(super) error: Option<Json>,
}

#[derive(Deserialize)]
pub(super) struct Candidate<'a> {
    #[serde(borrow, default)]
    pub(super) content: Option<Content<'a>>,
    #[serde(borrow, default, rename = "finishReason")]
    pub(super) finish_reason: Option<Cow<'a, str>>,
    #[serde(default)]
    pub(super) index: u32,
}

#[derive(Deserialize)]
pub(super) struct Content<'a> {
    #[serde(borrow, default)]
    pub(super) parts: Vec<Part<'a>>,
}

#[derive(Deserialize)]
pub(super) struct Part<'a> {
    #[serde(borrow, default)]
    pub(super) text: Option<Cow<'a, str>>,
    #[serde(default)]
    pub(super) thought: bool,
    #[serde(borrow, default, rename = "functionCall")]
    pub(super) function_call: Option<FunctionCall<'a>>,
}

#[derive(Deserialize)]
pub(super) struct FunctionCall<'a> {
    #[serde(borrow)]
    pub(super) name: Cow<'a, str>,
    #[serde(borrow, default)]
    pub(super) args: Option<&'a RawValue>,
}

/// Gemini's `usageMetadata`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageMetadata {
    #[serde(default)]
    prompt_token_count: u64,
    #[serde(default)]
    candidates_token_count: u64,
    #[serde(default)]
    cached_content_token_count: u64,
    #[serde(default)]
    thoughts_token_count: u64,
}

/// OpenAI's `usage`: thoughts count as completion (reasoning) tokens.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct OpenAiUsage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    prompt_tokens_details: Cached,
    completion_tokens_details: Reasoning,
}

#[derive(Debug, Clone, Copy, Serialize)]
struct Cached {
    cached_tokens: u64,
}

#[derive(Debug, Clone, Copy, Serialize)]
struct Reasoning {
    reasoning_tokens: u64,
}

impl UsageMetadata {
    /// As OpenAI counts.
    pub fn openai(&self) -> OpenAiUsage {
        let completion = self.candidates_token_count + self.thoughts_token_count;
        OpenAiUsage {
            prompt_tokens: self.prompt_token_count,
            completion_tokens: completion,
            total_tokens: self.prompt_token_count + completion,
            prompt_tokens_details: Cached {
                cached_tokens: self.cached_content_token_count,
            },
            completion_tokens_details: Reasoning {
                reasoning_tokens: self.thoughts_token_count,
            },
        }
    }
}

/// Gemini's `finishReason` as OpenAI's `finish_reason` (`tool_calls` when the reply calls one).
pub fn finish_reason(reason: &str, calls_tools: bool) -> &'static str {
    match reason {
        "MAX_TOKENS" => "length",
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" => {
            "content_filter"
        }
        _ if calls_tools => "tool_calls",
        _ => "stop",
    }
}

#[derive(Serialize)]
struct Completion<'a> {
    id: Cow<'a, str>,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: Vec<Choice<'a>>,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<ToolCall<'a>>,
}

#[derive(Serialize)]
struct ToolCall<'a> {
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    function: Function<'a>,
}

#[derive(Serialize)]
struct Function<'a> {
    name: &'a str,
    arguments: &'a str,
}

/// Appends `piece` to `acc`, borrowing while there is only one piece.
fn append<'a>(acc: &mut Option<Cow<'a, str>>, piece: &'a str) {
    match acc {
        None => *acc = Some(Cow::Borrowed(piece)),
        Some(text) => text.to_mut().push_str(piece),
    }
}

/// The OpenAI chat completion bytes for a Gemini reply's bytes; `model` when it names none.
/// Read and written through typed views: no JSON tree is built.
pub fn chat_completion(body: &[u8], model: &str, created: u64) -> serde_json::Result<Vec<u8>> {
    let r: Response<'_> = serde_json::from_slice(body)?;
    let mut choices = Vec::with_capacity(r.candidates.len().max(1));
    for c in &r.candidates {
        let mut text: Option<Cow<'_, str>> = None;
        let mut thoughts: Option<Cow<'_, str>> = None;
        let mut calls = Vec::new();
        for part in c.content.iter().flat_map(|c| &c.parts) {
            if let Some(f) = &part.function_call {
                calls.push(ToolCall {
                    id: format!("call_{}", crate::providers::random_uuid().simple()),
                    kind: "function",
                    function: Function {
                        name: &f.name,
                        arguments: f.args.map_or("{}", RawValue::get),
                    },
                });
            } else if let Some(t) = &part.text {
                append(
                    if part.thought {
                        &mut thoughts
                    } else {
                        &mut text
                    },
                    t,
                );
            }
        }
        let finish = finish_reason(
            c.finish_reason.as_deref().unwrap_or("STOP"),
            !calls.is_empty(),
        );
        let content = match text {
            None if !calls.is_empty() => None,
            other => Some(other.unwrap_or_default()),
        };
        choices.push(Choice {
            index: c.index,
            message: Reply {
                role: "assistant",
                content,
                reasoning_content: thoughts,
                tool_calls: calls,
            },
            finish_reason: finish,
        });
    }
    if choices.is_empty() {
        // The prompt itself was blocked (`promptFeedback.blockReason`).
        choices.push(Choice {
            index: 0,
            message: Reply {
                role: "assistant",
                content: None,
                reasoning_content: None,
                tool_calls: Vec::new(),
            },
            finish_reason: "content_filter",
        });
    }
    let id = match r.response_id.as_deref() {
        Some(id) => Cow::Borrowed(id),
        None => Cow::Owned(format!("chatcmpl-{}", crate::providers::random_uuid())),
    };
    serde_json::to_vec(&Completion {
        id,
        object: "chat.completion",
        created,
        model: r.model_version.as_deref().unwrap_or(model),
        choices,
        usage: r.usage.unwrap_or_default().openai(),
    })
}

/// The OpenAI embeddings list for a `batchEmbedContents` reply; `prompt_tokens` counted by the
/// caller (Gemini reports none).
pub fn embeddings(body: &[u8], model: &str, prompt_tokens: u64) -> serde_json::Result<Json> {
    #[derive(Deserialize)]
    struct Batch<'a> {
        #[serde(borrow)]
        embeddings: Vec<Values<'a>>,
    }
    #[derive(Deserialize)]
    struct Values<'a> {
        #[serde(borrow)]
        values: &'a RawValue,
    }
    let batch: Batch<'_> = serde_json::from_slice(body)?;
    let data: Vec<Json> = batch
        .embeddings
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let values: Json = serde_json::from_str(e.values.get()).unwrap_or_default();
            json!({"object": "embedding", "index": i, "embedding": values})
        })
        .collect();
    Ok(json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Json {
        let path = format!(
            "{}/tests/fixtures/gemini/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    /// Tool-call ids are generated: checked for shape, then blanked for the comparison.
    fn blank_ids(mut v: Json) -> Json {
        for choice in v["choices"].as_array_mut().into_iter().flatten() {
            for call in choice["message"]["tool_calls"]
                .as_array_mut()
                .into_iter()
                .flatten()
            {
                assert!(call["id"].as_str().unwrap().starts_with("call_"));
                call["id"] = json!("call_");
            }
        }
        v
    }

    #[test]
    fn a_reply_with_a_thought_text_and_a_function_call_translates_as_recorded() {
        let case = fixture("reply_function_call.json");
        let wire = case["gemini"].to_string();
        let got = chat_completion(wire.as_bytes(), "gemini-2.5-flash", 1_700_000_000).unwrap();
        let got: Json = serde_json::from_slice(&got).unwrap();
        assert_eq!(blank_ids(got), case["openai"]);
    }

    #[test]
    fn safety_stops_are_content_filter_and_a_blocked_prompt_has_no_content() {
        assert_eq!(finish_reason("SAFETY", false), "content_filter");
        assert_eq!(finish_reason("MAX_TOKENS", true), "length");
        assert_eq!(finish_reason("STOP", true), "tool_calls");
        let blocked = br#"{"promptFeedback":{"blockReason":"SAFETY"},"usageMetadata":{"promptTokenCount":7}}"#;
        let got: Json =
            serde_json::from_slice(&chat_completion(blocked, "gemini-x", 0).unwrap()).unwrap();
        assert_eq!(got["choices"][0]["finish_reason"], "content_filter");
        assert_eq!(got["choices"][0]["message"]["content"], Json::Null);
        assert_eq!(got["usage"]["prompt_tokens"], 7);
    }

    #[test]
    fn embeddings_come_back_as_an_openai_list() {
        let body = br#"{"embeddings":[{"values":[0.1,0.2]},{"values":[0.3]}]}"#;
        let got = embeddings(body, "text-embedding-004", 4).unwrap();
        assert_eq!(
            got["data"][1],
            json!({"object": "embedding", "index": 1, "embedding": [0.3]})
        );
        assert_eq!(got["usage"]["prompt_tokens"], 4);
    }
}
