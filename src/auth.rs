//! Who is calling: the key from the accepted headers, checked against the master key.

use actix_web::HttpRequest;
use subtle::ConstantTimeEq;

use crate::error::{abbreviate_key, ApiError};
use crate::state::{digest, AppState};

/// The caller a request was admitted as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// No master key is configured: every request is admitted and charged to nobody.
    Open,
    /// The master key.
    Master,
    /// A virtual key (not yet known to be valid).
    Key {
        /// SHA-256 hex of the key.
        token: String,
        /// The abbreviated key, for error messages.
        shown: String,
    },
}

impl Caller {
    /// The hashed virtual key, if the caller presented one.
    pub fn token(&self) -> Option<&str> {
        match self {
            Self::Key { token, .. } => Some(token),
            _ => None,
        }
    }
}

/// The key a request presents, from the headers COMPAT.md section 4 lists, in order.
pub fn presented_key<'r>(req: &'r HttpRequest, custom_header: Option<&str>) -> Option<&'r str> {
    let headers = req.headers();
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let strip_bearer = |v: &'r str| -> &'r str {
        match v.get(..7) {
            Some(p) if p.eq_ignore_ascii_case("bearer ") => v[7..].trim(),
            _ => v,
        }
    };
    get("x-litellm-api-key")
        .map(strip_bearer)
        .or_else(|| get("authorization").map(strip_bearer))
        .or_else(|| get("api-key"))
        .or_else(|| get("x-api-key"))
        .or_else(|| get("x-goog-api-key"))
        .or_else(|| custom_header.and_then(get).map(strip_bearer))
        .filter(|k| !k.is_empty())
}

/// Admits the request or says why not.
pub fn authenticate(state: &AppState, req: &HttpRequest) -> Result<Caller, ApiError> {
    let Some(master) = &state.master_key_digest else {
        return Ok(Caller::Open);
    };
    let key = presented_key(req, state.settings.key_header_name.as_deref())
        .ok_or(ApiError::MissingKey)?;
    if bool::from(digest(key.as_bytes()).ct_eq(master)) {
        return Ok(Caller::Master);
    }
    Ok(Caller::Key {
        token: crate::keys::hash_key(key),
        shown: abbreviate_key(key),
    })
}

/// Admits only the master key (or anyone when none is configured), and says which it was.
pub fn require_master(state: &AppState, req: &HttpRequest) -> Result<Caller, ApiError> {
    match authenticate(state, req)? {
        caller @ (Caller::Open | Caller::Master) => Ok(caller),
        Caller::Key { .. } => Err(ApiError::AdminOnly(req.path().to_owned())),
    }
}
