//! `CallbackActor`: on its own arbiter, takes finished requests' events, keeps one outbox per
//! callback, and sends due batches with its own HTTP client; the only I/O it does is those sends.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{
    Actor, ActorFutureExt, AsyncContext, Context, Handler, Message, ResponseFuture, WrapFuture,
};

use super::event::{CallEvent, Outcome};
use super::outbox::{Batch, Outbox, Policy};
use super::room::Ticket;
use super::sink::{self, Prepared, Verdict};
use super::stats::{self, CallbackStats};
use crate::config::{CallbackSettings, SinkSettings};

/// How often due batches are looked for.
const TICK: Duration = Duration::from_millis(100);

/// One request to a receiver may take this long.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Tries of one batch, the first included.
const ATTEMPTS: u32 = 4;

/// Batches in flight to one receiver at once.
const PARALLEL: usize = 4;

/// The wait after a batch's first failure (then doubled).
const BACKOFF: Duration = Duration::from_millis(500);

/// Largest receiver answer read (Langfuse's per-event report).
const MAX_ANSWER: usize = 1024 * 1024;

/// An event with its place in the queue, shared by the callbacks that take it.
#[derive(Debug)]
pub struct Queued {
    /// The event.
    pub event: CallEvent,
    _ticket: Ticket,
}

impl Queued {
    /// `event`, holding `ticket` until every callback is done with it.
    pub fn new(event: CallEvent, ticket: Ticket) -> Self {
        Self {
            event,
            _ticket: ticket,
        }
    }
}

struct SinkState {
    settings: SinkSettings,
    outbox: Outbox<Arc<Queued>>,
    /// Whether the last send went well (failures are warned about once per bad spell).
    healthy: bool,
}

/// Sends the logging callbacks' batches.
pub struct CallbackActor {
    sinks: Vec<SinkState>,
    client: awc::Client,
    stats: Arc<CallbackStats>,
    log_messages: bool,
    /// Events per batch (a full one is sent without waiting for the tick).
    batch: usize,
    flushing: bool,
    waiters: Vec<tokio::sync::oneshot::Sender<()>>,
}

impl CallbackActor {
    /// An actor for `settings`' callbacks, counting into `stats`; call on its own arbiter (the
    /// HTTP client is made here and never leaves that thread).
    pub fn new(settings: &CallbackSettings, stats: Arc<CallbackStats>) -> Self {
        let policy = Policy {
            batch: settings.batch_size.max(1),
            every: settings.flush_every,
            parallel: PARALLEL,
            attempts: ATTEMPTS,
            backoff: BACKOFF,
        };
        Self {
            sinks: settings
                .sinks
                .iter()
                .map(|s| SinkState {
                    settings: s.clone(),
                    outbox: Outbox::new(policy),
                    healthy: true,
                })
                .collect(),
            client: http_client(),
            stats,
            log_messages: settings.log_messages,
            batch: policy.batch,
            flushing: false,
            waiters: Vec::new(),
        }
    }

    /// Sends every batch that is due.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        for index in 0..self.sinks.len() {
            while let Some(batch) = self.sinks[index].outbox.next(now, self.flushing) {
                self.send(index, batch, ctx);
            }
        }
        if self.sinks.iter().all(|s| s.outbox.is_idle()) {
            self.flushing = false;
            for waiter in self.waiters.drain(..) {
                let _ = waiter.send(());
            }
        }
    }

    fn send(&mut self, index: usize, batch: Batch<Arc<Queued>>, ctx: &mut Context<Self>) {
        let sink = &self.sinks[index];
        let events: Vec<&CallEvent> = batch.items.iter().map(|q| &q.event).collect();
        let prepared = sink::prepare(&sink.settings.target, &events, self.log_messages);
        let target = sink.settings.target.clone();
        let job = deliver(self.client.clone(), prepared, target);
        ctx.spawn(job.into_actor(self).map(move |verdict, act, ctx| {
            act.delivered(index, batch, verdict);
            act.pump(ctx);
        }));
    }

    fn delivered(&mut self, index: usize, batch: Batch<Arc<Queued>>, verdict: Verdict) {
        let Some(counters) = self.stats.sink(index) else {
            return;
        };
        let sink = &mut self.sinks[index];
        let name = sink.settings.target.name();
        let n = batch.items.len();
        match verdict {
            Verdict::Accepted { refused } => {
                sink.outbox.done();
                stats::add(&counters.sent, n - refused.min(n));
                stats::add(&counters.failed, refused.min(n));
                if refused > 0 {
                    log::warn!("{name} callback: the receiver refused {refused} of {n} events");
                }
                if !sink.healthy {
                    sink.healthy = true;
                    log::info!("{name} callback: sending again");
                }
            }
            Verdict::Retry(why) => {
                let tried = batch.tried + 1;
                match sink.outbox.failed(batch, Instant::now()) {
                    None => {
                        if sink.healthy {
                            log::warn!(
                                "{name} callback: a batch of {n} events failed ({why}); retrying"
                            );
                        } else {
                            log::debug!("{name} callback: try {tried} failed ({why})");
                        }
                    }
                    Some(lost) => {
                        stats::add(&counters.failed, lost.len());
                        log::warn!(
                            "{name} callback: {} events lost after {tried} tries ({why})",
                            lost.len()
                        );
                    }
                }
                sink.healthy = false;
            }
            Verdict::Refused(why) => {
                sink.outbox.done();
                stats::add(&counters.failed, n);
                log::warn!("{name} callback: {n} events refused ({why}); not sent again");
                sink.healthy = false;
            }
        }
    }
}

/// A client for the receivers, made on the actor's arbiter.
fn http_client() -> awc::Client {
    let connector = awc::Connector::new()
        .limit(8)
        .timeout(Duration::from_secs(5));
    awc::Client::builder()
        .connector(connector)
        .timeout(SEND_TIMEOUT)
        .finish()
}

/// POSTs one batch and judges the answer.
async fn deliver(
    client: awc::Client,
    prepared: Prepared,
    target: crate::config::SinkTarget,
) -> Verdict {
    let mut request = client
        .post(&prepared.url)
        .insert_header(("content-type", "application/json"));
    for (name, value) in &prepared.headers {
        request = request.insert_header((name.as_str(), value.expose()));
    }
    match request.send_body(prepared.body).await {
        Err(e) => Verdict::Retry(format!("the receiver could not be reached: {e}")),
        Ok(mut answer) => {
            let status = answer.status().as_u16();
            let body = answer.body().limit(MAX_ANSWER).await.unwrap_or_default();
            sink::judge(&target, status, &body)
        }
    }
}

impl Actor for CallbackActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(TICK, |act, ctx| act.pump(ctx));
    }
}

/// A finished request's event, for the callbacks that take its outcome.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Deliver(pub Arc<Queued>);

impl Handler<Deliver> for CallbackActor {
    type Result = ();

    fn handle(&mut self, msg: Deliver, ctx: &mut Context<Self>) {
        let now = Instant::now();
        let outcome = msg.0.event.outcome;
        let batch = self.batch;
        let mut full = false;
        for sink in &mut self.sinks {
            let takes = match outcome {
                Outcome::Success => sink.settings.on_success,
                Outcome::Failure => sink.settings.on_failure,
            };
            if takes {
                sink.outbox.push(msg.0.clone(), now);
                full |= sink.outbox.waiting() >= batch;
            }
        }
        if full {
            self.pump(ctx);
        }
    }
}

/// Sends everything queued now; answers once every callback is idle (sent, or given up).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct Flush;

impl Handler<Flush> for CallbackActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Flush, ctx: &mut Context<Self>) -> Self::Result {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.waiters.push(tx);
        self.flushing = true;
        self.pump(ctx);
        Box::pin(async move {
            let _ = rx.await;
        })
    }
}
