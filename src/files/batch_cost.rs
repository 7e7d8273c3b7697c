//! A completed batch's cost: the usage of every request in its output file (JSONL, read as it
//! streams in), priced as LiteLLM prices batches (`*_cost_per_token_batches`, else half the
//! per-token price).

use serde::Deserialize;
use serde_json::Value as Json;

use crate::pricing::Price;
use crate::providers::Usage;

/// An output line longer than this stops the count (the batch is then not charged).
pub const MAX_LINE: usize = 8 * 1024 * 1024;

#[derive(Deserialize)]
struct Line {
    response: Option<Response>,
}

#[derive(Deserialize)]
struct Response {
    body: Option<Body>,
}

#[derive(Deserialize)]
struct Body {
    usage: Option<Usage>,
}

/// Why an output file could not be counted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Uncounted {
    /// A line is longer than [`MAX_LINE`].
    #[error("an output line is longer than {MAX_LINE} bytes")]
    LineTooLong,
}

/// The usage summed over an output file fed chunk by chunk.
#[derive(Debug, Default)]
pub struct OutputUsage {
    partial: Vec<u8>,
    usage: Usage,
    /// Lines that reported usage.
    pub answered: u64,
}

impl OutputUsage {
    /// Counts the lines `chunk` completes; the rest waits for the next chunk.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), Uncounted> {
        let mut rest = chunk;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            if self.partial.is_empty() {
                self.count(&rest[..end]);
            } else {
                self.partial.extend_from_slice(&rest[..end]);
                let line = std::mem::take(&mut self.partial);
                self.count(&line);
            }
            rest = &rest[end + 1..];
        }
        if self.partial.len() + rest.len() > MAX_LINE {
            return Err(Uncounted::LineTooLong);
        }
        self.partial.extend_from_slice(rest);
        Ok(())
    }

    fn count(&mut self, line: &[u8]) {
        let Ok(parsed) = serde_json::from_slice::<Line>(line) else {
            return;
        };
        if let Some(u) = parsed.response.and_then(|r| r.body).and_then(|b| b.usage) {
            self.usage.prompt_tokens += u.prompt_tokens;
            self.usage.completion_tokens += u.completion_tokens;
            self.usage.total_tokens += if u.total_tokens > 0 {
                u.total_tokens
            } else {
                u.prompt_tokens + u.completion_tokens
            };
            self.answered += 1;
        }
    }

    /// The usage of the whole file (a last line without a line break counts too).
    pub fn finish(mut self) -> Usage {
        let last = std::mem::take(&mut self.partial);
        self.count(&last);
        self.usage
    }
}

/// The per-token price of batch requests on a deployment priced `price`: `model_info`'s
/// `input_cost_per_token_batches` / `output_cost_per_token_batches` where set, else half the
/// deployment's price.
pub fn batch_price(price: Option<Price>, model_info: &Json) -> Option<Price> {
    let set = |k: &str| model_info.get(k).and_then(Json::as_f64);
    let input =
        set("input_cost_per_token_batches").or_else(|| price.map(|p| p.input_cost_per_token / 2.0));
    let output = set("output_cost_per_token_batches")
        .or_else(|| price.map(|p| p.output_cost_per_token / 2.0));
    match (input, output) {
        (None, None) => None,
        (i, o) => Some(Price {
            input_cost_per_token: i.unwrap_or(0.0),
            output_cost_per_token: o.unwrap_or(0.0),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const OUTPUT: &str = concat!(
        r#"{"id":"batch_req_1","custom_id":"r1","response":{"status_code":200,"request_id":"q1","body":{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o-mini","usage":{"prompt_tokens":20,"completion_tokens":5,"total_tokens":25}}},"error":null}"#,
        "\n",
        r#"{"id":"batch_req_2","custom_id":"r2","response":{"status_code":400,"request_id":"q2","body":{"error":{"message":"bad"}}},"error":null}"#,
        "\n",
        r#"{"id":"batch_req_3","custom_id":"r3","response":{"status_code":200,"request_id":"q3","body":{"object":"list","usage":{"prompt_tokens":7,"total_tokens":7}}},"error":null}"#,
    );

    #[test]
    fn usage_is_summed_over_lines_however_the_file_is_cut_into_chunks() {
        for size in [1, 7, 64, OUTPUT.len()] {
            let mut counted = OutputUsage::default();
            for chunk in OUTPUT.as_bytes().chunks(size) {
                counted.feed(chunk).unwrap();
            }
            assert_eq!(counted.answered, 1, "the last line is counted at the end");
            assert_eq!(counted.finish(), Usage::new(27, 5), "chunks of {size}");
        }
    }

    #[test]
    fn a_line_past_the_bound_stops_the_count() {
        let mut counted = OutputUsage::default();
        let long = vec![b'x'; MAX_LINE + 1];
        assert_eq!(counted.feed(&long), Err(Uncounted::LineTooLong));
    }

    #[test]
    fn batches_cost_half_the_price_unless_model_info_sets_a_batch_price() {
        let price = Some(Price {
            input_cost_per_token: 2e-6,
            output_cost_per_token: 8e-6,
        });
        let half = batch_price(price, &json!({})).unwrap();
        assert_eq!(half.input_cost_per_token, 1e-6);
        assert_eq!(half.output_cost_per_token, 4e-6);
        let set = batch_price(price, &json!({"input_cost_per_token_batches": 3e-7})).unwrap();
        assert_eq!(set.input_cost_per_token, 3e-7);
        assert_eq!(set.output_cost_per_token, 4e-6);
        assert_eq!(batch_price(None, &json!({})), None);
    }
}
