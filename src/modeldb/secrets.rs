//! Provider credentials at rest: each sealed with AES-256-GCM under a key derived by SHA-256
//! from `LITELLM_SALT_KEY` (else the master key), a fresh nonce per value, stored as text.

use base64::Engine;
use openssl::symm::{decrypt_aead, encrypt_aead, Cipher};
use serde_json::{Map, Value as Json};
use sha2::{Digest, Sha256};

use crate::config::SECRET_PARAMS;

/// What a sealed value starts with.
const SEALED: &str = "llmgate:aes-256-gcm:";

/// A reference resolved when the model is loaded: stored as it is.
const ENV_REFERENCE: &str = "os.environ/";

const NONCE: usize = 12;
const TAG: usize = 16;

/// Why a stored credential cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The key differs from the one it was sealed with, or the text was altered.
    #[error(
        "litellm_params.{0} cannot be decrypted (was LITELLM_SALT_KEY or the master key changed?)"
    )]
    Open(String),
    /// The cipher failed.
    #[error("litellm_params.{0} cannot be encrypted")]
    Seal(String),
}

/// The key credentials are sealed with.
#[derive(Clone)]
pub struct Sealer {
    key: [u8; 32],
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(<key>)")
    }
}

impl Sealer {
    /// A sealer whose key is SHA-256 of `secret` (`LITELLM_SALT_KEY`, else the master key).
    pub fn new(secret: &str) -> Self {
        Self {
            key: Sha256::digest(secret.as_bytes()).into(),
        }
    }

    /// Seals every credential of `params` (`api_key`, `aws_secret_access_key`,
    /// `vertex_credentials`, ...), except `os.environ/` references and nulls.
    pub fn seal_params(&self, params: &mut Map<String, Json>) -> Result<(), SealError> {
        for (field, value) in params.iter_mut() {
            if !SECRET_PARAMS.contains(&field.as_str()) || !sealable(value) {
                continue;
            }
            *value = Json::String(self.seal(field, value)?);
        }
        Ok(())
    }

    /// Opens every sealed credential of `params` in place.
    pub fn open_params(&self, params: &mut Map<String, Json>) -> Result<(), SealError> {
        for (field, value) in params.iter_mut() {
            let Json::String(text) = value else { continue };
            if let Some(sealed) = text.strip_prefix(SEALED) {
                *value = self.open(field, sealed)?;
            }
        }
        Ok(())
    }

    /// `value` as JSON text, sealed; the field's name is bound in (a value moved to another
    /// field does not open).
    fn seal(&self, field: &str, value: &Json) -> Result<String, SealError> {
        let fail = || SealError::Seal(field.to_owned());
        let mut nonce = [0u8; NONCE];
        getrandom::fill(&mut nonce).map_err(|_| fail())?;
        let plain = value.to_string();
        let mut tag = [0u8; TAG];
        let sealed = encrypt_aead(
            Cipher::aes_256_gcm(),
            &self.key,
            Some(&nonce),
            field.as_bytes(),
            plain.as_bytes(),
            &mut tag,
        )
        .map_err(|_| fail())?;
        let mut out = Vec::with_capacity(NONCE + TAG + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&tag);
        out.extend_from_slice(&sealed);
        Ok(format!(
            "{SEALED}{}",
            base64::engine::general_purpose::STANDARD.encode(out)
        ))
    }

    fn open(&self, field: &str, sealed: &str) -> Result<Json, SealError> {
        let fail = || SealError::Open(field.to_owned());
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .map_err(|_| fail())?;
        if bytes.len() < NONCE + TAG {
            return Err(fail());
        }
        let (nonce, rest) = bytes.split_at(NONCE);
        let (tag, data) = rest.split_at(TAG);
        let plain = decrypt_aead(
            Cipher::aes_256_gcm(),
            &self.key,
            Some(nonce),
            field.as_bytes(),
            data,
            tag,
        )
        .map_err(|_| fail())?;
        serde_json::from_slice(&plain).map_err(|_| fail())
    }
}

/// Whether `value` is sealed when stored: not null, not an `os.environ/` reference, not sealed.
fn sealable(value: &Json) -> bool {
    match value {
        Json::Null => false,
        Json::String(s) => !s.starts_with(ENV_REFERENCE) && !s.starts_with(SEALED),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(v: Json) -> Map<String, Json> {
        match v {
            Json::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn credentials_are_sealed_and_open_again_while_the_rest_stays_readable() {
        let sealer = Sealer::new("sk-master-of-tests");
        let original = params(json!({
            "model": "openai/gpt-4o",
            "api_base": "http://h",
            "api_key": "sk-upstream-secret",
            "vertex_credentials": {"private_key": "-----BEGIN"},
            "aws_secret_access_key": "os.environ/AWS_SECRET",
        }));
        let mut stored = original.clone();
        sealer.seal_params(&mut stored).unwrap();
        let text = Json::Object(stored.clone()).to_string();
        assert!(!text.contains("sk-upstream-secret"), "{text}");
        assert!(!text.contains("BEGIN"), "{text}");
        assert_eq!(stored["model"], "openai/gpt-4o");
        assert_eq!(stored["aws_secret_access_key"], "os.environ/AWS_SECRET");
        assert!(stored["api_key"].as_str().unwrap().starts_with(SEALED));

        let mut opened = stored;
        sealer.open_params(&mut opened).unwrap();
        assert_eq!(opened, original);
    }

    #[test]
    fn each_value_gets_its_own_nonce_and_another_key_cannot_open_it() {
        let sealer = Sealer::new("one");
        let mut a = params(json!({"api_key": "sk-x"}));
        let mut b = a.clone();
        sealer.seal_params(&mut a).unwrap();
        sealer.seal_params(&mut b).unwrap();
        assert_ne!(a["api_key"], b["api_key"]);

        let err = Sealer::new("two").open_params(&mut a).unwrap_err();
        assert!(
            err.to_string().starts_with("litellm_params.api_key"),
            "{err}"
        );
        assert!(!err.to_string().contains("sk-x"));
    }

    #[test]
    fn a_sealed_value_moved_to_another_field_does_not_open() {
        let sealer = Sealer::new("k");
        let mut stored = params(json!({"api_key": "sk-x"}));
        sealer.seal_params(&mut stored).unwrap();
        let mut moved = Map::new();
        moved.insert("client_secret".into(), stored["api_key"].clone());
        assert!(sealer.open_params(&mut moved).is_err());
    }
}
