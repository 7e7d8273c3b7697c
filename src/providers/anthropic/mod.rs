//! Anthropic's Messages API: OpenAI chat requests translated to it (this module), its replies
//! (`reply`) and its event streams (`stream`) translated back.

pub mod inbound;
pub mod reply;
pub mod stream;

use serde_json::{json, Map, Value as Json};

use crate::providers::translate::push_turn;

/// The `anthropic-version` header sent with every call.
pub const API_VERSION: &str = "2023-06-01";

/// `max_tokens` is required by Anthropic; LiteLLM's default when the client sends none.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// OpenAI chat parameters with no Messages API counterpart: dropped under `drop_params`, else
/// the request is refused naming the first.
pub const UNSUPPORTED: &[&str] = &[
    "n",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "seed",
    "response_format",
    "service_tier",
    "modalities",
    "audio",
    "prediction",
    "store",
    "functions",
    "function_call",
];

/// Request fields translated rather than passed through.
const TRANSLATED: &[&str] = &[
    "messages",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "stream",
    "stream_options",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "user",
    "reasoning_effort",
];

/// The first unsupported OpenAI parameter among `fields` (or the deployment's `defaults`),
/// unless dropping is allowed; `skip` names fields never forwarded.
pub fn first_unsupported(
    fields: &Map<String, Json>,
    defaults: &Map<String, Json>,
    skip: &[String],
) -> Option<&'static str> {
    crate::providers::translate::first_present(UNSUPPORTED, fields, defaults, skip)
}

/// The Messages API request for an OpenAI chat request's `fields` (no `model`), with the
/// deployment's `defaults` under them. Unsupported parameters and `skip` are left out.
pub fn chat_request(
    model: &str,
    fields: &Map<String, Json>,
    defaults: &Map<String, Json>,
    stream: bool,
    skip: &[String],
) -> Json {
    let get = |k: &str| fields.get(k).or_else(|| defaults.get(k));
    let mut out = Map::new();
    out.insert("model".into(), Json::from(model));
    let (system, messages) = messages(get("messages").and_then(Json::as_array));
    out.insert("messages".into(), Json::Array(messages));
    if !system.is_empty() {
        out.insert("system".into(), Json::Array(system));
    }
    let max_tokens = get("max_tokens")
        .or_else(|| get("max_completion_tokens"))
        .and_then(Json::as_u64)
        .unwrap_or(DEFAULT_MAX_TOKENS);
    out.insert("max_tokens".into(), Json::from(max_tokens));
    match get("stop") {
        Some(Json::String(s)) => {
            out.insert("stop_sequences".into(), json!([s]));
        }
        Some(Json::Array(list)) if !list.is_empty() => {
            out.insert("stop_sequences".into(), Json::Array(list.clone()));
        }
        _ => {}
    }
    if stream {
        out.insert("stream".into(), Json::Bool(true));
    }
    if let Some(tools) = get("tools").and_then(Json::as_array) {
        out.insert(
            "tools".into(),
            Json::Array(tools.iter().map(tool).collect()),
        );
    }
    let parallel = get("parallel_tool_calls").and_then(Json::as_bool);
    if let Some(choice) = tool_choice(get("tool_choice"), parallel) {
        out.insert("tool_choice".into(), choice);
    }
    if let Some(user) = get("user").and_then(Json::as_str) {
        out.insert("metadata".into(), json!({"user_id": user}));
    }
    if let Some(effort) = get("reasoning_effort").and_then(Json::as_str) {
        let budget = match effort {
            "low" => Some(1024),
            "medium" => Some(2048),
            "high" => Some(4096),
            _ => None,
        };
        if let Some(budget_tokens) = budget {
            out.entry("thinking")
                .or_insert(json!({"type": "enabled", "budget_tokens": budget_tokens}));
        }
    }
    // Everything else (temperature, top_p, top_k, thinking, metadata of Anthropic's own ...)
    // passes through as given.
    for (k, v) in fields.iter().chain(defaults.iter()) {
        let k = k.as_str();
        if TRANSLATED.contains(&k)
            || UNSUPPORTED.contains(&k)
            || skip.iter().any(|s| s == k)
            || out.contains_key(k)
        {
            continue;
        }
        out.insert(k.to_owned(), v.clone());
    }
    Json::Object(out)
}

/// OpenAI messages as Anthropic's `system` blocks and alternating user/assistant messages.
fn messages(list: Option<&Vec<Json>>) -> (Vec<Json>, Vec<Json>) {
    let mut system = Vec::new();
    let mut out: Vec<Json> = Vec::new();
    for m in list.into_iter().flatten() {
        let role = m.get("role").and_then(Json::as_str).unwrap_or("user");
        let content = m.get("content");
        match role {
            "system" | "developer" => system.extend(text_blocks(content)),
            "assistant" => {
                let mut blocks = text_blocks(content);
                for call in m
                    .get("tool_calls")
                    .and_then(Json::as_array)
                    .into_iter()
                    .flatten()
                {
                    blocks.push(tool_use(call));
                }
                push_turn(&mut out, "assistant", "content", blocks);
            }
            "tool" | "function" => {
                let id = m
                    .get("tool_call_id")
                    .or_else(|| m.get("name"))
                    .cloned()
                    .unwrap_or(Json::Null);
                let result = match content {
                    Some(Json::String(s)) => Json::from(s.as_str()),
                    other => Json::Array(user_blocks(other)),
                };
                let block = json!({"type": "tool_result", "tool_use_id": id, "content": result});
                push_turn(&mut out, "user", "content", vec![block]);
            }
            _ => push_turn(&mut out, "user", "content", user_blocks(content)),
        }
    }
    (system, out)
}

/// Text blocks of a string or of the text parts of a list (empty text is left out).
fn text_blocks(content: Option<&Json>) -> Vec<Json> {
    match content {
        Some(Json::String(s)) if !s.is_empty() => vec![json!({"type": "text", "text": s})],
        Some(Json::Array(parts)) => parts
            .iter()
            .filter(|p| p.get("type").and_then(Json::as_str) == Some("text"))
            .filter_map(text_part)
            .collect(),
        _ => Vec::new(),
    }
}

fn text_part(part: &Json) -> Option<Json> {
    let text = part
        .get("text")
        .and_then(Json::as_str)
        .filter(|t| !t.is_empty())?;
    let mut block = json!({"type": "text", "text": text});
    if let Some(cache) = part.get("cache_control") {
        block["cache_control"] = cache.clone();
    }
    Some(block)
}

/// A user turn's blocks: text and images (a `data:` URL as base64, any other as a URL).
fn user_blocks(content: Option<&Json>) -> Vec<Json> {
    let Some(Json::Array(parts)) = content else {
        return text_blocks(content);
    };
    parts
        .iter()
        .filter_map(|p| match p.get("type").and_then(Json::as_str) {
            Some("text") => text_part(p),
            Some("image_url") => {
                let url = crate::providers::translate::image_url(p)?;
                Some(image(url))
            }
            _ => None,
        })
        .collect()
}

fn image(url: &str) -> Json {
    match crate::providers::translate::data_url(url) {
        Some((media_type, data)) => json!({
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data},
        }),
        None => json!({"type": "image", "source": {"type": "url", "url": url}}),
    }
}

/// An OpenAI tool call as a `tool_use` block (its arguments parsed back into JSON).
fn tool_use(call: &Json) -> Json {
    let function = &call["function"];
    let input = function
        .get("arguments")
        .and_then(Json::as_str)
        .and_then(|a| serde_json::from_str::<Json>(a).ok())
        .filter(Json::is_object)
        .unwrap_or_else(|| json!({}));
    json!({
        "type": "tool_use",
        "id": call.get("id").cloned().unwrap_or(Json::Null),
        "name": function.get("name").cloned().unwrap_or(Json::Null),
        "input": input,
    })
}

/// An OpenAI function tool as an Anthropic tool.
fn tool(t: &Json) -> Json {
    let f = t.get("function").unwrap_or(t);
    let mut out = json!({
        "name": f.get("name").cloned().unwrap_or(Json::Null),
        "input_schema": f
            .get("parameters")
            .cloned()
            .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
    });
    if let Some(d) = f.get("description") {
        out["description"] = d.clone();
    }
    if let Some(c) = t.get("cache_control") {
        out["cache_control"] = c.clone();
    }
    out
}

/// OpenAI's `tool_choice` (and `parallel_tool_calls: false`) as Anthropic's.
fn tool_choice(choice: Option<&Json>, parallel: Option<bool>) -> Option<Json> {
    let mut out = match choice {
        Some(Json::String(s)) => match s.as_str() {
            "required" => json!({"type": "any"}),
            "none" => json!({"type": "none"}),
            _ => json!({"type": "auto"}),
        },
        Some(Json::Object(o)) => match o
            .get("function")
            .and_then(|f| f.get("name"))
            .and_then(Json::as_str)
        {
            Some(name) => json!({"type": "tool", "name": name}),
            None => json!({"type": "auto"}),
        },
        _ if parallel == Some(false) => json!({"type": "auto"}),
        _ => return None,
    };
    if parallel == Some(false) {
        out["disable_parallel_tool_use"] = Json::Bool(true);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Json {
        let path = format!(
            "{}/tests/fixtures/anthropic/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    fn translate(openai: &Json, stream: bool) -> Json {
        let fields = openai.as_object().unwrap().clone();
        chat_request(
            "claude-3-5-sonnet-20241022",
            &fields,
            &Map::new(),
            stream,
            &[],
        )
    }

    #[test]
    fn a_conversation_with_system_images_tools_and_results_translates_as_recorded() {
        let case = fixture("request_tools_images.json");
        assert_eq!(translate(&case["openai"], false), case["anthropic"]);
    }

    #[test]
    fn a_plain_request_gets_the_default_max_tokens_and_passes_extras_through() {
        let got = translate(
            &json!({"messages": [{"role": "user", "content": "hi"}], "temperature": 0.2, "top_k": 5, "stop": "END", "user": "u-1"}),
            true,
        );
        assert_eq!(
            got,
            json!({
                "model": "claude-3-5-sonnet-20241022",
                "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
                "max_tokens": 4096,
                "stop_sequences": ["END"],
                "stream": true,
                "metadata": {"user_id": "u-1"},
                "temperature": 0.2,
                "top_k": 5,
            })
        );
    }

    #[test]
    fn tool_choice_maps_each_form() {
        assert_eq!(
            tool_choice(Some(&json!("required")), None),
            Some(json!({"type": "any"}))
        );
        assert_eq!(
            tool_choice(
                Some(&json!({"type": "function", "function": {"name": "f"}})),
                Some(false)
            ),
            Some(json!({"type": "tool", "name": "f", "disable_parallel_tool_use": true}))
        );
        assert_eq!(tool_choice(None, None), None);
    }

    #[test]
    fn unsupported_parameters_are_named_unless_skipped() {
        let fields: Map<String, Json> =
            serde_json::from_value(json!({"messages": [], "seed": 1})).unwrap();
        assert_eq!(first_unsupported(&fields, &Map::new(), &[]), Some("seed"));
        assert_eq!(
            first_unsupported(&fields, &Map::new(), &["seed".to_owned()]),
            None
        );
    }

    #[test]
    fn reasoning_effort_becomes_a_thinking_budget() {
        let got = translate(
            &json!({"messages": [{"role": "user", "content": "hi"}], "reasoning_effort": "low"}),
            false,
        );
        assert_eq!(
            got["thinking"],
            json!({"type": "enabled", "budget_tokens": 1024})
        );
    }
}
