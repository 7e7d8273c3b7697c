//! `/models` and `/model/info`: what the caller may use, with every secret removed.

use std::time::Instant;

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value as Json};

use crate::actors::{CachedKey, Inspect};
use crate::auth::{authenticate, Caller};
use crate::error::ApiError;
use crate::routing::DeploymentSnapshot;
use crate::state::AppState;

use super::pipeline::load_key;

/// The `created` timestamp LiteLLM reports for every model.
const CREATED: u64 = 1_677_610_602;

/// The models list of the calling key (`None`: everything); an unknown, blocked or expired
/// key is refused.
pub(super) async fn allowed_models(
    state: &AppState,
    req: &HttpRequest,
) -> Result<Option<Vec<String>>, ApiError> {
    let Caller::Key { token, shown } = authenticate(state, req)? else {
        return Ok(None);
    };
    let cached = state
        .actors()
        .router
        .send(CachedKey(token.clone()))
        .await
        .map_err(|_| ApiError::Internal)?;
    let record = match cached {
        Some((record, _)) => (*record).clone(),
        None => load_key(state, &token)
            .await?
            .ok_or(ApiError::InvalidKey(shown))?,
    };
    if record.row.blocked {
        return Err(ApiError::Key(crate::keys::Rejection::Blocked));
    }
    if let Some(expires) = record
        .row
        .expires
        .map(crate::keys::record::utc)
        .filter(|e| *e <= chrono::Utc::now())
    {
        return Err(ApiError::Key(crate::keys::Rejection::Expired(expires)));
    }
    Ok(Some(record.models))
}

/// `GET /models`.
pub async fn list(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let allowed = allowed_models(&state, &req).await?;
    let all: &[String] = &[];
    let topology = state.topology();
    let data: Vec<_> = topology
        .catalog
        .names_for_key(allowed.as_deref().unwrap_or(all))
        .map(
            |name| json!({"id": name, "object": "model", "created": CREATED, "owned_by": "openai"}),
        )
        .collect();
    Ok(HttpResponse::Ok().json(json!({"object": "list", "data": data})))
}

/// `GET /model/info`.
pub async fn info(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let allowed = allowed_models(&state, &req).await?;
    let mut data = Vec::new();
    let now = Instant::now();
    state.actors();
    let topology = state.topology();
    let catalog = &topology.catalog;
    for d in topology
        .live()
        .filter(|d| match (&allowed, catalog.resolve(&d.model_name)) {
            (None, _) => true,
            (Some(models), Some(r)) => catalog.key_may_use(models, &d.model_name, r.group),
            (Some(_), None) => false,
        })
    {
        // Each deployment's own actor is the authority on its live state.
        let live = match topology.addr(d.index) {
            Some(addr) => addr.send(Inspect).await.map_err(|_| ApiError::Internal)?,
            None => DeploymentSnapshot::default(),
        };
        data.push(json!({
            "model_name": d.model_name,
            "litellm_params": d.public_params,
            "model_info": d.model_info,
            "live": live_state(&live, now),
        }));
    }
    Ok(HttpResponse::Ok().json(json!({"data": data})))
}

/// A deployment's live state as JSON (times in milliseconds, the cooldown's end in RFC 3339).
fn live_state(live: &DeploymentSnapshot, now: Instant) -> Json {
    let cooldown_until = live.cooling_until.filter(|&u| u > now).map(|until| {
        let left = until.saturating_duration_since(now);
        (chrono::Utc::now() + left).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    });
    json!({
        "in_flight": live.in_flight,
        "rpm_used": live.requests_this_minute,
        "tpm_used": live.tokens_this_minute,
        "failures_this_minute": live.failures_this_minute,
        "cooldown_until": cooldown_until,
        "latency_ms": live.last_latency.map(|l| l.as_secs_f64() * 1000.0),
        "latency_per_token_ms": live.latency_per_token.map(|s| s * 1000.0),
        "time_to_first_token_ms": live.first_token_latency.map(|s| s * 1000.0),
    })
}

/// `GET /model/state` (master key): every deployment with its live state, whether it is
/// healthy (not cooling down, and its last health check, if any, passed), its limits and its
/// last health check; no secrets.
pub async fn state(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    super::access::require_view_all(&super::access::access(&state, &req).await?, &req)?;
    let now = Instant::now();
    let (topology, snapshots) = state.deployment_snapshots().await;
    let data: Vec<Json> = topology
        .live()
        .zip(snapshots)
        .map(|(d, live)| {
            let check = state.health.of(d.index);
            let cooling = live.cooling_until.is_some_and(|u| u > now);
            let failed_check = check.as_ref().is_some_and(|c| c.error.is_some());
            let mut entry = live_state(&live, now);
            let fields = [
                ("model_name", json!(d.model_name)),
                ("model_id", json!(d.id)),
                ("model", json!(d.upstream_model)),
                ("provider", json!(d.provider.name())),
                ("api_base", json!(d.public_api_base)),
                ("healthy", json!(!cooling && !failed_check)),
                ("rpm", json!(d.rpm)),
                ("tpm", json!(d.tpm)),
                (
                    "last_health_check",
                    check.map_or(Json::Null, |c| {
                        json!({
                            "at": c.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                            "healthy": c.error.is_none(),
                            "error": c.error,
                            "latency_ms": c.latency.as_secs_f64() * 1000.0,
                        })
                    }),
                ),
            ];
            if let Json::Object(m) = &mut entry {
                for (k, v) in fields {
                    m.insert(k.into(), v);
                }
            }
            entry
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({"data": data})))
}
