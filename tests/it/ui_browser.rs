//! The admin UI in a real browser: `tests/ui/admin.mjs` drives headless Chromium (through
//! playwright-core) against the real binary, whose model is served by the mock upstream.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::binary::{temp_dir, Process};
use crate::support::MockUpstream;

const MASTER: &str = "sk-ui-browser-master";
const MODEL: &str = "ui-model";

fn ui_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui")
}

fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

/// playwright-core from `tests/ui/package-lock.json`, installed with `npm ci` when missing.
fn ensure_playwright(dir: &Path) {
    if dir.join("node_modules/playwright-core").is_dir() {
        return;
    }
    let out = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "the browser test needs Node.js and npm ({e}); then run: npm ci --prefix tests/ui"
            )
        });
    assert!(
        out.status.success(),
        "`npm ci` in tests/ui failed; run it by hand: npm ci --prefix tests/ui\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[actix_rt::test]
async fn an_admin_logs_in_creates_a_key_sees_its_spend_and_blocks_it_in_headless_chromium() {
    let dir = ui_dir();
    assert!(
        Path::new(&chromium()).exists(),
        "the browser test needs Chromium at {} (apt-get install -y chromium, or set CHROMIUM)",
        chromium()
    );
    ensure_playwright(&dir);

    let mock = MockUpstream::start().await;
    let work = temp_dir("ui-browser");
    let config = work.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "model_list:\n  - model_name: {MODEL}\n    litellm_params: {{model: openai/gpt-ui, \
             api_base: '{}', api_key: sk-upstream, input_cost_per_token: 0.000001, \
             output_cost_per_token: 0.000002}}\ngeneral_settings:\n  master_key: {MASTER}\n",
            mock.v1()
        ),
    )
    .unwrap();
    let gateway = Process::spawn(&["--config", config.to_str().unwrap()], &[]);
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ui-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();

    // The mock upstream answers on this thread's runtime: wait for node without blocking it.
    let (stdout, stderr) = (work.join("node.out"), work.join("node.err"));
    let mut node = Command::new("node")
        .arg(dir.join("admin.mjs"))
        .args([&gateway.base, MASTER, MODEL])
        .env("UI_ARTIFACTS", &artifacts)
        .env("CHROMIUM", chromium())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .expect("node runs (the browser test needs Node.js)");
    let deadline = Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(status) = node.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            node.kill().ok();
            node.wait().ok();
            break None;
        }
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    };
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    assert!(
        status.is_some_and(|s| s.success()),
        "the browser test {} (screenshots in {}):\n--- its output\n{}\n--- its errors\n{}\n--- the gateway's log\n{}",
        if status.is_some() { "failed" } else { "timed out after 180 s" },
        artifacts.display(),
        read(&stdout),
        read(&stderr),
        gateway.log(),
    );
    assert!(
        mock.call_count() >= 2,
        "the UI's key was used through the mock upstream"
    );
}
