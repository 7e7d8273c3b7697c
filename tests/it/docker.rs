//! What can be checked of the Docker files without a Docker engine: the compose file is well
//! formed (services with health checks, started in order, a volume for the database), every
//! flag and environment variable it passes exists, the master key comes from `.env`, and the
//! config it mounts runs for real with that environment (on this machine's PostgreSQL and Redis
//! standing in for the compose stack's).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use llmgate::config::{CliOverrides, Settings};
use serde_yaml::Value;

use crate::support::binary::{bin, Process};
use crate::support::db::TestDb;
use crate::support::eventually;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn help_text() -> String {
    let out = bin().arg("--help").output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

fn flags(args: &[String]) -> Vec<&str> {
    args.iter()
        .map(String::as_str)
        .filter(|a| a.starts_with("--"))
        .collect()
}

fn compose() -> Value {
    serde_yaml::from_str(&read("docker/docker-compose.yml")).expect("the compose file is YAML")
}

/// `docker/.env.example` as name → value.
fn env_example() -> BTreeMap<String, String> {
    read("docker/.env.example")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// `docker/.env` as an operator writes it: the example with a generated master key.
fn dot_env() -> BTreeMap<String, String> {
    let mut env = env_example();
    let key = format!("sk-{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
    env.insert("LITELLM_MASTER_KEY".into(), key);
    env
}

/// Expands compose's `${NAME}`, `${NAME:-default}` and `${NAME:?error}` in `text` from `env`;
/// `Err` names a required variable that is missing.
fn interpolate(text: &str, env: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("a closing brace") + start;
        let inner = &rest[start + 2..end];
        let set = |name: &str| env.get(name).filter(|v| !v.is_empty()).cloned();
        let value = if let Some((name, default)) = inner.split_once(":-") {
            set(name).unwrap_or_else(|| default.to_owned())
        } else if let Some((name, _)) = inner.split_once(":?") {
            set(name).ok_or_else(|| name.to_owned())?
        } else {
            set(inner).unwrap_or_default()
        };
        out.push_str(&value);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The llmgate service's environment, as compose would pass it with `env`.
fn service_env(env: &BTreeMap<String, String>) -> Result<Vec<(String, String)>, String> {
    let compose = compose();
    let vars = compose["services"]["llmgate"]["environment"]
        .as_mapping()
        .expect("environment is a mapping")
        .iter()
        .map(|(k, v)| {
            let value = v.as_str().map(str::to_owned).unwrap_or_default();
            Ok((k.as_str().unwrap().to_owned(), interpolate(&value, env)?))
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(vars)
}

/// Environment variables llmgate reads (COMPAT.md and the README), and what the mounted config
/// reads with `os.environ/NAME`.
fn read_by_llmgate(config: &str) -> Vec<String> {
    let mut names: Vec<String> = [
        "LITELLM_MASTER_KEY",
        "DATABASE_URL",
        "REDIS_HOST",
        "REDIS_PORT",
        "REDIS_PASSWORD",
        "REDIS_URL",
        "RUST_LOG",
        "LLMGATE_SQLITE_PATH",
        "LLMGATE_REDIS_NAMESPACE",
    ]
    .map(str::to_owned)
    .to_vec();
    for (i, _) in config.match_indices("os.environ/") {
        let name: String = config[i + "os.environ/".len()..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        names.push(name);
    }
    names
}

#[test]
fn compose_runs_llmgate_postgres_and_redis_with_health_checks_in_order() {
    let compose = compose();
    let services = &compose["services"];
    for name in ["llmgate", "postgres", "redis"] {
        let test = &services[name]["healthcheck"]["test"];
        assert!(test.is_sequence(), "{name} has no health check");
    }
    for dependency in ["postgres", "redis"] {
        assert_eq!(
            services["llmgate"]["depends_on"][dependency]["condition"].as_str(),
            Some("service_healthy"),
            "llmgate waits for {dependency} to be healthy"
        );
    }
    // The database lives in a named volume.
    let volume = services["postgres"]["volumes"][0].as_str().unwrap();
    let (name, mount) = volume.split_once(':').unwrap();
    assert_eq!(mount, "/var/lib/postgresql/data");
    assert!(compose["volumes"].get(name).is_some(), "{name} is declared");
    // The health check calls a route that needs no key.
    let probe: Vec<String> =
        serde_yaml::from_value(services["llmgate"]["healthcheck"]["test"].clone()).unwrap();
    assert!(probe.iter().any(|a| a.ends_with("/health/readiness")));
    // The image ships curl for it, and runs as a user that is not root.
    let dockerfile = read("docker/Dockerfile");
    assert!(dockerfile.contains("curl"));
    let user = dockerfile
        .lines()
        .rfind(|l| l.starts_with("USER "))
        .unwrap();
    assert!(!user.contains("root"), "{user}");
    assert!(
        dockerfile.matches("FROM ").count() >= 2,
        "a multi-stage build"
    );
}

#[test]
fn the_master_key_comes_from_dot_env_and_every_variable_passed_is_read() {
    // Without .env, compose refuses to start rather than run with a default key.
    let missing = service_env(&BTreeMap::new()).unwrap_err();
    assert_eq!(missing, "LITELLM_MASTER_KEY");
    // Nor with the example's key left as it is: it ships none, so none is ever published.
    assert_eq!(env_example()["LITELLM_MASTER_KEY"], "");
    assert_eq!(
        service_env(&env_example()).unwrap_err(),
        "LITELLM_MASTER_KEY"
    );
    let example = dot_env();
    let key = &example["LITELLM_MASTER_KEY"];
    let env = service_env(&example).unwrap();
    assert!(env.contains(&("LITELLM_MASTER_KEY".into(), key.clone())));
    // Every variable the compose file passes is one llmgate or its config reads.
    let config = read("config/docker.yaml");
    let known = read_by_llmgate(&config);
    for (name, _) in &env {
        assert!(known.contains(name), "llmgate never reads {name}");
    }
    // And every one the config reads is passed (else the config would not load).
    for (i, _) in config.match_indices("os.environ/") {
        let line = config[..i].lines().last().unwrap_or_default();
        if line.trim_start().starts_with('#') {
            continue;
        }
        let name: String = config[i + "os.environ/".len()..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        assert!(
            env.iter().any(|(k, _)| *k == name),
            "the config reads {name}, which compose does not pass"
        );
    }
}

#[test]
fn compose_mounts_the_docker_config_and_passes_only_real_flags() {
    let compose = compose();
    let service = &compose["services"]["llmgate"];
    let volume = service["volumes"][0].as_str().unwrap();
    // "${LLMGATE_CONFIG:-../config/docker.yaml}:/app/config.yaml:ro"
    let host_path = interpolate(volume, &BTreeMap::new()).unwrap();
    let host_path = host_path.split(':').next().unwrap();
    assert_eq!(host_path, "../config/docker.yaml");
    assert!(root().join("docker").join(host_path).exists());
    let command: Vec<String> = serde_yaml::from_value(service["command"].clone()).unwrap();
    assert_eq!(
        command[1], "/app/config.yaml",
        "the command reads the mounted file"
    );
    let help = help_text();
    for flag in flags(&command) {
        assert!(help.contains(flag), "llmgate has no {flag}");
    }
}

#[actix_rt::test]
async fn the_mounted_config_runs_with_the_environment_compose_passes() {
    // The compose stack's PostgreSQL and Redis, played by this machine's.
    let db = TestDb::postgres();
    let dot_env = dot_env();
    let env = service_env(&dot_env).unwrap();
    let key = dot_env["LITELLM_MASTER_KEY"].clone();
    let env: Vec<(String, String)> = env
        .into_iter()
        .map(|(k, v)| match k.as_str() {
            "DATABASE_URL" => (k, db.url.clone()),
            "REDIS_HOST" => (k, "127.0.0.1".into()),
            _ => (k, v),
        })
        .chain([(
            "LLMGATE_REDIS_NAMESPACE".into(),
            format!("llmgate-docker-{}", fastrand::u64(..)),
        )])
        .collect();
    let config = root().join("config/docker.yaml").display().to_string();
    let gateway = actix_rt::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Process::spawn(&["--config", &config], &env)
    })
    .await
    .unwrap();
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(20))
        .finish();
    let ready = eventually(Duration::from_secs(10), async || {
        let Ok(mut r) = client
            .get(format!("{}/health/readiness", gateway.base))
            .send()
            .await
        else {
            return false;
        };
        let body: serde_json::Value = r.json().await.unwrap_or_default();
        body["db"] == "connected" && body["cache"] == "redis"
    })
    .await;
    assert!(ready, "{}", gateway.log());
    let mut r = client
        .post(format!("{}/v1/chat/completions", gateway.base))
        .bearer_auth(&key)
        .send_json(&crate::support::chat_body("gpt-4o-mini"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", gateway.log());
    let _ = r.body().await;
    assert!(
        gateway.log().contains("sharing limits"),
        "redis in use: {}",
        gateway.log()
    );
}

#[test]
fn the_dockerfile_default_command_uses_real_flags_and_a_shipped_config() {
    let text = read("docker/Dockerfile");
    let cmd_line = text.lines().find(|l| l.starts_with("CMD ")).unwrap();
    let cmd: Vec<String> = serde_json::from_str(cmd_line.trim_start_matches("CMD ")).unwrap();
    let help = help_text();
    for flag in flags(&cmd) {
        assert!(help.contains(flag), "llmgate has no {flag}");
    }
    let config = cmd[1].trim_start_matches("/app/");
    // The image's default config reads the master key from the environment `docker run -e` gives.
    let yaml = format!(
        "environment_variables:\n  LITELLM_MASTER_KEY: sk-docker-run-default-0001\n{}",
        read(config)
    );
    Settings::from_yaml(&yaml, &CliOverrides::default()).unwrap();
    assert!(text.contains("ENTRYPOINT [\"llmgate\"]"));
}
