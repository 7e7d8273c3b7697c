//! Ollama's native API: OpenAI requests translated to `/api/chat`, `/api/generate` and
//! `/api/embed` (this module), its replies (`reply`) and NDJSON streams (`stream`) translated back.

pub mod reply;
pub mod stream;

use crate::providers::translate::Params;
use serde_json::{json, Map, Value as Json};

use super::kind::{Flavor, OLLAMA_CHAT};

/// The Ollama endpoint a call goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `/api/chat`: messages, images and tools (`ollama_chat/`).
    Chat,
    /// `/api/generate`: one prompt (`ollama/`); chat messages are flattened into it.
    Generate,
    /// `/api/embed`.
    Embed,
}

impl Api {
    /// The endpoint serving a call to `flavor`: embeddings, else chat or generate by prefix.
    pub fn for_call(flavor: &Flavor, embedding: bool) -> Self {
        if embedding {
            Self::Embed
        } else if flavor.prefix == OLLAMA_CHAT.prefix {
            Self::Chat
        } else {
            Self::Generate
        }
    }

    /// The path under the base URL.
    pub fn route(self) -> &'static str {
        match self {
            Self::Chat => "/api/chat",
            Self::Generate => "/api/generate",
            Self::Embed => "/api/embed",
        }
    }
}

/// A new OpenAI completion id (`chatcmpl-<uuid>`): Ollama's replies carry none.
pub fn completion_id() -> String {
    format!("chatcmpl-{}", crate::providers::random_uuid().simple())
}

/// The id of the `n`-th tool call of the reply `reply_id`: Ollama gives tool calls no id, and
/// clients send the id back with the tool's result, so it must not repeat across replies.
pub fn tool_call_id(reply_id: &str, n: usize) -> String {
    let unique = reply_id.strip_prefix("chatcmpl-").unwrap_or(reply_id);
    format!("call_{unique}_{n}")
}

/// OpenAI parameters Ollama has no counterpart for: dropped under `drop_params`, else the
/// request is refused naming the first.
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
    "web_search_options",
];

/// What `/api/generate` cannot take on top of [`UNSUPPORTED`]: tools need `ollama_chat/`.
const GENERATE_UNSUPPORTED: &[&str] = &["tools"];

/// OpenAI fields translated (or deliberately not forwarded) rather than passed into `options`.
const TRANSLATED: &[&str] = &[
    "messages",
    "stream",
    "stream_options",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "response_format",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "reasoning_effort",
    "user",
    "metadata",
    "input",
    "encoding_format",
    "dimensions",
    "options",
];

/// Sampling parameters OpenAI and Ollama share, moved into `options` under the same name.
const SAME_NAME_OPTIONS: &[&str] = &[
    "temperature",
    "top_p",
    "top_k",
    "seed",
    "frequency_penalty",
    "presence_penalty",
];

/// Ollama's own top-level request fields, passed through as given; any other unknown field is
/// a model option (`num_ctx`, `repeat_penalty` ...), as LiteLLM sends them.
const TOP_LEVEL: &[&str] = &[
    "format",
    "keep_alive",
    "think",
    "truncate",
    "system",
    "template",
    "raw",
    "suffix",
    "context",
    "shift",
];

/// The first parameter among `fields` (or the deployment's `defaults`) that `api` cannot
/// take; `skip` names fields never forwarded.
pub fn first_unsupported(
    api: Api,
    fields: &Map<String, Json>,
    defaults: &Map<String, Json>,
    skip: &[String],
) -> Option<&'static str> {
    let extra = match api {
        Api::Chat => &[][..],
        Api::Generate => GENERATE_UNSUPPORTED,
        Api::Embed => return None,
    };
    use crate::providers::translate::first_present;
    first_present(UNSUPPORTED, fields, defaults, skip)
        .or_else(|| first_present(extra, fields, defaults, skip))
}

/// The request body for `api` from an OpenAI request's `fields` (no `model`), with the
/// deployment's `defaults` under them. Unsupported parameters and `skip` are left out. The
/// error is a bad request's message (an image Ollama cannot take).
pub fn request(
    api: Api,
    model: &str,
    fields: &Map<String, Json>,
    defaults: &Map<String, Json>,
    stream: bool,
    skip: &[String],
) -> Result<Json, String> {
    let params = Params {
        fields,
        defaults,
        skip,
    };
    let skipped = |k: &str| params.skipped(k);
    let get = |k: &str| params.get(k).filter(|v| !v.is_null());
    let mut out = Map::new();
    out.insert("model".into(), Json::from(model));
    let messages = get("messages").and_then(Json::as_array);
    match api {
        Api::Chat => {
            out.insert("messages".into(), Json::Array(chat_messages(messages)?));
        }
        Api::Generate => {
            let (prompt, images) = generate_prompt(messages)?;
            out.insert("prompt".into(), Json::from(prompt));
            if !images.is_empty() {
                out.insert("images".into(), Json::from(images));
            }
        }
        Api::Embed => {
            out.insert("input".into(), get("input").cloned().unwrap_or(Json::Null));
            if let Some(d) = get("dimensions") {
                out.insert("dimensions".into(), d.clone());
            }
        }
    }
    if api != Api::Embed {
        out.insert("stream".into(), Json::Bool(stream));
        let tools_off = get("tool_choice").and_then(Json::as_str) == Some("none");
        if let (Api::Chat, Some(tools), false) = (api, get("tools"), tools_off) {
            out.insert("tools".into(), tools.clone());
        }
        if let Some(format) = get("response_format").and_then(format) {
            out.insert("format".into(), format);
        }
        if let Some(effort) = get("reasoning_effort").and_then(Json::as_str) {
            out.insert("think".into(), Json::Bool(effort != "none"));
        }
    }
    let mut options = Map::new();
    if api != Api::Embed {
        for name in SAME_NAME_OPTIONS {
            if let Some(v) = get(name) {
                options.insert((*name).into(), v.clone());
            }
        }
        if let Some(max) = get("max_tokens").or_else(|| get("max_completion_tokens")) {
            options.insert("num_predict".into(), max.clone());
        }
        match get("stop") {
            Some(Json::String(s)) => {
                options.insert("stop".into(), json!([s]));
            }
            Some(list @ Json::Array(_)) => {
                options.insert("stop".into(), list.clone());
            }
            _ => {}
        }
    }
    for (k, v) in fields.iter().chain(defaults.iter()) {
        let k = k.as_str();
        if skipped(k)
            || v.is_null()
            || TRANSLATED.contains(&k)
            || UNSUPPORTED.contains(&k)
            || SAME_NAME_OPTIONS.contains(&k)
        {
            continue;
        }
        if TOP_LEVEL.contains(&k) {
            out.entry(k).or_insert_with(|| v.clone());
        } else {
            options.entry(k).or_insert_with(|| v.clone());
        }
    }
    // Options the client wrote in Ollama's own shape win over translated ones.
    if let Some(given) = get("options").and_then(Json::as_object) {
        for (k, v) in given {
            options.insert(k.clone(), v.clone());
        }
    }
    if !options.is_empty() {
        out.insert("options".into(), Json::Object(options));
    }
    Ok(Json::Object(out))
}

/// OpenAI's `response_format` as Ollama's `format`: `"json"` or a JSON schema.
fn format(response_format: &Json) -> Option<Json> {
    match response_format.get("type").and_then(Json::as_str)? {
        "json_object" => Some(Json::from("json")),
        "json_schema" => Some(
            response_format
                .get("json_schema")
                .and_then(|s| s.get("schema"))
                .cloned()
                .unwrap_or_else(|| Json::from("json")),
        ),
        _ => None,
    }
}

/// A message's text: a string, or its text parts joined (as LiteLLM joins them).
fn text(content: Option<&Json>) -> String {
    match content {
        Some(Json::String(s)) => s.clone(),
        Some(Json::Array(parts)) => parts
            .iter()
            .filter(|p| p.get("type").and_then(Json::as_str) == Some("text"))
            .filter_map(|p| p.get("text").and_then(Json::as_str))
            .collect(),
        _ => String::new(),
    }
}

/// The images of a message's parts as the bare base64 Ollama takes.
fn images(content: Option<&Json>) -> Result<Vec<String>, String> {
    let Some(Json::Array(parts)) = content else {
        return Ok(Vec::new());
    };
    parts
        .iter()
        .filter(|p| p.get("type").and_then(Json::as_str) == Some("image_url"))
        .filter_map(crate::providers::translate::image_url)
        .map(image_base64)
        .collect()
}

/// A `data:` URL's base64 payload; Ollama cannot fetch an image from a web URL.
fn image_base64(url: &str) -> Result<String, String> {
    if let Some((_, data)) = crate::providers::translate::data_url(url) {
        return Ok(data.to_owned());
    }
    if url.starts_with("http://") || url.starts_with("https://") {
        let shown: String = url.chars().take(80).collect();
        return Err(format!(
            "Ollama takes images inline: send a base64 `data:` URL instead of {shown}"
        ));
    }
    Ok(url.to_owned())
}

/// An OpenAI tool call's arguments (a JSON string) as the object Ollama wants.
fn arguments(call: &Json) -> Json {
    call["function"]
        .get("arguments")
        .and_then(Json::as_str)
        .and_then(|a| serde_json::from_str::<Json>(a).ok())
        .filter(Json::is_object)
        .unwrap_or_else(|| json!({}))
}

/// OpenAI messages as `/api/chat` messages: images as base64 lists, tool calls with object
/// arguments, tool results as role `tool` naming their tool.
fn chat_messages(list: Option<&Vec<Json>>) -> Result<Vec<Json>, String> {
    let list = list.map(Vec::as_slice).unwrap_or_default();
    let mut out = Vec::with_capacity(list.len());
    for (i, m) in list.iter().enumerate() {
        let role = m.get("role").and_then(Json::as_str).unwrap_or("user");
        let content = m.get("content");
        let message = match role {
            "system" | "developer" => json!({"role": "system", "content": text(content)}),
            "assistant" => {
                let mut msg = json!({"role": "assistant", "content": text(content)});
                let calls: Vec<Json> = m
                    .get("tool_calls")
                    .and_then(Json::as_array)
                    .into_iter()
                    .flatten()
                    .map(|call| {
                        json!({"function": {
                            "name": call["function"].get("name").cloned().unwrap_or(Json::Null),
                            "arguments": arguments(call),
                        }})
                    })
                    .collect();
                if !calls.is_empty() {
                    msg["tool_calls"] = Json::Array(calls);
                }
                msg
            }
            "tool" | "function" => {
                let mut msg = json!({"role": "tool", "content": text(content)});
                if let Some(name) = tool_name(&list[..i], m) {
                    msg["tool_name"] = Json::from(name);
                }
                msg
            }
            _ => {
                let mut msg = json!({"role": role, "content": text(content)});
                let images = images(content)?;
                if !images.is_empty() {
                    msg["images"] = Json::from(images);
                }
                msg
            }
        };
        out.push(message);
    }
    Ok(out)
}

/// The name of the tool whose result `m` is: its own `name`, else the earlier call it answers.
fn tool_name<'a>(earlier: &'a [Json], m: &'a Json) -> Option<&'a str> {
    if let Some(name) = m.get("name").and_then(Json::as_str) {
        return Some(name);
    }
    let id = m.get("tool_call_id").and_then(Json::as_str)?;
    earlier
        .iter()
        .rev()
        .filter_map(|e| e.get("tool_calls").and_then(Json::as_array))
        .flatten()
        .find(|call| call.get("id").and_then(Json::as_str) == Some(id))
        .and_then(|call| call["function"].get("name").and_then(Json::as_str))
}

/// Which `### Role:` section of a flattened prompt a message belongs to.
fn section(role: &str) -> &'static str {
    match role {
        "system" | "developer" => "System",
        "assistant" => "Assistant",
        _ => "User",
    }
}

/// Chat messages flattened into one `/api/generate` prompt in the shape of LiteLLM's
/// `ollama_pt`: consecutive messages of one kind, one per line, under `### System:`,
/// `### User:` or `### Assistant:` (tool results count as user turns, tool calls are listed as
/// JSON); images collected apart.
fn generate_prompt(list: Option<&Vec<Json>>) -> Result<(String, Vec<String>), String> {
    let list = list.map(Vec::as_slice).unwrap_or_default();
    let kind_of = |m: &Json| section(m.get("role").and_then(Json::as_str).unwrap_or("user"));
    let mut prompt = String::new();
    let mut all_images = Vec::new();
    let mut i = 0;
    while i < list.len() {
        let kind = kind_of(&list[i]);
        let mut pieces = Vec::new();
        while i < list.len() && kind_of(&list[i]) == kind {
            let m = &list[i];
            pieces.push(text(m.get("content")));
            if kind == "User" {
                all_images.extend(images(m.get("content"))?);
            }
            if let Some(calls) = m.get("tool_calls").and_then(Json::as_array) {
                let calls: Vec<Json> = calls
                    .iter()
                    .map(|call| {
                        json!({
                            "id": call.get("id").cloned().unwrap_or(Json::Null),
                            "type": "function",
                            "function": {"name": call["function"]["name"], "arguments": arguments(call)},
                        })
                    })
                    .collect();
                if let Ok(listed) = serde_json::to_string_pretty(&calls) {
                    pieces.push(format!("Tool Calls: {listed}"));
                }
            }
            i += 1;
        }
        pieces.retain(|p| !p.is_empty());
        if !pieces.is_empty() {
            prompt.push_str(&format!("### {kind}:\n{}\n\n", pieces.join("\n")));
        }
    }
    Ok((prompt, all_images))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Json {
        let path = format!(
            "{}/tests/fixtures/ollama/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    fn fields(value: Json) -> Map<String, Json> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn a_chat_with_system_images_tools_and_results_translates_as_recorded() {
        let case = fixture("request_chat_tools_images.json");
        let got = request(
            Api::Chat,
            "llama3.2-vision",
            &fields(case["openai"].clone()),
            &Map::new(),
            false,
            &[],
        )
        .unwrap();
        assert_eq!(got, case["ollama"]);
    }

    #[test]
    fn generate_flattens_the_conversation_into_one_prompt_with_its_images_apart() {
        let case = fixture("request_chat_tools_images.json");
        let mut openai = fields(case["openai"].clone());
        openai.remove("tools");
        let got = request(Api::Generate, "llava", &openai, &Map::new(), true, &[]).unwrap();
        let prompt = got["prompt"].as_str().unwrap();
        assert!(
            prompt.starts_with(
                "### System:\nYou are a weather bot.\nAnswer briefly.\n\n### User:\nWhat is in this picture, and what is the weather in Paris?\n\n### Assistant:\nLet me check.\nTool Calls: ["
            ),
            "{prompt}"
        );
        assert!(
            prompt.ends_with("### User:\n18C and sunny\nThanks! As JSON please.\n\n"),
            "{prompt}"
        );
        assert_eq!(got["images"], json!(["iVBORw0KGgo="]));
        assert_eq!(got["stream"], true);
        assert_eq!(got["format"], "json");
        assert_eq!(got["options"]["num_predict"], 300);
        assert!(got.get("messages").is_none() && got.get("tools").is_none());
    }

    #[test]
    fn defaults_fill_in_and_extras_become_options_or_top_level_fields() {
        let defaults = fields(json!({"temperature": 0.1, "num_ctx": 4096, "keep_alive": -1}));
        let got = request(
            Api::Chat,
            "m",
            &fields(json!({"messages": [{"role": "user", "content": "hi"}], "temperature": 0.7, "stop": ["a", "b"], "options": {"num_ctx": 2048}})),
            &defaults,
            true,
            &[],
        )
        .unwrap();
        assert_eq!(
            got,
            json!({
                "model": "m",
                "messages": [{"role": "user", "content": "hi"}],
                "stream": true,
                "options": {"temperature": 0.7, "stop": ["a", "b"], "num_ctx": 2048},
                "keep_alive": -1,
            })
        );
    }

    #[test]
    fn a_json_schema_becomes_the_format_and_tool_choice_none_leaves_tools_out() {
        let got = request(
            Api::Chat,
            "m",
            &fields(json!({
                "messages": [],
                "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object"}}},
                "tools": [{"type": "function", "function": {"name": "f"}}],
                "tool_choice": "none",
            })),
            &Map::new(),
            false,
            &[],
        )
        .unwrap();
        assert_eq!(got["format"], json!({"type": "object"}));
        assert!(got.get("tools").is_none());
    }

    #[test]
    fn embeddings_send_the_input_and_no_sampling_options() {
        let got = request(
            Api::Embed,
            "all-minilm",
            &fields(json!({"input": ["a", "b"], "encoding_format": "base64", "user": "u"})),
            &fields(json!({"temperature": 0.2})),
            false,
            &[],
        )
        .unwrap();
        assert_eq!(got, json!({"model": "all-minilm", "input": ["a", "b"]}));
    }

    #[test]
    fn web_image_urls_are_refused_and_unsupported_parameters_named() {
        let openai = fields(json!({"messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}
        ]}]}));
        let err = request(Api::Chat, "m", &openai, &Map::new(), false, &[]).unwrap_err();
        assert!(err.contains("https://example.com/cat.jpg"), "{err}");

        let with = fields(json!({"messages": [], "logprobs": true, "tools": []}));
        assert_eq!(
            first_unsupported(Api::Chat, &with, &Map::new(), &[]),
            Some("logprobs")
        );
        let skip = ["logprobs".to_owned()];
        assert_eq!(
            first_unsupported(Api::Chat, &with, &Map::new(), &skip),
            None
        );
        assert_eq!(
            first_unsupported(Api::Generate, &with, &Map::new(), &skip),
            Some("tools")
        );
    }

    #[test]
    fn the_prefix_picks_the_endpoint() {
        use crate::providers::kind::OLLAMA;
        assert_eq!(Api::for_call(&OLLAMA_CHAT, false).route(), "/api/chat");
        assert_eq!(Api::for_call(&OLLAMA, false).route(), "/api/generate");
        assert_eq!(Api::for_call(&OLLAMA, true).route(), "/api/embed");
        assert_eq!(tool_call_id("chatcmpl-abc", 1), "call_abc_1");
    }
}
