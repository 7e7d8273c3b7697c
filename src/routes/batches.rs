//! `/batches`: create, retrieve, cancel and list, passed through to the deployment that holds
//! the batch's input file; a completed batch's cost is charged to its key once.

use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{Map, Value as Json};

use super::body::{read, BodyLimits};
use super::files::{created_id, list_objects, path_id};
use super::files_call::{Admitted, FilesCall, Held, Who};
use crate::error::ApiError;
use crate::files::batch_cost::{batch_price, OutputUsage};
use crate::files::select::GATEWAY_FIELDS;
use crate::files::Kind;
use crate::pricing;
use crate::providers::files::{Endpoint, Outgoing};
use crate::providers::Usage;
use crate::state::AppState;

type State = web::Data<AppState>;
type Http = web::Data<awc::Client>;

/// OpenAI's default page size for `GET /batches`.
const BATCHES_PAGE: usize = 20;

/// `POST /batches` (`input_file_id`, `endpoint`, `completion_window`, `metadata`): created on
/// the deployment that holds the input file.
pub async fn create(s: State, h: Http, req: HttpRequest, payload: web::Payload) -> HttpResponse {
    let call = FilesCall::new(&s, &h, &req);
    let result = create_on(&call, payload).await;
    call.finish(result)
}

/// A required string field of the request.
fn required<'a>(fields: &'a Map<String, Json>, name: &str) -> Result<&'a str, ApiError> {
    match fields.get(name) {
        Some(Json::String(s)) if !s.is_empty() => Ok(s),
        None | Some(Json::Null) => Err(ApiError::bad_request(
            format!("Missing required parameter: '{name}'."),
            Some(name),
        )),
        Some(_) => Err(ApiError::bad_request(
            format!("Invalid type for '{name}': expected a non-empty string."),
            Some(name),
        )),
    }
}

async fn create_on(call: &FilesCall<'_>, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    let who = call.caller().await?;
    let body = match read(call.req, payload, BodyLimits::of(&call.state.settings)).await {
        Ok(body) => body,
        Err(refused) => return Ok(refused.respond(actix_web::ResponseError::error_response)),
    };
    let mut fields: Map<String, Json> = match serde_json::from_slice(&body) {
        Ok(Json::Object(fields)) => fields,
        Ok(_) => {
            return Err(ApiError::bad_request(
                "The request body must be a JSON object.",
                None,
            ))
        }
        Err(e) => {
            return Err(ApiError::bad_request(
                format!("We could not parse the JSON body of your request: {e}"),
                None,
            ))
        }
    };
    let input_file_id = required(&fields, "input_file_id")?.to_owned();
    let endpoint = required(&fields, "endpoint")?.to_owned();
    required(&fields, "completion_window")?;
    if !matches!(
        fields.get("metadata"),
        None | Some(Json::Null | Json::Object(_))
    ) {
        return Err(ApiError::bad_request(
            "Invalid type for 'metadata': expected an object.",
            Some("metadata"),
        ));
    }
    // The batch runs where its input file is: a `model` or provider in the request changes
    // nothing.
    for name in GATEWAY_FIELDS {
        fields.remove(*name);
    }
    let file = call.object(&who, Kind::File, &input_file_id).await?;
    let admitted = call.admit(&who, file.chosen).await?;
    let sent = serde_json::to_vec(&fields).map_err(|_| ApiError::Internal)?;
    let mut reply = admitted
        .send(
            call,
            Method::POST,
            Endpoint::Batches,
            "",
            Outgoing::Json(sent.into()),
        )
        .await?;
    let (body, value) = admitted.read_json(call, &mut reply).await?;
    let id = created_id(&admitted, &value)?;
    call.record(
        who.owner(),
        Kind::Batch,
        &id,
        &admitted.deployment,
        Some(&endpoint),
        Some(&input_file_id),
    )
    .await?;
    Ok(admitted
        .answer(call, &reply.provider_headers, body, Usage::default(), 0.0)
        .await)
}

/// `GET /batches/{batch_id}`: its output and error files become the batch key's; once it is
/// completed, its cost is charged to that key (once).
pub async fn retrieve(s: State, h: Http, req: HttpRequest) -> HttpResponse {
    let id = path_id(&req, "batch_id");
    let call = FilesCall::new(&s, &h, &req);
    let result = retrieve_on(&call, &id).await;
    call.finish(result)
}

async fn retrieve_on(call: &FilesCall<'_>, id: &str) -> Result<HttpResponse, ApiError> {
    let who = call.caller().await?;
    let held = call.object(&who, Kind::Batch, id).await?;
    let admitted = call.admit(&who, held.chosen).await?;
    let mut reply = admitted
        .send(call, Method::GET, Endpoint::Batch(id), "", Outgoing::Empty)
        .await?;
    let (body, batch) = admitted.read_json(call, &mut reply).await?;
    for field in ["output_file_id", "error_file_id"] {
        if let Some(file) = batch.get(field).and_then(Json::as_str) {
            let purpose = if field == "output_file_id" {
                "batch_output"
            } else {
                "batch_error"
            };
            let owner = &held.row.owner;
            call.record(
                owner,
                Kind::File,
                file,
                &admitted.deployment,
                Some(purpose),
                None,
            )
            .await?;
        }
    }
    let (usage, cost) = match charged(call, &who, &held, &admitted, &batch).await {
        Some(charged) => charged,
        None => (Usage::default(), 0.0),
    };
    Ok(admitted
        .answer(call, &reply.provider_headers, body, usage, cost)
        .await)
}

/// A completed batch's usage and cost, when this call is the one to charge it: the batch's
/// own key is calling, and it was not charged yet. Its output file is read (and not kept) to
/// count the usage; a failure to read it leaves the batch to be charged on a later call.
async fn charged(
    call: &FilesCall<'_>,
    who: &Who,
    held: &Held,
    admitted: &Admitted,
    batch: &Json,
) -> Option<(Usage, f64)> {
    if batch.get("status").and_then(Json::as_str) != Some("completed")
        || held.row.charged_at.is_some()
        || who.owner() != held.row.owner
    {
        return None;
    }
    let output = batch.get("output_file_id").and_then(Json::as_str)?;
    let d = &*admitted.deployment;
    let counted = async {
        let reply = admitted
            .send(
                call,
                Method::GET,
                Endpoint::FileContent(output),
                "",
                Outgoing::Empty,
            )
            .await?;
        let mut usage = OutputUsage::default();
        admitted
            .read_through(call, reply, |chunk| {
                usage.feed(chunk).map_err(|e| e.to_string())
            })
            .await?;
        Ok::<_, ApiError>(usage.finish())
    };
    let usage = match counted.await {
        Ok(usage) => usage,
        Err(e) => {
            log::warn!(
                "the cost of batch {} is not charged yet: its output {output} cannot be read ({e})",
                held.row.id
            );
            return None;
        }
    };
    let price = batch_price(d.price_for(&d.upstream_model), &d.model_info);
    let cost = price.map_or(0.0, |p| {
        pricing::cost(p, usage.prompt_tokens, usage.completion_tokens)
    });
    let (id, at) = (held.row.id.clone(), chrono::Utc::now().naive_utc());
    let claimed = call
        .state
        .db
        .run(move |db| async move { db.claim_batch_cost(&id, cost, at).await })
        .await;
    match claimed {
        Ok(true) => Some((usage, cost)),
        Ok(false) => None,
        Err(e) => {
            log::warn!("the cost of batch {} is not charged yet: {e}", held.row.id);
            None
        }
    }
}

/// `POST /batches/{batch_id}/cancel`.
pub async fn cancel(s: State, h: Http, req: HttpRequest) -> HttpResponse {
    let id = path_id(&req, "batch_id");
    let call = FilesCall::new(&s, &h, &req);
    let result = cancel_on(&call, &id).await;
    call.finish(result)
}

async fn cancel_on(call: &FilesCall<'_>, id: &str) -> Result<HttpResponse, ApiError> {
    let who = call.caller().await?;
    let held = call.object(&who, Kind::Batch, id).await?;
    let admitted = call.admit(&who, held.chosen).await?;
    let mut reply = admitted
        .send(
            call,
            Method::POST,
            Endpoint::BatchCancel(id),
            "",
            Outgoing::Empty,
        )
        .await?;
    let body = admitted.read(call, &mut reply).await?;
    Ok(admitted
        .answer(call, &reply.provider_headers, body, Usage::default(), 0.0)
        .await)
}

/// `GET /batches` (`after`, `limit`).
pub async fn list(s: State, h: Http, req: HttpRequest) -> HttpResponse {
    let call = FilesCall::new(&s, &h, &req);
    let result = list_objects(&call, Kind::Batch, BATCHES_PAGE).await;
    call.finish(result)
}
