//! `CallEvent`: one finished request as the logging callbacks see it, built from its spend-log
//! row plus what only the callbacks need (key alias, error, prompt and reply).

use chrono::{DateTime, Utc};
use serde_json::{Map, Value as Json};

use crate::db::models::SpendLogRow;

/// How the request ended, for the callbacks: which list (`success_callback` or
/// `failure_callback`) hears of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Answered.
    Success,
    /// Failed, or the client left before the reply ended.
    Failure,
}

impl Outcome {
    /// LiteLLM's `status` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq)]
pub struct CallError {
    /// The status the client got.
    pub status: u16,
    /// The error's `type` (`rate_limit_error`, `api_connection_error` ...).
    pub kind: String,
    /// The message the client got.
    pub message: String,
}

/// The message of a failure nobody explained (a client that left mid-reply).
pub const CLIENT_LEFT: &str = "the client disconnected before the reply ended";

/// Who called: the virtual key by hash and name, never the key itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeyInfo {
    /// SHA-256 hex of the key.
    pub hash: Option<String>,
    /// `key_alias`.
    pub alias: Option<String>,
    /// The key's `user_id`.
    pub user_id: Option<String>,
    /// The key's `team_id`.
    pub team_id: Option<String>,
}

/// One finished request.
#[derive(Debug, Clone, PartialEq)]
pub struct CallEvent {
    /// The call id.
    pub id: String,
    /// LiteLLM's call type (`acompletion`, `atext_completion`, `aembedding`).
    pub call_type: &'static str,
    /// Whether the reply was streamed.
    pub stream: bool,
    /// The upstream model.
    pub model: String,
    /// The public model group.
    pub model_group: String,
    /// The deployment's id.
    pub model_id: String,
    /// The deployment's API base, without credentials.
    pub api_base: String,
    /// The provider.
    pub provider: String,
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
    /// Total tokens.
    pub total_tokens: u64,
    /// USD.
    pub cost: f64,
    /// When it began.
    pub start: DateTime<Utc>,
    /// When it ended.
    pub end: DateTime<Utc>,
    /// Success or failure.
    pub outcome: Outcome,
    /// Why it failed.
    pub error: Option<CallError>,
    /// Answered from the response cache.
    pub cache_hit: bool,
    /// The caller's key.
    pub key: KeyInfo,
    /// The request's `user`.
    pub end_user: Option<String>,
    /// The request's `metadata`.
    pub metadata: Map<String, Json>,
    /// The prompt (messages, prompt or input), when message logging is on.
    pub messages: Option<Json>,
    /// The reply, when message logging is on.
    pub response: Option<Json>,
}

impl CallEvent {
    /// The event of the request whose spend-log row is `row`.
    pub fn from_row(row: &SpendLogRow, outcome: Outcome, call_type: &'static str) -> Self {
        let metadata = match serde_json::from_str::<Json>(&row.metadata) {
            Ok(Json::Object(m)) => m,
            _ => Map::new(),
        };
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        Self {
            id: row.request_id.clone(),
            call_type,
            stream: false,
            model: row.model.clone(),
            model_group: row.model_group.clone(),
            model_id: row.model_id.clone(),
            api_base: row.api_base.clone(),
            provider: row.provider.clone(),
            prompt_tokens: count(row.prompt_tokens),
            completion_tokens: count(row.completion_tokens),
            total_tokens: count(row.total_tokens),
            cost: row.spend,
            start: row.start_time.and_utc(),
            end: row.end_time.and_utc(),
            outcome,
            error: None,
            cache_hit: row.cache_hit,
            key: KeyInfo {
                hash: Some(row.api_key.clone()).filter(|k| !k.is_empty()),
                ..KeyInfo::default()
            },
            end_user: row.end_user.clone(),
            metadata,
            messages: None,
            response: None,
        }
    }

    /// Seconds from start to end.
    pub fn latency_secs(&self) -> f64 {
        (self.end - self.start).num_microseconds().unwrap_or(0) as f64 / 1e6
    }

    /// A string field of the request's metadata.
    pub fn meta_str(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).and_then(Json::as_str)
    }

    /// The request's `metadata.tags`, when a list of strings.
    pub fn tags(&self) -> Vec<Json> {
        self.metadata
            .get("tags")
            .and_then(Json::as_array)
            .map(|t| t.iter().filter(|v| v.is_string()).cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
pub(super) mod sample {
    //! Events for the payload tests.

    use chrono::TimeZone;
    use serde_json::json;

    use super::*;

    /// A chat request that succeeded.
    pub fn success() -> CallEvent {
        let start = Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap();
        CallEvent {
            id: "call-1".into(),
            call_type: "acompletion",
            stream: false,
            model: "gpt-4o-mini".into(),
            model_group: "gpt-4o".into(),
            model_id: "dep-1".into(),
            api_base: "https://api.openai.com/v1".into(),
            provider: "openai".into(),
            prompt_tokens: 7,
            completion_tokens: 3,
            total_tokens: 10,
            cost: 0.0025,
            start,
            end: start + chrono::Duration::milliseconds(1500),
            outcome: Outcome::Success,
            error: None,
            cache_hit: false,
            key: KeyInfo {
                hash: Some("abc123".into()),
                alias: Some("team-a-key".into()),
                user_id: Some("owner-1".into()),
                team_id: None,
            },
            end_user: Some("end-user-9".into()),
            metadata: json!({"tags": ["prod", 3], "session_id": "s-1"})
                .as_object()
                .cloned()
                .unwrap(),
            messages: Some(json!([{"role": "user", "content": "hello there"}])),
            response: Some(json!({"object": "chat.completion", "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "general kenobi"}}
            ]})),
        }
    }

    /// The same request failing upstream.
    pub fn failure() -> CallEvent {
        CallEvent {
            outcome: Outcome::Failure,
            error: Some(CallError {
                status: 500,
                kind: "internal_server_error".into(),
                message: "upstream exploded".into(),
            }),
            prompt_tokens: 0,
            completion_tokens: 0,
            total_tokens: 0,
            cost: 0.0,
            response: None,
            ..success()
        }
    }
}
