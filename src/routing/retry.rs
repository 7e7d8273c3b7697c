//! `retry_policy`: how many retries each class of error gets.

use std::collections::HashMap;

/// LiteLLM's error classes, as `retry_policy` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// 400s.
    BadRequest,
    /// 401s.
    Authentication,
    /// 408s and timeouts.
    Timeout,
    /// 429s.
    RateLimit,
    /// Content-filter refusals.
    ContentPolicyViolation,
    /// 5xx and connection failures.
    InternalServer,
}

impl ErrorClass {
    /// How many classes there are (each `as usize` is below this).
    pub const COUNT: usize = 6;

    /// The class named by an `allowed_fails_policy` key (`RateLimitErrorAllowedFails`).
    pub fn from_allowed_fails_key(key: &str) -> Option<Self> {
        Self::from_policy_key(
            &key.strip_suffix("AllowedFails")?
                .replace("Error", "ErrorRetries"),
        )
    }

    /// The class named by a `retry_policy` key (`RateLimitErrorRetries`).
    pub fn from_policy_key(key: &str) -> Option<Self> {
        Some(match key {
            "BadRequestErrorRetries" => Self::BadRequest,
            "AuthenticationErrorRetries" => Self::Authentication,
            "TimeoutErrorRetries" => Self::Timeout,
            "RateLimitErrorRetries" => Self::RateLimit,
            "ContentPolicyViolationErrorRetries" => Self::ContentPolicyViolation,
            "InternalServerErrorRetries" => Self::InternalServer,
            _ => return None,
        })
    }
}

/// Retries per error class; classes it does not name use `num_retries`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RetryPolicy {
    /// The configured counts.
    pub per_class: HashMap<ErrorClass, u32>,
}

impl RetryPolicy {
    /// Retries allowed for an error of `class` (`None`: the class is not named).
    pub fn retries_for(&self, class: Option<ErrorClass>) -> Option<u32> {
        class.and_then(|c| self.per_class.get(&c).copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_classes_get_their_count_and_others_none() {
        let p = RetryPolicy {
            per_class: HashMap::from([(ErrorClass::RateLimit, 4), (ErrorClass::BadRequest, 0)]),
        };
        assert_eq!(p.retries_for(Some(ErrorClass::RateLimit)), Some(4));
        assert_eq!(p.retries_for(Some(ErrorClass::BadRequest)), Some(0));
        assert_eq!(p.retries_for(Some(ErrorClass::Timeout)), None);
        assert_eq!(p.retries_for(None), None);
        assert_eq!(
            ErrorClass::from_policy_key("TimeoutErrorRetries"),
            Some(ErrorClass::Timeout)
        );
        assert_eq!(ErrorClass::from_policy_key("Nope"), None);
        assert_eq!(
            ErrorClass::from_allowed_fails_key("ContentPolicyViolationErrorAllowedFails"),
            Some(ErrorClass::ContentPolicyViolation)
        );
        assert_eq!(
            ErrorClass::from_allowed_fails_key("RateLimitErrorRetries"),
            None
        );
    }
}
