//! `--test` and `--health`: talk to a running proxy and print what it says.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value as Json};

use crate::config::{CliOverrides, Settings};

/// The key to call the proxy with: `LITELLM_MASTER_KEY`, else the config's master key.
fn proxy_key(config: Option<&Path>) -> Option<String> {
    if let Ok(k) = std::env::var("LITELLM_MASTER_KEY") {
        return Some(k);
    }
    let settings = Settings::load(Some(config?), &CliOverrides::default()).ok()?;
    settings.master_key.map(|k| k.expose().to_owned())
}

/// Sends one chat request (`test`) or calls `/health`, and prints the answer.
pub fn run(
    base: &str,
    test: bool,
    model: Option<&str>,
    config: Option<&Path>,
) -> Result<(), String> {
    let key = proxy_key(config);
    actix_rt::System::new().block_on(async move {
        let client = awc::Client::builder().timeout(Duration::from_secs(600)).finish();
        let with_key = |r: awc::ClientRequest| match &key {
            Some(k) => r.bearer_auth(k),
            None => r,
        };
        if !test {
            let mut res = with_key(client.get(format!("{base}/health")))
                .send()
                .await
                .map_err(|e| format!("cannot reach {base}: {e}"))?;
            let body = res.body().await.map_err(|e| e.to_string())?;
            println!("{}", String::from_utf8_lossy(&body));
            return if res.status().is_success() { Ok(()) } else { Err(format!("/health answered {}", res.status())) };
        }
        let model = match model {
            Some(m) => m.to_owned(),
            None => {
                let mut res = with_key(client.get(format!("{base}/v1/models")))
                    .send()
                    .await
                    .map_err(|e| format!("cannot reach {base}: {e}"))?;
                let list: Json = res.json().await.map_err(|e| e.to_string())?;
                list.pointer("/data/0/id")
                    .and_then(Json::as_str)
                    .map(str::to_owned)
                    .ok_or("the proxy lists no models")?
            }
        };
        println!("llmgate: sending a test request to {base} for model {model}");
        let body = json!({"model": model, "messages": [{"role": "user", "content": "this is a test request, write a short poem"}]});
        let mut res = with_key(client.post(format!("{base}/v1/chat/completions")))
            .send_json(&body)
            .await
            .map_err(|e| format!("cannot reach {base}: {e}"))?;
        let reply: Json = res.json().limit(32 * 1024 * 1024).await.map_err(|e| e.to_string())?;
        if !res.status().is_success() {
            return Err(format!("the proxy answered {}: {reply}", res.status()));
        }
        let content = reply
            .pointer("/choices/0/message/content")
            .and_then(Json::as_str)
            .unwrap_or_default();
        println!("{content}");
        Ok(())
    })
}
