//! TGI's `generate_stream` events (one token each, the last with the whole text and its
//! details) as OpenAI chat chunks: a role chunk, text deltas, the finish reason and usage.

use std::borrow::Cow;

use crate::providers::chunks::{Chunks, Head};
use serde::Deserialize;

use super::reply::{finish_reason, Details};
use crate::providers::stream::Step;
use crate::providers::Usage;

/// One `generate_stream` event, or the error sent in place of one.
#[derive(Deserialize)]
struct Event<'a> {
    #[serde(borrow, default)]
    token: Option<Token<'a>>,
    /// Set on the last event only.
    #[serde(borrow, default)]
    generated_text: Option<Cow<'a, str>>,
    /// Set on the last event only.
    #[serde(borrow, default)]
    details: Option<Details<'a>>,
    #[serde(borrow, default)]
    error: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    error_type: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Token<'a> {
    #[serde(borrow, default)]
    text: Cow<'a, str>,
    /// End-of-sequence and other control tokens: not text.
    #[serde(default)]
    special: bool,
}

/// The translation state of one stream.
#[derive(Debug, Default)]
pub struct HuggingFaceStream {
    id: String,
    model: String,
    created: u64,
    /// The prompt's tokens counted by the gateway, for a TGI that reports no `input_length`.
    prompt_tokens: Option<u64>,
    started: bool,
    /// Token events so far.
    tokens: u64,
}

impl HuggingFaceStream {
    /// A translator naming its chunks `id` for `model`, stamping them `created`;
    /// `prompt_tokens` is the count of the prompt sent, when known.
    pub fn new(id: String, model: &str, created: u64, prompt_tokens: Option<u64>) -> Self {
        Self {
            id,
            model: model.to_owned(),
            created,
            prompt_tokens,
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

    /// Translates one event's `data`, appending the OpenAI chunks it makes to `out`; the
    /// event carrying the whole text (or the details) is the last.
    pub fn event(&mut self, data: &[u8], out: &mut Chunks) -> Step {
        let Ok(event) = serde_json::from_slice::<Event<'_>>(data) else {
            return Step::More;
        };
        if let Some(message) = &event.error {
            return Step::Failed {
                kind: event
                    .error_type
                    .as_deref()
                    .unwrap_or("api_error")
                    .to_owned(),
                message: message.to_string(),
            };
        }
        if !self.started {
            self.started = true;
            out.role(self.head());
        }
        if let Some(token) = &event.token {
            self.tokens += 1;
            if !token.special && !token.text.is_empty() {
                out.content(self.head(), &token.text);
            }
        }
        if event.generated_text.is_none() && event.details.is_none() {
            return Step::More;
        }
        let details = event.details.as_ref();
        let finish = finish_reason(details.and_then(|d| d.finish_reason.as_deref()));
        out.finish(self.head(), finish);
        let prompt = details
            .and_then(|d| d.input_length)
            .or(self.prompt_tokens)
            .unwrap_or(0);
        let completion = details
            .and_then(|d| d.generated_tokens)
            .unwrap_or(self.tokens);
        out.usage(self.head(), Usage::new(prompt, completion));
        Step::Done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value as Json};

    fn fixture(name: &str) -> String {
        let path = format!(
            "{}/tests/fixtures/huggingface/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(path).unwrap()
    }

    /// Feeds every `data:` line of a recorded stream; returns the chunks and the last step.
    fn run(sse: &str, prompt_tokens: Option<u64>) -> (Vec<Json>, Step) {
        let mut t = HuggingFaceStream::new(
            "chatcmpl-0123".into(),
            "meta-llama/Meta-Llama-3-8B-Instruct",
            1_700_000_000,
            prompt_tokens,
        );
        let mut out = Chunks::default();
        let mut step = Step::More;
        for line in sse.lines() {
            if let Some(data) = line.strip_prefix("data:") {
                step = t.event(data.trim_start().as_bytes(), &mut out);
                if step != Step::More {
                    break;
                }
            }
        }
        (out.json(), step)
    }

    #[test]
    fn a_recorded_stream_gives_the_recorded_chunks() {
        let (chunks, step) = run(&fixture("stream_generate.sse"), Some(99));
        assert_eq!(step, Step::Done);
        let expected: Vec<Json> = fixture("stream_generate.openai.jsonl")
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(chunks, expected);
    }

    #[test]
    fn without_details_the_tokens_are_counted_and_the_prompt_is_the_gateways_count() {
        let sse = "data:{\"token\":{\"id\":1,\"text\":\"Hi\",\"logprob\":-0.1,\"special\":false},\"generated_text\":null,\"details\":null}\n\n\
                   data:{\"token\":{\"id\":2,\"text\":\"</s>\",\"logprob\":0.0,\"special\":true},\"generated_text\":\"Hi\",\"details\":null}\n\n";
        let (chunks, step) = run(sse, Some(12));
        assert_eq!(step, Step::Done);
        let text: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(text, "Hi");
        assert_eq!(
            chunks[chunks.len() - 2]["choices"][0]["finish_reason"],
            "stop"
        );
        assert_eq!(
            chunks.last().unwrap()["usage"],
            json!({"prompt_tokens": 12, "completion_tokens": 2, "total_tokens": 14})
        );
    }

    #[test]
    fn an_error_event_fails_the_stream() {
        let (_, step) = run(
            "data:{\"error\":\"Request failed during generation: Server error: CUDA out of memory\",\"error_type\":\"generation\"}\n\n",
            None,
        );
        assert_eq!(
            step,
            Step::Failed {
                kind: "generation".into(),
                message: "Request failed during generation: Server error: CUDA out of memory"
                    .into()
            }
        );
    }
}
