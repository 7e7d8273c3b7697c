//! Cohere's v2 API: OpenAI chat requests translated to `/v2/chat` (this module), its replies
//! (`reply`) and its SSE streams (`stream`) translated back, and embeddings (`/v2/embed`).

pub mod reply;
pub mod stream;

use crate::providers::translate::Params;
use serde_json::{json, Map, Value as Json};

/// OpenAI chat parameters with no Cohere counterpart.
pub const UNSUPPORTED: &[&str] = &[
    "n",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "service_tier",
    "modalities",
    "audio",
    "prediction",
    "store",
    "functions",
    "function_call",
    "parallel_tool_calls",
    "web_search_options",
];

/// OpenAI parameters Cohere takes under another name.
const RENAMED: &[(&str, &str)] = &[("top_p", "p"), ("top_k", "k")];

/// Request fields translated rather than passed through.
const TRANSLATED: &[&str] = &[
    "model",
    "messages",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "stream",
    "stream_options",
    "tools",
    "tool_choice",
    "response_format",
    "user",
    "reasoning_effort",
];

/// The `input_type` sent when an embeddings request gives none (LiteLLM's default).
pub const DEFAULT_INPUT_TYPE: &str = "search_document";

/// OpenAI embeddings fields translated rather than passed through.
const EMBED_TRANSLATED: &[&str] = &[
    "model",
    "input",
    "input_type",
    "dimensions",
    "encoding_format",
    "user",
];

/// The first unsupported OpenAI parameter among `fields` or `defaults`, unless in `skip`.
pub fn first_unsupported(
    fields: &Map<String, Json>,
    defaults: &Map<String, Json>,
    skip: &[String],
) -> Option<&'static str> {
    crate::providers::translate::first_present(UNSUPPORTED, fields, defaults, skip)
}

/// The `/v2/chat` request for an OpenAI chat request's `fields`, with the deployment's
/// `defaults` under them; unsupported parameters and `skip` are left out, any other key (e.g.
/// `safety_mode`, `documents`, `thinking`) passes through as given.
pub fn chat_request(
    model: &str,
    fields: &Map<String, Json>,
    defaults: &Map<String, Json>,
    stream: bool,
    skip: &[String],
) -> Json {
    let params = Params {
        fields,
        defaults,
        skip,
    };
    let skipped = |k: &str| params.skipped(k);
    let get = |k: &str| params.get(k);
    let mut out = Map::new();
    out.insert("model".into(), Json::from(model));
    out.insert(
        "messages".into(),
        Json::Array(messages(get("messages").and_then(Json::as_array))),
    );
    if stream {
        out.insert("stream".into(), Json::Bool(true));
    }
    let forced = get("tool_choice").and_then(|c| c["function"]["name"].as_str());
    if let Some(tools) = get("tools").and_then(Json::as_array) {
        let tools: Vec<Json> = tools
            .iter()
            .filter(|t| forced.is_none_or(|name| tool_name(t) == Some(name)))
            .map(tool)
            .collect();
        out.insert("tools".into(), Json::Array(tools));
    }
    if let Some(choice) = get("tool_choice").and_then(tool_choice) {
        out.insert("tool_choice".into(), Json::from(choice));
    }
    // The client's limit, by either name, wins over the deployment's.
    let names = ["max_tokens", "max_completion_tokens"]
        .into_iter()
        .filter(|k| !skipped(k));
    let limit = [fields, defaults]
        .into_iter()
        .find_map(|from| names.clone().find_map(|k| from.get(k)));
    if let Some(v) = limit {
        out.insert("max_tokens".into(), v.clone());
    }
    for (openai, cohere) in RENAMED {
        if let Some(v) = get(openai) {
            out.insert((*cohere).into(), v.clone());
        }
    }
    match get("stop") {
        Some(Json::String(s)) => {
            out.insert("stop_sequences".into(), json!([s]));
        }
        Some(Json::Array(list)) if !list.is_empty() => {
            out.insert("stop_sequences".into(), Json::Array(list.clone()));
        }
        _ => {}
    }
    if let Some(format) = get("response_format").and_then(response_format) {
        out.insert("response_format".into(), format);
    }
    if let Some(effort) = get("reasoning_effort").and_then(Json::as_str) {
        let thinking = match effort {
            "low" => json!({"type": "enabled", "token_budget": 1024}),
            "medium" => json!({"type": "enabled", "token_budget": 2048}),
            "high" => json!({"type": "enabled", "token_budget": 4096}),
            _ => json!({"type": "disabled"}),
        };
        if get("thinking").is_none() {
            out.insert("thinking".into(), thinking);
        }
    }
    for (k, v) in fields.iter().chain(defaults.iter()) {
        let k = k.as_str();
        if TRANSLATED.contains(&k)
            || UNSUPPORTED.contains(&k)
            || RENAMED.iter().any(|(o, _)| *o == k)
            || skipped(k)
            || out.contains_key(k)
        {
            continue;
        }
        out.insert(k.to_owned(), v.clone());
    }
    Json::Object(out)
}

/// OpenAI messages as Cohere's: the same roles, an assistant's text beside its tool calls
/// becomes its `tool_plan`.
fn messages(list: Option<&Vec<Json>>) -> Vec<Json> {
    let mut out = Vec::new();
    for m in list.into_iter().flatten() {
        let role = m.get("role").and_then(Json::as_str).unwrap_or("user");
        let content = m.get("content");
        match role {
            "system" | "developer" => {
                if let Some(c) = text_content(content) {
                    out.push(json!({"role": "system", "content": c}));
                }
            }
            "assistant" => {
                let calls: Vec<Json> = m["tool_calls"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(tool_call)
                    .collect();
                let mut message = json!({"role": "assistant"});
                if calls.is_empty() {
                    message["content"] = text_content(content).unwrap_or_else(|| json!(""));
                } else {
                    if let Some(plan) = plain_text(content).filter(|p| !p.is_empty()) {
                        message["tool_plan"] = Json::from(plan);
                    }
                    message["tool_calls"] = Json::Array(calls);
                }
                out.push(message);
            }
            "tool" | "function" => {
                let id = m
                    .get("tool_call_id")
                    .or_else(|| m.get("name"))
                    .cloned()
                    .unwrap_or(Json::Null);
                let result = match content {
                    Some(Json::String(s)) => Json::from(s.as_str()),
                    Some(c @ Json::Array(_)) => text_content(Some(c)).unwrap_or_else(|| json!("")),
                    Some(Json::Null) | None => json!(""),
                    Some(other) => Json::from(other.to_string()),
                };
                out.push(json!({"role": "tool", "tool_call_id": id, "content": result}));
            }
            _ => out.push(json!({"role": "user", "content": user_content(content)})),
        }
    }
    out
}

/// A string as it is; a list as its text parts (empty text left out); `None` when empty.
fn text_content(content: Option<&Json>) -> Option<Json> {
    match content {
        Some(Json::String(s)) => Some(Json::from(s.as_str())),
        Some(Json::Array(parts)) => {
            let texts: Vec<Json> = parts
                .iter()
                .filter(|p| p["type"] == "text")
                .filter_map(|p| p["text"].as_str().filter(|t| !t.is_empty()))
                .map(|t| json!({"type": "text", "text": t}))
                .collect();
            (!texts.is_empty()).then_some(Json::Array(texts))
        }
        _ => None,
    }
}

/// A content's text, its parts joined.
fn plain_text(content: Option<&Json>) -> Option<String> {
    match content {
        Some(Json::String(s)) => Some(s.clone()),
        Some(Json::Array(parts)) => Some(
            parts
                .iter()
                .filter(|p| p["type"] == "text")
                .filter_map(|p| p["text"].as_str())
                .collect(),
        ),
        _ => None,
    }
}

/// A user turn's content: a string, or text and `image_url` parts (a bare URL string wrapped).
fn user_content(content: Option<&Json>) -> Json {
    let Some(Json::Array(parts)) = content else {
        return text_content(content).unwrap_or_else(|| json!(""));
    };
    let parts: Vec<Json> = parts
        .iter()
        .filter_map(|p| match p["type"].as_str() {
            Some("text") => p["text"]
                .as_str()
                .filter(|t| !t.is_empty())
                .map(|t| json!({"type": "text", "text": t})),
            Some("image_url") => {
                let image = match &p["image_url"] {
                    Json::String(url) => json!({"url": url}),
                    Json::Object(o) if o.contains_key("url") => Json::Object(o.clone()),
                    _ => return None,
                };
                Some(json!({"type": "image_url", "image_url": image}))
            }
            _ => None,
        })
        .collect();
    Json::Array(parts)
}

/// An OpenAI tool call as Cohere's (the same shape; arguments always a string).
fn tool_call(call: &Json) -> Json {
    let function = &call["function"];
    let arguments = match &function["arguments"] {
        Json::String(s) => s.clone(),
        Json::Null => "{}".to_owned(),
        other => other.to_string(),
    };
    json!({
        "id": call["id"],
        "type": "function",
        "function": {"name": function["name"], "arguments": arguments},
    })
}

fn tool_name(tool: &Json) -> Option<&str> {
    tool.get("function").unwrap_or(tool)["name"].as_str()
}

/// An OpenAI function tool with only the fields Cohere knows (`strict` is OpenAI's).
fn tool(t: &Json) -> Json {
    let f = t.get("function").unwrap_or(t);
    let mut function = json!({
        "name": f["name"],
        "parameters": f
            .get("parameters")
            .cloned()
            .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
    });
    if let Some(d) = f.get("description") {
        function["description"] = d.clone();
    }
    json!({"type": "function", "function": function})
}

/// OpenAI's `tool_choice` as Cohere's: `REQUIRED` (also for a named function, whose tool is
/// then the only one sent), `NONE`, or nothing for `auto`.
fn tool_choice(choice: &Json) -> Option<&'static str> {
    match choice {
        Json::String(s) => match s.as_str() {
            "required" => Some("REQUIRED"),
            "none" => Some("NONE"),
            _ => None,
        },
        other => other["function"]["name"].is_string().then_some("REQUIRED"),
    }
}

/// OpenAI's `response_format` as Cohere's JSON mode, with the schema when one is given.
fn response_format(format: &Json) -> Option<Json> {
    match format["type"].as_str()? {
        "json_object" => Some(json!({"type": "json_object"})),
        "json_schema" => {
            let mut out = json!({"type": "json_object"});
            if let Some(schema) = format["json_schema"].get("schema") {
                out["json_schema"] = schema.clone();
            }
            Some(out)
        }
        _ => None,
    }
}

/// The `/v2/embed` request for an OpenAI embeddings request's `fields` (the deployment's
/// `defaults` under them): float vectors, `input_type` as given or `search_document`.
pub fn embed_request(
    model: &str,
    fields: &Map<String, Json>,
    defaults: &Map<String, Json>,
    skip: &[String],
) -> Json {
    let params = Params {
        fields,
        defaults,
        skip,
    };
    let skipped = |k: &str| params.skipped(k);
    let get = |k: &str| params.get(k);
    let texts: Vec<&str> = match fields.get("input") {
        Some(Json::String(s)) => vec![s.as_str()],
        Some(Json::Array(items)) => items.iter().filter_map(Json::as_str).collect(),
        _ => Vec::new(),
    };
    let input_type = get("input_type")
        .and_then(Json::as_str)
        .unwrap_or(DEFAULT_INPUT_TYPE);
    let mut out = json!({
        "model": model,
        "texts": texts,
        "input_type": input_type,
        "embedding_types": ["float"],
    });
    if let Some(d) = get("dimensions") {
        out["output_dimension"] = d.clone();
    }
    for (k, v) in fields.iter().chain(defaults.iter()) {
        let k = k.as_str();
        if EMBED_TRANSLATED.contains(&k) || skipped(k) || out.get(k).is_some() {
            continue;
        }
        out[k] = v.clone();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Json {
        let path = format!(
            "{}/tests/fixtures/cohere/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn fields(v: Json) -> Map<String, Json> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_conversation_with_images_tools_and_a_tool_result_translates_as_recorded() {
        let case = fixture("request_tools_images.json");
        let got = chat_request(
            "command-r-plus",
            &fields(case["openai"].clone()),
            &Map::new(),
            false,
            &[],
        );
        assert_eq!(got, case["cohere"]);
    }

    #[test]
    fn a_named_tool_choice_is_required_with_only_that_tool() {
        let f = fields(json!({
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [
                {"type": "function", "function": {"name": "a"}},
                {"type": "function", "function": {"name": "b"}}
            ],
            "tool_choice": {"type": "function", "function": {"name": "b"}},
        }));
        let got = chat_request("command-a-03-2025", &f, &Map::new(), true, &[]);
        assert_eq!(got["tool_choice"], "REQUIRED");
        assert_eq!(got["stream"], true);
        assert_eq!(
            got["tools"],
            json!([{"type": "function", "function": {"name": "b", "parameters": {"type": "object", "properties": {}}}}])
        );
        let auto = fields(json!({"messages": [], "tool_choice": "auto"}));
        assert!(chat_request("m", &auto, &Map::new(), false, &[])
            .get("tool_choice")
            .is_none());
    }

    #[test]
    fn response_format_max_tokens_and_defaults_map_to_their_cohere_forms() {
        let f = fields(json!({
            "messages": [{"role": "developer", "content": "Answer in JSON."}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object"}}},
            "max_completion_tokens": 20,
            "stop": ["a", "b"],
            "reasoning_effort": "low",
        }));
        let defaults = fields(json!({"temperature": 0.3, "max_tokens": 99}));
        let got = chat_request("m", &f, &defaults, false, &[]);
        assert_eq!(
            got,
            json!({
                "model": "m",
                "messages": [{"role": "system", "content": "Answer in JSON."}],
                "response_format": {"type": "json_object", "json_schema": {"type": "object"}},
                "max_tokens": 20,
                "stop_sequences": ["a", "b"],
                "thinking": {"type": "enabled", "token_budget": 1024},
                "temperature": 0.3,
            })
        );
    }

    #[test]
    fn unsupported_parameters_are_named_unless_skipped() {
        let f = fields(json!({"messages": [], "n": 2, "logprobs": true}));
        assert_eq!(first_unsupported(&f, &Map::new(), &[]), Some("n"));
        assert_eq!(
            first_unsupported(&f, &Map::new(), &["n".to_owned()]),
            Some("logprobs")
        );
        let seed = fields(json!({"messages": [], "seed": 1, "top_p": 0.5}));
        assert_eq!(first_unsupported(&seed, &Map::new(), &[]), None);
    }

    #[test]
    fn embeddings_send_float_vectors_with_the_input_type() {
        let f =
            fields(json!({"input": ["a", "b"], "encoding_format": "base64", "dimensions": 256}));
        assert_eq!(
            embed_request("embed-v4.0", &f, &Map::new(), &[]),
            json!({
                "model": "embed-v4.0",
                "texts": ["a", "b"],
                "input_type": "search_document",
                "embedding_types": ["float"],
                "output_dimension": 256,
            })
        );
        let query = fields(json!({"input": "a", "input_type": "search_query", "truncate": "END"}));
        let got = embed_request("embed-english-v3.0", &query, &Map::new(), &[]);
        assert_eq!(got["input_type"], "search_query");
        assert_eq!(got["texts"], json!(["a"]));
        assert_eq!(got["truncate"], "END");
    }
}
