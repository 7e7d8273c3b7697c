//! State shared between instances through Redis: key and deployment limits checked atomically,
//! cooldowns and key changes broadcast, with local state whenever Redis is unreachable.

mod batch;
pub mod events;
pub mod lease;
pub mod limits;
pub mod redis;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use ::redis::Script;
use tokio::sync::{mpsc, oneshot};

use self::batch::{
    admit_batches, settle_batches, AdmitRequest, Settlement, ADMIT_QUEUE, SETTLE_QUEUE,
};

pub use self::lease::{Credit, Headroom};
pub use self::limits::{Checks, Remaining, Ticket, Verdict};
pub use self::redis::{Redis, Unavailable};

/// Limits, cooldowns and key changes shared through one Redis; cheap to clone.
#[derive(Clone)]
pub struct Shared {
    /// The connection.
    pub redis: Redis,
    script: Arc<Script>,
    /// Where admissions queue for the admitter (started with the first one).
    admitter: Arc<OnceLock<mpsc::Sender<AdmitRequest>>>,
    /// Where settlements queue for the settler (started with the first one).
    settler: Arc<OnceLock<mpsc::Sender<Settlement>>>,
    /// Keys holding a lease, for the sweeper (started with the first lease).
    leases: Arc<Mutex<Vec<Headroom>>>,
    sweeper: Arc<OnceLock<()>>,
    /// Settlements dropped because the queue was full.
    dropped: Arc<AtomicU64>,
    /// The namespace every key is under.
    ns: Arc<str>,
    /// This process, in slot ids and in the events it sends (so it ignores its own).
    instance: Arc<str>,
    next_slot: Arc<AtomicU64>,
    /// How long a parallel-request slot outlives an instance that died holding it.
    pub slot_lifetime: Duration,
}

impl Shared {
    /// Shared state on `redis`, slots held at most `slot_lifetime`.
    pub fn new(redis: Redis, slot_lifetime: Duration) -> Self {
        let ns = Arc::from(redis.key("").trim_end_matches(':'));
        Self {
            ns,
            redis,
            script: Arc::new(Script::new(include_str!("lua/limits.lua"))),
            admitter: Arc::new(OnceLock::new()),
            settler: Arc::new(OnceLock::new()),
            leases: Arc::default(),
            sweeper: Arc::new(OnceLock::new()),
            dropped: Arc::new(AtomicU64::new(0)),
            instance: Arc::from(crate::providers::random_uuid().simple().to_string()),
            next_slot: Arc::new(AtomicU64::new(0)),
            slot_lifetime,
        }
    }

    /// This instance's id.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The namespace every key is under.
    pub fn ns(&self) -> &str {
        &self.ns
    }

    /// A new slot id, unique across instances.
    pub fn slot_id(&self) -> String {
        let n = self.next_slot.fetch_add(1, Ordering::Relaxed);
        format!("{}:{n}", self.instance)
    }

    /// Asks Redis to admit a request against `checks` holding slot `slot`. Requests waiting
    /// at the same moment go in one script call, so under load a request costs a fraction of a
    /// round trip. `Err` means Redis is unreachable: the caller goes on with local state.
    pub async fn admit(&self, checks: Checks, slot: String) -> Result<Verdict, Unavailable> {
        self.ask(checks, slot)?.verdict().await
    }

    /// Queues the admission of a request against `checks` holding slot `slot`, without
    /// waiting: the verdict is read later (`Asked::verdict`), so the caller can do something
    /// else meanwhile. `Err` means Redis is unreachable or swamped: go on with local state.
    pub fn ask(&self, checks: Checks, slot: String) -> Result<Asked, Unavailable> {
        self.ask_copies(checks, slot, 1)
    }

    /// `ask` for up to `copies` copies of the request at once (a lease; see `lease`): copy c
    /// holds slot `<slot>:c`.
    pub fn ask_copies(
        &self,
        checks: Checks,
        slot: String,
        copies: u32,
    ) -> Result<Asked, Unavailable> {
        let queue = self.admitter.get_or_init(|| {
            let (tx, rx) = mpsc::channel(ADMIT_QUEUE);
            actix_rt::spawn(admit_batches(self.redis.clone(), self.script.clone(), rx));
            tx
        });
        let (reply_to, reply) = oneshot::channel();
        let request = AdmitRequest {
            checks,
            slot,
            copies,
            reply_to,
            queued: std::time::Instant::now(),
        };
        if queue.try_send(request).is_err() {
            // More requests are waiting on Redis than it can answer in time: this one is
            // admitted on local state, as when Redis is down.
            self.redis.mark_down("admit", "too many admissions waiting");
            return Err(Unavailable);
        }
        Ok(Asked {
            reply,
            redis: self.redis.clone(),
        })
    }

    /// Ends a request admitted with `ticket` (its slot `slot`), which used `tokens` and cost
    /// `cost`, without waiting: settlements are sent in batches by one task, so under load a
    /// request costs a fraction of a round trip on its way out. If Redis is unreachable the
    /// slot frees itself at its expiry.
    pub fn settle(&self, ticket: Ticket, slot: &str, tokens: u64, cost: f64) {
        if ticket.is_empty() {
            return;
        }
        let settlement = Settlement {
            ticket,
            slot: slot.to_owned(),
            tokens,
            cost,
        };
        let queue = self.settler.get_or_init(|| {
            let (tx, rx) = mpsc::channel(SETTLE_QUEUE);
            actix_rt::spawn(settle_batches(self.redis.clone(), self.script.clone(), rx));
            tx
        });
        if queue.try_send(settlement).is_err() && self.dropped.fetch_add(1, Ordering::Relaxed) == 0
        {
            log::warn!("the redis settlement queue is full: dropping settlements (slots expire by themselves)");
        }
    }
}

impl Shared {
    /// Has the sweeper watch `headroom`'s lease, giving back what is left unused in it.
    fn sweep(&self, headroom: Headroom) {
        self.leases
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(headroom);
        self.sweeper.get_or_init(|| {
            let shared = self.clone();
            actix_rt::spawn(async move {
                let mut tick = actix_rt::time::interval(lease::SWEEP_EVERY);
                loop {
                    tick.tick().await;
                    let mut leases = shared.leases.lock().unwrap_or_else(PoisonError::into_inner);
                    leases.retain(|h| h.sweep(&shared));
                }
            });
        });
    }

    /// Drops the shared spend counter of `token`'s budget period ending at `period` (an admin
    /// set its spend): the next admission starts it again from the database's figure.
    pub fn forget_spend(&self, token: &str, period: Option<chrono::DateTime<chrono::Utc>>) {
        self.forget_counter(format!("key:{token}:spend:{}", limits::period_name(period)));
    }

    /// Drops the shared spend counter of `entity`'s budget period ending at `period` (an admin
    /// set its spend).
    pub fn forget_entity_spend(
        &self,
        entity: &crate::governance::EntityRef,
        period: Option<chrono::DateTime<chrono::Utc>>,
    ) {
        self.forget_counter(format!(
            "{}:spend:{}",
            limits::entity_name(entity),
            limits::period_name(period)
        ));
    }

    fn forget_counter(&self, name: String) {
        let key = self.redis.key(&name);
        let redis = self.redis.clone();
        actix_rt::spawn(async move {
            let _ = redis
                .run("forget spend", |mut conn| async move {
                    ::redis::cmd("DEL")
                        .arg(key)
                        .query_async::<i64>(&mut conn)
                        .await
                })
                .await;
        });
    }
}

/// An admission on its way to Redis.
pub struct Asked {
    reply: oneshot::Receiver<(Checks, Result<Vec<String>, Unavailable>)>,
    redis: Redis,
}

impl Asked {
    /// Waits for Redis's verdict. The wait is bounded without a timer of its own: the admitter
    /// answers at once a request that waited in its queue longer than a command may take, and
    /// every call it makes is bounded by `COMMAND_TIMEOUT`.
    pub async fn verdict(self) -> Result<Verdict, Unavailable> {
        let Ok((checks, Ok(reply))) = self.reply.await else {
            return Err(Unavailable);
        };
        checks.verdict(&reply).ok_or_else(|| {
            self.redis.mark_down("admit", "unexpected reply");
            Unavailable
        })
    }
}

/// Milliseconds since the Unix epoch: every instance's clock, which Redis windows compare.
pub fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
