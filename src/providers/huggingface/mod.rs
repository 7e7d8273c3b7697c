//! Hugging Face (TGI, Inference Endpoints, the serverless router): OpenAI's chat API sent as
//! is, or TGI's raw `generate` API with chat written into one prompt (`prompt`) and OpenAI's
//! parameters as TGI's (this module), its replies (`reply`) and SSE streams (`stream`)
//! translated back.

pub mod prompt;
pub mod reply;
pub mod stream;

use crate::providers::translate::Params;
use serde_json::{json, Map, Value as Json};

/// Which of a Hugging Face server's APIs a deployment speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `/v1/chat/completions`: OpenAI's format, sent and relayed as is.
    Chat,
    /// TGI's `/generate` and `/generate_stream`: one prompt, written by the gateway.
    Generate,
}

impl Api {
    /// The API a deployment speaks: `generate` when it brings its own prompt template or its
    /// `model_info.mode` is `completion`, else chat.
    pub fn for_deployment(has_template: bool, mode: Option<&str>) -> Self {
        if has_template || mode == Some("completion") {
            Self::Generate
        } else {
            Self::Chat
        }
    }

    /// The `generate` route under the server's root.
    pub fn generate_route(stream: bool) -> &'static str {
        if stream {
            "/generate_stream"
        } else {
            "/generate"
        }
    }
}

/// A new OpenAI completion id (`chatcmpl-<uuid>`): TGI's replies carry none.
pub fn completion_id() -> String {
    format!("chatcmpl-{}", super::random_uuid().simple())
}

/// OpenAI parameters `generate` has no counterpart for: dropped under `drop_params`, else the
/// request is refused naming the first.
pub const UNSUPPORTED: &[&str] = &[
    "n",
    "presence_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "tools",
    "functions",
    "function_call",
    "service_tier",
    "modalities",
    "audio",
    "prediction",
    "store",
    "reasoning_effort",
    "web_search_options",
];

/// Parameters that become `parameters` fields, with their TGI names.
const PARAMETERS: &[(&str, &str)] = &[
    ("max_tokens", "max_new_tokens"),
    ("max_completion_tokens", "max_new_tokens"),
    ("temperature", "temperature"),
    ("top_p", "top_p"),
    ("top_k", "top_k"),
    ("seed", "seed"),
    ("repetition_penalty", "repetition_penalty"),
    ("frequency_penalty", "frequency_penalty"),
];

/// OpenAI fields translated (or deliberately not forwarded) rather than passed into
/// `parameters`.
const TRANSLATED: &[&str] = &[
    "messages",
    "stream",
    "stream_options",
    "stop",
    "response_format",
    "tool_choice",
    "parallel_tool_calls",
    "user",
    "metadata",
];

/// The first parameter among `fields` (or the deployment's `defaults`) that `generate` cannot
/// take; `skip` names fields never forwarded.
pub fn first_unsupported(
    fields: &Map<String, Json>,
    defaults: &Map<String, Json>,
    skip: &[String],
) -> Option<&'static str> {
    crate::providers::translate::first_present(UNSUPPORTED, fields, defaults, skip)
}

/// The `generate` request for `prompt` with an OpenAI request's `fields` (the deployment's
/// `defaults` under them) as TGI `parameters`; unsupported parameters and `skip` are left out,
/// and any other key (`typical_p`, `truncate`, `do_sample` ...) is a parameter as given.
pub fn generate_request(
    prompt: &str,
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
    let get = |k: &str| params.get(k).filter(|v| !v.is_null());
    // Always asked: the finish reason and token count come with the details, and a chat reply
    // is the generation alone.
    let mut parameters = Map::new();
    parameters.insert("details".into(), Json::Bool(true));
    parameters.insert("return_full_text".into(), Json::Bool(false));
    for (openai, tgi) in PARAMETERS {
        if let (Some(v), false) = (get(openai), parameters.contains_key(*tgi)) {
            parameters.insert((*tgi).into(), positive(tgi, v));
        }
    }
    match get("stop") {
        Some(Json::String(s)) => {
            parameters.insert("stop".into(), json!([s]));
        }
        Some(list @ Json::Array(_)) => {
            parameters.insert("stop".into(), list.clone());
        }
        _ => {}
    }
    if let Some(grammar) = get("response_format").and_then(grammar) {
        parameters.insert("grammar".into(), grammar);
    }
    for (k, v) in fields.iter().chain(defaults.iter()) {
        let k = k.as_str();
        if skipped(k)
            || v.is_null()
            || TRANSLATED.contains(&k)
            || UNSUPPORTED.contains(&k)
            || PARAMETERS.iter().any(|(o, _)| *o == k)
        {
            continue;
        }
        parameters.entry(k).or_insert_with(|| v.clone());
    }
    json!({"inputs": prompt, "parameters": parameters, "stream": stream})
}

/// TGI refuses a zero `temperature` or `max_new_tokens` ("must be strictly positive"): the
/// nearest value it takes is sent instead, as LiteLLM does.
fn positive(tgi: &str, v: &Json) -> Json {
    match (tgi, v.as_f64()) {
        ("temperature", Some(t)) if t <= 0.0 => json!(0.01),
        ("max_new_tokens", Some(n)) if n <= 0.0 => json!(1),
        _ => v.clone(),
    }
}

/// OpenAI's `response_format` as TGI's `grammar`: a JSON schema to follow (any object for
/// `json_object`).
fn grammar(response_format: &Json) -> Option<Json> {
    let schema = match response_format.get("type").and_then(Json::as_str)? {
        "json_object" => json!({"type": "object"}),
        "json_schema" => response_format
            .get("json_schema")
            .and_then(|s| s.get("schema"))
            .cloned()
            .unwrap_or_else(|| json!({"type": "object"})),
        _ => return None,
    };
    Some(json!({"type": "json", "value": schema}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(value: Json) -> Map<String, Json> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn openai_parameters_become_tgi_parameters_under_the_defaults() {
        let got = generate_request(
            "PROMPT",
            &fields(json!({
                "messages": [{"role": "user", "content": "hi"}],
                "max_tokens": 64,
                "temperature": 0,
                "stop": "###",
                "seed": 7,
                "user": "u",
                "typical_p": 0.9,
            })),
            &fields(json!({"top_k": 40, "temperature": 0.5, "repetition_penalty": 1.1})),
            true,
            &[],
        );
        assert_eq!(
            got,
            json!({
                "inputs": "PROMPT",
                "parameters": {
                    "details": true,
                    "return_full_text": false,
                    "max_new_tokens": 64,
                    "temperature": 0.01,
                    "top_k": 40,
                    "seed": 7,
                    "repetition_penalty": 1.1,
                    "stop": ["###"],
                    "typical_p": 0.9,
                },
                "stream": true,
            })
        );
    }

    #[test]
    fn a_json_schema_becomes_a_grammar_and_skipped_fields_stay_out() {
        let got = generate_request(
            "p",
            &fields(json!({
                "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object", "required": ["city"]}}},
                "max_completion_tokens": 0,
                "seed": 1,
            })),
            &Map::new(),
            false,
            &["seed".to_owned()],
        );
        assert_eq!(
            got["parameters"]["grammar"],
            json!({"type": "json", "value": {"type": "object", "required": ["city"]}})
        );
        assert_eq!(got["parameters"]["max_new_tokens"], 1);
        assert!(got["parameters"].get("seed").is_none());
        assert_eq!(got["stream"], false);
    }

    #[test]
    fn tools_and_n_are_named_unless_skipped() {
        let with = fields(json!({"tools": [], "n": 2, "tool_choice": "auto"}));
        assert_eq!(first_unsupported(&with, &Map::new(), &[]), Some("n"));
        let skip = ["n".to_owned()];
        assert_eq!(first_unsupported(&with, &Map::new(), &skip), Some("tools"));
        assert_eq!(
            Api::for_deployment(false, Some("completion")),
            Api::Generate
        );
        assert_eq!(Api::for_deployment(true, None), Api::Generate);
        assert_eq!(Api::for_deployment(false, Some("chat")), Api::Chat);
    }
}
