//! Virtual keys: generation, hashing, durations, the typed record, and the admission ledger.

pub mod audit;
pub mod ledger;
pub mod record;

use base64::Engine;
use chrono::{DateTime, Duration as ChronoDuration, Months, Utc};

pub use ledger::{Admission, Counting, KeyLedger, Rejection, Used};
pub use record::KeyRecord;

/// SHA-256 hex of a key: the only form in which keys are stored.
pub fn hash_key(key: &str) -> String {
    crate::state::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The stored token for what a caller gave: a plaintext `sk-` key is hashed, a 64-hex token
/// (as `/key/list` returns) is taken as is.
pub fn token_of(given: &str) -> String {
    if given.len() == 64 && given.bytes().all(|b| b.is_ascii_hexdigit()) {
        given.to_ascii_lowercase()
    } else {
        hash_key(given)
    }
}

/// A new key: `sk-` and 32 URL-safe characters from 192 bits of OS randomness.
pub fn generate_key() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes)?;
    Ok(format!(
        "sk-{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// `sk-...XXXX`: the abbreviated form shown in lists and logs.
pub fn key_name(key: &str) -> String {
    crate::error::abbreviate_key(key)
}

/// A LiteLLM duration: `30s`, `30m` or `30min`, `30h`, `30d`, `1mo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyDuration {
    /// Seconds.
    Seconds(i64),
    /// Calendar months.
    Months(u32),
}

impl KeyDuration {
    /// Parses strictly; anything else is `None`.
    pub fn parse(text: &str) -> Option<Self> {
        let t = text.trim();
        let split = t.find(|c: char| !c.is_ascii_digit())?;
        let (num, unit) = t.split_at(split);
        let n: i64 = num.parse().ok().filter(|n| *n > 0)?;
        Some(match unit {
            "s" => Self::Seconds(n),
            "m" | "min" => Self::Seconds(n.checked_mul(60)?),
            "h" => Self::Seconds(n.checked_mul(3600)?),
            "d" => Self::Seconds(n.checked_mul(86_400)?),
            "mo" => Self::Months(u32::try_from(n).ok()?),
            _ => return None,
        })
    }

    /// `from` moved forward by this duration.
    pub fn after(self, from: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Self::Seconds(s) => from.checked_add_signed(ChronoDuration::try_seconds(s)?),
            Self::Months(m) => from.checked_add_months(Months::new(m)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_strictly() {
        assert_eq!(KeyDuration::parse("30s"), Some(KeyDuration::Seconds(30)));
        assert_eq!(KeyDuration::parse("30m"), Some(KeyDuration::Seconds(1800)));
        assert_eq!(
            KeyDuration::parse("30min"),
            Some(KeyDuration::Seconds(1800))
        );
        assert_eq!(KeyDuration::parse("2h"), Some(KeyDuration::Seconds(7200)));
        assert_eq!(
            KeyDuration::parse("30d"),
            Some(KeyDuration::Seconds(2_592_000))
        );
        assert_eq!(KeyDuration::parse("1mo"), Some(KeyDuration::Months(1)));
        for bad in ["", "30", "d", "30x", "-5s", "1.5h", "30 days", "0s", "1y"] {
            assert_eq!(KeyDuration::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn generated_keys_are_long_random_and_prefixed() {
        let a = generate_key().unwrap();
        let b = generate_key().unwrap();
        assert!(a.starts_with("sk-") && a.len() == 35);
        assert_ne!(a, b);
    }

    #[test]
    fn tokens_are_sha256_hex_and_hashes_pass_through() {
        let t = hash_key("sk-1234");
        assert_eq!(t.len(), 64);
        assert_eq!(token_of("sk-1234"), t);
        assert_eq!(token_of(&t), t);
    }
}
