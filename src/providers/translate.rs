//! Chat and legacy completions translated into each other, requests, replies and stream chunks.

use serde_json::{json, Map, Value as Json};

/// Text of one message's `content`: a string, or the text parts of a list.
pub fn content_text(content: &Json) -> String {
    match content {
        Json::String(s) => s.clone(),
        Json::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Json::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// A prompt (string or list of strings) as one string.
pub fn prompt_text(prompt: &Json) -> String {
    match prompt {
        Json::String(s) => s.clone(),
        Json::Array(items) => items
            .iter()
            .filter_map(Json::as_str)
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// `/completions` fields as a chat request: the prompt becomes one user message.
pub fn completion_request_to_chat(fields: &Map<String, Json>) -> Map<String, Json> {
    let mut out = Map::with_capacity(fields.len());
    for (k, v) in fields {
        match k.as_str() {
            "prompt" => {
                out.insert(
                    "messages".into(),
                    json!([{"role": "user", "content": prompt_text(v)}]),
                );
            }
            // Completion-only parameters have no chat meaning.
            "echo" | "suffix" | "best_of" => {}
            "logprobs" => {
                if let Some(n) = v.as_u64() {
                    out.insert("logprobs".into(), Json::Bool(true));
                    out.insert("top_logprobs".into(), Json::from(n));
                }
            }
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    out
}

/// Chat parameters the legacy completions API cannot take.
pub const CHAT_ONLY_PARAMS: &[&str] = &[
    "tools",
    "tool_choice",
    "functions",
    "function_call",
    "response_format",
    "parallel_tool_calls",
];

/// Appends `items` as a `role` turn under `key` (`content` or Gemini's `parts`), merged into
/// the last turn when it has the same role: providers that want roles to alternate.
pub fn push_turn(out: &mut Vec<Json>, role: &str, key: &str, items: Vec<Json>) {
    if items.is_empty() {
        return;
    }
    if let Some(last) = out.last_mut() {
        if last["role"] == role {
            if let Some(existing) = last[key].as_array_mut() {
                existing.extend(items);
                return;
            }
        }
    }
    let mut turn = Map::new();
    turn.insert("role".into(), Json::from(role));
    turn.insert(key.into(), Json::Array(items));
    out.push(Json::Object(turn));
}

/// The URL of an OpenAI `image_url` content part (given as `{"url": ...}` or as the string).
pub fn image_url(part: &Json) -> Option<&str> {
    part.get("image_url")
        .and_then(|i| i.get("url").or(Some(i)))
        .and_then(Json::as_str)
}

/// A `data:` URL's media type and base64 payload (`None` for any other URL).
pub fn data_url(url: &str) -> Option<(&str, &str)> {
    url.strip_prefix("data:")?.split_once(";base64,")
}

/// A request's parameters as an adapter reads them: the request's own fields over the
/// deployment's defaults, without those being dropped.
#[derive(Clone, Copy)]
pub struct Params<'a> {
    /// The request's fields.
    pub fields: &'a Map<String, Json>,
    /// The deployment's default parameters.
    pub defaults: &'a Map<String, Json>,
    /// Parameters dropped (`drop_params`, `additional_drop_params`).
    pub skip: &'a [String],
}

impl<'a> Params<'a> {
    /// Whether `key` is dropped.
    pub fn skipped(&self, key: &str) -> bool {
        self.skip.iter().any(|s| s == key)
    }

    /// `key`'s value, from the request else the defaults, unless dropped.
    pub fn get(&self, key: &str) -> Option<&'a Json> {
        if self.skipped(key) {
            return None;
        }
        self.fields.get(key).or_else(|| self.defaults.get(key))
    }
}

/// The first of `params` the request (or the deployment's `defaults`) sets, unless in `skip`:
/// the parameter an adapter names when it refuses one it has no counterpart for.
pub fn first_present(
    params: &[&'static str],
    fields: &Map<String, Json>,
    defaults: &Map<String, Json>,
    skip: &[String],
) -> Option<&'static str> {
    params.iter().copied().find(|p| {
        (fields.contains_key(*p) || defaults.contains_key(*p)) && !skip.iter().any(|s| s == p)
    })
}

/// `add_function_to_prompt`: for a deployment that cannot take tools, the request's `tools`
/// (or legacy `functions`) are described in a system message instead, asking for a JSON call,
/// and the tool fields are left out.
pub fn tools_into_prompt(fields: &Map<String, Json>) -> Map<String, Json> {
    let declared: Vec<&Json> = fields
        .get("tools")
        .and_then(Json::as_array)
        .map(|tools| {
            tools
                .iter()
                .map(|t| t.get("function").unwrap_or(t))
                .collect()
        })
        .or_else(|| {
            fields
                .get("functions")
                .and_then(Json::as_array)
                .map(|f| f.iter().collect())
        })
        .unwrap_or_default();
    let mut out: Map<String, Json> = fields
        .iter()
        .filter(|(k, _)| !CHAT_ONLY_PARAMS.contains(&k.as_str()) || k.as_str() == "response_format")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if declared.is_empty() {
        return out;
    }
    let mut prompt = String::from(
        "You can call these functions. To call one, answer with JSON only, shaped as \
         {\"name\": \"<function name>\", \"arguments\": {<argument name>: <value>}}.\n",
    );
    for f in declared {
        prompt.push_str(&f.to_string());
        prompt.push('\n');
    }
    let mut messages = out
        .get("messages")
        .and_then(Json::as_array)
        .cloned()
        .unwrap_or_default();
    match messages.first_mut() {
        Some(first) if first["role"] == "system" => {
            let existing = content_text(&first["content"]);
            first["content"] = Json::from(format!("{existing}\n\n{prompt}"));
        }
        _ => messages.insert(0, serde_json::json!({"role": "system", "content": prompt})),
    }
    out.insert("messages".into(), Json::Array(messages));
    out
}

/// Replaces float embeddings by base64 of little-endian f32s, as OpenAI's `encoding_format:
/// "base64"` returns them; `None` when there was nothing to encode.
pub fn embeddings_as_base64(body: &[u8]) -> Option<bytes::Bytes> {
    use base64::Engine;
    let mut reply: Json = serde_json::from_slice(body).ok()?;
    let mut changed = false;
    for item in reply.get_mut("data")?.as_array_mut()? {
        let Some(Json::Array(values)) = item.get("embedding") else {
            continue;
        };
        let mut raw = Vec::with_capacity(values.len() * 4);
        for v in values {
            raw.extend_from_slice(&(v.as_f64()? as f32).to_le_bytes());
        }
        item["embedding"] = Json::String(base64::engine::general_purpose::STANDARD.encode(raw));
        changed = true;
    }
    if !changed {
        return None;
    }
    serde_json::to_vec(&reply).ok().map(bytes::Bytes::from)
}

/// Chat fields as a `/completions` request: the messages' text joined into the prompt.
pub fn chat_request_to_completion(fields: &Map<String, Json>) -> Map<String, Json> {
    let mut out = Map::with_capacity(fields.len());
    for (k, v) in fields {
        match k.as_str() {
            "messages" => {
                let prompt = v
                    .as_array()
                    .map(|msgs| {
                        msgs.iter()
                            .map(|m| m.get("content").map(content_text).unwrap_or_default())
                            .collect::<Vec<_>>()
                            .join("\n")
                    })
                    .unwrap_or_default();
                out.insert("prompt".into(), Json::String(prompt));
            }
            "tools"
            | "tool_choice"
            | "functions"
            | "function_call"
            | "response_format"
            | "parallel_tool_calls" => {}
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    out
}

fn carry(src: &Json, out: &mut Map<String, Json>, keys: &[&str]) {
    for k in keys {
        if let Some(v) = src.get(*k) {
            out.insert((*k).into(), v.clone());
        }
    }
}

/// A `chat.completion` reply as a `text_completion` one.
pub fn chat_reply_to_completion(reply: &Json) -> Json {
    let mut out = Map::new();
    carry(
        reply,
        &mut out,
        &["id", "created", "model", "system_fingerprint"],
    );
    out.insert("object".into(), Json::from("text_completion"));
    let choices: Vec<Json> = reply
        .get("choices")
        .and_then(Json::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    let text = c
                        .pointer("/message/content")
                        .or_else(|| c.pointer("/delta/content"))
                        .and_then(Json::as_str)
                        .unwrap_or_default();
                    json!({
                        "text": text,
                        "index": c.get("index").cloned().unwrap_or(Json::from(0)),
                        "logprobs": null,
                        "finish_reason": c.get("finish_reason").cloned().unwrap_or(Json::Null),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    out.insert("choices".into(), Json::Array(choices));
    carry(reply, &mut out, &["usage"]);
    Json::Object(out)
}

/// A `text_completion` reply (or chunk, when `chunk`) as a chat one.
pub fn completion_reply_to_chat(reply: &Json, chunk: bool) -> Json {
    let mut out = Map::new();
    carry(
        reply,
        &mut out,
        &["id", "created", "model", "system_fingerprint"],
    );
    let object = if chunk {
        "chat.completion.chunk"
    } else {
        "chat.completion"
    };
    out.insert("object".into(), Json::from(object));
    let choices: Vec<Json> = reply
        .get("choices")
        .and_then(Json::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    let text = c.get("text").cloned().unwrap_or(Json::from(""));
                    let index = c.get("index").cloned().unwrap_or(Json::from(0));
                    let finish = c.get("finish_reason").cloned().unwrap_or(Json::Null);
                    if chunk {
                        json!({"index": index, "delta": {"content": text}, "finish_reason": finish})
                    } else {
                        json!({"index": index, "message": {"role": "assistant", "content": text}, "finish_reason": finish})
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    out.insert("choices".into(), Json::Array(choices));
    carry(reply, &mut out, &["usage"]);
    Json::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tools_become_a_system_prompt_and_leave_the_request() {
        let fields: Map<String, Json> = serde_json::from_value(serde_json::json!({
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather?"}],
            "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
            "tool_choice": "auto",
            "temperature": 0.1,
        }))
        .unwrap();
        let out = tools_into_prompt(&fields);
        assert!(out.get("tools").is_none() && out.get("tool_choice").is_none());
        assert_eq!(out["temperature"], 0.1);
        let system = out["messages"][0]["content"].as_str().unwrap();
        assert!(
            system.starts_with("Be brief.\n\nYou can call these functions."),
            "{system}"
        );
        assert!(system.contains(r#""name":"get_weather""#), "{system}");
        assert_eq!(out["messages"][1]["content"], "Weather?");
    }

    #[test]
    fn chat_reply_becomes_a_text_completion() {
        let chat = json!({"id":"c1","object":"chat.completion","created":1,"model":"m",
            "choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}],
            "usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}});
        assert_eq!(
            chat_reply_to_completion(&chat),
            json!({"id":"c1","created":1,"model":"m","object":"text_completion",
                "choices":[{"text":"hello","index":0,"logprobs":null,"finish_reason":"stop"}],
                "usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}})
        );
    }

    #[test]
    fn completion_chunk_becomes_a_chat_chunk() {
        let c = json!({"id":"x","object":"text_completion","created":2,"model":"m","choices":[{"text":"hi","index":0,"finish_reason":null}]});
        assert_eq!(
            completion_reply_to_chat(&c, true),
            json!({"id":"x","created":2,"model":"m","object":"chat.completion.chunk",
                "choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]})
        );
    }

    #[test]
    fn float_embeddings_become_little_endian_f32_base64() {
        let body = br#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[1.0,-2.0]}]}"#;
        let out: Json = serde_json::from_slice(&embeddings_as_base64(body).unwrap()).unwrap();
        // 1.0f32 = 00 00 80 3f, -2.0f32 = 00 00 00 c0
        assert_eq!(out["data"][0]["embedding"], "AACAPwAAAMA=");
        let already = br#"{"data":[{"embedding":"AACAPw=="}]}"#;
        assert!(embeddings_as_base64(already).is_none());
    }

    #[test]
    fn messages_join_into_a_prompt() {
        let f: Map<String, Json> = serde_json::from_value(json!({"messages":[
            {"role":"system","content":"be brief"},
            {"role":"user","content":[{"type":"text","text":"hi"}]}], "tools": []}))
        .unwrap();
        assert_eq!(
            Json::Object(chat_request_to_completion(&f)),
            json!({"prompt":"be brief\nhi"})
        );
    }
}
