//! The command line, flag for flag as `litellm`'s (COMPAT.md section 1), and what each mode does.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use crate::config::{CliOverrides, Settings};

/// llmgate: one OpenAI-compatible endpoint in front of many LLM providers (a LiteLLM proxy drop-in).
#[derive(Debug, Parser)]
#[command(name = "llmgate", version, about)]
pub struct Cli {
    /// LiteLLM config.yaml to load.
    #[arg(long, short = 'c')]
    pub config: Option<PathBuf>,
    /// Serve this one model with no config (e.g. openai/gpt-4o-mini).
    #[arg(long, short = 'm')]
    pub model: Option<String>,
    /// Public name for --model.
    #[arg(long)]
    pub alias: Option<String>,
    /// Base URL for --model.
    #[arg(long = "api_base", alias = "api-base")]
    pub api_base: Option<String>,
    /// API version for --model (Azure).
    #[arg(long = "api_version", alias = "api-version")]
    pub api_version: Option<String>,
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    pub host: String,
    /// Port to listen on.
    #[arg(long, default_value_t = 4000)]
    pub port: u16,
    /// Worker threads (default: the number of cores).
    #[arg(long = "num_workers", alias = "num-workers")]
    pub num_workers: Option<usize>,
    /// Log at debug level.
    #[arg(long)]
    pub debug: bool,
    /// Log at trace level.
    #[arg(long = "detailed_debug", alias = "detailed-debug")]
    pub detailed_debug: bool,
    /// Default temperature for every deployment.
    #[arg(long)]
    pub temperature: Option<f64>,
    /// Default max_tokens for every deployment.
    #[arg(long = "max_tokens", alias = "max-tokens")]
    pub max_tokens: Option<u64>,
    /// Whole-call timeout in seconds (default 600).
    #[arg(long = "request_timeout", alias = "request-timeout")]
    pub request_timeout: Option<f64>,
    /// Drop parameters a provider does not take instead of failing.
    #[arg(long = "drop_params", alias = "drop-params")]
    pub drop_params: bool,
    /// Put function definitions into the prompt for providers without function calling.
    #[arg(long = "add_function_to_prompt", alias = "add-function-to-prompt")]
    pub add_function_to_prompt: bool,
    /// Seconds an idle kept-alive connection stays open (default 5; also KEEPALIVE_TIMEOUT).
    #[arg(long = "keepalive_timeout", alias = "keepalive-timeout")]
    pub keepalive_timeout: Option<f64>,
    /// Send one chat request to a running proxy and print the reply.
    #[arg(long)]
    pub test: bool,
    /// Call a running proxy's /health and print it.
    #[arg(long)]
    pub health: bool,
    /// Start even with a weak master key (a published example, or under 16 characters).
    #[arg(long = "allow-weak-master-key", alias = "allow_weak_master_key")]
    pub allow_weak_master_key: bool,
}

impl Cli {
    fn overrides(&self) -> CliOverrides {
        CliOverrides {
            model: self.model.clone(),
            alias: self.alias.clone(),
            api_base: self.api_base.clone(),
            api_version: self.api_version.clone(),
            temperature: self.temperature,
            max_tokens: self.max_tokens,
            request_timeout: self.request_timeout,
            drop_params: self.drop_params,
            add_function_to_prompt: self.add_function_to_prompt,
            keepalive_timeout: self.keepalive_timeout,
        }
    }

    /// The base URL a client on this machine uses to reach the proxy.
    fn local_url(&self) -> String {
        let host = match self.host.as_str() {
            "0.0.0.0" | "::" | "" => "127.0.0.1",
            h => h,
        };
        format!("http://{host}:{}", self.port)
    }
}

fn init_logging(cli: &Cli, verbose: bool) {
    let filter = if cli.detailed_debug {
        "info,llmgate=trace"
    } else if cli.debug || verbose {
        "info,llmgate=debug"
    } else {
        "warn,llmgate=info"
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(filter))
        .format_timestamp_millis()
        .init();
}

/// Runs the binary: serve, or one of the client modes.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.test || cli.health {
        init_logging(&cli, false);
        return match crate::client_mode::run(
            &cli.local_url(),
            cli.test,
            cli.model.as_deref(),
            cli.config.as_deref(),
        ) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("llmgate: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let settings = match Settings::load(cli.config.as_deref(), &cli.overrides()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("llmgate: config error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(weakness) = settings
        .master_key
        .as_ref()
        .and_then(|k| crate::security::master_key::weakness(k.expose()))
    {
        if !(cli.allow_weak_master_key || settings.security.permit_weak_master_key) {
            eprintln!(
                "llmgate: {}",
                crate::security::master_key::refusal(weakness)
            );
            return ExitCode::FAILURE;
        }
        init_logging(&cli, settings.verbose);
        log::warn!("STARTING WITH A WEAK MASTER KEY ({weakness}), as asked: anyone who guesses it administers this proxy.");
    } else {
        init_logging(&cli, settings.verbose);
    }
    if settings.deployments.is_empty() {
        log::warn!("no models configured: pass --config with a model_list, or --model");
    }
    for warning in settings.warnings() {
        log::warn!("{warning}");
    }
    if settings.master_key.is_none() {
        log::warn!("NO MASTER KEY IS SET: every route is open to anyone who can reach this port. Set general_settings.master_key or LITELLM_MASTER_KEY.");
    }
    let workers = cli
        .num_workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let system = actix_rt::System::new();
    let result = system.block_on(async {
        let running = crate::server::start(settings, &cli.host, cli.port, workers).await?;
        log::info!(
            "llmgate {} listening on http://{} with {} workers ({})",
            env!("CARGO_PKG_VERSION"),
            running.addr,
            workers,
            running.state.db.target().describe()
        );
        // SIGTERM / SIGINT drain requests and write buffered spend before the server stops.
        crate::server::stop_on_signal(running.server.handle(), running.state.clone());
        let served = running.server.await;
        // Requests served on kept-alive connections while the server stopped recorded spend too.
        crate::server::flush_spend(&running.state).await;
        crate::server::close_journal(&running.state).await;
        served
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("llmgate: {e}");
            ExitCode::FAILURE
        }
    }
}
