//! CORS from LiteLLM's `cors_allow_origins`, `cors_allow_credentials`, `cors_allow_methods`
//! and `cors_allow_headers`, with `actix-cors`. A request from an origin not allowed is served
//! without CORS headers (the browser then keeps the answer from the page), and its preflight
//! is refused; requests without an `Origin` are untouched.

use actix_cors::Cors;

use crate::config::{CorsOrigins, CorsSettings};

/// How long a browser may cache a preflight answer, in seconds.
const MAX_AGE: usize = 600;

/// The CORS middleware for `settings` (built once per worker; the values were checked when the
/// config was read).
pub fn cors(settings: &CorsSettings) -> Cors {
    // No response header is exposed to pages (as in LiteLLM): an exposed list would be sent on
    // every response, CORS or not.
    let mut cors = Cors::default().max_age(MAX_AGE);
    cors = match &settings.origins {
        CorsOrigins::Any => cors.allow_any_origin(),
        CorsOrigins::Only(list) => list
            .iter()
            .fold(cors, |cors, origin| cors.allowed_origin(origin)),
    };
    cors = match &settings.methods {
        None => cors.allow_any_method(),
        Some(list) => cors.allowed_methods(list.iter().map(String::as_str)),
    };
    cors = match &settings.headers {
        None => cors.allow_any_header(),
        Some(list) => cors.allowed_headers(list.iter().map(String::as_str)),
    };
    if settings.credentials {
        cors = cors.supports_credentials();
    }
    cors
}
