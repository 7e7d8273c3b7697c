//! Active health checks: a real minimal call to each deployment (an embedding for embedding
//! models, one token of chat otherwise), all at once, each bounded by `health_check_timeout`.
//! `GET /health` runs them on demand, or serves the last round of the background checker
//! (`background_health_checks`), which cools a failing deployment down.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures_util::future::join_all;
use serde_json::{json, Map, Value as Json};

use crate::config::Deployment;
use crate::providers::request::{prepare, DropPolicy};
use crate::providers::{client, media, mock, Operation, ProviderKind};
use crate::shared::events::Event;
use crate::state::AppState;

/// Bodies read from a health check at most.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// One deployment's check.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The deployment's index.
    pub index: usize,
    /// The deployment checked (as it was then: models may change at runtime).
    pub deployment: Arc<Deployment>,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// How long the call took.
    pub latency: Duration,
    /// When it ended.
    pub at: DateTime<Utc>,
}

/// The last round of checks, kept for `GET /health` and the deployments' state.
#[derive(Default)]
pub struct HealthBoard {
    last: Mutex<Option<Arc<Vec<Checked>>>>,
}

impl HealthBoard {
    /// The last round, if one ran.
    pub fn last(&self) -> Option<Arc<Vec<Checked>>> {
        self.last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn store(&self, round: Vec<Checked>) {
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(round));
    }

    /// Deployment `index`'s last check.
    pub fn of(&self, index: usize) -> Option<Checked> {
        self.last()?.iter().find(|c| c.index == index).cloned()
    }
}

/// Whether deployment `d` can be checked: a wildcard names no one model to call.
fn checkable(d: &Deployment) -> bool {
    !d.upstream_model.contains('*')
}

/// Checks every deployment (of group `only`, if set) at once, each within `timeout`.
pub async fn check_all(
    state: &AppState,
    http: &awc::Client,
    timeout: Duration,
    only: Option<&str>,
) -> Vec<Checked> {
    let topology = state.topology();
    let checks = topology
        .live()
        .filter(|d| checkable(d) && only.is_none_or(|m| d.model_name == m))
        .filter_map(|d| topology.shared(d.index))
        .map(|d| check_one(state, http, d, timeout));
    join_all(checks).await
}

async fn check_one(
    state: &AppState,
    http: &awc::Client,
    d: Arc<Deployment>,
    timeout: Duration,
) -> Checked {
    let started = Instant::now();
    let outcome = actix_rt::time::timeout(timeout, call(state, http, &d, timeout))
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {} s", timeout.as_secs_f64())));
    Checked {
        index: d.index,
        deployment: d,
        error: outcome.err(),
        latency: started.elapsed(),
        at: Utc::now(),
    }
}

/// The minimal request for deployment `d`, by its `model_info.mode` (LiteLLM's modes: an image
/// model's check makes one image, a transcriber's hears a tenth of a second of silence).
fn probe(d: &Deployment) -> (Operation, Map<String, Json>) {
    let mode = d.model_info.get("mode").and_then(Json::as_str);
    let (op, fields) = match mode {
        Some("embedding") => (Operation::Embedding, json!({"input": ["ping"]})),
        Some("completion") => (
            Operation::Completion,
            json!({"prompt": "ping", "max_tokens": 1}),
        ),
        Some("image_generation") => (
            Operation::ImageGeneration,
            json!({"prompt": "ping", "n": 1}),
        ),
        Some("audio_speech") => (
            Operation::Speech,
            json!({"input": "ping", "voice": "alloy"}),
        ),
        Some("audio_transcription") => (Operation::Transcription, json!({})),
        Some("moderation") => (Operation::Moderation, json!({"input": "ping"})),
        Some("rerank") => (
            Operation::Rerank,
            json!({"query": "ping", "documents": ["ping"]}),
        ),
        _ => (
            Operation::Chat,
            json!({"messages": [{"role": "user", "content": "ping"}], "max_tokens": 1}),
        ),
    };
    let Json::Object(fields) = fields else {
        unreachable!("an object literal")
    };
    (op, fields)
}

async fn call(
    state: &AppState,
    http: &awc::Client,
    d: &Deployment,
    timeout: Duration,
) -> Result<(), String> {
    if let Some(value) = &d.mock_response {
        return match mock::interpret(value) {
            mock::Mock::Fail(err) => Err(err.message),
            mock::Mock::Reply(_) => Ok(()),
        };
    }
    if let ProviderKind::NotYet(name) = d.provider {
        return Err(format!("llmgate does not support the {name} provider yet"));
    }
    let (op, fields) = probe(d);
    let drop = DropPolicy {
        unsupported: true,
        always: &[],
        functions_to_prompt: false,
    };
    let (call, form) = if op.is_media() {
        let upload = op.takes_form().then(media::mock::probe_upload);
        let m = media::prepare(op, d, &d.upstream_model, &fields, upload.as_ref(), &drop)
            .map_err(|e| e.message)?;
        (m.call, m.content_type)
    } else {
        let call =
            prepare(op, d, &d.upstream_model, &fields, false, &drop).map_err(|e| e.message)?;
        (call, None)
    };
    let bearer = state
        .vertex_tokens
        .bearer_for(http, d, timeout)
        .await
        .map_err(|e| e.message)?;
    let extra: Vec<(&str, &str)> = bearer
        .as_deref()
        .map(|b| ("authorization", b))
        .into_iter()
        .chain(form.as_deref().map(|ct| ("content-type", ct)))
        .collect();
    let mut reply = client::send_with(http, d, &call, &extra, timeout, MAX_BODY)
        .await
        .map_err(|e| e.message)?;
    client::read_all(&mut reply.body, d.provider, timeout, MAX_BODY)
        .await
        .map_err(|e| e.message)?;
    Ok(())
}

/// COMPAT's `/health` body for `round`: each endpoint as its public `litellm_params` (no
/// secret), the unhealthy ones with their error.
pub fn report(round: &[Checked]) -> Json {
    let (mut healthy, mut unhealthy) = (Vec::new(), Vec::new());
    for c in round {
        let d = &c.deployment;
        let mut entry = match &d.public_params {
            Json::Object(m) => m.clone(),
            _ => Map::new(),
        };
        entry.insert("model_name".into(), json!(d.model_name));
        entry.insert("model_id".into(), json!(d.id));
        match &c.error {
            None => healthy.push(Json::Object(entry)),
            Some(e) => {
                entry.insert("error".into(), json!(e));
                unhealthy.push(Json::Object(entry));
            }
        }
    }
    json!({
        "healthy_endpoints": healthy,
        "unhealthy_endpoints": unhealthy,
        "healthy_count": healthy.len(),
        "unhealthy_count": unhealthy.len(),
    })
}

/// Runs a round of checks every `health_check_interval` on an arbiter of its own (with its own
/// HTTP client), keeps the last one, and cools failing deployments down, on this instance and,
/// through Redis, on the others.
pub fn start_background(state: actix_web::web::Data<AppState>, http: fn() -> awc::Client) {
    let arbiter = actix::Arbiter::new();
    // The HTTP client is not `Send`: it is made, and the loop spawned, on the arbiter's thread.
    arbiter.spawn_fn(move || {
        actix_rt::spawn(checks_forever(state, http()));
    });
    // The arbiter runs for the life of the process.
    std::mem::forget(arbiter);
}

async fn checks_forever(state: actix_web::web::Data<AppState>, client: awc::Client) {
    let health = state.settings.health;
    loop {
        let round = check_all(&state, &client, health.timeout, None).await;
        let policy = state.settings.cooldown;
        for c in round.iter().filter(|c| c.error.is_some()) {
            let d = &c.deployment;
            log::warn!(
                "health check of {} (deployment {}) failed: {}",
                d.model_name,
                d.id,
                c.error.as_deref().unwrap_or_default()
            );
            // As for failed requests: a deployment alone in its group is never taken out.
            if policy.disabled || !has_others(&state, c.index) {
                continue;
            }
            let millis = policy.cooldown_time.as_millis() as u64;
            state.on_event(Event::Cooldown {
                deployment: d.id.clone(),
                millis,
            });
            if let Some(shared) = &state.shared {
                shared.publish(Event::Cooldown {
                    deployment: d.id.clone(),
                    millis,
                });
            }
        }
        state.health.store(round);
        actix_rt::time::sleep(health.interval).await;
    }
}

/// Whether deployment `index` shares its group with others.
fn has_others(state: &AppState, index: usize) -> bool {
    state
        .topology()
        .catalog
        .members()
        .iter()
        .any(|members| members.len() > 1 && members.contains(&index))
}
