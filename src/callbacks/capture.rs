//! `CallLog`: what one request carries for the logging callbacks until it ends (the key's
//! name, its prompt and reply when message logging is on, why it failed), turned into a
//! `CallEvent` from the request's spend-log row.

use serde_json::{json, Map, Value as Json};

use super::event::{CallError, CallEvent, Outcome};
use super::Callbacks;
use crate::db::models::{KeyRow, SpendLogRow};
use crate::providers::Operation;

/// One request's part of the callbacks; exists only when a callback is on.
#[derive(Debug)]
pub struct CallLog {
    feed: Callbacks,
    call_type: &'static str,
    stream: bool,
    alias: Option<String>,
    user_id: Option<String>,
    team_id: Option<String>,
    messages: Option<Json>,
    response: Option<Json>,
    error: Option<CallError>,
}

/// LiteLLM's call type for an operation served by the proxy (its async entry points).
pub fn call_type(op: Operation) -> &'static str {
    match op {
        Operation::Chat => "acompletion",
        Operation::Completion => "atext_completion",
        Operation::Embedding => "aembedding",
        Operation::ImageGeneration => "aimage_generation",
        Operation::Speech => "aspeech",
        Operation::Transcription => "atranscription",
        Operation::Translation => "atranslation",
        Operation::Moderation => "amoderation",
        Operation::Rerank => "arerank",
        Operation::Responses => "aresponses",
    }
}

impl CallLog {
    /// The log of a request for `op` with these `fields`, or `None` when no callback is on.
    /// The prompt is copied only when message logging is on.
    pub fn start(
        feed: &Callbacks,
        op: Operation,
        stream: bool,
        fields: &Map<String, Json>,
    ) -> Option<Box<Self>> {
        if !feed.is_on() {
            return None;
        }
        let prompt_field = match op {
            Operation::Chat => "messages",
            Operation::Completion => "prompt",
            Operation::Embedding
            | Operation::Speech
            | Operation::Moderation
            | Operation::Responses => "input",
            Operation::ImageGeneration | Operation::Transcription | Operation::Translation => {
                "prompt"
            }
            Operation::Rerank => "query",
        };
        let messages = if feed.logs_messages() {
            fields.get(prompt_field).cloned()
        } else {
            None
        };
        Some(Box::new(Self {
            feed: feed.clone(),
            call_type: call_type(op),
            stream,
            alias: None,
            user_id: None,
            team_id: None,
            messages,
            response: None,
            error: None,
        }))
    }

    /// Notes the caller's key (its name and owners, never the key).
    pub fn key(&mut self, row: &KeyRow) {
        self.alias.clone_from(&row.key_alias);
        self.user_id.clone_from(&row.user_id);
        self.team_id.clone_from(&row.team_id);
    }

    /// Whether the reply is wanted (message logging on; embeddings' vectors are never kept).
    pub fn wants_reply(&self) -> bool {
        self.feed.logs_messages() && self.call_type != "aembedding"
    }

    /// Keeps the reply.
    pub fn reply(&mut self, reply: Json) {
        self.response = Some(reply);
    }

    /// Notes why the request failed (the last reason noted wins).
    pub fn failed(&mut self, error: CallError) {
        self.error = Some(error);
    }

    /// Hands the finished request, whose spend-log row is `row`, to the callbacks that take
    /// its outcome (never waits).
    pub fn finish(self: Box<Self>, row: &SpendLogRow) {
        let outcome = if row.status == "success" {
            Outcome::Success
        } else {
            Outcome::Failure
        };
        if !self.feed.takes(outcome) {
            return;
        }
        let log = *self;
        let mut event = CallEvent::from_row(row, outcome, log.call_type);
        event.stream = log.stream;
        event.key.alias = log.alias;
        event.key.user_id = log.user_id;
        event.key.team_id = log.team_id;
        event.error = match outcome {
            Outcome::Success => None,
            Outcome::Failure => log.error,
        };
        event.messages = log.messages;
        event.response = log.response;
        log.feed.record(event);
    }
}

/// A streamed reply's text as a chat completion, for the callbacks.
pub fn streamed_reply(model: &str, text: &str) -> Json {
    json!({
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
    })
}
