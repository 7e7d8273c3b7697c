//! Langfuse: a batch of events for its public ingestion API (`POST /api/public/ingestion`), one
//! `trace-create` and one `generation-create` per request, and how to read its answer.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value as Json};

use super::event::{CallEvent, Outcome, CLIENT_LEFT};
use super::REDACTED;

/// The ingestion route, under `LANGFUSE_HOST`.
pub const INGESTION_PATH: &str = "/api/public/ingestion";

/// The request body for `events`: `{"batch": [...]}`.
pub fn ingestion_batch(events: &[&CallEvent], log_messages: bool) -> Json {
    let mut batch = Vec::with_capacity(events.len() * 2);
    for e in events {
        batch.push(trace_create(e, log_messages));
        batch.push(generation_create(e, log_messages));
    }
    json!({ "batch": batch })
}

/// Ingestion event ids are derived from the call id, so a batch sent again after a lost
/// answer is deduplicated by Langfuse rather than counted twice.
fn envelope(kind: &str, e: &CallEvent, body: Map<String, Json>) -> Json {
    json!({
        "id": format!("{}-{kind}", e.id),
        "type": kind,
        "timestamp": time(e.end),
        "body": body,
    })
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// LiteLLM's name for a trace or generation that the request's metadata does not name.
fn default_name(e: &CallEvent) -> String {
    format!("litellm-{}", e.call_type)
}

fn trace_create(e: &CallEvent, log_messages: bool) -> Json {
    let mut body = Map::new();
    body.insert("id".into(), e.id.clone().into());
    body.insert("timestamp".into(), time(e.start).into());
    let name = e
        .meta_str("trace_name")
        .map_or_else(|| default_name(e), str::to_owned);
    body.insert("name".into(), name.into());
    let user = e
        .meta_str("trace_user_id")
        .or(e.end_user.as_deref())
        .or(e.key.user_id.as_deref());
    put(&mut body, "userId", user.map(Json::from));
    put(
        &mut body,
        "sessionId",
        e.meta_str("session_id").map(Json::from),
    );
    put(&mut body, "input", input(e, log_messages));
    put(&mut body, "output", output(e, log_messages));
    body.insert("metadata".into(), Json::Object(metadata(e)));
    let tags = e.tags();
    if !tags.is_empty() {
        body.insert("tags".into(), Json::Array(tags));
    }
    envelope("trace-create", e, body)
}

fn generation_create(e: &CallEvent, log_messages: bool) -> Json {
    let mut body = Map::new();
    body.insert("id".into(), e.id.clone().into());
    body.insert("traceId".into(), e.id.clone().into());
    let name = e
        .meta_str("generation_name")
        .map_or_else(|| default_name(e), str::to_owned);
    body.insert("name".into(), name.into());
    body.insert("startTime".into(), time(e.start).into());
    body.insert("endTime".into(), time(e.end).into());
    if e.outcome == Outcome::Success {
        body.insert("completionStartTime".into(), time(e.end).into());
    }
    body.insert("model".into(), e.model.clone().into());
    put(&mut body, "input", input(e, log_messages));
    put(&mut body, "output", output(e, log_messages));
    body.insert(
        "usage".into(),
        json!({
            "input": e.prompt_tokens,
            "output": e.completion_tokens,
            "total": e.total_tokens,
            "unit": "TOKENS",
            "totalCost": e.cost,
        }),
    );
    body.insert(
        "usageDetails".into(),
        json!({"input": e.prompt_tokens, "output": e.completion_tokens, "total": e.total_tokens}),
    );
    body.insert("costDetails".into(), json!({ "total": e.cost }));
    match e.outcome {
        Outcome::Success => {
            body.insert("level".into(), "DEFAULT".into());
        }
        Outcome::Failure => {
            body.insert("level".into(), "ERROR".into());
            let message = e.error.as_ref().map_or(CLIENT_LEFT, |err| &err.message);
            body.insert("statusMessage".into(), message.into());
        }
    }
    body.insert("metadata".into(), Json::Object(metadata(e)));
    envelope("generation-create", e, body)
}

fn put(body: &mut Map<String, Json>, key: &str, value: Option<Json>) {
    if let Some(v) = value.filter(|v| !v.is_null()) {
        body.insert(key.into(), v);
    }
}

fn input(e: &CallEvent, log_messages: bool) -> Option<Json> {
    if !log_messages {
        return Some(REDACTED.into());
    }
    e.messages.clone()
}

/// The reply's message (chat), text (completion), or the whole reply.
fn output(e: &CallEvent, log_messages: bool) -> Option<Json> {
    if e.outcome == Outcome::Failure {
        return None;
    }
    if !log_messages {
        return Some(REDACTED.into());
    }
    let reply = e.response.as_ref()?;
    let first = &reply["choices"][0];
    if first["message"].is_object() {
        Some(first["message"].clone())
    } else if first["text"].is_string() {
        Some(first["text"].clone())
    } else {
        Some(reply.clone())
    }
}

/// The request's metadata, with LiteLLM's `user_api_key_*` fields and the routing facts.
fn metadata<'a>(e: &'a CallEvent) -> Map<String, Json> {
    let mut m = e.metadata.clone();
    let mut set = |k: &str, v: Option<&str>| {
        if let Some(v) = v {
            m.insert(k.into(), v.into());
        }
    };
    set("user_api_key_hash", e.key.hash.as_deref());
    set("user_api_key_alias", e.key.alias.as_deref());
    set("user_api_key_user_id", e.key.user_id.as_deref());
    set("user_api_key_team_id", e.key.team_id.as_deref());
    let given = |s: &'a str| Some(s).filter(|s| !s.is_empty());
    set("model_group", given(&e.model_group));
    set("model_id", given(&e.model_id));
    set("api_base", given(&e.api_base));
    set("custom_llm_provider", given(&e.provider));
    set("call_type", Some(e.call_type));
    set("status", Some(e.outcome.as_str()));
    m.insert("cache_hit".into(), e.cache_hit.into());
    if let Some(err) = &e.error {
        m.insert("status_code".into(), err.status.into());
        m.insert("error_type".into(), err.kind.clone().into());
    }
    m
}

/// Calls whose events Langfuse refused in a 207 answer (`{"successes": [..], "errors": [..]}`).
pub fn refused_calls(answer: &[u8]) -> usize {
    let Ok(parsed) = serde_json::from_slice::<Json>(answer) else {
        return 0;
    };
    let mut calls: Vec<&str> = parsed["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|err| err["id"].as_str())
        .map(|id| {
            id.strip_suffix("-trace-create")
                .or_else(|| id.strip_suffix("-generation-create"))
                .unwrap_or(id)
        })
        .collect();
    calls.sort_unstable();
    calls.dedup();
    calls.len()
}

#[cfg(test)]
mod tests {
    use super::super::event::sample;
    use super::*;

    fn of_type<'a>(batch: &'a Json, kind: &str) -> &'a Json {
        batch["batch"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["type"] == kind)
            .unwrap_or_else(|| panic!("no {kind} in {batch}"))
    }

    #[test]
    fn a_success_is_a_trace_and_a_generation_with_usage_cost_and_messages() {
        let e = sample::success();
        let batch = ingestion_batch(&[&e], true);
        assert_eq!(batch["batch"].as_array().unwrap().len(), 2);
        let trace = &of_type(&batch, "trace-create")["body"];
        assert_eq!(trace["id"], "call-1");
        assert_eq!(trace["name"], "litellm-acompletion");
        assert_eq!(trace["userId"], "end-user-9");
        assert_eq!(trace["sessionId"], "s-1");
        assert_eq!(trace["tags"], json!(["prod"]));
        let generation = of_type(&batch, "generation-create");
        assert_eq!(generation["id"], "call-1-generation-create");
        let g = &generation["body"];
        assert_eq!(g["traceId"], "call-1");
        assert_eq!(g["model"], "gpt-4o-mini");
        assert_eq!(g["usage"]["input"], 7);
        assert_eq!(g["usage"]["output"], 3);
        assert_eq!(g["usage"]["total"], 10);
        assert_eq!(g["usage"]["totalCost"], 0.0025);
        assert_eq!(g["level"], "DEFAULT");
        assert_eq!(g["startTime"], "2025-01-02T03:04:05.000Z");
        assert_eq!(g["endTime"], "2025-01-02T03:04:06.500Z");
        assert_eq!(g["input"][0]["content"], "hello there");
        assert_eq!(g["output"]["content"], "general kenobi");
        assert_eq!(g["metadata"]["user_api_key_alias"], "team-a-key");
        assert_eq!(g["metadata"]["user_api_key_hash"], "abc123");
        assert_eq!(g["metadata"]["model_group"], "gpt-4o");
    }

    #[test]
    fn a_failure_is_an_error_level_generation_with_its_message() {
        let e = sample::failure();
        let batch = ingestion_batch(&[&e], true);
        let g = &of_type(&batch, "generation-create")["body"];
        assert_eq!(g["level"], "ERROR");
        assert_eq!(g["statusMessage"], "upstream exploded");
        assert_eq!(g["metadata"]["status_code"], 500);
        assert!(g.get("output").is_none());
    }

    #[test]
    fn message_logging_off_keeps_prompts_and_replies_out() {
        let e = sample::success();
        let text = ingestion_batch(&[&e], false).to_string();
        assert!(!text.contains("hello there"), "{text}");
        assert!(!text.contains("general kenobi"), "{text}");
        assert!(text.contains(REDACTED));
    }

    #[test]
    fn refused_events_are_counted_per_call() {
        let answer = br#"{"successes": [], "errors": [
            {"id": "a-trace-create", "status": 400}, {"id": "a-generation-create", "status": 400},
            {"id": "b-trace-create", "status": 400}]}"#;
        assert_eq!(refused_calls(answer), 2);
        assert_eq!(
            refused_calls(b"{\"successes\": [{\"id\": \"x\"}], \"errors\": []}"),
            0
        );
        assert_eq!(refused_calls(b"not json"), 0);
    }
}
