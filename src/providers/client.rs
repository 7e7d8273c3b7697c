//! Sending an attempt with awc and reading the reply, within the attempt's timeouts.

use std::pin::Pin;
use std::time::Duration;

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::HttpMessage;
use bytes::Bytes;
use futures_util::Stream;

use super::request::{deployment_headers, PreparedCall};
use super::{ProviderError, ProviderKind};
use crate::config::Deployment;

/// An upstream reply body, read chunk by chunk.
pub type UpstreamBody = Pin<Box<dyn Stream<Item = Result<Bytes, awc::error::PayloadError>>>>;

/// An upstream reply whose status was a success.
pub struct UpstreamReply {
    /// The upstream's headers, renamed `llm_provider-<name>`.
    pub provider_headers: Vec<(HeaderName, HeaderValue)>,
    /// The body, not yet read.
    pub body: UpstreamBody,
}

const SKIPPED_HEADERS: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "content-encoding",
];

/// The upstream's headers, renamed `llm_provider-<name>` for the client (hop-by-hop ones left out).
pub(crate) fn provider_headers(headers: &HeaderMap) -> Vec<(HeaderName, HeaderValue)> {
    headers
        .iter()
        .filter(|(name, _)| !SKIPPED_HEADERS.contains(&name.as_str()))
        .filter_map(|(name, value)| {
            let renamed = format!("llm_provider-{}", name.as_str());
            HeaderName::from_bytes(renamed.as_bytes())
                .ok()
                .map(|n| (n, value.clone()))
        })
        .collect()
}

/// The upstream's `retry-after`, in seconds.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("retry-after")?.to_str().ok()?;
    value
        .trim()
        .parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
}

/// Sends `call` and waits at most `wait` for the reply's head; an error status becomes an error
/// carrying the upstream's message.
pub async fn send(
    client: &awc::Client,
    deployment: &Deployment,
    call: &PreparedCall,
    wait: Duration,
    max_body: usize,
) -> Result<UpstreamReply, ProviderError> {
    send_with(client, deployment, call, &[], wait, max_body).await
}

/// As [`send`], with `extra` headers worked out for this call (an OAuth token) set last.
pub async fn send_with(
    client: &awc::Client,
    deployment: &Deployment,
    call: &PreparedCall,
    extra: &[(&str, &str)],
    wait: Duration,
    max_body: usize,
) -> Result<UpstreamReply, ProviderError> {
    let provider = deployment.provider;
    let mut req = client
        .post(&call.url)
        .timeout(wait)
        .insert_header(("content-type", "application/json"));
    for (name, value) in deployment_headers(deployment).chain(extra.iter().copied()) {
        req = req.insert_header((name, value));
    }
    // Bedrock's SigV4 covers this very body, signed now (each retry is signed afresh).
    if let Some(auth) = &deployment.aws {
        let signed = super::bedrock::sign::signed_headers(
            auth,
            &call.url,
            &call.body,
            std::time::SystemTime::now(),
        )
        .map_err(|e| {
            ProviderError::connection(provider, format!("cannot sign the request: {e}"))
        })?;
        for (name, value) in signed {
            req = req.insert_header((name, value));
        }
    }
    if log::log_enabled!(target: super::curl::TARGET, log::Level::Trace) {
        let headers = req
            .headers()
            .iter()
            .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)));
        log::trace!(
            target: super::curl::TARGET,
            "upstream request (deployment {}):\n{}",
            deployment.id,
            super::curl::command(&call.url, headers, &call.body)
        );
    }
    let mut res = req
        .send_body(call.body.clone())
        .await
        .map_err(|e| match e {
            awc::error::SendRequestError::Timeout => ProviderError::timeout(provider, wait),
            other => ProviderError::connection(provider, other),
        })?;
    let status = res.status();
    if status.is_success() {
        // A reply that declares more than the limit is refused before a byte of it is read.
        if let Some(declared) = declared_length(res.headers()).filter(|&n| n > max_body as u64) {
            return Err(too_large(provider, max_body, Some(declared)));
        }
        let body: UpstreamBody = Box::pin(res.take_payload());
        return Ok(UpstreamReply {
            provider_headers: provider_headers(res.headers()),
            body,
        });
    }
    let after = retry_after(res.headers());
    let mut payload: UpstreamBody = Box::pin(res.take_payload());
    let body = actix_rt::time::timeout(wait, read_prefix(&mut payload, MAX_ERROR_BODY))
        .await
        .map_err(|_| ProviderError::timeout(provider, wait))?;
    Err(ProviderError::upstream(
        provider,
        status.as_u16(),
        &body,
        after,
    ))
}

/// How much of an error reply is read: its message is in the first bytes, and the rest is
/// never waited for.
pub const MAX_ERROR_BODY: usize = 64 * 1024;

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(actix_web::http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn too_large(provider: ProviderKind, max_body: usize, declared: Option<u64>) -> ProviderError {
    let declared = declared.map_or_else(String::new, |n| format!(" (it declared {n})"));
    ProviderError::connection(
        provider,
        format!("reply larger than {max_body} bytes{declared}"),
    )
}

/// The first `limit` bytes of `body` (fewer if it ends or breaks first); the rest is left unread.
pub(crate) async fn read_prefix(body: &mut UpstreamBody, limit: usize) -> Bytes {
    use futures_util::StreamExt;
    let mut buf = bytes::BytesMut::new();
    while buf.len() < limit {
        match body.next().await {
            Some(Ok(chunk)) => {
                let take = chunk.len().min(limit - buf.len());
                buf.extend_from_slice(&chunk[..take]);
            }
            Some(Err(_)) | None => break,
        }
    }
    buf.freeze()
}

/// Reads a whole reply body within `wait`, up to `max_body` bytes.
pub async fn read_all(
    body: &mut UpstreamBody,
    provider: ProviderKind,
    wait: Duration,
    max_body: usize,
) -> Result<Bytes, ProviderError> {
    use futures_util::StreamExt;
    let read = async {
        let mut first: Option<Bytes> = None;
        let mut rest: Option<bytes::BytesMut> = None;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| ProviderError::connection(provider, e))?;
            match (&mut first, &mut rest) {
                (None, _) => first = Some(chunk),
                (Some(f), None) => {
                    let mut buf = bytes::BytesMut::with_capacity(f.len() + chunk.len());
                    buf.extend_from_slice(f);
                    buf.extend_from_slice(&chunk);
                    rest = Some(buf);
                }
                (Some(_), Some(buf)) => buf.extend_from_slice(&chunk),
            }
            let len = rest
                .as_ref()
                .map_or_else(|| first.as_ref().map_or(0, Bytes::len), |b| b.len());
            if len > max_body {
                return Err(too_large(provider, max_body, None));
            }
        }
        Ok(match rest {
            Some(buf) => buf.freeze(),
            None => first.unwrap_or_default(),
        })
    };
    actix_rt::time::timeout(wait, read)
        .await
        .map_err(|_| ProviderError::timeout(provider, wait))?
}
