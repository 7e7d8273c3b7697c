//! Gemini's streamed `GenerateContentResponse` chunks (`streamGenerateContent?alt=sse`) as
//! OpenAI chat chunks: text, thought and function-call deltas, the finish reason and usage.

use crate::providers::chunks::{Chunks, Head, ToolCallDelta};
use serde_json::value::RawValue;

use super::reply::{finish_reason, Response, UsageMetadata};
use crate::providers::stream::Step;

/// The translation state of one stream.
#[derive(Debug, Default)]
pub struct GeminiStream {
    id: String,
    model: String,
    created: u64,
    started: bool,
    tool_calls: usize,
    usage: Option<UsageMetadata>,
}

impl GeminiStream {
    /// A translator for `model`'s stream, stamping its chunks `created`.
    pub fn new(model: &str, created: u64) -> Self {
        Self {
            id: format!("chatcmpl-{}", crate::providers::random_uuid()),
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

    /// Translates one chunk's `data`, appending the OpenAI chunks it makes to `out`. Gemini
    /// has no end event: the stream ends with the upstream's body, after a finish reason.
    pub fn event(&mut self, data: &[u8], out: &mut Chunks) -> Step {
        let Ok(r) = serde_json::from_slice::<Response<'_>>(data) else {
            return Step::More;
        };
        if let Some(e) = &r.error {
            return Step::Failed {
                kind: e["status"].as_str().unwrap_or("api_error").to_owned(),
                message: e["message"]
                    .as_str()
                    .unwrap_or("the stream failed")
                    .to_owned(),
            };
        }
        if let Some(v) = r.model_version.as_deref().filter(|v| *v != self.model) {
            self.model = v.to_owned();
        }
        if !self.started {
            self.started = true;
            out.role(self.head());
        }
        if r.usage.is_some() {
            self.usage = r.usage;
        }
        let mut finish = None;
        for c in r.candidates.iter().filter(|c| c.index == 0) {
            for part in c.content.iter().flat_map(|c| &c.parts) {
                if let Some(f) = &part.function_call {
                    // Gemini gives calls no id: one is made.
                    let id = format!("call_{}", crate::providers::random_uuid().simple());
                    let call = ToolCallDelta {
                        index: self.tool_calls,
                        id: Some(&id),
                        name: Some(&f.name),
                        arguments: f.args.map_or("{}", RawValue::get),
                    };
                    self.tool_calls += 1;
                    out.tool_call(self.head(), call);
                } else if let Some(t) = part.text.as_deref().filter(|t| !t.is_empty()) {
                    if part.thought {
                        out.reasoning(self.head(), t);
                    } else {
                        out.content(self.head(), t);
                    }
                }
            }
            if let Some(reason) = c.finish_reason.as_deref() {
                finish = Some(finish_reason(reason, self.tool_calls > 0));
            }
        }
        if r.candidates.is_empty() && r.prompt_feedback.is_some() {
            finish = Some("content_filter");
        }
        if let Some(reason) = finish {
            out.finish(self.head(), reason);
            out.usage(self.head(), self.usage.unwrap_or_default().openai());
        }
        Step::More
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value as Json};

    fn fixture(name: &str) -> String {
        let path = format!(
            "{}/tests/fixtures/gemini/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn a_recorded_stream_gives_the_recorded_chunks() {
        let mut t = GeminiStream::new("gemini-2.5-flash", 1_700_000_000);
        let mut out = Chunks::default();
        for line in fixture("stream_function_call.sse").lines() {
            if let Some(data) = line.strip_prefix("data: ") {
                assert_eq!(t.event(data.as_bytes(), &mut out), Step::More);
            }
        }
        let mut chunks = out.json();
        for c in &mut chunks {
            c["id"] = json!("chatcmpl-x");
            if let Some(call) = c
                .pointer_mut("/choices/0/delta/tool_calls/0")
                .and_then(Json::as_object_mut)
            {
                assert!(call["id"].as_str().unwrap().starts_with("call_"));
                call.insert("id".into(), json!("call_"));
            }
        }
        let expected: Vec<Json> = fixture("stream_function_call.openai.jsonl")
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(chunks, expected);
    }

    #[test]
    fn an_error_chunk_fails_the_stream() {
        let mut t = GeminiStream::new("g", 0);
        let step = t.event(
            br#"{"error":{"code":429,"message":"Resource exhausted","status":"RESOURCE_EXHAUSTED"}}"#,
            &mut Chunks::default(),
        );
        assert_eq!(
            step,
            Step::Failed {
                kind: "RESOURCE_EXHAUSTED".into(),
                message: "Resource exhausted".into()
            }
        );
    }
}
