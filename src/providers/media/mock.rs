//! `mock_response` for images, audio, moderations and rerank: a plausible reply in each route's
//! shape, made without any upstream.

use bytes::Bytes;
use serde_json::{json, Map, Value as Json};

use super::Upload;
use crate::providers::{random_uuid, unix_now, Operation};

/// A 1x1 transparent PNG, for `response_format: b64_json`.
const PIXEL_PNG_B64: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

/// The moderation categories OpenAI's `omni-moderation` models report.
const CATEGORIES: &[&str] = &[
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
];

/// A JSON mock reply for `op` to a request with `fields`; `content` is the image's revised
/// prompt, the transcript, or (rerank, moderation) unused.
pub fn reply(op: Operation, model: &str, content: &str, fields: &Map<String, Json>) -> Json {
    match op {
        Operation::ImageGeneration => {
            let n = fields
                .get("n")
                .and_then(Json::as_u64)
                .unwrap_or(1)
                .clamp(1, 10);
            let b64 = fields.get("response_format").and_then(Json::as_str) == Some("b64_json");
            let image = if b64 {
                json!({"b64_json": PIXEL_PNG_B64, "revised_prompt": content})
            } else {
                json!({"url": "https://example.com/llmgate-mock-image.png", "revised_prompt": content})
            };
            json!({"created": unix_now(), "data": vec![image; n as usize]})
        }
        Operation::Moderation => {
            let inputs = match fields.get("input") {
                Some(Json::Array(items)) => items.len().max(1),
                _ => 1,
            };
            let flags: Map<String, Json> = CATEGORIES
                .iter()
                .map(|c| ((*c).to_owned(), Json::Bool(false)))
                .collect();
            let scores: Map<String, Json> = CATEGORIES
                .iter()
                .map(|c| ((*c).to_owned(), json!(0.0)))
                .collect();
            let result = json!({"flagged": false, "categories": flags, "category_scores": scores});
            json!({
                "id": format!("modr-{}", random_uuid().simple()),
                "model": model,
                "results": vec![result; inputs],
            })
        }
        Operation::Rerank => {
            let docs = fields
                .get("documents")
                .and_then(Json::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let top_n = fields
                .get("top_n")
                .and_then(Json::as_u64)
                .map_or(docs.len(), |n| n as usize);
            let with_docs = fields.get("return_documents").and_then(Json::as_bool) == Some(true);
            let results: Vec<Json> = docs
                .iter()
                .enumerate()
                .take(top_n)
                .map(|(i, doc)| {
                    let mut r = json!({"index": i, "relevance_score": 1.0 / (i as f64 + 1.0)});
                    if with_docs {
                        r["document"] = match doc {
                            Json::String(text) => json!({"text": text}),
                            other => other.clone(),
                        };
                    }
                    r
                })
                .collect();
            json!({
                "id": random_uuid().to_string(),
                "results": results,
                "meta": {"billed_units": {"search_units": 1}},
            })
        }
        Operation::Transcription | Operation::Translation => transcript(op, content, fields, None),
        // Chat, completions, embeddings and speech have mocks of their own.
        _ => json!({"text": content}),
    }
}

/// A transcript in JSON (`json` or `verbose_json`), of `seconds` of audio when known.
pub fn transcript(
    op: Operation,
    content: &str,
    fields: &Map<String, Json>,
    seconds: Option<f64>,
) -> Json {
    let verbose = fields.get("response_format").and_then(Json::as_str) == Some("verbose_json");
    if !verbose {
        let mut t = json!({"text": content});
        if let Some(s) = seconds {
            t["usage"] = json!({"type": "duration", "seconds": s.ceil()});
        }
        return t;
    }
    let task = if op == Operation::Translation {
        "translate"
    } else {
        "transcribe"
    };
    let duration = seconds.unwrap_or(0.0);
    json!({
        "task": task,
        "language": "english",
        "duration": duration,
        "text": content,
        "segments": [{"id": 0, "seek": 0, "start": 0.0, "end": duration, "text": content, "tokens": [], "temperature": 0.0, "avg_logprob": 0.0, "compression_ratio": 1.0, "no_speech_prob": 0.0}],
    })
}

/// A transcript as text, for `response_format` `text`, `srt` or `vtt`: its content type and
/// body; `None` for the JSON formats.
pub fn transcript_text(
    content: &str,
    fields: &Map<String, Json>,
    seconds: Option<f64>,
) -> Option<(&'static str, String)> {
    let end = seconds.unwrap_or(1.0).max(1.0);
    let (s, ms) = (
        end.trunc() as u64,
        ((end.fract() * 1000.0).round() as u64).min(999),
    );
    let stamp = |sep: char| {
        format!(
            "{:02}:{:02}:{:02}{sep}{ms:03}",
            s / 3600,
            (s / 60) % 60,
            s % 60
        )
    };
    match fields.get("response_format").and_then(Json::as_str) {
        Some("text") => Some(("text/plain; charset=utf-8", format!("{content}\n"))),
        Some("srt") => Some((
            "text/plain; charset=utf-8",
            format!("1\n00:00:00,000 --> {}\n{content}\n\n", stamp(',')),
        )),
        Some("vtt") => Some((
            "text/vtt; charset=utf-8",
            format!("WEBVTT\n\n00:00:00.000 --> {}\n{content}\n\n", stamp('.')),
        )),
        _ => None,
    }
}

/// Seconds of audio in a WAV upload (from its header), the one format a mock can measure.
pub fn wav_seconds(upload: &Upload) -> Option<f64> {
    let d = &upload.data;
    if d.len() < 12 || &d[..4] != b"RIFF" || &d[8..12] != b"WAVE" {
        return None;
    }
    let le32 = |at: usize| {
        d.get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let (mut at, mut byte_rate) = (12, None);
    while at + 8 <= d.len() {
        let size = le32(at + 4)? as usize;
        match &d[at..at + 4] {
            b"fmt " => byte_rate = le32(at + 16),
            b"data" => {
                return byte_rate
                    .filter(|r| *r > 0)
                    .map(|r| size as f64 / f64::from(r))
            }
            _ => {}
        }
        at = at.checked_add(8 + size + (size & 1))?;
    }
    None
}

/// Silent audio in the requested `response_format` (mp3 by default): its content type and bytes.
pub fn speech(fields: &Map<String, Json>) -> (&'static str, Bytes) {
    match fields.get("response_format").and_then(Json::as_str) {
        Some("wav") => ("audio/wav", silent_wav()),
        Some("pcm") => ("audio/pcm", Bytes::from(vec![0u8; 4800])),
        Some("opus") => ("audio/opus", silent_mp3()),
        Some("aac") => ("audio/aac", silent_mp3()),
        Some("flac") => ("audio/flac", silent_mp3()),
        _ => ("audio/mpeg", silent_mp3()),
    }
}

/// A tenth of a second of silence as a WAV upload: what a transcriber's health check sends.
pub fn probe_upload() -> Upload {
    Upload {
        field: "file".into(),
        filename: "ping.wav".into(),
        content_type: "audio/wav".into(),
        data: silent_wav(),
    }
}

/// A tenth of a second of silence as a 24 kHz mono 16-bit WAV.
fn silent_wav() -> Bytes {
    let samples: u32 = 2400;
    let data_len = samples * 2;
    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&24_000u32.to_le_bytes());
    out.extend_from_slice(&48_000u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    out.resize(44 + data_len as usize, 0);
    Bytes::from(out)
}

/// One silent MPEG-1 Layer III frame (128 kbit/s, 44.1 kHz): 417 bytes.
fn silent_mp3() -> Bytes {
    let mut frame = vec![0u8; 417];
    frame[..4].copy_from_slice(&[0xFF, 0xFB, 0x90, 0x64]);
    Bytes::from(frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(text: &str) -> Map<String, Json> {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn image_mocks_give_n_urls_or_base64() {
        let r = reply(
            Operation::ImageGeneration,
            "dall-e-3",
            "a cat",
            &fields(r#"{"n":2}"#),
        );
        assert_eq!(r["data"].as_array().unwrap().len(), 2);
        assert!(r["data"][0]["url"].is_string());
        let r = reply(
            Operation::ImageGeneration,
            "m",
            "a cat",
            &fields(r#"{"response_format":"b64_json"}"#),
        );
        assert_eq!(r["data"][0]["b64_json"], PIXEL_PNG_B64);
    }

    #[test]
    fn rerank_mocks_keep_top_n_and_documents() {
        let f = fields(r#"{"documents":["a","b","c"],"top_n":2,"return_documents":true}"#);
        let r = reply(Operation::Rerank, "m", "", &f);
        assert_eq!(r["results"].as_array().unwrap().len(), 2);
        assert_eq!(r["results"][1]["document"]["text"], "b");
        assert_eq!(r["meta"]["billed_units"]["search_units"], 1);
    }

    #[test]
    fn moderation_mocks_have_one_unflagged_result_per_input() {
        let r = reply(
            Operation::Moderation,
            "omni",
            "",
            &fields(r#"{"input":["a","b"]}"#),
        );
        assert_eq!(r["results"].as_array().unwrap().len(), 2);
        assert_eq!(r["results"][0]["categories"]["hate"], false);
    }

    #[test]
    fn a_wav_upload_is_measured_and_the_mock_speech_wav_is_one() {
        let wav = Upload {
            field: "file".into(),
            filename: "a.wav".into(),
            content_type: "audio/wav".into(),
            data: silent_wav(),
        };
        assert_eq!(wav_seconds(&wav), Some(0.1));
        let not = Upload {
            data: silent_mp3(),
            ..wav
        };
        assert_eq!(wav_seconds(&not), None);
        let (ct, body) = speech(&fields(r#"{"response_format":"wav"}"#));
        assert_eq!((ct, &body[..4]), ("audio/wav", &b"RIFF"[..]));
    }

    #[test]
    fn text_transcripts_follow_the_response_format() {
        let srt =
            transcript_text("hi", &fields(r#"{"response_format":"srt"}"#), Some(2.5)).unwrap();
        assert_eq!(srt.1, "1\n00:00:00,000 --> 00:00:02,500\nhi\n\n");
        assert!(transcript_text("hi", &fields(r#"{"response_format":"json"}"#), None).is_none());
        let verbose = transcript(
            Operation::Translation,
            "hi",
            &fields(r#"{"response_format":"verbose_json"}"#),
            Some(3.0),
        );
        assert_eq!(
            (verbose["task"].as_str(), verbose["duration"].as_f64()),
            (Some("translate"), Some(3.0))
        );
    }
}
