//! `Assembler`: the whole reply rebuilt from the chunks a stream sent (content, reasoning, tool
//! calls, finish reasons, usage), so a streamed miss is cached like a plain one.

use std::borrow::Cow;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Map, Value as Json};

use super::entry::MAX_ENTRY_BYTES;
use crate::providers::{Operation, Usage};

/// More choices than any request asks for (`n`): a stream claiming more is not cached.
const MAX_CHOICES: usize = 128;

#[derive(Deserialize)]
struct ChunkView<'a> {
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(default)]
    created: Option<u64>,
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    system_fingerprint: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    choices: Option<Vec<ChoiceView<'a>>>,
    #[serde(default)]
    usage: Option<Json>,
    #[serde(default)]
    error: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct ChoiceView<'a> {
    #[serde(default)]
    index: Option<usize>,
    #[serde(borrow, default)]
    delta: Option<DeltaView<'a>>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct DeltaView<'a> {
    #[serde(borrow, default)]
    content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tool_calls: Option<Vec<ToolDeltaView<'a>>>,
    #[serde(borrow, default)]
    function_call: Option<FunctionView<'a>>,
}

#[derive(Deserialize)]
struct ToolDeltaView<'a> {
    #[serde(default)]
    index: Option<usize>,
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    function: Option<FunctionView<'a>>,
}

#[derive(Deserialize)]
struct FunctionView<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    arguments: Option<Cow<'a, str>>,
}

#[derive(Default)]
struct ToolCall {
    id: String,
    kind: String,
    name: String,
    arguments: String,
}

#[derive(Default)]
struct Choice {
    content: Option<String>,
    reasoning: Option<String>,
    tool_calls: Vec<ToolCall>,
    function_call: Option<(String, String)>,
    finish_reason: Option<String>,
}

/// Rebuilds one streamed reply; gives up (and caches nothing) on anything it cannot read.
pub struct Assembler {
    op: Operation,
    id: String,
    created: u64,
    model: String,
    system_fingerprint: Option<String>,
    choices: Vec<Choice>,
    usage: Option<Json>,
    size: usize,
    spoiled: bool,
}

fn push(slot: &mut Option<String>, piece: &str) {
    slot.get_or_insert_with(String::new).push_str(piece);
}

impl Assembler {
    /// An assembler for a stream of `op` chunks (chat, or text completion).
    pub fn new(op: Operation) -> Self {
        Self {
            op,
            id: String::new(),
            created: 0,
            model: String::new(),
            system_fingerprint: None,
            choices: Vec::new(),
            usage: None,
            size: 0,
            spoiled: false,
        }
    }

    /// Reads one chunk as the client received it.
    pub fn chunk(&mut self, data: &[u8]) {
        if self.spoiled {
            return;
        }
        self.size += data.len();
        let view = match serde_json::from_slice::<ChunkView<'_>>(data) {
            Ok(v) if v.error.is_none() => v,
            _ => return self.spoil(),
        };
        if self.id.is_empty() {
            if let Some(id) = view.id {
                self.id = id.into_owned();
            }
            self.created = view.created.unwrap_or(0);
            if let Some(m) = view.model {
                self.model = m.into_owned();
            }
        }
        if let Some(fp) = view.system_fingerprint {
            self.system_fingerprint = Some(fp.into_owned());
        }
        if let Some(mut usage) = view.usage.filter(Json::is_object) {
            if let Json::Object(m) = &mut usage {
                // The relay adds the call's cost to the client's usage chunk: not part of a reply.
                m.shift_remove("cost");
            }
            self.usage = Some(usage);
        }
        for c in view.choices.into_iter().flatten() {
            let index = c.index.unwrap_or(0);
            if index >= MAX_CHOICES {
                return self.spoil();
            }
            if self.choices.len() <= index {
                self.choices.resize_with(index + 1, Choice::default);
            }
            let choice = &mut self.choices[index];
            if let Some(t) = &c.text {
                push(&mut choice.content, t);
            }
            if let Some(d) = c.delta {
                if let Some(t) = &d.content {
                    push(&mut choice.content, t);
                }
                if let Some(t) = &d.reasoning_content {
                    push(&mut choice.reasoning, t);
                }
                for call in d.tool_calls.into_iter().flatten() {
                    let i = call
                        .index
                        .unwrap_or(choice.tool_calls.len().saturating_sub(1));
                    if i >= MAX_CHOICES {
                        return self.spoil();
                    }
                    if choice.tool_calls.len() <= i {
                        choice.tool_calls.resize_with(i + 1, ToolCall::default);
                    }
                    let acc = &mut choice.tool_calls[i];
                    if let Some(id) = call.id {
                        acc.id = id.into_owned();
                    }
                    if let Some(kind) = call.kind {
                        acc.kind = kind.into_owned();
                    }
                    if let Some(f) = call.function {
                        if let Some(n) = f.name {
                            acc.name.push_str(&n);
                        }
                        if let Some(a) = f.arguments {
                            acc.arguments.push_str(&a);
                        }
                    }
                }
                if let Some(f) = d.function_call {
                    let (name, args) = choice.function_call.get_or_insert_default();
                    if let Some(n) = f.name {
                        name.push_str(&n);
                    }
                    if let Some(a) = f.arguments {
                        args.push_str(&a);
                    }
                }
            }
            if let Some(f) = c.finish_reason {
                choice.finish_reason = Some(f.into_owned());
            }
        }
        // The chunks' framing is several times the reply: past this the reply is too big too.
        if self.size > 8 * MAX_ENTRY_BYTES {
            self.spoil();
        }
    }

    fn spoil(&mut self) {
        self.spoiled = true;
        self.choices = Vec::new();
    }

    /// The reply a non-streamed request would have received, if the stream was whole: every
    /// choice finished, and nothing unreadable on the way.
    pub fn finish(self, usage: Usage) -> Option<Bytes> {
        if self.spoiled
            || self.choices.is_empty()
            || self.choices.iter().any(|c| c.finish_reason.is_none())
        {
            return None;
        }
        let usage = self.usage.unwrap_or_else(|| json!(usage));
        let chat = self.op != Operation::Completion;
        let choices: Vec<Json> = self
            .choices
            .into_iter()
            .enumerate()
            .map(|(index, c)| {
                if !chat {
                    return json!({"index": index, "text": c.content.unwrap_or_default(),
                        "logprobs": null, "finish_reason": c.finish_reason});
                }
                // A call-only reply has no content (streams open with `"content": ""`).
                let calls = !c.tool_calls.is_empty() || c.function_call.is_some();
                let content = c.content.filter(|t| !(calls && t.is_empty()));
                let mut message = Map::new();
                message.insert("role".into(), json!("assistant"));
                message.insert("content".into(), json!(content));
                if let Some(r) = c.reasoning {
                    message.insert("reasoning_content".into(), json!(r));
                }
                if !c.tool_calls.is_empty() {
                    let calls: Vec<Json> = c
                        .tool_calls
                        .into_iter()
                        .map(|t| {
                            let kind = if t.kind.is_empty() {
                                "function".into()
                            } else {
                                t.kind
                            };
                            json!({"id": t.id, "type": kind,
                                "function": {"name": t.name, "arguments": t.arguments}})
                        })
                        .collect();
                    message.insert("tool_calls".into(), Json::Array(calls));
                }
                if let Some((name, arguments)) = c.function_call {
                    message.insert(
                        "function_call".into(),
                        json!({"name": name, "arguments": arguments}),
                    );
                }
                json!({"index": index, "message": message, "finish_reason": c.finish_reason})
            })
            .collect();
        let mut reply = json!({
            "id": self.id,
            "object": if chat { "chat.completion" } else { "text_completion" },
            "created": self.created,
            "model": self.model,
            "choices": choices,
            "usage": usage,
        });
        if let Some(fp) = self.system_fingerprint {
            reply["system_fingerprint"] = json!(fp);
        }
        serde_json::to_vec(&reply).ok().map(Bytes::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(op: Operation, chunks: &[Json]) -> Assembler {
        let mut a = Assembler::new(op);
        for c in chunks {
            a.chunk(&serde_json::to_vec(c).unwrap());
        }
        a
    }

    fn reply(a: Assembler) -> Json {
        serde_json::from_slice(&a.finish(Usage::new(5, 2)).expect("a whole reply")).unwrap()
    }

    #[test]
    fn chat_chunks_with_tool_calls_become_one_message() {
        let head =
            json!({"id": "c1", "object": "chat.completion.chunk", "created": 9, "model": "m"});
        let with = |choices: Json| {
            let mut c = head.clone();
            c["choices"] = choices;
            c
        };
        let chunks = [
            with(
                json!([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]),
            ),
            with(json!([{"index": 0, "delta": {"content": "Let me "}, "finish_reason": null}])),
            with(json!([{"index": 0, "delta": {"content": "check."}, "finish_reason": null}])),
            with(
                json!([{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                "function": {"name": "weather", "arguments": "{\"ci"}}]}, "finish_reason": null}]),
            ),
            with(
                json!([{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "ty\":\"Paris\"}"}}]},
                "finish_reason": null}]),
            ),
            with(json!([{"index": 0, "delta": {}, "finish_reason": "tool_calls"}])),
            {
                let mut u = with(json!([]));
                u["usage"] = json!({"prompt_tokens": 7, "completion_tokens": 4, "total_tokens": 11, "cost": 0.1});
                u
            },
        ];
        let r = reply(feed(Operation::Chat, &chunks));
        assert_eq!(
            r,
            json!({"id": "c1", "object": "chat.completion", "created": 9, "model": "m",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "Let me check.",
                    "tool_calls": [{"id": "call_1", "type": "function",
                        "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                    "finish_reason": "tool_calls"}],
                "usage": {"prompt_tokens": 7, "completion_tokens": 4, "total_tokens": 11}})
        );
    }

    #[test]
    fn text_completion_chunks_become_a_text_completion() {
        let chunks = [
            json!({"id": "t", "object": "text_completion", "created": 1, "model": "m",
                "choices": [{"index": 0, "text": "a ", "logprobs": null, "finish_reason": null}]}),
            json!({"id": "t", "object": "text_completion", "created": 1, "model": "m",
                "choices": [{"index": 0, "text": "b", "logprobs": null, "finish_reason": "stop"}]}),
        ];
        let r = reply(feed(Operation::Completion, &chunks));
        assert_eq!(r["object"], "text_completion");
        assert_eq!(r["choices"][0]["text"], "a b");
        assert_eq!(
            r["usage"],
            json!({"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7})
        );
    }

    #[test]
    fn an_unfinished_or_broken_stream_is_not_kept() {
        let unfinished = feed(
            Operation::Chat,
            &[
                json!({"id": "c", "choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": null}]}),
            ],
        );
        assert!(unfinished.finish(Usage::default()).is_none());
        let mut broken = Assembler::new(Operation::Chat);
        broken.chunk(b"{\"error\": {\"message\": \"overloaded\"}}");
        broken.chunk(br#"{"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#);
        assert!(broken.finish(Usage::default()).is_none());
        let mut not_json = Assembler::new(Operation::Chat);
        not_json.chunk(b"garbage");
        assert!(not_json.finish(Usage::default()).is_none());
    }

    #[test]
    fn a_reply_of_tool_calls_only_has_null_content() {
        let calls_only = feed(
            Operation::Chat,
            &[
                json!({"id": "c", "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}),
                json!({"id": "c", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "k",
                    "function": {"name": "f", "arguments": "{}"}}]}, "finish_reason": "tool_calls"}]}),
            ],
        );
        let message = &reply(calls_only)["choices"][0]["message"];
        assert_eq!(message["content"], Json::Null);
        assert_eq!(message["tool_calls"][0]["type"], "function");
    }
}
