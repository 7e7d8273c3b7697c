//! OAuth access tokens for service accounts: fetched from the token endpoint with a signed
//! JWT, cached per account across workers, refreshed before they expire, one fetch at a time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::account::ServiceAccount;
use crate::config::Secret;
use crate::providers::{ErrorKind, ProviderError, ProviderKind};

/// The OAuth grant that trades a signed JWT for an access token.
const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// A token is replaced this long before it expires, so no call leaves with a stale one.
const REFRESH_EARLY: Duration = Duration::from_secs(300);

/// The largest token-endpoint reply read.
const MAX_REPLY: usize = 64 * 1024;

#[derive(Clone)]
struct Token {
    value: Secret,
    refresh_at: Instant,
}

type Slot = Arc<tokio::sync::Mutex<Option<Token>>>;

/// Access tokens by service account, shared by every worker. Each account has its own async
/// lock: the first request that finds no fresh token fetches one, the others wait for it.
#[derive(Default, Clone)]
pub struct TokenCache {
    slots: Arc<Mutex<HashMap<String, Slot>>>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenCache(..)")
    }
}

#[derive(Deserialize)]
struct Granted {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize, Default)]
struct Refused {
    #[serde(default)]
    error: Option<serde_json::Value>,
    #[serde(default)]
    error_description: Option<String>,
}

impl TokenCache {
    /// The `authorization` value a call to `deployment` needs beyond its configured headers:
    /// Vertex AI's OAuth token (fetched or cached, waiting at most `wait`); `None` for others.
    pub async fn bearer_for(
        &self,
        client: &awc::Client,
        deployment: &crate::config::Deployment,
        wait: Duration,
    ) -> Result<Option<String>, ProviderError> {
        let Some(vertex) = &deployment.vertex else {
            return Ok(None);
        };
        let token = self
            .access_token(client, &vertex.account, deployment.provider, wait)
            .await?;
        Ok(Some(format!("Bearer {}", token.expose())))
    }

    /// A fresh access token for `account`: the cached one, else one fetched with `client`
    /// (waiting at most `wait` for the token endpoint).
    pub async fn access_token(
        &self,
        client: &awc::Client,
        account: &ServiceAccount,
        provider: ProviderKind,
        wait: Duration,
    ) -> Result<Secret, ProviderError> {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            slots.entry(account.cache_key()).or_default().clone()
        };
        let mut cached = slot.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| Instant::now() < t.refresh_at) {
            return Ok(token.value.clone());
        }
        let token = fetch(client, account, provider, wait).await?;
        let value = token.value.clone();
        *cached = Some(token);
        Ok(value)
    }
}

/// Trades a fresh JWT assertion for an access token at the account's token endpoint.
async fn fetch(
    client: &awc::Client,
    account: &ServiceAccount,
    provider: ProviderKind,
    wait: Duration,
) -> Result<Token, ProviderError> {
    let assertion = account
        .assertion(crate::providers::unix_now())
        .map_err(|_| {
            refused(
                provider,
                "the service account key cannot sign a token request",
            )
        })?;
    let started = Instant::now();
    let mut res = client
        .post(&account.token_uri)
        .timeout(wait)
        .send_form(&[
            ("grant_type", GRANT_TYPE),
            ("assertion", assertion.as_str()),
        ])
        .await
        .map_err(|e| match e {
            awc::error::SendRequestError::Timeout => ProviderError::timeout(provider, wait),
            other => ProviderError::connection(
                provider,
                format!(
                    "cannot reach the token endpoint {}: {other}",
                    account.token_uri
                ),
            ),
        })?;
    let body = res
        .body()
        .limit(MAX_REPLY)
        .await
        .map_err(|e| ProviderError::connection(provider, format!("token endpoint: {e}")))?;
    let status = res.status();
    if !status.is_success() {
        let why: Refused = serde_json::from_slice(&body).unwrap_or_default();
        let error = match why.error {
            Some(serde_json::Value::String(s)) => s,
            Some(serde_json::Value::Object(o)) => o
                .get("message")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            _ => String::new(),
        };
        let detail = [error, why.error_description.unwrap_or_default()]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(": ");
        return Err(refused(
            provider,
            &format!(
                "the token endpoint refused the service account {} ({}){}{detail}",
                account.client_email,
                status.as_u16(),
                if detail.is_empty() { "" } else { ": " },
            ),
        ));
    }
    let granted: Granted = serde_json::from_slice(&body).map_err(|_| {
        ProviderError::connection(provider, "the token endpoint's reply has no access_token")
    })?;
    let lifetime = Duration::from_secs(granted.expires_in.unwrap_or(3600));
    Ok(Token {
        value: Secret::new(granted.access_token),
        refresh_at: started + fresh_for(lifetime),
    })
}

/// How long a token that lives `lifetime` is used: five minutes less (half, for a short one),
/// counted from when it was asked for.
fn fresh_for(lifetime: Duration) -> Duration {
    lifetime - REFRESH_EARLY.min(lifetime / 2)
}

/// LiteLLM's `AuthenticationError` for credentials the gateway could not turn into a token.
fn refused(provider: ProviderKind, detail: &str) -> ProviderError {
    ProviderError {
        status: 401,
        kind: ErrorKind::Status,
        message: format!(
            "litellm.AuthenticationError: {}Exception - {detail}",
            provider.display()
        ),
        upstream_type: Some("authentication_error".into()),
        param: None,
        retry_after: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_replaced_five_minutes_before_they_expire() {
        assert_eq!(
            fresh_for(Duration::from_secs(3600)),
            Duration::from_secs(3300)
        );
        assert_eq!(fresh_for(Duration::from_secs(120)), Duration::from_secs(60));
        assert_eq!(fresh_for(Duration::ZERO), Duration::ZERO);
    }
}
