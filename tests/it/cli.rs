//! The real `llmgate` binary: its flags, its client modes, its exit codes and what it logs.

use std::fs::File;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use std::sync::{Arc, Mutex};

use crate::support::binary::{bin, free_port, temp_dir, Process};
use crate::support::upstream::Recorded;
use crate::support::{chat_body, eventually, Behavior, MockUpstream};

/// How a finished run of the binary ended.
struct Exited {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs the binary with `args` until it exits; fails the test if it is still running after 20 s.
async fn run_to_exit(args: &[&str], env: &[(&str, &str)]) -> Exited {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    actix_rt::task::spawn_blocking(move || {
        let dir = temp_dir("run");
        let (out_path, err_path) = (dir.join("stdout"), dir.join("stderr"));
        let mut child = bin()
            .args(&args)
            .env_remove("RUST_LOG")
            .env_remove("LITELLM_MASTER_KEY")
            .env_remove("DATABASE_URL")
            .env("LLMGATE_SQLITE_PATH", dir.join("llmgate.db"))
            .envs(env)
            .stdin(Stdio::null())
            .stdout(File::create(&out_path).unwrap())
            .stderr(File::create(&err_path).unwrap())
            .spawn()
            .unwrap();
        let read = |p: &PathBuf| std::fs::read_to_string(p).unwrap_or_default();
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                child.kill().ok();
                child.wait().ok();
                panic!(
                    "llmgate {args:?} did not exit; stderr:\n{}",
                    read(&err_path)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Exited {
            code: status.code(),
            stdout: read(&out_path),
            stderr: read(&err_path),
        }
    })
    .await
    .unwrap()
}

/// Starts the binary as a server (on a free port) without blocking the test's runtime.
async fn serve(args: &[&str], env: &[(&str, &str)]) -> Process {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    actix_rt::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Process::spawn(&args, &env)
    })
    .await
    .unwrap()
}

/// Writes `yaml` to a fresh config file.
fn write_config(tag: &str, yaml: &str) -> String {
    let path = temp_dir(tag).join("config.yaml");
    std::fs::write(&path, yaml).unwrap();
    path.display().to_string()
}

/// One reply from the binary's server, read whole.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Calls `base` + `path`: a POST of `body` when given, else a GET.
async fn call(base: &str, path: &str, key: Option<&str>, body: Option<&Value>) -> Answer {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish();
    let url = format!("{base}{path}");
    let mut req = match body {
        Some(_) => client.post(url),
        None => client.get(url),
    };
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let sent = match body {
        Some(b) => req.send_json(b).await,
        None => req.send().await,
    };
    let mut res = sent.expect("llmgate answers");
    let bytes = res
        .body()
        .limit(64 * 1024 * 1024)
        .await
        .expect("body reads");
    Answer {
        status: res.status().as_u16(),
        headers: res
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// The access log lines (those carrying `status=`) logged so far.
fn access_lines(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains("status="))
        .map(str::to_owned)
        .collect()
}

/// Waits until the process has logged at least `n` access lines.
async fn wait_for_access_lines(gateway: &Process, n: usize) -> Vec<String> {
    eventually(Duration::from_secs(10), async || {
        access_lines(&gateway.log()).len() >= n
    })
    .await;
    access_lines(&gateway.log())
}

/// Whether `line` carries a duration such as `12.3ms`.
fn has_duration(line: &str) -> bool {
    line.split_whitespace().any(|token| {
        token
            .strip_suffix("ms")
            .is_some_and(|n| n.parse::<f64>().is_ok_and(|n| n >= 0.0))
    })
}

#[actix_rt::test]
async fn version_prints_the_version_and_exits_0() {
    let run = run_to_exit(&["--version"], &[]).await;

    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stdout.contains(env!("CARGO_PKG_VERSION")),
        "stdout: {:?}",
        run.stdout
    );
}

#[actix_rt::test]
async fn an_unknown_flag_is_a_clear_error_with_exit_code_2() {
    let run = run_to_exit(&["--frobnicate-the-gateway"], &[]).await;

    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("--frobnicate-the-gateway"),
        "stderr does not name the flag: {}",
        run.stderr
    );
}

#[actix_rt::test]
async fn hyphenated_spellings_of_the_flags_are_accepted() {
    let mock = MockUpstream::start().await;
    let gateway = serve(
        &[
            "--model",
            "openai/m",
            "--api-base",
            &mock.v1(),
            "--num-workers",
            "1",
            "--request-timeout",
            "5",
            "--max-tokens",
            "7",
            "--drop-params",
        ],
        &[],
    )
    .await;

    let reply = call(
        &gateway.base,
        "/v1/chat/completions",
        None,
        Some(&chat_body("m")),
    )
    .await;

    assert_eq!(reply.status, 200, "{}\n{}", reply.text, gateway.log());
    assert_eq!(mock.last().body["max_tokens"], 7);
}

#[actix_rt::test]
async fn underscore_spellings_of_the_flags_set_request_defaults() {
    let mock = MockUpstream::start().await;
    let gateway = serve(
        &[
            "--model",
            "openai/m",
            "--api_base",
            &mock.v1(),
            "--num_workers",
            "1",
            "--request_timeout",
            "5",
            "--max_tokens",
            "7",
            "--temperature",
            "0.3",
            "--drop_params",
        ],
        &[],
    )
    .await;

    let reply = call(
        &gateway.base,
        "/v1/chat/completions",
        None,
        Some(&chat_body("m")),
    )
    .await;

    assert_eq!(reply.status, 200, "{}\n{}", reply.text, gateway.log());
    let seen = mock.last().body;
    assert_eq!(seen["max_tokens"], 7, "{seen}");
    assert_eq!(seen["temperature"], json!(0.3), "{seen}");
}

#[actix_rt::test]
async fn a_model_flag_without_config_serves_any_requested_name() {
    let mock = MockUpstream::start().await;
    let gateway = serve(&["--model", "openai/m", "--api_base", &mock.v1()], &[]).await;

    for name in ["whatever", "gpt-4o", "openai/m"] {
        let reply = call(
            &gateway.base,
            "/v1/chat/completions",
            None,
            Some(&chat_body(name)),
        )
        .await;

        assert_eq!(
            reply.status,
            200,
            "{name}: {}\n{}",
            reply.text,
            gateway.log()
        );
        let seen = mock.last();
        assert_eq!(seen.path, "/v1/chat/completions");
        assert_eq!(seen.body["model"], "m", "requested {name}");
    }
}

#[actix_rt::test]
async fn alias_is_the_public_name_of_the_model_flag() {
    let mock = MockUpstream::start().await;
    let gateway = serve(
        &[
            "--model",
            "openai/m",
            "--alias",
            "pretty-name",
            "--api_base",
            &mock.v1(),
        ],
        &[],
    )
    .await;

    let models = call(&gateway.base, "/v1/models", None, None).await;
    let reply = call(
        &gateway.base,
        "/v1/chat/completions",
        None,
        Some(&chat_body("pretty-name")),
    )
    .await;

    assert_eq!(models.status, 200, "{}", models.text);
    let ids: Vec<Value> = models.json()["data"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|m| m["id"].clone())
        .collect();
    assert_eq!(ids, vec![json!("pretty-name")]);
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.header("x-litellm-model-group"), Some("pretty-name"));
    assert_eq!(mock.last().body["model"], "m");
}

fn master_key_config(mock: &MockUpstream, master: &str) -> String {
    format!(
        "model_list:\n  - model_name: cli-model\n    litellm_params: {{model: openai/upstream-m, api_base: \"{}\", api_key: sk-up}}\ngeneral_settings:\n  master_key: {master}\n",
        mock.v1()
    )
}

#[actix_rt::test]
async fn test_flag_sends_one_chat_request_to_a_running_proxy_and_prints_the_reply() {
    let mock = MockUpstream::start().await;
    let config = write_config("cli-test", &master_key_config(&mock, "sk-cli-test-master"));
    let gateway = serve(&["--config", &config], &[]).await;
    let port = gateway.port.to_string();

    let run = run_to_exit(
        &["--test", "--port", &port, "--host", "127.0.0.1"],
        &[("LITELLM_MASTER_KEY", "sk-cli-test-master")],
    )
    .await;

    assert_eq!(
        run.code,
        Some(0),
        "stdout: {}\nstderr: {}",
        run.stdout,
        run.stderr
    );
    assert!(
        run.stdout.contains("mock says hi"),
        "stdout: {}",
        run.stdout
    );
    let seen = mock.last();
    assert_eq!(seen.path, "/v1/chat/completions");
    assert_eq!(seen.body["model"], "upstream-m");
}

#[actix_rt::test]
async fn test_flag_fails_when_the_proxy_refuses_the_key() {
    let mock = MockUpstream::start().await;
    let config = write_config(
        "cli-test-bad",
        &master_key_config(&mock, "sk-cli-test-master"),
    );
    let gateway = serve(&["--config", &config], &[]).await;
    let port = gateway.port.to_string();

    let run = run_to_exit(
        &["--test", "--port", &port, "--host", "127.0.0.1"],
        &[("LITELLM_MASTER_KEY", "sk-not-the-master")],
    )
    .await;

    assert_ne!(run.code, Some(0), "stdout: {}", run.stdout);
    assert_eq!(mock.call_count(), 0);
}

#[actix_rt::test]
async fn health_flag_prints_the_proxys_health_and_exits_0() {
    let mock = MockUpstream::start().await;
    let config = write_config(
        "cli-health",
        &master_key_config(&mock, "sk-cli-health-master"),
    );
    let gateway = serve(&["--config", &config], &[]).await;
    let port = gateway.port.to_string();

    let run = run_to_exit(
        &["--health", "--port", &port, "--host", "127.0.0.1"],
        &[("LITELLM_MASTER_KEY", "sk-cli-health-master")],
    )
    .await;

    assert_eq!(
        run.code,
        Some(0),
        "stdout: {}\nstderr: {}",
        run.stdout,
        run.stderr
    );
    let health: Value = serde_json::from_str(run.stdout.trim())
        .unwrap_or_else(|e| panic!("--health did not print JSON ({e}): {}", run.stdout));
    assert_eq!(health["healthy_count"], 1, "{health}");
    assert_eq!(health["unhealthy_count"], 0, "{health}");
}

#[actix_rt::test]
async fn a_config_error_exits_nonzero_and_names_the_yaml_path() {
    let config = write_config(
        "cli-bad-config",
        "model_list:\n  - {model_name: a, litellm_params: {model: openai/a, api_base: 'http://h/v1'}}\n  - model_name: b\n    litellm_params: {model: openai/b, api_base: 'http://h/v1', rpm: lots}\n",
    );
    let port = free_port().to_string();

    let run = run_to_exit(&["--config", &config, "--port", &port], &[]).await;

    assert!(matches!(run.code, Some(c) if c != 0), "exit {:?}", run.code);
    assert!(
        run.stderr.contains("model_list[1].litellm_params.rpm"),
        "stderr: {}",
        run.stderr
    );
}

#[actix_rt::test]
async fn a_missing_variable_exits_nonzero_naming_the_path_and_the_variable() {
    let config = write_config(
        "cli-missing-var",
        "model_list:\n  - model_name: a\n    litellm_params:\n      model: openai/a\n      api_key: os.environ/LLMGATE_IT_CLI_SURELY_UNSET\n",
    );
    let port = free_port().to_string();

    let run = run_to_exit(&["--config", &config, "--port", &port], &[]).await;

    assert!(matches!(run.code, Some(c) if c != 0), "exit {:?}", run.code);
    assert!(
        run.stderr.contains("model_list[0].litellm_params.api_key"),
        "stderr: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("LLMGATE_IT_CLI_SURELY_UNSET"),
        "stderr: {}",
        run.stderr
    );
}

#[actix_rt::test]
async fn a_missing_config_file_exits_nonzero_naming_the_file() {
    let missing = temp_dir("cli-missing-file")
        .join("nope.yaml")
        .display()
        .to_string();
    let port = free_port().to_string();

    let run = run_to_exit(&["--config", &missing, "--port", &port], &[]).await;

    assert!(matches!(run.code, Some(c) if c != 0), "exit {:?}", run.code);
    assert!(run.stderr.contains(&missing), "stderr: {}", run.stderr);
}

#[actix_rt::test]
async fn no_master_key_is_a_loud_startup_warning() {
    let mock = MockUpstream::start().await;
    let gateway = serve(&["--model", "openai/m", "--api_base", &mock.v1()], &[]).await;

    let warned = eventually(Duration::from_secs(10), async || {
        gateway
            .log()
            .lines()
            .any(|l| l.contains("WARN") && l.to_ascii_lowercase().contains("master key"))
    })
    .await;

    assert!(warned, "{}", gateway.log());
}

#[actix_rt::test]
async fn unimplemented_settings_are_named_in_one_startup_warning() {
    let mock = MockUpstream::start().await;
    let config = write_config(
        "cli-not-yet",
        &format!(
            "model_list:\n  - model_name: m\n    litellm_params: {{model: openai/m, api_base: \"{}\"}}\ngeneral_settings:\n  max_parallel_requests: 10\n  global_max_parallel_requests: 100\n",
            mock.v1()
        ),
    );
    let gateway = serve(&["--config", &config], &[]).await;

    let names = [
        "general_settings.max_parallel_requests",
        "general_settings.global_max_parallel_requests",
    ];
    let logged = eventually(Duration::from_secs(10), async || {
        gateway
            .log()
            .contains("general_settings.global_max_parallel_requests")
    })
    .await;
    assert!(logged, "{}", gateway.log());
    let log = gateway.log();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("general_settings.global_max_parallel_requests"))
        .collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert!(lines[0].contains("WARN"), "{}", lines[0]);
    for name in names {
        assert!(lines[0].contains(name), "{name} not in {}", lines[0]);
    }
}

const MASTER: &str = "sk-m-MASTERCANARY-0001";
const PROVIDER: &str = "sk-p-PROVIDERCANARY-0002";
const VIA_ENV: &str = "sk-e-ENVCANARY-0003";
const BAD_KEY: &str = "sk-b-BADKEYCANARY-0004";
const VIRTUAL: &str = "sk-v-VKEYCANARY-0005";
/// The distinctive middle of each secret: none of it may show, not even in part.
const CANARIES: &[&str] = &[
    "MASTERCANARY",
    "PROVIDERCANARY",
    "ENVCANARY",
    "BADKEYCANARY",
    "USERINFOCANARY",
    "VKEYCANARY",
    "LANGFUSECANARY",
    "HEADERCANARY",
];

/// A logging-callback receiver: records every request it gets, answers 200.
fn callback_receiver() -> (String, Arc<Mutex<Vec<Recorded>>>) {
    let calls: Arc<Mutex<Vec<Recorded>>> = Arc::default();
    let base = crate::support::serve(calls.clone(), |c| {
        c.default_service(actix_web::web::to(
            |req: actix_web::HttpRequest,
             body: bytes::Bytes,
             calls: actix_web::web::Data<Mutex<Vec<Recorded>>>| async move {
                calls.lock().unwrap().push(Recorded {
                    path: req.path().to_owned(),
                    query: req.query_string().to_owned(),
                    headers: Default::default(),
                    body: serde_json::from_slice(&body)
                        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into())),
                });
                actix_web::HttpResponse::Ok().json(json!({"ok": true}))
            },
        ));
    });
    (base, calls)
}

fn leaks(text: &str) -> Vec<&'static str> {
    CANARIES
        .iter()
        .copied()
        .filter(|c| text.contains(c))
        .collect()
}

#[actix_rt::test]
async fn secrets_never_appear_in_logs_metrics_model_info_health_errors_or_callbacks() {
    let mock = MockUpstream::start().await;
    let port = mock.base.rsplit(':').next().unwrap().to_owned();
    // An upstream that was there and went away: nothing listens on its port any more.
    let gone = MockUpstream::start().await;
    let gone_v1 = gone.v1();
    gone.stop().await;
    let (receiver, received) = callback_receiver();
    let config = write_config(
        "cli-secrets",
        &format!(
            r#"
environment_variables:
  LLMGATE_IT_CANARY_KEY: {VIA_ENV}
  LANGFUSE_PUBLIC_KEY: pk-lf-canary
  LANGFUSE_SECRET_KEY: sk-lf-LANGFUSECANARY-0006
  LANGFUSE_HOST: {receiver}
  GENERIC_LOGGER_ENDPOINT: {receiver}/generic
  GENERIC_LOGGER_HEADERS: "authorization=Bearer HEADERCANARY-0007"
litellm_settings:
  success_callback: [langfuse, generic_api]
  failure_callback: [langfuse, generic_api]
model_list:
  - model_name: good
    litellm_params: {{model: openai/good-model, api_base: "http://llmgate:USERINFOCANARY@127.0.0.1:{port}/v1", api_key: {PROVIDER}}}
  - model_name: via-env
    litellm_params: {{model: groq/env-model, api_base: "{v1}", api_key: os.environ/LLMGATE_IT_CANARY_KEY}}
  - model_name: azure-one
    litellm_params: {{model: azure/az-dep, api_base: "{base}", api_key: {PROVIDER}, api_version: "2024-06-01"}}
  - model_name: dead
    litellm_params: {{model: openai/dead-model, api_base: "{gone_v1}", api_key: {PROVIDER}}}
general_settings:
  master_key: {MASTER}
"#,
            v1 = mock.v1(),
            base = mock.base,
        ),
    );
    let gateway = serve(&["--config", &config, "--detailed_debug"], &[]).await;
    let base = gateway.base.clone();
    let mut streamed = chat_body("good");
    streamed["stream"] = json!(true);

    // A virtual key chosen by the caller: shown in /key/generate's answer once, nowhere else.
    let issued = call(
        &base,
        "/key/generate",
        Some(MASTER),
        Some(&json!({"key": VIRTUAL, "key_alias": "canary-key"})),
    )
    .await;
    assert_eq!(issued.status, 200, "{}", issued.text);
    let mut answers = Vec::new();
    let mut expect = |what: &str, answer: Answer, status: u16| {
        assert_eq!(answer.status, status, "{what}: {}", answer.text);
        answers.push((what.to_owned(), answer));
    };
    let chat = "/v1/chat/completions";
    expect(
        "good",
        call(&base, chat, Some(MASTER), Some(&chat_body("good"))).await,
        200,
    );
    expect(
        "streamed",
        call(&base, chat, Some(MASTER), Some(&streamed)).await,
        200,
    );
    expect(
        "via-env",
        call(&base, chat, Some(MASTER), Some(&chat_body("via-env"))).await,
        200,
    );
    expect(
        "azure",
        call(&base, chat, Some(MASTER), Some(&chat_body("azure-one"))).await,
        200,
    );
    let embed = json!({"model": "good", "input": "hi"});
    expect(
        "embeddings",
        call(&base, "/v1/embeddings", Some(MASTER), Some(&embed)).await,
        200,
    );
    expect(
        "bad key",
        call(&base, chat, Some(BAD_KEY), Some(&chat_body("good"))).await,
        401,
    );
    expect(
        "no key",
        call(&base, chat, None, Some(&chat_body("good"))).await,
        401,
    );
    expect(
        "unknown model",
        call(&base, chat, Some(MASTER), Some(&chat_body("nope"))).await,
        400,
    );
    mock.set(Behavior::Fail(
        500,
        r#"{"error":{"message":"upstream broke"}}"#.into(),
    ));
    expect(
        "upstream 500",
        call(&base, chat, Some(MASTER), Some(&chat_body("good"))).await,
        500,
    );
    mock.set(Behavior::default());
    expect(
        "unreachable",
        call(&base, chat, Some(MASTER), Some(&chat_body("dead"))).await,
        502,
    );
    expect(
        "model info",
        call(&base, "/model/info", Some(MASTER), None).await,
        200,
    );
    expect(
        "v1 model info",
        call(&base, "/v1/model/info", Some(MASTER), None).await,
        200,
    );
    expect(
        "model info, bad key",
        call(&base, "/model/info", Some(BAD_KEY), None).await,
        401,
    );
    expect(
        "models",
        call(&base, "/v1/models", Some(MASTER), None).await,
        200,
    );
    expect(
        "health",
        call(&base, "/health", Some(MASTER), None).await,
        200,
    );
    expect("metrics", call(&base, "/metrics", None, None).await, 200);
    expect(
        "model state",
        call(&base, "/model/state", Some(MASTER), None).await,
        200,
    );
    expect(
        "virtual key",
        call(&base, chat, Some(VIRTUAL), Some(&chat_body("good"))).await,
        200,
    );
    expect(
        "virtual key, streamed",
        call(&base, chat, Some(VIRTUAL), Some(&streamed)).await,
        200,
    );
    expect(
        "virtual key's own info",
        call(&base, "/key/info", Some(VIRTUAL), None).await,
        200,
    );
    expect(
        "virtual key on a management route",
        call(&base, "/key/list", Some(VIRTUAL), None).await,
        401,
    );
    let blocked = json!({"key": VIRTUAL});
    expect(
        "block",
        call(&base, "/key/block", Some(MASTER), Some(&blocked)).await,
        200,
    );
    expect(
        "blocked virtual key",
        call(&base, chat, Some(VIRTUAL), Some(&chat_body("good"))).await,
        401,
    );
    expect(
        "key list",
        call(
            &base,
            "/key/list?return_full_object=true",
            Some(MASTER),
            None,
        )
        .await,
        200,
    );
    expect(
        "spend logs",
        call(&base, "/spend/logs", Some(MASTER), None).await,
        200,
    );
    expect(
        "audit logs",
        call(&base, "/audit/logs", Some(MASTER), None).await,
        200,
    );
    let model_requests = 13;

    // The upstreams did get the real keys: the canaries are live secrets.
    assert!(mock
        .calls()
        .iter()
        .any(|c| c.headers.get("authorization").map(String::as_str)
            == Some(&format!("Bearer {PROVIDER}"))));
    assert!(mock
        .calls()
        .iter()
        .any(|c| c.headers.get("api-key").map(String::as_str) == Some(PROVIDER)));

    let mut found = Vec::new();
    for (what, answer) in &answers {
        for canary in leaks(&answer.text) {
            found.push(format!("{what} body: {canary}: {}", answer.text));
        }
        for (name, value) in &answer.headers {
            for canary in leaks(value) {
                found.push(format!("{what} header {name}: {canary}: {value}"));
            }
        }
    }
    let info = answers
        .iter()
        .find(|(what, _)| what == "model info")
        .map(|(_, a)| a.json())
        .unwrap_or_default();
    for entry in info["data"].as_array().cloned().unwrap_or_default() {
        if entry["litellm_params"].get("api_key").is_some() {
            found.push(format!("/model/info shows api_key: {entry}"));
        }
    }
    let lines = wait_for_access_lines(&gateway, model_requests).await;
    assert!(lines.len() >= model_requests, "{}", gateway.log());
    let log = gateway.log();
    assert!(
        log.contains("DEBUG") || log.contains("TRACE"),
        "--detailed_debug logged no debug lines:\n{log}"
    );
    // --detailed_debug shows each upstream request as a curl command, its key masked.
    assert!(
        log.contains("curl -X POST") && log.contains("-H 'authorization: Bearer sk-p****0002'"),
        "no curl command with a masked key in the log:\n{log}"
    );
    for line in log.lines() {
        for canary in leaks(line) {
            found.push(format!("log: {canary}: {line}"));
        }
    }
    // The logging callbacks heard of the requests (successes and failures, the virtual key's
    // too) and were told no secret: only hashes and aliases. Their own credentials travel in
    // headers, as their receivers expect.
    let heard = eventually(Duration::from_secs(15), async || {
        let calls = received.lock().unwrap();
        let generic = calls.iter().filter(|c| c.path == "/generic").count();
        let text: String = calls.iter().map(|c| c.body.to_string()).collect();
        generic > 0
            && text.contains("canary-key")
            && text.contains("upstream broke")
            && text.contains("api.langfuse") | text.contains("generation-create")
    })
    .await;
    let calls = received.lock().unwrap().clone();
    assert!(heard, "callbacks: {calls:?}\nlog:\n{}", gateway.log());
    for c in &calls {
        let text = format!("{} {} {}", c.path, c.query, c.body);
        for canary in leaks(&text) {
            found.push(format!("callback {}: {canary}: {text}", c.path));
        }
    }
    // /metrics once every request is counted.
    let metrics = call(&base, "/metrics", None, None).await;
    for canary in leaks(&metrics.text) {
        found.push(format!("metrics: {canary}"));
    }
    assert!(found.is_empty(), "secrets leaked:\n{}", found.join("\n"));
}

#[actix_rt::test]
async fn every_model_request_gets_one_access_log_line_at_info_level() {
    let mock = MockUpstream::start().await;
    let config = write_config("cli-access", &master_key_config(&mock, "sk-access-master"));
    let gateway = serve(&["--config", &config], &[]).await;
    let base = gateway.base.clone();
    let key = Some("sk-access-master");

    let ok = call(
        &base,
        "/v1/chat/completions",
        key,
        Some(&chat_body("cli-model")),
    )
    .await;
    let unauthorized = call(
        &base,
        "/chat/completions",
        None,
        Some(&chat_body("cli-model")),
    )
    .await;
    let unknown = call(
        &base,
        "/v1/completions",
        key,
        Some(&json!({"model": "no-such-model", "prompt": "hi"})),
    )
    .await;
    let embedded = call(
        &base,
        "/v1/embeddings",
        key,
        Some(&json!({"model": "cli-model", "input": "hi"})),
    )
    .await;

    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(unauthorized.status, 401, "{}", unauthorized.text);
    assert_eq!(unknown.status, 400, "{}", unknown.text);
    assert_eq!(embedded.status, 200, "{}", embedded.text);
    let id = ok
        .header("x-litellm-model-id")
        .expect("a deployment id")
        .to_owned();
    let lines = wait_for_access_lines(&gateway, 4).await;
    assert_eq!(lines.len(), 4, "{}", gateway.log());
    let cases = [
        ("POST /v1/chat/completions ", 200, Some(&id)),
        ("POST /chat/completions ", 401, None),
        ("POST /v1/completions ", 400, None),
        ("POST /v1/embeddings ", 200, Some(&id)),
    ];
    for (route, status, deployment) in cases {
        let matching: Vec<&String> = lines.iter().filter(|l| l.contains(route)).collect();
        assert_eq!(matching.len(), 1, "{route}: {lines:#?}");
        let line = matching[0];
        assert!(line.contains("INFO"), "{line}");
        assert!(line.contains(&format!("status={status}")), "{line}");
        assert!(has_duration(line), "no duration in {line}");
        if let Some(id) = deployment {
            assert!(line.contains("model=cli-model"), "no model group in {line}");
            assert!(
                line.contains(&format!("deployment={id}")),
                "no deployment id in {line}"
            );
        }
    }
}

#[actix_rt::test]
async fn every_other_request_gets_one_access_log_line_too() {
    let mock = MockUpstream::start().await;
    let config = write_config(
        "cli-access-other",
        &master_key_config(&mock, "sk-access-master"),
    );
    let gateway = serve(&["--config", &config], &[]).await;
    let base = gateway.base.clone();
    let key = Some("sk-access-master");

    let cases = [
        ("/v1/models", key, 200),
        ("/model/info", key, 200),
        ("/v1/models", None, 401),
        ("/health/liveliness", None, 200),
        ("/no/such/route", key, 404),
    ];
    for (path, key, status) in cases {
        let answer = call(&base, path, key, None).await;
        assert_eq!(answer.status, status, "{path}: {}", answer.text);
    }

    let lines = wait_for_access_lines(&gateway, cases.len()).await;
    assert_eq!(lines.len(), cases.len(), "{}", gateway.log());
    for (path, _, status) in cases {
        let wanted = format!("GET {path} ");
        let status = format!("status={status}");
        assert!(
            lines
                .iter()
                .any(|l| l.contains(&wanted) && l.contains(&status) && has_duration(l)),
            "no access line for {wanted}{status}: {lines:#?}"
        );
    }
}
