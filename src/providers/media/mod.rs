//! Images, audio, moderations and rerank on the wire: which providers serve each, the call for a
//! deployment (JSON, or the upload re-sent as a multipart form), and what a reply tells to
//! price it by.

pub mod mock;
pub mod multipart;
pub mod relay;
pub mod rerank;

use bytes::Bytes;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value as Json};

pub use multipart::Upload;

use super::request::{bad_request, join, DropPolicy, PreparedCall, Reshape};
use super::{Operation, ProviderError, ProviderKind, Usage};
use crate::config::Deployment;
use crate::unit_pricing::Metered;

/// OpenAI-compatible providers that also serve Cohere's rerank shape at `{api_base}/rerank`.
pub const RERANK_COMPATIBLE: &[&str] = &["hosted_vllm", "jina_ai", "together_ai", "openai_like"];

/// How a provider serves an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wire {
    /// OpenAI's route under the base (OpenAI and the compatible providers).
    OpenAi,
    /// Azure's `/openai/deployments/{model}{route}?api-version=`.
    Azure,
    /// Rerank in Cohere's shape.
    Rerank(rerank::Dialect),
}

fn wire(op: Operation, d: &Deployment, fields: &Map<String, Json>) -> Option<Wire> {
    match (op, d.provider) {
        (Operation::Rerank, ProviderKind::Cohere(_)) => {
            Some(Wire::Rerank(rerank::Dialect::cohere(&d.api_base, fields)))
        }
        (Operation::Rerank, ProviderKind::OpenAi(f)) if RERANK_COMPATIBLE.contains(&f.prefix) => {
            Some(Wire::Rerank(rerank::Dialect::Compatible))
        }
        (Operation::Rerank, _) => None,
        (_, ProviderKind::OpenAi(_)) => Some(Wire::OpenAi),
        (_, ProviderKind::Azure(_)) => Some(Wire::Azure),
        _ => None,
    }
}

/// One attempt's call: the request, and the content type when it is not JSON (a form).
#[derive(Debug)]
pub struct MediaCall {
    /// URL and body.
    pub call: PreparedCall,
    /// `multipart/form-data; boundary=...` for an upload, else `None` (JSON).
    pub content_type: Option<String>,
}

/// The JSON body: the deployment's model, the client's fields, the deployment's defaults.
struct JsonBody<'a> {
    model: &'a str,
    fields: &'a Map<String, Json>,
    defaults: &'a Map<String, Json>,
    skip: &'a [String],
}

impl Serialize for JsonBody<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("model", self.model)?;
        let sent = |k: &String| !self.skip.iter().any(|s| s == k);
        for (k, v) in self.fields.iter().filter(|(k, _)| sent(k)) {
            m.serialize_entry(k, v)?;
        }
        for (k, v) in self.defaults {
            if !self.fields.contains_key(k) && sent(k) {
                m.serialize_entry(k, v)?;
            }
        }
        m.end()
    }
}

/// A clear 400 for a provider that has no such route.
pub fn unsupported(d: &Deployment, op: Operation, model: &str) -> ProviderError {
    let hint = if op == Operation::Rerank {
        "rerank is served by cohere/ and by hosted_vllm/, jina_ai/, together_ai/ and openai_like/"
    } else {
        "it is served by openai/, azure/ and the OpenAI-compatible providers"
    };
    bad_request(
        format!(
            "the {} provider does not serve {} in llmgate (model={model}, deployment {}); {hint}",
            d.provider.name(),
            op.route(),
            d.id
        ),
        "model",
    )
}

/// Builds the attempt of `op` for deployment `d`; `fields` are the client's (no `model`, no
/// gateway fields), `upload` the audio file of a transcription or translation.
pub fn prepare(
    op: Operation,
    d: &Deployment,
    model: &str,
    fields: &Map<String, Json>,
    upload: Option<&Upload>,
    drop: &DropPolicy<'_>,
) -> Result<MediaCall, ProviderError> {
    let wire = wire(op, d, fields).ok_or_else(|| unsupported(d, op, model))?;
    let url = match wire {
        Wire::OpenAi => join(&d.api_base, op.route()),
        Wire::Azure => {
            let path = if d.api_base.contains("/openai/deployments/") {
                join(&d.api_base, op.route())
            } else {
                join(
                    &d.api_base,
                    &format!("/openai/deployments/{model}{}", op.route()),
                )
            };
            match &d.api_version {
                Some(v) if path.contains('?') => format!("{path}&api-version={v}"),
                Some(v) => format!("{path}?api-version={v}"),
                None => path,
            }
        }
        Wire::Rerank(dialect) => join(&d.api_base, dialect.route(&d.api_base)),
    };
    let encode = |e: serde_json::Error| {
        ProviderError::connection(d.provider, format!("cannot encode the request: {e}"))
    };
    let (body, content_type) = match (wire, upload) {
        (_, Some(upload)) => {
            let mut form = multipart::Form::new();
            form.text("model", model);
            form.fields(fields, &d.defaults, drop.always);
            form.file(upload);
            let (content_type, body) = form.finish();
            (body, Some(content_type))
        }
        (Wire::Rerank(dialect), None) => {
            let body = rerank::Body {
                dialect,
                model,
                fields,
                defaults: &d.defaults,
                skip: drop.always,
            };
            (
                Bytes::from(serde_json::to_vec(&body).map_err(encode)?),
                None,
            )
        }
        (_, None) => {
            let body = JsonBody {
                model,
                fields,
                defaults: &d.defaults,
                skip: drop.always,
            };
            (
                Bytes::from(serde_json::to_vec(&body).map_err(encode)?),
                None,
            )
        }
    };
    Ok(MediaCall {
        call: PreparedCall {
            url,
            body,
            reshape: Reshape::None,
            prompt_tokens: None,
        },
        content_type,
    })
}

/// What a whole reply of `op` tells (its images, seconds of audio, search units, tokens), and
/// the reply as the client gets it: rerank's made whole in Cohere's shape, others as they came.
/// `json` says whether the upstream answered JSON (a transcript may be text).
pub fn read_reply(
    op: Operation,
    provider: ProviderKind,
    fields: &Map<String, Json>,
    body: Bytes,
    json: bool,
) -> Result<(Bytes, Metered), ProviderError> {
    let unreadable = |e: serde_json::Error| {
        ProviderError::connection(provider, format!("unreadable reply: {e}"))
    };
    let mut m = Metered::default();
    if op == Operation::Rerank {
        let (reply, metered) = rerank::reply(&body, fields).map_err(unreadable)?;
        let body = serde_json::to_vec(&reply).map_err(unreadable)?;
        return Ok((Bytes::from(body), metered));
    }
    if !json {
        if op.takes_form() {
            return Ok((body, m));
        }
        return Err(ProviderError::connection(
            provider,
            format!("unreadable reply: {} answers JSON", op.route()),
        ));
    }
    let reply: Json = serde_json::from_slice(&body).map_err(unreadable)?;
    let usage = reply.get("usage");
    let tokens = |input: &str, output: &str| {
        let get = |k: &str| {
            usage
                .and_then(|u| u.get(k))
                .and_then(Json::as_u64)
                .unwrap_or(0)
        };
        Usage::new(get(input), get(output))
    };
    match op {
        Operation::ImageGeneration => {
            m.images = reply
                .get("data")
                .and_then(Json::as_array)
                .map_or(0, |d| d.len() as u64);
            m.usage = tokens("input_tokens", "output_tokens");
        }
        Operation::Transcription | Operation::Translation => {
            // `verbose_json` has the audio's `duration`; `json` from whisper-1 a duration usage;
            // the gpt-4o transcribers report tokens.
            let duration_usage = usage
                .filter(|u| u.get("type").and_then(Json::as_str) == Some("duration"))
                .and_then(|u| u.get("seconds"))
                .and_then(Json::as_f64);
            m.seconds = reply
                .get("duration")
                .and_then(|d| {
                    d.as_f64()
                        .or_else(|| d.as_str().and_then(|s| s.parse().ok()))
                })
                .or(duration_usage)
                .unwrap_or(0.0);
            m.usage = tokens("input_tokens", "output_tokens");
        }
        _ => {}
    }
    Ok((body, m))
}

/// What a request tells of its own cost before any reply: the images' size, the characters
/// read aloud, and (for speech and moderations, when priced per token) the input's tokens.
pub fn request_measures(op: Operation, fields: &Map<String, Json>, count_tokens: bool) -> Metered {
    let mut m = Metered::default();
    match op {
        Operation::ImageGeneration => {
            let size = fields
                .get("size")
                .and_then(Json::as_str)
                .unwrap_or("1024x1024");
            m.pixels_per_image = crate::unit_pricing::image_size(size).map_or(0, |(_, p)| p);
            m.images = fields.get("n").and_then(Json::as_u64).unwrap_or(1);
        }
        Operation::Speech => {
            let input = fields
                .get("input")
                .and_then(Json::as_str)
                .unwrap_or_default();
            m.characters = input.chars().count() as u64;
            if count_tokens {
                m.usage = Usage::new(crate::tokens::count(input), 0);
            }
        }
        Operation::Moderation if count_tokens => {
            let tokens = match fields.get("input") {
                Some(Json::String(s)) => crate::tokens::count(s),
                Some(Json::Array(items)) => items
                    .iter()
                    .filter_map(|i| i.as_str().or_else(|| i.get("text").and_then(Json::as_str)))
                    .map(crate::tokens::count)
                    .sum(),
                _ => 0,
            };
            m.usage = Usage::new(tokens, 0);
        }
        _ => {}
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CliOverrides, Settings};

    fn deployment(params: &str) -> Deployment {
        let text = format!("model_list:\n  - model_name: m\n    litellm_params: {params}\n");
        let s = Settings::from_yaml(&text, &CliOverrides::default()).unwrap();
        s.deployments.into_iter().next().unwrap()
    }

    fn fields(text: &str) -> Map<String, Json> {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn openai_and_azure_get_their_routes_and_the_deployment_model() {
        let none = DropPolicy::default();
        let d = deployment(
            "{model: openai/dall-e-3, api_base: 'http://h/v1', api_key: k, quality: hd}",
        );
        let f = fields(r#"{"prompt":"a cat","n":1}"#);
        let c = prepare(Operation::ImageGeneration, &d, "dall-e-3", &f, None, &none).unwrap();
        assert_eq!(c.call.url, "http://h/v1/images/generations");
        assert_eq!(
            serde_json::from_slice::<Json>(&c.call.body).unwrap(),
            serde_json::json!({"model":"dall-e-3","prompt":"a cat","n":1,"quality":"hd"})
        );
        assert!(c.content_type.is_none());
        let az = deployment("{model: azure/my-tts, api_base: 'https://r.openai.azure.com', api_key: k, api_version: '2025-03-01-preview'}");
        let c = prepare(
            Operation::Speech,
            &az,
            "my-tts",
            &fields(r#"{"input":"hi","voice":"alloy"}"#),
            None,
            &none,
        )
        .unwrap();
        assert_eq!(
            c.call.url,
            "https://r.openai.azure.com/openai/deployments/my-tts/audio/speech?api-version=2025-03-01-preview"
        );
    }

    #[test]
    fn an_upload_is_re_sent_as_a_form_with_the_deployment_model() {
        let d = deployment("{model: groq/whisper-large-v3, api_key: k}");
        let upload = Upload {
            field: "file".into(),
            filename: "a.mp3".into(),
            content_type: "audio/mpeg".into(),
            data: Bytes::from_static(b"ID3"),
        };
        let f = fields(r#"{"language":"en"}"#);
        let c = prepare(
            Operation::Transcription,
            &d,
            "whisper-large-v3",
            &f,
            Some(&upload),
            &DropPolicy::default(),
        )
        .unwrap();
        assert_eq!(
            c.call.url,
            "https://api.groq.com/openai/v1/audio/transcriptions"
        );
        let ct = c.content_type.unwrap();
        assert!(
            ct.starts_with("multipart/form-data; boundary=llmgate-"),
            "{ct}"
        );
        let text = String::from_utf8_lossy(&c.call.body);
        assert!(
            text.contains("name=\"model\"\r\n\r\nwhisper-large-v3\r\n"),
            "{text}"
        );
        assert!(text.contains("name=\"language\"\r\n\r\nen\r\n"), "{text}");
        assert!(
            text.contains(
                "name=\"file\"; filename=\"a.mp3\"\r\nContent-Type: audio/mpeg\r\n\r\nID3\r\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn providers_without_the_route_are_a_400_naming_provider_and_route() {
        let d = deployment("{model: anthropic/claude-3-5-haiku-latest, api_key: k}");
        let err = prepare(
            Operation::ImageGeneration,
            &d,
            "c",
            &Map::new(),
            None,
            &DropPolicy::default(),
        )
        .unwrap_err();
        assert_eq!((err.status, err.param.as_deref()), (400, Some("model")));
        assert!(
            err.message.contains("anthropic") && err.message.contains("/images/generations"),
            "{}",
            err.message
        );
        let groq = deployment("{model: groq/llama, api_key: k}");
        let err = prepare(
            Operation::Rerank,
            &groq,
            "l",
            &Map::new(),
            None,
            &DropPolicy::default(),
        )
        .unwrap_err();
        assert!(err.message.contains("/rerank"), "{}", err.message);
    }

    #[test]
    fn rerank_goes_to_cohere_v2_or_a_compatible_rerank_route() {
        let none = DropPolicy::default();
        let f = fields(r#"{"query":"q","documents":["a"]}"#);
        let co = deployment("{model: cohere/rerank-v3.5, api_key: k}");
        let c = prepare(Operation::Rerank, &co, "rerank-v3.5", &f, None, &none).unwrap();
        assert_eq!(c.call.url, "https://api.cohere.com/v2/rerank");
        let vllm = deployment(
            "{model: hosted_vllm/BAAI/bge-reranker-v2-m3, api_base: 'http://vllm:8000/v1'}",
        );
        let c = prepare(
            Operation::Rerank,
            &vllm,
            "BAAI/bge-reranker-v2-m3",
            &f,
            None,
            &none,
        )
        .unwrap();
        assert_eq!(c.call.url, "http://vllm:8000/v1/rerank");
        let jina = deployment("{model: jina_ai/jina-reranker-v2-base-multilingual, api_key: k}");
        let c = prepare(Operation::Rerank, &jina, "j", &f, None, &none).unwrap();
        assert_eq!(c.call.url, "https://api.jina.ai/v1/rerank");
    }

    #[test]
    fn replies_tell_images_seconds_and_tokens() {
        let p = deployment("{model: openai/x, api_base: 'http://h'}").provider;
        let none = Map::new();
        let body = Bytes::from_static(br#"{"created":1,"data":[{"b64_json":"x"},{"b64_json":"y"}],"usage":{"input_tokens":10,"output_tokens":4160,"total_tokens":4170}}"#);
        let (_, m) = read_reply(Operation::ImageGeneration, p, &none, body, true).unwrap();
        assert_eq!(
            (m.images, m.usage.prompt_tokens, m.usage.completion_tokens),
            (2, 10, 4160)
        );
        let body = Bytes::from_static(br#"{"task":"transcribe","duration":8.47,"text":"hi"}"#);
        let (_, m) = read_reply(Operation::Transcription, p, &none, body, true).unwrap();
        assert!((m.seconds - 8.47).abs() < 1e-9);
        let body = Bytes::from_static(br#"{"text":"hi","usage":{"type":"duration","seconds":3}}"#);
        let (_, m) = read_reply(Operation::Transcription, p, &none, body, true).unwrap();
        assert!((m.seconds - 3.0).abs() < 1e-9);
        let body = Bytes::from_static(b"plain words\n");
        let (text, m) = read_reply(Operation::Transcription, p, &none, body, false).unwrap();
        assert_eq!((&text[..], m.seconds), (&b"plain words\n"[..], 0.0));
        assert!(read_reply(
            Operation::ImageGeneration,
            p,
            &none,
            Bytes::from_static(b"<html>"),
            false
        )
        .is_err());
    }
}
