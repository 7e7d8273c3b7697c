//! One callback's wire: the HTTP request a batch becomes, and what the receiver's answer means
//! (sent, retry later, or give up). Plain functions; the actor does the I/O.

use base64::Engine as _;
use bytes::Bytes;

use super::event::CallEvent;
use super::{generic, langfuse};
use crate::config::{Secret, SinkTarget};

/// A batch ready to send.
pub struct Prepared {
    /// Where.
    pub url: String,
    /// Headers besides `content-type: application/json`; values may be credentials.
    pub headers: Vec<(String, Secret)>,
    /// The JSON body.
    pub body: Bytes,
}

/// What the receiver made of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Taken; `refused` of the batch's calls were rejected one by one (Langfuse's 207).
    Accepted {
        /// Calls refused inside an accepted batch.
        refused: usize,
    },
    /// Not taken now (unreachable, timed out, 408, 429, 5xx): worth another try.
    Retry(String),
    /// Refused for good (another 4xx): sending it again would not help.
    Refused(String),
}

/// The request `target` sends for `events`.
pub fn prepare(target: &SinkTarget, events: &[&CallEvent], log_messages: bool) -> Prepared {
    match target {
        SinkTarget::Langfuse {
            host,
            public_key,
            secret_key,
        } => {
            let body = langfuse::ingestion_batch(events, log_messages);
            Prepared {
                url: format!("{host}{}", langfuse::INGESTION_PATH),
                headers: vec![(
                    "authorization".into(),
                    basic_auth(public_key, secret_key.expose()),
                )],
                body: Bytes::from(body.to_string()),
            }
        }
        SinkTarget::GenericApi { endpoint, headers } => {
            let body = generic::payload_batch(events, log_messages);
            Prepared {
                url: endpoint.clone(),
                headers: headers.clone(),
                body: Bytes::from(body.to_string()),
            }
        }
    }
}

/// `Basic base64(user:password)`.
pub fn basic_auth(user: &str, password: &str) -> Secret {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    Secret::new(format!("Basic {encoded}"))
}

/// What an answer with `status` and `body` means for `target`'s batch.
pub fn judge(target: &SinkTarget, status: u16, body: &[u8]) -> Verdict {
    match status {
        207 if matches!(target, SinkTarget::Langfuse { .. }) => Verdict::Accepted {
            refused: langfuse::refused_calls(body),
        },
        200..=299 => Verdict::Accepted { refused: 0 },
        408 | 429 | 500..=599 => Verdict::Retry(format!("the receiver answered {status}")),
        _ => Verdict::Refused(format!("the receiver answered {status}")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::event::sample;
    use super::*;

    fn langfuse() -> SinkTarget {
        SinkTarget::Langfuse {
            host: "http://lf:3000".into(),
            public_key: "pk-lf-1".into(),
            secret_key: Secret::new("sk-lf-1"),
        }
    }

    #[test]
    fn langfuse_is_reached_with_basic_auth_on_its_ingestion_route() {
        let e = sample::success();
        let p = prepare(&langfuse(), &[&e], true);
        assert_eq!(p.url, "http://lf:3000/api/public/ingestion");
        // base64("pk-lf-1:sk-lf-1")
        assert_eq!(p.headers[0].1.expose(), "Basic cGstbGYtMTpzay1sZi0x");
        let body: serde_json::Value = serde_json::from_slice(&p.body).unwrap();
        assert_eq!(body["batch"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn server_trouble_is_retried_and_a_refusal_is_final() {
        let t = langfuse();
        assert_eq!(judge(&t, 200, b""), Verdict::Accepted { refused: 0 });
        assert!(matches!(judge(&t, 503, b""), Verdict::Retry(_)));
        assert!(matches!(judge(&t, 429, b""), Verdict::Retry(_)));
        assert!(matches!(judge(&t, 401, b""), Verdict::Refused(_)));
        let partial = br#"{"successes": [], "errors": [{"id": "a-trace-create"}]}"#;
        assert_eq!(judge(&t, 207, partial), Verdict::Accepted { refused: 1 });
    }
}
