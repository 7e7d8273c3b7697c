//! OpenAI's and Azure's files and batches APIs on the wire: each call's URL, and the call.

use std::time::Duration;

use actix_web::body::SizedStream;
use actix_web::http::header::{HeaderName, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::http::Method;
use actix_web::HttpMessage;
use bytes::Bytes;
use percent_encoding::utf8_percent_encode;

use super::client::{provider_headers, read_prefix, retry_after, UpstreamBody, MAX_ERROR_BODY};
use super::request::deployment_headers;
use super::{ProviderError, ProviderKind};
use crate::config::{Deployment, URL_UNRESERVED};

/// One route of the files and batches APIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint<'a> {
    /// `/files`: upload, list.
    Files,
    /// `/files/{id}`: retrieve, delete.
    File(&'a str),
    /// `/files/{id}/content`.
    FileContent(&'a str),
    /// `/batches`: create, list.
    Batches,
    /// `/batches/{id}`.
    Batch(&'a str),
    /// `/batches/{id}/cancel`.
    BatchCancel(&'a str),
}

impl Endpoint<'_> {
    /// The route, ids percent-encoded.
    pub fn path(&self) -> String {
        let id = |id: &str| utf8_percent_encode(id, URL_UNRESERVED).to_string();
        match self {
            Self::Files => "/files".to_owned(),
            Self::File(f) => format!("/files/{}", id(f)),
            Self::FileContent(f) => format!("/files/{}/content", id(f)),
            Self::Batches => "/batches".to_owned(),
            Self::Batch(b) => format!("/batches/{}", id(b)),
            Self::BatchCancel(b) => format!("/batches/{}/cancel", id(b)),
        }
    }
}

/// The URL of `endpoint` on deployment `d`, with `query` (already encoded) appended.
///
/// OpenAI: `{api_base}/files`. Azure: `{resource}/openai/files?api-version=V` (the resource is
/// `api_base` up to any `/openai/...`), or Azure's v1 API, `{resource}/openai/v1/files`, when
/// `api_base` names it or `api_version` is `v1`, `latest` or `preview`.
pub fn url(d: &Deployment, endpoint: Endpoint<'_>, query: &str) -> String {
    let (base, base_query) = match d.api_base.split_once('?') {
        Some((b, q)) => (b, q),
        None => (d.api_base.as_str(), ""),
    };
    let base = base.trim_end_matches('/');
    let mut queries: Vec<String> = Vec::new();
    let path = match d.provider {
        ProviderKind::Azure(_) => {
            let resource = match base.find("/openai/") {
                Some(at) => &base[..at],
                None => base.strip_suffix("/openai").unwrap_or(base),
            };
            let version = d.api_version.as_deref().unwrap_or("v1");
            let v1 = base.contains("/openai/v1") || matches!(version, "v1" | "latest" | "preview");
            // The v1 API takes no dated version; `preview` is its one version name.
            if !v1 || version == "preview" {
                queries.push(format!(
                    "api-version={}",
                    utf8_percent_encode(version, URL_UNRESERVED)
                ));
            }
            if v1 {
                format!("{resource}/openai/v1{}", endpoint.path())
            } else {
                format!("{resource}/openai{}", endpoint.path())
            }
        }
        _ => format!("{base}{}", endpoint.path()),
    };
    queries.extend(
        [base_query, query]
            .into_iter()
            .filter(|q| !q.is_empty())
            .map(str::to_owned),
    );
    if queries.is_empty() {
        path
    } else {
        format!("{path}?{}", queries.join("&"))
    }
}

/// What a call sends.
#[derive(Debug)]
pub enum Outgoing {
    /// Nothing.
    Empty,
    /// A JSON body.
    Json(Bytes),
    /// A multipart form in pieces, sent as one body of known length.
    Form {
        /// The form's content type (its boundary).
        content_type: String,
        /// The pieces, in order.
        chunks: Vec<Bytes>,
    },
}

/// An upstream reply whose status was a success.
pub struct Reply {
    /// The upstream's headers, renamed `llm_provider-<name>`.
    pub provider_headers: Vec<(HeaderName, HeaderValue)>,
    /// The reply's content type.
    pub content_type: Option<HeaderValue>,
    /// The length it declared.
    pub content_length: Option<u64>,
    /// The body, not yet read.
    pub body: UpstreamBody,
}

/// Sends one call to deployment `d` with its credentials, waiting at most `wait` for the
/// reply's head; an error status becomes the upstream's error.
pub async fn send(
    client: &awc::Client,
    d: &Deployment,
    method: Method,
    url: &str,
    body: Outgoing,
    wait: Duration,
) -> Result<Reply, ProviderError> {
    let provider = d.provider;
    let mut req = client.request(method, url).timeout(wait);
    for (name, value) in deployment_headers(d) {
        req = req.insert_header((name, value));
    }
    let sent = match body {
        Outgoing::Empty => req.send().await,
        Outgoing::Json(bytes) => {
            req.insert_header((CONTENT_TYPE, "application/json"))
                .send_body(bytes)
                .await
        }
        Outgoing::Form {
            content_type,
            chunks,
        } => {
            let size: usize = chunks.iter().map(Bytes::len).sum();
            let stream = futures_util::stream::iter(
                chunks.into_iter().map(Ok::<_, std::convert::Infallible>),
            );
            req.insert_header((CONTENT_TYPE, content_type))
                .send_body(SizedStream::new(size as u64, stream))
                .await
        }
    };
    let mut res = sent.map_err(|e| match e {
        awc::error::SendRequestError::Timeout => ProviderError::timeout(provider, wait),
        other => ProviderError::connection(provider, other),
    })?;
    let headers = res.headers();
    if res.status().is_success() {
        let content_type = headers.get(CONTENT_TYPE).cloned();
        let content_length = headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let provider_headers = provider_headers(headers);
        return Ok(Reply {
            provider_headers,
            content_type,
            content_length,
            body: Box::pin(res.take_payload()),
        });
    }
    let status = res.status().as_u16();
    let after = retry_after(res.headers());
    let mut payload: UpstreamBody = Box::pin(res.take_payload());
    let body = actix_rt::time::timeout(wait, read_prefix(&mut payload, MAX_ERROR_BODY))
        .await
        .map_err(|_| ProviderError::timeout(provider, wait))?;
    Err(ProviderError::upstream(provider, status, &body, after))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CliOverrides, Settings};

    fn deployment(params: &str) -> Deployment {
        let text = format!("model_list:\n  - model_name: m\n    litellm_params: {params}\n");
        let s = Settings::from_yaml(&text, &CliOverrides::default()).unwrap();
        s.deployments.into_iter().next().unwrap()
    }

    #[test]
    fn openai_routes_hang_off_the_api_base() {
        let d = deployment("{model: openai/gpt-4o, api_base: 'http://h:1/v1/', api_key: k}");
        assert_eq!(url(&d, Endpoint::Files, ""), "http://h:1/v1/files");
        assert_eq!(
            url(&d, Endpoint::Files, "purpose=batch&limit=2"),
            "http://h:1/v1/files?purpose=batch&limit=2"
        );
        assert_eq!(
            url(&d, Endpoint::FileContent("file-abc"), ""),
            "http://h:1/v1/files/file-abc/content"
        );
        assert_eq!(
            url(&d, Endpoint::BatchCancel("batch_1"), ""),
            "http://h:1/v1/batches/batch_1/cancel"
        );
    }

    #[test]
    fn azure_routes_are_under_openai_with_the_api_version() {
        let d = deployment("{model: azure/gpt-4o, api_base: 'https://r.openai.azure.com/', api_key: k, api_version: '2024-10-21'}");
        assert_eq!(
            url(&d, Endpoint::Files, "purpose=batch"),
            "https://r.openai.azure.com/openai/files?api-version=2024-10-21&purpose=batch"
        );
        assert_eq!(
            url(&d, Endpoint::Batch("batch_x"), ""),
            "https://r.openai.azure.com/openai/batches/batch_x?api-version=2024-10-21"
        );
        let full = deployment("{model: azure/gpt-4o, api_base: 'https://r.openai.azure.com/openai/deployments/gpt-4o', api_key: k, api_version: '2025-04-01-preview'}");
        assert_eq!(
            url(&full, Endpoint::File("file-1"), ""),
            "https://r.openai.azure.com/openai/files/file-1?api-version=2025-04-01-preview"
        );
    }

    #[test]
    fn azure_v1_api_is_used_when_the_base_or_the_version_names_it() {
        let d = deployment(
            "{model: azure/gpt-4o, api_base: 'https://r.openai.azure.com/openai/v1', api_key: k}",
        );
        assert_eq!(
            url(&d, Endpoint::Batches, "limit=5"),
            "https://r.openai.azure.com/openai/v1/batches?limit=5"
        );
        let preview = deployment(
            "{model: azure/gpt-4o, api_base: 'https://r.openai.azure.com', api_key: k, api_version: preview}",
        );
        assert_eq!(
            url(&preview, Endpoint::Files, ""),
            "https://r.openai.azure.com/openai/v1/files?api-version=preview"
        );
    }

    #[test]
    fn ids_are_one_path_segment() {
        assert_eq!(Endpoint::File("a/b?c").path(), "/files/a%2Fb%3Fc");
    }
}
