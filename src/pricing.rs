//! The shipped model price table: what a token in and out costs, and how many tokens a model reads.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;

/// The table, compiled in so a fresh install prices requests without network access.
const TABLE_JSON: &str = include_str!("../data/model_prices.json");

/// The USD price of one prompt token and one completion token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    /// USD per prompt (input) token.
    pub input_cost_per_token: f64,
    /// USD per completion (output) token.
    pub output_cost_per_token: f64,
}

#[derive(Deserialize)]
struct RawTable {
    models: HashMap<String, Entry>,
}

#[derive(Deserialize)]
struct Entry {
    // Images, speech, transcriptions and rerank are priced per unit and may have no token price.
    #[serde(default)]
    input_cost_per_token: f64,
    #[serde(default)]
    output_cost_per_token: f64,
    #[serde(default)]
    max_input_tokens: Option<u64>,
    #[serde(flatten)]
    units: crate::unit_pricing::UnitPrices,
}

#[derive(Default)]
struct Table {
    /// Keyed by `provider/model`.
    entries: HashMap<String, Entry>,
    /// Bare model id to the `provider/model` key that prices it when the provider has no entry.
    by_model: HashMap<String, String>,
}

impl Table {
    fn parse(text: &str) -> Result<Self, serde_json::Error> {
        let raw: RawTable = serde_json::from_str(text)?;
        let mut keys: Vec<&String> = raw.models.keys().collect();
        keys.sort();
        let mut by_model: HashMap<String, String> = HashMap::new();
        for key in keys {
            let Some((provider, model)) = key.split_once('/') else {
                continue;
            };
            // Sorted order makes the choice deterministic; OpenAI's own price wins because
            // a bare OpenAI model name most often means OpenAI's model behind some proxy.
            if provider == "openai" || !by_model.contains_key(model) {
                by_model.insert(model.to_owned(), key.clone());
            }
        }
        Ok(Self {
            entries: raw.models,
            by_model,
        })
    }

    fn resolve(&self, provider: &str, model: &str) -> Option<&Entry> {
        let stripped = strip_date_suffix(model);
        let names = std::iter::once(model).chain(stripped);
        for name in names.clone() {
            for p in std::iter::once(provider).chain(aliases(provider).iter().copied()) {
                if let Some(entry) = self.entries.get(&format!("{p}/{name}")) {
                    return Some(entry);
                }
            }
        }
        names
            .filter_map(|name| self.by_model.get(name))
            .find_map(|key| self.entries.get(key))
    }
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        Table::parse(TABLE_JSON).unwrap_or_else(|e| {
            // Unreachable while the unit tests pass; pricing then falls back to config prices only.
            log::error!("the shipped price table data/model_prices.json does not parse: {e}");
            Table::default()
        })
    })
}

/// Providers whose models are priced like another provider's when the table has no own entry.
fn aliases(provider: &str) -> &'static [&'static str] {
    match provider {
        "azure" | "text-completion-openai" => &["openai"],
        "ollama_chat" => &["ollama"],
        "cohere_chat" => &["cohere"],
        "vertex_ai_beta" => &["vertex_ai"],
        _ => &[],
    }
}

/// `model` without a trailing release date (`-2024-08-06`, `-20241022`, `@20241022`, `-2411`).
fn strip_date_suffix(model: &str) -> Option<&str> {
    let b = model.as_bytes();
    let n = b.len();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    // Each head ends just before an ASCII separator, so the slices below are on char boundaries.
    let iso_separators = n > 11 && b[n - 11] == b'-' && b[n - 6] == b'-' && b[n - 3] == b'-';
    if iso_separators && digits(n - 10..n - 6) && digits(n - 5..n - 3) && digits(n - 2..n) {
        return Some(&model[..n - 11]);
    }
    if n > 9 && matches!(b[n - 9], b'-' | b'@') && digits(n - 8..n) {
        return Some(&model[..n - 9]);
    }
    if n > 5 && b[n - 5] == b'-' && digits(n - 4..n) {
        return Some(&model[..n - 5]);
    }
    None
}

/// The price of `model` served by `provider` (`litellm_params.model` split at its first `/`).
///
/// Tries `provider/model`, then the provider's aliases (`azure` and `text-completion-openai`
/// are priced as `openai`), then any provider's entry for the bare `model` (OpenAI's first,
/// otherwise the first key in sorted order). Each step also tries `model` without a trailing
/// release date. `None` when nothing matches.
pub fn lookup(provider: &str, model: &str) -> Option<Price> {
    table().resolve(provider, model).map(|e| Price {
        input_cost_per_token: e.input_cost_per_token,
        output_cost_per_token: e.output_cost_per_token,
    })
}

/// The per-unit prices (per image, pixel, character, second, query) of `model` served by
/// `provider`, resolved like [`lookup`]; `None` when the table has no entry.
pub fn unit_prices(provider: &str, model: &str) -> Option<crate::unit_pricing::UnitPrices> {
    table().resolve(provider, model).map(|e| e.units)
}

/// USD cost of a request: prompt tokens at the input price plus completion tokens at the output price.
pub fn cost(price: Price, prompt_tokens: u64, completion_tokens: u64) -> f64 {
    prompt_tokens as f64 * price.input_cost_per_token
        + completion_tokens as f64 * price.output_cost_per_token
}

/// The most prompt tokens `model` accepts, resolved like [`lookup`]; `None` when unknown.
pub fn context_window(provider: &str, model: &str) -> Option<u64> {
    table()
        .resolve(provider, model)
        .and_then(|e| e.max_input_tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROVIDERS: &[&str] = &[
        "openai",
        "azure",
        "text-completion-openai",
        "groq",
        "mistral",
        "deepseek",
        "together_ai",
        "fireworks_ai",
        "openrouter",
        "xai",
        "perplexity",
        "deepinfra",
        "cerebras",
        "anthropic",
        "gemini",
        "vertex_ai",
        "bedrock",
        "cohere",
        "ollama",
        "huggingface",
        "jina_ai",
    ];

    fn price(input: f64, output: f64) -> Price {
        Price {
            input_cost_per_token: input,
            output_cost_per_token: output,
        }
    }

    #[test]
    fn shipped_table_parses_with_sane_prices() {
        let table = Table::parse(TABLE_JSON).expect("data/model_prices.json parses");
        assert!(
            table.entries.len() >= 150,
            "{} entries",
            table.entries.len()
        );
        for (key, e) in &table.entries {
            for p in [e.input_cost_per_token, e.output_cost_per_token] {
                assert!(p.is_finite() && p >= 0.0, "{key}: bad price {p}");
            }
            assert!(e.max_input_tokens != Some(0), "{key}: zero context window");
        }
    }

    #[test]
    fn every_key_names_a_known_provider_and_mode() {
        let raw: serde_json::Value = serde_json::from_str(TABLE_JSON).expect("json");
        assert!(raw["source"].is_string() && raw["as_of"].is_string());
        let models = raw["models"].as_object().expect("models object");
        for (key, entry) in models {
            let (provider, model) = key.split_once('/').expect("provider/model key");
            assert!(PROVIDERS.contains(&provider), "{key}: unknown provider");
            assert!(!model.is_empty(), "{key}: empty model");
            let mode = entry["mode"].as_str().unwrap_or_default();
            assert!(
                [
                    "chat",
                    "completion",
                    "embedding",
                    "image_generation",
                    "audio_speech",
                    "audio_transcription",
                    "moderation",
                    "rerank"
                ]
                .contains(&mode),
                "{key}: mode {mode:?}"
            );
        }
    }

    #[test]
    fn known_models_have_their_table_prices() {
        assert_eq!(lookup("openai", "gpt-4o-mini"), Some(price(1.5e-07, 6e-07)));
        assert_eq!(lookup("openai", "gpt-4o"), Some(price(2.5e-06, 1e-05)));
        assert_eq!(
            lookup("anthropic", "claude-sonnet-4-5"),
            Some(price(3e-06, 1.5e-05))
        );
        assert_eq!(
            lookup("azure", "gpt-4o-mini"),
            Some(price(1.65e-07, 6.6e-07))
        );
        assert_eq!(
            lookup("text-completion-openai", "gpt-3.5-turbo-instruct"),
            Some(price(1.5e-06, 2e-06))
        );
        assert_eq!(
            lookup("openai", "text-embedding-3-small"),
            Some(price(2e-08, 0.0))
        );
        assert_eq!(lookup("ollama", "llama3.1"), Some(price(0.0, 0.0)));
    }

    #[test]
    fn azure_and_text_completion_fall_back_to_openai_prices() {
        assert!(!table().entries.contains_key("azure/o1-pro"));
        assert_eq!(lookup("azure", "o1-pro"), lookup("openai", "o1-pro"));
        assert!(lookup("azure", "o1-pro").is_some());
        assert_eq!(
            lookup("text-completion-openai", "gpt-3.5-turbo"),
            Some(price(5e-07, 1.5e-06))
        );
    }

    #[test]
    fn a_release_date_the_table_lacks_is_stripped() {
        assert_eq!(
            lookup("openai", "gpt-4.1-2025-04-14"),
            lookup("openai", "gpt-4.1")
        );
        assert_eq!(
            lookup("anthropic", "claude-opus-4-6-20260205"),
            Some(price(5e-06, 2.5e-05))
        );
        assert_eq!(
            lookup("vertex_ai", "claude-opus-4-5@20251101"),
            lookup("vertex_ai", "claude-opus-4-5")
        );
    }

    #[test]
    fn date_suffixes_are_recognised_in_each_form() {
        assert_eq!(strip_date_suffix("gpt-4o-2024-08-06"), Some("gpt-4o"));
        assert_eq!(
            strip_date_suffix("claude-3-5-sonnet-20241022"),
            Some("claude-3-5-sonnet")
        );
        assert_eq!(
            strip_date_suffix("claude-opus-4-1@20250805"),
            Some("claude-opus-4-1")
        );
        assert_eq!(
            strip_date_suffix("mistral-large-2411"),
            Some("mistral-large")
        );
        assert_eq!(strip_date_suffix("gpt-4o"), None);
        assert_eq!(strip_date_suffix("llama-3.3-70b"), None);
        assert_eq!(strip_date_suffix("2024-08-06"), None);
        assert_eq!(strip_date_suffix("-2024-08-06"), None);
    }

    #[test]
    fn a_bare_model_name_is_priced_by_any_provider_preferring_openai() {
        assert_eq!(lookup("hosted_vllm", "gpt-4o"), lookup("openai", "gpt-4o"));
        assert_eq!(
            lookup("openai_like", "llama-3.3-70b-versatile"),
            lookup("groq", "llama-3.3-70b-versatile")
        );
        // Several providers list gpt-oss-120b under this id; the first key in sorted order wins.
        assert_eq!(
            lookup("hosted_vllm", "openai/gpt-oss-120b"),
            lookup("deepinfra", "openai/gpt-oss-120b")
        );
    }

    #[test]
    fn unknown_models_have_no_price_or_context() {
        assert_eq!(lookup("openai", "no-such-model"), None);
        assert_eq!(lookup("no-such-provider", "no-such-model-2024-01-01"), None);
        assert_eq!(context_window("openai", "no-such-model"), None);
    }

    #[test]
    fn context_windows_come_from_the_table() {
        assert_eq!(context_window("openai", "gpt-4o-mini"), Some(128_000));
        assert_eq!(context_window("azure", "gpt-4.1"), Some(1_047_576));
        assert_eq!(
            context_window("together_ai", "meta-llama/Llama-3.3-70B-Instruct-Turbo"),
            None
        );
    }

    #[test]
    fn cost_is_tokens_times_prices() {
        let p = price(1e-06, 2e-06);
        assert!((cost(p, 1_000, 500) - 0.002).abs() < 1e-12);
        assert_eq!(cost(p, 0, 0), 0.0);
        let mini = lookup("openai", "gpt-4o-mini").expect("priced");
        assert!((cost(mini, 1_000_000, 1_000_000) - 0.75).abs() < 1e-9);
    }
}
