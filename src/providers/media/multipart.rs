//! Multipart form bodies: the audio file a transcription carries, and the form re-sent upstream.

use bytes::{Bytes, BytesMut};
use serde_json::{Map, Value as Json};

/// The file part of a `multipart/form-data` request.
#[derive(Debug, Clone)]
pub struct Upload {
    /// The form field it came in (`file`).
    pub field: String,
    /// The client's file name (`speech.mp3`): providers read the audio format from it.
    pub filename: String,
    /// Its content type (`audio/mpeg`), `application/octet-stream` when the client gave none.
    pub content_type: String,
    /// The bytes.
    pub data: Bytes,
}

/// A `multipart/form-data` body being written.
pub struct Form {
    boundary: String,
    body: BytesMut,
}

impl Default for Form {
    fn default() -> Self {
        Self::new()
    }
}

/// A name or file name as a quoted-string of a `Content-Disposition` header, escaped as browsers
/// do (HTML's form encoding): `"`, CR and LF percent-encoded.
fn quoted(value: &str) -> String {
    value
        .replace('"', "%22")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

impl Form {
    /// An empty form with a random boundary.
    pub fn new() -> Self {
        Self {
            boundary: format!("llmgate-{:032x}", fastrand::u128(..)),
            body: BytesMut::new(),
        }
    }

    fn head(&mut self, disposition: &str, content_type: Option<&str>) {
        self.body.extend_from_slice(b"--");
        self.body.extend_from_slice(self.boundary.as_bytes());
        self.body
            .extend_from_slice(b"\r\nContent-Disposition: form-data; ");
        self.body.extend_from_slice(disposition.as_bytes());
        if let Some(ct) = content_type {
            self.body.extend_from_slice(b"\r\nContent-Type: ");
            self.body.extend_from_slice(ct.as_bytes());
        }
        self.body.extend_from_slice(b"\r\n\r\n");
    }

    /// Adds a text field.
    pub fn text(&mut self, name: &str, value: &str) {
        self.head(&format!("name=\"{}\"", quoted(name)), None);
        self.body.extend_from_slice(value.as_bytes());
        self.body.extend_from_slice(b"\r\n");
    }

    /// Adds a field for a JSON value: text as is, numbers and booleans as written, each item
    /// of a list under a `name[]` field, anything else as JSON text.
    pub fn value(&mut self, name: &str, value: &Json) {
        match value {
            Json::Null => {}
            Json::String(s) => self.text(name, s),
            Json::Array(items) if name.ends_with("[]") => {
                for item in items {
                    self.value(name, item);
                }
            }
            other => self.text(name, &other.to_string()),
        }
    }

    /// Adds every field of `fields`, then `defaults` the fields lack, but those in `skip`.
    pub fn fields(
        &mut self,
        fields: &Map<String, Json>,
        defaults: &Map<String, Json>,
        skip: &[String],
    ) {
        let skipped = |k: &String| skip.iter().any(|s| s == k);
        for (k, v) in fields {
            if !skipped(k) {
                self.value(k, v);
            }
        }
        for (k, v) in defaults {
            if !fields.contains_key(k) && !skipped(k) {
                self.value(k, v);
            }
        }
    }

    /// Adds a file.
    pub fn file(&mut self, upload: &Upload) {
        let disposition = format!(
            "name=\"{}\"; filename=\"{}\"",
            quoted(&upload.field),
            quoted(&upload.filename)
        );
        self.head(&disposition, Some(&upload.content_type));
        self.body.extend_from_slice(&upload.data);
        self.body.extend_from_slice(b"\r\n");
    }

    /// The body, closed, and its `Content-Type` (with the boundary).
    pub fn finish(mut self) -> (String, Bytes) {
        self.body.extend_from_slice(b"--");
        self.body.extend_from_slice(self.boundary.as_bytes());
        self.body.extend_from_slice(b"--\r\n");
        (
            format!("multipart/form-data; boundary={}", self.boundary),
            self.body.freeze(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    #[actix_rt::test]
    async fn a_written_form_reads_back_with_actix_multipart() {
        let mut form = Form::new();
        let fields: Map<String, Json> = serde_json::from_str(
            r#"{"model":"whisper-1","temperature":0.2,"timestamp_granularities[]":["word","segment"],"prompt":"say \"hi\""}"#,
        )
        .unwrap();
        form.fields(&fields, &Map::new(), &[]);
        form.file(&Upload {
            field: "file".into(),
            filename: "a \"b\".wav".into(),
            content_type: "audio/wav".into(),
            data: Bytes::from_static(b"RIFF\r\n--not-a-boundary\x00\xff"),
        });
        let (content_type, body) = form.finish();
        let mut headers = actix_web::http::header::HeaderMap::new();
        headers.insert(
            actix_web::http::header::CONTENT_TYPE,
            content_type.parse().unwrap(),
        );
        let stream = futures_util::stream::once(async move { Ok(body) });
        let mut parts = actix_multipart::Multipart::new(&headers, stream);
        let mut seen = Vec::new();
        while let Some(field) = parts.next().await {
            let mut field = field.unwrap();
            let name = field.name().unwrap().to_owned();
            let filename = field
                .content_disposition()
                .and_then(|d| d.get_filename())
                .map(str::to_owned);
            let data = field.bytes(1 << 20).await.unwrap().unwrap();
            seen.push((name, filename, data));
        }
        let text = |i: usize| String::from_utf8(seen[i].2.to_vec()).unwrap();
        assert_eq!(seen.len(), 6);
        assert_eq!((seen[0].0.as_str(), text(0)), ("model", "whisper-1".into()));
        assert_eq!(text(1), "0.2");
        assert_eq!(
            (seen[2].0.as_str(), text(2)),
            ("timestamp_granularities[]", "word".into())
        );
        assert_eq!(text(3), "segment");
        assert_eq!(text(4), "say \"hi\"");
        assert_eq!(seen[5].1.as_deref(), Some("a %22b%22.wav"));
        assert_eq!(&seen[5].2[..], b"RIFF\r\n--not-a-boundary\x00\xff");
    }
}
