//! Provider adapters: how a request reaches each upstream and how its reply comes back.

pub mod anthropic;
pub mod bedrock;
pub mod chunks;
pub mod client;
pub mod cohere;
pub mod curl;
mod error;
pub mod files;
pub mod gemini;
pub mod huggingface;
pub mod kind;
pub mod media;
pub mod mock;
pub mod ollama;
pub mod request;
pub mod stream;
pub mod translate;
pub mod vertex_ai;

use serde::{Deserialize, Serialize};

pub use error::{ErrorKind, ProviderError};
pub use kind::ProviderKind;

/// The OpenAI (and Cohere rerank) operations the gateway serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `/chat/completions`.
    Chat,
    /// `/completions`.
    Completion,
    /// `/embeddings`.
    Embedding,
    /// `/images/generations`.
    ImageGeneration,
    /// `/audio/speech`: JSON in, audio out.
    Speech,
    /// `/audio/transcriptions`: a multipart upload in.
    Transcription,
    /// `/audio/translations`: a multipart upload in.
    Translation,
    /// `/moderations`.
    Moderation,
    /// `/rerank`: Cohere's rerank format.
    Rerank,
    /// `/responses`: passed through where the provider has the Responses API, else served as
    /// chat (see `crate::responses`).
    Responses,
}

impl Operation {
    /// The OpenAI route for this operation.
    pub fn route(self) -> &'static str {
        match self {
            Self::Chat => "/chat/completions",
            Self::Completion => "/completions",
            Self::Embedding => "/embeddings",
            Self::ImageGeneration => "/images/generations",
            Self::Speech => "/audio/speech",
            Self::Transcription => "/audio/transcriptions",
            Self::Translation => "/audio/translations",
            Self::Moderation => "/moderations",
            Self::Rerank => "/rerank",
            Self::Responses => "/responses",
        }
    }

    /// Images, audio, moderations and rerank: built, sent and priced by [`media`], not
    /// translated into chat.
    pub fn is_media(self) -> bool {
        !matches!(
            self,
            Self::Chat | Self::Completion | Self::Embedding | Self::Responses
        )
    }

    /// Whether the request arrives as `multipart/form-data` (an audio upload).
    pub fn takes_form(self) -> bool {
        matches!(self, Self::Transcription | Self::Translation)
    }
}

/// Token counts of one call, as OpenAI reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens in the prompt.
    #[serde(default)]
    pub prompt_tokens: u64,
    /// Tokens generated.
    #[serde(default)]
    pub completion_tokens: u64,
    /// Their sum.
    #[serde(default)]
    pub total_tokens: u64,
}

impl Usage {
    /// Usage from prompt and completion counts.
    pub fn new(prompt_tokens: u64, completion_tokens: u64) -> Self {
        Self {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
        }
    }
}

/// Extracts `usage` from a reply body without building the whole JSON tree.
pub fn usage_of(body: &[u8]) -> Option<Usage> {
    #[derive(Deserialize)]
    struct UsageOnly {
        usage: Option<Usage>,
    }
    serde_json::from_slice::<UsageOnly>(body)
        .ok()
        .and_then(|u| u.usage)
}

/// A random (version 4) UUID from the process's fast generator: ids for translated replies and
/// tool calls, made without a system call.
pub fn random_uuid() -> uuid::Uuid {
    uuid::Builder::from_random_bytes(fastrand::u128(..).to_le_bytes()).into_uuid()
}

/// Seconds since the epoch, for the `created` of translated replies.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What a reply's translation needs to know of the call it answers.
pub struct ReplyOf<'a> {
    /// Chat, completion (already chat on the wire) or embedding.
    pub op: Operation,
    /// The model the deployment called.
    pub model: &'a str,
    /// The request's fields, for what the provider does not report (embedding tokens).
    pub fields: &'a serde_json::Map<String, serde_json::Value>,
    /// The prompt's tokens when the gateway wrote the prompt (TGI's `generate` reports none).
    pub prompt_tokens: Option<u64>,
}

/// A whole reply in the provider's format, as OpenAI's.
pub fn openai_reply(
    provider: ProviderKind,
    of: &ReplyOf<'_>,
    body: bytes::Bytes,
) -> Result<bytes::Bytes, ProviderError> {
    let unreadable = |e: serde_json::Error| {
        ProviderError::connection(provider, format!("unreadable reply: {e}"))
    };
    match provider {
        ProviderKind::Anthropic(_) => anthropic::reply::chat_completion(&body, unix_now())
            .map(bytes::Bytes::from)
            .map_err(unreadable),
        // One view reads chat, generate and embed replies: which fields are set tells them apart.
        ProviderKind::Ollama(_) => {
            ollama::reply::openai(&body, &ollama::completion_id(), unix_now())
                .map(bytes::Bytes::from)
                .map_err(unreadable)
        }
        ProviderKind::Gemini(_) => {
            let reply = if of.op == Operation::Embedding {
                // Gemini reports no tokens for embeddings: they are counted here.
                let tokens = match of.fields.get("input") {
                    Some(serde_json::Value::String(s)) => crate::tokens::count(s),
                    Some(serde_json::Value::Array(items)) => items
                        .iter()
                        .filter_map(serde_json::Value::as_str)
                        .map(crate::tokens::count)
                        .sum(),
                    _ => 0,
                };
                gemini::reply::embeddings(&body, of.model, tokens)
                    .and_then(|v| serde_json::to_vec(&v))
            } else {
                gemini::reply::chat_completion(&body, of.model, unix_now())
            };
            reply.map(bytes::Bytes::from).map_err(unreadable)
        }
        ProviderKind::Cohere(_) => if of.op == Operation::Embedding {
            cohere::reply::embeddings(&body, of.model, of.fields)
        } else {
            cohere::reply::chat_completion(&body, of.model, unix_now())
        }
        .map(bytes::Bytes::from)
        .map_err(unreadable),
        ProviderKind::Bedrock(_) => if of.op == Operation::Embedding {
            bedrock::reply::embeddings(&body, of.model, of.fields)
        } else {
            bedrock::reply::chat_completion(&body, of.model, unix_now())
        }
        .and_then(|v| serde_json::to_vec(&v))
        .map(bytes::Bytes::from)
        .map_err(unreadable),
        ProviderKind::VertexAi(_) => vertex_ai::openai_reply(of.op, of.model, &body)
            .map(bytes::Bytes::from)
            .map_err(unreadable),
        ProviderKind::HuggingFace(_, huggingface::Api::Generate) => {
            let prompt_tokens = of
                .prompt_tokens
                .unwrap_or_else(|| crate::tokens::prompt_tokens(of.fields));
            let id = huggingface::completion_id();
            huggingface::reply::openai(&body, &id, of.model, unix_now(), prompt_tokens)
                .map(bytes::Bytes::from)
                .map_err(unreadable)
        }
        // Relayed as it came, once it is known to be JSON: garbage with a 200 is a bad reply.
        _ => serde_json::from_slice::<serde::de::IgnoredAny>(&body)
            .map(|_| body)
            .map_err(unreadable),
    }
}
