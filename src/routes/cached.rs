//! The response cache on a model request's way: the key's `allowed_cache_controls`, a hit
//! answered without any deployment (charged nothing, logged as a cache hit), and where a miss's
//! reply is to be stored.

use std::sync::Arc;

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{HttpResponse, HttpResponseBuilder};

use super::access_log::Trace;
use super::model_request::ModelRequest;
use super::pipeline::{load_key, new_charge, pick_error, Call, VERSION};
use super::shared_limits;
use crate::actors::{AdmitCached, CachedKey, Charge, Durable, PickError};
use crate::auth::Caller;
use crate::cache::{self, Entry, StoreAs};
use crate::error::ApiError;
use crate::governance::Principals;
use crate::keys::{KeyRecord, Rejection};
use crate::providers::Operation;
use crate::state::AppState;

/// A virtual key as the cache sees it: its record and its live spend.
struct VirtualKey {
    record: Arc<KeyRecord>,
    spend: f64,
}

/// Looks the request up in the cache: a hit is the answer; on a miss the request learns
/// where its reply is to be stored (`request.cache_store`). A key may not set a cache control
/// its `allowed_cache_controls` does not list (403), whether or not the cache is on.
pub async fn consult(
    ctx: &Call<'_>,
    caller: &Caller,
    op: Operation,
    request: &mut ModelRequest,
    principals: &Principals,
    trace: &mut Trace,
) -> Result<Option<HttpResponse>, ApiError> {
    let state = ctx.state;
    let controls = &request.gateway.cache;
    // A request-level mock answers without any upstream, and is not part of the key.
    let mocked = request.gateway.mock_response.is_some() || request.gateway.mock_timeout;
    let used = match &state.cache {
        Some(cache) if !mocked => cache.plan(op, controls).map(|plan| (cache, plan)),
        _ => None,
    };
    let key = match caller {
        Caller::Key { token, shown } if used.is_some() || !controls.named.is_empty() => {
            Some(virtual_key(state, token, shown).await?)
        }
        _ => None,
    };
    if let (Some(k), false) = (&key, controls.named.is_empty()) {
        let allowed: Vec<String> =
            serde_json::from_str(&k.record.row.allowed_cache_controls).unwrap_or_default();
        if let Some(control) = controls.first_not_allowed(&allowed) {
            return Err(ApiError::CacheControlDenied(control.to_owned()));
        }
    }
    let Some((cache, plan)) = used else {
        return Ok(None);
    };
    // The key names the group the request resolves to (through the key's own aliases), so two
    // keys whose aliases send one name to different groups never share an entry.
    let asked = request.model.as_str();
    let name = key
        .as_ref()
        .and_then(|k| k.record.aliases.get(asked))
        .map_or(asked, String::as_str);
    let topology = ctx.topology();
    let Some(resolved) = topology.catalog.resolve(name) else {
        return Ok(None);
    };
    let group = resolved.group;
    let keyed_model = match resolved.wildcard {
        Some(_) => name,
        None => topology.catalog.name(group),
    };
    let cache_key = cache::key_of(&plan, op, keyed_model, &request.fields);
    if plan.read {
        let found = cache.get(&cache_key, plan.max_age).await;
        let readable = |k: &VirtualKey| may_read(&topology.catalog, k, asked, name, group);
        if let Some(entry) = found.filter(|_| key.as_ref().is_none_or(readable)) {
            // A hit counts against the key's limits like any request.
            if let Some(charge) = admit_hit(ctx, caller, request, principals, group).await? {
                let found = Found {
                    key: &cache_key,
                    entry,
                    group,
                    key_spend: key.as_ref().map(|k| k.spend),
                };
                if let Some((response, durable)) = hit(ctx, op, request, found, charge) {
                    trace.group = Some(group);
                    durable.await;
                    return Ok(Some(response));
                }
            }
        }
    }
    let store = plan.store_ttl.map(|ttl| StoreAs {
        key: cache_key,
        ttl,
    });
    request.cache_store = store;
    Ok(None)
}

/// The caller's key from the router's cache, else from the database; an unknown key is a 401.
async fn virtual_key(state: &AppState, token: &str, shown: &str) -> Result<VirtualKey, ApiError> {
    let cached = state
        .actors()
        .router
        .send(CachedKey(token.to_owned()))
        .await
        .map_err(|_| ApiError::Internal)?;
    if let Some((record, spend)) = cached {
        return Ok(VirtualKey { record, spend });
    }
    match load_key(state, token).await? {
        Some(record) => Ok(VirtualKey {
            spend: record.row.spend,
            record: Arc::new(record),
        }),
        None => Err(ApiError::InvalidKey(shown.to_owned())),
    }
}

/// Whether the key may read a cached reply of `group`: whether it may use the model. Its other
/// rules (blocked, expired, budgets, rate limits) are the admission's (`admit_hit`).
fn may_read(
    catalog: &crate::catalog::Catalog,
    key: &VirtualKey,
    asked: &str,
    name: &str,
    group: usize,
) -> bool {
    let r = &key.record;
    catalog.key_may_use(&r.models, name, group)
        || (asked != name && r.models.iter().any(|m| m == asked))
}

/// Admits a request the cache can answer: its key is held to all its rules and limits (here,
/// or in Redis), as for any request. `None` when the key is not cached here any more (the
/// request then takes the way of a miss).
async fn admit_hit(
    ctx: &Call<'_>,
    caller: &Caller,
    request: &ModelRequest,
    principals: &Principals,
    group: usize,
) -> Result<Option<Charge>, ApiError> {
    let state = ctx.state;
    let router = &state.actors().router;
    // A hit costs nothing: the proxy-wide budget need not hear of it.
    let mut charge = new_charge(ctx, caller, request, group, false);
    charge.cache_hit(&request.model);
    if caller.token().is_none() && *principals == Principals::default() {
        return Ok(Some(charge));
    }
    let admitted = router
        .send(AdmitCached {
            token: caller.token().map(str::to_owned),
            group,
            asked: request.model.clone(),
            counting: shared_limits::counting(state),
            principals: principals.clone(),
        })
        .await
        .map_err(|_| ApiError::Internal)?;
    let (admission, governed) = match admitted {
        Ok(a) => a,
        // Not cached here: the request takes the way of a miss, which reads them.
        Err(PickError::Rejected(Rejection::NotCached) | PickError::Load(_)) => {
            charge.refused();
            return Ok(None);
        }
        Err(e) => {
            charge.refused();
            return Err(pick_error(state, e));
        }
    };
    charge.set_counted_here(admission.as_ref().is_none_or(|a| a.counted_here));
    charge.set_key_alias(super::pipeline::key_alias(admission.as_ref()));
    if let Some(a) = &admission {
        charge.key(&a.record.row);
    }
    if let Some(g) = &governed {
        charge.governed(g);
    }
    let topology = ctx.topology();
    let group_name = topology.catalog.name(group);
    let (a, g) = (admission.as_ref(), governed.as_ref());
    if let Some(why) = shared_limits::check_cached(state, a, g, group_name, &mut charge).await {
        charge.refused();
        return Err(pick_error(state, PickError::Rejected(why)));
    }
    Ok(Some(charge))
}

/// A cached reply the caller may read.
struct Found<'a> {
    /// Its cache key.
    key: &'a str,
    entry: Entry,
    /// The group the request resolved to.
    group: usize,
    /// The caller's key's spend, for `x-litellm-key-spend`.
    key_spend: Option<f64>,
}

/// The cached reply as the answer: the stored bytes for a plain request, a replayed stream
/// for a streaming one (`None` when the entry cannot be replayed: then it is a miss).
fn hit(
    ctx: &Call<'_>,
    op: Operation,
    request: &ModelRequest,
    found: Found<'_>,
    mut charge: Charge,
) -> Option<(HttpResponse, Durable)> {
    let state = ctx.state;
    let Found {
        key: cache_key,
        entry,
        group,
        key_spend,
    } = found;
    let events = if request.stream {
        let with_usage = request.wants_stream_usage || state.settings.always_include_stream_usage;
        let Some(events) = cache::replay::sse_events(op, &entry, with_usage) else {
            charge.refused();
            return None;
        };
        Some(events)
    } else {
        None
    };
    let mut b = HttpResponse::Ok();
    let mut put = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            b.insert_header((HeaderName::from_static(name), v));
        }
    };
    put("x-litellm-cache-key", cache_key);
    put(
        "x-litellm-model-group",
        ctx.topology.borrow().catalog.name(group),
    );
    put("x-litellm-version", VERSION);
    put("x-litellm-response-cost", "0");
    if let Some(spend) = key_spend {
        put("x-litellm-key-spend", &spend.to_string());
    }
    // Nothing is spent; the cached call's tokens count against the key's tpm.
    charge.capture_reply(|| serde_json::from_slice(&entry.body).ok());
    let durable = charge.succeed(entry.usage, 0.0);
    timing_headers(&mut b, ctx);
    let response = match events {
        Some(events) => {
            let body =
                futures_util::stream::iter(events.into_iter().map(Ok::<_, actix_web::Error>));
            b.content_type("text/event-stream").streaming(body)
        }
        None => b.content_type("application/json").body(entry.body),
    };
    Some((response, durable))
}

fn timing_headers(b: &mut HttpResponseBuilder, ctx: &Call<'_>) {
    let ms = format!("{:.3}", ctx.started.elapsed().as_secs_f64() * 1000.0);
    b.insert_header(("x-litellm-response-duration-ms", ms.clone()));
    b.insert_header(("x-litellm-overhead-duration-ms", ms));
}

/// Where this attempt's reply is to be cached, if anywhere: not when a fallback answers (its
/// reply is not what the request's key names).
fn target<'a>(
    state: &'a AppState,
    request: &'a ModelRequest,
    fallbacks: u32,
) -> Option<(&'a cache::ResponseCache, &'a StoreAs)> {
    if fallbacks > 0 {
        return None;
    }
    Some((state.cache.as_ref()?, request.cache_store.as_ref()?))
}

/// Keeps a whole reply (as sent to the client) when the request is to be cached.
pub fn remember(
    state: &AppState,
    request: &ModelRequest,
    fallbacks: u32,
    body: &bytes::Bytes,
    usage: crate::providers::Usage,
) {
    if let Some((cache, to)) = target(state, request, fallbacks) {
        cache.put(to, body.clone(), usage);
    }
}

/// A tap for a streamed reply that is to be cached: it keeps the reply once the stream ends
/// well.
pub fn stream_tap(
    state: &AppState,
    request: &ModelRequest,
    fallbacks: u32,
    op: Operation,
) -> Option<Box<dyn crate::providers::stream::StreamTap>> {
    let (cache, to) = target(state, request, fallbacks)?;
    Some(cache.recorder(to.clone(), op))
}
