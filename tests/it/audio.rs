//! `/audio/speech`, `/audio/transcriptions` and `/audio/translations` like chat: speech's audio
//! streamed through as it arrives and charged per character; uploads re-sent as multipart and
//! charged per second of audio; text transcripts as text; Azure paths, mocks, size limits and
//! errors in the contract's shape.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use llmgate::providers::media::multipart::Form;
use llmgate::providers::media::Upload;
use serde_json::json;

use crate::support::db::{both, TestDb};
use crate::support::gateway::Reply;
use crate::support::media_upstream::{
    assert_charged, media_config, new_key, MediaUpstream, MASTER, SPEECH_CHUNKS,
};
use crate::support::{assert_error_body, Gateway};

/// A WAV header for `seconds` of 16 kHz mono 16-bit audio, and its (silent) samples.
fn wav(seconds: u32) -> Bytes {
    let data_len = 32_000 * seconds;
    let mut out = Vec::new();
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&[1, 0, 1, 0]);
    out.extend_from_slice(&16_000u32.to_le_bytes());
    out.extend_from_slice(&32_000u32.to_le_bytes());
    out.extend_from_slice(&[2, 0, 16, 0]);
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    out.resize(44 + data_len as usize, 0);
    Bytes::from(out)
}

/// POSTs a multipart form with `fields` and (when given) the audio `file`.
async fn post_form(
    gw: &Gateway,
    path: &str,
    key: &str,
    fields: &[(&str, &str)],
    file: Option<Bytes>,
) -> Reply {
    let mut form = Form::new();
    for (name, value) in fields {
        form.text(name, value);
    }
    if let Some(data) = file {
        form.file(&Upload {
            field: "file".into(),
            filename: "speech.wav".into(),
            content_type: "audio/wav".into(),
            data,
        });
    }
    let (content_type, body) = form.finish();
    let mut res = gw
        .client
        .post(format!("{}{path}", gw.base))
        .bearer_auth(key)
        .insert_header(("content-type", content_type))
        .send_body(body)
        .await
        .expect("gateway answers");
    let body = res.body().limit(64 << 20).await.unwrap();
    Reply {
        status: res.status().as_u16(),
        headers: res.headers().clone(),
        text: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn deployment(name: &str, model: &str, base: &str) -> String {
    format!("  - model_name: {name}\n    litellm_params: {{model: {model}, api_base: '{base}', api_key: sk-up}}\n")
}

#[actix_rt::test]
async fn speech_streams_the_upstream_audio_as_it_arrives_and_is_charged_per_character() {
    let up = MediaUpstream::start();
    up.set_speech_gap(Duration::from_millis(300));
    let models = deployment("voice", "openai/tts-1", &up.v1());
    let db = TestDb::sqlite();
    let gw = Gateway::start(&media_config(&models, &db.url, "")).await;
    let key = new_key(&gw, json!({})).await;
    let input = "Hello from the gateway!";

    let mut res = gw
        .client
        .post(format!("{}/v1/audio/speech", gw.base))
        .bearer_auth(&key)
        .send_json(&json!({"model": "voice", "input": input, "voice": "alloy", "speed": 1.25, "num_retries": 0}))
        .await
        .unwrap();

    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.headers().get("content-type").unwrap(), "audio/mpeg");
    let first = res.next().await.unwrap().unwrap();
    // The first chunk is here before the upstream has written the last one.
    assert!(
        up.speech_chunks_sent() < SPEECH_CHUNKS.len(),
        "sent {}",
        up.speech_chunks_sent()
    );
    let mut audio = first.to_vec();
    while let Some(chunk) = res.next().await {
        audio.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(audio, SPEECH_CHUNKS.concat());
    assert_eq!(
        up.last().json(),
        json!({"model": "tts-1", "input": input, "voice": "alloy", "speed": 1.25})
    );
    let reply = Reply {
        status: 200,
        headers: res.headers().clone(),
        text: String::new(),
    };
    assert_charged(
        &gw,
        &key,
        &reply,
        Some(input.chars().count() as f64 * 1.5e-5),
    )
    .await;
}

#[actix_rt::test]
async fn a_transcription_upload_is_re_sent_as_multipart_and_charged_per_second_on_sqlite_and_postgres(
) {
    for db in both() {
        let up = MediaUpstream::start();
        let models = deployment("whisper", "openai/whisper-1", &up.v1());
        let gw = Gateway::start(&media_config(&models, &db.url, "")).await;
        let key = new_key(&gw, json!({"models": ["whisper"]})).await;
        let audio = wav(1);

        let r = post_form(
            &gw,
            "/v1/audio/transcriptions",
            &key,
            &[
                ("model", "whisper"),
                ("language", "en"),
                ("response_format", "verbose_json"),
                ("timestamp_granularities[]", "word"),
                ("timestamp_granularities[]", "segment"),
                ("metadata", r#"{"job":"call-42"}"#),
            ],
            Some(audio.clone()),
        )
        .await;

        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json()["duration"], 8.47);
        let sent = up.last();
        assert_eq!(sent.path, "/v1/audio/transcriptions");
        let parts = sent.form().await;
        let names: Vec<&str> = parts.iter().map(|(n, _, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "model",
                "language",
                "response_format",
                "timestamp_granularities[]",
                "timestamp_granularities[]",
                "file"
            ]
        );
        assert_eq!(&parts[0].2[..], b"whisper-1");
        assert_eq!(&parts[4].2[..], b"segment");
        assert_eq!(
            (parts[5].1.as_deref(), &parts[5].2),
            (Some("speech.wav"), &audio)
        );
        // whisper-1: $0.006 a minute, for the 8.47 s the reply reports.
        let row = assert_charged(&gw, &key, &r, Some(8.47 * 1e-4)).await;
        assert_eq!(row["metadata"], json!({"job": "call-42"}));
        gw.stop().await;
    }
}

#[actix_rt::test]
async fn a_text_transcript_comes_back_as_the_upstream_wrote_it() {
    let up = MediaUpstream::start();
    let models = deployment("whisper", "openai/whisper-1", &up.v1());
    let gw = Gateway::start(&media_config(&models, &TestDb::sqlite().url, "")).await;

    let r = post_form(
        &gw,
        "/audio/transcriptions",
        MASTER,
        &[("model", "whisper"), ("response_format", "text")],
        Some(wav(1)),
    )
    .await;

    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r.text, "The quick brown fox jumps over the lazy dog.\n");
    assert_eq!(r.header("x-litellm-response-cost"), Some("0"));
}

#[actix_rt::test]
async fn translations_and_speech_take_azure_deployment_paths() {
    let up = MediaUpstream::start();
    let models = format!(
        "  - model_name: az-whisper\n    litellm_params: {{model: azure/whisper-dep, api_base: '{0}', api_key: az, api_version: '2024-06-01'}}\n  - model_name: az-voice\n    litellm_params: {{model: azure/tts-dep, api_base: '{0}', api_key: az}}\n    model_info: {{base_model: azure/tts-1-hd}}\n",
        up.base
    );
    let gw = Gateway::start(&media_config(&models, &TestDb::sqlite().url, "")).await;

    let r = post_form(
        &gw,
        "/openai/deployments/az-whisper/audio/translations",
        MASTER,
        &[],
        Some(wav(1)),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let sent = up.last();
    assert_eq!(
        (sent.path.as_str(), sent.query.as_str()),
        (
            "/openai/deployments/whisper-dep/audio/translations",
            "api-version=2024-06-01"
        )
    );
    assert_eq!(sent.headers["api-key"], "az");

    let r = gw
        .post(
            "/openai/deployments/az-voice/audio/speech",
            Some(MASTER),
            &json!({"input": "abcd", "voice": "nova"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(up.last().path, "/openai/deployments/tts-dep/audio/speech");
    assert_eq!(
        r.header("x-litellm-response-cost"),
        Some((4.0 * 3e-5).to_string().as_str())
    );
}

#[actix_rt::test]
async fn audio_mocks_answer_without_an_upstream_in_each_routes_shape() {
    let models = "  - model_name: mock-whisper\n    litellm_params: {model: openai/whisper-1, mock_response: 'mocked words'}\n  - model_name: mock-voice\n    litellm_params: {model: openai/tts-1}\n";
    let gw = Gateway::start(&media_config(models, &TestDb::sqlite().url, "")).await;
    let key = new_key(&gw, json!({})).await;

    let r = post_form(
        &gw,
        "/v1/audio/transcriptions",
        &key,
        &[
            ("model", "mock-whisper"),
            ("response_format", "verbose_json"),
        ],
        Some(wav(3)),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (r.json()["text"].as_str(), r.json()["duration"].as_f64()),
        (Some("mocked words"), Some(3.0))
    );
    // The mock measures the WAV it was sent: 3 s of whisper-1.
    assert_charged(&gw, &key, &r, Some(3.0 * 1e-4)).await;

    let r = gw
        .post("/v1/audio/speech", Some(&key), &json!({"model": "mock-voice", "input": "hi", "voice": "alloy", "response_format": "wav", "mock_response": "x"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("content-type"), Some("audio/wav"));
    assert!(r.text.starts_with("RIFF"));
    assert_charged(&gw, &key, &r, Some(2.0 * 1.5e-5)).await;
}

#[actix_rt::test]
async fn audio_errors_are_in_the_contract_shape_and_an_oversized_upload_is_a_413() {
    let up = MediaUpstream::start();
    let models = deployment("whisper", "openai/whisper-1", &up.v1())
        + &deployment("voice", "openai/tts-1", &up.v1());
    let extra = "  max_request_size_mb: 1\n";
    let gw = Gateway::start(&media_config(&models, &TestDb::sqlite().url, extra)).await;

    let no_file = post_form(
        &gw,
        "/v1/audio/transcriptions",
        MASTER,
        &[("model", "whisper")],
        None,
    )
    .await;
    assert_eq!(no_file.status, 400);
    assert_error_body(&no_file.json(), 400, "invalid_request_error");
    assert_eq!(no_file.json()["error"]["param"], "file");

    let json_body = gw
        .post(
            "/v1/audio/transcriptions",
            Some(MASTER),
            &json!({"model": "whisper"}),
        )
        .await;
    assert_eq!(json_body.status, 400);
    assert_eq!(json_body.json()["error"]["param"], "file");

    let huge = post_form(
        &gw,
        "/v1/audio/transcriptions",
        MASTER,
        &[("model", "whisper")],
        Some(wav(40)),
    )
    .await;
    assert_eq!(huge.status, 413, "{}", huge.text);
    assert_error_body(&huge.json(), 413, "invalid_request_error");

    let no_input = gw
        .post(
            "/v1/audio/speech",
            Some(MASTER),
            &json!({"model": "voice", "voice": "alloy"}),
        )
        .await;
    assert_eq!(no_input.status, 400);
    assert_eq!(no_input.json()["error"]["param"], "input");
    assert!(up.calls().is_empty());
}

#[actix_rt::test]
async fn health_checks_call_transcribers_speakers_and_rerankers_on_their_own_routes() {
    let up = MediaUpstream::start();
    let models = format!(
        "  - model_name: whisper\n    litellm_params: {{model: openai/whisper-1, api_base: '{0}/v1', api_key: k}}\n    model_info: {{mode: audio_transcription}}\n  - model_name: voice\n    litellm_params: {{model: openai/tts-1, api_base: '{0}/v1', api_key: k}}\n    model_info: {{mode: audio_speech}}\n  - model_name: reranker\n    litellm_params: {{model: cohere/rerank-v3.5, api_base: '{0}', api_key: k}}\n    model_info: {{mode: rerank}}\n",
        up.base
    );
    let gw = Gateway::start(&media_config(&models, &TestDb::sqlite().url, "")).await;

    let r = gw.get("/health", Some(MASTER)).await;

    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (
            r.json()["healthy_count"].as_u64(),
            r.json()["unhealthy_count"].as_u64()
        ),
        (Some(3), Some(0)),
        "{}",
        r.text
    );
    let mut paths: Vec<String> = up.calls().iter().map(|c| c.path.clone()).collect();
    paths.sort();
    assert_eq!(
        paths,
        ["/v1/audio/speech", "/v1/audio/transcriptions", "/v2/rerank"]
    );
    let upload = up
        .calls()
        .into_iter()
        .find(|c| c.path.ends_with("/transcriptions"))
        .unwrap();
    let parts = upload.form().await;
    assert!(parts
        .iter()
        .any(|(name, file, data)| name == "file" && file.is_some() && data.starts_with(b"RIFF")));
}
