//! Images, audio, moderations and rerank requests checked: the fields each route needs, an
//! audio upload read from its multipart form, and the model a moderation may leave out.

use actix_web::http::header::HeaderMap;
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{Map, Value as Json};

use super::model_request::{missing, take_gateway_fields, type_error, ModelRequest, GATEWAY_ONLY};
use crate::error::ApiError;
use crate::providers::media::Upload;
use crate::providers::Operation;
use crate::state::AppState;

/// Checks the fields `op` needs and their types; each error names its field.
pub fn check(op: Operation, fields: &Map<String, Json>) -> Result<(), ApiError> {
    let string = |name: &str, required: bool| match fields.get(name) {
        None | Some(Json::Null) if required => Err(missing(name)),
        None | Some(Json::Null | Json::String(_)) => Ok(()),
        Some(_) => Err(type_error(name, "a string")),
    };
    let count = |name: &str| match fields.get(name) {
        None | Some(Json::Null) => Ok(()),
        Some(v) if v.as_u64().is_some_and(|n| n >= 1) => Ok(()),
        Some(_) => Err(type_error(name, "a positive integer")),
    };
    let no_stream = || match fields.get("stream") {
        Some(Json::Bool(true)) => Err(ApiError::bad_request(
            format!(
                "llmgate does not stream {} replies: send `stream: false` or leave it out",
                op.route()
            ),
            Some("stream"),
        )),
        _ => Ok(()),
    };
    match op {
        Operation::ImageGeneration => {
            string("prompt", true)?;
            count("n")?;
            string("size", false)?;
            string("quality", false)?;
            string("response_format", false)?;
            no_stream()
        }
        Operation::Speech => {
            string("input", true)?;
            string("response_format", false)?;
            match fields.get("speed") {
                None | Some(Json::Null | Json::Number(_)) => Ok(()),
                Some(_) => Err(type_error("speed", "a number")),
            }
        }
        Operation::Transcription | Operation::Translation => no_stream(),
        Operation::Moderation => match fields.get("input") {
            None | Some(Json::Null) => Err(missing("input")),
            Some(Json::String(_) | Json::Array(_)) => Ok(()),
            Some(_) => Err(type_error("input", "a string or a list")),
        },
        Operation::Rerank => {
            string("query", true)?;
            match fields.get("documents") {
                None | Some(Json::Null) => return Err(missing("documents")),
                Some(Json::Array(docs)) if docs.iter().all(|d| d.is_string() || d.is_object()) => {}
                Some(_) => return Err(type_error("documents", "a list of strings or objects")),
            }
            count("top_n")?;
            match fields.get("return_documents") {
                None | Some(Json::Null | Json::Bool(_)) => {}
                Some(_) => return Err(type_error("return_documents", "a boolean")),
            }
            match fields.get("rank_fields") {
                None | Some(Json::Null) => Ok(()),
                Some(Json::Array(f)) if f.iter().all(Json::is_string) => Ok(()),
                Some(_) => Err(type_error("rank_fields", "a list of strings")),
            }
        }
        Operation::Chat | Operation::Completion | Operation::Embedding | Operation::Responses => {
            Ok(())
        }
    }
}

/// The form field that carries the audio.
const FILE_FIELD: &str = "file";

fn form_error(message: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(
        format!("Could not read the multipart form: {message}"),
        None,
    )
}

/// Reads a transcription's or translation's `multipart/form-data` body (already read within
/// `max_request_size`): the `file` upload, `model` (or `path_model`), and every other field as
/// text (`name[]` fields as lists; gateway-only fields such as `metadata` or `num_retries`
/// read as JSON when they are).
pub async fn read_form(
    op: Operation,
    headers: &HeaderMap,
    body: Bytes,
    path_model: Option<String>,
) -> Result<ModelRequest, ApiError> {
    let is_form = headers
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        });
    if !is_form {
        return Err(ApiError::bad_request(
            format!(
                "{} takes a multipart/form-data body with the audio in `file`",
                op.route()
            ),
            Some(FILE_FIELD),
        ));
    }
    let limit = body.len();
    let mut parts =
        actix_multipart::Multipart::new(headers, futures_util::stream::once(async { Ok(body) }));
    let mut fields = Map::new();
    let mut upload: Option<Upload> = None;
    let mut model: Option<String> = None;
    while let Some(part) = parts.next().await {
        let mut part = part.map_err(form_error)?;
        let name = part.name().unwrap_or_default().to_owned();
        let filename = part
            .content_disposition()
            .and_then(|d| d.get_filename())
            .map(str::to_owned);
        let content_type = part.content_type().map(ToString::to_string);
        let data = match part.bytes(limit).await {
            Ok(Ok(data)) => data,
            Ok(Err(e)) => return Err(form_error(e)),
            Err(e) => return Err(form_error(e)),
        };
        if name == FILE_FIELD {
            upload = Some(Upload {
                field: name,
                filename: filename.unwrap_or_else(|| "audio".to_owned()),
                content_type: content_type.unwrap_or_else(|| "application/octet-stream".to_owned()),
                data,
            });
            continue;
        }
        let text =
            String::from_utf8(data.to_vec()).map_err(|_| type_error(&name, "text (UTF-8)"))?;
        if name == "model" {
            model = Some(text);
        } else if name.ends_with("[]") {
            let list = fields
                .entry(name)
                .or_insert_with(|| Json::Array(Vec::new()));
            if let Json::Array(items) = list {
                items.push(Json::String(text));
            }
        } else if GATEWAY_ONLY.contains(&name.as_str()) {
            let value = serde_json::from_str(&text).unwrap_or(Json::String(text));
            fields.insert(name, value);
        } else {
            fields.insert(name, Json::String(text));
        }
    }
    let upload = upload.ok_or_else(|| missing(FILE_FIELD))?;
    let model = path_model
        .or(model)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| missing("model"))?;
    if fields.get("stream").and_then(Json::as_str) == Some("true") {
        fields.insert("stream".into(), Json::Bool(true));
    }
    check(op, &fields)?;
    fields.remove("stream");
    let gateway = take_gateway_fields(&mut fields)?;
    Ok(ModelRequest {
        model,
        stream: false,
        wants_stream_usage: false,
        fields,
        gateway,
        cache_store: None,
        upload: Some(upload),
    })
}

/// The model of a moderation that names none, as LiteLLM picks it: the first model group whose
/// deployment is a moderation model (`model_info.mode: moderation`, or a name with
/// `moderation` in it), else `omni-moderation-latest` when a group (or wildcard) serves it.
pub fn default_moderation_model(state: &AppState) -> Result<String, ApiError> {
    let topology = state.topology();
    let moderation = topology.live().find(|d| {
        d.model_info.get("mode").and_then(Json::as_str) == Some("moderation")
            || (!d.is_wildcard && d.upstream_model.contains("moderation"))
    });
    if let Some(d) = moderation {
        return Ok(d.model_name.clone());
    }
    const OPENAI_DEFAULT: &str = "omni-moderation-latest";
    if topology.catalog.resolve(OPENAI_DEFAULT).is_some() {
        return Ok(OPENAI_DEFAULT.to_owned());
    }
    Err(ApiError::bad_request(
        "Missing required parameter: 'model' (no moderation model is configured to default to)",
        Some("model"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::ResponseError;

    fn fields(text: &str) -> Map<String, Json> {
        serde_json::from_str(text).unwrap()
    }

    fn param(op: Operation, body: &str) -> Option<String> {
        check(op, &fields(body)).err().map(|e| {
            e.body()["error"]["param"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
    }

    #[test]
    fn each_route_names_the_field_it_lacks_or_cannot_read() {
        assert_eq!(
            param(Operation::ImageGeneration, "{}").as_deref(),
            Some("prompt")
        );
        assert_eq!(
            param(Operation::ImageGeneration, r#"{"prompt":"x","n":0}"#).as_deref(),
            Some("n")
        );
        assert_eq!(
            param(
                Operation::ImageGeneration,
                r#"{"prompt":"x","stream":true}"#
            )
            .as_deref(),
            Some("stream")
        );
        assert_eq!(
            param(
                Operation::ImageGeneration,
                r#"{"prompt":"x","n":2,"size":"256x256"}"#
            ),
            None
        );
        assert_eq!(
            param(Operation::Speech, r#"{"voice":"alloy"}"#).as_deref(),
            Some("input")
        );
        assert_eq!(
            param(Operation::Speech, r#"{"input":"x","speed":"fast"}"#).as_deref(),
            Some("speed")
        );
        assert_eq!(
            param(Operation::Moderation, r#"{"input":5}"#).as_deref(),
            Some("input")
        );
        assert_eq!(
            param(Operation::Rerank, r#"{"documents":["a"]}"#).as_deref(),
            Some("query")
        );
        assert_eq!(
            param(Operation::Rerank, r#"{"query":"q"}"#).as_deref(),
            Some("documents")
        );
        assert_eq!(
            param(Operation::Rerank, r#"{"query":"q","documents":[1]}"#).as_deref(),
            Some("documents")
        );
        assert_eq!(
            param(
                Operation::Rerank,
                r#"{"query":"q","documents":["a"],"top_n":-1}"#
            )
            .as_deref(),
            Some("top_n")
        );
        assert_eq!(
            param(
                Operation::Rerank,
                r#"{"query":"q","documents":["a",{"text":"b"}],"top_n":1}"#
            ),
            None
        );
    }

    fn form(parts: &[(&str, Option<&str>, &[u8])]) -> (HeaderMap, Bytes) {
        let mut f = crate::providers::media::multipart::Form::new();
        for (name, filename, data) in parts {
            match filename {
                Some(file) => f.file(&Upload {
                    field: (*name).to_owned(),
                    filename: (*file).to_owned(),
                    content_type: "audio/wav".into(),
                    data: Bytes::copy_from_slice(data),
                }),
                None => f.text(name, std::str::from_utf8(data).unwrap()),
            }
        }
        let (ct, body) = f.finish();
        let mut headers = HeaderMap::new();
        headers.insert(actix_web::http::header::CONTENT_TYPE, ct.parse().unwrap());
        (headers, body)
    }

    #[actix_rt::test]
    async fn a_form_gives_its_file_model_text_fields_lists_and_gateway_fields() {
        let (headers, body) = form(&[
            ("model", None, b"whisper"),
            ("temperature", None, b"0.20"),
            ("timestamp_granularities[]", None, b"word"),
            ("timestamp_granularities[]", None, b"segment"),
            ("num_retries", None, b"0"),
            ("metadata", None, br#"{"team":"a"}"#),
            ("file", Some("a.wav"), b"RIFF"),
        ]);
        let r = read_form(Operation::Transcription, &headers, body, None)
            .await
            .unwrap();
        assert_eq!(r.model, "whisper");
        assert_eq!(
            Json::Object(r.fields.clone()),
            serde_json::json!({"temperature":"0.20","timestamp_granularities[]":["word","segment"]})
        );
        assert_eq!(r.gateway.num_retries, Some(0));
        assert_eq!(r.gateway.metadata, Some(serde_json::json!({"team":"a"})));
        let upload = r.upload.unwrap();
        assert_eq!(
            (upload.filename.as_str(), &upload.data[..]),
            ("a.wav", &b"RIFF"[..])
        );
    }

    #[actix_rt::test]
    async fn a_form_without_its_file_or_model_or_not_a_form_is_a_400_naming_the_field() {
        let (headers, body) = form(&[("model", None, b"whisper")]);
        let err = read_form(Operation::Transcription, &headers, body, None)
            .await
            .unwrap_err();
        assert_eq!(err.body()["error"]["param"], "file");
        let (headers, body) = form(&[("file", Some("a.wav"), b"RIFF")]);
        let err = read_form(Operation::Translation, &headers, body.clone(), None)
            .await
            .unwrap_err();
        assert_eq!(err.body()["error"]["param"], "model");
        let ok = read_form(Operation::Translation, &headers, body, Some("dep".into()))
            .await
            .unwrap();
        assert_eq!(ok.model, "dep");
        let mut json = HeaderMap::new();
        json.insert(
            actix_web::http::header::CONTENT_TYPE,
            "application/json".parse().unwrap(),
        );
        let err = read_form(
            Operation::Transcription,
            &json,
            Bytes::from_static(b"{}"),
            None,
        )
        .await
        .unwrap_err();
        assert_eq!(
            (err.status_code().as_u16(), &err.body()["error"]["param"]),
            (400, &Json::from("file"))
        );
    }
}
