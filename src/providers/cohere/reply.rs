//! A Cohere `/v2/chat` reply as an OpenAI `chat.completion` (text, thinking, tool plan, tool
//! calls, finish reason, usage) and a `/v2/embed` reply as an OpenAI embeddings list. Read and
//! written with typed views: no JSON tree is built.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value as Json};

use crate::providers::Usage;

/// Cohere's `finish_reason` as OpenAI's (`tool_calls` whenever the reply calls a tool).
pub fn finish_reason(reason: &str, calls_tools: bool) -> &'static str {
    match reason {
        "MAX_TOKENS" => "length",
        "TOOL_CALL" => "tool_calls",
        "ERROR_TOXIC" => "content_filter",
        _ if calls_tools => "tool_calls",
        _ => "stop",
    }
}

/// Cohere's `usage`: the tokens the model counted, else the billed units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
pub struct CohereUsage {
    #[serde(default)]
    billed_units: Option<Counts>,
    #[serde(default)]
    tokens: Option<Counts>,
}

/// Cohere documents its counts as numbers, not integers: read as floats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
struct Counts {
    #[serde(default)]
    input_tokens: Option<f64>,
    #[serde(default)]
    output_tokens: Option<f64>,
}

impl CohereUsage {
    /// As OpenAI counts.
    pub fn openai(&self) -> Usage {
        let pick = |count: fn(&Counts) -> Option<f64>| {
            self.tokens
                .as_ref()
                .and_then(count)
                .or_else(|| self.billed_units.as_ref().and_then(count))
                .map_or(0, |n| n.max(0.0) as u64)
        };
        Usage::new(pick(|c| c.input_tokens), pick(|c| c.output_tokens))
    }
}

#[derive(Deserialize)]
struct Reply<'a> {
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    finish_reason: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    message: Option<Message<'a>>,
    #[serde(default)]
    usage: CohereUsage,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    content: Vec<Content<'a>>,
    #[serde(borrow, default)]
    tool_plan: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tool_calls: Vec<ToolCallIn<'a>>,
}

/// A content block: `text`, or `thinking` from a reasoning model.
#[derive(Deserialize)]
struct Content<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    thinking: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ToolCallIn<'a> {
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    function: Option<FunctionIn<'a>>,
}

#[derive(Deserialize)]
struct FunctionIn<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    arguments: Option<Cow<'a, str>>,
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
    message: Out<'a>,
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct Out<'a> {
    role: &'static str,
    content: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<ToolCallOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<String>,
}

#[derive(Serialize)]
struct ToolCallOut<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: FunctionOut<'a>,
}

#[derive(Serialize)]
struct FunctionOut<'a> {
    name: &'a str,
    arguments: &'a str,
}

/// The OpenAI chat completion bytes for a Cohere reply's bytes: `model` named (Cohere's reply
/// does not), stamped `created`. The tool plan is the content when there is no text.
pub fn chat_completion(body: &[u8], model: &str, created: u64) -> serde_json::Result<Vec<u8>> {
    let reply: Reply<'_> = serde_json::from_slice(body)?;
    let mut text = String::new();
    let mut thinking = String::new();
    let mut tool_calls = Vec::new();
    let mut plan = None;
    if let Some(m) = &reply.message {
        for block in &m.content {
            match block.kind.as_ref() {
                "thinking" => thinking.push_str(block.thinking.as_deref().unwrap_or_default()),
                _ => text.push_str(block.text.as_deref().unwrap_or_default()),
            }
        }
        plan = m.tool_plan.as_deref().filter(|p| !p.is_empty());
        for call in &m.tool_calls {
            let function = call.function.as_ref();
            tool_calls.push(ToolCallOut {
                id: call.id.as_deref().unwrap_or_default(),
                kind: "function",
                function: FunctionOut {
                    name: function.and_then(|f| f.name.as_deref()).unwrap_or_default(),
                    arguments: function
                        .and_then(|f| f.arguments.as_deref())
                        .unwrap_or("{}"),
                },
            });
        }
    }
    let content = match (text.is_empty(), plan) {
        (false, _) => Some(text),
        (true, Some(p)) => Some(p.to_owned()),
        (true, None) if !tool_calls.is_empty() => None,
        (true, None) => Some(text),
    };
    let finish = finish_reason(
        reply.finish_reason.as_deref().unwrap_or("COMPLETE"),
        !tool_calls.is_empty(),
    );
    let generated;
    let id = match reply.id.as_deref() {
        Some(id) => id,
        None => {
            generated = format!("chatcmpl-{}", crate::providers::random_uuid());
            &generated
        }
    };
    serde_json::to_vec(&Completion {
        id,
        object: "chat.completion",
        created,
        model,
        choices: [Choice {
            index: 0,
            message: Out {
                role: "assistant",
                content,
                tool_calls,
                reasoning_content: (!thinking.is_empty()).then_some(thinking),
            },
            finish_reason: finish,
        }],
        usage: reply.usage.openai(),
    })
}

#[derive(Serialize)]
struct List<'a> {
    object: &'static str,
    data: Vec<Embedding<'a>>,
    model: &'a str,
    usage: EmbedUsage,
}

#[derive(Serialize)]
struct Embedding<'a> {
    object: &'static str,
    index: usize,
    embedding: &'a RawValue,
}

#[derive(Serialize)]
struct EmbedUsage {
    prompt_tokens: u64,
    total_tokens: u64,
}

/// The OpenAI embeddings list bytes for a `/v2/embed` reply's float vectors; prompt tokens
/// are the billed ones, else counted from the request's `input` (in `fields`).
pub fn embeddings(
    body: &[u8],
    model: &str,
    fields: &Map<String, Json>,
) -> serde_json::Result<Vec<u8>> {
    #[derive(Deserialize)]
    struct Embed<'a> {
        #[serde(borrow)]
        embeddings: ByType<'a>,
        #[serde(default)]
        meta: Option<Meta>,
    }
    #[derive(Deserialize)]
    struct ByType<'a> {
        #[serde(borrow, default)]
        float: Vec<&'a RawValue>,
    }
    #[derive(Deserialize)]
    struct Meta {
        #[serde(default)]
        billed_units: Option<Counts>,
    }
    let reply: Embed<'_> = serde_json::from_slice(body)?;
    let billed = reply
        .meta
        .and_then(|m| m.billed_units)
        .and_then(|b| b.input_tokens);
    let tokens = billed.map_or_else(
        || match fields.get("input") {
            Some(Json::String(s)) => crate::tokens::count(s),
            Some(Json::Array(items)) => items
                .iter()
                .filter_map(Json::as_str)
                .map(crate::tokens::count)
                .sum(),
            _ => 0,
        },
        |n| n.max(0.0) as u64,
    );
    let data = reply
        .embeddings
        .float
        .iter()
        .enumerate()
        .map(|(index, values)| Embedding {
            object: "embedding",
            index,
            embedding: values,
        })
        .collect();
    serde_json::to_vec(&List {
        object: "list",
        data,
        model,
        usage: EmbedUsage {
            prompt_tokens: tokens,
            total_tokens: tokens,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fixture(name: &str) -> Json {
        let path = format!(
            "{}/tests/fixtures/cohere/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn chat(wire: &[u8]) -> Json {
        serde_json::from_slice(&chat_completion(wire, "command-r-plus", 1_700_000_000).unwrap())
            .unwrap()
    }

    #[test]
    fn a_reply_with_a_tool_plan_and_a_tool_call_translates_as_recorded() {
        let case = fixture("reply_tool_call.json");
        assert_eq!(chat(case["cohere"].to_string().as_bytes()), case["openai"]);
    }

    #[test]
    fn text_and_thinking_blocks_become_content_and_reasoning_content() {
        let wire = br#"{"id":"r1","finish_reason":"MAX_TOKENS","message":{"role":"assistant","content":[{"type":"thinking","thinking":"Two and two."},{"type":"text","text":"It is "},{"type":"text","text":"four."}]},"usage":{"billed_units":{"input_tokens":5.0,"output_tokens":9.0}}}"#;
        let got = chat(wire);
        assert_eq!(
            got["choices"][0],
            json!({"index": 0, "message": {"role": "assistant", "content": "It is four.", "reasoning_content": "Two and two."}, "finish_reason": "length"})
        );
        assert_eq!(
            got["usage"],
            json!({"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14})
        );
    }

    #[test]
    fn finish_reasons_map_to_openai_ones() {
        for (cohere, tools, openai) in [
            ("COMPLETE", false, "stop"),
            ("STOP_SEQUENCE", false, "stop"),
            ("MAX_TOKENS", true, "length"),
            ("TOOL_CALL", false, "tool_calls"),
            ("COMPLETE", true, "tool_calls"),
            ("ERROR_TOXIC", false, "content_filter"),
        ] {
            assert_eq!(finish_reason(cohere, tools), openai, "{cohere}");
        }
    }

    #[test]
    fn an_embed_reply_comes_back_as_an_openai_list_with_the_billed_tokens() {
        let case = fixture("reply_embed.json");
        let wire = case["cohere"].to_string();
        let got: Json = serde_json::from_slice(
            &embeddings(wire.as_bytes(), "embed-english-v3.0", &Map::new()).unwrap(),
        )
        .unwrap();
        assert_eq!(got, case["openai"]);
    }

    #[test]
    fn an_embed_reply_without_billed_units_counts_the_input() {
        let fields: Map<String, Json> =
            serde_json::from_value(json!({"input": ["hello world"]})).unwrap();
        let got: Json = serde_json::from_slice(
            &embeddings(br#"{"embeddings":{"float":[[1.5]]}}"#, "e", &fields).unwrap(),
        )
        .unwrap();
        assert_eq!(got["data"][0]["embedding"], json!([1.5]));
        assert!(got["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    }
}
