//! Which of LiteLLM's settings llmgate honours yet; the rest are named in one startup warning.

use serde_yaml::Value;

/// Whether a known LiteLLM setting has an effect in llmgate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingStatus {
    /// It does what LiteLLM's does.
    Implemented,
    /// It is read but has no effect yet.
    NotYet,
}

use SettingStatus::{Implemented as Y, NotYet as N};

const LITELLM_SETTINGS: &[(&str, SettingStatus)] = &[
    ("drop_params", Y),
    ("num_retries", Y),
    ("request_timeout", Y),
    ("fallbacks", Y),
    ("default_fallbacks", Y),
    ("context_window_fallbacks", Y),
    ("content_policy_fallbacks", Y),
    ("allowed_fails", Y),
    ("cooldown_time", Y),
    ("cache", Y),
    ("cache_params", Y),
    ("success_callback", Y),
    ("failure_callback", Y),
    ("max_budget", Y),
    ("budget_duration", Y),
    ("default_key_generate_params", Y),
    // Keeps prompts and replies out of the logging callbacks' payloads.
    ("turn_off_message_logging", Y),
    ("set_verbose", Y),
    ("add_function_to_prompt", Y),
    // Key changes are written to the audit log (GET /audit/logs); on unless set to false.
    ("store_audit_logs", Y),
    ("max_end_user_budget", Y),
];

const ROUTER_SETTINGS: &[(&str, SettingStatus)] = &[
    ("routing_strategy", Y),
    ("redis_host", Y),
    ("redis_port", Y),
    ("redis_password", Y),
    ("redis_url", Y),
    ("enable_pre_call_checks", Y),
    ("allowed_fails", Y),
    ("allowed_fails_policy", Y),
    ("cooldown_time", Y),
    ("disable_cooldowns", Y),
    ("num_retries", Y),
    ("retry_policy", Y),
    ("retry_after", Y),
    ("timeout", Y),
    ("stream_timeout", Y),
    ("max_fallbacks", Y),
    ("model_group_alias", Y),
    ("fallbacks", Y),
    ("routing_strategy_args", Y),
];

const GENERAL_SETTINGS: &[(&str, SettingStatus)] = &[
    ("master_key", Y),
    ("database_url", Y),
    ("database_connection_pool_limit", Y),
    ("proxy_batch_write_at", Y),
    ("max_parallel_requests", N),
    ("global_max_parallel_requests", N),
    ("max_budget", Y),
    ("budget_duration", Y),
    ("background_health_checks", Y),
    ("health_check_interval", Y),
    ("health_check_timeout", Y),
    ("allowed_ips", Y),
    ("blocked_ips", Y),
    ("use_x_forwarded_for", Y),
    // llmgate's (and LiteLLM's network code's) name: X-Forwarded-For is believed only from these.
    ("trusted_proxy_ranges", Y),
    ("cors_allow_origins", Y),
    ("cors_allow_credentials", Y),
    ("cors_allow_methods", Y),
    ("cors_allow_headers", Y),
    ("dangerously_permit_weak_or_unset_master_key", Y),
    ("max_request_size_mb", Y),
    ("litellm_key_header_name", Y),
    ("always_include_stream_usage", Y),
    ("disable_spend_logs", Y),
    // Models added through /model/new are kept in the database (also STORE_MODEL_IN_DB).
    ("store_model_in_db", Y),
    // llmgate's own: how often each instance checks the database for model changes.
    ("model_sync_interval", Y),
    // llmgate's own: where the spend journal is kept.
    ("spend_journal_path", Y),
    // llmgate's own: how long a client may take (LiteLLM leaves it to uvicorn; its
    // `--keepalive_timeout` flag is the one it exposes).
    ("client_header_timeout", Y),
    ("client_body_timeout", Y),
    ("keepalive_timeout", Y),
    ("client_disconnect_timeout", Y),
];

/// `litellm_params` keys the gateway reads itself; any other key is a default request parameter.
pub const LITELLM_PARAMS: &[(&str, SettingStatus)] = &[
    ("model", Y),
    ("api_base", Y),
    ("api_key", Y),
    ("api_version", Y),
    ("organization", Y),
    ("rpm", Y),
    ("tpm", Y),
    ("weight", Y),
    ("order", Y),
    ("max_parallel_requests", Y),
    ("drop_params", Y),
    ("additional_drop_params", Y),
    ("timeout", Y),
    ("stream_timeout", Y),
    ("max_retries", N),
    ("headers", Y),
    ("input_cost_per_token", Y),
    ("output_cost_per_token", Y),
    // Per-unit prices of images, speech, transcriptions and rerank (`unit_pricing`).
    ("input_cost_per_character", Y),
    ("output_cost_per_image", Y),
    ("input_cost_per_image", Y),
    ("input_cost_per_pixel", Y),
    ("input_cost_per_second", Y),
    ("input_cost_per_query", Y),
    ("mock_response", Y),
    // A custom chat template (LiteLLM's `custom_prompt`): read by Hugging Face's raw `generate`.
    ("initial_prompt_value", Y),
    ("roles", Y),
    ("final_prompt_value", Y),
    ("bos_token", Y),
    ("eos_token", Y),
    ("aws_access_key_id", Y),
    ("aws_secret_access_key", Y),
    ("aws_session_token", Y),
    ("aws_region_name", Y),
    ("aws_profile_name", N),
    ("aws_role_name", N),
    ("aws_bedrock_runtime_endpoint", Y),
    ("vertex_project", Y),
    ("vertex_location", Y),
    ("vertex_credentials", Y),
    ("azure_ad_token", N),
    ("tenant_id", N),
    ("client_id", N),
    ("client_secret", N),
];

/// `litellm_params` keys that hold credentials: never forwarded, never shown.
pub const SECRET_PARAMS: &[&str] = &[
    "api_key",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "vertex_credentials",
    "azure_ad_token",
    "client_secret",
];

const MODEL_INFO: &[(&str, SettingStatus)] = &[
    ("access_groups", Y),
    ("base_model", Y),
    ("input_cost_per_token", Y),
    ("output_cost_per_token", Y),
    ("input_cost_per_character", Y),
    ("output_cost_per_image", Y),
    ("input_cost_per_image", Y),
    ("input_cost_per_pixel", Y),
    ("input_cost_per_second", Y),
    ("input_cost_per_query", Y),
    ("max_input_tokens", Y),
];

const SECTIONS: &[&str] = &[
    "model_list",
    "litellm_settings",
    "router_settings",
    "general_settings",
    "environment_variables",
];

/// LiteLLM's top-level sections llmgate does not read yet (files and batches take the
/// deployments' credentials).
const NOT_YET_SECTIONS: &[&str] = &["files_settings"];

/// Whether `key` is one the gateway reads from `litellm_params` (rather than a request default).
pub fn is_known_param(key: &str) -> bool {
    LITELLM_PARAMS.iter().any(|(k, _)| *k == key)
}

/// What a config asks for that llmgate does not do: known settings not implemented yet, and
/// keys LiteLLM does not define either. Each is named by its path, once.
pub fn unimplemented_settings(tree: &Value) -> (Vec<String>, Vec<String>) {
    let mut not_yet = Vec::new();
    let mut unknown = Vec::new();
    let mut note = |path: String, status: Option<SettingStatus>| match status {
        Some(SettingStatus::NotYet) if !not_yet.contains(&path) => not_yet.push(path),
        None if !unknown.contains(&path) => unknown.push(path),
        _ => {}
    };
    let Some(top) = tree.as_mapping() else {
        return (not_yet, unknown);
    };
    for (k, _) in top {
        let name = k.as_str().unwrap_or_default();
        if NOT_YET_SECTIONS.contains(&name) {
            note(name.to_owned(), Some(SettingStatus::NotYet));
        } else if !SECTIONS.contains(&name) {
            note(name.to_owned(), None);
        }
    }
    for (section, table) in [
        ("litellm_settings", LITELLM_SETTINGS),
        ("router_settings", ROUTER_SETTINGS),
        ("general_settings", GENERAL_SETTINGS),
    ] {
        if let Some(map) = tree.get(section).and_then(Value::as_mapping) {
            for (k, _) in map {
                let key = k.as_str().unwrap_or_default();
                let status = table.iter().find(|(n, _)| *n == key).map(|(_, s)| *s);
                note(format!("{section}.{key}"), status);
            }
        }
    }
    let entries = tree.get("model_list").and_then(Value::as_sequence);
    for entry in entries.into_iter().flatten() {
        if let Some(map) = entry.get("litellm_params").and_then(Value::as_mapping) {
            for (k, _) in map {
                let key = k.as_str().unwrap_or_default();
                // Unknown litellm_params keys are request defaults, not unknown settings.
                if let Some((_, SettingStatus::NotYet)) =
                    LITELLM_PARAMS.iter().find(|(n, _)| *n == key)
                {
                    note(
                        format!("model_list[].litellm_params.{key}"),
                        Some(SettingStatus::NotYet),
                    );
                }
            }
        }
        if let Some(map) = entry.get("model_info").and_then(Value::as_mapping) {
            for (k, _) in map {
                let key = k.as_str().unwrap_or_default();
                if let Some((_, status)) = MODEL_INFO.iter().find(|(n, _)| *n == key) {
                    note(format!("model_list[].model_info.{key}"), Some(*status));
                }
            }
        }
    }
    (not_yet, unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_settings_is_named_as_not_implemented_yet_not_as_unknown() {
        let tree: Value = serde_yaml::from_str("files_settings: []\nbogus_section: 1\n").unwrap();
        let (not_yet, unknown) = unimplemented_settings(&tree);
        assert_eq!(not_yet, ["files_settings"]);
        assert_eq!(unknown, ["bogus_section"]);
    }
}
