//! The prompt a raw `generate` call sends: chat messages written with the deployment's own
//! template (LiteLLM's `custom_prompt`), else with the template of the model's family.

use serde_json::Value as Json;

/// The `litellm_params` keys of a custom template; any of them makes the deployment raw.
pub const KEYS: &[&str] = &[
    "initial_prompt_value",
    "roles",
    "final_prompt_value",
    "bos_token",
    "eos_token",
];

/// What the messages of one role are wrapped in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wrap {
    /// Written before the message's text.
    pub pre_message: String,
    /// Written after it.
    pub post_message: String,
}

/// A chat template from `litellm_params` (`initial_prompt_value`, `roles`,
/// `final_prompt_value`, `bos_token`, `eos_token`), written as LiteLLM's `custom_prompt` does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Template {
    /// Written first, after `bos_token`.
    pub initial_prompt_value: String,
    /// Each role's wrapping; a role not listed is written bare.
    pub roles: Vec<(String, Wrap)>,
    /// Written last: usually the opening of the assistant's turn.
    pub final_prompt_value: String,
    /// Opens the prompt, and a system turn that follows an assistant one.
    pub bos_token: String,
    /// Closes each assistant message.
    pub eos_token: String,
}

/// A string field of the template; `null` counts as unset.
fn string(params: &Json, key: &'static str) -> Result<Option<String>, (&'static str, String)> {
    match params.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err((key, "expected a string".into())),
    }
}

impl Template {
    /// The template `params` (a deployment's `litellm_params`) sets, if it sets any of
    /// [`KEYS`]; the error names the key at fault and what is wrong with it.
    pub fn from_params(params: &Json) -> Result<Option<Self>, (&'static str, String)> {
        if !KEYS
            .iter()
            .any(|k| params.get(k).is_some_and(|v| !v.is_null()))
        {
            return Ok(None);
        }
        let mut roles = Vec::new();
        match params.get("roles") {
            None | Some(Json::Null) => {}
            Some(Json::Object(map)) => {
                for (role, wrap) in map {
                    if !wrap.is_object() {
                        return Err((
                            "roles",
                            format!("{role}: expected a mapping of pre_message and post_message"),
                        ));
                    }
                    let part = |key: &str| match wrap.get(key) {
                        None | Some(Json::Null) => Ok(String::new()),
                        Some(Json::String(s)) => Ok(s.clone()),
                        Some(_) => Err(("roles", format!("{role}.{key}: expected a string"))),
                    };
                    let wrap = Wrap {
                        pre_message: part("pre_message")?,
                        post_message: part("post_message")?,
                    };
                    roles.push((role.clone(), wrap));
                }
            }
            Some(_) => {
                return Err((
                    "roles",
                    "expected a mapping of roles to pre_message and post_message".into(),
                ))
            }
        }
        Ok(Some(Self {
            initial_prompt_value: string(params, "initial_prompt_value")?.unwrap_or_default(),
            roles,
            final_prompt_value: string(params, "final_prompt_value")?.unwrap_or_default(),
            bos_token: string(params, "bos_token")?.unwrap_or_default(),
            eos_token: string(params, "eos_token")?.unwrap_or_default(),
        }))
    }

    /// `messages` written as one prompt.
    pub fn render(&self, messages: &[Json]) -> String {
        let mut prompt = format!("{}{}", self.bos_token, self.initial_prompt_value);
        let mut bos_open = true;
        for m in messages {
            let role = role(m);
            // As LiteLLM's: a system turn after an assistant's reopens with the bos token
            // (`human` is LiteLLM's spelling, kept for templates written for it).
            if matches!(role, "system" | "human") && !bos_open {
                prompt.push_str(&self.bos_token);
                bos_open = true;
            }
            let wrap = self.roles.iter().find(|(r, _)| r == role).map(|(_, w)| w);
            if let Some(w) = wrap {
                prompt.push_str(&w.pre_message);
            }
            prompt.push_str(&text(m));
            if let Some(w) = wrap {
                prompt.push_str(&w.post_message);
            }
            if role == "assistant" {
                prompt.push_str(&self.eos_token);
                bos_open = false;
            }
        }
        prompt.push_str(&self.final_prompt_value);
        prompt
    }
}

/// The prompt for `messages` to `model`: with `template` when the deployment sets one, else
/// with the template of the model's family (Llama 3, Mistral), else ChatML.
pub fn write(template: Option<&Template>, model: &str, messages: &[Json]) -> String {
    if let Some(t) = template {
        return t.render(messages);
    }
    let lowered = model.to_ascii_lowercase();
    if is_llama3(&lowered) {
        llama3(messages)
    } else if lowered.contains("mistral") || lowered.contains("mixtral") {
        mistral(messages)
    } else {
        chatml(messages)
    }
}

fn role(m: &Json) -> &str {
    m.get("role").and_then(Json::as_str).unwrap_or("user")
}

/// A message's text: its string, or its text parts run together (as LiteLLM's).
fn text(m: &Json) -> String {
    match m.get("content") {
        Some(Json::String(s)) => s.clone(),
        Some(Json::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Json::as_str))
            .collect(),
        _ => String::new(),
    }
}

/// Llama 3 and its point releases (`Meta-Llama-3-8B`, `Llama-3.1-...`, `llama3`), not Code
/// Llama 34B (`codellama-34b`).
fn is_llama3(lowered: &str) -> bool {
    ["llama-3", "llama3"].iter().any(|needle| {
        lowered
            .match_indices(needle)
            .any(|(at, _)| !lowered[at + needle.len()..].starts_with(|c: char| c.is_ascii_digit()))
    })
}

/// Meta's Llama 3 chat template (each message trimmed, as its Jinja template does).
fn llama3(messages: &[Json]) -> String {
    let mut prompt = String::from("<|begin_of_text|>");
    for m in messages {
        prompt.push_str(&format!(
            "<|start_header_id|>{}<|end_header_id|>\n\n{}<|eot_id|>",
            role(m),
            text(m).trim()
        ));
    }
    prompt.push_str("<|start_header_id|>assistant<|end_header_id|>\n\n");
    prompt
}

/// Mistral's `[INST]` template, as LiteLLM's `mistral_instruct_pt` writes it.
fn mistral(messages: &[Json]) -> String {
    let wrap = |pre: &str, post: &str| Wrap {
        pre_message: pre.into(),
        post_message: post.into(),
    };
    Template {
        initial_prompt_value: "<s>".into(),
        roles: vec![
            ("system".into(), wrap("[INST] \n", " [/INST]\n")),
            ("user".into(), wrap("[INST] ", " [/INST]\n")),
            ("assistant".into(), wrap(" ", "</s> ")),
        ],
        ..Template::default()
    }
    .render(messages)
}

/// ChatML (`<|im_start|>role\n...<|im_end|>`), the template of most other chat models.
fn chatml(messages: &[Json]) -> String {
    let mut prompt = String::new();
    for m in messages {
        prompt.push_str(&format!("<|im_start|>{}\n{}<|im_end|>\n", role(m), text(m)));
    }
    prompt.push_str("<|im_start|>assistant\n");
    prompt
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fixture(name: &str) -> Json {
        let path = format!(
            "{}/tests/fixtures/huggingface/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn messages(case: &Json) -> Vec<Json> {
        case["messages"].as_array().unwrap().clone()
    }

    #[test]
    fn a_custom_template_writes_the_recorded_prompt() {
        let case = fixture("template_custom.json");
        let template = Template::from_params(&case["litellm_params"])
            .unwrap()
            .unwrap();
        let got = write(Some(&template), "my-org/any-model", &messages(&case));
        assert_eq!(got, case["prompt"].as_str().unwrap());
    }

    #[test]
    fn a_llama_3_model_gets_the_llama_3_template() {
        let case = fixture("template_llama3.json");
        let got = write(None, case["model"].as_str().unwrap(), &messages(&case));
        assert_eq!(got, case["prompt"].as_str().unwrap());
    }

    #[test]
    fn mistral_models_get_inst_and_others_chatml() {
        let chat = [
            json!({"role": "system", "content": "Be brief."}),
            json!({"role": "user", "content": "Hi"}),
            json!({"role": "assistant", "content": "Hello."}),
            json!({"role": "user", "content": [{"type": "text", "text": "Again"}]}),
        ];
        assert_eq!(
            write(None, "mistralai/Mistral-7B-Instruct-v0.3", &chat),
            "<s>[INST] \nBe brief. [/INST]\n[INST] Hi [/INST]\n Hello.</s> [INST] Again [/INST]\n"
        );
        assert_eq!(
            write(None, "Qwen/Qwen2.5-7B-Instruct", &chat[1..2]),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
        assert!(is_llama3("meta-llama/llama-3.1-8b-instruct"));
        assert!(is_llama3("llama3"));
        assert!(!is_llama3("codellama/codellama-34b-instruct-hf"));
    }

    #[test]
    fn bos_reopens_a_system_turn_after_an_assistant_one_and_eos_closes_assistant_turns() {
        let t = Template {
            bos_token: "<s>".into(),
            eos_token: "</s>".into(),
            ..Template::default()
        };
        let chat = [
            json!({"role": "user", "content": "a"}),
            json!({"role": "assistant", "content": "b"}),
            json!({"role": "system", "content": "c"}),
        ];
        assert_eq!(t.render(&chat), "<s>ab</s><s>c");
    }

    #[test]
    fn templates_are_read_only_when_set_and_wrong_shapes_are_named() {
        assert_eq!(Template::from_params(&json!({"model": "x"})), Ok(None));
        assert_eq!(
            Template::from_params(&json!({"final_prompt_value": null})),
            Ok(None)
        );
        let t = Template::from_params(&json!({"roles": {"user": {"pre_message": "U: "}}}))
            .unwrap()
            .unwrap();
        assert_eq!(t.roles[0].1.pre_message, "U: ");
        assert_eq!(t.roles[0].1.post_message, "");
        assert_eq!(
            Template::from_params(&json!({"roles": ["user"]}))
                .unwrap_err()
                .0,
            "roles"
        );
        assert_eq!(
            Template::from_params(&json!({"bos_token": 1})).unwrap_err(),
            ("bos_token", "expected a string".to_owned())
        );
    }
}
