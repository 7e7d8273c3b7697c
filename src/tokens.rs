//! Token counting with a real BPE tokenizer (cl100k_base), for streams whose upstream sends no usage.

use serde_json::{Map, Value as Json};

use crate::providers::translate::{content_text, prompt_text};

/// Tokens in `text`. The tokenizer loads on first use, so a gateway that never needs it stays small.
pub fn count(text: &str) -> u64 {
    if text.is_empty() {
        return 0;
    }
    tiktoken_rs::cl100k_base_singleton()
        .encode_ordinary(text)
        .len() as u64
}

/// Prompt tokens of a chat or completion request, counted the way OpenAI's cookbook does
/// (3 tokens per message and 3 to prime the reply).
pub fn prompt_tokens(fields: &Map<String, Json>) -> u64 {
    if let Some(messages) = fields.get("messages").and_then(Json::as_array) {
        let mut total = 3;
        for m in messages {
            total += 3;
            if let Some(c) = m.get("content") {
                total += count(&content_text(c));
            }
            if let Some(name) = m.get("name").and_then(Json::as_str) {
                total += 1 + count(name);
            }
        }
        return total;
    }
    fields.get("prompt").map_or(0, |p| count(&prompt_text(p)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_with_cl100k() {
        assert_eq!(count("hello world"), 2);
        assert_eq!(count(""), 0);
    }

    #[test]
    fn chat_prompts_include_per_message_overhead() {
        let f: Map<String, Json> =
            serde_json::from_str(r#"{"messages":[{"role":"user","content":"hello world"}]}"#)
                .unwrap();
        assert_eq!(prompt_tokens(&f), 3 + 3 + 2);
    }
}
