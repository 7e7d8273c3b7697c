//! Ollama's newline-delimited JSON stream as OpenAI chat chunks: a role chunk, text, thinking
//! and tool-call deltas, the finish reason, and a final usage chunk.

use std::borrow::Cow;

use crate::providers::chunks::{Chunks, Head, ToolCallDelta};
use serde_json::Value as Json;

use super::reply::{finish_reason, Wire};
use super::tool_call_id;
use crate::providers::stream::Step;

/// The translation state of one stream.
#[derive(Debug, Default)]
pub struct OllamaStream {
    id: String,
    model: String,
    created: u64,
    started: bool,
    /// Tool calls relayed so far: the index of the next one.
    tool_calls: usize,
}

impl OllamaStream {
    /// A translator naming its chunks `id` and stamping them `created`.
    pub fn new(id: String, created: u64) -> Self {
        Self {
            id,
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

    /// Translates one line of the stream, appending the OpenAI chunks it makes to `out`.
    pub fn event(&mut self, line: &[u8], out: &mut Chunks) -> Step {
        let Ok(wire) = serde_json::from_slice::<Wire<'_>>(line) else {
            return Step::More;
        };
        if let Some(error) = &wire.error {
            let message = error
                .as_str()
                .or_else(|| error.get("message").and_then(Json::as_str))
                .unwrap_or("the stream failed");
            return Step::Failed {
                kind: "api_error".into(),
                message: message.to_owned(),
            };
        }
        if !self.started {
            self.started = true;
            self.model = wire.model.to_string();
            out.role(self.head());
        }
        let (text, thinking) = match &wire.message {
            Some(m) => (m.content.as_ref(), m.thinking.as_deref()),
            None => (
                wire.response.as_deref().unwrap_or_default(),
                wire.thinking.as_deref(),
            ),
        };
        if let Some(t) = thinking.filter(|t| !t.is_empty()) {
            out.reasoning(self.head(), t);
        }
        if !text.is_empty() {
            out.content(self.head(), text);
        }
        for call in wire.message.iter().flat_map(|m| &m.tool_calls) {
            let index = self.tool_calls;
            self.tool_calls += 1;
            let id = match call.id.as_deref() {
                Some(id) => Cow::Borrowed(id),
                None => Cow::Owned(tool_call_id(&self.id, index)),
            };
            let call = ToolCallDelta {
                index,
                id: Some(&id),
                name: Some(&call.function.name),
                arguments: &call.function.arguments_text(),
            };
            out.tool_call(self.head(), call);
        }
        if !wire.done {
            return Step::More;
        }
        let finish = finish_reason(wire.done_reason.as_deref(), self.tool_calls > 0);
        out.finish(self.head(), finish);
        out.usage(self.head(), wire.usage());
        Step::Done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fixture(name: &str) -> String {
        let path = format!(
            "{}/tests/fixtures/ollama/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(path).unwrap()
    }

    /// Feeds every line of a recorded stream; returns the chunks and the last step.
    fn run(ndjson: &str) -> (Vec<Json>, Step) {
        let mut t = OllamaStream::new("chatcmpl-0123".into(), 1_700_000_000);
        let mut out = Chunks::default();
        let mut step = Step::More;
        for line in ndjson.lines() {
            step = t.event(line.as_bytes(), &mut out);
            if step != Step::More {
                break;
            }
        }
        (out.json(), step)
    }

    #[test]
    fn a_recorded_chat_stream_with_text_and_a_tool_call_gives_the_recorded_chunks() {
        let (chunks, step) = run(&fixture("stream_chat_tool_call.ndjson"));
        assert_eq!(step, Step::Done);
        let expected: Vec<Json> = fixture("stream_chat_tool_call.openai.jsonl")
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(chunks, expected);
    }

    #[test]
    fn a_generate_stream_relays_its_response_text_then_stop_and_usage() {
        let (chunks, step) = run(&fixture("stream_generate.ndjson"));
        assert_eq!(step, Step::Done);
        let text: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(text, "The sky is blue.");
        assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(chunks[0]["model"], "llama3.2");
        let finish = &chunks[chunks.len() - 2]["choices"][0]["finish_reason"];
        assert_eq!(finish, "stop");
        assert_eq!(
            chunks.last().unwrap()["usage"],
            json!({"prompt_tokens": 26, "completion_tokens": 4, "total_tokens": 30})
        );
    }

    #[test]
    fn an_error_line_fails_the_stream() {
        let (_, step) = run("{\"model\":\"m\",\"message\":{\"content\":\"a\"},\"done\":false}\n{\"error\":\"an error was encountered while running the model\"}\n");
        assert_eq!(
            step,
            Step::Failed {
                kind: "api_error".into(),
                message: "an error was encountered while running the model".into()
            }
        );
    }
}
