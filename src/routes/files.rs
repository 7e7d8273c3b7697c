//! `/files`: upload, list, retrieve, content and delete, passed through to the OpenAI or Azure
//! deployment that holds each file; a virtual key reaches only the files it uploaded.

use std::collections::HashSet;

use actix_web::http::header::CONTENT_TYPE;
use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::Value as Json;

use super::body::{read, BodyLimits};
use super::files_call::{forwarded_query, Admitted, FilesCall, Who};
use crate::error::ApiError;
use crate::files::listing::Collect;
use crate::files::multipart::Form;
use crate::files::select::GATEWAY_FIELDS;
use crate::files::Kind;
use crate::providers::files::{Endpoint, Outgoing};
use crate::providers::Usage;
use crate::state::AppState;

type State = web::Data<AppState>;
type Http = web::Data<awc::Client>;

/// OpenAI's default page size for `GET /files`.
const FILES_PAGE: usize = 10_000;

/// `POST /files`: a `multipart/form-data` upload (`file`, `purpose`).
pub async fn upload(s: State, h: Http, req: HttpRequest, payload: web::Payload) -> HttpResponse {
    let call = FilesCall::new(&s, &h, &req);
    let result = upload_on(&call, payload).await;
    call.finish(result)
}

async fn upload_on(call: &FilesCall<'_>, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    let who = call.caller().await?;
    let body = match read(call.req, payload, BodyLimits::of(&call.state.settings)).await {
        Ok(body) => body,
        Err(refused) => return Ok(refused.respond(actix_web::ResponseError::error_response)),
    };
    let content_type = call
        .req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let form = Form::parse(&content_type, body).map_err(|e| {
        ApiError::bad_request(
            format!("POST /files takes a multipart/form-data body with `file` and `purpose`: {e}"),
            Some("file"),
        )
    })?;
    let purpose = form
        .text("purpose")
        .filter(|p| !p.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request("Missing required parameter: 'purpose'.", Some("purpose"))
        })?;
    if form.part_named("file").is_none() {
        return Err(ApiError::bad_request(
            "Missing required parameter: 'file'.",
            Some("file"),
        ));
    }
    let wanted = call.wanted(
        form.text("model"),
        form.text("target_model_names"),
        form.text("custom_llm_provider"),
    )?;
    let chosen = call.choose(&who, &wanted)?;
    let admitted = call.admit(&who, chosen).await?;
    let sent = Outgoing::Form {
        content_type,
        chunks: form.without(GATEWAY_FIELDS),
    };
    drop(form);
    let mut reply = admitted
        .send(call, Method::POST, Endpoint::Files, "", sent)
        .await?;
    let (body, value) = admitted.read_json(call, &mut reply).await?;
    let id = created_id(&admitted, &value)?;
    call.record(
        who.owner(),
        Kind::File,
        &id,
        &admitted.deployment,
        Some(&purpose),
        None,
    )
    .await?;
    Ok(admitted
        .answer(call, &reply.provider_headers, body, Usage::default(), 0.0)
        .await)
}

/// The `id` of an object the upstream says it created.
pub(super) fn created_id(admitted: &Admitted, value: &Json) -> Result<String, ApiError> {
    value
        .get("id")
        .and_then(Json::as_str)
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| {
            crate::providers::ProviderError::connection(
                admitted.deployment.provider,
                "unreadable reply: no `id` in the created object",
            )
            .into()
        })
}

/// `GET /files` (`purpose`, `limit`, `after`, `order`).
pub async fn list(s: State, h: Http, req: HttpRequest) -> HttpResponse {
    let call = FilesCall::new(&s, &h, &req);
    let result = list_objects(&call, Kind::File, FILES_PAGE).await;
    call.finish(result)
}

/// Lists the caller's objects of `kind` on the deployment the request names: the upstream's
/// list as it is for the master key, else only the key's own, paged on until `limit` is met.
pub(super) async fn list_objects(
    call: &FilesCall<'_>,
    kind: Kind,
    default_page: usize,
) -> Result<HttpResponse, ApiError> {
    let who = call.caller().await?;
    let wanted = call.wanted(None, None, None)?;
    let chosen = call.choose(&who, &wanted)?;
    let limit = match call.query().get("limit") {
        None => None,
        Some(text) => Some(
            text.trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    ApiError::bad_request(
                        format!("Invalid 'limit': {text:?} is not a positive integer."),
                        Some("limit"),
                    )
                })?,
        ),
    };
    let admitted = call.admit(&who, chosen).await?;
    let endpoint = match kind {
        Kind::File => Endpoint::Files,
        Kind::Batch => Endpoint::Batches,
    };
    let query = forwarded_query(call.req.query_string(), &[]);
    let Who::Key { token, .. } = &who else {
        let mut reply = admitted
            .send(call, Method::GET, endpoint, &query, Outgoing::Empty)
            .await?;
        let body = admitted.read(call, &mut reply).await?;
        return Ok(admitted
            .answer(call, &reply.provider_headers, body, Usage::default(), 0.0)
            .await);
    };
    let (owner, deployment_id) = (token.clone(), admitted.deployment.id.clone());
    let owned: HashSet<String> = call
        .state
        .db
        .run(move |db| async move { db.owned_ids(&owner, kind.as_str(), &deployment_id).await })
        .await
        .map_err(|e| {
            log::warn!("files and batches store: {e}");
            ApiError::Unavailable("database".into())
        })?
        .into_iter()
        .collect();
    let mut collect = Collect::new(owned, limit.unwrap_or(default_page));
    let without_after = forwarded_query(call.req.query_string(), &["after"]);
    let mut page_query = query;
    let headers = loop {
        let mut reply = admitted
            .send(call, Method::GET, endpoint, &page_query, Outgoing::Empty)
            .await?;
        let (_, page) = admitted.read_json(call, &mut reply).await?;
        let next = collect.take(&page).map_err(|why| {
            crate::providers::ProviderError::connection(admitted.deployment.provider, why)
        })?;
        match next {
            None => break reply.provider_headers,
            Some(after) => {
                let after =
                    percent_encoding::utf8_percent_encode(&after, crate::config::URL_UNRESERVED);
                page_query = if without_after.is_empty() {
                    format!("after={after}")
                } else {
                    format!("{without_after}&after={after}")
                };
            }
        }
    };
    let body = serde_json::to_vec(&collect.finish()).map_err(|_| ApiError::Internal)?;
    Ok(admitted
        .answer(call, &headers, body.into(), Usage::default(), 0.0)
        .await)
}

/// The id in the path (`{file_id}`, `{batch_id}`), beside any `{provider}`.
pub(super) fn path_id(req: &HttpRequest, name: &str) -> String {
    req.match_info().get(name).unwrap_or_default().to_owned()
}

/// `GET /files/{file_id}`.
pub async fn retrieve(s: State, h: Http, req: HttpRequest) -> HttpResponse {
    let id = path_id(&req, "file_id");
    let call = FilesCall::new(&s, &h, &req);
    let result = relay(&call, Method::GET, &id, false).await;
    call.finish(result)
}

/// `DELETE /files/{file_id}`: the file is forgotten here once the upstream deleted it.
pub async fn delete(s: State, h: Http, req: HttpRequest) -> HttpResponse {
    let id = path_id(&req, "file_id");
    let call = FilesCall::new(&s, &h, &req);
    let result = relay(&call, Method::DELETE, &id, true).await;
    call.finish(result)
}

async fn relay(
    call: &FilesCall<'_>,
    method: Method,
    id: &str,
    forget: bool,
) -> Result<HttpResponse, ApiError> {
    let who = call.caller().await?;
    let held = call.object(&who, Kind::File, id).await?;
    let admitted = call.admit(&who, held.chosen).await?;
    let mut reply = admitted
        .send(call, method, Endpoint::File(id), "", Outgoing::Empty)
        .await?;
    let body = admitted.read(call, &mut reply).await?;
    if forget {
        let id = id.to_owned();
        let forgotten = call
            .state
            .db
            .run(move |db| async move { db.forget_object(&id).await })
            .await;
        if let Err(e) = forgotten {
            // The upstream deleted it: a later call will hear its 404 from there.
            log::warn!("a deleted file is still recorded: {e}");
        }
    }
    Ok(admitted
        .answer(call, &reply.provider_headers, body, Usage::default(), 0.0)
        .await)
}

/// `GET /files/{file_id}/content`: the file's bytes, streamed through as they arrive.
pub async fn content(s: State, h: Http, req: HttpRequest) -> HttpResponse {
    let id = path_id(&req, "file_id");
    let call = FilesCall::new(&s, &h, &req);
    let result = content_of(&call, &id).await;
    call.finish(result)
}

async fn content_of(call: &FilesCall<'_>, id: &str) -> Result<HttpResponse, ApiError> {
    let who = call.caller().await?;
    let held = call.object(&who, Kind::File, id).await?;
    let admitted = call.admit(&who, held.chosen).await?;
    let reply = admitted
        .send(
            call,
            Method::GET,
            Endpoint::FileContent(id),
            "",
            Outgoing::Empty,
        )
        .await?;
    Ok(admitted.stream(call, reply).await)
}
