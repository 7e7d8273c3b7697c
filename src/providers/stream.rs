//! The stream relay: upstream events (SSE, or NDJSON lines) forwarded one by one as OpenAI
//! chunks as they arrive, usage captured on the way.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_rt::time::{sleep, Sleep};
use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use serde::Deserialize;
use serde_json::Value as Json;

use super::anthropic::stream::AnthropicStream;
use super::bedrock::stream::BedrockStream;
use super::chunks::Chunks;
use super::client::UpstreamBody;
use super::cohere::stream::CohereStream;
use super::gemini::stream::GeminiStream;
use super::huggingface::{self, stream::HuggingFaceStream};
use super::ollama::stream::OllamaStream;
use super::request::Reshape;
use super::{translate, ProviderError, ProviderKind, Usage};
use crate::actors::{Charge, Durable, Lease};
use crate::pricing::{self, Price};

const DONE: &[u8] = b"data: [DONE]\n\n";

/// The longest upstream line (or Bedrock frame) held while waiting for its end: past it the
/// stream fails, so an upstream that never ends a line cannot grow the gateway's memory.
pub const MAX_EVENT: usize = 1024 * 1024;

/// What one upstream event asks of the relay, as a stream translator reads it.
#[derive(Debug, PartialEq)]
pub enum Step {
    /// Keep reading.
    More,
    /// The reply is complete.
    Done,
    /// The upstream reported a failure mid-stream: its error type and message.
    Failed {
        /// The upstream's error type (`overloaded_error`, `api_error` ...).
        kind: String,
        /// Its message.
        message: String,
    },
}

/// The event format the upstream streams in.
pub enum Dialect {
    /// OpenAI chunks, relayed as they are.
    OpenAi,
    /// Anthropic's events, translated into OpenAI chunks.
    Anthropic(Box<AnthropicStream>),
    /// Ollama's newline-delimited JSON, translated into OpenAI chunks.
    Ollama(Box<OllamaStream>),
    /// Gemini's SSE chunks, translated into OpenAI chunks.
    Gemini(Box<GeminiStream>),
    /// Bedrock's binary ConverseStream frames, decoded and translated into OpenAI chunks.
    Bedrock(Box<BedrockStream>),
    /// Cohere's v2 SSE events, translated into OpenAI chunks.
    Cohere(Box<CohereStream>),
    /// TGI's `generate_stream` events, translated into OpenAI chunks.
    HuggingFace(Box<HuggingFaceStream>),
    /// Events relayed as the upstream wrote them (the Responses API), read on the way.
    Passthrough(Box<dyn Passthrough>),
}

/// What a [`Passthrough`] reader learned from one upstream line.
#[derive(Debug)]
pub struct Seen {
    /// What the relay does next.
    pub step: Step,
    /// The call's usage, once the upstream reported it.
    pub usage: Option<Usage>,
    /// The line carried generated output (the first such line is the first token).
    pub output: bool,
}

impl Seen {
    /// Nothing learned: keep reading.
    pub fn more() -> Self {
        Self {
            step: Step::More,
            usage: None,
            output: false,
        }
    }
}

/// Reads an upstream stream that is relayed in its own format: what goes to the client, and
/// what the stream says of its usage and its end.
pub trait Passthrough {
    /// One upstream line, its end trimmed: events for the client go to `out`, generated text
    /// to `text` (counted when the upstream reports no usage).
    fn line(&mut self, line: &[u8], out: &mut VecDeque<Bytes>, text: &mut String) -> Seen;
    /// The stream's last event, sent once its spend is durable; `cost` is the call's price.
    fn ending(&mut self, cost: f64) -> Bytes;
    /// The in-band event for the error `body` (the contract's error body); empty when the
    /// upstream's own failure event already went out.
    fn error(&mut self, body: &Json) -> Bytes;
}

impl Dialect {
    /// The dialect `provider` streams `model`'s reply in; `prompt_tokens` counts the prompt
    /// when the gateway wrote it, for an upstream that may not report it.
    pub fn of(provider: ProviderKind, model: &str, prompt_tokens: Option<u64>) -> Self {
        match provider {
            ProviderKind::HuggingFace(_, huggingface::Api::Generate) => {
                Self::HuggingFace(Box::new(HuggingFaceStream::new(
                    huggingface::completion_id(),
                    model,
                    super::unix_now(),
                    prompt_tokens,
                )))
            }
            ProviderKind::Gemini(_) => {
                Self::Gemini(Box::new(GeminiStream::new(model, super::unix_now())))
            }
            ProviderKind::VertexAi(_) => match super::vertex_ai::Family::of(model) {
                super::vertex_ai::Family::Gemini => {
                    Self::Gemini(Box::new(GeminiStream::new(model, super::unix_now())))
                }
                super::vertex_ai::Family::Anthropic => {
                    Self::Anthropic(Box::new(AnthropicStream::new(super::unix_now())))
                }
            },
            ProviderKind::Cohere(_) => {
                Self::Cohere(Box::new(CohereStream::new(model, super::unix_now())))
            }
            ProviderKind::Bedrock(_) => {
                Self::Bedrock(Box::new(BedrockStream::new(model, super::unix_now())))
            }
            ProviderKind::Anthropic(_) => {
                Self::Anthropic(Box::new(AnthropicStream::new(super::unix_now())))
            }
            ProviderKind::Ollama(_) => Self::Ollama(Box::new(OllamaStream::new(
                super::ollama::completion_id(),
                super::unix_now(),
            ))),
            _ => Self::OpenAi,
        }
    }

    /// Whether each line is a whole JSON event (NDJSON) rather than an SSE field.
    pub fn bare_json_lines(&self) -> bool {
        matches!(self, Self::Ollama(_))
    }
}

/// Sees the chunks a relay sends, to keep the whole reply once the stream ends well (the
/// response cache). It runs after each chunk is queued for the client and never holds one back.
pub trait StreamTap {
    /// One chunk's JSON, as sent to the client.
    fn chunk(&mut self, data: &[u8]);
    /// The stream ended well, with this usage; a tap dropped without this saw a failure.
    fn finished(self: Box<Self>, usage: Usage);
}

/// What a relay must know about the request it serves.
pub struct RelayOptions {
    /// The client asked for the usage chunk (or `always_include_stream_usage`).
    pub client_wants_usage: bool,
    /// How to reshape each chunk.
    pub reshape: Reshape,
    /// The whole call must end within this (measured from now).
    pub deadline: Duration,
    /// The provider, for error messages.
    pub provider: ProviderKind,
    /// How the upstream's events are read.
    pub dialect: Dialect,
    /// Prompt tokens counted from the request, used when the upstream sends no usage.
    pub prompt_tokens: Box<dyn FnOnce() -> u64>,
    /// Per-token prices, for the cost in the final usage chunk and the charge.
    pub price: Option<Price>,
    /// The request's accounting, spent when the stream ends well.
    pub charge: Option<Charge>,
    /// Sees every chunk sent, when the reply is to be cached.
    pub tap: Option<Box<dyn StreamTap>>,
}

#[derive(Deserialize)]
struct ChunkView<'a> {
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(default)]
    created: Option<u64>,
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    choices: Option<Vec<ChoiceView<'a>>>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct ChoiceView<'a> {
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
}

enum Phase {
    Relaying,
    /// `[DONE]` was sent; the upstream is read to its end so its connection can be reused.
    Draining,
    Finished,
}

/// Relays an upstream SSE stream to the client, holding the deployment's lease until it ends.
pub struct SseRelay {
    upstream: UpstreamBody,
    line: BytesMut,
    out: VecDeque<Bytes>,
    phase: Phase,
    deadline: Pin<Box<Sleep>>,
    deadline_after: Duration,
    client_wants_usage: bool,
    reshape: Reshape,
    provider: ProviderKind,
    dialect: Dialect,
    usage: Option<Usage>,
    saw_finish_reason: bool,
    completion_text: String,
    prompt_tokens: Option<Box<dyn FnOnce() -> u64>>,
    chunk_id: String,
    chunk_model: String,
    chunk_created: u64,
    lease: Option<Lease>,
    price: Option<Price>,
    charge: Option<Charge>,
    tap: Option<Box<dyn StreamTap>>,
    /// The stream is complete: `[DONE]` is sent once this resolves.
    done_after: Option<Durable>,
    /// What is sent last: `[DONE]`, or a passthrough's own last event.
    ending: Bytes,
}

impl SseRelay {
    /// A relay over `upstream`; `lease` is reported when the stream ends or is dropped.
    pub fn new(upstream: UpstreamBody, lease: Lease, options: RelayOptions) -> Self {
        Self {
            upstream,
            line: BytesMut::new(),
            out: VecDeque::new(),
            phase: Phase::Relaying,
            deadline: Box::pin(sleep(options.deadline)),
            deadline_after: options.deadline,
            client_wants_usage: options.client_wants_usage,
            reshape: options.reshape,
            provider: options.provider,
            dialect: options.dialect,
            usage: None,
            saw_finish_reason: false,
            completion_text: String::new(),
            prompt_tokens: Some(options.prompt_tokens),
            chunk_id: String::new(),
            chunk_model: String::new(),
            chunk_created: 0,
            lease: Some(lease),
            price: options.price,
            charge: options.charge,
            tap: options.tap,
            done_after: None,
            ending: Bytes::from_static(DONE),
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        // Bedrock's event stream is binary frames, not lines: its translator frames them.
        if let Dialect::Bedrock(translator) = &mut self.dialect {
            let mut chunks = Chunks::default();
            let step = translator.feed(bytes, &mut chunks);
            self.on_translated(&chunks, step);
            return;
        }
        let mut rest = bytes;
        while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
            let (head, tail) = rest.split_at(pos + 1);
            rest = tail;
            if self.line.is_empty() {
                self.on_line(head);
            } else {
                self.line.extend_from_slice(head);
                let line = std::mem::take(&mut self.line);
                self.on_line(&line);
            }
            if !matches!(self.phase, Phase::Relaying) {
                return;
            }
        }
        self.line.extend_from_slice(rest);
        if self.line.len() > MAX_EVENT {
            self.line = BytesMut::new();
            let err = ProviderError::connection(
                self.provider,
                format!("an upstream stream line longer than {MAX_EVENT} bytes"),
            );
            self.fail(err);
        }
    }

    fn on_line(&mut self, raw: &[u8]) {
        let line = trim_line_end(raw);
        if let Dialect::Passthrough(events) = &mut self.dialect {
            let seen = events.line(line, &mut self.out, &mut self.completion_text);
            if seen.output {
                if let Some(lease) = self.lease.as_mut() {
                    lease.first_token();
                }
            }
            if seen.usage.is_some() {
                self.usage = seen.usage;
            }
            self.on_translated(&Chunks::default(), seen.step);
            return;
        }
        let data = if self.dialect.bare_json_lines() {
            if line.iter().all(u8::is_ascii_whitespace) {
                return;
            }
            line
        } else {
            let Some(data) = line.strip_prefix(b"data:") else {
                return; // blank separators, comments, `event:` and `id:` fields
            };
            data.strip_prefix(b" ").unwrap_or(data)
        };
        let mut chunks = Chunks::default();
        let step = match &mut self.dialect {
            Dialect::OpenAi => {
                if data == b"[DONE]" {
                    self.finish();
                } else {
                    self.on_chunk(data);
                }
                return;
            }
            Dialect::Anthropic(translator) => translator.event(data, &mut chunks),
            Dialect::Ollama(translator) => translator.event(data, &mut chunks),
            Dialect::Gemini(translator) => translator.event(data, &mut chunks),
            Dialect::Cohere(translator) => translator.event(data, &mut chunks),
            Dialect::HuggingFace(translator) => translator.event(data, &mut chunks),
            Dialect::Bedrock(_) | Dialect::Passthrough(_) => return, // framed in `feed`; above
        };
        self.on_translated(&chunks, step);
    }

    /// Relays a translator's chunks, then does what its `step` asks.
    fn on_translated(&mut self, chunks: &Chunks, step: Step) {
        for chunk in chunks.as_slice() {
            self.on_chunk(chunk);
        }
        match step {
            Step::More => {}
            Step::Done => self.finish(),
            Step::Failed { kind, message } => {
                let err = ProviderError {
                    status: if kind == "overloaded_error" { 529 } else { 500 },
                    kind: super::ErrorKind::Status,
                    message: format!(
                        "litellm.APIError: {}Exception - {message}",
                        self.provider.display()
                    ),
                    upstream_type: Some(kind),
                    param: None,
                    retry_after: None,
                };
                self.fail(err);
            }
        }
    }

    fn on_chunk(&mut self, data: &[u8]) {
        let Ok(view) = serde_json::from_slice::<ChunkView<'_>>(data) else {
            // Not a chunk we understand (an upstream error event, say): pass it on untouched.
            self.push_event(data);
            return;
        };
        if self.chunk_id.is_empty() {
            if let Some(lease) = self.lease.as_mut() {
                lease.first_token();
            }
            if let Some(id) = &view.id {
                self.chunk_id = id.to_string();
            }
            if let Some(model) = &view.model {
                self.chunk_model = model.to_string();
            }
            self.chunk_created = view.created.unwrap_or(0);
        }
        for choice in view.choices.iter().flatten() {
            let text = choice
                .delta
                .as_ref()
                .and_then(|d| d.content.as_deref())
                .or(choice.text.as_deref());
            if let Some(t) = text {
                self.completion_text.push_str(t);
            }
            self.saw_finish_reason |= choice.finish_reason.is_some();
        }
        let usage_only = view.choices.as_ref().is_none_or(Vec::is_empty);
        if let Some(u) = view.usage {
            self.usage = Some(u);
            if usage_only && !self.client_wants_usage {
                return;
            }
            if usage_only {
                // The client's usage chunk carries the call's cost, as LiteLLM's does.
                if let Ok(mut value) = serde_json::from_slice::<Json>(data) {
                    value["usage"]["cost"] = Json::from(self.cost(u));
                    if self.reshape == Reshape::CompletionFromChat {
                        value["object"] = Json::from("text_completion");
                    }
                    self.push_json(&value);
                    return;
                }
            }
        }
        match self.reshape {
            Reshape::None => self.push_event(data),
            Reshape::CompletionFromChat | Reshape::ChatFromCompletion => {
                if let Ok(value) = serde_json::from_slice::<Json>(data) {
                    let reshaped = match self.reshape {
                        Reshape::CompletionFromChat => translate::chat_reply_to_completion(&value),
                        _ => translate::completion_reply_to_chat(&value, true),
                    };
                    self.push_json(&reshaped);
                }
            }
        }
    }

    fn push_event(&mut self, data: &[u8]) {
        let mut event = BytesMut::with_capacity(data.len() + 8);
        event.extend_from_slice(b"data: ");
        event.extend_from_slice(data);
        event.extend_from_slice(b"\n\n");
        self.out.push_back(event.freeze());
        if let Some(tap) = self.tap.as_mut() {
            tap.chunk(data);
        }
    }

    fn push_json(&mut self, value: &Json) {
        if let Ok(data) = serde_json::to_vec(value) {
            self.push_event(&data);
        }
    }

    fn cost(&self, usage: Usage) -> f64 {
        self.price.map_or(0.0, |p| {
            pricing::cost(p, usage.prompt_tokens, usage.completion_tokens)
        })
    }

    /// The usage of the call: the upstream's, or counted when it sent none.
    fn final_usage(&mut self) -> Usage {
        if let Some(u) = self.usage {
            return u;
        }
        let prompt = self.prompt_tokens.take().map_or(0, |count| count());
        let usage = Usage::new(prompt, crate::tokens::count(&self.completion_text));
        self.usage = Some(usage);
        usage
    }

    fn finish(&mut self) {
        let upstream_sent_usage = self.usage.is_some();
        let usage = self.final_usage();
        let cost = self.cost(usage);
        if self.client_wants_usage && !upstream_sent_usage {
            let object = match self.reshape {
                Reshape::CompletionFromChat => "text_completion",
                _ => "chat.completion.chunk",
            };
            let mut chunk = serde_json::json!({
                "id": self.chunk_id,
                "object": object,
                "created": self.chunk_created,
                "model": self.chunk_model,
                "choices": [],
                "usage": usage,
            });
            chunk["usage"]["cost"] = Json::from(cost);
            self.push_json(&chunk);
        }
        let durable = self.charge.take().map(|mut charge| {
            if let Some(lease) = &self.lease {
                charge.upstream_took(lease.elapsed());
            }
            charge.capture_reply(|| Some(self.reply_for_callbacks()));
            charge.succeed(usage, cost)
        });
        // `[DONE]` (or a passthrough's own last event) goes out once the stream's spend is in
        // the journal on disk.
        if let Dialect::Passthrough(events) = &mut self.dialect {
            self.ending = events.ending(cost);
        }
        self.done_after = Some(durable.unwrap_or_default());
        if let Some(tap) = self.tap.take() {
            tap.finished(usage);
        }
        if let Some(mut lease) = self.lease.take() {
            lease.succeed(Some(usage));
        }
        self.phase = Phase::Draining;
    }

    /// What was streamed so far, as one reply, for the logging callbacks.
    fn reply_for_callbacks(&self) -> Json {
        crate::callbacks::streamed_reply(&self.chunk_model, &self.completion_text)
    }

    fn fail(&mut self, err: ProviderError) {
        self.tap = None;
        if let Some(charge) = self.charge.as_mut() {
            charge.failed(|| crate::callbacks::CallError {
                status: err.status,
                kind: err.error_type().to_owned(),
                message: err.message.clone(),
            });
        }
        let body = crate::error::ApiError::Provider(err.clone()).body();
        match &mut self.dialect {
            Dialect::Passthrough(events) => {
                let event = events.error(&body);
                if !event.is_empty() {
                    self.out.push_back(event);
                }
            }
            _ => self.push_json(&body),
        }
        if let Some(mut lease) = self.lease.take() {
            lease.fail(&err);
        }
        self.phase = Phase::Finished;
    }
}

fn trim_line_end(raw: &[u8]) -> &[u8] {
    let mut end = raw.len();
    while end > 0 && matches!(raw[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    &raw[..end]
}

impl Drop for SseRelay {
    /// A client that leaves mid-stream is still charged for what the upstream generated so far
    /// (counted, unless the upstream already sent its usage).
    fn drop(&mut self) {
        if let Some(mut charge) = self.charge.take() {
            let usage = self.final_usage();
            let cost = self.cost(usage);
            charge.capture_reply(|| Some(self.reply_for_callbacks()));
            charge.cancelled(usage, cost);
        }
    }
}

impl Stream for SseRelay {
    type Item = Result<Bytes, actix_web::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(bytes) = this.out.pop_front() {
                return Poll::Ready(Some(Ok(bytes)));
            }
            if let Some(durable) = this.done_after.as_mut() {
                if Pin::new(durable).poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.done_after = None;
                if !this.ending.is_empty() {
                    this.out.push_back(this.ending.clone());
                }
                continue;
            }
            match this.phase {
                Phase::Finished => return Poll::Ready(None),
                Phase::Draining => {
                    return match this.upstream.as_mut().poll_next(cx) {
                        Poll::Ready(Some(Ok(_))) => continue,
                        Poll::Ready(Some(Err(_)) | None) => {
                            this.phase = Phase::Finished;
                            Poll::Ready(None)
                        }
                        Poll::Pending => match this.deadline.as_mut().poll(cx) {
                            Poll::Ready(()) => Poll::Ready(None),
                            Poll::Pending => Poll::Pending,
                        },
                    };
                }
                Phase::Relaying => {}
            }
            if this.deadline.as_mut().poll(cx).is_ready() {
                this.fail(ProviderError::timeout(this.provider, this.deadline_after));
                continue;
            }
            match this.upstream.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(bytes))) => this.feed(&bytes),
                Poll::Ready(Some(Err(e))) => {
                    let err = ProviderError::connection(
                        this.provider,
                        format!("stream interrupted: {e}"),
                    );
                    this.fail(err);
                }
                Poll::Ready(None) => {
                    if !this.line.is_empty() {
                        let line = std::mem::take(&mut this.line);
                        this.on_line(&line);
                    }
                    if matches!(this.phase, Phase::Relaying) {
                        if this.saw_finish_reason {
                            // Finished but without `[DONE]`: close the stream properly anyway.
                            this.finish();
                        } else {
                            let err = ProviderError::connection(
                                this.provider,
                                "the upstream stream ended before the reply was complete",
                            );
                            this.fail(err);
                        }
                    }
                    this.phase = Phase::Finished;
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
