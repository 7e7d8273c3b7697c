//! Response ids: a native response's id names the deployment that holds it (LiteLLM's format,
//! so ids made by either proxy work in both), and the key that created it.
//!
//! The upstream's `resp_abc` becomes `resp_` + base64url of
//! `litellm:custom_llm_provider:openai;model_id:<deployment id>;response_id:resp_abc`, with
//! `;llmgate_key:<16 hex>` added when a virtual key made it. Retrieving, deleting or continuing
//! it then goes to that deployment, and only for that key (or the master key).

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;

const PREFIX: &str = "resp_";
const ENVELOPE: &str = "litellm:custom_llm_provider:";
const MODEL_ID: &str = ";model_id:";
const RESPONSE_ID: &str = ";response_id:";
const OWNER: &str = ";llmgate_key:";

/// How many hex digits of the key's SHA-256 name its owner: enough to tell keys apart, not a
/// secret (the caller presents the key itself).
const OWNER_DIGITS: usize = 16;

/// LiteLLM encodes with the standard alphabet and padding; llmgate with the URL-safe one (its
/// ids travel in paths). Both are read, padded or not.
const LENIENT: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);
const STANDARD_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);

/// Where a native response lives and who made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// The provider's name (`openai`, `azure`).
    pub provider: &'static str,
    /// The deployment's `model_info.id`.
    pub deployment_id: String,
    /// The SHA-256 hex of the virtual key that made it (`None`: the master key, or no auth).
    pub owner: Option<String>,
}

impl Scope {
    /// The id the client sees for the upstream's `upstream_id`.
    pub fn encode(&self, upstream_id: &str) -> String {
        let mut plain = format!(
            "{ENVELOPE}{}{MODEL_ID}{}{RESPONSE_ID}{upstream_id}",
            self.provider, self.deployment_id
        );
        if let Some(owner) = &self.owner {
            plain.push_str(OWNER);
            plain.push_str(owner_tag(owner));
        }
        format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(plain))
    }
}

/// An id made by [`Scope::encode`] (or by LiteLLM), read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The provider's name.
    pub provider: String,
    /// The deployment's id.
    pub deployment_id: String,
    /// The upstream's own id.
    pub upstream_id: String,
    /// The first hex digits of the creating key's hash, when a virtual key made it.
    pub owner: Option<String>,
}

impl Decoded {
    /// Whether the caller whose key hash is `token` (`None`: the master key or no auth) may use
    /// this response: the master key may use any, a virtual key only its own or an unowned one.
    pub fn allows(&self, token: Option<&str>) -> bool {
        match (&self.owner, token) {
            (_, None) | (None, Some(_)) => true,
            (Some(owner), Some(token)) => owner == owner_tag(token),
        }
    }
}

fn owner_tag(token: &str) -> &str {
    token.get(..OWNER_DIGITS).unwrap_or(token)
}

/// Reads an encoded id; `None` for any other id (the upstream's own, or a translated one).
pub fn decode(id: &str) -> Option<Decoded> {
    let encoded = id.strip_prefix(PREFIX)?;
    let bytes = URL_SAFE_LENIENT
        .decode(encoded)
        .or_else(|_| STANDARD_LENIENT.decode(encoded))
        .ok()?;
    let plain = String::from_utf8(bytes).ok()?;
    let rest = plain.strip_prefix(ENVELOPE)?;
    let (provider, rest) = rest.split_once(MODEL_ID)?;
    let (deployment_id, rest) = rest.split_once(RESPONSE_ID)?;
    let (upstream_id, owner) = match rest.split_once(OWNER) {
        Some((id, owner)) => (id, Some(owner.to_owned())),
        None => (rest, None),
    };
    if upstream_id.is_empty() {
        return None;
    }
    Some(Decoded {
        provider: provider.to_owned(),
        deployment_id: deployment_id.to_owned(),
        upstream_id: upstream_id.to_owned(),
        owner,
    })
}

/// A fresh id for a response llmgate wrote itself (a translated one).
pub fn translated() -> String {
    format!("{PREFIX}{}", crate::providers::random_uuid().simple())
}

/// A fresh id for an output item (`msg`, `fc`, `rs`).
pub fn item(kind: &str) -> String {
    format!("{kind}_{}", crate::providers::random_uuid().simple())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn an_encoded_id_reads_back_with_its_deployment_and_owner() {
        let scope = Scope {
            provider: "openai",
            deployment_id: "dep-1".into(),
            owner: Some(TOKEN.into()),
        };
        let id = scope.encode("resp_abc123");
        assert!(id.starts_with("resp_"));
        assert!(!id.contains(['/', '+', '=']), "{id}");
        let d = decode(&id).unwrap();
        assert_eq!(d.deployment_id, "dep-1");
        assert_eq!(d.upstream_id, "resp_abc123");
        assert_eq!(d.provider, "openai");
        assert_eq!(d.owner.as_deref(), Some("0123456789abcdef"));
        assert!(d.allows(Some(TOKEN)));
        assert!(d.allows(None));
        assert!(!d.allows(Some("ffff456789abcdef0000")));
    }

    #[test]
    fn a_litellm_made_id_is_read_too() {
        // LiteLLM: standard base64, padded, no owner.
        let plain = "litellm:custom_llm_provider:azure;model_id:my-id;response_id:resp_xyz";
        let id = format!(
            "resp_{}",
            base64::engine::general_purpose::STANDARD.encode(plain)
        );
        let d = decode(&id).unwrap();
        assert_eq!(
            (
                d.provider.as_str(),
                d.deployment_id.as_str(),
                d.upstream_id.as_str()
            ),
            ("azure", "my-id", "resp_xyz")
        );
        assert!(d.owner.is_none());
        assert!(d.allows(Some(TOKEN)));
    }

    #[test]
    fn upstream_and_translated_ids_are_not_decoded() {
        assert!(decode("resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b").is_none());
        assert!(decode(&translated()).is_none());
        assert!(decode("msg_123").is_none());
        assert!(decode("resp_").is_none());
    }
}
