//! Which provider a `litellm_params.model` names, and where that provider lives by default.

pub use super::huggingface::Api as HuggingFaceApi;

/// A provider's defaults: its prefix, name in messages, base URL and key variables. The
/// OpenAI-compatible family shares OpenAI's wire format; the others have an adapter each.
#[derive(Debug, PartialEq, Eq)]
pub struct Flavor {
    /// The model prefix, without the slash (`groq`).
    pub prefix: &'static str,
    /// The name LiteLLM uses in error messages (`GroqException`).
    pub display: &'static str,
    /// The base URL used when neither the config nor the environment gives one.
    pub default_base: Option<&'static str>,
    /// Environment variables that may hold the key, first found wins.
    pub key_env: &'static [&'static str],
    /// Environment variables that may hold the base URL.
    pub base_env: &'static [&'static str],
}

/// The OpenAI-compatible family, selected by prefix.
pub static FLAVORS: &[Flavor] = &[
    Flavor {
        prefix: "openai",
        display: "OpenAI",
        default_base: Some("https://api.openai.com/v1"),
        key_env: &["OPENAI_API_KEY"],
        base_env: &["OPENAI_API_BASE", "OPENAI_BASE_URL"],
    },
    Flavor {
        prefix: "openai_like",
        display: "OpenAILike",
        default_base: None,
        key_env: &["OPENAI_LIKE_API_KEY"],
        base_env: &["OPENAI_LIKE_API_BASE"],
    },
    Flavor {
        prefix: "hosted_vllm",
        display: "HostedVLLM",
        default_base: None,
        key_env: &["HOSTED_VLLM_API_KEY"],
        base_env: &["HOSTED_VLLM_API_BASE"],
    },
    Flavor {
        prefix: "groq",
        display: "Groq",
        default_base: Some("https://api.groq.com/openai/v1"),
        key_env: &["GROQ_API_KEY"],
        base_env: &["GROQ_API_BASE"],
    },
    Flavor {
        prefix: "mistral",
        display: "Mistral",
        default_base: Some("https://api.mistral.ai/v1"),
        key_env: &["MISTRAL_API_KEY"],
        base_env: &["MISTRAL_API_BASE"],
    },
    Flavor {
        prefix: "deepseek",
        display: "DeepSeek",
        default_base: Some("https://api.deepseek.com/v1"),
        key_env: &["DEEPSEEK_API_KEY"],
        base_env: &["DEEPSEEK_API_BASE"],
    },
    Flavor {
        prefix: "together_ai",
        display: "TogetherAI",
        default_base: Some("https://api.together.xyz/v1"),
        key_env: &[
            "TOGETHERAI_API_KEY",
            "TOGETHER_AI_API_KEY",
            "TOGETHER_API_KEY",
        ],
        base_env: &["TOGETHERAI_API_BASE"],
    },
    Flavor {
        prefix: "fireworks_ai",
        display: "FireworksAI",
        default_base: Some("https://api.fireworks.ai/inference/v1"),
        key_env: &[
            "FIREWORKS_AI_API_KEY",
            "FIREWORKS_API_KEY",
            "FIREWORKSAI_API_KEY",
        ],
        base_env: &["FIREWORKS_AI_API_BASE"],
    },
    Flavor {
        prefix: "openrouter",
        display: "OpenRouter",
        default_base: Some("https://openrouter.ai/api/v1"),
        key_env: &["OPENROUTER_API_KEY", "OR_API_KEY"],
        base_env: &["OPENROUTER_API_BASE"],
    },
    Flavor {
        prefix: "xai",
        display: "XAI",
        default_base: Some("https://api.x.ai/v1"),
        key_env: &["XAI_API_KEY"],
        base_env: &["XAI_API_BASE"],
    },
    Flavor {
        prefix: "perplexity",
        display: "Perplexity",
        default_base: Some("https://api.perplexity.ai"),
        key_env: &["PERPLEXITYAI_API_KEY", "PERPLEXITY_API_KEY"],
        base_env: &["PERPLEXITY_API_BASE"],
    },
    Flavor {
        prefix: "deepinfra",
        display: "DeepInfra",
        default_base: Some("https://api.deepinfra.com/v1/openai"),
        key_env: &["DEEPINFRA_API_KEY"],
        base_env: &["DEEPINFRA_API_BASE"],
    },
    Flavor {
        prefix: "cerebras",
        display: "Cerebras",
        default_base: Some("https://api.cerebras.ai/v1"),
        key_env: &["CEREBRAS_API_KEY"],
        base_env: &["CEREBRAS_API_BASE"],
    },
    Flavor {
        prefix: "jina_ai",
        display: "JinaAI",
        default_base: Some("https://api.jina.ai/v1"),
        key_env: &["JINA_AI_API_KEY", "JINA_API_KEY"],
        base_env: &["JINA_AI_API_BASE"],
    },
    Flavor {
        prefix: "lm_studio",
        display: "LMStudio",
        default_base: Some("http://localhost:1234/v1"),
        key_env: &["LM_STUDIO_API_KEY"],
        base_env: &["LM_STUDIO_API_BASE"],
    },
];

/// The `text-completion-openai/` provider: OpenAI's legacy `/completions` API.
pub static TEXT_COMPLETION_OPENAI: Flavor = Flavor {
    prefix: "text-completion-openai",
    display: "TextCompletionOpenAI",
    default_base: Some("https://api.openai.com/v1"),
    key_env: &["OPENAI_API_KEY"],
    base_env: &["OPENAI_API_BASE", "OPENAI_BASE_URL"],
};

/// Azure OpenAI: deployment paths, `api-version`, and an `api-key` header.
pub static AZURE: Flavor = Flavor {
    prefix: "azure",
    display: "Azure",
    default_base: None,
    key_env: &["AZURE_API_KEY", "AZURE_OPENAI_API_KEY"],
    base_env: &["AZURE_API_BASE", "AZURE_OPENAI_ENDPOINT"],
};

/// Anthropic's Messages API: an `x-api-key` header and `anthropic-version`.
pub static ANTHROPIC: Flavor = Flavor {
    prefix: "anthropic",
    display: "Anthropic",
    default_base: Some("https://api.anthropic.com"),
    key_env: &["ANTHROPIC_API_KEY"],
    base_env: &["ANTHROPIC_API_BASE", "ANTHROPIC_BASE_URL"],
};

/// Google AI Studio's Gemini API: `generateContent`, the key in `x-goog-api-key`.
pub static GEMINI: Flavor = Flavor {
    prefix: "gemini",
    display: "Gemini",
    default_base: Some("https://generativelanguage.googleapis.com"),
    key_env: &["GEMINI_API_KEY", "GOOGLE_API_KEY"],
    base_env: &["GEMINI_API_BASE"],
};

/// Ollama's `/api/generate` (`ollama/`): chat is flattened into one prompt.
pub static OLLAMA: Flavor = Flavor {
    prefix: "ollama",
    display: "Ollama",
    default_base: Some("http://localhost:11434"),
    key_env: &["OLLAMA_API_KEY"],
    base_env: &["OLLAMA_API_BASE"],
};

/// Ollama's `/api/chat` (`ollama_chat/`): messages, images and tools.
pub static OLLAMA_CHAT: Flavor = Flavor {
    prefix: "ollama_chat",
    display: "Ollama_chat",
    default_base: Some("http://localhost:11434"),
    key_env: &["OLLAMA_API_KEY"],
    base_env: &["OLLAMA_API_BASE"],
};

/// Cohere's v2 API (`cohere/`): `/v2/chat` and `/v2/embed`, a `Bearer` key.
pub static COHERE: Flavor = Flavor {
    prefix: "cohere",
    display: "Cohere",
    default_base: Some("https://api.cohere.com"),
    key_env: &["COHERE_API_KEY", "CO_API_KEY"],
    base_env: &["COHERE_API_BASE"],
};

/// Cohere's chat models (`cohere_chat/`): the same v2 API as `cohere/`.
pub static COHERE_CHAT: Flavor = Flavor {
    prefix: "cohere_chat",
    display: "Cohere",
    default_base: Some("https://api.cohere.com"),
    key_env: &["COHERE_API_KEY", "CO_API_KEY"],
    base_env: &["COHERE_API_BASE"],
};

/// Hugging Face (`huggingface/`): TGI, Inference Endpoints and the serverless router, a
/// `Bearer` token. The router's base serves chat only: raw `generate` needs an `api_base`.
pub static HUGGINGFACE: Flavor = Flavor {
    prefix: "huggingface",
    display: "Huggingface",
    default_base: Some("https://router.huggingface.co/v1"),
    key_env: &["HF_TOKEN", "HUGGINGFACE_API_KEY"],
    base_env: &["HF_API_BASE", "HUGGINGFACE_API_BASE"],
};

/// AWS Bedrock (`bedrock/`, `bedrock/converse/`): the Converse API for chat, InvokeModel for
/// embeddings, SigV4-signed (or an API key as `Bearer`). The base is the region's runtime
/// endpoint, worked out per deployment.
pub static BEDROCK: Flavor = Flavor {
    prefix: "bedrock",
    display: "Bedrock",
    default_base: None,
    key_env: &["AWS_BEARER_TOKEN_BEDROCK"],
    base_env: &["AWS_BEDROCK_RUNTIME_ENDPOINT"],
};

/// Google Vertex AI (`vertex_ai/`): Gemini models, and Anthropic's through `rawPredict`, with
/// a service account's OAuth token. The base is the region's endpoint, worked out per deployment.
pub static VERTEX_AI: Flavor = Flavor {
    prefix: "vertex_ai",
    display: "VertexAI",
    default_base: None,
    key_env: &[],
    base_env: &["VERTEXAI_API_BASE"],
};

/// Vertex AI's beta API (`vertex_ai_beta/`): as `vertex_ai/`, under `v1beta1`.
pub static VERTEX_AI_BETA: Flavor = Flavor {
    prefix: "vertex_ai_beta",
    display: "VertexAI",
    default_base: None,
    key_env: &[],
    base_env: &["VERTEXAI_API_BASE"],
};

/// Providers LiteLLM knows that llmgate does not translate yet.
pub const NOT_YET: &[&str] = &[];

/// The wire protocol a deployment speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// OpenAI's chat/completions/embeddings format, at the flavor's base URL.
    OpenAi(&'static Flavor),
    /// OpenAI's legacy completions API only; chat is translated to it.
    TextCompletion(&'static Flavor),
    /// Azure OpenAI.
    Azure(&'static Flavor),
    /// Anthropic's Messages API.
    Anthropic(&'static Flavor),
    /// Ollama's native API (`/api/chat` or `/api/generate`, and `/api/embed`).
    Ollama(&'static Flavor),
    /// Google AI Studio's Gemini API.
    Gemini(&'static Flavor),
    /// Cohere's v2 API (`cohere/` and `cohere_chat/`).
    Cohere(&'static Flavor),
    /// Hugging Face: OpenAI's chat API, or TGI's raw `generate` with a prompt the gateway
    /// writes (chosen per deployment).
    HuggingFace(&'static Flavor, HuggingFaceApi),
    /// AWS Bedrock: Converse for chat, InvokeModel for embeddings.
    Bedrock(&'static Flavor),
    /// Google Vertex AI: Gemini's or Anthropic's format, by the model's name.
    VertexAi(&'static Flavor),
    /// A provider LiteLLM knows and llmgate does not translate yet.
    NotYet(&'static str),
}

impl ProviderKind {
    /// The flavor holding this provider's defaults, if it is served.
    pub fn flavor(&self) -> Option<&'static Flavor> {
        match self {
            Self::OpenAi(f)
            | Self::TextCompletion(f)
            | Self::Azure(f)
            | Self::Anthropic(f)
            | Self::Ollama(f)
            | Self::Gemini(f)
            | Self::Cohere(f)
            | Self::HuggingFace(f, _)
            | Self::Bedrock(f)
            | Self::VertexAi(f) => Some(f),
            Self::NotYet(_) => None,
        }
    }

    /// The provider's name as LiteLLM spells it (`openai`, `azure`, `groq` ...).
    pub fn name(&self) -> &'static str {
        match self {
            Self::OpenAi(f)
            | Self::TextCompletion(f)
            | Self::Azure(f)
            | Self::Anthropic(f)
            | Self::Ollama(f)
            | Self::Gemini(f)
            | Self::Cohere(f)
            | Self::HuggingFace(f, _)
            | Self::Bedrock(f)
            | Self::VertexAi(f) => f.prefix,
            Self::NotYet(name) => name,
        }
    }

    /// The `XException` name LiteLLM puts in upstream error messages.
    pub fn display(&self) -> &'static str {
        self.flavor().map_or("Unknown", |f| f.display)
    }

    /// The base URL used when neither the config nor the environment gives one: none for
    /// TGI's raw `generate` (the router serves chat only).
    pub fn default_base(&self) -> Option<&'static str> {
        match self {
            Self::HuggingFace(_, HuggingFaceApi::Generate) => None,
            _ => self.flavor().and_then(|f| f.default_base),
        }
    }
}

/// Bare model names whose provider is well known (a price-table stand-in until the keys issue).
fn bare_provider(model: &str) -> Option<ProviderKind> {
    const OPENAI_PREFIXES: &[&str] = &[
        "gpt-",
        "chatgpt-",
        "o1",
        "o3",
        "o4",
        "text-embedding-",
        "davinci-",
        "babbage-",
        "omni-",
    ];
    if OPENAI_PREFIXES.iter().any(|p| model.starts_with(p)) {
        let flavor = &FLAVORS[0];
        if is_text_completion_model(model) {
            return Some(ProviderKind::TextCompletion(&TEXT_COMPLETION_OPENAI));
        }
        return Some(ProviderKind::OpenAi(flavor));
    }
    if model.starts_with("claude-") {
        return Some(ProviderKind::Anthropic(&ANTHROPIC));
    }
    if model.starts_with("gemini-") {
        return Some(ProviderKind::Gemini(&GEMINI));
    }
    if model.starts_with("command-r") || model.starts_with("command-a") {
        return Some(ProviderKind::Cohere(&COHERE_CHAT));
    }
    None
}

/// OpenAI models that only speak the legacy completions API.
pub fn is_text_completion_model(model: &str) -> bool {
    model.ends_with("-instruct") || model.starts_with("davinci-") || model.starts_with("babbage-")
}

/// Splits `litellm_params.model` into its provider and the model name the provider knows.
pub fn parse_model(model: &str) -> Option<(ProviderKind, &str)> {
    if let Some((prefix, rest)) = model.split_once('/') {
        if let Some(f) = FLAVORS.iter().find(|f| f.prefix == prefix) {
            return Some((ProviderKind::OpenAi(f), rest));
        }
        if prefix == AZURE.prefix {
            return Some((ProviderKind::Azure(&AZURE), rest));
        }
        if prefix == ANTHROPIC.prefix {
            return Some((ProviderKind::Anthropic(&ANTHROPIC), rest));
        }
        if prefix == GEMINI.prefix {
            return Some((ProviderKind::Gemini(&GEMINI), rest));
        }
        if let Some(f) = [&OLLAMA, &OLLAMA_CHAT]
            .into_iter()
            .find(|f| f.prefix == prefix)
        {
            return Some((ProviderKind::Ollama(f), rest));
        }
        if let Some(f) = [&COHERE, &COHERE_CHAT]
            .into_iter()
            .find(|f| f.prefix == prefix)
        {
            return Some((ProviderKind::Cohere(f), rest));
        }
        // Chat until the deployment's config asks for raw `generate` (`Deployment`).
        if prefix == HUGGINGFACE.prefix {
            return Some((
                ProviderKind::HuggingFace(&HUGGINGFACE, HuggingFaceApi::Chat),
                rest,
            ));
        }
        // `bedrock/converse/<model>` names the API LiteLLM would call: it is Converse anyway.
        if prefix == BEDROCK.prefix {
            let model = rest.strip_prefix("converse/").unwrap_or(rest);
            return Some((ProviderKind::Bedrock(&BEDROCK), model));
        }
        if prefix == TEXT_COMPLETION_OPENAI.prefix {
            return Some((ProviderKind::TextCompletion(&TEXT_COMPLETION_OPENAI), rest));
        }
        if let Some(f) = [&VERTEX_AI, &VERTEX_AI_BETA]
            .into_iter()
            .find(|f| f.prefix == prefix)
        {
            return Some((ProviderKind::VertexAi(f), rest));
        }
        if let Some(name) = NOT_YET.iter().find(|n| **n == prefix) {
            return Some((ProviderKind::NotYet(name), rest));
        }
        return None;
    }
    bare_provider(model).map(|kind| (kind, model))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_select_their_provider() {
        assert_eq!(
            parse_model("groq/llama3").map(|(k, m)| (k.name(), m)),
            Some(("groq", "llama3"))
        );
        assert_eq!(
            parse_model("azure/my-dep").map(|(k, _)| k.name()),
            Some("azure")
        );
        assert_eq!(
            parse_model("text-completion-openai/gpt-3.5-turbo-instruct").map(|(k, _)| k.name()),
            Some("text-completion-openai")
        );
        assert_eq!(
            parse_model("openrouter/meta/llama").map(|(_, m)| m),
            Some("meta/llama")
        );
        assert!(matches!(
            parse_model("anthropic/claude"),
            Some((ProviderKind::Anthropic(_), "claude"))
        ));
        assert!(matches!(
            parse_model("ollama/llama3:8b"),
            Some((ProviderKind::Ollama(f), "llama3:8b")) if f.prefix == "ollama"
        ));
        assert_eq!(
            parse_model("ollama_chat/llava").map(|(k, m)| (k.name(), k.display(), m)),
            Some(("ollama_chat", "Ollama_chat", "llava"))
        );
        assert!(matches!(
            parse_model("gemini/gemini-2.0-flash"),
            Some((ProviderKind::Gemini(_), "gemini-2.0-flash"))
        ));
        assert!(matches!(
            parse_model("vertex_ai/gemini-2.0-flash"),
            Some((ProviderKind::VertexAi(f), "gemini-2.0-flash")) if f.prefix == "vertex_ai"
        ));
        assert_eq!(
            parse_model("vertex_ai_beta/claude-sonnet-4@20250514").map(|(k, m)| (k.name(), m)),
            Some(("vertex_ai_beta", "claude-sonnet-4@20250514"))
        );
        assert!(!NOT_YET.contains(&"vertex_ai"));
        assert!(parse_model("nonsense/x").is_none());
    }

    #[test]
    fn huggingface_names_its_model_and_speaks_chat_until_configured_raw() {
        let (kind, model) = parse_model("huggingface/meta-llama/Llama-3.1-8B-Instruct").unwrap();
        assert_eq!(
            (kind.name(), kind.display(), model),
            (
                "huggingface",
                "Huggingface",
                "meta-llama/Llama-3.1-8B-Instruct"
            )
        );
        assert_eq!(
            kind.default_base(),
            Some("https://router.huggingface.co/v1")
        );
        let raw = ProviderKind::HuggingFace(&HUGGINGFACE, HuggingFaceApi::Generate);
        assert_eq!(raw.default_base(), None);
        assert!(!NOT_YET.contains(&"huggingface"));
    }

    #[test]
    fn well_known_bare_names_resolve_and_unknown_ones_do_not() {
        assert_eq!(
            parse_model("gpt-4").map(|(k, m)| (k.name(), m)),
            Some(("openai", "gpt-4"))
        );
        assert!(matches!(
            parse_model("gpt-3.5-turbo-instruct"),
            Some((ProviderKind::TextCompletion(_), _))
        ));
        assert!(matches!(
            parse_model("claude-2"),
            Some((ProviderKind::Anthropic(_), _))
        ));
        assert!(parse_model("my-private-model").is_none());
    }

    #[test]
    fn bedrock_and_bedrock_converse_select_bedrock_with_the_model_id() {
        for model in [
            "bedrock/anthropic.claude-3-haiku-20240307-v1:0",
            "bedrock/converse/anthropic.claude-3-haiku-20240307-v1:0",
        ] {
            assert_eq!(
                parse_model(model).map(|(k, m)| (k.name(), k.display(), m)),
                Some((
                    "bedrock",
                    "Bedrock",
                    "anthropic.claude-3-haiku-20240307-v1:0"
                ))
            );
        }
        assert!(!NOT_YET.contains(&"bedrock"));
    }

    #[test]
    fn cohere_prefixes_and_bare_command_names_select_cohere() {
        assert_eq!(
            parse_model("cohere/embed-english-v3.0").map(|(k, m)| (k.name(), k.display(), m)),
            Some(("cohere", "Cohere", "embed-english-v3.0"))
        );
        assert!(matches!(
            parse_model("cohere_chat/command-r-plus"),
            Some((ProviderKind::Cohere(f), "command-r-plus")) if f.prefix == "cohere_chat"
        ));
        for bare in ["command-r-plus", "command-a-03-2025", "command-r7b-12-2024"] {
            assert_eq!(
                parse_model(bare).map(|(k, m)| (k.name(), m)),
                Some(("cohere_chat", bare))
            );
        }
    }
}
