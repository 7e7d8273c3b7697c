//! The master key's strength: a published example key, or one too short to resist guessing,
//! keeps the proxy from starting unless the operator says, knowingly, to start anyway (as
//! LiteLLM does with `LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY`).

/// The shortest master key accepted.
pub const MIN_LENGTH: usize = 16;

/// Master keys printed in LiteLLM's and llmgate's docs, examples and tutorials: anyone may try
/// them. Compared without regard to case.
const PUBLISHED: &[&str] = &[
    "sk-1234",
    "sk-12345",
    "sk-123456",
    "sk-1234567",
    "sk-12345678",
    "sk-123456789",
    "sk-1234567890",
    "sk-admin",
    "sk-master",
    "sk-master-key",
    "sk-my-master-key",
    "sk-litellm",
    "sk-litellm-master-key",
    "sk-litellm-master",
    "sk-your-master-key",
    "sk-your-master-key-here",
    "sk-change-me",
    "sk-changeme",
    "sk-change-me-to-a-long-random-key",
    "sk-password",
    "sk-secret",
    "sk-test",
    "sk-xxx",
    "sk-xxxx",
    "sk-anything",
];

/// Why a master key is weak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weakness {
    /// It is one of the keys printed in docs and examples.
    Published,
    /// It has fewer than [`MIN_LENGTH`] characters.
    TooShort(usize),
}

impl std::fmt::Display for Weakness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Published => f.write_str("it is a published example key that anyone may try"),
            Self::TooShort(n) => {
                write!(f, "it has {n} characters; at least {MIN_LENGTH} are needed")
            }
        }
    }
}

/// What is wrong with `key`, if anything.
pub fn weakness(key: &str) -> Option<Weakness> {
    let trimmed = key.trim();
    if PUBLISHED.iter().any(|p| p.eq_ignore_ascii_case(trimmed)) {
        return Some(Weakness::Published);
    }
    let n = trimmed.chars().count();
    (n < MIN_LENGTH).then_some(Weakness::TooShort(n))
}

/// The startup error for a weak key: what is wrong, and the ways out.
pub fn refusal(weakness: Weakness) -> String {
    format!(
        "refusing to start: the master key is weak ({weakness}).\n\
         Set a strong one in LITELLM_MASTER_KEY (or general_settings.master_key), e.g.:\n    \
         export LITELLM_MASTER_KEY=\"sk-$(openssl rand -hex 32)\"\n\
         To start anyway on a machine nobody else can reach, pass --allow-weak-master-key or set \
         LLMGATE_ALLOW_WEAK_MASTER_KEY=true (LiteLLM's \
         LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY=true and \
         general_settings.dangerously_permit_weak_or_unset_master_key: true work too)."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_and_short_keys_are_weak_long_random_ones_are_not() {
        assert_eq!(weakness("sk-1234"), Some(Weakness::Published));
        assert_eq!(weakness("SK-1234"), Some(Weakness::Published));
        assert_eq!(weakness("sk-litellm-master-key"), Some(Weakness::Published));
        assert_eq!(weakness("sk-short-key"), Some(Weakness::TooShort(12)));
        assert_eq!(weakness("sk-9f2c1a7e44d0b6a3"), None);
    }

    #[test]
    fn the_refusal_says_how_to_fix_it() {
        let text = refusal(Weakness::Published);
        assert!(text.contains("LITELLM_MASTER_KEY"), "{text}");
        assert!(text.contains("--allow-weak-master-key"), "{text}");
        assert!(text.contains("LLMGATE_ALLOW_WEAK_MASTER_KEY"), "{text}");
    }
}
