//! A Responses request: its fields checked before routing, and translated into chat fields for
//! a deployment without the Responses API (instructions, input items, tools, tool choice, text
//! format, reasoning effort, sampling).

use serde_json::{json, Map, Value as Json};

use crate::error::ApiError;
use crate::providers::request::bad_request;
use crate::providers::ProviderError;

/// Fields of the Responses API that chat has no counterpart for and that change nothing a
/// translated reply could honour: dropped silently, as LiteLLM's bridge does.
const DROPPED: &[&str] = &[
    "background",
    "include",
    "max_tool_calls",
    "previous_response_id",
    "prompt_cache_key",
    "prompt_cache_retention",
    "safety_identifier",
    "service_tier",
    "store",
    "stream_options",
    "top_logprobs",
    "truncation",
];

/// Fields that name state kept by OpenAI: a translated request cannot be served without it.
const NEEDS_NATIVE: &[&str] = &["conversation", "prompt"];

fn type_error(field: &str, expected: &str) -> ApiError {
    ApiError::bad_request(
        format!("Invalid value for '{field}': expected {expected}"),
        Some(field),
    )
}

/// Checks the fields of a Responses request the gateway reads, before it is routed: a clear 400
/// naming the field for a wrong type or a missing `input`.
pub fn check(fields: &Map<String, Json>) -> Result<(), ApiError> {
    match fields.get("input") {
        None | Some(Json::Null) => {
            // The conversation may come from elsewhere instead.
            if !["previous_response_id", "conversation", "prompt"]
                .iter()
                .any(|k| fields.get(*k).is_some_and(|v| !v.is_null()))
            {
                return Err(ApiError::bad_request(
                    "Missing required parameter: 'input'",
                    Some("input"),
                ));
            }
        }
        Some(Json::String(_)) => {}
        Some(Json::Array(items)) => {
            if let Some(i) = items.iter().position(|item| !item.is_object()) {
                return Err(type_error(
                    &format!("input[{i}]"),
                    "an object (an input item)",
                ));
            }
        }
        Some(_) => return Err(type_error("input", "a string or a list of input items")),
    }
    let expect = |field: &str, ok: fn(&Json) -> bool, what: &str| match fields.get(field) {
        Some(v) if !v.is_null() && !ok(v) => Err(type_error(field, what)),
        _ => Ok(()),
    };
    expect(
        "instructions",
        |v| v.is_string() || v.is_array(),
        "a string",
    )?;
    expect("tools", Json::is_array, "a list of tools")?;
    expect(
        "tool_choice",
        |v| v.is_string() || v.is_object(),
        "a string or an object",
    )?;
    expect("max_output_tokens", Json::is_u64, "a non-negative integer")?;
    expect("temperature", Json::is_number, "a number")?;
    expect("top_p", Json::is_number, "a number")?;
    expect("text", Json::is_object, "an object")?;
    expect("reasoning", Json::is_object, "an object")?;
    expect("previous_response_id", Json::is_string, "a string")?;
    expect("store", Json::is_boolean, "a boolean")?;
    expect("parallel_tool_calls", Json::is_boolean, "a boolean")?;
    expect("user", Json::is_string, "a string")?;
    if let Some(Json::Array(tools)) = fields.get("tools") {
        if let Some(i) = tools
            .iter()
            .position(|t| t.get("type").and_then(Json::as_str).is_none())
        {
            return Err(type_error(
                &format!("tools[{i}]"),
                "an object with a string 'type'",
            ));
        }
    }
    Ok(())
}

/// The prompt's tokens (cl100k; 3 per item and 3 to prime the reply, as for chat): the
/// instructions and the text of every input item, for the limits checked before routing.
pub fn prompt_tokens(fields: &Map<String, Json>) -> u64 {
    use crate::providers::translate::content_text;
    use crate::tokens::count;
    let mut total = 3;
    if let Some(Json::String(s)) = fields.get("instructions") {
        total += 3 + count(s);
    }
    match fields.get("input") {
        Some(Json::String(s)) => total += 3 + count(s),
        Some(Json::Array(items)) => {
            for item in items {
                total += 3;
                for key in ["content", "output", "arguments"] {
                    if let Some(v) = item.get(key) {
                        total += count(&content_text(v));
                    }
                }
            }
        }
        _ => {}
    }
    total
}

/// The request's input as a list of items (a string is one user message).
pub fn input_items(fields: &Map<String, Json>) -> Vec<Json> {
    match fields.get("input") {
        Some(Json::String(text)) => vec![json!({"role": "user", "content": text})],
        Some(Json::Array(items)) => items.clone(),
        _ => Vec::new(),
    }
}

/// How the translation treats what chat cannot carry.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// `drop_params`: leave out built-in tools and items chat has no counterpart for, instead
    /// of refusing them.
    pub drop_unsupported: bool,
}

/// Translates a Responses request into chat fields; `history` holds the items of the earlier
/// turns (`previous_response_id`), already resolved.
pub fn to_chat(
    fields: &Map<String, Json>,
    history: &[Json],
    options: Options,
) -> Result<Map<String, Json>, ProviderError> {
    let mut out = Map::new();
    let mut messages: Vec<Json> = Vec::new();
    match fields.get("instructions") {
        Some(Json::String(s)) if !s.is_empty() => {
            messages.push(json!({"role": "system", "content": s}));
        }
        Some(Json::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                add_item(item, &format!("instructions[{i}]"), &mut messages, options)?;
            }
        }
        _ => {}
    }
    for (i, item) in history.iter().enumerate() {
        add_item(
            item,
            &format!("previous_response_id[{i}]"),
            &mut messages,
            options,
        )?;
    }
    match fields.get("input") {
        Some(Json::String(text)) => messages.push(json!({"role": "user", "content": text})),
        Some(Json::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                add_item(item, &format!("input[{i}]"), &mut messages, options)?;
            }
        }
        _ => {}
    }
    if messages.is_empty() {
        return Err(bad_request(
            "the request has no input to send as chat messages".into(),
            "input",
        ));
    }
    out.insert("messages".into(), Json::Array(messages));
    for (key, value) in fields {
        if value.is_null() {
            continue;
        }
        match key.as_str() {
            "input" | "instructions" => {}
            k if DROPPED.contains(&k) => {}
            k if NEEDS_NATIVE.contains(&k) => {
                return Err(bad_request(
                    format!(
                        "'{k}' needs a deployment with the Responses API (openai/ or azure/); this one is served through chat completions"
                    ),
                    k,
                ));
            }
            "tools" => {
                let tools = chat_tools(value, options)?;
                if !tools.is_empty() {
                    out.insert("tools".into(), Json::Array(tools));
                }
            }
            "tool_choice" => {
                if let Some(choice) = chat_tool_choice(value, options)? {
                    out.insert("tool_choice".into(), choice);
                }
            }
            "max_output_tokens" => {
                out.insert("max_tokens".into(), value.clone());
            }
            "text" => {
                if let Some(format) = response_format(&value["format"], options)? {
                    out.insert("response_format".into(), format);
                }
            }
            "reasoning" => {
                if let Some(effort) = value.get("effort").filter(|e| e.is_string()) {
                    out.insert("reasoning_effort".into(), effort.clone());
                }
            }
            // Sampling, `stream`, `user`, `parallel_tool_calls` and any provider-specific field
            // (`top_k`, `safetySettings` ...) reach chat as sent.
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    // Without tools, `parallel_tool_calls` means nothing and some providers refuse it.
    if !out.contains_key("tools") {
        out.shift_remove("parallel_tool_calls");
        out.shift_remove("tool_choice");
    }
    Ok(out)
}

/// Appends one input item to `messages` as chat: messages, function calls (merged into the
/// assistant turn before them) and their outputs; reasoning items are left out (no chat
/// provider takes them back).
fn add_item(
    item: &Json,
    at: &str,
    messages: &mut Vec<Json>,
    options: Options,
) -> Result<(), ProviderError> {
    let kind = item.get("type").and_then(Json::as_str).unwrap_or("message");
    match kind {
        "message" => {
            let role = match item.get("role").and_then(Json::as_str) {
                Some("developer") => "system",
                Some(r @ ("user" | "assistant" | "system")) => r,
                Some(other) => {
                    return Err(bad_request(
                        format!("{at}.role: '{other}' is not a message role"),
                        &format!("{at}.role"),
                    ))
                }
                None => {
                    return Err(bad_request(
                        format!("{at}: a message needs a 'role'"),
                        &format!("{at}.role"),
                    ))
                }
            };
            let content = match item.get("content") {
                Some(Json::String(s)) => Json::from(s.as_str()),
                Some(Json::Array(parts)) => {
                    let parts = chat_parts(parts, &format!("{at}.content"))?;
                    if role == "user" {
                        Json::Array(parts)
                    } else {
                        // System and assistant turns carry text only, as one string.
                        Json::from(joined_text(&parts))
                    }
                }
                _ => {
                    return Err(bad_request(
                        format!("{at}.content: expected a string or a list of content parts"),
                        &format!("{at}.content"),
                    ))
                }
            };
            messages.push(json!({"role": role, "content": content}));
        }
        "function_call" => {
            let field = |name: &str| {
                item.get(name).and_then(Json::as_str).ok_or_else(|| {
                    bad_request(
                        format!("{at}.{name}: a function_call item needs a string '{name}'"),
                        &format!("{at}.{name}"),
                    )
                })
            };
            let call = json!({
                "id": field("call_id")?,
                "type": "function",
                "function": {"name": field("name")?, "arguments": field("arguments")?},
            });
            // Calls right after an assistant turn belong to it (one turn, parallel calls).
            match messages.last_mut() {
                Some(last) if last["role"] == "assistant" => {
                    if let Some(calls) = last
                        .as_object_mut()
                        .map(|m| m.entry("tool_calls").or_insert_with(|| json!([])))
                        .and_then(Json::as_array_mut)
                    {
                        calls.push(call);
                    }
                }
                _ => messages.push(json!({"role": "assistant", "content": null, "tool_calls": [call]})),
            }
        }
        "function_call_output" => {
            let call_id = item.get("call_id").and_then(Json::as_str).ok_or_else(|| {
                bad_request(
                    format!("{at}.call_id: a function_call_output item needs a string 'call_id'"),
                    &format!("{at}.call_id"),
                )
            })?;
            let content = match item.get("output") {
                Some(Json::String(s)) => s.clone(),
                Some(Json::Array(parts)) => {
                    joined_text(&chat_parts(parts, &format!("{at}.output"))?)
                }
                _ => {
                    return Err(bad_request(
                        format!("{at}.output: expected a string"),
                        &format!("{at}.output"),
                    ))
                }
            };
            messages.push(json!({"role": "tool", "tool_call_id": call_id, "content": content}));
        }
        "reasoning" => {}
        other if options.drop_unsupported => {
            log::debug!("dropping a {other} input item: chat has no counterpart");
        }
        other => {
            return Err(bad_request(
                format!(
                    "{at}: '{other}' items need a deployment with the Responses API (openai/ or azure/); this one is served through chat completions (set drop_params to leave them out)"
                ),
                &format!("{at}.type"),
            ))
        }
    }
    Ok(())
}

/// Input content parts as chat content parts.
fn chat_parts(parts: &[Json], at: &str) -> Result<Vec<Json>, ProviderError> {
    parts
        .iter()
        .enumerate()
        .map(|(i, part)| {
            let here = format!("{at}[{i}]");
            let kind = part.get("type").and_then(Json::as_str).unwrap_or_default();
            match kind {
                "input_text" | "output_text" | "text" | "summary_text" | "reasoning_text" => {
                    Ok(json!({"type": "text", "text": part.get("text").cloned().unwrap_or_default()}))
                }
                "refusal" => Ok(
                    json!({"type": "text", "text": part.get("refusal").cloned().unwrap_or_default()}),
                ),
                "input_image" => {
                    let url = part.get("image_url").and_then(Json::as_str).ok_or_else(|| {
                        bad_request(
                            format!("{here}: only images given by 'image_url' (a URL or a data: URL) can be sent through chat; a 'file_id' needs the Responses API"),
                            &format!("{here}.image_url"),
                        )
                    })?;
                    let mut image = json!({"url": url});
                    if let Some(detail) = part.get("detail").filter(|d| d.is_string()) {
                        image["detail"] = detail.clone();
                    }
                    Ok(json!({"type": "image_url", "image_url": image}))
                }
                "input_file" => {
                    let mut file = Map::new();
                    for key in ["file_data", "file_id", "filename"] {
                        if let Some(v) = part.get(key).filter(|v| v.is_string()) {
                            file.insert(key.into(), v.clone());
                        }
                    }
                    Ok(json!({"type": "file", "file": file}))
                }
                "input_audio" => Ok(json!({"type": "input_audio", "input_audio": part.get("input_audio").cloned().unwrap_or_default()})),
                other => Err(bad_request(
                    format!("{here}: unknown content part type '{other}'"),
                    &format!("{here}.type"),
                )),
            }
        })
        .collect()
}

fn joined_text(parts: &[Json]) -> String {
    parts
        .iter()
        .filter_map(|p| p.get("text").and_then(Json::as_str))
        .collect::<Vec<_>>()
        .join("")
}

/// Function tools as chat tools; built-in tools (web search, file search ...) need OpenAI.
fn chat_tools(tools: &Json, options: Options) -> Result<Vec<Json>, ProviderError> {
    let mut out = Vec::new();
    for (i, tool) in tools.as_array().into_iter().flatten().enumerate() {
        match tool.get("type").and_then(Json::as_str) {
            Some("function") => {
                let name = tool.get("name").and_then(Json::as_str).ok_or_else(|| {
                    bad_request(
                        format!("tools[{i}].name: a function tool needs a name"),
                        &format!("tools[{i}].name"),
                    )
                })?;
                let mut function = json!({"name": name});
                for key in ["description", "parameters", "strict"] {
                    if let Some(v) = tool.get(key).filter(|v| !v.is_null()) {
                        function[key] = v.clone();
                    }
                }
                out.push(json!({"type": "function", "function": function}));
            }
            _ if options.drop_unsupported => {}
            other => {
                return Err(bad_request(
                    format!(
                        "tools[{i}]: the built-in tool '{}' needs a deployment with the Responses API (openai/ or azure/); this one is served through chat completions, which takes function tools only",
                        other.unwrap_or_default()
                    ),
                    &format!("tools[{i}].type"),
                ))
            }
        }
    }
    Ok(out)
}

/// `tool_choice` as chat's: the same words, or a named function.
fn chat_tool_choice(choice: &Json, options: Options) -> Result<Option<Json>, ProviderError> {
    match choice {
        Json::String(_) => Ok(Some(choice.clone())),
        Json::Object(o) if o.get("type").and_then(Json::as_str) == Some("function") => {
            let name = o.get("name").and_then(Json::as_str).ok_or_else(|| {
                bad_request(
                    "tool_choice.name: a function tool choice needs a name".into(),
                    "tool_choice.name",
                )
            })?;
            Ok(Some(json!({"type": "function", "function": {"name": name}})))
        }
        _ if options.drop_unsupported => Ok(None),
        _ => Err(bad_request(
            "tool_choice: only 'auto', 'none', 'required' or a function can be sent through chat completions".into(),
            "tool_choice",
        )),
    }
}

/// `text.format` as chat's `response_format`.
fn response_format(format: &Json, options: Options) -> Result<Option<Json>, ProviderError> {
    match format.get("type").and_then(Json::as_str) {
        None | Some("text") => Ok(None),
        Some("json_object") => Ok(Some(json!({"type": "json_object"}))),
        Some("json_schema") => {
            let mut schema = Map::new();
            for key in ["name", "schema", "strict", "description"] {
                if let Some(v) = format.get(key).filter(|v| !v.is_null()) {
                    schema.insert(key.into(), v.clone());
                }
            }
            Ok(Some(json!({"type": "json_schema", "json_schema": schema})))
        }
        Some(_) if options.drop_unsupported => Ok(None),
        Some(other) => Err(bad_request(
            format!("text.format: unknown format type '{other}'"),
            "text.format.type",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(v: Json) -> Map<String, Json> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn a_string_input_and_instructions_become_a_system_and_a_user_message() {
        let chat = to_chat(
            &fields(json!({"input": "Hi", "instructions": "Be brief.", "max_output_tokens": 50, "temperature": 0.2, "store": true})),
            &[],
            Options::default(),
        )
        .unwrap();
        assert_eq!(
            Json::Object(chat),
            json!({
                "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
                "max_tokens": 50,
                "temperature": 0.2,
            })
        );
    }

    #[test]
    fn the_recorded_request_translates_as_recorded() {
        let case: Json = serde_json::from_str(include_str!(
            "../../tests/fixtures/openai/responses_request_tools_images.json"
        ))
        .unwrap();
        let chat = to_chat(&fields(case["responses"].clone()), &[], Options::default()).unwrap();
        assert_eq!(Json::Object(chat), case["chat"]);
    }

    #[test]
    fn history_comes_before_the_new_input_and_after_the_instructions() {
        let history = [
            json!({"role": "user", "content": "Weather in Paris?"}),
            json!({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Sunny."}]}),
        ];
        let chat = to_chat(
            &fields(json!({"input": "And tomorrow?", "instructions": "Be brief."})),
            &history,
            Options::default(),
        )
        .unwrap();
        assert_eq!(
            chat["messages"],
            json!([
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Weather in Paris?"},
                {"role": "assistant", "content": "Sunny."},
                {"role": "user", "content": "And tomorrow?"},
            ])
        );
    }

    #[test]
    fn built_in_tools_are_refused_naming_them_unless_dropped() {
        let f = fields(
            json!({"input": "x", "tools": [{"type": "function", "name": "f"}, {"type": "web_search"}]}),
        );
        let err = to_chat(&f, &[], Options::default()).unwrap_err();
        assert_eq!(
            (err.status, err.param.as_deref()),
            (400, Some("tools[1].type"))
        );
        assert!(err.message.contains("web_search"), "{}", err.message);
        let dropped = to_chat(
            &f,
            &[],
            Options {
                drop_unsupported: true,
            },
        )
        .unwrap();
        assert_eq!(
            dropped["tools"],
            json!([{"type": "function", "function": {"name": "f"}}])
        );
    }

    #[test]
    fn conversation_and_stored_prompts_need_the_native_api() {
        let err = to_chat(
            &fields(json!({"conversation": "conv_1", "input": "x"})),
            &[],
            Options::default(),
        )
        .unwrap_err();
        assert_eq!(err.param.as_deref(), Some("conversation"));
    }

    #[test]
    fn malformed_items_are_a_400_naming_where() {
        let cases = [
            (
                json!({"input": [{"role": "robot", "content": "x"}]}),
                "input[0].role",
            ),
            (
                json!({"input": [{"type": "function_call", "name": "f", "arguments": "{}"}]}),
                "input[0].call_id",
            ),
            (
                json!({"input": [{"type": "item_reference", "id": "msg_1"}]}),
                "input[0].type",
            ),
            (
                json!({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file-1"}]}]}),
                "input[0].content[0].image_url",
            ),
            (
                json!({"input": "x", "text": {"format": {"type": "yaml"}}}),
                "text.format.type",
            ),
        ];
        for (body, param) in cases {
            let err = to_chat(&fields(body.clone()), &[], Options::default()).unwrap_err();
            assert_eq!(err.status, 400, "{body}");
            assert_eq!(err.param.as_deref(), Some(param), "{body}");
        }
    }

    #[test]
    fn the_prompt_is_counted_from_the_instructions_and_every_item() {
        let plain = prompt_tokens(&fields(json!({"input": "hello there"})));
        assert_eq!(plain, 3 + 3 + crate::tokens::count("hello there"));
        let items = prompt_tokens(&fields(json!({
            "instructions": "Be brief.",
            "input": [
                {"role": "user", "content": [{"type": "input_text", "text": "hello there"}]},
                {"type": "function_call_output", "call_id": "c", "output": "18C"},
            ],
        })));
        assert!(items > plain + crate::tokens::count("18C"), "{items}");
    }

    #[test]
    fn checks_name_the_field_at_fault() {
        let cases = [
            (json!({}), "input"),
            (json!({"input": 3}), "input"),
            (json!({"input": ["hi"]}), "input[0]"),
            (json!({"input": "x", "tools": {}}), "tools"),
            (json!({"input": "x", "tools": [{"name": "f"}]}), "tools[0]"),
            (
                json!({"input": "x", "max_output_tokens": "many"}),
                "max_output_tokens",
            ),
            (json!({"input": "x", "store": "yes"}), "store"),
        ];
        for (body, param) in cases {
            let err = check(&fields(body.clone())).unwrap_err();
            assert_eq!(err.body()["error"]["param"], param, "{body}");
        }
        assert!(check(&fields(json!({"previous_response_id": "resp_1"}))).is_ok());
    }
}
