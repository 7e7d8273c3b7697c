//! The Anthropic Messages format on the client side (`POST /v1/messages`): a Messages request
//! as an OpenAI chat request for any deployment, and the OpenAI reply, stream or error back as
//! Anthropic's.

use serde_json::{json, Map, Value as Json};

/// An Anthropic Messages request as the fields of an OpenAI chat request (with `model`).
pub fn chat_request(body: &Map<String, Json>) -> Map<String, Json> {
    let mut out = Map::new();
    let mut messages = Vec::new();
    match body.get("system") {
        Some(Json::String(s)) if !s.is_empty() => {
            messages.push(json!({"role": "system", "content": s}));
        }
        Some(Json::Array(blocks)) => {
            let text = joined_text(blocks);
            if !text.is_empty() {
                messages.push(json!({"role": "system", "content": text}));
            }
        }
        _ => {}
    }
    for m in body
        .get("messages")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        let role = m.get("role").and_then(Json::as_str).unwrap_or("user");
        match m.get("content") {
            Some(Json::Array(blocks)) if role == "assistant" => {
                messages.push(assistant_message(blocks));
            }
            Some(Json::Array(blocks)) => user_messages(blocks, &mut messages),
            Some(content) => messages.push(json!({"role": role, "content": content})),
            None => {}
        }
    }
    for (k, v) in body {
        match k.as_str() {
            "model" | "temperature" | "top_p" | "top_k" | "stream" | "max_tokens" => {
                out.insert(k.clone(), v.clone());
            }
            // Extended thinking, for any provider: as OpenAI's `reasoning_effort` (which the
            // Anthropic adapter turns back into a thinking budget).
            "thinking" if v["type"] == "enabled" => {
                let effort = match v["budget_tokens"].as_u64().unwrap_or(0) {
                    0..=1024 => "low",
                    1025..=2048 => "medium",
                    _ => "high",
                };
                out.insert("reasoning_effort".into(), Json::from(effort));
            }
            "stop_sequences" => {
                out.insert("stop".into(), v.clone());
            }
            "metadata" => {
                if let Some(user) = v.get("user_id") {
                    out.insert("user".into(), user.clone());
                }
            }
            "tools" => {
                let tools = v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(openai_tool)
                    .collect();
                out.insert("tools".into(), Json::Array(tools));
            }
            "tool_choice" => {
                let (choice, parallel) = openai_tool_choice(v);
                out.insert("tool_choice".into(), choice);
                if parallel == Some(false) {
                    out.insert("parallel_tool_calls".into(), Json::Bool(false));
                }
            }
            _ => {}
        }
    }
    out.insert("messages".into(), Json::Array(messages));
    if out.get("stream") == Some(&Json::Bool(true)) {
        out.insert("stream_options".into(), json!({"include_usage": true}));
    }
    out
}

fn joined_text(blocks: &[Json]) -> String {
    let texts: Vec<&str> = blocks
        .iter()
        .filter(|b| b["type"] == "text")
        .filter_map(|b| b["text"].as_str())
        .collect();
    texts.join("\n")
}

/// A user turn: its tool results become `tool` messages (first), the rest one user message.
fn user_messages(blocks: &[Json], out: &mut Vec<Json>) {
    let mut parts = Vec::new();
    for b in blocks {
        match b["type"].as_str() {
            Some("tool_result") => {
                let content = match &b["content"] {
                    Json::Array(inner) => Json::from(joined_text(inner)),
                    Json::Null => Json::from(""),
                    other => other.clone(),
                };
                out.push(
                    json!({"role": "tool", "tool_call_id": b["tool_use_id"], "content": content}),
                );
            }
            Some("text") => parts.push(json!({"type": "text", "text": b["text"]})),
            Some("image") => {
                let source = &b["source"];
                let url = match source["type"].as_str() {
                    Some("base64") => format!(
                        "data:{};base64,{}",
                        source["media_type"].as_str().unwrap_or("image/png"),
                        source["data"].as_str().unwrap_or_default()
                    ),
                    _ => source["url"].as_str().unwrap_or_default().to_owned(),
                };
                parts.push(json!({"type": "image_url", "image_url": {"url": url}}));
            }
            _ => {}
        }
    }
    if !parts.is_empty() {
        out.push(json!({"role": "user", "content": parts}));
    }
}

/// An assistant turn: its text as content, its `tool_use` blocks as tool calls.
fn assistant_message(blocks: &[Json]) -> Json {
    let text = joined_text(blocks);
    let calls: Vec<Json> = blocks
        .iter()
        .filter(|b| b["type"] == "tool_use")
        .map(|b| {
            json!({
                "id": b["id"],
                "type": "function",
                "function": {"name": b["name"], "arguments": b["input"].to_string()},
            })
        })
        .collect();
    let mut m = json!({"role": "assistant", "content": text});
    if !calls.is_empty() {
        m["tool_calls"] = Json::Array(calls);
    }
    m
}

fn openai_tool(t: &Json) -> Json {
    let mut function = json!({
        "name": t["name"],
        "parameters": t.get("input_schema").cloned().unwrap_or_else(|| json!({"type": "object"})),
    });
    if let Some(d) = t.get("description") {
        function["description"] = d.clone();
    }
    json!({"type": "function", "function": function})
}

fn openai_tool_choice(choice: &Json) -> (Json, Option<bool>) {
    let parallel = choice
        .get("disable_parallel_tool_use")
        .and_then(Json::as_bool)
        .map(|disabled| !disabled);
    let openai = match choice["type"].as_str() {
        Some("any") => json!("required"),
        Some("none") => json!("none"),
        Some("tool") => json!({"type": "function", "function": {"name": choice["name"]}}),
        _ => json!("auto"),
    };
    (openai, parallel)
}

/// OpenAI's `finish_reason` as Anthropic's `stop_reason`.
pub fn stop_reason(finish_reason: &str) -> &'static str {
    match finish_reason {
        "length" => "max_tokens",
        "tool_calls" | "function_call" => "tool_use",
        "content_filter" => "refusal",
        _ => "end_turn",
    }
}

/// OpenAI's `usage` as Anthropic's (cached prompt tokens shown apart, as Anthropic does).
fn usage(u: &Json) -> Json {
    let n = |v: &Json| v.as_u64().unwrap_or(0);
    let cached = n(&u["prompt_tokens_details"]["cached_tokens"]);
    let written = n(&u["cache_creation_input_tokens"]);
    json!({
        "input_tokens": n(&u["prompt_tokens"]).saturating_sub(cached + written),
        "output_tokens": n(&u["completion_tokens"]),
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": cached,
    })
}

/// An OpenAI `chat.completion` as an Anthropic message.
pub fn message(completion: &Json) -> Json {
    let choice = &completion["choices"][0];
    let reply = &choice["message"];
    let mut content = Vec::new();
    if let Some(thinking) = reply["reasoning_content"]
        .as_str()
        .filter(|t| !t.is_empty())
    {
        content.push(json!({"type": "thinking", "thinking": thinking, "signature": ""}));
    }
    if let Some(text) = reply["content"].as_str().filter(|t| !t.is_empty()) {
        content.push(json!({"type": "text", "text": text}));
    }
    for call in reply["tool_calls"].as_array().into_iter().flatten() {
        let input = call["function"]["arguments"]
            .as_str()
            .and_then(|a| serde_json::from_str::<Json>(a).ok())
            .unwrap_or_else(|| json!({}));
        content.push(json!({
            "type": "tool_use",
            "id": call["id"],
            "name": call["function"]["name"],
            "input": input,
        }));
    }
    json!({
        "id": completion["id"],
        "type": "message",
        "role": "assistant",
        "model": completion["model"],
        "content": content,
        "stop_reason": stop_reason(choice["finish_reason"].as_str().unwrap_or("stop")),
        "stop_sequence": null,
        "usage": usage(&completion["usage"]),
    })
}

/// An error body (OpenAI's shape) as Anthropic's, for a reply with `status`.
pub fn error(status: u16, openai: &Json) -> Json {
    let kind = match status {
        400 | 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ => "api_error",
    };
    let message = openai["error"]["message"]
        .as_str()
        .unwrap_or("the request failed");
    json!({"type": "error", "error": {"type": kind, "message": message}})
}

/// Which content block is open in the stream being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Nothing,
    Text,
    Thinking,
    /// A tool use, for OpenAI's tool-call index.
    Tool(u64),
}

/// Writes Anthropic stream events for the OpenAI chunks of one stream.
#[derive(Debug)]
pub struct EventWriter {
    started: bool,
    open: Open,
    index: i64,
    stop_reason: &'static str,
    usage: Json,
}

impl Default for EventWriter {
    fn default() -> Self {
        Self {
            started: false,
            open: Open::Nothing,
            index: -1,
            stop_reason: "end_turn",
            usage: json!({}),
        }
    }
}

fn event(kind: &str, data: &Json) -> String {
    format!("event: {kind}\ndata: {data}\n\n")
}

impl EventWriter {
    fn open_block(&mut self, open: Open, block: Json, out: &mut String) {
        self.close_block(out);
        self.index += 1;
        self.open = open;
        out.push_str(&event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": self.index, "content_block": block}),
        ));
    }

    fn close_block(&mut self, out: &mut String) {
        if self.open != Open::Nothing {
            out.push_str(&event(
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": self.index}),
            ));
            self.open = Open::Nothing;
        }
    }

    fn delta(&self, delta: Json, out: &mut String) {
        out.push_str(&event(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": self.index, "delta": delta}),
        ));
    }

    /// Writes the events for one OpenAI chunk (or in-band error) to `out`.
    pub fn chunk(&mut self, chunk: &Json, out: &mut String) {
        if chunk.get("error").is_some() && chunk.get("choices").is_none() {
            let status = chunk["error"]["code"]
                .as_str()
                .and_then(|c| c.parse().ok())
                .unwrap_or(500);
            out.push_str(&event("error", &error(status, chunk)));
            return;
        }
        if !self.started {
            self.started = true;
            out.push_str(&event(
                "message_start",
                &json!({"type": "message_start", "message": {
                    "id": chunk["id"], "type": "message", "role": "assistant",
                    "model": chunk["model"], "content": [], "stop_reason": null,
                    "stop_sequence": null, "usage": {"input_tokens": 0, "output_tokens": 0},
                }}),
            ));
        }
        if let Some(u) = chunk.get("usage").filter(|u| u.is_object()) {
            self.usage = u.clone();
        }
        let Some(choice) = chunk["choices"].get(0) else {
            return;
        };
        let delta = &choice["delta"];
        if let Some(t) = delta["reasoning_content"]
            .as_str()
            .filter(|t| !t.is_empty())
        {
            if self.open != Open::Thinking {
                self.open_block(
                    Open::Thinking,
                    json!({"type": "thinking", "thinking": ""}),
                    out,
                );
            }
            self.delta(json!({"type": "thinking_delta", "thinking": t}), out);
        }
        if let Some(t) = delta["content"].as_str().filter(|t| !t.is_empty()) {
            if self.open != Open::Text {
                self.open_block(Open::Text, json!({"type": "text", "text": ""}), out);
            }
            self.delta(json!({"type": "text_delta", "text": t}), out);
        }
        for call in delta["tool_calls"].as_array().into_iter().flatten() {
            let at = call["index"].as_u64().unwrap_or(0);
            if self.open != Open::Tool(at) {
                let block = json!({"type": "tool_use", "id": call["id"], "name": call["function"]["name"], "input": {}});
                self.open_block(Open::Tool(at), block, out);
            }
            if let Some(args) = call["function"]["arguments"]
                .as_str()
                .filter(|a| !a.is_empty())
            {
                self.delta(
                    json!({"type": "input_json_delta", "partial_json": args}),
                    out,
                );
            }
        }
        if let Some(finish) = choice["finish_reason"].as_str() {
            self.stop_reason = stop_reason(finish);
        }
    }

    /// Writes the closing events, after OpenAI's `[DONE]`.
    pub fn finish(&mut self, out: &mut String) {
        self.close_block(out);
        let u = usage(&self.usage);
        out.push_str(&event(
            "message_delta",
            &json!({"type": "message_delta",
                "delta": {"stop_reason": self.stop_reason, "stop_sequence": null},
                "usage": {"output_tokens": u["output_tokens"], "input_tokens": u["input_tokens"]}}),
        ));
        out.push_str(&event("message_stop", &json!({"type": "message_stop"})));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_messages_request_becomes_the_openai_request_it_means() {
        let body: Map<String, Json> = serde_json::from_value(json!({
            "model": "claude",
            "system": [{"type": "text", "text": "Be brief."}],
            "max_tokens": 100,
            "stop_sequences": ["END"],
            "metadata": {"user_id": "u-1"},
            "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
            "thinking": {"type": "enabled", "budget_tokens": 2000},
            "messages": [
                {"role": "user", "content": "Weather?"},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {"city": "Paris"}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "content": "sunny"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAA"}}
                ]}
            ]
        }))
        .unwrap();
        assert_eq!(
            Json::Object(chat_request(&body)),
            json!({
                "model": "claude",
                "max_tokens": 100,
                "stop": ["END"],
                "user": "u-1",
                "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
                "tool_choice": "required",
                "parallel_tool_calls": false,
                "reasoning_effort": "medium",
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "Weather?"},
                    {"role": "assistant", "content": "Checking.", "tool_calls": [
                        {"id": "t1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}
                    ]},
                    {"role": "tool", "tool_call_id": "t1", "content": "sunny"},
                    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}}]}
                ]
            })
        );
    }

    #[test]
    fn a_completion_with_a_tool_call_becomes_a_message() {
        let got = message(&json!({
            "id": "chatcmpl-1", "model": "gpt-x",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": "On it.",
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]
            }}],
            "usage": {"prompt_tokens": 30, "completion_tokens": 7, "total_tokens": 37, "prompt_tokens_details": {"cached_tokens": 10}}
        }));
        assert_eq!(
            got,
            json!({
                "id": "chatcmpl-1", "type": "message", "role": "assistant", "model": "gpt-x",
                "content": [
                    {"type": "text", "text": "On it."},
                    {"type": "tool_use", "id": "c1", "name": "f", "input": {"a": 1}}
                ],
                "stop_reason": "tool_use", "stop_sequence": null,
                "usage": {"input_tokens": 20, "output_tokens": 7, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 10}
            })
        );
    }

    #[test]
    fn openai_chunks_become_anthropic_events_in_order() {
        let mut w = EventWriter::default();
        let mut out = String::new();
        let chunk = |delta: Json, finish: Json| json!({"id": "c", "model": "m", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        w.chunk(
            &chunk(json!({"role": "assistant", "content": ""}), Json::Null),
            &mut out,
        );
        w.chunk(&chunk(json!({"content": "Hi"}), Json::Null), &mut out);
        w.chunk(
            &chunk(
                json!({"tool_calls": [{"index": 0, "id": "t", "function": {"name": "f", "arguments": ""}}]}),
                Json::Null,
            ),
            &mut out,
        );
        w.chunk(
            &chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}),
                Json::Null,
            ),
            &mut out,
        );
        w.chunk(&chunk(json!({}), json!("tool_calls")), &mut out);
        w.chunk(
            &json!({"id": "c", "model": "m", "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 3}}),
            &mut out,
        );
        w.finish(&mut out);
        let kinds: Vec<&str> = out
            .lines()
            .filter_map(|l| l.strip_prefix("event: "))
            .collect();
        assert_eq!(
            kinds,
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        assert!(out.contains(r#""stop_reason":"tool_use""#), "{out}");
        assert!(out.contains(r#""output_tokens":3"#), "{out}");
        assert!(out.contains(r#""partial_json":"{}""#), "{out}");
    }
}
