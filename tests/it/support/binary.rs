//! Runs the real `llmgate` binary on a free port, for the command line and its logs.

use std::io::Read;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `llmgate` process; killed on drop.
pub struct Process {
    /// The child.
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The port.
    pub port: u16,
    /// Where stderr goes.
    pub log_path: PathBuf,
}

/// The binary under test.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_llmgate"))
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A temporary directory unique to this test run.
pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "llmgate-test-{tag}-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl Process {
    /// Starts `llmgate` with `args` plus `--host 127.0.0.1 --port <free>`, and waits until it answers.
    pub fn spawn(args: &[&str], env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let dir = temp_dir("proc");
        let log_path = dir.join("stderr.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let db_path = dir.join("llmgate.db");
        let mut cmd = bin();
        cmd.args(args)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .env_remove("RUST_LOG")
            .env_remove("LITELLM_MASTER_KEY")
            .env_remove("DATABASE_URL")
            .env("LLMGATE_SQLITE_PATH", &db_path)
            // A PostgreSQL-backed instance's journal would default to the working directory.
            .env("LLMGATE_SPEND_JOURNAL", dir.join("spend.journal"))
            .stdout(Stdio::null())
            .stderr(log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap();
        let p = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            port,
            log_path,
        };
        p.wait_ready();
        p
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("llmgate did not start: {}", self.log());
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log_path) {
            f.read_to_string(&mut s).ok();
        }
        s
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}
