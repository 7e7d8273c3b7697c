//! What can be checked of the Docker files without a Docker engine: the mounted config loads,
//! and every flag the image passes exists.

use std::path::Path;

use llmgate::config::{CliOverrides, Settings};
use serde_yaml::Value;

use crate::support::binary::bin;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
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

#[test]
fn compose_mounts_a_config_that_loads_and_passes_only_real_flags() {
    let text = std::fs::read_to_string(root().join("docker/docker-compose.yml")).unwrap();
    let compose: Value = serde_yaml::from_str(&text).unwrap();
    let service = &compose["services"]["llmgate"];
    let volume = service["volumes"][0].as_str().unwrap();
    // "${LLMGATE_CONFIG:-../config/mock.yaml}:/app/config.yaml:ro"
    let host_path = volume
        .split(":-")
        .nth(1)
        .unwrap()
        .split('}')
        .next()
        .unwrap();
    let config = root().join("docker").join(host_path);
    let settings = Settings::load(Some(&config), &CliOverrides::default()).unwrap();
    assert!(!settings.deployments.is_empty());
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

#[test]
fn the_dockerfile_default_command_uses_real_flags_and_a_shipped_config() {
    let text = std::fs::read_to_string(root().join("docker/Dockerfile")).unwrap();
    let cmd_line = text.lines().find(|l| l.starts_with("CMD ")).unwrap();
    let cmd: Vec<String> = serde_json::from_str(cmd_line.trim_start_matches("CMD ")).unwrap();
    let help = help_text();
    for flag in flags(&cmd) {
        assert!(help.contains(flag), "llmgate has no {flag}");
    }
    let config = cmd[1].trim_start_matches("/app/");
    Settings::load(Some(&root().join(config)), &CliOverrides::default()).unwrap();
    assert!(text.contains("ENTRYPOINT [\"llmgate\"]"));
}
