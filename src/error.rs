//! The one boundary error: every failure becomes LiteLLM's error body with the right status.

use std::time::Duration;

use actix_web::http::header::{HeaderValue, RETRY_AFTER};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::governance::EntityKind;
use crate::keys::Rejection;
use crate::providers::ProviderError;

fn rejection_message(r: &Rejection) -> String {
    match r {
        Rejection::NotCached => "Authentication Error, Invalid proxy server token passed.".into(),
        Rejection::Blocked => {
            "Authentication Error, Key is blocked. Update via `/key/unblock` if you're admin.".into()
        }
        Rejection::Expired(at) => format!(
            "Authentication Error - Expired Key. Key Expiry time {} and current time {}",
            at.to_rfc3339(),
            chrono::Utc::now().to_rfc3339()
        ),
        Rejection::BudgetExceeded { what, spend, budget } => format!(
            "Budget has been exceeded! {what} budget: Current cost: {spend}, Max budget: {budget}"
        ),
        Rejection::ModelDenied(model) => format!(
            "key not allowed to access model. Tried to access {model}. Call `/v1/models` to see the models this key can use."
        ),
        Rejection::RateLimited { what, retry_after } => format!(
            "Rate limit exceeded for this key: {what}. Try again in {} seconds.",
            retry_after.as_secs().max(1)
        ),
        Rejection::EntityBlocked(entity) => format!(
            "Authentication Error, {entity} is blocked. Update via `/{}/unblock` if you're admin.",
            match entity.kind {
                EntityKind::EndUser => "end_user",
                _ => entity.kind.as_str(),
            }
        ),
        Rejection::EntityModelDenied { entity, model } => format!(
            "{entity} not allowed to access model. Tried to access {model}. Call `/v1/models` to see the models this key can use."
        ),
        Rejection::EntityRateLimited {
            entity,
            what,
            retry_after,
        } => format!(
            "Rate limit exceeded for {entity}: {what}. Try again in {} seconds.",
            retry_after.as_secs().max(1)
        ),
    }
}

/// Why a request failed, as the client sees it (COMPAT.md section 6).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No key in any of the accepted headers.
    #[error("Authentication Error, No api key passed in.")]
    MissingKey,
    /// A key that is neither the master key nor a known virtual key.
    #[error("Authentication Error, Invalid proxy server token passed. Received API key = {0}. Unable to find token in cache or `LiteLLM_VerificationTokenTable`")]
    InvalidKey(String),
    /// Bad JSON, a missing or mistyped field.
    #[error("{message}")]
    BadRequest {
        /// What is wrong.
        message: String,
        /// The field at fault.
        param: Option<String>,
    },
    /// A model name no group, alias or wildcard matches.
    #[error("Invalid model name passed in model={0}. Call `/v1/models` to view available models for your key.")]
    UnknownModel(String),
    /// The body is over `max_request_size_mb`.
    #[error("Request size is too large. Request size is {size_mb:.2} MB, the limit is {limit_mb:.2} MB (max_request_size_mb)")]
    BodyTooLarge {
        /// Size seen so far, in MB.
        size_mb: f64,
        /// The limit, in MB.
        limit_mb: f64,
    },
    /// The client sent its body slower than `client_body_timeout` allows.
    #[error(
        "Request timed out: the request body did not arrive within {0:?} (client_body_timeout)"
    )]
    BodyTimeout(Duration),
    /// A request head (after a connection's first) arrived slower than `client_header_timeout`.
    #[error(
        "Request timed out: the request head did not arrive within {0:?} (client_header_timeout)"
    )]
    HeadTimeout(Duration),
    /// Every deployment of the group is cooling down or at a limit.
    #[error("{message}")]
    NoDeployment {
        /// Which group, and when it comes back.
        message: String,
        /// How long until the earliest deployment is back.
        retry_after: Duration,
    },
    /// The key may not make this request (blocked, expired, over budget, model, limits).
    #[error("{}", rejection_message(.0))]
    Key(Rejection),
    /// The master key is required.
    #[error("Authentication Error, only the master key may call {0}")]
    AdminOnly(String),
    /// The caller's role does not allow this.
    #[error("Authentication Error, {role} is not allowed to {action}")]
    NotAllowed {
        /// The caller's role (`internal_user`, `virtual key`, ...).
        role: String,
        /// What was refused (`call /user/new`, `update key sk-...`).
        action: String,
    },
    /// The client's address is not in `allowed_ips`, or is in `blocked_ips`.
    #[error("Access forbidden: IP address not allowed.")]
    IpNotAllowed,
    /// The key's `allowed_cache_controls` does not list a cache control the request set.
    #[error("Not allowed to set {0} as a cache control. Contact admin to change permissions.")]
    CacheControlDenied(String),
    /// Key lookups cannot reach the database.
    #[error("Service Unavailable: the key store is unreachable ({0}); please retry")]
    Unavailable(String),
    /// A key, or another record, that does not exist.
    #[error("{0}")]
    Missing(String),
    /// A route that does not exist.
    #[error("Route not found: {0}")]
    NotFound(String),
    /// The upstream failed, could not be reached, or timed out.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// A model API call while models are not stored in the database (LiteLLM's answer).
    #[error("Set `'STORE_MODEL_IN_DB='True'` in your env to enable this feature.")]
    ModelStoreOff,
    /// A bug or an unavailable internal part; details are logged, never returned.
    #[error("Internal Server Error")]
    Internal,
}

impl ApiError {
    /// A 400 naming the field at fault.
    pub fn bad_request(message: impl Into<String>, param: Option<&str>) -> Self {
        Self::BadRequest {
            message: message.into(),
            param: param.map(str::to_owned),
        }
    }

    fn error_type(&self) -> &str {
        match self {
            Self::MissingKey | Self::InvalidKey(_) => "auth_error",
            Self::BadRequest { .. } | Self::UnknownModel(_) | Self::BodyTooLarge { .. } => {
                "invalid_request_error"
            }
            Self::NoDeployment { .. } => "rate_limit_error",
            Self::BodyTimeout(_) | Self::HeadTimeout(_) => "timeout",
            Self::Key(r) => match r {
                Rejection::NotCached | Rejection::Blocked | Rejection::EntityBlocked(_) => {
                    "auth_error"
                }
                Rejection::Expired(_) => "expired_key",
                Rejection::BudgetExceeded { .. } => "budget_exceeded",
                Rejection::ModelDenied(_) => "key_model_access_denied",
                Rejection::EntityModelDenied { entity, .. } => match entity.kind {
                    EntityKind::User => "user_model_access_denied",
                    EntityKind::Team | EntityKind::Member => "team_model_access_denied",
                    EntityKind::EndUser => "end_user_model_access_denied",
                    EntityKind::Tag => "tag_model_access_denied",
                },
                Rejection::RateLimited { .. } | Rejection::EntityRateLimited { .. } => {
                    "rate_limit_error"
                }
            },
            Self::AdminOnly(_)
            | Self::NotAllowed { .. }
            | Self::CacheControlDenied(_)
            | Self::IpNotAllowed => "auth_error",
            Self::Unavailable(_) => "service_unavailable",
            Self::Missing(_) => "not_found_error",
            Self::NotFound(_) => "not_found_error",
            Self::Provider(e) => e.error_type(),
            Self::ModelStoreOff | Self::Internal => "internal_server_error",
        }
    }

    fn param(&self) -> Option<&str> {
        match self {
            Self::BadRequest { param, .. } => param.as_deref(),
            Self::UnknownModel(_) => Some("model"),
            Self::Provider(e) => e.param.as_deref(),
            _ => None,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::NoDeployment { retry_after, .. } => Some(*retry_after),
            Self::Key(
                Rejection::RateLimited { retry_after, .. }
                | Rejection::EntityRateLimited { retry_after, .. },
            ) => Some(*retry_after),
            Self::Provider(e) => e.retry_after,
            _ => None,
        }
    }

    /// The JSON body LiteLLM sends for this error.
    pub fn body(&self) -> serde_json::Value {
        let status = self.status_code();
        json!({"error": {
            "message": self.to_string(),
            "type": self.error_type(),
            "param": self.param(),
            "code": status.as_u16().to_string(),
        }})
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::MissingKey | Self::InvalidKey(_) => StatusCode::UNAUTHORIZED,
            Self::BadRequest { .. } | Self::UnknownModel(_) => StatusCode::BAD_REQUEST,
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout(_) | Self::HeadTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::NoDeployment { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Key(r) => match r {
                Rejection::NotCached | Rejection::Blocked | Rejection::EntityBlocked(_) => {
                    StatusCode::UNAUTHORIZED
                }
                Rejection::Expired(_) | Rejection::BudgetExceeded { .. } => StatusCode::BAD_REQUEST,
                Rejection::ModelDenied(_) | Rejection::EntityModelDenied { .. } => {
                    StatusCode::FORBIDDEN
                }
                Rejection::RateLimited { .. } | Rejection::EntityRateLimited { .. } => {
                    StatusCode::TOO_MANY_REQUESTS
                }
            },
            Self::AdminOnly(_) | Self::NotAllowed { .. } => StatusCode::UNAUTHORIZED,
            Self::CacheControlDenied(_) | Self::IpNotAllowed => StatusCode::FORBIDDEN,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Missing(_) => StatusCode::NOT_FOUND,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Provider(e) => {
                StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
            Self::ModelStoreOff | Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status_code());
        if let Some(after) = self.retry_after() {
            let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
            if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
                res.insert_header((RETRY_AFTER, v));
            }
        }
        res.json(self.body())
    }
}

/// Shows only the start and end of a key, the way LiteLLM abbreviates it in errors.
pub fn abbreviate_key(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 8 {
        return "sk-...".to_owned();
    }
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("sk-...{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_has_the_litellm_shape() {
        let err = ApiError::bad_request("missing model", Some("model"));
        assert_eq!(
            err.body(),
            json!({"error": {"message": "missing model", "type": "invalid_request_error", "param": "model", "code": "400"}})
        );
    }

    #[test]
    fn keys_are_never_shown_whole() {
        assert_eq!(abbreviate_key("sk-1234567890abcdef"), "sk-...cdef");
        assert_eq!(abbreviate_key("short"), "sk-...");
    }
}
