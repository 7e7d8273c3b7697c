//! The way of a model request: authenticate, parse, admit and pick, reserve, try, retry.

use std::time::{Duration, Instant};

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse, ResponseError};
use bytes::Bytes;

use super::access_log::Trace;
use super::attempt::{Attempt, Gate};
use super::model_request::ModelRequest;
use super::shared_limits;
use crate::actors::{
    CacheEntities, CacheKey, Charge, ChargeFor, Governed, Lease, Pick, PickError, PickFor, Picked,
    ProxyBudget, Reserve,
};
use crate::auth::{authenticate, Caller};
use crate::callbacks::{CallError, CallLog};
use crate::error::ApiError;
use crate::governance::{EntityRecord, EntityRef, Principals};
use crate::keys::{Admission, KeyRecord, Rejection};
use crate::providers::{ErrorKind, Operation, ProviderError};
use crate::routing::{FallbackCause, Need, NoCapacity, Refused};
use crate::state::AppState;
use crate::topology::Topology;

/// The version reported in `x-litellm-version` and `/health/readiness`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Where a request's body comes from.
pub enum Input {
    /// Read from the client (within `max_request_size` and `client_body_timeout`).
    Payload(web::Payload),
    /// Already read and translated (the Anthropic-format route).
    Body(Bytes),
}

/// Serves one chat, completion or embedding request and leaves its trace for the access log.
pub async fn handle(
    state: &AppState,
    http: &awc::Client,
    req: &HttpRequest,
    input: Input,
    op: Operation,
    path_model: Option<String>,
) -> HttpResponse {
    let started = Instant::now();
    let call_id = req
        .headers()
        .get("x-litellm-call-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        // Time-ordered ids keep the spend log's request_id index appending, not scattering.
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned);
    let mut trace = Trace::default();
    let ctx = Call {
        state,
        http,
        started,
        call_id: &call_id,
        op,
        topology: std::cell::RefCell::new(state.topology()),
    };
    let mut response = match serve(&ctx, req, input, op, path_model, &mut trace).await {
        Ok(r) => r,
        Err(e) => e.error_response(),
    };
    if let Ok(v) = HeaderValue::from_str(&call_id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static("x-litellm-call-id"), v);
    }
    req.extensions_mut().insert(trace);
    response
}

/// The per-request context every attempt shares.
pub struct Call<'a> {
    /// Shared state.
    pub state: &'a AppState,
    /// This worker's upstream client.
    pub http: &'a awc::Client,
    /// When the request arrived.
    pub started: Instant,
    /// The call id.
    pub call_id: &'a str,
    /// The operation (chat, completion, embedding, images, audio, moderation, rerank).
    pub op: Operation,
    /// The deployments as this request knows them: loaded when it arrived, then the router's
    /// after each pick (models may change at runtime; indices and groups never move).
    pub topology: std::cell::RefCell<std::sync::Arc<Topology>>,
}

impl Call<'_> {
    /// The deployments as this request knows them now.
    pub fn topology(&self) -> std::sync::Arc<Topology> {
        self.topology.borrow().clone()
    }

    /// Goes on with the current topology when the router picked in another generation than
    /// this request's (rare: models changed meanwhile). Indices and groups never move, so the
    /// current one (the router's, or newer) holds the pick.
    pub fn adopt(&self, generation: u64) {
        let known = self.topology.borrow().generation;
        if generation != 0 && generation != known {
            *self.topology.borrow_mut() = self.state.topology();
        }
    }
}

async fn serve(
    ctx: &Call<'_>,
    req: &HttpRequest,
    input: Input,
    op: Operation,
    path_model: Option<String>,
    trace: &mut Trace,
) -> Result<HttpResponse, ApiError> {
    let state = ctx.state;
    let caller = authenticate(state, req)?;
    let body = match input {
        Input::Payload(payload) => {
            match super::body::read(req, payload, super::body::BodyLimits::of(&state.settings))
                .await
            {
                Ok(body) => body,
                Err(refused) => return Ok(refused.respond(ApiError::error_response)),
            }
        }
        Input::Body(body) => body,
    };
    let mut request = if op.takes_form() {
        super::media_request::read_form(op, req.headers(), body, path_model).await?
    } else {
        let parsed = ModelRequest::parse(op, &body, path_model)?;
        // The body is not needed any more: a long request does not hold it.
        drop(body);
        parsed
    };
    if request.model.is_empty() {
        // A moderation may leave its model out (LiteLLM picks one).
        request.model = super::media_request::default_moderation_model(state)?;
    }
    let principals = request.principals(req);
    if let Some(hit) =
        super::cached::consult(ctx, &caller, op, &mut request, &principals, trace).await?
    {
        return Ok(hit);
    }
    let need = need_of(ctx, op, &request);
    let settle_proxy = state.settings.max_budget.is_some();
    let new_charge = |group: usize| new_charge(ctx, &caller, &request, group, settle_proxy);
    let mut charge: Option<Charge> = None;
    let mut admission: Option<Admission> = None;
    let mut governed: Option<Governed> = None;
    let mut proxy: Option<ProxyBudget> = None;
    let mut error = match admit(state, &caller, &request.model, need, &principals).await {
        Ok(first) => {
            ctx.adopt(first.generation);
            trace.group = Some(first.group);
            charge = Some(new_charge(first.group));
            admission = first.admission.clone();
            governed = first.governed.clone();
            proxy = first.proxy;
            if let Some(c) = charge.as_mut() {
                note_admission(state, admission.as_ref(), governed.as_ref(), proxy, c);
            }
            let target = Target {
                group: first.group,
                wildcard: first.wildcard.clone(),
                first: Some(first_choice(ctx, op, &request, &first)),
            };
            let routed = route(
                ctx,
                Routed {
                    op,
                    request: &request,
                    need,
                    admission: admission.as_ref(),
                    governed: governed.as_ref(),
                    proxy,
                    fallbacks: 0,
                },
                target,
                &mut charge,
                trace,
            );
            match routed.await {
                Ok(response) => return Ok(response),
                Err(e) => e,
            }
        }
        Err(e) => e,
    };
    // The request's group failed (or had nothing free): try its fallbacks, in order.
    let Some(cause) = fallback_cause(&error) else {
        return Err(failed(&mut charge, error));
    };
    let group_name = match trace.group {
        Some(g) => ctx.topology().catalog.name(g).to_owned(),
        None => request.model.clone(),
    };
    let chain = state
        .settings
        .fallbacks
        .chain(&group_name, cause, &request.gateway.fallbacks);
    for (n, name) in chain.iter().enumerate() {
        let Some(mut target) = fallback_target(&ctx.topology(), name) else {
            log::warn!("fallback {name:?} of {group_name:?} names no model group or deployment");
            continue;
        };
        if charge.is_none() {
            // Nothing was admitted yet (the first group had nothing free): admit this one.
            let group_name = ctx.topology().catalog.name(target.group).to_owned();
            let asked = if target.first.is_some() {
                &group_name
            } else {
                name
            };
            match admit(state, &caller, asked, need, &principals).await {
                Ok(p) => {
                    ctx.adopt(p.generation);
                    trace.group = Some(p.group);
                    charge = Some(new_charge(p.group));
                    admission = p.admission.clone();
                    governed = p.governed.clone();
                    proxy = p.proxy;
                    if let Some(c) = charge.as_mut() {
                        note_admission(state, admission.as_ref(), governed.as_ref(), proxy, c);
                    }
                    target.first = target.first.or(Some(p.index));
                }
                Err(e) => {
                    error = e;
                    continue;
                }
            }
        }
        let routed = route(
            ctx,
            Routed {
                op,
                request: &request,
                need,
                admission: admission.as_ref(),
                governed: governed.as_ref(),
                proxy,
                fallbacks: n as u32 + 1,
            },
            target,
            &mut charge,
            trace,
        );
        match routed.await {
            Ok(response) => return Ok(response),
            Err(e) => error = e,
        }
    }
    Err(failed(&mut charge, error))
}

/// The deployment to try first: the router's pick, unless a Responses follow-up names a
/// response another deployment of the group holds (`previous_response_id`).
fn first_choice(ctx: &Call<'_>, op: Operation, request: &ModelRequest, picked: &Picked) -> usize {
    if op != Operation::Responses {
        return picked.index;
    }
    let topology = ctx.topology();
    crate::responses::wire::pinned(&request.fields, &topology, picked.group).unwrap_or(picked.index)
}

/// Tells the logging callbacks why the request failed (its charge logs it when dropped).
fn failed(charge: &mut Option<Charge>, error: ApiError) -> ApiError {
    if let Some(c) = charge.as_mut() {
        c.failed(|| CallError {
            status: error.status_code().as_u16(),
            kind: error.body()["error"]["type"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            message: error.to_string(),
        });
    }
    error
}

/// Notes what the request was admitted as on its charge: the key (alias, user, team), the
/// entities it is charged to, and whether Redis has limits to hold it to.
pub(super) fn note_admission(
    state: &AppState,
    admission: Option<&Admission>,
    governed: Option<&Governed>,
    proxy: Option<ProxyBudget>,
    charge: &mut Charge,
) {
    charge.set_key_alias(key_alias(admission));
    shared_limits::mark_pending(state, admission, governed, proxy, charge);
    if let Some(a) = admission {
        charge.key(&a.record.row);
    }
    if let Some(g) = governed {
        charge.governed(g);
    }
}

/// The alias of the admitted key, if it has one.
pub(super) fn key_alias(admission: Option<&Admission>) -> Option<&str> {
    admission.and_then(|a| a.record.row.key_alias.as_deref())
}

/// Starts the accounting of `request` on `group` (`settle_proxy`: its cost counts against the
/// proxy-wide budget).
pub(super) fn new_charge(
    ctx: &Call<'_>,
    caller: &Caller,
    request: &ModelRequest,
    group: usize,
    settle_proxy: bool,
) -> Charge {
    let state = ctx.state;
    Charge::new(
        state.actors().router.clone(),
        state.spend().clone(),
        ChargeFor {
            token: caller.token().map(str::to_owned),
            group,
            group_name: ctx.topology.borrow().catalog.name(group),
            request_id: ctx.call_id,
            metadata: request.gateway.metadata_json(),
            end_user: request.user(),
            settle_proxy,
            live: state.live_requests.clone(),
            log: CallLog::start(&state.callbacks, ctx.op, request.stream, &request.fields),
            durable: state.spend_journal.is_some(),
        },
    )
}

/// What the request needs of a deployment. Its tokens are estimated only when a limit or a
/// context window will be checked against them.
fn need_of(ctx: &Call<'_>, op: Operation, request: &ModelRequest) -> Need {
    let mut need = Need {
        stream: request.stream,
        ..Need::default()
    };
    if ctx.topology.borrow().estimate_tokens {
        need.prompt_tokens = match op {
            Operation::Responses => crate::responses::request::prompt_tokens(&request.fields),
            _ => crate::tokens::prompt_tokens(&request.fields),
        };
        let max_out = ["max_tokens", "max_completion_tokens", "max_output_tokens"]
            .iter()
            .find_map(|k| request.fields.get(*k).and_then(serde_json::Value::as_u64))
            .unwrap_or(0);
        need.tokens = need.prompt_tokens.saturating_add(max_out);
    }
    need
}

/// Which fallback chain an error calls for, if any: the request's own faults have none.
fn fallback_cause(error: &ApiError) -> Option<FallbackCause> {
    match error {
        ApiError::Provider(e) => match e.kind {
            ErrorKind::ContextWindow => Some(FallbackCause::ContextWindow),
            ErrorKind::ContentPolicy => Some(FallbackCause::ContentPolicy),
            ErrorKind::Status if matches!(e.status, 400 | 413 | 422) => None,
            _ => Some(FallbackCause::Other),
        },
        ApiError::NoDeployment { .. } => Some(FallbackCause::Other),
        _ => None,
    }
}

/// A fallback names a model group (or alias or wildcard), or a deployment id.
fn fallback_target(topology: &Topology, name: &str) -> Option<Target> {
    if let Some(r) = topology.catalog.resolve(name) {
        return Some(Target {
            group: r.group,
            wildcard: r.wildcard,
            first: None,
        });
    }
    let d = topology.find(name)?;
    let r = topology.catalog.resolve(&d.model_name)?;
    Some(Target {
        group: r.group,
        wildcard: None,
        first: Some(d.index),
    })
}

/// Where `route` sends a request: a group, and the deployment to try first if already picked.
struct Target {
    group: usize,
    wildcard: Option<String>,
    first: Option<usize>,
}

/// Loads a key that is not cached yet; an unknown key is a 401, an unreachable store a 503.
pub async fn load_key(state: &AppState, token: &str) -> Result<Option<KeyRecord>, ApiError> {
    let t = token.to_owned();
    let found = state
        .db
        .run(move |db| async move {
            match db.key(&t).await? {
                None => Ok(None),
                Some(row) => {
                    let model_spend = db.key_model_spend(&t).await?;
                    Ok(Some(KeyRecord::new(row, model_spend)))
                }
            }
        })
        .await
        .map_err(|e| {
            log::warn!("key lookup failed: {e}");
            ApiError::Unavailable("database".into())
        })?;
    if let Some(record) = &found {
        state
            .actors()
            .router
            .send(CacheKey::read(record.clone()))
            .await
            .map_err(|_| ApiError::Internal)?;
    }
    Ok(found)
}

/// How many times one request reads the entities it is charged to before it gives up (503).
pub(super) const MAX_ENTITY_READS: u32 = 3;

/// Reads users, teams, members, end users or tags that are not cached yet and caches them
/// (`None` for those without a row); an unreachable store is a 503.
pub async fn load_entities(state: &AppState, wanted: Vec<EntityRef>) -> Result<(), ApiError> {
    let keys: Vec<(String, String, String)> = wanted
        .iter()
        .map(|e| {
            (
                e.kind.as_str().to_owned(),
                e.scope.to_string(),
                e.id.to_string(),
            )
        })
        .collect();
    let rows = state
        .db
        .run(move |db| async move { db.entities(&keys).await })
        .await
        .map_err(|e| {
            log::warn!("entity lookup failed: {e}");
            ApiError::Unavailable("database".into())
        })?;
    let mut records: Vec<EntityRecord> = rows.into_iter().filter_map(EntityRecord::new).collect();
    let found = wanted
        .into_iter()
        .map(|entity| {
            let record = records
                .iter()
                .position(|r| r.entity == entity)
                .map(|i| records.swap_remove(i));
            (entity, record)
        })
        .collect();
    state
        .actors()
        .router
        .send(CacheEntities {
            found,
            spend_set: false,
        })
        .await
        .map_err(|_| ApiError::Internal)
}

/// The first pick: resolves the name through the key's aliases, admits the key and the
/// entities the request is charged to (reading any that are not cached), picks.
async fn admit(
    state: &AppState,
    caller: &Caller,
    model: &str,
    need: Need,
    principals: &Principals,
) -> Result<Picked, ApiError> {
    let router = &state.actors().router;
    let key = caller.token().map(str::to_owned);
    // Entities read may be changed elsewhere (and forgotten) before the next pick: a few reads.
    let (mut key_loaded, mut entity_reads) = (false, 0);
    loop {
        let picked = router
            .send(Pick {
                target: PickFor::Admit {
                    key: key.clone(),
                    model: model.to_owned(),
                    counting: shared_limits::counting(state),
                    principals: principals.clone(),
                },
                exclude: Vec::new(),
                need,
            })
            .await
            .map_err(|_| ApiError::Internal)?;
        match picked {
            Ok(p) => return Ok(p),
            Err(PickError::Rejected(Rejection::NotCached)) if !key_loaded => {
                let (Some(token), Caller::Key { shown, .. }) = (&key, caller) else {
                    return Err(ApiError::Internal);
                };
                if load_key(state, token).await?.is_none() {
                    return Err(ApiError::InvalidKey(shown.clone()));
                }
                key_loaded = true;
            }
            Err(PickError::Load(wanted)) if entity_reads < MAX_ENTITY_READS => {
                load_entities(state, wanted).await?;
                entity_reads += 1;
            }
            Err(e) => return Err(pick_error(state, e)),
        }
    }
}

fn no_deployment(state: &AppState, group: usize, no: NoCapacity) -> ApiError {
    let topology = state.topology();
    let name = topology.catalog.name(group);
    if no.prompt_too_long() {
        // Pre-call checks found no deployment whose context window fits the prompt: a
        // context-window error, so `context_window_fallbacks` apply.
        return ApiError::Provider(ProviderError {
            status: 400,
            kind: ErrorKind::ContextWindow,
            message: format!(
                "litellm.ContextWindowExceededError: the prompt is longer than the context window of every deployment of model={name} (pre-call checks)"
            ),
            upstream_type: Some("invalid_request_error".into()),
            param: None,
            retry_after: None,
        });
    }
    // Unknown return: a cooldown's length, or for a full parallel slot, a second.
    let wait = no
        .earliest_back
        .map(|t| t.saturating_duration_since(Instant::now()))
        .unwrap_or(if no.cooling > 0 {
            state.settings.cooldown.cooldown_time
        } else {
            Duration::from_secs(1)
        });
    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
    let mut why = Vec::new();
    if no.cooling > 0 {
        why.push(format!("{} cooling down", no.cooling));
    }
    if no.at_limit > 0 {
        why.push(format!(
            "{} at its rpm, tpm or max_parallel_requests limit",
            no.at_limit
        ));
    }
    if no.too_small > 0 {
        why.push(format!(
            "{} with a context window smaller than the prompt",
            no.too_small
        ));
    }
    let why = if why.is_empty() {
        "every deployment was tried".to_owned()
    } else {
        format!("deployments: {}", why.join(", "))
    };
    ApiError::NoDeployment {
        message: format!(
            "No deployments available for selected model, Try again in {secs} seconds. Passed model={name}. {why}; the earliest is back in {secs}s."
        ),
        retry_after: Duration::from_secs(secs),
    }
}

pub(super) fn pick_error(state: &AppState, e: PickError) -> ApiError {
    match e {
        PickError::UnknownModel(m) => ApiError::UnknownModel(m),
        PickError::Rejected(r) => ApiError::Key(r),
        PickError::NoCapacity { group, no } => no_deployment(state, group, no),
        PickError::Load(wanted) => {
            // Read once already: another instance changed them meanwhile.
            log::warn!("entities still not cached after reading them: {wanted:?}");
            ApiError::Unavailable("database".into())
        }
    }
}

/// Exponential backoff for a retry on the same deployment: 0.5 s doubling to 8 s, with jitter,
/// never shorter than the upstream's `retry-after` nor `router_settings.retry_after`.
fn backoff(retry: u32, retry_after: Option<Duration>, least: Duration) -> Duration {
    let base = 0.5 * 2f64.powi(retry.saturating_sub(1).min(5) as i32);
    let jittered = base.min(8.0) * (0.75 + fastrand::f64() * 0.5);
    let wait = Duration::from_secs_f64(jittered).max(least);
    retry_after.map_or(wait, |r| r.max(wait))
}

/// What every attempt of one routing pass shares.
struct Routed<'a> {
    op: Operation,
    request: &'a ModelRequest,
    need: Need,
    admission: Option<&'a Admission>,
    /// The admission of the entities the request is charged to.
    governed: Option<&'a Governed>,
    /// The proxy-wide budget as this instance saw it at admission, when one is set.
    proxy: Option<ProxyBudget>,
    /// Fallbacks taken before this pass.
    fallbacks: u32,
}

/// Reserves and tries deployments until one answers or the retries run out.
async fn route(
    ctx: &Call<'_>,
    routed: Routed<'_>,
    target: Target,
    charge: &mut Option<Charge>,
    trace: &mut Trace,
) -> Result<HttpResponse, ApiError> {
    let state = ctx.state;
    let actors = state.actors();
    let request = routed.request;
    let max_retries = request
        .gateway
        .num_retries
        .unwrap_or(state.settings.num_retries);
    let group = target.group;
    let wildcard = target.wildcard;
    let mut next = target.first;
    let mut retries = 0u32;
    let mut exclude: Vec<usize> = Vec::new();
    let mut last_error: Option<ProviderError> = None;
    let mut backoffs = 0u32;
    // Deployments that refused a reservation the router's view had allowed.
    let mut refused = NoCapacity::default();
    // The key's admission with Redis's counts, for the rate-limit headers.
    let mut patched: Option<Admission> = None;
    loop {
        let index = match next.take() {
            Some(i) => i,
            None => {
                let picked = actors
                    .router
                    .send(Pick {
                        target: PickFor::Retry { group },
                        exclude: exclude.clone(),
                        need: routed.need,
                    })
                    .await
                    .map_err(|_| ApiError::Internal)?;
                match picked {
                    Ok(p) => {
                        ctx.adopt(p.generation);
                        p.index
                    }
                    Err(PickError::NoCapacity { mut no, .. }) => match last_error.take() {
                        // Every other deployment was tried: retry the same one, after a backoff.
                        Some(err) if !exclude.is_empty() && backoffs < max_retries => {
                            backoffs += 1;
                            let wait =
                                backoff(retries, err.retry_after, state.settings.retry_after);
                            actix_rt::time::sleep(wait).await;
                            exclude.clear();
                            last_error = Some(err);
                            continue;
                        }
                        Some(err) => return Err(err.into()),
                        None => {
                            no.merge(refused);
                            return Err(no_deployment(state, group, no));
                        }
                    },
                    Err(other) => return Err(pick_error(state, other)),
                }
            }
        };
        let topology = ctx.topology();
        // A deployment removed since the router's view was published: pick another.
        let Some(addr) = topology.addr(index) else {
            exclude.push(index);
            continue;
        };
        let reserve = Reserve {
            tokens: routed.need.tokens,
        };
        let held = match addr.send(reserve).await.map_err(|_| ApiError::Internal)? {
            Ok(held) => held,
            Err(why) => {
                refused.add(match why {
                    Refused::Cooling(until) => crate::routing::Blocked::Cooling(until),
                    Refused::AtLimit(frees) => crate::routing::Blocked::AtLimit(frees),
                });
                exclude.push(index);
                continue;
            }
        };
        let mut lease = Lease::new(index, addr.clone(), held);
        let deployment = topology.deployment(index);
        let request_limits = shared_limits::Request {
            admission: routed.admission,
            governed: routed.governed,
            proxy: routed.proxy,
            group_name: topology.catalog.name(group),
        };
        let begun = shared_limits::begin(
            state,
            deployment,
            routed.need.tokens,
            request_limits,
            charge,
        );
        // Far from its limits, the request goes upstream while Redis decides (the answer
        // waits for the verdict); otherwise the verdict comes first.
        let gate = if begun.early() {
            Gate::new(begun)
        } else {
            let decided = begun.finish(charge, &mut lease).await;
            if let Err(next) = on_verdict(state, decided, routed.admission, charge, &mut patched) {
                next.give_way(index, &mut refused, &mut exclude)?;
                continue;
            }
            Gate::default()
        };
        trace.deployment = Some(index);
        let attempt = Attempt {
            ctx,
            op: routed.op,
            request,
            deployment,
            wildcard: wildcard.as_deref(),
            retries,
            fallbacks: routed.fallbacks,
            admission: patched.as_ref().or(routed.admission),
            gate,
        };
        let result = attempt.run(lease, charge).await;
        if let Some(decided) = attempt.gate.refusal() {
            if let Err(next) = on_verdict(state, decided, routed.admission, charge, &mut patched) {
                next.give_way(index, &mut refused, &mut exclude)?;
                continue;
            }
        }
        match result {
            Ok(response) => return Ok(response),
            Err(err) => {
                // A per-request `num_retries` applies to every retryable error; otherwise
                // `retry_policy` names a count per error class, and `num_retries` covers the rest.
                let allowed = match request.gateway.num_retries {
                    Some(n) if err.is_retryable() => n,
                    Some(_) => 0,
                    None => state
                        .settings
                        .retry_policy
                        .retries_for(err.class())
                        .unwrap_or(if err.is_retryable() { max_retries } else { 0 }),
                };
                if retries < allowed {
                    retries += 1;
                    exclude.push(index);
                    log::debug!(
                        "retrying after {} from deployment {}",
                        err.status,
                        deployment.id
                    );
                    last_error = Some(err);
                    continue;
                }
                return Err(err.into());
            }
        }
    }
}

/// Where a request goes after a refusal from the limits held in Redis.
enum Next {
    /// Answer the client with this error.
    Answer(ApiError),
    /// Try another deployment (this one is full until then).
    Elsewhere(Instant),
}

impl Next {
    /// The client's error (`Err`), or deployment `index` set aside as full so the loop tries
    /// another (`Ok`).
    fn give_way(
        self,
        index: usize,
        refused: &mut NoCapacity,
        exclude: &mut Vec<usize>,
    ) -> Result<(), ApiError> {
        match self {
            Next::Answer(err) => Err(err),
            Next::Elsewhere(frees) => {
                refused.add(crate::routing::Blocked::AtLimit(Some(frees)));
                exclude.push(index);
                Ok(())
            }
        }
    }
}

/// Applies Redis's decision on an attempt: on `Go`, the key's admission with Redis's counts
/// (for the rate-limit headers) goes in `patched`.
fn on_verdict(
    state: &AppState,
    decided: shared_limits::Shared,
    admission: Option<&Admission>,
    charge: &mut Option<Charge>,
    patched: &mut Option<Admission>,
) -> Result<(), Next> {
    match decided {
        shared_limits::Shared::Go { remaining } => {
            if let (Some(left), Some(a)) = (remaining, admission) {
                let mut a = a.clone();
                a.requests = left.requests.or(a.requests);
                a.tokens = left.tokens.or(a.tokens);
                *patched = Some(a);
            }
            Ok(())
        }
        shared_limits::Shared::Refused(why) => {
            if let Some(c) = charge.take() {
                c.refused();
            }
            Err(Next::Answer(pick_error(state, PickError::Rejected(why))))
        }
        shared_limits::Shared::DeploymentFull(frees) => Err(Next::Elsewhere(frees)),
    }
}
