//! `Charge`: one request's accounting, sent exactly once when it ends (or is dropped): the
//! key's slot and spend to the router, the spend-log row to the spend actor, and the request's
//! event to the logging callbacks when one is on. A settled charge hands back a `Durable`: the
//! answer completes once it resolves (the record is in the spend journal on disk).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix::Addr;
use chrono::Utc;

use super::router::{Governed, RouterActor, Settle};
use super::spend::{RecordSpend, SpendActor};
use crate::callbacks::{CallError, CallLog};
use crate::config::Deployment;
use crate::db::models::{KeyRow, SpendLogRow};
use crate::governance::{EntityKind, EntityRef};
use crate::providers::Usage;
use crate::shared::{Shared, Ticket};

/// Who and what a request is charged for.
pub struct ChargeFor<'a> {
    /// The hashed key, if any.
    pub token: Option<String>,
    /// The group's index.
    pub group: usize,
    /// The group's name.
    pub group_name: &'a str,
    /// The call id.
    pub request_id: &'a str,
    /// The request's `metadata`, as JSON text.
    pub metadata: String,
    /// The request's `user` (its end user).
    pub end_user: Option<String>,
    /// A proxy-wide budget is enforced: the router must hear of every cost.
    pub settle_proxy: bool,
    /// The count of requests not yet charged.
    pub live: Arc<AtomicUsize>,
    /// The request's part of the logging callbacks, when one is on.
    pub log: Option<Box<CallLog>>,
    /// A spend journal is kept: a settled charge can be waited for until its record is on disk.
    pub durable: bool,
}

/// Resolves once a settled request's spend record is in the journal on disk; at once when no
/// journal is kept, or when the record could not be journaled (its spend is still buffered).
#[must_use = "the answer must not complete before its spend is durable"]
#[derive(Debug, Default)]
pub struct Durable(Option<tokio::sync::oneshot::Receiver<()>>);

impl Future for Durable {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(rx) = self.0.as_mut() else {
            return Poll::Ready(());
        };
        if Pin::new(rx).poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.0 = None;
        Poll::Ready(())
    }
}

/// The accounting of one admitted request.
pub struct Charge {
    router: Addr<RouterActor>,
    spend: Addr<SpendActor>,
    token: Option<String>,
    group: usize,
    row: SpendLogRow,
    settle_proxy: bool,
    live: Arc<AtomicUsize>,
    sent: bool,
    /// Whether the request gets a spend-log row (not when it was refused before any attempt).
    logged: bool,
    /// Whether the router counted the key's rate and parallel limits here.
    counted_here: bool,
    shared: SharedLimits,
    /// The key's alias, for the metrics.
    key_alias: Option<String>,
    /// How long the upstream took to answer the attempt that succeeded.
    upstream: Option<Duration>,
    log: Option<Box<CallLog>>,
    durable: bool,
    /// The users, teams, members, end users and tags charged, and whether their limits were
    /// counted here.
    governed: Option<(Arc<[EntityRef]>, bool)>,
}

/// The request's limits held in Redis (its key's, and the proxy-wide budget).
pub enum SharedLimits {
    /// None: a single instance, nothing to hold, or Redis did not answer.
    None,
    /// To be checked with the request's first attempt.
    Pending(Shared),
    /// Checked and counted by Redis: `ticket` is what ending the request must do.
    Held {
        /// The connection.
        shared: Shared,
        /// What to settle.
        ticket: Ticket,
        /// The request's parallel-request slot.
        slot: String,
    },
}

impl Charge {
    /// Starts the accounting of a request.
    pub fn new(router: Addr<RouterActor>, spend: Addr<SpendActor>, of: ChargeFor<'_>) -> Self {
        let ChargeFor {
            token,
            group,
            group_name,
            request_id,
            metadata,
            end_user,
            settle_proxy,
            live,
            log,
            durable,
        } = of;
        live.fetch_add(1, Ordering::SeqCst);
        let now = Utc::now().naive_utc();
        Self {
            router,
            spend,
            row: SpendLogRow {
                request_id: request_id.to_owned(),
                api_key: token.clone().unwrap_or_default(),
                model: String::new(),
                model_group: group_name.to_owned(),
                model_id: String::new(),
                api_base: String::new(),
                provider: String::new(),
                prompt_tokens: 0,
                completion_tokens: 0,
                total_tokens: 0,
                spend: 0.0,
                start_time: now,
                end_time: now,
                status: "failure".into(),
                cache_hit: false,
                user_id: None,
                metadata,
                team_id: None,
                end_user,
                request_tags: "[]".into(),
            },
            token,
            group,
            settle_proxy,
            live,
            sent: false,
            logged: true,
            counted_here: true,
            shared: SharedLimits::None,
            key_alias: None,
            upstream: None,
            log,
            durable,
            governed: None,
        }
    }

    /// Notes the caller's key: its user and team for the spend log, its name (never the key)
    /// for the logging callbacks.
    pub fn key(&mut self, row: &KeyRow) {
        self.row.user_id.clone_from(&row.user_id);
        self.row.team_id.clone_from(&row.team_id);
        if let Some(log) = self.log.as_mut() {
            log.key(row);
        }
    }

    /// Notes the users, teams, members, end users and tags the request was admitted for: their
    /// spend and slots are settled with it, and its tags go in the spend log.
    pub fn governed(&mut self, governed: &Governed) {
        let tags: Vec<&str> = governed
            .entities
            .iter()
            .filter(|e| e.kind == EntityKind::Tag)
            .map(|e| &*e.id)
            .collect();
        if !tags.is_empty() {
            self.row.request_tags = serde_json::to_string(&tags).unwrap_or_else(|_| "[]".into());
        }
        self.governed = Some((governed.entities.clone(), governed.counted_here));
    }

    /// Keeps the reply for the logging callbacks; `reply` runs only when one wants it.
    pub fn capture_reply(&mut self, reply: impl FnOnce() -> Option<serde_json::Value>) {
        if let Some(log) = self.log.as_mut().filter(|l| l.wants_reply()) {
            if let Some(r) = reply() {
                log.reply(r);
            }
        }
    }

    /// Notes why the request failed, for the logging callbacks; `why` runs only when one is on.
    pub fn failed(&mut self, why: impl FnOnce() -> CallError) {
        if let Some(log) = self.log.as_mut() {
            log.failed(why());
        }
    }

    /// Notes the key's alias (for the metrics).
    pub fn set_key_alias(&mut self, alias: Option<&str>) {
        self.key_alias = alias.map(str::to_owned);
    }

    /// Notes how long the upstream took to answer the attempt that succeeded: the rest of the
    /// request's time is the gateway's own.
    pub fn upstream_took(&mut self, took: Duration) {
        self.upstream = Some(took);
    }

    /// Notes whether the router counted the key's rate and parallel limits here (it frees the
    /// key's slot at the end only then).
    pub fn set_counted_here(&mut self, counted_here: bool) {
        self.counted_here = counted_here;
    }

    /// The request's limits held in Redis.
    pub fn shared(&self) -> &SharedLimits {
        &self.shared
    }

    /// Sets the request's limits held in Redis.
    pub fn set_shared(&mut self, shared: SharedLimits) {
        self.shared = shared;
    }

    /// Notes the deployment (and upstream model) that is serving the request now.
    pub fn serving(&mut self, deployment: &Deployment, model: &str) {
        self.row.model = model.to_owned();
        self.row.model_id = deployment.id.clone();
        self.row.api_base = deployment.public_api_base.clone();
        self.row.provider = deployment.provider.name().to_owned();
    }

    /// The request for `model` is answered from the response cache (logged as a cache hit).
    pub fn cache_hit(&mut self, model: &str) {
        self.row.cache_hit = true;
        self.row.model = model.to_owned();
    }

    /// The request succeeded with `usage`, costing `cost` USD; its answer completes once the
    /// `Durable` resolves.
    pub fn succeed(self, usage: Usage, cost: f64) -> Durable {
        self.settle("success", usage, cost)
    }

    /// The client left mid-stream: what was already generated is still charged (nobody waits
    /// for its record to be durable: the next group of the journal takes it).
    pub fn cancelled(self, usage: Usage, cost: f64) {
        drop(self.settle("cancelled", usage, cost));
    }

    /// The request ends before any attempt (a limit held in Redis refused it, or a cached
    /// reply could not be replayed): what its admission holds is freed, with no spend-log row.
    pub fn refused(mut self) {
        self.logged = false;
        self.send();
    }

    fn settle(mut self, status: &str, usage: Usage, cost: f64) -> Durable {
        self.row.status = status.into();
        self.row.prompt_tokens = clamp(usage.prompt_tokens);
        self.row.completion_tokens = clamp(usage.completion_tokens);
        self.row.total_tokens = clamp(usage.total_tokens);
        self.row.spend = cost;
        let (tx, rx) = if self.durable && self.logged && !self.sent {
            let (tx, rx) = tokio::sync::oneshot::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        self.send_with(tx);
        Durable(rx)
    }

    fn send(&mut self) {
        self.send_with(None);
    }

    fn send_with(&mut self, durable: Option<tokio::sync::oneshot::Sender<()>>) {
        if self.sent {
            return;
        }
        self.sent = true;
        self.row.end_time = Utc::now().naive_utc();
        // The router tracks keys and the proxy budget; with neither there is nothing to settle.
        let tokens = self.row.total_tokens as u64;
        let counted_here = self.counted_here;
        if self.token.is_some() || self.settle_proxy || self.governed.is_some() {
            self.router.do_send(Settle {
                token: self.token.clone(),
                group: self.group,
                tokens,
                cost: self.row.spend,
                counted_here,
                governed: self.governed.take(),
            });
        }
        if let SharedLimits::Held {
            shared,
            ticket,
            slot,
        } = std::mem::replace(&mut self.shared, SharedLimits::None)
        {
            shared.settle(ticket, &slot, tokens, self.row.spend);
        }
        if self.logged {
            if let Some(log) = self.log.take() {
                log.finish(&self.row);
            }
            self.spend.do_send(RecordSpend {
                token: self.token.take(),
                cost: self.row.spend,
                row: std::mem::replace(&mut self.row, empty_row()),
                key_alias: self.key_alias.take(),
                upstream: self.upstream,
                durable,
            });
        }
        // After the record is queued, so a stop that waits for zero then flushes sees it.
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn empty_row() -> SpendLogRow {
    let now = Utc::now().naive_utc();
    SpendLogRow {
        request_id: String::new(),
        api_key: String::new(),
        model: String::new(),
        model_group: String::new(),
        model_id: String::new(),
        api_base: String::new(),
        provider: String::new(),
        prompt_tokens: 0,
        completion_tokens: 0,
        total_tokens: 0,
        spend: 0.0,
        start_time: now,
        end_time: now,
        status: String::new(),
        cache_hit: false,
        user_id: None,
        metadata: String::new(),
        team_id: None,
        end_user: None,
        request_tags: String::new(),
    }
}

impl Drop for Charge {
    /// A request that ends without success (an error, or a client that left) is logged as a
    /// failure costing nothing, and its key slot is freed.
    fn drop(&mut self) {
        self.send();
    }
}
