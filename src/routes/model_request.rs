//! A model request parsed and checked: the fields forwarded, and those only the gateway reads.

use std::time::Duration;

use serde_json::{Map, Value as Json};

use std::sync::Arc;

use crate::cache::{Controls, StoreAs};
use crate::error::ApiError;
use crate::governance::{Principals, MAX_TAGS};
use crate::providers::Operation;
use crate::routing::RequestFallbacks;

/// Fields the gateway consumes and never forwards (COMPAT.md section 3).
pub(super) const GATEWAY_ONLY: &[&str] = &[
    "mock_response",
    "mock_timeout",
    "fallbacks",
    "context_window_fallbacks",
    "content_policy_fallbacks",
    "num_retries",
    "request_timeout",
    "timeout",
    "stream_timeout",
    "caching",
    "cache",
    "metadata",
    "drop_params",
    "additional_drop_params",
];

/// Per-request settings read from the body.
#[derive(Debug, Default)]
pub struct GatewayFields {
    /// `mock_response`.
    pub mock_response: Option<String>,
    /// `mock_timeout`.
    pub mock_timeout: bool,
    /// `num_retries`.
    pub num_retries: Option<u32>,
    /// `request_timeout` / `timeout`.
    pub timeout: Option<Duration>,
    /// `stream_timeout`: time allowed until a stream's first byte.
    pub stream_timeout: Option<Duration>,
    /// `drop_params`: drop what the provider cannot take instead of failing.
    pub drop_params: Option<bool>,
    /// `additional_drop_params`: fields never to forward.
    pub additional_drop_params: Vec<String>,
    /// `metadata`, kept for the spend log.
    pub metadata: Option<Json>,
    /// `fallbacks`, `context_window_fallbacks`, `content_policy_fallbacks`.
    pub fallbacks: RequestFallbacks,
    /// `caching` and the `cache` controls.
    pub cache: Controls,
}

impl GatewayFields {
    /// `metadata` as JSON text for the spend log (`{}` when absent).
    pub fn metadata_json(&self) -> String {
        self.metadata
            .as_ref()
            .map_or_else(|| "{}".to_owned(), Json::to_string)
    }
}

/// A validated chat, completion or embedding request.
#[derive(Debug)]
pub struct ModelRequest {
    /// The requested public model name.
    pub model: String,
    /// `stream: true`.
    pub stream: bool,
    /// `stream_options.include_usage: true`.
    pub wants_stream_usage: bool,
    /// What is forwarded upstream (no `model`, no gateway fields).
    pub fields: Map<String, Json>,
    /// What only the gateway reads.
    pub gateway: GatewayFields,
    /// Where the reply is to be cached, once the response cache has looked for it.
    pub cache_store: Option<StoreAs>,
    /// The audio file of a transcription or translation (its other form fields are `fields`).
    pub upload: Option<crate::providers::media::Upload>,
}

pub(super) fn type_error(field: &str, expected: &str) -> ApiError {
    ApiError::bad_request(
        format!("Invalid value for '{field}': expected {expected}"),
        Some(field),
    )
}

pub(super) fn missing(field: &str) -> ApiError {
    ApiError::bad_request(
        format!("Missing required parameter: '{field}'"),
        Some(field),
    )
}

impl ModelRequest {
    /// The request's `user` (the end user), for the spend log.
    pub fn user(&self) -> Option<String> {
        self.fields
            .get("user")
            .and_then(Json::as_str)
            .map(str::to_owned)
    }

    /// Who the request names besides its key: its end user (`user`) and its tags
    /// (`metadata.tags`, and the comma-separated `x-litellm-tags` header).
    pub fn principals(&self, req: &actix_web::HttpRequest) -> Principals {
        let end_user = self
            .fields
            .get("user")
            .and_then(Json::as_str)
            .filter(|u| !u.is_empty())
            .map(Arc::from);
        let mut tags: Vec<Arc<str>> = Vec::new();
        let mut add = |tag: &str| {
            if !tag.is_empty() && tags.len() < MAX_TAGS && !tags.iter().any(|t| &**t == tag) {
                tags.push(Arc::from(tag));
            }
        };
        if let Some(Json::Array(items)) = self.gateway.metadata.as_ref().and_then(|m| m.get("tags"))
        {
            items.iter().filter_map(Json::as_str).for_each(&mut add);
        }
        if let Some(header) = req
            .headers()
            .get("x-litellm-tags")
            .and_then(|v| v.to_str().ok())
        {
            header.split(',').map(str::trim).for_each(&mut add);
        }
        Principals { end_user, tags }
    }

    /// Parses `body` for `op`; `path_model` (Azure-style routes) overrides the body's model.
    pub fn parse(op: Operation, body: &[u8], path_model: Option<String>) -> Result<Self, ApiError> {
        let value: Json = serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!("Invalid JSON in request body: {e}"), None)
        })?;
        let Json::Object(mut fields) = value else {
            return Err(ApiError::bad_request(
                "Request body must be a JSON object",
                None,
            ));
        };
        let body_model = match fields.shift_remove("model") {
            None | Some(Json::Null) => None,
            Some(Json::String(s)) => Some(s),
            Some(_) => return Err(type_error("model", "a string")),
        };
        let model = path_model.or(body_model).filter(|m| !m.is_empty());
        // A moderation may leave its model to the gateway (`media_request::default_model`).
        let model = match model {
            Some(m) => m,
            None if op == Operation::Moderation => String::new(),
            None => return Err(missing("model")),
        };
        let stream = match fields.get("stream") {
            None | Some(Json::Null) => false,
            Some(Json::Bool(b)) => *b && !matches!(op, Operation::Embedding) && !op.is_media(),
            Some(_) => return Err(type_error("stream", "a boolean")),
        };
        let wants_stream_usage = match fields.get("stream_options") {
            // A Responses stream always ends with its usage (in `response.completed`).
            _ if op == Operation::Responses => true,
            None | Some(Json::Null) => false,
            Some(Json::Object(o)) => o
                .get("include_usage")
                .and_then(Json::as_bool)
                .unwrap_or(false),
            Some(_) => return Err(type_error("stream_options", "an object")),
        };
        match op {
            Operation::Chat => match fields.get("messages") {
                None | Some(Json::Null) => return Err(missing("messages")),
                Some(Json::Array(m)) if m.is_empty() => {
                    return Err(ApiError::bad_request(
                        "Invalid value for 'messages': at least one message is required",
                        Some("messages"),
                    ))
                }
                Some(Json::Array(m)) => {
                    if m.iter()
                        .any(|msg| msg.get("role").and_then(Json::as_str).is_none())
                    {
                        return Err(type_error(
                            "messages",
                            "a list of objects with a string 'role'",
                        ));
                    }
                }
                Some(_) => return Err(type_error("messages", "a list of messages")),
            },
            Operation::Completion => match fields.get("prompt") {
                None | Some(Json::Null) => return Err(missing("prompt")),
                Some(Json::String(_) | Json::Array(_)) => {}
                Some(_) => return Err(type_error("prompt", "a string or a list")),
            },
            Operation::Embedding => match fields.get("input") {
                None | Some(Json::Null) => return Err(missing("input")),
                Some(Json::String(_) | Json::Array(_)) => {}
                Some(_) => return Err(type_error("input", "a string or a list")),
            },
            Operation::Responses => crate::responses::request::check(&fields)?,
            media => super::media_request::check(media, &fields)?,
        }
        let gateway = take_gateway_fields(&mut fields)?;
        Ok(Self {
            model,
            stream,
            wants_stream_usage,
            fields,
            gateway,
            cache_store: None,
            upload: None,
        })
    }
}

/// A request's fallback list: model names, or objects naming a `model`.
fn fallback_list(field: &str, v: &Json) -> Result<Vec<String>, ApiError> {
    let Json::Array(items) = v else {
        return Err(type_error(field, "a list of model names"));
    };
    items
        .iter()
        .map(|i| match i {
            Json::String(s) => Some(s.clone()),
            Json::Object(o) => o.get("model").and_then(Json::as_str).map(str::to_owned),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| type_error(field, "a list of model names"))
}

pub(super) fn take_gateway_fields(
    fields: &mut Map<String, Json>,
) -> Result<GatewayFields, ApiError> {
    let mut g = GatewayFields::default();
    // Most requests carry none of them: one pass over the (few) fields says so.
    if !fields.keys().any(|k| GATEWAY_ONLY.contains(&k.as_str())) {
        return Ok(g);
    }
    for key in GATEWAY_ONLY {
        let Some(value) = fields.shift_remove(*key) else {
            continue;
        };
        match (*key, value) {
            (_, Json::Null) => {}
            ("mock_response", Json::String(s)) => g.mock_response = Some(s),
            ("mock_response", _) => return Err(type_error("mock_response", "a string")),
            ("mock_timeout", Json::Bool(b)) => g.mock_timeout = b,
            ("mock_timeout", _) => return Err(type_error("mock_timeout", "a boolean")),
            ("num_retries", v) => {
                let n = v.as_u64().and_then(|n| u32::try_from(n).ok());
                g.num_retries =
                    Some(n.ok_or_else(|| type_error("num_retries", "a non-negative integer"))?);
            }
            (name @ ("request_timeout" | "timeout" | "stream_timeout"), v) => {
                let secs = v
                    .as_f64()
                    .and_then(|s| Duration::try_from_secs_f64(s).ok())
                    .filter(|d| !d.is_zero())
                    .ok_or_else(|| type_error(name, "a positive number of seconds"))?;
                if name == "stream_timeout" {
                    g.stream_timeout = Some(secs);
                } else {
                    g.timeout = Some(secs);
                }
            }
            (name @ ("fallbacks" | "context_window_fallbacks" | "content_policy_fallbacks"), v) => {
                let list = fallback_list(name, &v)?;
                match name {
                    "fallbacks" => g.fallbacks.general = Some(list),
                    "context_window_fallbacks" => g.fallbacks.context_window = Some(list),
                    _ => g.fallbacks.content_policy = Some(list),
                }
            }
            ("metadata", v @ Json::Object(_)) => g.metadata = Some(v),
            ("metadata", _) => return Err(type_error("metadata", "an object")),
            ("caching", v) => g.cache.set_caching(&v)?,
            ("cache", v) => g.cache.set_cache(&v)?,
            ("drop_params", Json::Bool(b)) => g.drop_params = Some(b),
            ("drop_params", _) => return Err(type_error("drop_params", "a boolean")),
            ("additional_drop_params", Json::Array(items)) => {
                g.additional_drop_params = items
                    .iter()
                    .map(|i| i.as_str().map(str::to_owned))
                    .collect::<Option<_>>()
                    .ok_or_else(|| type_error("additional_drop_params", "a list of strings"))?;
            }
            ("additional_drop_params", _) => {
                return Err(type_error("additional_drop_params", "a list of strings"))
            }
            _ => {}
        }
    }
    Ok(g)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_fields_are_consumed_and_the_rest_kept() {
        let body = br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"mock_response":"x","metadata":{"a":1},"timeout":2,"stream_timeout":0.5,"top_p":0.5}"#;
        let r = ModelRequest::parse(Operation::Chat, body, None).unwrap();
        assert_eq!(r.model, "m");
        assert_eq!(r.gateway.mock_response.as_deref(), Some("x"));
        assert_eq!(r.gateway.timeout, Some(Duration::from_secs(2)));
        assert_eq!(r.gateway.stream_timeout, Some(Duration::from_millis(500)));
        assert!(!r.fields.contains_key("stream_timeout"));
        assert_eq!(
            serde_json::to_string(&r.fields).unwrap(),
            r#"{"messages":[{"role":"user","content":"hi"}],"top_p":0.5}"#
        );
    }

    #[test]
    fn errors_name_the_field() {
        let cases: &[(&[u8], &str)] = &[
            (br#"{"messages":[{"role":"user","content":"hi"}]}"#, "model"),
            (br#"{"model":1,"messages":[]}"#, "model"),
            (br#"{"model":"m"}"#, "messages"),
            (br#"{"model":"m","messages":"hi"}"#, "messages"),
            (
                br#"{"model":"m","messages":[{"role":"user"}],"stream":"yes"}"#,
                "stream",
            ),
        ];
        for (body, field) in cases {
            let err = ModelRequest::parse(Operation::Chat, body, None).unwrap_err();
            assert_eq!(
                err.body()["error"]["param"],
                *field,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn the_path_model_wins() {
        let r = ModelRequest::parse(
            Operation::Embedding,
            br#"{"input":"x","model":"a"}"#,
            Some("b".into()),
        )
        .unwrap();
        assert_eq!(r.model, "b");
    }
}
