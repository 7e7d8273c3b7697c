//! Google AI Studio's Gemini API (`generateContent`): OpenAI chat requests translated to it
//! (this module), its replies (`reply`) and its SSE streams (`stream`) translated back, and
//! embeddings (`batchEmbedContents`).

pub mod reply;
pub mod stream;

use crate::providers::translate::Params;
use serde_json::{json, Map, Value as Json};

use crate::providers::translate::push_turn;

/// OpenAI chat parameters with no Gemini counterpart.
pub const UNSUPPORTED: &[&str] = &[
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
];

/// OpenAI parameters that become `generationConfig` fields, with their Gemini names.
const GENERATION: &[(&str, &str)] = &[
    ("temperature", "temperature"),
    ("top_p", "topP"),
    ("top_k", "topK"),
    ("max_tokens", "maxOutputTokens"),
    ("max_completion_tokens", "maxOutputTokens"),
    ("n", "candidateCount"),
    ("presence_penalty", "presencePenalty"),
    ("frequency_penalty", "frequencyPenalty"),
    ("seed", "seed"),
];

/// Request fields translated rather than passed through.
const TRANSLATED: &[&str] = &[
    "messages",
    "stop",
    "stream",
    "stream_options",
    "tools",
    "tool_choice",
    "response_format",
    "user",
    "reasoning_effort",
];

/// The first unsupported OpenAI parameter among `fields` or `defaults`, unless in `skip`.
pub fn first_unsupported(
    fields: &Map<String, Json>,
    defaults: &Map<String, Json>,
    skip: &[String],
) -> Option<&'static str> {
    crate::providers::translate::first_present(UNSUPPORTED, fields, defaults, skip)
}

/// The `generateContent` request for an OpenAI chat request's `fields`, with the deployment's
/// `defaults` under them; unsupported parameters and `skip` are left out.
pub fn chat_request(
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
    let mut out = Map::new();
    let (system, contents) = contents(get("messages").and_then(Json::as_array));
    out.insert("contents".into(), Json::Array(contents));
    if !system.is_empty() {
        out.insert("systemInstruction".into(), json!({"parts": system}));
    }
    let mut config = Map::new();
    for (openai, gemini) in GENERATION {
        if let Some(v) = get(openai) {
            config.insert((*gemini).into(), v.clone());
        }
    }
    match get("stop") {
        Some(Json::String(s)) => {
            config.insert("stopSequences".into(), json!([s]));
        }
        Some(Json::Array(list)) if !list.is_empty() => {
            config.insert("stopSequences".into(), Json::Array(list.clone()));
        }
        _ => {}
    }
    if let Some(format) = get("response_format") {
        match format["type"].as_str() {
            Some("json_object") => {
                config.insert("responseMimeType".into(), json!("application/json"));
            }
            Some("json_schema") => {
                config.insert("responseMimeType".into(), json!("application/json"));
                if let Some(schema) = format["json_schema"].get("schema") {
                    config.insert("responseJsonSchema".into(), schema.clone());
                }
            }
            _ => {}
        }
    }
    if let Some(effort) = get("reasoning_effort").and_then(Json::as_str) {
        let budget = match effort {
            "low" => 1024,
            "medium" => 2048,
            "high" => 4096,
            _ => 0,
        };
        config.insert(
            "thinkingConfig".into(),
            json!({"thinkingBudget": budget, "includeThoughts": budget > 0}),
        );
    }
    if !config.is_empty() {
        out.insert("generationConfig".into(), Json::Object(config));
    }
    if let Some(tools) = get("tools").and_then(Json::as_array) {
        let declarations: Vec<Json> = tools.iter().map(function_declaration).collect();
        out.insert(
            "tools".into(),
            json!([{"functionDeclarations": declarations}]),
        );
    }
    if let Some(choice) = get("tool_choice") {
        out.insert("toolConfig".into(), tool_config(choice));
    }
    // Anything else that is not OpenAI's (safetySettings, cachedContent ...) passes through.
    for (k, v) in fields.iter().chain(defaults.iter()) {
        let k = k.as_str();
        if TRANSLATED.contains(&k)
            || UNSUPPORTED.contains(&k)
            || GENERATION.iter().any(|(o, _)| *o == k)
            || skipped(k)
            || out.contains_key(k)
        {
            continue;
        }
        out.insert(k.to_owned(), v.clone());
    }
    Json::Object(out)
}

/// OpenAI messages as Gemini's system parts and alternating user/model contents.
fn contents(list: Option<&Vec<Json>>) -> (Vec<Json>, Vec<Json>) {
    let mut system = Vec::new();
    let mut out: Vec<Json> = Vec::new();
    // Tool results name their function; Gemini wants the name, OpenAI gives the call's id.
    let mut call_names: Vec<(String, String)> = Vec::new();
    for m in list.into_iter().flatten() {
        let role = m.get("role").and_then(Json::as_str).unwrap_or("user");
        let content = m.get("content");
        match role {
            "system" | "developer" => system.extend(parts(content)),
            "assistant" => {
                let mut p = parts(content);
                for call in m["tool_calls"].as_array().into_iter().flatten() {
                    let name = call["function"]["name"].as_str().unwrap_or_default();
                    if let Some(id) = call["id"].as_str() {
                        call_names.push((id.to_owned(), name.to_owned()));
                    }
                    let args = call["function"]["arguments"]
                        .as_str()
                        .and_then(|a| serde_json::from_str::<Json>(a).ok())
                        .unwrap_or_else(|| json!({}));
                    p.push(json!({"functionCall": {"name": name, "args": args}}));
                }
                push_turn(&mut out, "model", "parts", p);
            }
            "tool" | "function" => {
                let id = m["tool_call_id"].as_str().unwrap_or_default();
                let name = call_names
                    .iter()
                    .find(|(i, _)| i == id)
                    .map(|(_, n)| n.as_str())
                    .or_else(|| m["name"].as_str())
                    .unwrap_or_default();
                let text = match content {
                    Some(Json::String(s)) => Json::from(s.as_str()),
                    Some(other) => other.clone(),
                    None => Json::Null,
                };
                let part =
                    json!({"functionResponse": {"name": name, "response": {"content": text}}});
                push_turn(&mut out, "user", "parts", vec![part]);
            }
            _ => push_turn(&mut out, "user", "parts", parts(content)),
        }
    }
    (system, out)
}

/// Text and image parts of a message's content.
fn parts(content: Option<&Json>) -> Vec<Json> {
    match content {
        Some(Json::String(s)) if !s.is_empty() => vec![json!({"text": s})],
        Some(Json::Array(list)) => list
            .iter()
            .filter_map(|p| match p["type"].as_str() {
                Some("text") => p["text"]
                    .as_str()
                    .filter(|t| !t.is_empty())
                    .map(|t| json!({"text": t})),
                Some("image_url") => {
                    let url = crate::providers::translate::image_url(p)?;
                    Some(image(url))
                }
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn image(url: &str) -> Json {
    match crate::providers::translate::data_url(url) {
        Some((mime, data)) => json!({"inline_data": {"mime_type": mime, "data": data}}),
        None => {
            let mime = match url
                .rsplit('.')
                .next()
                .map(str::to_ascii_lowercase)
                .as_deref()
            {
                Some("png") => "image/png",
                Some("gif") => "image/gif",
                Some("webp") => "image/webp",
                Some("pdf") => "application/pdf",
                _ => "image/jpeg",
            };
            json!({"file_data": {"mime_type": mime, "file_uri": url}})
        }
    }
}

fn function_declaration(tool: &Json) -> Json {
    let f = tool.get("function").unwrap_or(tool);
    let mut d = json!({"name": f["name"]});
    if let Some(desc) = f.get("description") {
        d["description"] = desc.clone();
    }
    if let Some(params) = f.get("parameters") {
        d["parameters"] = params.clone();
    }
    d
}

fn tool_config(choice: &Json) -> Json {
    let config = match choice {
        Json::String(s) => match s.as_str() {
            "required" => json!({"mode": "ANY"}),
            "none" => json!({"mode": "NONE"}),
            _ => json!({"mode": "AUTO"}),
        },
        other => match other["function"]["name"].as_str() {
            Some(name) => json!({"mode": "ANY", "allowedFunctionNames": [name]}),
            None => json!({"mode": "AUTO"}),
        },
    };
    json!({"functionCallingConfig": config})
}

/// The `batchEmbedContents` request for an OpenAI embeddings request's `input`.
pub fn embed_request(model: &str, fields: &Map<String, Json>) -> Json {
    let texts: Vec<&str> = match fields.get("input") {
        Some(Json::String(s)) => vec![s.as_str()],
        Some(Json::Array(items)) => items.iter().filter_map(Json::as_str).collect(),
        _ => Vec::new(),
    };
    let dims = fields.get("dimensions").cloned();
    let requests: Vec<Json> = texts
        .iter()
        .map(|t| {
            let mut r =
                json!({"model": format!("models/{model}"), "content": {"parts": [{"text": t}]}});
            if let Some(d) = &dims {
                r["outputDimensionality"] = d.clone();
            }
            r
        })
        .collect();
    json!({"requests": requests})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Json {
        let path = format!(
            "{}/tests/fixtures/gemini/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn a_conversation_with_system_images_tools_and_results_translates_as_recorded() {
        let case = fixture("request_tools_images.json");
        let fields = case["openai"].as_object().unwrap().clone();
        assert_eq!(chat_request(&fields, &Map::new(), &[]), case["gemini"]);
    }

    #[test]
    fn tool_choice_and_response_format_map_to_their_gemini_forms() {
        assert_eq!(
            tool_config(&json!({"type": "function", "function": {"name": "f"}})),
            json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f"]}})
        );
        let fields: Map<String, Json> = serde_json::from_value(json!({
            "messages": [{"role": "user", "content": "hi"}],
            "response_format": {"type": "json_object"},
            "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
        }))
        .unwrap();
        let got = chat_request(&fields, &Map::new(), &[]);
        assert_eq!(
            got["generationConfig"],
            json!({"responseMimeType": "application/json"})
        );
        assert_eq!(got["safetySettings"][0]["threshold"], "BLOCK_NONE");
    }

    #[test]
    fn embeddings_are_one_request_per_input() {
        let fields: Map<String, Json> =
            serde_json::from_value(json!({"input": ["a", "b"]})).unwrap();
        assert_eq!(
            embed_request("text-embedding-004", &fields),
            json!({"requests": [
                {"model": "models/text-embedding-004", "content": {"parts": [{"text": "a"}]}},
                {"model": "models/text-embedding-004", "content": {"parts": [{"text": "b"}]}}
            ]})
        );
    }
}
