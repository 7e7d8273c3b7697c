//! `/models` and `/model/info`: what the caller may use, with every secret removed.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use crate::actors::{CachedKey, Inspect};
use crate::auth::{authenticate, Caller};
use crate::error::ApiError;
use crate::state::AppState;

use super::pipeline::load_key;

/// The `created` timestamp LiteLLM reports for every model.
const CREATED: u64 = 1_677_610_602;

/// The models list of the calling key (`None`: everything).
async fn allowed_models(
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
    Ok(Some(record.models))
}

/// `GET /models`.
pub async fn list(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let allowed = allowed_models(&state, &req).await?;
    let all: &[String] = &[];
    let data: Vec<_> = state
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
    let now = std::time::Instant::now();
    for d in state.settings.deployments.iter().filter(|d| {
        match (&allowed, state.catalog.resolve(&d.model_name)) {
            (None, _) => true,
            (Some(models), Some(r)) => state.catalog.key_may_use(models, &d.model_name, r.group),
            (Some(_), None) => false,
        }
    }) {
        // Each deployment's own actor is the authority on its live state.
        let live = state.actors().deployments[d.index]
            .send(Inspect)
            .await
            .map_err(|_| ApiError::Internal)?;
        let cooldown_until = live.cooling_until.map(|until| {
            let left = until.saturating_duration_since(now);
            (chrono::Utc::now() + left).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        });
        data.push(json!({
            "model_name": d.model_name,
            "litellm_params": d.public_params,
            "model_info": d.model_info,
            "live": {
                "in_flight": live.in_flight,
                "rpm_used": live.requests_this_minute,
                "tpm_used": live.tokens_this_minute,
                "failures_this_minute": live.failures_this_minute,
                "cooldown_until": cooldown_until,
                "latency_ms": live.last_latency.map(|l| l.as_secs_f64() * 1000.0),
                "latency_per_token_ms": live.latency_per_token.map(|s| s * 1000.0),
                "time_to_first_token_ms": live.first_token_latency.map(|s| s * 1000.0),
            },
        }));
    }
    Ok(HttpResponse::Ok().json(json!({"data": data})))
}
