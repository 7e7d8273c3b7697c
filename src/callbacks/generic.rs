//! The generic API callback: a JSON array of LiteLLM's "standard logging payload" objects,
//! one per request, POSTed to `GENERIC_LOGGER_ENDPOINT`.

use serde_json::{json, Map, Value as Json};

use super::event::{CallEvent, Outcome, CLIENT_LEFT};
use super::REDACTED;

/// The request body for `events`.
pub fn payload_batch(events: &[&CallEvent], log_messages: bool) -> Json {
    Json::Array(
        events
            .iter()
            .map(|e| standard_payload(e, log_messages))
            .collect(),
    )
}

fn epoch_secs(t: chrono::DateTime<chrono::Utc>) -> f64 {
    t.timestamp_micros() as f64 / 1e6
}

/// One request in the shape of LiteLLM's `StandardLoggingPayload`.
pub fn standard_payload(e: &CallEvent, log_messages: bool) -> Json {
    let (messages, response) = if log_messages {
        (
            e.messages.clone().unwrap_or(Json::Null),
            e.response.clone().unwrap_or(Json::Null),
        )
    } else {
        (Json::from(REDACTED), Json::from(REDACTED))
    };
    let (error_str, error_information) = match (e.outcome, &e.error) {
        (Outcome::Success, _) => (Json::Null, Json::Null),
        (Outcome::Failure, Some(err)) => (
            Json::from(err.message.clone()),
            json!({
                "error_code": err.status.to_string(),
                "error_class": err.kind,
                "llm_provider": e.provider,
                "error_message": err.message,
            }),
        ),
        (Outcome::Failure, None) => (
            Json::from(CLIENT_LEFT),
            json!({"error_code": null, "error_class": null, "llm_provider": e.provider,
                   "error_message": CLIENT_LEFT}),
        ),
    };
    let text = |s: &str| -> Json {
        if s.is_empty() {
            Json::Null
        } else {
            s.into()
        }
    };
    json!({
        "id": e.id,
        "trace_id": e.id,
        "call_type": e.call_type,
        "stream": e.stream,
        "response_cost": e.cost,
        "status": e.outcome.as_str(),
        "custom_llm_provider": text(&e.provider),
        "total_tokens": e.total_tokens,
        "prompt_tokens": e.prompt_tokens,
        "completion_tokens": e.completion_tokens,
        "startTime": epoch_secs(e.start),
        "endTime": epoch_secs(e.end),
        "completionStartTime": epoch_secs(e.end),
        "response_time": e.latency_secs(),
        "model": e.model,
        "model_id": text(&e.model_id),
        "model_group": text(&e.model_group),
        "api_base": e.api_base,
        "metadata": metadata(e),
        "cache_hit": e.cache_hit,
        "request_tags": e.tags(),
        "end_user": e.end_user,
        "messages": messages,
        "response": response,
        "error_str": error_str,
        "error_information": error_information,
        "model_parameters": {},
        "hidden_params": {
            "model_id": text(&e.model_id),
            "api_base": text(&e.api_base),
            "response_cost": e.cost,
        },
    })
}

/// LiteLLM's `StandardLoggingMetadata`: the key by hash and name, and the request's own
/// metadata under `requester_metadata`.
fn metadata(e: &CallEvent) -> Json {
    let mut m = Map::new();
    m.insert("user_api_key_hash".into(), e.key.hash.clone().into());
    m.insert("user_api_key_alias".into(), e.key.alias.clone().into());
    m.insert("user_api_key_user_id".into(), e.key.user_id.clone().into());
    m.insert("user_api_key_team_id".into(), e.key.team_id.clone().into());
    m.insert(
        "requester_metadata".into(),
        Json::Object(e.metadata.clone()),
    );
    Json::Object(m)
}

#[cfg(test)]
mod tests {
    use super::super::event::sample;
    use super::*;

    #[test]
    fn a_success_carries_what_the_standard_payload_names() {
        let e = sample::success();
        let batch = payload_batch(&[&e, &e], true);
        assert_eq!(batch.as_array().unwrap().len(), 2);
        let p = &batch[0];
        assert_eq!(p["id"], "call-1");
        assert_eq!(p["call_type"], "acompletion");
        assert_eq!(p["model"], "gpt-4o-mini");
        assert_eq!(p["model_group"], "gpt-4o");
        assert_eq!(p["model_id"], "dep-1");
        assert_eq!(p["custom_llm_provider"], "openai");
        assert_eq!(p["prompt_tokens"], 7);
        assert_eq!(p["completion_tokens"], 3);
        assert_eq!(p["total_tokens"], 10);
        assert_eq!(p["response_cost"], 0.0025);
        assert_eq!(p["status"], "success");
        assert_eq!(p["startTime"], 1_735_787_045.0);
        assert_eq!(p["endTime"], 1_735_787_046.5);
        assert_eq!(p["response_time"], 1.5);
        assert_eq!(p["error_str"], Json::Null);
        assert_eq!(p["end_user"], "end-user-9");
        assert_eq!(p["metadata"]["user_api_key_alias"], "team-a-key");
        assert_eq!(p["metadata"]["requester_metadata"]["session_id"], "s-1");
        assert_eq!(p["request_tags"], json!(["prod"]));
        assert_eq!(p["messages"][0]["content"], "hello there");
        assert_eq!(
            p["response"]["choices"][0]["message"]["content"],
            "general kenobi"
        );
    }

    #[test]
    fn a_failure_carries_its_error() {
        let p = standard_payload(&sample::failure(), true);
        assert_eq!(p["status"], "failure");
        assert_eq!(p["error_str"], "upstream exploded");
        assert_eq!(p["error_information"]["error_code"], "500");
        assert_eq!(
            p["error_information"]["error_class"],
            "internal_server_error"
        );
    }

    #[test]
    fn message_logging_off_redacts_prompt_and_reply() {
        let text = standard_payload(&sample::success(), false).to_string();
        assert!(!text.contains("hello there"), "{text}");
        assert!(!text.contains("general kenobi"), "{text}");
    }
}
