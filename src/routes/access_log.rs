//! One access log line per request at info: method, route, model group, deployment, status, time.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage};

use crate::state::AppState;

/// What a model request leaves for its log line: indices, so recording it allocates nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct Trace {
    /// The model group served.
    pub group: Option<usize>,
    /// The deployment that took the last attempt.
    pub deployment: Option<usize>,
}

/// The middleware writing the line once the response is ready.
pub async fn access_log(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let res = next.call(req).await?;
    if log::log_enabled!(target: "llmgate::access", log::Level::Info) {
        let request = res.request();
        let trace = request
            .extensions()
            .get::<Trace>()
            .copied()
            .unwrap_or_default();
        let state = request.app_data::<web::Data<AppState>>();
        let topology = state.map(|s| s.topology());
        let group = trace
            .group
            .zip(topology.as_ref())
            .map_or("-", |(g, t)| t.catalog.name(g));
        let deployment = trace
            .deployment
            .zip(topology.as_ref())
            .and_then(|(d, t)| t.get(d))
            .map_or("-", |d| d.id.as_str());
        log::info!(
            target: "llmgate::access",
            "{} {} model={group} deployment={deployment} status={} {:.1}ms",
            request.method(),
            request.path(),
            res.status().as_u16(),
            started.elapsed().as_secs_f64() * 1000.0
        );
    }
    Ok(res)
}
