//! Anthropic's stream events as OpenAI chat chunks: text, tool-call and thinking deltas, the
//! finish reason, and a final usage chunk.

use crate::providers::chunks::{Chunks, Delta, Head, ToolCallDelta};
use serde::Deserialize;
use serde_json::Value as Json;

use super::reply::{finish_reason, TokenCounts};
pub use crate::providers::stream::Step;

#[derive(Deserialize)]
struct Event {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    index: usize,
    #[serde(default)]
    message: Option<Json>,
    #[serde(default)]
    content_block: Option<Json>,
    #[serde(default)]
    delta: Option<Json>,
    #[serde(default)]
    usage: Option<TokenCounts>,
    #[serde(default)]
    error: Option<Json>,
}

/// The translation state of one stream.
#[derive(Debug, Default)]
pub struct AnthropicStream {
    id: String,
    model: String,
    created: u64,
    /// `message_start`'s usage, completed by `message_delta`'s.
    usage: TokenCounts,
    /// The OpenAI tool-call index of each content block that is a tool use.
    tool_of_block: Vec<(usize, usize)>,
}

impl AnthropicStream {
    /// A translator stamping its chunks `created`.
    pub fn new(created: u64) -> Self {
        Self {
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

    /// Translates one event's `data`, appending the OpenAI chunks it makes to `out`.
    pub fn event(&mut self, data: &[u8], out: &mut Chunks) -> Step {
        let Ok(e) = serde_json::from_slice::<Event>(data) else {
            return Step::More;
        };
        match e.kind.as_str() {
            "message_start" => {
                let m = e.message.unwrap_or_default();
                self.id = m["id"].as_str().unwrap_or_default().to_owned();
                self.model = m["model"].as_str().unwrap_or_default().to_owned();
                if let Some(u) = m
                    .get("usage")
                    .and_then(|u| TokenCounts::deserialize(u).ok())
                {
                    self.usage = u;
                }
                out.role(self.head());
            }
            "content_block_start" => {
                let block = e.content_block.unwrap_or_default();
                match block["type"].as_str() {
                    Some("tool_use") => {
                        let call = self.tool_of_block.len();
                        self.tool_of_block.push((e.index, call));
                        let call = ToolCallDelta {
                            index: call,
                            id: Some(block["id"].as_str().unwrap_or_default()),
                            name: Some(block["name"].as_str().unwrap_or_default()),
                            arguments: "",
                        };
                        out.tool_call(self.head(), call);
                    }
                    Some("text") => {
                        if let Some(t) = block["text"].as_str().filter(|t| !t.is_empty()) {
                            out.content(self.head(), t);
                        }
                    }
                    _ => {}
                }
            }
            "content_block_delta" => {
                let delta = e.delta.unwrap_or_default();
                match delta["type"].as_str() {
                    Some("text_delta") => {
                        let text = Delta {
                            content: delta["text"].as_str(),
                            ..Delta::default()
                        };
                        out.delta(self.head(), text, None);
                    }
                    Some("input_json_delta") => {
                        let call = self
                            .tool_of_block
                            .iter()
                            .find(|(block, _)| *block == e.index)
                            .map_or(0, |(_, call)| *call);
                        let call = ToolCallDelta {
                            index: call,
                            arguments: delta["partial_json"].as_str().unwrap_or_default(),
                            ..ToolCallDelta::default()
                        };
                        out.tool_call(self.head(), call);
                    }
                    Some("thinking_delta") => {
                        let thinking = Delta {
                            reasoning_content: delta["thinking"].as_str(),
                            ..Delta::default()
                        };
                        out.delta(self.head(), thinking, None);
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(u) = e.usage {
                    self.usage.merge(u);
                }
                if let Some(stop) = e.delta.as_ref().and_then(|d| d["stop_reason"].as_str()) {
                    out.finish(self.head(), finish_reason(stop));
                }
            }
            "message_stop" => {
                out.usage(self.head(), self.usage.openai());
                return Step::Done;
            }
            "error" => {
                let err = e.error.unwrap_or_default();
                return Step::Failed {
                    kind: err["type"].as_str().unwrap_or("api_error").to_owned(),
                    message: err["message"]
                        .as_str()
                        .unwrap_or("the stream failed")
                        .to_owned(),
                };
            }
            // `ping`, `content_block_stop` and anything newer carry nothing to relay.
            _ => {}
        }
        Step::More
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!(
            "{}/tests/fixtures/anthropic/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(path).unwrap()
    }

    /// Feeds every `data:` line of a recorded stream; returns the chunks and the last step.
    fn run(sse: &str) -> (Vec<Json>, Step) {
        let mut t = AnthropicStream::new(1_700_000_000);
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
    fn a_recorded_stream_with_thinking_text_and_a_tool_call_gives_the_recorded_chunks() {
        let (chunks, step) = run(&fixture("stream_tool_use.sse"));
        assert_eq!(step, Step::Done);
        let expected: Vec<Json> = fixture("stream_tool_use.openai.jsonl")
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(chunks, expected);
    }

    #[test]
    fn an_error_event_fails_the_stream() {
        let sse = "event: error\ndata: {\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}\n";
        let (_, step) = run(sse);
        assert_eq!(
            step,
            Step::Failed {
                kind: "overloaded_error".into(),
                message: "Overloaded".into()
            }
        );
    }
}
