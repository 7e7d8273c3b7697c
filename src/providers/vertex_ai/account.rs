//! A Google service account: read from `vertex_credentials` or `GOOGLE_APPLICATION_CREDENTIALS`,
//! and the signed JWT (RS256) it trades for an OAuth access token.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::sign::Signer;
use serde::Deserialize;
use serde_json::json;

/// The OAuth scope Vertex AI calls need.
pub const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// Google's token endpoint, for a key file that names none.
pub const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

/// How long an assertion is valid, in seconds (Google's maximum).
const ASSERTION_LIFETIME: u64 = 3600;

/// More than any service-account key file (they are about 2.3 KB).
const MAX_KEY_FILE_BYTES: u64 = 1024 * 1024;

/// Reads a key file: a regular file of at most [`MAX_KEY_FILE_BYTES`], so a config naming a
/// device or a pipe (`/dev/zero`, `/dev/stdin`) fails at once instead of hanging the load.
fn read_key_file(path: &str) -> std::io::Result<String> {
    use std::io::Read;
    let invalid = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, m.to_owned());
    if !std::fs::metadata(path)?.is_file() {
        return Err(invalid("not a regular file"));
    }
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_KEY_FILE_BYTES + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_KEY_FILE_BYTES {
        return Err(invalid("larger than a service account key"));
    }
    Ok(text)
}

/// A service account's identity and signing key. `Debug` never shows the key.
#[derive(Clone)]
pub struct ServiceAccount {
    /// `client_email`: the JWT's issuer.
    pub client_email: String,
    /// `token_uri`: where the JWT is traded for an access token (the JWT's audience).
    pub token_uri: String,
    /// `project_id`, the project used when the deployment names none.
    pub project_id: Option<String>,
    key: PKey<Private>,
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("client_email", &self.client_email)
            .field("token_uri", &self.token_uri)
            .field("project_id", &self.project_id)
            .field("key", &"<redacted>")
            .finish()
    }
}

#[derive(Deserialize)]
struct KeyFile {
    #[serde(rename = "type")]
    kind: Option<String>,
    client_email: Option<String>,
    private_key: Option<String>,
    token_uri: Option<String>,
    project_id: Option<String>,
}

impl ServiceAccount {
    /// Reads a service-account key: `source` is the JSON text itself or the path of a file
    /// holding it. Errors never quote the key.
    pub fn load(source: &str) -> Result<Self, String> {
        let trimmed = source.trim_start();
        if trimmed.starts_with('{') {
            return Self::from_json(trimmed);
        }
        let text = read_key_file(source)
            .map_err(|e| format!("cannot read the service account file {source:?}: {e}"))?;
        Self::from_json(&text)
    }

    /// Reads a service-account key from its JSON text.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let file: KeyFile = serde_json::from_str(text)
            .map_err(|e| format!("not a service account key (JSON): line {}", e.line()))?;
        if let Some(kind) = file.kind.as_deref().filter(|k| *k != "service_account") {
            return Err(format!(
                "credentials of type {kind:?} are not supported: give a service account key"
            ));
        }
        let client_email = file
            .client_email
            .filter(|e| !e.is_empty())
            .ok_or("the service account key has no client_email")?;
        let pem = file
            .private_key
            .filter(|k| !k.is_empty())
            .ok_or("the service account key has no private_key")?;
        let key = PKey::private_key_from_pem(pem.as_bytes())
            .map_err(|_| "the service account's private_key is not a PEM private key".to_owned())?;
        Ok(Self {
            client_email,
            token_uri: file
                .token_uri
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| DEFAULT_TOKEN_URI.to_owned()),
            project_id: file.project_id.filter(|p| !p.is_empty()),
            key,
        })
    }

    /// What tokens are cached under: one token per account and token endpoint.
    pub fn cache_key(&self) -> String {
        format!("{}\n{}", self.client_email, self.token_uri)
    }

    /// The signed JWT assertion (RS256) issued at `now` (seconds since the epoch), valid for
    /// an hour, asking for the `cloud-platform` scope at the account's token endpoint.
    pub fn assertion(&self, now: u64) -> Result<String, openssl::error::ErrorStack> {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let claims = json!({
            "iss": self.client_email,
            "scope": SCOPE,
            "aud": self.token_uri,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME,
        });
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signing_input = format!("{header}.{claims}");
        let mut signer = Signer::new(MessageDigest::sha256(), &self.key)?;
        signer.update(signing_input.as_bytes())?;
        let signature = URL_SAFE_NO_PAD.encode(signer.sign_to_vec()?);
        Ok(format!("{signing_input}.{signature}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::rsa::Rsa;
    use openssl::sign::Verifier;
    use serde_json::Value as Json;

    /// A throwaway key, made for the test.
    fn key_file() -> (String, PKey<openssl::pkey::Public>) {
        let rsa = Rsa::generate(2048).unwrap();
        let pem = String::from_utf8(rsa.private_key_to_pem().unwrap()).unwrap();
        let public = PKey::public_key_from_pem(&rsa.public_key_to_pem().unwrap()).unwrap();
        let text = json!({
            "type": "service_account",
            "project_id": "proj-from-key",
            "private_key": pem,
            "client_email": "gateway@proj-from-key.iam.gserviceaccount.com",
            "token_uri": "https://oauth2.example.test/token",
        })
        .to_string();
        (text, public)
    }

    #[test]
    fn the_assertion_carries_googles_claims_and_verifies_with_the_public_key() {
        let (text, public) = key_file();
        let account = ServiceAccount::load(&text).unwrap();
        let jwt = account.assertion(1_700_000_000).unwrap();

        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let decode = |p: &str| -> Json {
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
        };
        assert_eq!(decode(parts[0]), json!({"alg": "RS256", "typ": "JWT"}));
        assert_eq!(
            decode(parts[1]),
            json!({
                "iss": "gateway@proj-from-key.iam.gserviceaccount.com",
                "scope": "https://www.googleapis.com/auth/cloud-platform",
                "aud": "https://oauth2.example.test/token",
                "iat": 1_700_000_000u64,
                "exp": 1_700_003_600u64,
            })
        );
        let mut verifier = Verifier::new(MessageDigest::sha256(), &public).unwrap();
        verifier
            .update(format!("{}.{}", parts[0], parts[1]).as_bytes())
            .unwrap();
        assert!(verifier
            .verify(&URL_SAFE_NO_PAD.decode(parts[2]).unwrap())
            .unwrap());
        assert_eq!(account.project_id.as_deref(), Some("proj-from-key"));
    }

    #[test]
    fn a_key_file_path_is_read_and_bad_keys_are_named_without_quoting_them() {
        let (text, _) = key_file();
        let path = std::env::temp_dir().join(format!("llmgate-vertex-{}.json", std::process::id()));
        std::fs::write(&path, &text).unwrap();
        let account = ServiceAccount::load(path.to_str().unwrap()).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(format!("{account:?}").contains("<redacted>"));
        assert!(!format!("{account:?}").contains("PRIVATE"));

        let bad = r#"{"type":"service_account","client_email":"a@b","private_key":"-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n"}"#;
        let err = ServiceAccount::load(bad).unwrap_err();
        assert_eq!(
            err,
            "the service account's private_key is not a PEM private key"
        );
        assert!(ServiceAccount::load("/nonexistent/key.json")
            .unwrap_err()
            .starts_with("cannot read the service account file"));
        for device in ["/dev/zero", "/tmp"] {
            let err = ServiceAccount::load(device).unwrap_err();
            assert!(err.contains("not a regular file"), "{device}: {err}");
        }

        let mut without_uri: Json = serde_json::from_str(&text).unwrap();
        without_uri.as_object_mut().unwrap().remove("token_uri");
        let account = ServiceAccount::from_json(&without_uri.to_string()).unwrap();
        assert_eq!(account.token_uri, DEFAULT_TOKEN_URI);
    }
}
