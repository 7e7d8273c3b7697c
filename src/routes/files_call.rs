//! One files or batches call: the caller authenticated and admitted as a cache hit is (the
//! key's rules and limits; no deployment picked), the deployment that holds the object (or is
//! chosen for a new one), the upstream's reply relayed with the usual headers, and a spend-log
//! row.

use std::cell::Cell;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use actix_web::body::SizedStream;
use actix_web::http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use actix_web::http::Method;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, HttpResponseBuilder, ResponseError};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use super::access_log::Trace;
use super::pipeline::{key_alias, load_entities, load_key, pick_error, MAX_ENTITY_READS, VERSION};
use super::shared_limits;
use crate::actors::{AdmitCached, CachedKey, Charge, ChargeFor, Governed, PickError};
use crate::auth::{authenticate, Caller};
use crate::config::Deployment;
use crate::db::files::{ObjectRow, MASTER_OWNER};
use crate::error::ApiError;
use crate::files::select::{self, Chosen, Wanted};
use crate::files::Kind;
use crate::governance::Principals;
use crate::keys::{Admission, KeyRecord, Rejection};
use crate::providers::client::{read_all, UpstreamBody};
use crate::providers::files::{self as wire, Endpoint, Outgoing, Reply};
use crate::providers::{ProviderError, Usage};
use crate::state::AppState;

/// One call's context, from its arrival to its answer.
pub struct FilesCall<'a> {
    /// Shared state.
    pub state: &'a AppState,
    http: &'a awc::Client,
    /// The client's request.
    pub req: &'a HttpRequest,
    started: Instant,
    call_id: String,
    trace: Cell<Trace>,
    /// Time spent waiting on the upstream.
    upstream: Cell<Duration>,
}

/// Who is calling: the master key (or anyone, with no master key set), or a virtual key known
/// to exist and be usable.
pub enum Who {
    /// The master key, or an open gateway.
    Admin,
    /// A virtual key.
    Key {
        /// Its token (SHA-256 hex).
        token: String,
        /// Its abbreviated form, for messages.
        shown: String,
        /// Its record.
        record: Arc<KeyRecord>,
    },
}

impl Who {
    /// The owner recorded for what this caller creates.
    pub fn owner(&self) -> &str {
        match self {
            Self::Admin => MASTER_OWNER,
            Self::Key { token, .. } => token,
        }
    }

    /// Whether the caller may reach an object owned by `owner`: the master key reaches all.
    pub fn reaches(&self, owner: &str) -> bool {
        match self {
            Self::Admin => true,
            Self::Key { token, .. } => token == owner,
        }
    }

    fn record(&self) -> Option<&KeyRecord> {
        match self {
            Self::Admin => None,
            Self::Key { record, .. } => Some(record),
        }
    }
}

/// An object the caller may reach, and the deployment that holds it.
pub struct Held {
    /// Its row.
    pub row: ObjectRow,
    /// Its deployment and group.
    pub chosen: Chosen,
}

impl<'a> FilesCall<'a> {
    /// A call arriving now; its id is the client's `x-litellm-call-id`, else a new one.
    pub fn new(state: &'a AppState, http: &'a awc::Client, req: &'a HttpRequest) -> Self {
        let call_id = req
            .headers()
            .get("x-litellm-call-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 128)
            .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned);
        Self {
            state,
            http,
            req,
            started: Instant::now(),
            call_id,
            trace: Cell::new(Trace::default()),
            upstream: Cell::new(Duration::ZERO),
        }
    }

    /// The call's answer: `result`, or its error in the contract's shape, with the call id;
    /// the access log learns the group and deployment.
    pub fn finish(self, result: Result<HttpResponse, ApiError>) -> HttpResponse {
        let mut response = result.unwrap_or_else(|e| e.error_response());
        if let Ok(v) = HeaderValue::from_str(&self.call_id) {
            response
                .headers_mut()
                .insert(HeaderName::from_static("x-litellm-call-id"), v);
        }
        self.req.extensions_mut().insert(self.trace.get());
        response
    }

    /// The caller; a virtual key must exist, not be blocked and not have expired (401/400
    /// before anything else is looked at, so another key's ids are never probed).
    pub async fn caller(&self) -> Result<Who, ApiError> {
        let (token, shown) = match authenticate(self.state, self.req)? {
            Caller::Open | Caller::Master => return Ok(Who::Admin),
            Caller::Key { token, shown } => (token, shown),
        };
        let cached = self
            .state
            .actors()
            .router
            .send(CachedKey(token.clone()))
            .await
            .map_err(|_| ApiError::Internal)?;
        let record = match cached {
            Some((record, _)) => record,
            None => Arc::new(
                load_key(self.state, &token)
                    .await?
                    .ok_or_else(|| ApiError::InvalidKey(shown.clone()))?,
            ),
        };
        if record.row.blocked {
            return Err(ApiError::Key(Rejection::Blocked));
        }
        if let Some(at) = record
            .row
            .expires
            .map(crate::keys::record::utc)
            .filter(|at| *at <= chrono::Utc::now())
        {
            return Err(ApiError::Key(Rejection::Expired(at)));
        }
        Ok(Who::Key {
            token,
            shown,
            record,
        })
    }

    /// The request's query parameters (a malformed query reads as empty).
    pub fn query(&self) -> HashMap<String, String> {
        actix_web::web::Query::<HashMap<String, String>>::from_query(self.req.query_string())
            .map(actix_web::web::Query::into_inner)
            .unwrap_or_default()
    }

    /// Where the request says it goes: the path's provider, then the body's (or form's)
    /// fields, then the query's, then the `x-litellm-model` / `custom-llm-provider` headers.
    pub fn wanted(
        &self,
        model: Option<String>,
        target_model_names: Option<String>,
        provider: Option<String>,
    ) -> Result<Wanted, ApiError> {
        let mut query = self.query();
        let header = |name: &str| {
            self.req
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let path_provider = self.req.match_info().get("provider").map(str::to_owned);
        Wanted::new(
            model
                .or_else(|| query.remove("model"))
                .or_else(|| header("x-litellm-model")),
            target_model_names.or_else(|| query.remove("target_model_names")),
            path_provider
                .or(provider)
                .or_else(|| query.remove("custom_llm_provider"))
                .or_else(|| header("custom-llm-provider")),
        )
    }

    /// The deployment a new object (or a list) goes to.
    pub fn choose(&self, who: &Who, wanted: &Wanted) -> Result<Chosen, ApiError> {
        select::choose(
            &self.state.topology(),
            wanted,
            who.record(),
            fastrand::f64(),
        )
    }

    /// The object `id` of `kind`, if the caller may reach it: an unknown id and another key's
    /// are the same 404.
    pub async fn object(&self, who: &Who, kind: Kind, id: &str) -> Result<Held, ApiError> {
        let missing = || ApiError::Missing(format!("No such {} object: {id}", kind.object_name()));
        let wanted = id.to_owned();
        let row = self
            .state
            .db
            .run(move |db| async move { db.object(&wanted, kind.as_str()).await })
            .await
            .map_err(|e| unavailable(&e))?
            .filter(|row| who.reaches(&row.owner))
            .ok_or_else(missing)?;
        let topology = self.state.topology();
        let deployment = topology
            .find(&row.deployment_id)
            .filter(|d| select::files_provider(d).is_some())
            .ok_or_else(|| {
                ApiError::Missing(format!(
                    "{} {id} is held by deployment {}, which is no longer in model_list",
                    kind.object_name(),
                    row.deployment_id
                ))
            })?;
        let group = topology
            .catalog
            .resolve(&deployment.model_name)
            .ok_or_else(missing)?
            .group;
        Ok(Held {
            row,
            chosen: Chosen {
                index: deployment.index,
                group,
            },
        })
    }

    /// Records an object created on `deployment`, owned by `owner`.
    pub async fn record(
        &self,
        owner: &str,
        kind: Kind,
        id: &str,
        deployment: &Deployment,
        purpose: Option<&str>,
        input_file_id: Option<&str>,
    ) -> Result<(), ApiError> {
        let row = ObjectRow {
            id: id.to_owned(),
            kind: kind.as_str().to_owned(),
            deployment_id: deployment.id.clone(),
            owner: owner.to_owned(),
            purpose: purpose.map(str::to_owned),
            input_file_id: input_file_id.map(str::to_owned),
            created_at: chrono::Utc::now().naive_utc(),
            spend: None,
            charged_at: None,
        };
        self.state
            .db
            .run(move |db| async move { db.record_object(&row).await })
            .await
            .map_err(|e| {
                log::error!(
                    "{} {id} was created on deployment {} but cannot be recorded: {e}",
                    kind.as_str(),
                    deployment.id
                );
                unavailable(&e)
            })
    }

    /// Admits the caller for a call on `chosen`'s deployment: the key's rules and limits (here,
    /// or in Redis) as for any request; the call's charge starts.
    pub async fn admit(&self, who: &Who, chosen: Chosen) -> Result<Admitted, ApiError> {
        let state = self.state;
        let topology = state.topology();
        let deployment = topology.shared(chosen.index).ok_or(ApiError::Internal)?;
        let group_name = topology.catalog.name(chosen.group);
        self.trace.set(Trace {
            group: Some(chosen.group),
            deployment: Some(chosen.index),
        });
        let (admission, governed) = match who {
            Who::Admin => (None, None),
            Who::Key { token, shown, .. } => {
                let (a, g) = self.admit_key(token, shown, chosen.group).await?;
                (Some(a), g)
            }
        };
        let mut charge = Charge::new(
            state.actors().router.clone(),
            state.spend().clone(),
            ChargeFor {
                token: match who {
                    Who::Admin => None,
                    Who::Key { token, .. } => Some(token.clone()),
                },
                group: chosen.group,
                group_name,
                request_id: &self.call_id,
                metadata: "{}".to_owned(),
                end_user: None,
                settle_proxy: state.settings.max_budget.is_some(),
                live: state.live_requests.clone(),
                log: None,
                durable: state.spend_journal.is_some(),
            },
        );
        if let Some(a) = &admission {
            charge.set_counted_here(a.counted_here);
            charge.set_key_alias(key_alias(Some(a)));
            charge.key(&a.record.row);
            if let Some(g) = &governed {
                charge.governed(g);
            }
            let held = shared_limits::check_cached(
                state,
                Some(a),
                governed.as_ref(),
                group_name,
                &mut charge,
            )
            .await;
            if let Some(why) = held {
                charge.refused();
                return Err(pick_error(state, PickError::Rejected(why)));
            }
        }
        charge.serving(&deployment, &deployment.upstream_model);
        Ok(Admitted {
            deployment,
            charge,
            admission,
        })
    }

    /// Admits `token` (and its user, team and tags) for a call on `group`.
    async fn admit_key(
        &self,
        token: &str,
        shown: &str,
        group: usize,
    ) -> Result<(Admission, Option<Governed>), ApiError> {
        let state = self.state;
        // Entities read may be changed elsewhere (and forgotten) before the next pick: a few reads.
        let (mut key_loaded, mut entity_reads) = (false, 0);
        loop {
            let admitted = state
                .actors()
                .router
                .send(AdmitCached {
                    token: Some(token.to_owned()),
                    group,
                    asked: state.topology().catalog.name(group).to_owned(),
                    counting: shared_limits::counting(state),
                    principals: Principals::default(),
                })
                .await
                .map_err(|_| ApiError::Internal)?;
            match admitted {
                Ok((Some(a), governed)) => return Ok((a, governed)),
                Ok((None, _)) => return Err(ApiError::Internal),
                // Dropped from the cache since it was read: read it again, once.
                Err(PickError::Rejected(Rejection::NotCached)) if !key_loaded => {
                    if load_key(state, token).await?.is_none() {
                        return Err(ApiError::InvalidKey(shown.to_owned()));
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
}

fn unavailable(e: &crate::db::DbError) -> ApiError {
    log::warn!("files and batches store: {e}");
    ApiError::Unavailable("database".into())
}

/// An admitted call on one deployment.
pub struct Admitted {
    /// The deployment.
    pub deployment: Arc<Deployment>,
    /// The call's accounting: dropped unsettled, it logs a failure.
    pub charge: Charge,
    admission: Option<Admission>,
}

impl Admitted {
    fn timeout(&self, call: &FilesCall<'_>) -> Duration {
        self.deployment
            .timeout
            .unwrap_or(call.state.settings.request_timeout)
    }

    fn max_body(call: &FilesCall<'_>) -> usize {
        call.state.settings.max_request_size.max(32 * 1024 * 1024)
    }

    /// Sends one call to the deployment (`query` already encoded).
    pub async fn send(
        &self,
        call: &FilesCall<'_>,
        method: Method,
        endpoint: Endpoint<'_>,
        query: &str,
        body: Outgoing,
    ) -> Result<Reply, ApiError> {
        let url = wire::url(&self.deployment, endpoint, query);
        log::debug!(
            "{method} {} on deployment {}",
            endpoint.path(),
            self.deployment.id
        );
        let started = Instant::now();
        let wait = self.timeout(call).saturating_sub(call.started.elapsed());
        let sent = wire::send(call.http, &self.deployment, method, &url, body, wait).await;
        call.upstream.set(call.upstream.get() + started.elapsed());
        Ok(sent?)
    }

    /// Reads a reply whole (within the call's time and the upstream reply bound).
    pub async fn read(&self, call: &FilesCall<'_>, reply: &mut Reply) -> Result<Bytes, ApiError> {
        let started = Instant::now();
        let wait = self.timeout(call).saturating_sub(call.started.elapsed());
        let body = read_all(
            &mut reply.body,
            self.deployment.provider,
            wait,
            Self::max_body(call),
        )
        .await;
        call.upstream.set(call.upstream.get() + started.elapsed());
        Ok(body?)
    }

    /// Reads a JSON object reply whole.
    pub async fn read_json(
        &self,
        call: &FilesCall<'_>,
        reply: &mut Reply,
    ) -> Result<(Bytes, serde_json::Value), ApiError> {
        let body = self.read(call, reply).await?;
        let value: serde_json::Value = serde_json::from_slice(&body)
            .ok()
            .filter(serde_json::Value::is_object)
            .ok_or_else(|| {
                ProviderError::connection(
                    self.deployment.provider,
                    "unreadable reply: not a JSON object",
                )
            })?;
        Ok((body, value))
    }

    /// Reads a reply's body chunk by chunk into `each` (within the call's time, no bound on
    /// its size: nothing is kept).
    pub async fn read_through(
        &self,
        call: &FilesCall<'_>,
        reply: Reply,
        mut each: impl FnMut(&[u8]) -> Result<(), String>,
    ) -> Result<(), ApiError> {
        let provider = self.deployment.provider;
        let wait = self.timeout(call).saturating_sub(call.started.elapsed());
        let mut body = reply.body;
        let read = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| ProviderError::connection(provider, e))?;
                each(&chunk).map_err(|e| ProviderError::connection(provider, e))?;
            }
            Ok::<_, ProviderError>(())
        };
        actix_rt::time::timeout(wait, read)
            .await
            .map_err(|_| ProviderError::timeout(provider, wait))??;
        Ok(())
    }

    /// The answer: `body` (JSON) with the usual headers, once the call's spend (`usage`,
    /// `cost`) is durable.
    pub async fn answer(
        self,
        call: &FilesCall<'_>,
        provider_headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
        usage: Usage,
        cost: f64,
    ) -> HttpResponse {
        let mut b = self.settle(call, provider_headers, usage, cost).await;
        b.content_type("application/json").body(body)
    }

    /// The answer streamed from the upstream's reply as it arrives (a file's content), within
    /// the call's time; its content type and length are the upstream's.
    pub async fn stream(self, call: &FilesCall<'_>, reply: Reply) -> HttpResponse {
        let wait = self.timeout(call).saturating_sub(call.started.elapsed());
        let Reply {
            provider_headers,
            content_type,
            content_length,
            body,
        } = reply;
        let mut b = self
            .settle(call, &provider_headers, Usage::default(), 0.0)
            .await;
        b.insert_header((
            CONTENT_TYPE,
            content_type.unwrap_or_else(|| HeaderValue::from_static("application/octet-stream")),
        ));
        let bounded = Bounded {
            body,
            deadline: Box::pin(actix_rt::time::sleep(wait)),
            done: false,
        };
        match content_length {
            Some(n) => b.body(SizedStream::new(n, bounded)),
            None => b.streaming(bounded),
        }
    }

    async fn settle(
        mut self,
        call: &FilesCall<'_>,
        provider_headers: &[(HeaderName, HeaderValue)],
        usage: Usage,
        cost: f64,
    ) -> HttpResponseBuilder {
        let d = &*self.deployment;
        let mut b = HttpResponse::Ok();
        for (name, value) in provider_headers {
            b.insert_header((name.clone(), value.clone()));
        }
        let mut put = |name: &'static str, value: &str| {
            if let Ok(v) = HeaderValue::from_str(value) {
                b.insert_header((HeaderName::from_static(name), v));
            }
        };
        put("x-litellm-model-id", &d.id);
        put("x-litellm-model-api-base", &d.public_api_base);
        put("x-litellm-model-group", &d.model_name);
        put("x-litellm-version", VERSION);
        put("x-litellm-attempted-retries", "0");
        put("x-litellm-attempted-fallbacks", "0");
        put("x-litellm-response-cost", &cost.to_string());
        if let Some(a) = &self.admission {
            put("x-litellm-key-spend", &(a.spend + cost).to_string());
            if let Some((limit, remaining)) = a.requests {
                put("x-ratelimit-limit-requests", &limit.to_string());
                put("x-ratelimit-remaining-requests", &remaining.to_string());
            }
            if let Some((limit, remaining)) = a.tokens {
                put("x-ratelimit-limit-tokens", &limit.to_string());
                put("x-ratelimit-remaining-tokens", &remaining.to_string());
            }
        }
        let upstream = call.upstream.get();
        self.charge.upstream_took(upstream);
        // The answer is sent only once its spend is in the journal on disk.
        self.charge.succeed(usage, cost).await;
        let total = call.started.elapsed();
        let ms = |d: Duration| format!("{:.3}", d.as_secs_f64() * 1000.0);
        b.insert_header(("x-litellm-response-duration-ms", ms(total)));
        b.insert_header((
            "x-litellm-overhead-duration-ms",
            ms(total.saturating_sub(upstream)),
        ));
        b
    }
}

/// The request's query without the gateway's own parameters (and without `after` when the
/// gateway pages on itself), as it was encoded.
pub fn forwarded_query(query: &str, also_drop: &[&str]) -> String {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter(|pair| {
            let key = pair.split('=').next().unwrap_or_default();
            !select::GATEWAY_FIELDS.contains(&key) && !also_drop.contains(&key)
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// An upstream body relayed to the client, cut off at the call's deadline.
struct Bounded {
    body: UpstreamBody,
    deadline: Pin<Box<actix_rt::time::Sleep>>,
    done: bool,
}

impl Stream for Bounded {
    type Item = Result<Bytes, Box<dyn std::error::Error>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            self.done = true;
            return Poll::Ready(Some(Err("the upstream did not finish in time".into())));
        }
        match self.body.as_mut().poll_next(cx) {
            Poll::Ready(Some(Err(e))) => {
                self.done = true;
                Poll::Ready(Some(Err(Box::new(e))))
            }
            Poll::Ready(Some(Ok(chunk))) => Poll::Ready(Some(Ok(chunk))),
            Poll::Ready(None) => {
                self.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gateways_query_parameters_are_not_forwarded() {
        assert_eq!(
            forwarded_query(
                "purpose=batch&custom_llm_provider=azure&limit=2&model=x",
                &[]
            ),
            "purpose=batch&limit=2"
        );
        assert_eq!(forwarded_query("after=f1&limit=2", &["after"]), "limit=2");
        assert_eq!(forwarded_query("", &[]), "");
    }
}
