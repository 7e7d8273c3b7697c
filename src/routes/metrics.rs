//! `GET /metrics`: the Prometheus text format, with no key (COMPAT.md section 4); deployment
//! state and the health of Redis and the database are read at each scrape.

use std::time::Duration;

use actix_web::{web, HttpResponse};

use crate::metrics::CONTENT_TYPE;
use crate::state::AppState;

/// A scrape waits this long for the database at most.
const DATABASE_WAIT: Duration = Duration::from_secs(1);

/// `GET /metrics`.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let (topology, snapshots) = state.deployment_snapshots().await;
    let deployments: Vec<_> = AppState::deployment_views(&topology)
        .into_iter()
        .zip(snapshots)
        .collect();
    let redis_up = state.shared.as_ref().map(|s| s.redis.is_up());
    let ping = state.db.run(|db| async move { Ok(db.ping().await) });
    let database_up = matches!(
        actix_rt::time::timeout(DATABASE_WAIT, ping).await,
        Ok(Ok(true))
    );
    state
        .metrics
        .callbacks(state.callbacks.stats(), state.callbacks.queued());
    let text = state.metrics.render(&deployments, redis_up, database_up);
    HttpResponse::Ok().content_type(CONTENT_TYPE).body(text)
}
