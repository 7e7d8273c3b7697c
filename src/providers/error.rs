//! Upstream failures mapped to LiteLLM's exception names, statuses and error types.

use std::time::Duration;

use serde_json::Value as Json;

use super::ProviderKind;
use crate::routing::FailureClass;

/// What went wrong with the upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The upstream answered with an error status.
    Status,
    /// The upstream could not be reached or broke the connection.
    Connection,
    /// The upstream did not answer in time.
    Timeout,
    /// The prompt is longer than the model's context window.
    ContextWindow,
    /// The provider's content filter refused.
    ContentPolicy,
}

/// A failed upstream attempt.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ProviderError {
    /// The status sent to the client.
    pub status: u16,
    /// The kind of failure.
    pub kind: ErrorKind,
    /// LiteLLM-style message, keeping the upstream's own words.
    pub message: String,
    /// The upstream's error type, when it gave one.
    pub upstream_type: Option<String>,
    /// The field at fault, when the upstream named one.
    pub param: Option<String>,
    /// The upstream's `retry-after`.
    pub retry_after: Option<Duration>,
}

fn exception_name(status: u16) -> &'static str {
    match status {
        400 => "BadRequestError",
        401 => "AuthenticationError",
        403 => "PermissionDeniedError",
        404 => "NotFoundError",
        408 => "Timeout",
        422 => "UnprocessableEntityError",
        429 => "RateLimitError",
        500 => "InternalServerError",
        502 => "APIConnectionError",
        503 => "ServiceUnavailableError",
        _ => "APIError",
    }
}

impl ProviderError {
    /// The upstream answered `status` with `body`.
    pub fn upstream(
        provider: ProviderKind,
        status: u16,
        body: &[u8],
        retry_after: Option<Duration>,
    ) -> Self {
        let parsed: Option<Json> = serde_json::from_slice(body).ok();
        let error = parsed.as_ref().map(|j| j.get("error").unwrap_or(j));
        let text = |key: &str| {
            error
                .and_then(|e| e.get(key))
                .and_then(Json::as_str)
                .map(str::to_owned)
        };
        let upstream_message = text("message")
            .or_else(|| error.and_then(Json::as_str).map(str::to_owned))
            .or_else(|| text("detail"))
            .unwrap_or_else(|| {
                String::from_utf8_lossy(body)
                    .trim()
                    .chars()
                    .take(2000)
                    .collect()
            });
        let lowered = upstream_message.to_ascii_lowercase();
        let code = text("code").unwrap_or_default();
        // TGI refuses an over-long prompt with a 422 (`Input validation error: ...`).
        let kind = if (status == 400 || status == 422)
            && (code == "context_length_exceeded"
                || lowered.contains("maximum context length")
                || lowered.contains("context length")
                || lowered.contains("prompt is too long")
                || lowered.contains("exceeds the maximum number of tokens")
                || lowered.contains("too many tokens")
                || lowered.contains("`inputs` tokens + `max_new_tokens` must be <=")
                || lowered.contains("`inputs` must have less than"))
        {
            ErrorKind::ContextWindow
        } else if status == 400 && (code == "content_filter" || code == "content_policy_violation")
        {
            ErrorKind::ContentPolicy
        } else {
            ErrorKind::Status
        };
        let exception = match kind {
            ErrorKind::ContextWindow => "ContextWindowExceededError",
            ErrorKind::ContentPolicy => "ContentPolicyViolationError",
            _ => exception_name(status),
        };
        Self {
            // LiteLLM's `ContextWindowExceededError` is a 400, whatever the upstream sent.
            status: if kind == ErrorKind::ContextWindow {
                400
            } else {
                status
            },
            kind,
            message: format!(
                "litellm.{exception}: {}Exception - {upstream_message}",
                provider.display()
            ),
            upstream_type: text("type"),
            param: text("param"),
            retry_after,
        }
    }

    /// The upstream could not be reached, or dropped the connection.
    pub fn connection(provider: ProviderKind, detail: impl std::fmt::Display) -> Self {
        Self {
            status: 502,
            kind: ErrorKind::Connection,
            message: format!(
                "litellm.APIConnectionError: {}Exception - Connection error: {detail}",
                provider.display()
            ),
            upstream_type: None,
            param: None,
            retry_after: None,
        }
    }

    /// The upstream did not answer within `after`.
    pub fn timeout(provider: ProviderKind, after: Duration) -> Self {
        Self {
            status: 408,
            kind: ErrorKind::Timeout,
            message: format!(
                "litellm.Timeout: {}Exception - Request timed out after {} seconds.",
                provider.display(),
                after.as_secs_f64()
            ),
            upstream_type: None,
            param: None,
            retry_after: None,
        }
    }

    /// The OpenAI error `type` sent to the client.
    pub fn error_type(&self) -> &str {
        if let Some(t) = &self.upstream_type {
            return t;
        }
        match self.kind {
            ErrorKind::Connection => "api_connection_error",
            ErrorKind::Timeout => "timeout",
            ErrorKind::ContextWindow | ErrorKind::ContentPolicy => "invalid_request_error",
            ErrorKind::Status => match self.status {
                400 | 422 => "invalid_request_error",
                401 => "authentication_error",
                403 => "permission_error",
                404 => "not_found_error",
                408 => "timeout",
                429 => "rate_limit_error",
                _ => "api_error",
            },
        }
    }

    /// How this failure counts towards the deployment's cooldown.
    pub fn failure_class(&self) -> FailureClass {
        match self.kind {
            ErrorKind::Connection | ErrorKind::Timeout => FailureClass::Connection,
            ErrorKind::ContextWindow | ErrorKind::ContentPolicy => FailureClass::ClientError,
            ErrorKind::Status => FailureClass::from_status(self.status),
        }
    }

    /// The `retry_policy` class of this error, if it has one.
    pub fn class(&self) -> Option<crate::routing::ErrorClass> {
        use crate::routing::ErrorClass as C;
        match self.kind {
            ErrorKind::Timeout => Some(C::Timeout),
            ErrorKind::Connection => Some(C::InternalServer),
            ErrorKind::ContentPolicy => Some(C::ContentPolicyViolation),
            ErrorKind::ContextWindow => Some(C::BadRequest),
            ErrorKind::Status => match self.status {
                400 => Some(C::BadRequest),
                401 => Some(C::Authentication),
                408 => Some(C::Timeout),
                429 => Some(C::RateLimit),
                500..=599 => Some(C::InternalServer),
                _ => None,
            },
        }
    }

    /// Whether another attempt may succeed (408, 409, 429, 5xx, connection failures).
    pub fn is_retryable(&self) -> bool {
        match self.kind {
            ErrorKind::Connection | ErrorKind::Timeout => true,
            ErrorKind::ContextWindow | ErrorKind::ContentPolicy => false,
            ErrorKind::Status => matches!(self.status, 408 | 409 | 429 | 500..=599),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::kind::FLAVORS;

    fn openai() -> ProviderKind {
        ProviderKind::OpenAi(&FLAVORS[0])
    }

    #[test]
    fn upstream_message_status_and_type_are_kept() {
        let body = br#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;
        let e = ProviderError::upstream(openai(), 429, body, None);
        assert_eq!(e.status, 429);
        assert_eq!(
            e.message,
            "litellm.RateLimitError: OpenAIException - Rate limit reached"
        );
        assert_eq!(e.error_type(), "requests");
        assert!(e.is_retryable());
        assert_eq!(e.failure_class(), FailureClass::RateLimited);
    }

    #[test]
    fn plain_text_bodies_become_the_message() {
        let e = ProviderError::upstream(openai(), 503, b"overloaded\n", None);
        assert_eq!(
            e.message,
            "litellm.ServiceUnavailableError: OpenAIException - overloaded"
        );
        assert_eq!(e.error_type(), "api_error");
    }

    #[test]
    fn a_string_error_is_the_message_and_a_missing_model_stays_a_404() {
        let ollama = ProviderKind::Ollama(&crate::providers::kind::OLLAMA_CHAT);
        let body = br#"{"error":"model \"llama9\" not found, try pulling it first"}"#;
        let e = ProviderError::upstream(ollama, 404, body, None);
        assert_eq!(e.status, 404);
        assert_eq!(
            e.message,
            "litellm.NotFoundError: Ollama_chatException - model \"llama9\" not found, try pulling it first"
        );
        assert_eq!(e.error_type(), "not_found_error");
        assert!(!e.is_retryable());
    }

    #[test]
    fn context_length_errors_are_recognised_and_not_retried() {
        let body = br#"{"error":{"message":"This model's maximum context length is 4097 tokens","code":"context_length_exceeded"}}"#;
        let e = ProviderError::upstream(openai(), 400, body, None);
        assert_eq!(e.kind, ErrorKind::ContextWindow);
        assert!(!e.is_retryable());
        assert_eq!(e.failure_class(), FailureClass::ClientError);
    }

    #[test]
    fn tgi_error_bodies_keep_their_message_and_its_token_limit_is_a_context_window_error() {
        use crate::providers::kind::{HuggingFaceApi, HUGGINGFACE};
        let hf = ProviderKind::HuggingFace(&HUGGINGFACE, HuggingFaceApi::Generate);
        let body = br#"{"error":"Model is overloaded","error_type":"overloaded"}"#;
        let e = ProviderError::upstream(hf, 429, body, None);
        assert_eq!(
            e.message,
            "litellm.RateLimitError: HuggingfaceException - Model is overloaded"
        );
        assert!(e.is_retryable());
        let body = br#"{"error":"Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096. Given: 4000 `inputs` tokens and 200 `max_new_tokens`","error_type":"validation"}"#;
        let e = ProviderError::upstream(hf, 422, body, None);
        assert_eq!((e.kind, e.status), (ErrorKind::ContextWindow, 400));
        assert_eq!(e.message, "litellm.ContextWindowExceededError: HuggingfaceException - Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096. Given: 4000 `inputs` tokens and 200 `max_new_tokens`");
        let other = br#"{"error":"Input validation error: `temperature` must be strictly positive","error_type":"validation"}"#;
        let e = ProviderError::upstream(hf, 422, other, None);
        assert_eq!((e.kind, e.status), (ErrorKind::Status, 422));
        assert_eq!(e.error_type(), "invalid_request_error");
    }

    #[test]
    fn cohere_top_level_messages_are_kept_and_its_token_limit_is_a_context_window_error() {
        let cohere = ProviderKind::Cohere(&crate::providers::kind::COHERE_CHAT);
        let e = ProviderError::upstream(cohere, 401, br#"{"message":"invalid api token"}"#, None);
        assert_eq!(
            e.message,
            "litellm.AuthenticationError: CohereException - invalid api token"
        );
        assert_eq!(e.error_type(), "authentication_error");
        let body = br#"{"id":"3a0e1f2b","message":"too many tokens: total number of tokens (prompt and prediction) cannot exceed 4096 - received 5120. Try using a shorter prompt or a smaller max_tokens value."}"#;
        let e = ProviderError::upstream(cohere, 400, body, None);
        assert_eq!(e.kind, ErrorKind::ContextWindow);
        assert!(e
            .message
            .starts_with("litellm.ContextWindowExceededError: CohereException - too many tokens"));
    }
}
