//! A TGI `generate` reply (one object, or a list of one as TGI's compat route and the
//! Inference API answer) as an OpenAI `chat.completion`: the text, the finish reason and usage.
//! Read and written with borrowed, typed views: no JSON tree is built.

use std::borrow::Cow;

use serde::de::{Error as _, IgnoredAny};
use serde::{Deserialize, Serialize};

use crate::providers::Usage;

/// TGI's `finish_reason` as OpenAI's: `length` stays, `eos_token` and `stop_sequence` stop.
pub fn finish_reason(reason: Option<&str>) -> &'static str {
    match reason {
        Some("length") => "length",
        _ => "stop",
    }
}

/// One generation.
#[derive(Deserialize)]
struct Generated<'a> {
    #[serde(borrow, default)]
    generated_text: Cow<'a, str>,
    #[serde(borrow, default)]
    details: Option<Details<'a>>,
}

/// A generation's `details` (a whole reply's, or the last stream event's).
#[derive(Deserialize)]
pub(super) struct Details<'a> {
    /// `length`, `eos_token` or `stop_sequence`.
    #[serde(borrow, default)]
    pub finish_reason: Option<Cow<'a, str>>,
    /// Tokens generated.
    #[serde(default)]
    pub generated_tokens: Option<u64>,
    /// The prompt's tokens, listed when `decoder_input_details` was asked.
    #[serde(default)]
    pub prefill: Vec<IgnoredAny>,
    /// The prompt's length in tokens (a stream's last event, TGI 2 on).
    #[serde(default)]
    pub input_length: Option<u64>,
}

#[derive(Serialize)]
struct Completion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [Choice<'a>; 1],
    usage: Usage,
}

#[derive(Serialize)]
struct Choice<'a> {
    index: u32,
    message: Message<'a>,
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct Message<'a> {
    role: &'static str,
    content: &'a str,
}

/// The OpenAI chat completion bytes for a `generate` reply's bytes, named `id`, for `model`,
/// stamped `created`; `prompt_tokens` (counted on the prompt sent) is used unless TGI listed
/// the prompt's tokens itself.
pub fn openai(
    body: &[u8],
    id: &str,
    model: &str,
    created: u64,
    prompt_tokens: u64,
) -> serde_json::Result<Vec<u8>> {
    let generated: Generated<'_> = if body.trim_ascii_start().starts_with(b"[") {
        serde_json::from_slice::<Vec<Generated<'_>>>(body)?
            .into_iter()
            .next()
            .ok_or_else(|| serde_json::Error::custom("an empty list of generations"))?
    } else {
        serde_json::from_slice(body)?
    };
    let details = generated.details.as_ref();
    let prompt = details
        .map(|d| d.prefill.len() as u64)
        .filter(|n| *n > 0)
        .unwrap_or(prompt_tokens);
    let completion = details
        .and_then(|d| d.generated_tokens)
        .unwrap_or_else(|| crate::tokens::count(&generated.generated_text));
    serde_json::to_vec(&Completion {
        id,
        object: "chat.completion",
        created,
        model,
        choices: [Choice {
            index: 0,
            message: Message {
                role: "assistant",
                content: &generated.generated_text,
            },
            finish_reason: finish_reason(details.and_then(|d| d.finish_reason.as_deref())),
        }],
        usage: Usage::new(prompt, completion),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value as Json};

    fn fixture(name: &str) -> Json {
        let path = format!(
            "{}/tests/fixtures/huggingface/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn translate(wire: &Json, prompt_tokens: u64) -> Json {
        let bytes = openai(
            wire.to_string().as_bytes(),
            "chatcmpl-0123",
            "meta-llama/Meta-Llama-3-8B-Instruct",
            1_700_000_000,
            prompt_tokens,
        )
        .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn a_generate_reply_translates_as_recorded() {
        let case = fixture("reply_generate.json");
        assert_eq!(translate(&case["tgi"], 31), case["openai"]);
    }

    #[test]
    fn a_bare_object_reads_like_a_list_of_one_and_the_length_limit_is_length() {
        let got = translate(
            &json!({"generated_text": " Paris", "details": {"finish_reason": "length", "generated_tokens": 2, "prefill": [{"id": 1, "text": "<s>"}, {"id": 2, "text": "Hi"}, {"id": 3, "text": "!"}]}}),
            99,
        );
        assert_eq!(got["choices"][0]["message"]["content"], " Paris");
        assert_eq!(got["choices"][0]["finish_reason"], "length");
        assert_eq!(
            got["usage"],
            json!({"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5})
        );
    }

    #[test]
    fn finish_reasons_map_and_a_reply_without_details_is_counted() {
        assert_eq!(finish_reason(Some("eos_token")), "stop");
        assert_eq!(finish_reason(Some("stop_sequence")), "stop");
        assert_eq!(finish_reason(Some("length")), "length");
        let got = translate(&json!([{"generated_text": "hello world"}]), 4);
        assert_eq!(got["choices"][0]["finish_reason"], "stop");
        assert_eq!(got["usage"]["completion_tokens"], 2);
        assert!(openai(b"[]", "x", "m", 0, 0).is_err());
    }
}
