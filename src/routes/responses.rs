//! `POST /v1/responses` (the OpenAI Responses API, served by the shared pipeline: natively or
//! through chat, by the deployment) and `GET` / `DELETE /v1/responses/{id}` and
//! `GET /v1/responses/{id}/input_items`, passed to the deployment that made the response.

use std::time::Duration;

use actix_web::http::header::HeaderValue;
use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::Value as Json;

use super::pipeline::{handle, Input, VERSION};
use crate::auth::authenticate;
use crate::error::ApiError;
use crate::keys::Rejection;
use crate::providers::request::deployment_headers;
use crate::providers::{Operation, ProviderError};
use crate::responses::{ids, native};
use crate::state::AppState;

type State = web::Data<AppState>;
type Http = web::Data<awc::Client>;

/// The largest retrieved response read from an upstream.
const MAX_RETRIEVED: usize = 32 * 1024 * 1024;

/// `POST /responses`.
pub async fn create(s: State, h: Http, req: HttpRequest, p: web::Payload) -> HttpResponse {
    handle(&s, &h, &req, Input::Payload(p), Operation::Responses, None).await
}

/// `GET /responses/{id}`.
pub async fn retrieve(s: State, h: Http, req: HttpRequest, id: web::Path<String>) -> HttpResponse {
    respond(relay(&s, &h, &req, Method::GET, &id, "").await)
}

/// `DELETE /responses/{id}`.
pub async fn delete(s: State, h: Http, req: HttpRequest, id: web::Path<String>) -> HttpResponse {
    respond(relay(&s, &h, &req, Method::DELETE, &id, "").await)
}

/// `GET /responses/{id}/input_items`.
pub async fn input_items(
    s: State,
    h: Http,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    respond(relay(&s, &h, &req, Method::GET, &id, "/input_items").await)
}

fn respond(result: Result<HttpResponse, ApiError>) -> HttpResponse {
    result.unwrap_or_else(|e| actix_web::ResponseError::error_response(&e))
}

fn not_found(id: &str) -> ApiError {
    ApiError::Missing(format!(
        "Response with id '{id}' not found. llmgate retrieves and deletes the responses of deployments with the Responses API (openai/, azure/); those served through chat completions are kept only to be continued with previous_response_id."
    ))
}

/// Sends the call for response `id` (with `path` after it) to the deployment that made it, for
/// a caller that may use that deployment's model and owns the response.
async fn relay(
    state: &AppState,
    http: &awc::Client,
    req: &HttpRequest,
    method: Method,
    id: &str,
    path: &str,
) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(state, req)?;
    // Also refuses an unknown, blocked or expired key.
    let allowed = super::models::allowed_models(state, req).await?;
    let decoded = ids::decode(id).ok_or_else(|| not_found(id))?;
    if !decoded.allows(caller.token()) {
        return Err(not_found(id));
    }
    let topology = state.topology();
    let deployment = topology
        .find(&decoded.deployment_id)
        .filter(|d| native::serves_responses(d))
        .ok_or_else(|| not_found(id))?;
    if let Some(models) = &allowed {
        let catalog = &topology.catalog;
        let may = catalog
            .resolve(&deployment.model_name)
            .is_some_and(|r| catalog.key_may_use(models, &deployment.model_name, r.group));
        if !may {
            return Err(ApiError::Key(Rejection::ModelDenied(
                deployment.model_name.clone(),
            )));
        }
    }
    let provider = deployment.provider;
    let url = native::url(
        deployment,
        &format!("/{}{path}", decoded.upstream_id),
        req.query_string(),
    );
    let wait = deployment
        .timeout
        .unwrap_or(state.settings.request_timeout)
        .min(Duration::from_secs(600));
    let mut call = http.request(method, &url).timeout(wait);
    for (name, value) in deployment_headers(deployment) {
        call = call.insert_header((name, value));
    }
    let mut res = call.send().await.map_err(|e| match e {
        awc::error::SendRequestError::Timeout => ProviderError::timeout(provider, wait),
        other => ProviderError::connection(provider, other),
    })?;
    let status = res.status();
    let body = res
        .body()
        .limit(MAX_RETRIEVED)
        .await
        .map_err(|e| ProviderError::connection(provider, e))?;
    if !status.is_success() {
        return Err(ProviderError::upstream(provider, status.as_u16(), &body, None).into());
    }
    let mut value: Json = serde_json::from_slice(&body)
        .map_err(|e| ProviderError::connection(provider, format!("unreadable reply: {e}")))?;
    // The response (or its deletion) names itself as the client knows it.
    if path.is_empty() && value.get("id").is_some_and(Json::is_string) {
        value["id"] = Json::from(id);
    }
    let mut out = HttpResponse::build(status);
    for (name, value) in [
        ("x-litellm-model-id", deployment.id.as_str()),
        ("x-litellm-model-group", deployment.model_name.as_str()),
        ("x-litellm-version", VERSION),
    ] {
        if let Ok(value) = HeaderValue::from_str(value) {
            out.insert_header((name, value));
        }
    }
    Ok(out.json(value))
}
