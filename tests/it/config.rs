//! The config file: every LiteLLM key loads, what is not implemented is named, `os.environ/`
//! resolves anywhere, strings convert, and every error names its YAML path.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use llmgate::config::{CliOverrides, Settings};
use serde_json::json;

use crate::support::binary::{temp_dir, Process};
use crate::support::{chat_body, Gateway, MockUpstream};

fn load(yaml: &str) -> Settings {
    Settings::from_yaml(yaml, &CliOverrides::default())
        .unwrap_or_else(|e| panic!("config does not load: {e}\n{yaml}"))
}

fn load_error(yaml: &str) -> String {
    match Settings::from_yaml(yaml, &CliOverrides::default()) {
        Ok(_) => panic!("config loaded but should not:\n{yaml}"),
        Err(e) => e.to_string(),
    }
}

/// Every key COMPAT.md section 2 names, in all five sections.
const EVERY_KEY: &str = r#"
environment_variables:
  LLMGATE_IT_EVERY_KEY_PROVIDER: sk-every-key-provider
  LANGFUSE_PUBLIC_KEY: pk-lf-every-key
  LANGFUSE_SECRET_KEY: sk-lf-every-key
model_list:
  - model_name: every-param
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: http://127.0.0.1:9/v1
      api_key: os.environ/LLMGATE_IT_EVERY_KEY_PROVIDER
      api_version: "2024-06-01"
      organization: org-every-key
      rpm: 60
      tpm: 100000
      weight: 2
      order: 1
      max_parallel_requests: 8
      timeout: 30
      stream_timeout: 10
      max_retries: 1
      headers: {X-Team: every-key}
      input_cost_per_token: 0.000001
      output_cost_per_token: 0.000002
      mock_response: "every key loaded"
      aws_access_key_id: AKIAEVERYKEY
      aws_secret_access_key: every-key-aws-secret
      aws_session_token: every-key-aws-session
      aws_region_name: us-east-1
      aws_profile_name: default
      aws_role_name: every-key-role
      aws_bedrock_runtime_endpoint: https://bedrock.example.test
      vertex_project: every-key-project
      vertex_location: us-central1
      vertex_credentials: "{}"
      azure_ad_token: every-key-ad-token
      tenant_id: every-key-tenant
      client_id: every-key-client
      client_secret: every-key-client-secret
      temperature: 0.2
      max_tokens: 256
    model_info:
      id: every-param-id
      mode: chat
      base_model: azure/gpt-4o-mini
      max_input_tokens: 128000
      max_tokens: 16384
      input_cost_per_token: 0.000001
      output_cost_per_token: 0.000002
      access_groups: [beta-models]
      team_note: a free extra field
  - model_name: every-param
    litellm_params:
      model: openai/gpt-4o-mini
      mock_response: "a second entry repeats a key that is not implemented"
      order: 2
litellm_settings:
  drop_params: true
  num_retries: 3
  request_timeout: 120
  fallbacks: [{"every-param": ["every-param"]}]
  default_fallbacks: ["every-param"]
  context_window_fallbacks: [{"every-param": ["every-param"]}]
  content_policy_fallbacks: [{"every-param": ["every-param"]}]
  allowed_fails: 4
  cooldown_time: 7
  cache: true
  cache_params: {type: redis, ttl: 600}
  success_callback: ["langfuse"]
  failure_callback: ["sentry"]
  max_budget: 100
  budget_duration: 30d
  default_key_generate_params: {duration: 1h}
  turn_off_message_logging: true
  set_verbose: false
  store_audit_logs: true
router_settings:
  routing_strategy: simple-shuffle
  redis_host: localhost
  redis_port: 6379
  redis_password: every-key-redis-password
  redis_url: redis://localhost:6379
  enable_pre_call_checks: true
  allowed_fails: 5
  allowed_fails_policy: {RateLimitErrorAllowedFails: 10}
  cooldown_time: 9
  disable_cooldowns: false
  num_retries: 4
  retry_policy: {TimeoutErrorRetries: 2}
  retry_after: 1
  timeout: 60
  stream_timeout: 15
  max_fallbacks: 3
  model_group_alias: {"gpt-4": "every-param"}
  fallbacks: [{"every-param": ["every-param"]}]
  routing_strategy_args: {ttl: 60}
general_settings:
  master_key: sk-every-key-master
  database_url: postgresql://user:pw@localhost:5432/litellm
  database_connection_pool_limit: 10
  proxy_batch_write_at: 10
  max_parallel_requests: 100
  global_max_parallel_requests: 1000
  max_budget: 100
  budget_duration: 30d
  background_health_checks: false
  health_check_interval: 300
  allowed_ips: ["127.0.0.1"]
  blocked_ips: ["10.0.0.1"]
  use_x_forwarded_for: false
  trusted_proxy_ranges: ["10.0.0.0/8"]
  cors_allow_origins: ["https://app.example.com"]
  cors_allow_credentials: false
  cors_allow_methods: ["GET", "POST"]
  cors_allow_headers: ["authorization", "content-type"]
  dangerously_permit_weak_or_unset_master_key: false
  max_request_size_mb: 16
  litellm_key_header_name: X-My-Key
  always_include_stream_usage: true
  disable_spend_logs: true
"#;

/// What llmgate does not do yet among `EVERY_KEY`, written out by hand from COMPAT.md and the
/// gateway's behaviour (not from its own table). `model_info` costs and `base_model` only feed
/// spend, which is not computed yet.
const NOT_IMPLEMENTED: &[&str] = &[
    "litellm_settings.failure_callback[0]: the sentry callback",
    "general_settings.max_parallel_requests",
    "general_settings.global_max_parallel_requests",
    "model_list[].litellm_params.max_retries",
    "model_list[].litellm_params.aws_profile_name",
    "model_list[].litellm_params.aws_role_name",
    "model_list[].litellm_params.azure_ad_token",
    "model_list[].litellm_params.tenant_id",
    "model_list[].litellm_params.client_id",
    "model_list[].litellm_params.client_secret",
];

#[test]
fn a_config_with_every_litellm_key_loads() {
    let settings = load(EVERY_KEY);

    assert_eq!(settings.deployments.len(), 2);
    let d = &settings.deployments[0];
    assert_eq!(d.id, "every-param-id");
    assert_eq!(
        d.api_key.as_ref().map(|k| k.expose()),
        Some("sk-every-key-provider")
    );
    assert_eq!(d.rpm, Some(60));
    assert_eq!(d.tpm, Some(100_000));
    assert_eq!(d.weight, Some(2.0));
    assert_eq!(d.timeout, Some(Duration::from_secs(30)));
    assert_eq!(d.defaults.get("temperature"), Some(&json!(0.2)));
    assert_eq!(d.defaults.get("max_tokens"), Some(&json!(256)));
    assert_eq!(
        settings.master_key.as_ref().map(|k| k.expose()),
        Some("sk-every-key-master")
    );
    // router_settings overrides the same names in litellm_settings.
    assert_eq!(settings.num_retries, 4);
    assert_eq!(settings.request_timeout, Duration::from_secs(60));
    assert_eq!(settings.cooldown.allowed_fails, 5);
    assert_eq!(settings.cooldown.cooldown_time, Duration::from_secs(9));
    assert_eq!(settings.max_request_size, 16 * 1024 * 1024);
    assert_eq!(d.max_parallel_requests, Some(8));
    assert_eq!(d.context_window, Some(128_000));
    assert!(settings.routing.pre_call_checks);
    assert_eq!(settings.retry_after, Duration::from_secs(1));
    assert_eq!(settings.latency_window.ttl, Duration::from_secs(60));
    assert_eq!(
        settings
            .cooldown
            .allowed_for(Some(llmgate::routing::ErrorClass::RateLimit)),
        Some(10)
    );
}

#[test]
fn exactly_the_unimplemented_keys_are_named_each_once() {
    let settings = load(EVERY_KEY);

    let named: Vec<&str> = settings
        .not_implemented
        .iter()
        .map(String::as_str)
        .collect();
    let distinct: BTreeSet<&str> = named.iter().copied().collect();
    assert_eq!(named.len(), distinct.len(), "named twice: {named:#?}");
    let expected: BTreeSet<&str> = NOT_IMPLEMENTED.iter().copied().collect();
    let missing: Vec<_> = expected.difference(&distinct).collect();
    let extra: Vec<_> = distinct.difference(&expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "not named though not implemented: {missing:#?}\nnamed though implemented: {extra:#?}"
    );
    assert!(settings.unknown.is_empty(), "{:?}", settings.unknown);
}

#[test]
fn the_unimplemented_keys_make_one_startup_warning() {
    let settings = load(EVERY_KEY);

    let warnings = settings.warnings();

    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    for name in NOT_IMPLEMENTED {
        assert!(warnings[0].contains(name), "{name} not in {}", warnings[0]);
    }
}

#[test]
fn keys_litellm_does_not_define_are_named_as_unknown_not_fatal() {
    let settings = load(
        "model_list: []\nlitellm_settings:\n  no_such_setting: 1\nsurprise_section:\n  a: 1\n",
    );

    let unknown: BTreeSet<&str> = settings.unknown.iter().map(String::as_str).collect();
    assert_eq!(
        unknown,
        BTreeSet::from(["litellm_settings.no_such_setting", "surprise_section"])
    );
    let warnings = settings.warnings().join("\n");
    assert!(
        warnings.contains("litellm_settings.no_such_setting"),
        "{warnings}"
    );
    assert!(warnings.contains("surprise_section"), "{warnings}");
}

#[test]
fn every_litellm_routing_strategy_loads_without_a_warning() {
    use llmgate::routing::RoutingStrategy as S;
    for (name, strategy) in [
        ("simple-shuffle", S::SimpleShuffle),
        ("least-busy", S::LeastBusy),
        ("usage-based-routing", S::UsageBased),
        ("usage-based-routing-v2", S::UsageBasedV2),
        ("latency-based-routing", S::LatencyBased),
        ("cost-based-routing", S::CostBased),
    ] {
        let settings = load(&format!(
            "router_settings:\n  routing_strategy: {name}\n  routing_strategy_args: {{lowest_latency_buffer: 0.5, max_latency_list_size: 4}}\n"
        ));
        assert_eq!(settings.routing.strategy, strategy);
        assert_eq!(settings.routing.latency_buffer, 0.5);
        assert_eq!(settings.latency_window.max_samples, 4);
        assert!(settings.warnings().is_empty(), "{:?}", settings.warnings());
    }
}

#[test]
fn routing_settings_with_the_wrong_shape_name_their_path() {
    for (yaml, path) in [
        (
            "router_settings:\n  routing_strategy: fastest\n",
            "router_settings.routing_strategy",
        ),
        (
            "router_settings:\n  allowed_fails_policy: {NoSuchErrorAllowedFails: 1}\n",
            "router_settings.allowed_fails_policy.NoSuchErrorAllowedFails",
        ),
        (
            "router_settings:\n  allowed_fails_policy: {RateLimitErrorAllowedFails: many}\n",
            "router_settings.allowed_fails_policy.RateLimitErrorAllowedFails",
        ),
        (
            "router_settings:\n  retry_after: -1\n",
            "router_settings.retry_after",
        ),
        (
            "router_settings:\n  routing_strategy_args: {ttl: soon}\n",
            "router_settings.routing_strategy_args",
        ),
        (
            "model_list:\n  - model_name: m\n    litellm_params: {model: openai/m, api_base: 'http://x', max_parallel_requests: -2}\n",
            "model_list[0].litellm_params.max_parallel_requests",
        ),
    ] {
        let err = llmgate::config::Settings::from_yaml(yaml, &Default::default())
            .expect_err(yaml)
            .to_string();
        assert!(err.contains(path), "{yaml}: {err}");
    }
}

#[test]
fn a_config_of_only_implemented_keys_has_no_warning() {
    let settings = load(
        r#"
model_list:
  - model_name: m
    litellm_params: {model: openai/x, api_base: "http://127.0.0.1:9/v1", api_key: k, rpm: 5, temperature: 0.1}
    model_info: {id: m-1, mode: chat, max_tokens: 10, free_field: yes}
litellm_settings: {drop_params: true, num_retries: 1, request_timeout: 5, allowed_fails: 1, cooldown_time: 1, set_verbose: false, turn_off_message_logging: true}
router_settings: {routing_strategy: simple-shuffle, allowed_fails: 1, cooldown_time: 1, disable_cooldowns: true, num_retries: 1, timeout: 5, stream_timeout: 1}
general_settings: {master_key: sk-x, max_request_size_mb: 1, litellm_key_header_name: X-K, always_include_stream_usage: true}
"#,
    );

    assert!(settings.warnings().is_empty(), "{:#?}", settings.warnings());
}

#[test]
fn os_environ_references_resolve_anywhere_through_environment_variables() {
    let settings = load(
        r#"
environment_variables:
  LLMGATE_IT_OVERLAY_KEY: sk-from-the-overlay
  LLMGATE_IT_OVERLAY_TAG: tag-from-the-overlay
  LLMGATE_IT_OVERLAY_RPM: "60"
  LLMGATE_IT_OVERLAY_RETRIES: 3
model_list:
  - model_name: m
    litellm_params:
      model: openai/x
      api_base: http://127.0.0.1:9/v1
      api_key: os.environ/LLMGATE_IT_OVERLAY_KEY
      rpm: os.environ/LLMGATE_IT_OVERLAY_RPM
      headers: {X-Tag: os.environ/LLMGATE_IT_OVERLAY_TAG}
      extra_body: {tags: [plain, os.environ/LLMGATE_IT_OVERLAY_TAG]}
    model_info:
      labels: [{name: os.environ/LLMGATE_IT_OVERLAY_TAG}]
litellm_settings:
  num_retries: os.environ/LLMGATE_IT_OVERLAY_RETRIES
general_settings:
  master_key: os.environ/LLMGATE_IT_OVERLAY_KEY
"#,
    );

    let d = &settings.deployments[0];
    assert_eq!(
        d.api_key.as_ref().map(|k| k.expose()),
        Some("sk-from-the-overlay")
    );
    assert_eq!(d.rpm, Some(60));
    assert_eq!(
        d.headers,
        vec![("X-Tag".to_owned(), "tag-from-the-overlay".to_owned())]
    );
    assert_eq!(
        d.defaults["extra_body"],
        json!({"tags": ["plain", "tag-from-the-overlay"]})
    );
    assert_eq!(d.model_info["labels"][0]["name"], "tag-from-the-overlay");
    assert_eq!(settings.num_retries, 3);
    assert_eq!(
        settings.master_key.as_ref().map(|k| k.expose()),
        Some("sk-from-the-overlay")
    );
}

#[test]
fn a_missing_variable_is_an_error_naming_the_yaml_path() {
    let cases = [
        (
            "model_list:\n  - model_name: m\n    litellm_params:\n      model: openai/x\n      api_key: os.environ/LLMGATE_IT_SURELY_UNSET_1\n",
            "model_list[0].litellm_params.api_key: ",
        ),
        (
            "model_list:\n  - model_name: m\n    litellm_params: {model: openai/x, api_base: 'http://h'}\n    model_info:\n      labels: [a, os.environ/LLMGATE_IT_SURELY_UNSET_2]\n",
            "model_list[0].model_info.labels[1]: ",
        ),
        (
            "general_settings:\n  master_key: os.environ/LLMGATE_IT_SURELY_UNSET_3\n",
            "general_settings.master_key: ",
        ),
        (
            "environment_variables:\n  SOME_NAME: os.environ/LLMGATE_IT_SURELY_UNSET_4\n",
            "environment_variables.SOME_NAME: ",
        ),
    ];
    for (yaml, path) in cases {
        let err = load_error(yaml);
        assert!(err.starts_with(path), "expected {path:?}…, got {err:?}");
        assert!(err.contains("LLMGATE_IT_SURELY_UNSET_"), "{err}");
    }
}

#[actix_rt::test]
async fn os_environ_reads_the_real_process_environment() {
    let mock = MockUpstream::start().await;
    let dir = temp_dir("process-env");
    let path = dir.join("config.yaml");
    let yaml = format!(
        "model_list:\n  - model_name: m\n    litellm_params:\n      model: openai/x\n      api_base: {}\n      api_key: os.environ/LLMGATE_IT_PROCESS_ONLY_KEY\n      rpm: os.environ/LLMGATE_IT_PROCESS_ONLY_RPM\n",
        mock.v1()
    );
    std::fs::write(&path, yaml).unwrap();
    let config = path.display().to_string();
    let gateway = actix_rt::task::spawn_blocking(move || {
        Process::spawn(
            &["--config", &config],
            &[
                ("LLMGATE_IT_PROCESS_ONLY_KEY", "sk-from-the-process-env"),
                ("LLMGATE_IT_PROCESS_ONLY_RPM", "60"),
            ],
        )
    })
    .await
    .unwrap();

    let client = awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish();
    let res = client
        .post(format!("{}/v1/chat/completions", gateway.base))
        .send_json(&chat_body("m"))
        .await
        .expect("the gateway answers");

    assert_eq!(res.status().as_u16(), 200, "{}", gateway.log());
    assert_eq!(
        mock.last().headers.get("authorization").map(String::as_str),
        Some("Bearer sk-from-the-process-env")
    );
}

#[test]
fn numbers_and_booleans_given_as_strings_are_converted() {
    let settings = load(
        r#"
model_list:
  - model_name: m
    litellm_params: {model: openai/x, api_base: "http://h/v1", rpm: "60", tpm: "1000", weight: "2.5", timeout: "30"}
litellm_settings:
  num_retries: "3"
  request_timeout: "45"
router_settings:
  disable_cooldowns: "true"
  cooldown_time: "7"
  allowed_fails: "2"
general_settings:
  max_request_size_mb: "1"
  always_include_stream_usage: "True"
"#,
    );

    let d = &settings.deployments[0];
    assert_eq!(d.rpm, Some(60));
    assert_eq!(d.tpm, Some(1000));
    assert_eq!(d.weight, Some(2.5));
    assert_eq!(d.timeout, Some(Duration::from_secs(30)));
    assert_eq!(settings.num_retries, 3);
    assert_eq!(settings.request_timeout, Duration::from_secs(45));
    assert!(settings.cooldown.disabled);
    assert_eq!(settings.cooldown.cooldown_time, Duration::from_secs(7));
    assert_eq!(settings.cooldown.allowed_fails, 2);
    assert_eq!(settings.max_request_size, 1024 * 1024);
    assert!(settings.always_include_stream_usage);
}

/// Three deployments, the last one with `params` added to its `litellm_params`.
fn third_entry_with(params: &str) -> String {
    format!(
        "model_list:\n  - {{model_name: a, litellm_params: {{model: openai/a, api_base: 'http://h/v1'}}}}\n  - {{model_name: b, litellm_params: {{model: openai/b, api_base: 'http://h/v1'}}}}\n  - model_name: c\n    litellm_params: {{model: openai/c, api_base: 'http://h/v1', {params}}}\n"
    )
}

#[test]
fn wrong_types_and_bad_values_are_errors_naming_the_yaml_path() {
    let cases = [
        (third_entry_with("rpm: lots"), "model_list[2].litellm_params.rpm: expected"),
        (third_entry_with("tpm: -5"), "model_list[2].litellm_params.tpm: expected"),
        (third_entry_with("weight: heavy"), "model_list[2].litellm_params.weight: expected"),
        (third_entry_with("timeout: [1]"), "model_list[2].litellm_params.timeout: expected"),
        (third_entry_with("timeout: -1"), "model_list[2].litellm_params.timeout: "),
        (third_entry_with("headers: just-a-string"), "model_list[2].litellm_params.headers: "),
        (
            "model_list:\n  - model_name: m\n    litellm_params: {model: openai/x, api_base: 'http://h'}\n    model_info: [1, 2]\n".to_owned(),
            "model_list[0].model_info: ",
        ),
        (
            "model_list:\n  - model_name: m\n    litellm_params: [1]\n".to_owned(),
            "model_list[0].litellm_params: ",
        ),
        (
            "model_list:\n  - model_name: m\n".to_owned(),
            "model_list[0].litellm_params: ",
        ),
        ("model_list: {a: 1}\n".to_owned(), "model_list: "),
        (
            "litellm_settings:\n  num_retries: [1]\n".to_owned(),
            "litellm_settings.num_retries: expected",
        ),
        (
            "litellm_settings:\n  drop_params: sometimes\n".to_owned(),
            "litellm_settings.drop_params: expected",
        ),
        (
            "router_settings:\n  disable_cooldowns: maybe\n".to_owned(),
            "router_settings.disable_cooldowns: expected",
        ),
        (
            "router_settings:\n  routing_strategy: fastest-please\n".to_owned(),
            "router_settings.routing_strategy: ",
        ),
        (
            "general_settings:\n  max_request_size_mb: big\n".to_owned(),
            "general_settings.max_request_size_mb: expected",
        ),
        (
            "general_settings:\n  max_request_size_mb: -3\n".to_owned(),
            "general_settings.max_request_size_mb: ",
        ),
        ("router_settings: [1]\n".to_owned(), "router_settings: "),
    ];
    for (yaml, prefix) in cases {
        let err = load_error(&yaml);
        assert!(
            err.starts_with(prefix),
            "expected {prefix:?}…, got {err:?}\n{yaml}"
        );
    }
}

#[test]
fn an_unknown_bare_model_name_is_an_error_naming_its_path() {
    let err = load_error(
        "model_list:\n  - model_name: m\n    litellm_params: {model: my-private-model, api_base: 'http://h/v1'}\n",
    );

    assert!(
        err.starts_with("model_list[0].litellm_params.model: "),
        "{err}"
    );
    assert!(err.contains("my-private-model"), "{err}");
}

#[test]
fn an_unknown_provider_prefix_is_an_error_naming_its_path() {
    let err = load_error(
        "model_list:\n  - model_name: m\n    litellm_params: {model: nonsense/x, api_base: 'http://h/v1'}\n",
    );

    assert!(
        err.starts_with("model_list[0].litellm_params.model: "),
        "{err}"
    );
}

#[test]
fn well_known_bare_names_load_with_their_provider() {
    let settings = load(
        "model_list:\n  - {model_name: g, litellm_params: {model: gpt-4, api_key: k}}\n  - {model_name: c, litellm_params: {model: claude-2, api_key: k}}\n  - {model_name: m, litellm_params: {model: command-r-plus, api_key: k}}\n  - {model_name: b, litellm_params: {model: bedrock/anthropic.claude-3-haiku, api_key: k}}\n",
    );

    let gpt = &settings.deployments[0];
    assert_eq!(gpt.provider.name(), "openai");
    assert_eq!(gpt.upstream_model, "gpt-4");
    assert_eq!(settings.deployments[1].provider.name(), "anthropic");
    assert_eq!(settings.deployments[2].provider.name(), "cohere_chat");
    assert_eq!(settings.deployments[2].upstream_model, "command-r-plus");
    assert_eq!(settings.deployments[3].provider.name(), "bedrock");
    assert_eq!(
        settings.deployments[3].upstream_model,
        "anthropic.claude-3-haiku"
    );
    assert!(settings.warnings().is_empty(), "{:?}", settings.warnings());
}

#[actix_rt::test]
async fn a_bare_gpt_4_deployment_calls_its_upstream_as_gpt_4() {
    let mock = MockUpstream::start().await;
    let gw = Gateway::start(&format!(
        "model_list:\n  - model_name: smart\n    litellm_params: {{model: gpt-4, api_base: '{}', api_key: sk-bare}}\n",
        mock.v1()
    ))
    .await;

    let reply = gw
        .post("/v1/chat/completions", None, &chat_body("smart"))
        .await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(mock.last().body["model"], "gpt-4");
}

const TWO_ENTRIES: &str = r#"
model_list:
  - model_name: g
    litellm_params: {model: openai/x, api_base: "http://127.0.0.1:9/v1", api_key: sk-first-key}
  - model_name: g
    litellm_params: {model: openai/x, api_base: "http://127.0.0.1:9/v1", api_key: sk-second-key}
  - model_name: h
    litellm_params: {model: openai/x, api_base: "http://127.0.0.1:9/v1", api_key: sk-first-key}
"#;

#[test]
fn generated_ids_are_the_same_on_every_load() {
    let first = load(TWO_ENTRIES);
    let second = load(TWO_ENTRIES);

    for (a, b) in first.deployments.iter().zip(&second.deployments) {
        assert!(!a.id.is_empty());
        assert_eq!(a.id, b.id);
        assert_eq!(a.model_info["id"], json!(a.id));
    }
}

#[test]
fn every_entry_gets_its_own_generated_id() {
    let settings = load(TWO_ENTRIES);

    let ids: BTreeSet<&str> = settings.deployments.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(
        ids.len(),
        settings.deployments.len(),
        "entries differing only in their api_key share an id: {:?}",
        settings
            .deployments
            .iter()
            .map(|d| &d.id)
            .collect::<Vec<_>>()
    );
}

#[test]
fn a_generated_id_is_not_the_api_key() {
    let settings = load(TWO_ENTRIES);

    for d in &settings.deployments {
        assert!(!d.id.contains("sk-first-key") && !d.id.contains("sk-second-key"));
    }
}

#[actix_rt::test]
async fn the_deployment_id_is_sent_as_x_litellm_model_id() {
    let mock = MockUpstream::start().await;
    let yaml = format!(
        r#"
model_list:
  - model_name: named
    litellm_params: {{model: openai/x, api_base: "{base}", api_key: k}}
    model_info: {{id: my-deployment-7}}
  - model_name: generated
    litellm_params: {{model: openai/y, api_base: "{base}", api_key: k}}
"#,
        base = mock.v1()
    );
    let expected_generated = load(&yaml).deployments[1].id.clone();
    let gw = Gateway::start(&yaml).await;

    let named = gw
        .post("/v1/chat/completions", None, &chat_body("named"))
        .await;
    let generated = gw
        .post("/v1/chat/completions", None, &chat_body("generated"))
        .await;

    assert_eq!(named.status, 200, "{}", named.text);
    assert_eq!(named.header("x-litellm-model-id"), Some("my-deployment-7"));
    assert_eq!(generated.status, 200, "{}", generated.text);
    assert_eq!(
        generated.header("x-litellm-model-id"),
        Some(expected_generated.as_str())
    );
}

fn example(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The master key a reader of the README exports before running the mock example.
const MOCK_MASTER: &str = "sk-readme-mock-master-7f3a9c2e";

/// `config/mock.yaml` with `LITELLM_MASTER_KEY` set, as the README's command runs it.
fn mock_example() -> String {
    format!(
        "environment_variables:\n  LITELLM_MASTER_KEY: {MOCK_MASTER}\n{}",
        example("mock.yaml")
    )
}

#[test]
fn the_mock_example_config_loads_without_warnings() {
    let settings = load(&mock_example());

    assert_eq!(settings.deployments.len(), 4);
    assert_eq!(
        settings.master_key.as_ref().map(|k| k.expose()),
        Some(MOCK_MASTER)
    );
    assert!(settings.warnings().is_empty(), "{:?}", settings.warnings());
}

#[test]
fn the_example_configs_publish_no_master_key() {
    for name in ["mock.yaml", "providers.yaml", "docker.yaml"] {
        let text = example(name);
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with("master_key:"))
            .unwrap_or_else(|| panic!("{name} sets no master key"));
        assert_eq!(
            line.trim(),
            "master_key: os.environ/LITELLM_MASTER_KEY",
            "{name}"
        );
    }
}

#[actix_rt::test]
async fn the_mock_example_config_answers_without_any_upstream() {
    let gw = Gateway::start(&mock_example()).await;

    let reply = gw
        .post(
            "/v1/chat/completions",
            Some(MOCK_MASTER),
            &chat_body("gpt-4o-mini"),
        )
        .await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    let content = reply.json()["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(content.starts_with("Hello from llmgate"), "{content}");
}

#[test]
fn the_providers_example_config_loads_with_its_variables_supplied() {
    let overlay = "environment_variables:\n  OPENAI_API_KEY: sk-example-openai\n  AZURE_API_BASE: https://example.openai.azure.com\n  AZURE_API_KEY: example-azure-key\n  GROQ_API_KEY: gsk-example\n  LITELLM_MASTER_KEY: sk-example-master\n";
    let yaml = format!("{overlay}{}", example("providers.yaml"));

    let settings = load(&yaml);

    assert_eq!(settings.deployments.len(), 5);
    let names: Vec<&str> = settings
        .deployments
        .iter()
        .map(|d| d.provider.name())
        .collect();
    assert_eq!(names, ["openai", "azure", "groq", "openai", "openai"]);
    assert_eq!(
        settings.deployments[0].api_key.as_ref().map(|k| k.expose()),
        Some("sk-example-openai")
    );
    assert_eq!(
        settings.deployments[1].api_base,
        "https://example.openai.azure.com"
    );
    assert_eq!(
        settings.master_key.as_ref().map(|k| k.expose()),
        Some("sk-example-master")
    );
    assert!(settings.warnings().is_empty(), "{:?}", settings.warnings());
}
