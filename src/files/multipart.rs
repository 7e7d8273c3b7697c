//! A `multipart/form-data` body read whole (RFC 7578): its fields found, and the form re-sent
//! without the gateway's own fields, every other part's bytes as the client wrote them.

use std::ops::Range;

use bytes::Bytes;

/// Why a body is not a form the gateway can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    /// The content type is not `multipart/form-data`.
    #[error("expected a multipart/form-data body")]
    NotMultipart,
    /// The content type names no boundary.
    #[error("the multipart/form-data content type has no boundary")]
    NoBoundary,
    /// The body does not follow the boundary's structure.
    #[error("malformed multipart body: {0}")]
    Malformed(&'static str),
}

/// One part of a form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Its field name (`Content-Disposition: form-data; name=...`).
    pub name: String,
    /// Its file name, for a file part.
    pub filename: Option<String>,
    /// Its own content type, if it gave one.
    pub content_type: Option<String>,
    /// The whole part (headers and data) in the body.
    raw: Range<usize>,
    /// Its data in the body.
    data: Range<usize>,
}

/// A parsed form over the body it came in.
#[derive(Debug, Clone)]
pub struct Form {
    body: Bytes,
    boundary: String,
    parts: Vec<Part>,
}

/// The boundary of a `multipart/form-data` content type.
pub fn boundary_of(content_type: &str) -> Result<&str, FormError> {
    let mut params = content_type.split(';');
    let essence = params.next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case("multipart/form-data") {
        return Err(FormError::NotMultipart);
    }
    params
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v.trim().trim_matches('"'))
        .filter(|b| !b.is_empty() && b.len() <= 200)
        .ok_or(FormError::NoBoundary)
}

/// Where `needle` first occurs in `hay` at or after `from`.
fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let first = *needle.first()?;
    let mut at = from;
    while at + needle.len() <= hay.len() {
        let next = hay[at..].iter().position(|&b| b == first)? + at;
        if hay.get(next..next + needle.len())? == needle {
            return Some(next);
        }
        at = next + 1;
    }
    None
}

/// A header parameter's value (`name="x"`), unquoted.
fn param(header: &str, key: &str) -> Option<String> {
    header.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        if !k.trim().eq_ignore_ascii_case(key) {
            return None;
        }
        let v = v.trim();
        Some(
            match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
                Some(quoted) => quoted.replace("\\\"", "\"").replace("\\\\", "\\"),
                None => v.to_owned(),
            },
        )
    })
}

impl Form {
    /// Reads `body` as the form its `content_type` announces.
    pub fn parse(content_type: &str, body: Bytes) -> Result<Self, FormError> {
        let boundary = boundary_of(content_type)?.to_owned();
        let delimiter = format!("--{boundary}").into_bytes();
        let next_delimiter = format!("\r\n--{boundary}").into_bytes();
        let b = &body[..];
        // The first delimiter opens the body, or ends a preamble line.
        let mut at = if b.starts_with(&delimiter) {
            delimiter.len()
        } else {
            find(b, &next_delimiter, 0).ok_or(FormError::Malformed("no boundary in the body"))?
                + next_delimiter.len()
        };
        let mut parts = Vec::new();
        loop {
            if b.get(at..at + 2) == Some(b"--") {
                break;
            }
            // Transport padding may follow a delimiter before its line break.
            while matches!(b.get(at), Some(b' ' | b'\t')) {
                at += 1;
            }
            if b.get(at..at + 2) != Some(b"\r\n") {
                return Err(FormError::Malformed(
                    "a boundary is not followed by a line break",
                ));
            }
            let start = at + 2;
            let end = find(b, &next_delimiter, start).ok_or(FormError::Malformed(
                "the body ends before its closing boundary",
            ))?;
            parts.push(Self::part(b, start..end)?);
            at = end + next_delimiter.len();
        }
        Ok(Self {
            body,
            boundary,
            parts,
        })
    }

    fn part(b: &[u8], raw: Range<usize>) -> Result<Part, FormError> {
        let (head_end, data_start) = if b[raw.clone()].starts_with(b"\r\n") {
            (raw.start, raw.start + 2)
        } else {
            let at = find(&b[..raw.end], b"\r\n\r\n", raw.start)
                .ok_or(FormError::Malformed("a part's headers do not end"))?;
            (at, at + 4)
        };
        let head = std::str::from_utf8(&b[raw.start..head_end])
            .map_err(|_| FormError::Malformed("a part's headers are not UTF-8"))?;
        let mut name = None;
        let mut filename = None;
        let mut content_type = None;
        for line in head.split("\r\n") {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let key = key.trim();
            if key.eq_ignore_ascii_case("content-disposition") {
                name = param(value, "name");
                filename = param(value, "filename");
            } else if key.eq_ignore_ascii_case("content-type") {
                content_type = Some(value.trim().to_owned());
            }
        }
        Ok(Part {
            name: name.ok_or(FormError::Malformed("a part has no field name"))?,
            filename,
            content_type,
            data: data_start..raw.end,
            raw,
        })
    }

    /// The parts, in order.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// The first part named `name`.
    pub fn part_named(&self, name: &str) -> Option<&Part> {
        self.parts.iter().find(|p| p.name == name)
    }

    /// A part's data (shared with the body, not copied).
    pub fn data(&self, part: &Part) -> Bytes {
        self.body.slice(part.data.clone())
    }

    /// The text of the field `name` (not a file), trimmed; `None` when absent or not UTF-8.
    pub fn text(&self, name: &str) -> Option<String> {
        let part = self
            .parts
            .iter()
            .find(|p| p.name == name && p.filename.is_none())?;
        std::str::from_utf8(&self.body[part.data.clone()])
            .ok()
            .map(|s| s.trim().to_owned())
    }

    /// The form as sent on, without the parts named in `dropped`: the body itself when none is
    /// there, else the kept parts' bytes (shared, not copied) between fresh delimiters of the
    /// same boundary, so the content type stays the client's.
    pub fn without(&self, dropped: &[&str]) -> Vec<Bytes> {
        if !self
            .parts
            .iter()
            .any(|p| dropped.contains(&p.name.as_str()))
        {
            return vec![self.body.clone()];
        }
        let open = Bytes::from(format!("--{}\r\n", self.boundary));
        let between = Bytes::from(format!("\r\n--{}\r\n", self.boundary));
        let close = Bytes::from(format!("\r\n--{}--\r\n", self.boundary));
        let kept: Vec<&Part> = self
            .parts
            .iter()
            .filter(|p| !dropped.contains(&p.name.as_str()))
            .collect();
        if kept.is_empty() {
            return vec![Bytes::from(format!("--{}--\r\n", self.boundary))];
        }
        let mut chunks = Vec::with_capacity(kept.len() * 2 + 1);
        for (i, p) in kept.iter().enumerate() {
            chunks.push(if i == 0 {
                open.clone()
            } else {
                between.clone()
            });
            chunks.push(self.body.slice(p.raw.clone()));
        }
        chunks.push(close);
        chunks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CT: &str = "multipart/form-data; boundary=XyZ";

    fn body(parts: &[(&str, Option<&str>, &[u8])]) -> Bytes {
        let mut out = Vec::new();
        for (name, filename, data) in parts {
            out.extend_from_slice(b"--XyZ\r\n");
            match filename {
                Some(f) => out.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/jsonl\r\n\r\n").as_bytes(),
                ),
                None => out.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
                ),
            }
            out.extend_from_slice(data);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"--XyZ--\r\n");
        Bytes::from(out)
    }

    #[test]
    fn fields_and_the_file_part_are_found_with_the_files_bytes_exact() {
        let file: &[u8] = b"{\"a\":1}\r\n-XyZ --XyZ not a delimiter\r\n\x00\xff";
        let form = Form::parse(
            CT,
            body(&[
                ("purpose", None, b"batch"),
                ("file", Some("in.jsonl"), file),
            ]),
        )
        .unwrap();
        assert_eq!(form.text("purpose").as_deref(), Some("batch"));
        let part = form.part_named("file").unwrap();
        assert_eq!(part.filename.as_deref(), Some("in.jsonl"));
        assert_eq!(part.content_type.as_deref(), Some("application/jsonl"));
        assert_eq!(&form.data(part)[..], file);
        assert_eq!(form.text("file"), None, "a file is not a text field");
    }

    #[test]
    fn a_form_without_gateway_fields_is_sent_on_as_the_very_same_bytes() {
        let sent = body(&[("purpose", None, b"batch"), ("file", Some("f"), b"x")]);
        let form = Form::parse(CT, sent.clone()).unwrap();
        assert_eq!(form.without(&["model"]), vec![sent]);
    }

    #[test]
    fn dropping_gateway_fields_keeps_every_other_part_byte_for_byte() {
        let file: &[u8] = b"line one\nline two\n";
        let form = Form::parse(
            CT,
            body(&[
                ("model", None, b"gpt-4o"),
                ("purpose", None, b"batch"),
                ("file", Some("in.jsonl"), file),
                ("custom_llm_provider", None, b"azure"),
            ]),
        )
        .unwrap();
        let out: Vec<u8> = form.without(&["model", "custom_llm_provider"]).concat();
        assert_eq!(
            Bytes::from(out.clone()),
            body(&[
                ("purpose", None, b"batch"),
                ("file", Some("in.jsonl"), file)
            ])
        );
        let again = Form::parse(CT, Bytes::from(out)).unwrap();
        assert_eq!(again.parts().len(), 2);
        assert_eq!(&again.data(again.part_named("file").unwrap())[..], file);
    }

    #[test]
    fn the_boundary_may_be_quoted_and_a_preamble_is_skipped() {
        let mut raw = b"ignored preamble\r\n".to_vec();
        raw.extend_from_slice(&body(&[("purpose", None, b"fine-tune")]));
        let form = Form::parse(
            "Multipart/Form-Data; charset=utf-8; boundary=\"XyZ\"",
            raw.into(),
        )
        .unwrap();
        assert_eq!(form.text("purpose").as_deref(), Some("fine-tune"));
    }

    #[test]
    fn bodies_that_are_not_forms_are_refused_with_the_reason() {
        assert_eq!(
            Form::parse("application/json", Bytes::new()).unwrap_err(),
            FormError::NotMultipart
        );
        assert_eq!(
            Form::parse("multipart/form-data", Bytes::new()).unwrap_err(),
            FormError::NoBoundary
        );
        assert!(matches!(
            Form::parse(CT, Bytes::from_static(b"no delimiter at all")),
            Err(FormError::Malformed(_))
        ));
        assert!(matches!(
            Form::parse(
                CT,
                Bytes::from_static(
                    b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nunterminated"
                )
            ),
            Err(FormError::Malformed(_))
        ));
        assert!(matches!(
            Form::parse(
                CT,
                Bytes::from_static(b"--XyZ\r\nContent-Type: text/plain\r\n\r\nx\r\n--XyZ--")
            ),
            Err(FormError::Malformed(_))
        ));
    }
}
