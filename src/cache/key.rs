//! The cache key: SHA-256 hex of what decides a reply (the operation, the model group and every
//! forwarded field, objects in sorted key order), prefixed with the namespace when there is one.

use std::fmt::Write as _;
use std::sync::Arc;

use serde_json::{Map, Value as Json};
use sha2::{Digest, Sha256};

use crate::providers::Operation;

/// Forwarded fields that change how a reply is delivered, never what it says.
const NOT_IN_KEY: &[&str] = &["stream", "stream_options"];

/// The key of a request for `model` (the group, or the name a wildcard matched) with `fields`
/// (the forwarded fields: gateway-only ones such as `metadata`, `caching` and `cache` are not
/// among them). A field sent as `null` counts as absent.
pub fn reply_key(
    namespace: Option<&str>,
    op: Operation,
    model: &str,
    fields: &Map<String, Json>,
) -> Arc<str> {
    let mut h = Sha256::new();
    h.update(match op {
        Operation::Chat => b"chat\0",
        Operation::Completion => b"text\0",
        Operation::Embedding => b"embd\0",
        Operation::Responses => b"resp\0",
        // Never cached (`ResponseCache::plan`), but keyed apart all the same.
        other => other.route().as_bytes(),
    });
    put_str(&mut h, model);
    let mut top: Vec<(&String, &Json)> = fields
        .iter()
        .filter(|(k, v)| !v.is_null() && !NOT_IN_KEY.contains(&k.as_str()))
        .collect();
    top.sort_unstable_by(|a, b| a.0.cmp(b.0));
    put_entries(&mut h, &top);
    let digest = h.finalize();
    let mut out = String::with_capacity(namespace.map_or(0, |n| n.len() + 1) + 64);
    if let Some(ns) = namespace {
        out.push_str(ns);
        out.push(':');
    }
    for b in digest {
        let _ = write!(out, "{b:02x}");
    }
    Arc::from(out)
}

/// Writes formatted numbers straight into the hash.
struct HashWriter<'a>(&'a mut Sha256);

impl std::fmt::Write for HashWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.update(s.as_bytes());
        Ok(())
    }
}

fn put_len(h: &mut Sha256, n: usize) {
    h.update((n as u64).to_le_bytes());
}

fn put_str(h: &mut Sha256, s: &str) {
    put_len(h, s.len());
    h.update(s.as_bytes());
}

fn put_entries(h: &mut Sha256, entries: &[(&String, &Json)]) {
    h.update(b"{");
    put_len(h, entries.len());
    for (k, v) in entries {
        put_str(h, k);
        put_value(h, v);
    }
}

/// A tagged, length-prefixed form, so no two different values hash the same bytes.
fn put_value(h: &mut Sha256, v: &Json) {
    match v {
        Json::Null => h.update(b"n"),
        Json::Bool(true) => h.update(b"t"),
        Json::Bool(false) => h.update(b"f"),
        Json::Number(n) => {
            h.update(b"#");
            let _ = write!(HashWriter(h), "{n}");
            h.update(b";");
        }
        Json::String(s) => {
            h.update(b"s");
            put_str(h, s);
        }
        Json::Array(items) => {
            h.update(b"[");
            put_len(h, items.len());
            for item in items {
                put_value(h, item);
            }
        }
        Json::Object(map) => {
            let mut entries: Vec<(&String, &Json)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            put_entries(h, &entries);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(v: Json) -> Map<String, Json> {
        match v {
            Json::Object(m) => m,
            _ => unreachable!(),
        }
    }

    fn key(v: Json) -> Arc<str> {
        reply_key(None, Operation::Chat, "g", &fields(v))
    }

    #[test]
    fn field_order_does_not_change_the_key() {
        let a = key(
            json!({"messages": [{"role": "user", "content": "hi"}], "temperature": 0.5,
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"a": 1, "b": 2}}}]}),
        );
        let b = key(
            json!({"tools": [{"function": {"parameters": {"b": 2, "a": 1}, "name": "f"}, "type": "function"}],
            "temperature": 0.5, "messages": [{"content": "hi", "role": "user"}]}),
        );
        assert_eq!(a, b);
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn the_stream_flags_and_nulls_are_ignored() {
        let plain = key(json!({"messages": [{"role": "user", "content": "hi"}]}));
        let streamed = key(
            json!({"messages": [{"role": "user", "content": "hi"}], "stream": true,
            "stream_options": {"include_usage": true}, "temperature": null}),
        );
        assert_eq!(plain, streamed);
    }

    #[test]
    fn what_decides_the_answer_changes_the_key() {
        let base = json!({"messages": [{"role": "user", "content": "hi"}], "temperature": 0.5});
        let k = key(base.clone());
        let mut hotter = base.clone();
        hotter["temperature"] = json!(0.9);
        assert_ne!(k, key(hotter));
        let mut other = base.clone();
        other["messages"][0]["content"] = json!("hi!");
        assert_ne!(k, key(other));
        let mut seeded = base.clone();
        seeded["seed"] = json!(1);
        assert_ne!(k, key(seeded));
        assert_ne!(
            k,
            reply_key(None, Operation::Chat, "h", &fields(base.clone()))
        );
        assert_ne!(
            k,
            reply_key(None, Operation::Completion, "g", &fields(base.clone()))
        );
        // A string and a number that print alike are different values.
        assert_ne!(key(json!({"n": 1})), key(json!({"n": "1"})));
    }

    #[test]
    fn the_namespace_prefixes_the_key() {
        let f = fields(json!({"input": "x"}));
        let plain = reply_key(None, Operation::Embedding, "e", &f);
        let spaced = reply_key(Some("team-a"), Operation::Embedding, "e", &f);
        assert_eq!(&*spaced, format!("team-a:{plain}"));
    }
}
