//! Logging callbacks (`success_callback`, `failure_callback`): each finished request becomes a
//! `CallEvent`, handed without waiting to the `CallbackActor`, which batches and sends them to
//! Langfuse or a generic webhook from its own arbiter. A full queue drops and counts.

mod actor;
mod capture;
mod event;
mod generic;
mod langfuse;
mod outbox;
mod room;
mod sink;
mod stats;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use actix::{Actor, Addr};

pub use actor::{CallbackActor, Flush};
pub use capture::{call_type, streamed_reply, CallLog};
pub use event::{CallError, CallEvent, KeyInfo, Outcome, CLIENT_LEFT};
pub use generic::{payload_batch, standard_payload};
pub use langfuse::ingestion_batch;
pub use stats::{CallbackStats, SinkStats, Totals};

use actor::{Deliver, Queued};
use room::Room;

use crate::config::CallbackSettings;

/// What replaces prompts and replies when `turn_off_message_logging` is on (LiteLLM's marker).
pub const REDACTED: &str = "redacted-by-litellm";

/// The handle requests use to reach the callbacks; cheap to clone, a no-op when none is on.
#[derive(Clone, Debug)]
pub struct Callbacks {
    feed: Option<Arc<Feed>>,
    stats: Arc<CallbackStats>,
}

#[derive(Debug)]
struct Feed {
    addr: Addr<CallbackActor>,
    room: Room,
    log_messages: bool,
    /// Per callback, in config order: takes successes, takes failures.
    routes: Vec<(bool, bool)>,
    warned_full: AtomicBool,
}

impl Default for Callbacks {
    fn default() -> Self {
        Self::off()
    }
}

impl Callbacks {
    /// No callback: nothing is captured or sent.
    pub fn off() -> Self {
        Self {
            feed: None,
            stats: Arc::new(CallbackStats::default()),
        }
    }

    /// Starts the callback actor on its own arbiter, if any callback is on (call inside an
    /// actix system).
    pub fn start(settings: &CallbackSettings) -> Self {
        let stats = Arc::new(CallbackStats::new(
            settings.sinks.iter().map(|s| s.target.name()),
        ));
        if !settings.is_on() {
            return Self { feed: None, stats };
        }
        let arbiter = actix::Arbiter::new();
        let (for_actor, counters) = (settings.clone(), stats.clone());
        let addr = CallbackActor::start_in_arbiter(&arbiter.handle(), move |_| {
            CallbackActor::new(&for_actor, counters)
        });
        let names: Vec<&str> = settings.sinks.iter().map(|s| s.target.name()).collect();
        log::info!(
            "logging callbacks: {}{}",
            names.join(", "),
            if settings.log_messages {
                ""
            } else {
                " (message logging off)"
            }
        );
        Self {
            feed: Some(Arc::new(Feed {
                addr,
                room: Room::new(settings.queue_capacity.max(1)),
                log_messages: settings.log_messages,
                routes: settings
                    .sinks
                    .iter()
                    .map(|s| (s.on_success, s.on_failure))
                    .collect(),
                warned_full: AtomicBool::new(false),
            })),
            stats,
        }
    }

    /// Whether any callback is on.
    pub fn is_on(&self) -> bool {
        self.feed.is_some()
    }

    /// Whether prompts and replies are captured for the callbacks.
    pub fn logs_messages(&self) -> bool {
        self.feed.as_ref().is_some_and(|f| f.log_messages)
    }

    /// Whether some callback takes requests that ended with `outcome`.
    pub fn takes(&self, outcome: Outcome) -> bool {
        self.feed
            .as_ref()
            .is_some_and(|f| f.routes.iter().any(|r| route_takes(*r, outcome)))
    }

    /// Each callback's counters (for the metrics).
    pub fn stats(&self) -> &Arc<CallbackStats> {
        &self.stats
    }

    /// Events queued and not yet done with.
    pub fn queued(&self) -> usize {
        self.feed.as_ref().map_or(0, |f| f.room.used())
    }

    /// Hands `event` to the callback actor without waiting; when the queue is full it is
    /// dropped and counted (with one warning).
    pub fn record(&self, event: CallEvent) {
        let Some(feed) = &self.feed else {
            return;
        };
        match feed.room.take() {
            Some(ticket) => feed
                .addr
                .do_send(Deliver(Arc::new(Queued::new(event, ticket)))),
            None => {
                for (route, counters) in feed.routes.iter().zip(self.stats.sinks()) {
                    if route_takes(*route, event.outcome) {
                        counters.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
                if !feed.warned_full.swap(true, Ordering::Relaxed) {
                    log::warn!(
                        "logging callbacks: the queue is full ({} events waiting); new events are dropped and counted until it drains",
                        feed.room.used()
                    );
                }
            }
        }
    }

    /// Sends everything queued and waits until every callback is done with it (sent, or
    /// given up after its retries).
    pub async fn flush(&self) {
        if let Some(feed) = &self.feed {
            let _ = feed.addr.send(Flush).await;
        }
    }
}

fn route_takes((success, failure): (bool, bool), outcome: Outcome) -> bool {
    match outcome {
        Outcome::Success => success,
        Outcome::Failure => failure,
    }
}
