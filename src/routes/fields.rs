//! Reading management bodies: the JSON object, and each field's type checked with a 400 that
//! names it. Shared by the key, user, team, end user and tag APIs.

use serde_json::{Map, Value as Json};

use crate::db::DbError;
use crate::error::ApiError;
use crate::keys::KeyDuration;
use crate::state::AppState;

/// A 400 saying what `field` should have been.
pub fn bad(field: &str, expected: &str) -> ApiError {
    ApiError::bad_request(
        format!("Invalid value for '{field}': expected {expected}"),
        Some(field),
    )
}

/// A store error as the client sees it: a unique violation is a 400 saying `duplicate` about
/// `field`, anything else a 503 (logged, never shown).
pub fn db_error(e: DbError, duplicate: &str, field: &str) -> ApiError {
    if e.is_unique_violation() {
        return ApiError::bad_request(duplicate, Some(field));
    }
    log::warn!("store error: {e}");
    ApiError::Unavailable("database".into())
}

/// The body as a JSON object (an empty body is an empty object).
pub fn parse_body(body: &[u8]) -> Result<Map<String, Json>, ApiError> {
    match serde_json::from_slice::<Json>(body) {
        Ok(Json::Object(m)) => Ok(m),
        Ok(Json::Null) | Err(_) if body.iter().all(u8::is_ascii_whitespace) => Ok(Map::new()),
        Ok(_) => Err(ApiError::bad_request(
            "Request body must be a JSON object",
            None,
        )),
        Err(e) => Err(ApiError::bad_request(
            format!("Invalid JSON in request body: {e}"),
            None,
        )),
    }
}

/// Whether management changes are written to the audit log (`store_audit_logs`).
pub fn auditing(state: &AppState) -> bool {
    state.settings.security.store_audit_logs
}

/// A JSON value as stored text.
pub fn json_text(v: &Json) -> String {
    v.to_string()
}

/// A list of strings as stored JSON text (`null`: empty).
pub fn string_list(field: &str, v: &Json) -> Result<String, ApiError> {
    match v {
        Json::Array(items) if items.iter().all(Json::is_string) => Ok(json_text(v)),
        Json::Null => Ok("[]".into()),
        _ => Err(bad(field, "a list of strings")),
    }
}

/// An object whose values pass `check`, as stored JSON text (`null`: empty).
pub fn object_of(
    field: &str,
    v: &Json,
    check: fn(&Json) -> bool,
    expected: &str,
) -> Result<String, ApiError> {
    match v {
        Json::Object(m) if m.values().all(check) => Ok(json_text(v)),
        Json::Null => Ok("{}".into()),
        _ => Err(bad(field, expected)),
    }
}

/// A string or `null`.
pub fn opt_string(field: &str, v: &Json) -> Result<Option<String>, ApiError> {
    match v {
        Json::String(s) => Ok(Some(s.clone())),
        Json::Null => Ok(None),
        _ => Err(bad(field, "a string")),
    }
}

/// A non-negative integer or `null`.
pub fn opt_count(field: &str, v: &Json) -> Result<Option<i64>, ApiError> {
    match v {
        Json::Null => Ok(None),
        v => v
            .as_u64()
            .and_then(|n| i64::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| bad(field, "a non-negative integer")),
    }
}

/// A non-negative finite number or `null`.
pub fn opt_money(field: &str, v: &Json) -> Result<Option<f64>, ApiError> {
    match v {
        Json::Null => Ok(None),
        v => v
            .as_f64()
            .filter(|n| n.is_finite() && *n >= 0.0)
            .map(Some)
            .ok_or_else(|| bad(field, "a non-negative number")),
    }
}

/// A LiteLLM duration (`30d`) or `null`.
pub fn duration_field(field: &str, v: &Json) -> Result<Option<KeyDuration>, ApiError> {
    match v {
        Json::Null => Ok(None),
        Json::String(s) => KeyDuration::parse(s).map(Some).ok_or_else(|| {
            ApiError::bad_request(
                format!("Invalid value for '{field}': {s:?} is not a duration (use 30s, 30m, 30h, 30d or 1mo)"),
                Some(field),
            )
        }),
        _ => Err(bad(field, "a duration string such as \"30d\"")),
    }
}
