//! Cohere's `/v2/chat` stream events as OpenAI chat chunks: text, thinking and tool-plan
//! deltas, tool calls with a running index, the finish reason and a final usage chunk.

use std::borrow::Cow;

use crate::providers::chunks::{Chunks, Head, ToolCallDelta};
use serde::Deserialize;
use serde_json::Value as Json;

use super::reply::{finish_reason, CohereUsage};
use crate::providers::stream::Step;

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(default)]
    delta: Option<Delta>,
}

#[derive(Default, Deserialize)]
struct Delta {
    #[serde(default)]
    message: Option<Json>,
    #[serde(default)]
    finish_reason: Option<String>,
    #[serde(default)]
    usage: Option<CohereUsage>,
    #[serde(default)]
    error: Option<String>,
}

/// The translation state of one stream.
#[derive(Debug, Default)]
pub struct CohereStream {
    id: String,
    model: String,
    created: u64,
    started: bool,
    /// Tool calls started so far; the last one is the one receiving arguments.
    tool_calls: usize,
}

impl CohereStream {
    /// A translator for `model`'s stream (Cohere's events do not name it), stamping its chunks
    /// `created`.
    pub fn new(model: &str, created: u64) -> Self {
        Self {
            model: model.to_owned(),
            created,
            ..Self::default()
        }
    }

    fn head(&self) -> Head<'_> {
        Head {
            id: &self.id,
            model: &self.model,
            created: self.created,
        }
    }

    /// The role chunk, once, before anything else.
    fn start(&mut self, out: &mut Chunks) {
        if self.started {
            return;
        }
        self.started = true;
        if self.id.is_empty() {
            self.id = format!("chatcmpl-{}", crate::providers::random_uuid());
        }
        out.role(self.head());
    }

    /// A text (or, `reasoning`, thinking) delta, unless empty.
    fn text(&mut self, reasoning: bool, text: Option<&str>, out: &mut Chunks) {
        if let Some(t) = text.filter(|t| !t.is_empty()) {
            self.start(out);
            if reasoning {
                out.reasoning(self.head(), t);
            } else {
                out.content(self.head(), t);
            }
        }
    }

    /// Translates one event's `data`, appending the OpenAI chunks it makes to `out`.
    pub fn event(&mut self, data: &[u8], out: &mut Chunks) -> Step {
        let Ok(e) = serde_json::from_slice::<Event<'_>>(data) else {
            return Step::More;
        };
        let delta = e.delta;
        let message = delta
            .as_ref()
            .and_then(|d| d.message.as_ref())
            .unwrap_or(&Json::Null);
        match e.kind.as_ref() {
            "message-start" => {
                if let Some(id) = e.id.as_deref().filter(|_| !self.started) {
                    self.id = id.to_owned();
                }
                self.start(out);
            }
            "content-start" | "content-delta" => {
                let content = &message["content"];
                self.text(false, content["text"].as_str(), out);
                self.text(true, content["thinking"].as_str(), out);
            }
            // The plan the model states before calling tools: content, as in the whole reply.
            "tool-plan-delta" => self.text(false, message["tool_plan"].as_str(), out),
            "tool-call-start" => {
                let call = one_call(&message["tool_calls"]);
                self.start(out);
                let index = self.tool_calls;
                self.tool_calls += 1;
                let call = ToolCallDelta {
                    index,
                    id: Some(call["id"].as_str().unwrap_or_default()),
                    name: Some(call["function"]["name"].as_str().unwrap_or_default()),
                    arguments: call["function"]["arguments"].as_str().unwrap_or_default(),
                };
                out.tool_call(self.head(), call);
            }
            "tool-call-delta" => {
                let call = one_call(&message["tool_calls"]);
                if let Some(piece) = call["function"]["arguments"].as_str() {
                    let index = self.tool_calls.saturating_sub(1);
                    let call = ToolCallDelta {
                        index,
                        arguments: piece,
                        ..ToolCallDelta::default()
                    };
                    out.tool_call(self.head(), call);
                }
            }
            "message-end" => {
                let delta = delta.unwrap_or_default();
                if let Some(error) = delta.error.filter(|e| !e.is_empty()) {
                    return Step::Failed {
                        kind: "api_error".into(),
                        message: error,
                    };
                }
                self.start(out);
                let reason = delta.finish_reason.as_deref().unwrap_or("COMPLETE");
                out.finish(self.head(), finish_reason(reason, self.tool_calls > 0));
                out.usage(self.head(), delta.usage.unwrap_or_default().openai());
                return Step::Done;
            }
            // `content-end`, `tool-call-end`, citations and anything newer carry nothing to relay.
            _ => {}
        }
        Step::More
    }
}

/// The tool call of a `tool-call-*` event: an object on the wire, a one-item list tolerated.
fn one_call(calls: &Json) -> &Json {
    match calls {
        Json::Array(list) => list.first().unwrap_or(&Json::Null),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fixture(name: &str) -> String {
        let path = format!(
            "{}/tests/fixtures/cohere/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(path).unwrap()
    }

    /// Feeds every `data:` line of a stream; returns the chunks and the last step.
    fn run(sse: &str) -> (Vec<Json>, Step) {
        let mut t = CohereStream::new("command-r-plus", 1_700_000_000);
        let mut out = Chunks::default();
        let mut step = Step::More;
        for line in sse.lines() {
            if let Some(data) = line.strip_prefix("data: ") {
                step = t.event(data.as_bytes(), &mut out);
                if step != Step::More {
                    break;
                }
            }
        }
        (out.json(), step)
    }

    #[test]
    fn a_recorded_stream_with_a_tool_plan_and_two_tool_calls_gives_the_recorded_chunks() {
        let (chunks, step) = run(&fixture("stream_tool_call.sse"));
        assert_eq!(step, Step::Done);
        let expected: Vec<Json> = fixture("stream_tool_call.openai.jsonl")
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(chunks, expected);
    }

    #[test]
    fn a_text_stream_gives_content_deltas_a_stop_and_usage() {
        let sse = concat!(
            "data: {\"id\":\"m1\",\"type\":\"message-start\",\"delta\":{\"message\":{\"role\":\"assistant\",\"content\":[]}}}\n",
            "data: {\"type\":\"content-start\",\"index\":0,\"delta\":{\"message\":{\"content\":{\"type\":\"text\",\"text\":\"\"}}}}\n",
            "data: {\"type\":\"content-delta\",\"index\":0,\"delta\":{\"message\":{\"content\":{\"thinking\":\"Hmm.\"}}}}\n",
            "data: {\"type\":\"content-delta\",\"index\":0,\"delta\":{\"message\":{\"content\":{\"text\":\"Hi\"}}}}\n",
            "data: {\"type\":\"content-delta\",\"index\":0,\"delta\":{\"message\":{\"content\":{\"text\":\" there\"}}}}\n",
            "data: {\"type\":\"content-end\",\"index\":0}\n",
            "data: {\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"COMPLETE\",\"usage\":{\"billed_units\":{\"input_tokens\":3,\"output_tokens\":2}}}}\n",
        );
        let (chunks, step) = run(sse);
        assert_eq!(step, Step::Done);
        let deltas: Vec<&Json> = chunks
            .iter()
            .filter_map(|c| c.pointer("/choices/0/delta"))
            .collect();
        assert_eq!(
            deltas,
            [
                &json!({"role": "assistant", "content": ""}),
                &json!({"reasoning_content": "Hmm."}),
                &json!({"content": "Hi"}),
                &json!({"content": " there"}),
                &json!({}),
            ]
        );
        assert!(chunks.iter().all(|c| c["id"] == "m1"));
        assert_eq!(chunks[4]["choices"][0]["finish_reason"], "stop");
        assert_eq!(chunks[5]["usage"]["total_tokens"], 5);
    }

    #[test]
    fn an_error_at_the_end_fails_the_stream() {
        let (_, step) = run(
            "data: {\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"ERROR\",\"error\":\"internal server error\"}}\n",
        );
        assert_eq!(
            step,
            Step::Failed {
                kind: "api_error".into(),
                message: "internal server error".into()
            }
        );
    }
}
