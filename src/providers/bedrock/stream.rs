//! Bedrock's ConverseStream (`application/vnd.amazon.eventstream`) as OpenAI chat chunks:
//! binary frames decoded with `aws-smithy-eventstream`, then each event (text, reasoning and
//! tool-input deltas, tool-use starts, the stop reason, usage) translated.

use crate::providers::chunks::{Chunks, Head, ToolCallDelta};
use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use aws_smithy_types::event_stream::{HeaderValue, Message};
use bytes::BytesMut;
use serde::Deserialize;
use serde_json::Value as Json;

use super::reply::{finish_reason, TokenUsage};
use crate::providers::stream::{Step, MAX_EVENT};

/// The bytes of a frame's prelude: total length, headers length, prelude CRC.
const PRELUDE: usize = 12;

/// The translation state of one stream: the frame decoder, its unread bytes, and the tool
/// calls seen so far.
#[derive(Debug, Default)]
pub struct BedrockStream {
    id: String,
    model: String,
    created: u64,
    decoder: MessageFrameDecoder,
    buffer: BytesMut,
    /// The decoder has read the next frame's prelude (taken off `buffer`).
    mid_frame: bool,
    /// `contentBlockIndex` of each tool call, in OpenAI's order.
    tool_blocks: Vec<u64>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Event {
    content_block_index: u64,
    start: Option<Json>,
    delta: Option<Json>,
    stop_reason: Option<String>,
    usage: Option<TokenUsage>,
    message: Option<String>,
}

fn header<'m>(message: &'m Message, name: &str) -> Option<&'m str> {
    message
        .headers()
        .iter()
        .find(|h| h.name().as_str() == name)
        .and_then(|h| match h.value() {
            HeaderValue::String(s) => Some(s.as_str()),
            _ => None,
        })
}

impl BedrockStream {
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

    /// Takes the next `bytes` of the body and translates every frame they complete, appending
    /// the OpenAI chunks to `out`; a frame may span any number of reads.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Chunks) -> Step {
        self.buffer.extend_from_slice(bytes);
        loop {
            // A frame declaring more than the cap is refused before it is buffered.
            // (Once its prelude is read, a frame's bytes never outgrow what it declared.)
            let declared = match self.buffer.get(..4) {
                Some(&[a, b, c, d]) if !self.mid_frame => u32::from_be_bytes([a, b, c, d]) as usize,
                _ => 0,
            };
            if declared > MAX_EVENT {
                return Step::Failed {
                    kind: "api_error".into(),
                    message: format!("an event stream frame longer than {MAX_EVENT} bytes"),
                };
            }
            let prelude_unread = !self.mid_frame && self.buffer.len() >= PRELUDE;
            let message = match self.decoder.decode_frame(&mut self.buffer) {
                Ok(DecodedFrame::Complete(m)) => {
                    self.mid_frame = false;
                    m
                }
                Ok(DecodedFrame::Incomplete) => {
                    self.mid_frame |= prelude_unread;
                    return Step::More;
                }
                Err(e) => {
                    return Step::Failed {
                        kind: "api_error".into(),
                        message: format!("unreadable event stream: {e}"),
                    }
                }
            };
            let step = match header(&message, ":message-type") {
                Some("exception") | Some("error") => {
                    let kind = header(&message, ":exception-type")
                        .or_else(|| header(&message, ":error-code"))
                        .unwrap_or("api_error");
                    let event: Event =
                        serde_json::from_slice(message.payload()).unwrap_or_default();
                    let text = event
                        .message
                        .as_deref()
                        .or_else(|| header(&message, ":error-message"))
                        .unwrap_or("the stream failed");
                    Step::Failed {
                        kind: kind.to_owned(),
                        message: text.to_owned(),
                    }
                }
                _ => {
                    let kind = header(&message, ":event-type").unwrap_or_default();
                    self.event(kind, message.payload(), out)
                }
            };
            if step != Step::More {
                return step;
            }
        }
    }

    /// Translates one event of type `kind` with its JSON `payload`, appending the OpenAI
    /// chunks it makes to `out`. The stream is done after `metadata` (its usage).
    pub fn event(&mut self, kind: &str, payload: &[u8], out: &mut Chunks) -> Step {
        let e: Event = serde_json::from_slice(payload).unwrap_or_default();
        match kind {
            "messageStart" => {
                out.role(self.head());
            }
            "contentBlockStart" => {
                if let Some(tool) = e.start.as_ref().and_then(|s| s.get("toolUse")) {
                    let index = self.tool_blocks.len();
                    self.tool_blocks.push(e.content_block_index);
                    let call = ToolCallDelta {
                        index,
                        id: Some(tool["toolUseId"].as_str().unwrap_or_default()),
                        name: Some(tool["name"].as_str().unwrap_or_default()),
                        arguments: "",
                    };
                    out.tool_call(self.head(), call);
                }
            }
            "contentBlockDelta" => {
                let delta = e.delta.unwrap_or_default();
                if let Some(t) = delta["text"].as_str() {
                    out.content(self.head(), t);
                } else if let Some(t) = delta["reasoningContent"]["text"].as_str() {
                    out.reasoning(self.head(), t);
                } else if let Some(input) = delta["toolUse"]["input"].as_str() {
                    let index = self
                        .tool_blocks
                        .iter()
                        .position(|b| *b == e.content_block_index)
                        .unwrap_or(self.tool_blocks.len().saturating_sub(1));
                    let call = ToolCallDelta {
                        index,
                        arguments: input,
                        ..ToolCallDelta::default()
                    };
                    out.tool_call(self.head(), call);
                }
            }
            "messageStop" => {
                let reason = finish_reason(e.stop_reason.as_deref().unwrap_or("end_turn"));
                out.finish(self.head(), reason);
            }
            "metadata" => {
                out.usage(self.head(), e.usage.unwrap_or_default().openai());
                return Step::Done;
            }
            _ => {}
        }
        Step::More
    }
}

/// Test support: frames built with the crate's encoder from recorded `(event-type, payload)`
/// pairs, as Bedrock sends them.
#[cfg(test)]
pub(crate) fn encode_events(events: &[(String, Json)]) -> Vec<u8> {
    use aws_smithy_types::event_stream::Header;
    let mut out = Vec::new();
    for (kind, payload) in events {
        let message = Message::new(serde_json::to_vec(payload).unwrap())
            .add_header(Header::new(
                ":event-type",
                HeaderValue::String(kind.clone().into()),
            ))
            .add_header(Header::new(
                ":message-type",
                HeaderValue::String("event".into()),
            ))
            .add_header(Header::new(
                ":content-type",
                HeaderValue::String("application/json".into()),
            ));
        aws_smithy_eventstream::frame::write_message_to(&message, &mut out).unwrap();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fixture(name: &str) -> Json {
        let path = format!(
            "{}/tests/fixtures/bedrock/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn recorded() -> (Vec<(String, Json)>, Vec<Json>) {
        let case = fixture("stream_tool_use.json");
        let events = case["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e[0].as_str().unwrap().to_owned(), e[1].clone()))
            .collect();
        (events, case["openai"].as_array().unwrap().clone())
    }

    #[test]
    fn a_frame_declaring_more_than_the_cap_fails_before_it_is_buffered() {
        let mut stream = BedrockStream::new("m", 1);
        let mut out = Chunks::default();
        let huge = u32::try_from(MAX_EVENT + 1).unwrap().to_be_bytes();
        let step = stream.feed(&[huge.as_slice(), &[0; 8]].concat(), &mut out);
        assert!(matches!(step, Step::Failed { .. }), "{step:?}");
    }

    #[test]
    fn a_recorded_stream_split_anywhere_gives_the_recorded_chunks() {
        let (events, expected) = recorded();
        let bytes = encode_events(&events);
        for size in [1, 7, bytes.len()] {
            let mut t = BedrockStream::new("anthropic.claude-3-haiku", 1_700_000_000);
            let mut out = Chunks::default();
            let mut last = Step::More;
            for piece in bytes.chunks(size) {
                assert_eq!(last, Step::More);
                last = t.feed(piece, &mut out);
            }
            assert_eq!(last, Step::Done);
            let mut chunks = out.json();
            for c in &mut chunks {
                c["id"] = json!("chatcmpl-x");
            }
            assert_eq!(chunks, expected, "read {size} bytes at a time");
        }
    }

    #[test]
    fn an_exception_frame_fails_the_stream() {
        use aws_smithy_types::event_stream::Header;
        let message = Message::new(&br#"{"message":"Too many requests"}"#[..])
            .add_header(Header::new(
                ":message-type",
                HeaderValue::String("exception".into()),
            ))
            .add_header(Header::new(
                ":exception-type",
                HeaderValue::String("throttlingException".into()),
            ));
        let mut bytes = Vec::new();
        aws_smithy_eventstream::frame::write_message_to(&message, &mut bytes).unwrap();
        let step = BedrockStream::new("m", 0).feed(&bytes, &mut Chunks::default());
        assert_eq!(
            step,
            Step::Failed {
                kind: "throttlingException".into(),
                message: "Too many requests".into()
            }
        );
    }
}
