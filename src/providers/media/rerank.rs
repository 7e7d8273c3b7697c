//! Rerank in Cohere's format: Cohere's own `/v2/rerank` (or `/v1/rerank`), and providers that
//! take the same shape at `{api_base}/rerank`; replies made whole in Cohere's shape.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{json, Map, Value as Json};

use crate::providers::Usage;
use crate::unit_pricing::Metered;

/// The rerank API a deployment speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Cohere's `/v1/rerank`: documents as text or objects, `rank_fields`, `return_documents`,
    /// `max_chunks_per_doc`.
    CohereV1,
    /// Cohere's `/v2/rerank`: documents as text only, `max_tokens_per_doc`.
    CohereV2,
    /// Cohere's shape at `{api_base}/rerank` (vLLM, Jina AI, Together AI): sent as given.
    Compatible,
}

/// Fields only v1 takes; v2 refuses them, so the gateway does their work itself.
const V1_ONLY: &[&str] = &["rank_fields", "return_documents", "max_chunks_per_doc"];

impl Dialect {
    /// Cohere's version for a request: v1 when it asks for `max_chunks_per_doc` (v1 only) or the
    /// base names `/v1`, else v2 (LiteLLM's choice).
    pub fn cohere(api_base: &str, fields: &Map<String, Json>) -> Self {
        let path = api_base
            .split('?')
            .next()
            .unwrap_or_default()
            .trim_end_matches('/');
        if fields.contains_key("max_chunks_per_doc")
            || path.ends_with("/v1")
            || path.ends_with("/v1/rerank")
        {
            Self::CohereV1
        } else {
            Self::CohereV2
        }
    }

    /// The route under the deployment's base.
    pub fn route(self, api_base: &str) -> &'static str {
        let path = api_base
            .split('?')
            .next()
            .unwrap_or_default()
            .trim_end_matches('/');
        match self {
            Self::CohereV1 if !path.ends_with("/v1") => "/v1/rerank",
            Self::CohereV2 if !path.ends_with("/v2") => "/v2/rerank",
            _ => "/rerank",
        }
    }
}

/// A document as v2 takes it: text as is; an object as `key: value` lines (YAML, as Cohere
/// advises for structured documents), of `rank_fields` only when given; `{"text": ..}` alone
/// as its text.
pub fn document_text(doc: &Json, rank_fields: Option<&[Json]>) -> String {
    let Json::Object(o) = doc else {
        return doc.as_str().map_or_else(|| doc.to_string(), str::to_owned);
    };
    if o.len() == 1 {
        if let Some(Json::String(t)) = o.get("text") {
            return t.clone();
        }
    }
    let line = |k: &str, v: &Json| match v {
        Json::String(s) => format!("{k}: {s}"),
        other => format!("{k}: {other}"),
    };
    let lines: Vec<String> = match rank_fields {
        Some(names) => names
            .iter()
            .filter_map(Json::as_str)
            .filter_map(|k| o.get(k).map(|v| line(k, v)))
            .collect(),
        None => o.iter().map(|(k, v)| line(k, v)).collect(),
    };
    lines.join("\n")
}

/// The request body sent upstream.
pub struct Body<'a> {
    /// The API.
    pub dialect: Dialect,
    /// The upstream model.
    pub model: &'a str,
    /// The client's fields.
    pub fields: &'a Map<String, Json>,
    /// The deployment's defaults.
    pub defaults: &'a Map<String, Json>,
    /// Fields never sent.
    pub skip: &'a [String],
}

impl Serialize for Body<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("model", self.model)?;
        let v2 = self.dialect == Dialect::CohereV2;
        let v1_only = |k: &String| v2 && V1_ONLY.contains(&k.as_str());
        let sent = |k: &String| !(self.skip.iter().any(|s| s == k) || v1_only(k));
        let rank_fields = self
            .fields
            .get("rank_fields")
            .and_then(Json::as_array)
            .map(Vec::as_slice);
        for (k, v) in self.fields {
            if !sent(k) {
                continue;
            }
            match (k.as_str(), v) {
                ("documents", Json::Array(docs)) if v2 => {
                    let texts: Vec<String> =
                        docs.iter().map(|d| document_text(d, rank_fields)).collect();
                    m.serialize_entry(k, &texts)?;
                }
                _ => m.serialize_entry(k, v)?,
            }
        }
        for (k, v) in self.defaults {
            if !self.fields.contains_key(k) && sent(k) {
                m.serialize_entry(k, v)?;
            }
        }
        m.end()
    }
}

/// A reply made whole in Cohere's shape (`id`, `results` with each `document` when the request
/// asked `return_documents`, `meta.billed_units`), and what it used.
pub fn reply(
    body: &[u8],
    fields: &Map<String, Json>,
) -> Result<(Json, Metered), serde_json::Error> {
    let mut reply: Json = serde_json::from_slice(body)?;
    let Json::Object(o) = &mut reply else {
        return Err(serde::de::Error::custom("a rerank reply must be an object"));
    };
    let Some(Json::Array(results)) = o.get_mut("results") else {
        return Err(serde::de::Error::custom(
            "a rerank reply must have `results`",
        ));
    };
    let wants_documents = fields.get("return_documents").and_then(Json::as_bool) == Some(true);
    let documents = fields.get("documents").and_then(Json::as_array);
    for result in results.iter_mut() {
        let Json::Object(r) = result else { continue };
        if wants_documents && !r.contains_key("document") {
            let index = r.get("index").and_then(Json::as_u64).unwrap_or(u64::MAX);
            let doc = usize::try_from(index)
                .ok()
                .and_then(|i| documents.and_then(|d| d.get(i)));
            if let Some(doc) = doc {
                let doc = match doc {
                    Json::String(text) => json!({ "text": text }),
                    other => other.clone(),
                };
                r.insert("document".into(), doc);
            }
        }
    }
    if !o.get("id").is_some_and(Json::is_string) {
        o.insert(
            "id".into(),
            Json::from(super::super::random_uuid().to_string()),
        );
    }
    // Token-billed rerankers (Jina AI) report `usage.total_tokens` instead of billed units.
    let reported_tokens = o
        .get("usage")
        .and_then(|u| u.get("total_tokens"))
        .and_then(Json::as_u64);
    let meta = o.entry("meta").or_insert_with(|| json!({}));
    if !meta.is_object() {
        *meta = json!({});
    }
    let billed = meta
        .as_object_mut()
        .map(|m| m.entry("billed_units").or_insert_with(|| json!({})));
    let mut metered = Metered::default();
    if let Some(Json::Object(billed)) = billed {
        if let (Some(t), false) = (reported_tokens, billed.contains_key("total_tokens")) {
            billed.insert("total_tokens".into(), Json::from(t));
        }
        let units = billed.get("search_units").and_then(Json::as_u64);
        let tokens = billed.get("total_tokens").and_then(Json::as_u64);
        if units.is_none() && tokens.is_none() {
            // One query is one search unit (for up to 100 documents) when nothing is billed.
            billed.insert("search_units".into(), Json::from(1));
        }
        metered.search_units = units.unwrap_or(u64::from(tokens.is_none()));
        metered.usage = Usage::new(tokens.unwrap_or(0), 0);
    }
    Ok((reply, metered))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(text: &str) -> Map<String, Json> {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn cohere_is_v2_unless_the_request_or_the_base_asks_for_v1() {
        let plain = fields(r#"{"query":"q","documents":["a"]}"#);
        assert_eq!(
            Dialect::cohere("https://api.cohere.com", &plain),
            Dialect::CohereV2
        );
        assert_eq!(
            Dialect::CohereV2.route("https://api.cohere.com"),
            "/v2/rerank"
        );
        assert_eq!(Dialect::CohereV2.route("http://h/v2/"), "/rerank");
        let chunks = fields(r#"{"query":"q","documents":["a"],"max_chunks_per_doc":3}"#);
        assert_eq!(
            Dialect::cohere("https://api.cohere.com", &chunks),
            Dialect::CohereV1
        );
        assert_eq!(Dialect::cohere("http://h/v1", &plain), Dialect::CohereV1);
        assert_eq!(
            Dialect::CohereV1.route("https://api.cohere.com"),
            "/v1/rerank"
        );
        assert_eq!(Dialect::Compatible.route("http://vllm:8000/v1"), "/rerank");
    }

    #[test]
    fn v2_gets_text_documents_and_no_v1_fields() {
        let f = fields(
            r#"{"query":"q","documents":["plain",{"text":"only text"},{"title":"T","body":"B","n":1}],"rank_fields":["title","n"],"return_documents":true,"top_n":2}"#,
        );
        let body = Body {
            dialect: Dialect::CohereV2,
            model: "rerank-v3.5",
            fields: &f,
            defaults: &Map::new(),
            skip: &[],
        };
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            json!({"model":"rerank-v3.5","query":"q","documents":["plain","only text","title: T\nn: 1"],"top_n":2})
        );
        let v1 = Body {
            dialect: Dialect::CohereV1,
            ..body
        };
        let sent = serde_json::to_value(&v1).unwrap();
        assert_eq!(sent["documents"][2], json!({"title":"T","body":"B","n":1}));
        assert_eq!(sent["return_documents"], true);
    }

    #[test]
    fn replies_gain_the_documents_asked_for_an_id_and_billed_units() {
        let f =
            fields(r#"{"query":"q","documents":["zero",{"text":"one"}],"return_documents":true}"#);
        let (reply, metered) = reply(
            br#"{"results":[{"index":1,"relevance_score":0.9},{"index":0,"relevance_score":0.1}],"model":"jina-reranker-v2-base-multilingual","usage":{"total_tokens":12}}"#,
            &f,
        )
        .unwrap();
        assert_eq!(reply["results"][0]["document"], json!({"text":"one"}));
        assert_eq!(reply["results"][1]["document"], json!({"text":"zero"}));
        assert!(reply["id"].is_string());
        assert_eq!(reply["meta"]["billed_units"], json!({"total_tokens":12}));
        assert_eq!((metered.search_units, metered.usage.prompt_tokens), (0, 12));

        let (reply, metered) = super::reply(
            br#"{"id":"x","results":[],"meta":{"billed_units":{"search_units":2}}}"#,
            &f,
        )
        .unwrap();
        assert_eq!(reply["id"], "x");
        assert_eq!(metered.search_units, 2);
        let (_, metered) = super::reply(br#"{"results":[]}"#, &f).unwrap();
        assert_eq!(metered.search_units, 1);
        assert!(super::reply(br#"{"nope":1}"#, &f).is_err());
    }
}
