//! Prices per unit other than a token (an image, a pixel, a character of speech, a second of
//! audio, a rerank query) and the cost of an images, audio, moderation or rerank call.

use serde::Deserialize;
use serde_json::Value as Json;

use crate::pricing::{self, Price};
use crate::providers::{Operation, Usage};

/// LiteLLM's per-unit price fields, from the price table or a deployment's config; each is
/// USD per unit and absent when not priced that way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
pub struct UnitPrices {
    /// Per character of text read aloud (`tts-1`).
    #[serde(default)]
    pub input_cost_per_character: Option<f64>,
    /// Per image generated.
    #[serde(default)]
    pub output_cost_per_image: Option<f64>,
    /// Per image generated, as some of LiteLLM's entries spell it.
    #[serde(default)]
    pub input_cost_per_image: Option<f64>,
    /// Per pixel of each image generated (DALL-E, by size and quality).
    #[serde(default)]
    pub input_cost_per_pixel: Option<f64>,
    /// Per second of audio transcribed (`whisper-1`).
    #[serde(default)]
    pub input_cost_per_second: Option<f64>,
    /// Per rerank search unit (a query over up to 100 documents).
    #[serde(default)]
    pub input_cost_per_query: Option<f64>,
}

/// The config keys of [`UnitPrices`], read from `litellm_params`, else `model_info`.
pub const CONFIG_KEYS: &[&str] = &[
    "input_cost_per_character",
    "output_cost_per_image",
    "input_cost_per_image",
    "input_cost_per_pixel",
    "input_cost_per_second",
    "input_cost_per_query",
];

impl UnitPrices {
    /// The prices a deployment's `litellm_params` (else `model_info`) set; numbers may be
    /// written as strings.
    pub fn configured(params: &Json, info: &Json) -> Self {
        let get = |key: &str| {
            params.get(key).or_else(|| info.get(key)).and_then(|v| {
                v.as_f64()
                    .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            })
        };
        Self {
            input_cost_per_character: get("input_cost_per_character"),
            output_cost_per_image: get("output_cost_per_image"),
            input_cost_per_image: get("input_cost_per_image"),
            input_cost_per_pixel: get("input_cost_per_pixel"),
            input_cost_per_second: get("input_cost_per_second"),
            input_cost_per_query: get("input_cost_per_query"),
        }
    }

    /// Each price of `self`, else `other`'s.
    pub fn or(self, other: Self) -> Self {
        Self {
            input_cost_per_character: self
                .input_cost_per_character
                .or(other.input_cost_per_character),
            output_cost_per_image: self.output_cost_per_image.or(other.output_cost_per_image),
            input_cost_per_image: self.input_cost_per_image.or(other.input_cost_per_image),
            input_cost_per_pixel: self.input_cost_per_pixel.or(other.input_cost_per_pixel),
            input_cost_per_second: self.input_cost_per_second.or(other.input_cost_per_second),
            input_cost_per_query: self.input_cost_per_query.or(other.input_cost_per_query),
        }
    }

    fn per_image(&self) -> Option<f64> {
        self.output_cost_per_image.or(self.input_cost_per_image)
    }

    /// Whether an image has a price here (per image or per pixel).
    pub fn has_image_price(&self) -> bool {
        self.per_image().is_some() || self.input_cost_per_pixel.is_some()
    }
}

/// What one call used, as its reply (or request) tells.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Metered {
    /// Tokens, as the upstream reported them (or counted, for moderations and speech).
    pub usage: Usage,
    /// Images generated.
    pub images: u64,
    /// Pixels in each image (from the request's `size`).
    pub pixels_per_image: u64,
    /// Characters of text read aloud.
    pub characters: u64,
    /// Seconds of audio transcribed.
    pub seconds: f64,
    /// Rerank search units.
    pub search_units: u64,
}

/// The USD cost of a call of `op` that used `m`, at per-unit `units` and per-token `tokens`.
///
/// Images: the reported tokens when the model bills by token (`gpt-image-1`), else per image,
/// else per pixel. Speech: per character, else the text's tokens. Transcriptions: per second of
/// audio, else the reported tokens. Rerank: per search unit plus any tokens. Moderations (and
/// anything else): tokens.
pub fn cost(op: Operation, units: &UnitPrices, tokens: Option<Price>, m: &Metered) -> f64 {
    let token_cost = tokens.map_or(0.0, |p| {
        pricing::cost(p, m.usage.prompt_tokens, m.usage.completion_tokens)
    });
    match op {
        Operation::ImageGeneration => {
            if token_cost > 0.0 || !units.has_image_price() {
                token_cost
            } else if let Some(each) = units.per_image() {
                each * m.images as f64
            } else {
                let per_pixel = units.input_cost_per_pixel.unwrap_or(0.0);
                per_pixel * (m.pixels_per_image * m.images) as f64
            }
        }
        Operation::Speech => match units.input_cost_per_character {
            Some(each) => each * m.characters as f64,
            None => token_cost,
        },
        Operation::Transcription | Operation::Translation => match units.input_cost_per_second {
            Some(each) if m.seconds > 0.0 => each * m.seconds,
            _ => token_cost,
        },
        Operation::Rerank => {
            units.input_cost_per_query.unwrap_or(0.0) * m.search_units as f64 + token_cost
        }
        Operation::Chat
        | Operation::Completion
        | Operation::Embedding
        | Operation::Moderation
        | Operation::Responses => token_cost,
    }
}

/// An image size (`1024x1024`) as LiteLLM's price keys spell it (`1024-x-1024`), with its
/// pixel count; `None` for `auto` or anything that is not `WxH`.
pub fn image_size(size: &str) -> Option<(String, u64)> {
    let (w, h) = size.split_once('x')?;
    let (w, h): (u64, u64) = (w.trim().parse().ok()?, h.trim().parse().ok()?);
    Some((format!("{w}-x-{h}"), w.saturating_mul(h)))
}

/// The per-unit prices of an image of `size` and `quality` from `model` at `provider`: the
/// table's `{quality}/{size}/{model}` (with no quality, or `auto`: the default `standard`, then
/// `medium`), else `{size}/{model}`, else `fallback` (the model's own).
pub fn image_prices(
    provider: &str,
    model: &str,
    size: Option<&str>,
    quality: Option<&str>,
    fallback: UnitPrices,
) -> UnitPrices {
    let Some((size, _)) = size.and_then(image_size) else {
        return fallback;
    };
    let mut names = Vec::with_capacity(3);
    match quality.filter(|q| !q.is_empty() && *q != "auto") {
        Some(q) => names.push(format!("{q}/{size}/{model}")),
        None => {
            names.push(format!("standard/{size}/{model}"));
            names.push(format!("medium/{size}/{model}"));
        }
    }
    names.push(format!("{size}/{model}"));
    names
        .iter()
        .find_map(|name| pricing::unit_prices(provider, name).filter(UnitPrices::has_image_price))
        .unwrap_or(fallback)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metered(f: impl FnOnce(&mut Metered)) -> Metered {
        let mut m = Metered::default();
        f(&mut m);
        m
    }

    #[test]
    fn speech_is_priced_per_character_of_its_input() {
        let units = pricing::unit_prices("openai", "tts-1").expect("tts-1 is in the table");
        let m = metered(|m| m.characters = 1_000);
        assert!((cost(Operation::Speech, &units, None, &m) - 0.015).abs() < 1e-12);
    }

    #[test]
    fn transcriptions_are_priced_per_second_else_by_reported_tokens() {
        let whisper = pricing::unit_prices("openai", "whisper-1").expect("whisper-1 priced");
        let m = metered(|m| m.seconds = 60.0);
        assert!((cost(Operation::Transcription, &whisper, None, &m) - 0.006).abs() < 1e-12);
        let tokens = pricing::lookup("openai", "gpt-4o-transcribe");
        assert!(tokens.is_some());
        let m = metered(|m| m.usage = Usage::new(100, 10));
        let c = cost(Operation::Transcription, &UnitPrices::default(), tokens, &m);
        assert!(c > 0.0);
    }

    #[test]
    fn dall_e_images_are_priced_by_size_and_quality() {
        let fallback = UnitPrices::default();
        let hd = image_prices(
            "openai",
            "dall-e-3",
            Some("1024x1024"),
            Some("hd"),
            fallback,
        );
        let standard = image_prices("openai", "dall-e-3", Some("1024x1024"), None, fallback);
        let (_, pixels) = image_size("1024x1024").unwrap();
        let m = metered(|m| {
            m.images = 2;
            m.pixels_per_image = pixels;
        });
        let hd_cost = cost(Operation::ImageGeneration, &hd, None, &m);
        assert!((hd_cost - 0.16).abs() < 1e-3, "{hd_cost}");
        // No quality is DALL-E 3's default, `standard`; Azure is priced as OpenAI.
        let azure = image_prices(
            "azure",
            "dall-e-3",
            Some("1024x1024"),
            Some("standard"),
            fallback,
        );
        assert_eq!(azure, standard);
        let standard_cost = cost(Operation::ImageGeneration, &standard, None, &m);
        assert!((standard_cost - 0.08).abs() < 1e-3, "{standard_cost}");
        let small = image_prices(
            "openai",
            "dall-e-2",
            Some("256x256"),
            Some("standard"),
            fallback,
        );
        let m = metered(|m| {
            m.images = 1;
            m.pixels_per_image = 256 * 256;
        });
        let small_cost = cost(Operation::ImageGeneration, &small, None, &m);
        assert!((small_cost - 0.016).abs() < 1e-4, "{small_cost}");
    }

    #[test]
    fn a_per_image_price_wins_over_pixels_and_reported_tokens_win_over_both() {
        let units = UnitPrices {
            output_cost_per_image: Some(0.05),
            input_cost_per_pixel: Some(1.0),
            ..UnitPrices::default()
        };
        let m = metered(|m| {
            m.images = 3;
            m.pixels_per_image = 10;
        });
        assert!((cost(Operation::ImageGeneration, &units, None, &m) - 0.15).abs() < 1e-12);
        let tokens = Some(Price {
            input_cost_per_token: 1e-6,
            output_cost_per_token: 1e-5,
        });
        let m = metered(|m| {
            m.images = 1;
            m.usage = Usage::new(50, 100);
        });
        let c = cost(Operation::ImageGeneration, &units, tokens, &m);
        assert!((c - (50e-6 + 100e-5)).abs() < 1e-12, "{c}");
    }

    #[test]
    fn rerank_is_priced_per_search_unit() {
        let units = pricing::unit_prices("cohere", "rerank-v3.5").expect("rerank-v3.5 priced");
        let m = metered(|m| m.search_units = 3);
        assert!((cost(Operation::Rerank, &units, None, &m) - 0.006).abs() < 1e-12);
    }

    #[test]
    fn config_prices_are_read_from_params_then_model_info_and_win_field_by_field() {
        let params = serde_json::json!({"input_cost_per_character": "0.5"});
        let info =
            serde_json::json!({"input_cost_per_character": 9.0, "input_cost_per_query": 2.0});
        let configured = UnitPrices::configured(&params, &info);
        assert_eq!(configured.input_cost_per_character, Some(0.5));
        assert_eq!(configured.input_cost_per_query, Some(2.0));
        let table = UnitPrices {
            input_cost_per_second: Some(1.0),
            input_cost_per_query: Some(7.0),
            ..UnitPrices::default()
        };
        let merged = configured.or(table);
        assert_eq!(merged.input_cost_per_second, Some(1.0));
        assert_eq!(merged.input_cost_per_query, Some(2.0));
    }

    #[test]
    fn sizes_read_as_width_by_height() {
        assert_eq!(
            image_size("1792x1024"),
            Some(("1792-x-1024".into(), 1792 * 1024))
        );
        assert_eq!(image_size("auto"), None);
    }
}
