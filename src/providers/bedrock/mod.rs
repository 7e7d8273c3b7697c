//! AWS Bedrock: OpenAI chat requests as Converse requests (this module), Converse replies
//! (`reply`) and binary ConverseStream event streams (`stream`) translated back, InvokeModel
//! embeddings (Titan and Cohere), and SigV4 signing (`sign`).

pub mod reply;
pub mod sign;
pub mod stream;

use crate::providers::translate::Params;
use serde_json::{json, Map, Value as Json};

use crate::providers::translate::push_turn;

use crate::config::{Deployment, Env, Secret};
use crate::providers::request::PreparedCall;
use crate::providers::ProviderKind;
use sign::AwsAuth;

/// OpenAI chat parameters with no Converse counterpart.
pub const UNSUPPORTED: &[&str] = &[
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "n",
    "presence_penalty",
    "frequency_penalty",
    "seed",
    "response_format",
    "reasoning_effort",
    "service_tier",
    "modalities",
    "audio",
    "prediction",
    "store",
    "functions",
    "function_call",
    "parallel_tool_calls",
];

/// OpenAI parameters that become `inferenceConfig` fields, with their Converse names.
const INFERENCE: &[(&str, &str)] = &[
    ("max_tokens", "maxTokens"),
    ("max_completion_tokens", "maxTokens"),
    ("temperature", "temperature"),
    ("top_p", "topP"),
];

/// Request fields translated rather than passed through.
const TRANSLATED: &[&str] = &[
    "messages",
    "stop",
    "stream",
    "stream_options",
    "tools",
    "tool_choice",
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

/// The Converse request for an OpenAI chat request's `fields`, with the deployment's
/// `defaults` under them; unsupported parameters and `skip` are left out. Other keys that are
/// not OpenAI's (`additionalModelRequestFields`, `guardrailConfig` ...) pass through.
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
    let (system, messages) = messages(get("messages").and_then(Json::as_array));
    out.insert("messages".into(), Json::Array(messages));
    if !system.is_empty() {
        out.insert("system".into(), Json::Array(system));
    }
    let mut config = Map::new();
    for (openai, converse) in INFERENCE {
        if let Some(v) = get(openai) {
            config.entry(*converse).or_insert_with(|| v.clone());
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
    if !config.is_empty() {
        out.insert("inferenceConfig".into(), Json::Object(config));
    }
    let tool_choice = get("tool_choice");
    let tools: Vec<Json> = get("tools")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .map(tool_spec)
        .collect();
    // `tool_choice: none` has no Converse form: the tools are not offered.
    if !tools.is_empty() && tool_choice.and_then(Json::as_str) != Some("none") {
        let mut tool_config = json!({ "tools": tools });
        if let Some(choice) = tool_choice.and_then(converse_tool_choice) {
            tool_config["toolChoice"] = choice;
        }
        out.insert("toolConfig".into(), tool_config);
    }
    for (k, v) in fields.iter().chain(defaults.iter()) {
        let k = k.as_str();
        if TRANSLATED.contains(&k)
            || UNSUPPORTED.contains(&k)
            || INFERENCE.iter().any(|(o, _)| *o == k)
            || skipped(k)
            || out.contains_key(k)
        {
            continue;
        }
        out.insert(k.to_owned(), v.clone());
    }
    Json::Object(out)
}

/// OpenAI messages as Converse's system blocks and alternating user/assistant messages.
fn messages(list: Option<&Vec<Json>>) -> (Vec<Json>, Vec<Json>) {
    let mut system = Vec::new();
    let mut out: Vec<Json> = Vec::new();
    for m in list.into_iter().flatten() {
        let role = m.get("role").and_then(Json::as_str).unwrap_or("user");
        let content = m.get("content");
        match role {
            "system" | "developer" => system.extend(blocks(content)),
            "assistant" => {
                let mut b = blocks(content);
                for call in m["tool_calls"].as_array().into_iter().flatten() {
                    let input = call["function"]["arguments"]
                        .as_str()
                        .and_then(|a| serde_json::from_str::<Json>(a).ok())
                        .unwrap_or_else(|| json!({}));
                    b.push(json!({"toolUse": {
                        "toolUseId": call["id"],
                        "name": call["function"]["name"],
                        "input": input,
                    }}));
                }
                push_turn(&mut out, "assistant", "content", b);
            }
            "tool" | "function" => {
                let text = match content {
                    Some(Json::String(s)) => s.clone(),
                    Some(Json::Array(parts)) => parts
                        .iter()
                        .filter_map(|p| p["text"].as_str())
                        .collect::<Vec<_>>()
                        .join(""),
                    Some(other) => other.to_string(),
                    None => String::new(),
                };
                let block = json!({"toolResult": {
                    "toolUseId": m["tool_call_id"],
                    "content": [{"text": text}],
                }});
                push_turn(&mut out, "user", "content", vec![block]);
            }
            _ => push_turn(&mut out, "user", "content", blocks(content)),
        }
    }
    (system, out)
}

/// Text and image blocks of a message's content (images must be `data:` URLs: Bedrock takes
/// bytes only).
fn blocks(content: Option<&Json>) -> Vec<Json> {
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
                    let (mime, data) = crate::providers::translate::data_url(url)?;
                    let format = mime.strip_prefix("image/").unwrap_or(mime);
                    let format = if format == "jpg" { "jpeg" } else { format };
                    Some(json!({"image": {"format": format, "source": {"bytes": data}}}))
                }
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn tool_spec(tool: &Json) -> Json {
    let f = tool.get("function").unwrap_or(tool);
    let mut spec = json!({"name": f["name"]});
    if let Some(desc) = f.get("description") {
        spec["description"] = desc.clone();
    }
    let schema = f
        .get("parameters")
        .cloned()
        .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
    spec["inputSchema"] = json!({ "json": schema });
    json!({ "toolSpec": spec })
}

fn converse_tool_choice(choice: &Json) -> Option<Json> {
    match choice {
        Json::String(s) => match s.as_str() {
            "required" => Some(json!({"any": {}})),
            "auto" => Some(json!({"auto": {}})),
            _ => None,
        },
        other => other["function"]["name"]
            .as_str()
            .map(|name| json!({"tool": {"name": name}})),
    }
}

/// Which InvokeModel body an embedding model takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbedFamily {
    /// Amazon Titan (`amazon.titan-embed-*`): one `inputText` per call.
    Titan,
    /// Cohere on Bedrock (`cohere.embed-*`): a batch of `texts`.
    Cohere,
}

impl EmbedFamily {
    /// The family of `model`, if it is an embedding model llmgate knows.
    pub fn of(model: &str) -> Option<Self> {
        let bare = model.rsplit('/').next().unwrap_or(model);
        // Cross-region inference profiles prefix the model with a geography (`us.`).
        let bare = bare
            .split_once('.')
            .filter(|(geo, _)| geo.len() <= 4 && !["amazon", "cohere"].contains(geo))
            .map_or(bare, |(_, rest)| rest);
        if bare.starts_with("amazon.titan-embed") {
            Some(Self::Titan)
        } else if bare.starts_with("cohere.embed") {
            Some(Self::Cohere)
        } else {
            None
        }
    }
}

fn texts(fields: &Map<String, Json>) -> Vec<&str> {
    match fields.get("input") {
        Some(Json::String(s)) => vec![s.as_str()],
        Some(Json::Array(items)) => items.iter().filter_map(Json::as_str).collect(),
        _ => Vec::new(),
    }
}

fn titan_body(text: &str, fields: &Map<String, Json>, defaults: &Map<String, Json>) -> Json {
    let mut body = json!({ "inputText": text });
    if let Some(d) = fields
        .get("dimensions")
        .or_else(|| defaults.get("dimensions"))
    {
        body["dimensions"] = d.clone();
    }
    body
}

/// The InvokeModel body for an OpenAI embeddings request (Titan's for its first input: the
/// others follow, see [`titan_follow_ups`]), or a message saying why there is none.
pub fn embed_request(
    model: &str,
    fields: &Map<String, Json>,
    defaults: &Map<String, Json>,
) -> Result<Json, String> {
    let texts = texts(fields);
    match EmbedFamily::of(model) {
        Some(EmbedFamily::Titan) => match texts.first() {
            Some(text) => Ok(titan_body(text, fields, defaults)),
            None => Err(format!("{model} needs an input text")),
        },
        Some(EmbedFamily::Cohere) => {
            let input_type = fields
                .get("input_type")
                .or_else(|| defaults.get("input_type"))
                .cloned()
                .unwrap_or_else(|| json!("search_document"));
            Ok(json!({"texts": texts, "input_type": input_type}))
        }
        None => Err(format!(
            "no embeddings for {model}: Bedrock embeddings are served for amazon.titan-embed-* and cohere.embed-* models"
        )),
    }
}

/// The region used when neither `aws_region_name` nor the environment names one.
pub const DEFAULT_REGION: &str = "us-east-1";

/// Reads a `bedrock/` deployment's AWS settings from its `litellm_params` (`params`, secrets
/// included) or the environment: SigV4 credentials unless an API key (`api_key` or
/// `AWS_BEARER_TOKEN_BEDROCK`) is used, and the runtime endpoint when no `api_base` is set
/// (`aws_bedrock_runtime_endpoint`, `AWS_BEDROCK_RUNTIME_ENDPOINT`, else the region's).
/// Other deployments are left alone.
pub fn configure(deployment: &mut Deployment, params: &Json, env: &Env) {
    if !matches!(deployment.provider, ProviderKind::Bedrock(_)) {
        return;
    }
    let param = |key: &str, vars: &[&str]| {
        params
            .get(key)
            .and_then(Json::as_str)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .or_else(|| {
                vars.iter()
                    .find_map(|v| env.get(v).filter(|v| !v.is_empty()))
            })
    };
    let region = param("aws_region_name", &["AWS_REGION_NAME", "AWS_REGION"])
        .unwrap_or_else(|| DEFAULT_REGION.to_owned());
    if deployment.api_base.is_empty() {
        let endpoint = param(
            "aws_bedrock_runtime_endpoint",
            &["AWS_BEDROCK_RUNTIME_ENDPOINT"],
        )
        .unwrap_or_else(|| format!("https://bedrock-runtime.{region}.amazonaws.com"));
        deployment.api_base = endpoint.trim_end_matches('/').to_owned();
        deployment.public_api_base = deployment.api_base.clone();
    }
    if deployment.auth_header.is_some() {
        return;
    }
    let key_id = param("aws_access_key_id", &["AWS_ACCESS_KEY_ID"]);
    let secret = param("aws_secret_access_key", &["AWS_SECRET_ACCESS_KEY"]);
    if let (Some(key_id), Some(secret)) = (key_id, secret) {
        deployment.aws = Some(AwsAuth {
            access_key_id: Secret::new(key_id),
            secret_access_key: Secret::new(secret),
            session_token: param("aws_session_token", &["AWS_SESSION_TOKEN"]).map(Secret::new),
            region,
        });
    }
}

/// The calls for a Titan embeddings request's inputs after the first (Titan embeds one text
/// per call), to `first`'s URL; none for any other request.
pub fn titan_follow_ups(
    deployment: &Deployment,
    model: &str,
    fields: &Map<String, Json>,
    first: &PreparedCall,
) -> Vec<PreparedCall> {
    if !matches!(deployment.provider, ProviderKind::Bedrock(_))
        || EmbedFamily::of(model) != Some(EmbedFamily::Titan)
        || !first.url.ends_with("/invoke")
    {
        return Vec::new();
    }
    texts(fields)
        .iter()
        .skip(1)
        .map(|text| PreparedCall {
            url: first.url.clone(),
            body: bytes::Bytes::from(titan_body(text, fields, &deployment.defaults).to_string()),
            reshape: first.reshape,
            prompt_tokens: None,
        })
        .collect()
}

/// Titan replies gathered into one: `so_far` (a Titan reply or an earlier gathering) and
/// `next`'s vector appended to `embeddings`, their token counts summed. A reply that cannot
/// be read leaves `so_far` as it is.
pub fn merge_titan(so_far: &[u8], next: &[u8]) -> bytes::Bytes {
    let (Ok(mut acc), Ok(next)) = (
        serde_json::from_slice::<Json>(so_far),
        serde_json::from_slice::<Json>(next),
    ) else {
        return bytes::Bytes::copy_from_slice(so_far);
    };
    if let Some(one) = acc.as_object_mut().and_then(|m| m.remove("embedding")) {
        acc["embeddings"] = json!([one]);
    }
    if let Some(list) = acc["embeddings"].as_array_mut() {
        list.push(next["embedding"].clone());
    }
    let tokens = acc["inputTextTokenCount"].as_u64().unwrap_or(0)
        + next["inputTextTokenCount"].as_u64().unwrap_or(0);
    acc["inputTextTokenCount"] = json!(tokens);
    bytes::Bytes::from(acc.to_string())
}

/// `model` as one URL path segment: everything but unreserved characters percent-encoded
/// (`:` in versions, `/` in ARNs).
pub fn encode_model_id(model: &str) -> String {
    percent_encoding::utf8_percent_encode(model, crate::config::URL_UNRESERVED).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Json {
        let path = format!(
            "{}/tests/fixtures/bedrock/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn a_conversation_with_system_images_tools_and_results_translates_as_recorded() {
        let case = fixture("request_tools_images.json");
        let fields = case["openai"].as_object().unwrap().clone();
        assert_eq!(chat_request(&fields, &Map::new(), &[]), case["bedrock"]);
    }

    #[test]
    fn tool_choice_maps_to_its_converse_form_and_none_offers_no_tools() {
        assert_eq!(
            converse_tool_choice(&json!({"type": "function", "function": {"name": "f"}})),
            Some(json!({"tool": {"name": "f"}}))
        );
        assert_eq!(
            converse_tool_choice(&json!("required")),
            Some(json!({"any": {}}))
        );
        let fields: Map<String, Json> = serde_json::from_value(json!({
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": "f"}}],
            "tool_choice": "none",
        }))
        .unwrap();
        assert!(chat_request(&fields, &Map::new(), &[])
            .get("toolConfig")
            .is_none());
        assert_eq!(
            first_unsupported(
                &fields,
                &serde_json::from_value(json!({"n": 2})).unwrap(),
                &[]
            ),
            Some("n")
        );
    }

    #[test]
    fn embeddings_pick_their_body_by_model_family() {
        let one: Map<String, Json> = serde_json::from_value(json!({"input": "a"})).unwrap();
        let two: Map<String, Json> = serde_json::from_value(json!({"input": ["a", "b"]})).unwrap();
        let none = Map::new();
        assert_eq!(
            embed_request("amazon.titan-embed-text-v2:0", &one, &none),
            Ok(json!({"inputText": "a"}))
        );
        assert_eq!(
            embed_request("amazon.titan-embed-text-v1", &two, &none),
            Ok(json!({"inputText": "a"}))
        );
        assert_eq!(
            embed_request("cohere.embed-english-v3", &two, &none),
            Ok(json!({"texts": ["a", "b"], "input_type": "search_document"}))
        );
        assert!(embed_request("anthropic.claude-3", &one, &none).is_err());
        assert_eq!(
            EmbedFamily::of("us.cohere.embed-v4:0"),
            Some(EmbedFamily::Cohere)
        );
    }

    #[test]
    fn titan_replies_gather_into_one_list_with_summed_tokens() {
        let a = br#"{"embedding":[1.0],"inputTextTokenCount":2}"#;
        let b = br#"{"embedding":[2.0],"inputTextTokenCount":3}"#;
        let c = br#"{"embedding":[3.0],"inputTextTokenCount":1}"#;
        let merged = merge_titan(&merge_titan(a, b), c);
        let got: Json = serde_json::from_slice(&merged).unwrap();
        assert_eq!(
            got,
            json!({"embeddings": [[1.0], [2.0], [3.0]], "inputTextTokenCount": 6})
        );
    }

    #[test]
    fn model_ids_are_one_encoded_path_segment() {
        assert_eq!(
            encode_model_id("anthropic.claude-3-haiku-20240307-v1:0"),
            "anthropic.claude-3-haiku-20240307-v1%3A0"
        );
        assert_eq!(
            encode_model_id("arn:aws:bedrock:us-east-1:1:inference-profile/x"),
            "arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fx"
        );
    }
}
