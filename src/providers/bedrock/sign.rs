//! SigV4 signing of Bedrock calls (service `bedrock`) with `aws-sigv4`: the headers that must
//! go with one request, computed over its exact method, URL, headers and body.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;

use crate::config::Secret;

/// The service name Bedrock's runtime signs under.
pub const SERVICE: &str = "bedrock";

/// A deployment's AWS credentials and region (from `litellm_params`, else the environment).
#[derive(Clone)]
pub struct AwsAuth {
    /// `aws_access_key_id`.
    pub access_key_id: Secret,
    /// `aws_secret_access_key`.
    pub secret_access_key: Secret,
    /// `aws_session_token`, for temporary credentials.
    pub session_token: Option<Secret>,
    /// `aws_region_name`.
    pub region: String,
}

impl std::fmt::Debug for AwsAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsAuth")
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// The `host` of `url` (with its port when it names one), as sent and signed.
pub fn host_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    Some(&rest[..end])
}

/// The headers to add to a `POST` of `body` (`content-type: application/json`) to `url`,
/// signed at `now`: `host`, `x-amz-date`, `x-amz-security-token` with a session token, and
/// `authorization`.
pub fn signed_headers(
    auth: &AwsAuth,
    url: &str,
    body: &[u8],
    now: SystemTime,
) -> Result<Vec<(&'static str, String)>, String> {
    let host = host_of(url).ok_or_else(|| format!("no host in {url}"))?;
    let credentials = Credentials::new(
        auth.access_key_id.expose(),
        auth.secret_access_key.expose(),
        auth.session_token.as_ref().map(|t| t.expose().to_owned()),
        None,
        "litellm_params",
    );
    let identity = credentials.into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&auth.region)
        .name(SERVICE)
        .time(now)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let headers = [("host", host), ("content-type", "application/json")];
    let request = SignableRequest::new("POST", url, headers.into_iter(), SignableBody::Bytes(body))
        .map_err(|e| e.to_string())?;
    let (instructions, _signature) = sign(request, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    let mut out = vec![("host", host.to_owned())];
    out.extend(
        instructions
            .headers()
            .map(|(k, v)| (static_name(k), v.to_owned())),
    );
    Ok(out)
}

/// The signer's header names are static strings already; this keeps the type `'static`.
fn static_name(name: &str) -> &'static str {
    match name {
        "authorization" => "authorization",
        "x-amz-date" => "x-amz-date",
        "x-amz-security-token" => "x-amz-security-token",
        "x-amz-content-sha256" => "x-amz-content-sha256",
        _ => "x-amz-unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_covers_host_date_and_token_for_the_bedrock_service() {
        let auth = AwsAuth {
            access_key_id: Secret::new("AKIDEXAMPLE"),
            secret_access_key: Secret::new("secret"),
            session_token: Some(Secret::new("token")),
            region: "us-west-2".into(),
        };
        let url = "http://127.0.0.1:9/model/a.b-v1%3A0/converse";
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let headers = signed_headers(&auth, url, b"{}", at).unwrap();
        let get = |k: &str| {
            headers
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("host"), Some("127.0.0.1:9"));
        assert_eq!(get("x-amz-date"), Some("20231114T221320Z"));
        assert_eq!(get("x-amz-security-token"), Some("token"));
        let authorization = get("authorization").unwrap();
        assert!(authorization.starts_with(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/us-west-2/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature="
        ), "{authorization}");
        assert!(!format!("{auth:?}").contains("secret"));
    }
}
