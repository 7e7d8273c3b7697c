//! State shared between instances through Redis: key and deployment limits checked atomically,
//! cooldowns and key changes broadcast, with local state whenever Redis is unreachable.

pub mod events;
pub mod limits;
pub mod redis;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ::redis::Script;
use tokio::sync::mpsc;

pub use self::limits::{Checks, Remaining, Ticket, Verdict};
pub use self::redis::{Redis, Unavailable};

/// Settlements waiting for the settler at most; beyond this they are dropped (their slots
/// expire, their spend still reaches the database).
const SETTLE_QUEUE: usize = 16_384;

/// Settlements sent in one script call at most.
const SETTLE_BATCH: usize = 256;

/// One request's settlement: the script's keys and values.
type Settlement = (Vec<String>, Vec<String>);

/// Limits, cooldowns and key changes shared through one Redis; cheap to clone.
#[derive(Clone)]
pub struct Shared {
    /// The connection.
    pub redis: Redis,
    script: Arc<Script>,
    /// Where settlements queue for the settler (started with the first one).
    settler: Arc<OnceLock<mpsc::Sender<Settlement>>>,
    /// Settlements dropped because the queue was full.
    dropped: Arc<AtomicU64>,
    /// This process, in slot ids and in the events it sends (so it ignores its own).
    instance: Arc<str>,
    next_slot: Arc<AtomicU64>,
    /// How long a parallel-request slot outlives an instance that died holding it.
    pub slot_lifetime: Duration,
}

impl Shared {
    /// Shared state on `redis`, slots held at most `slot_lifetime`.
    pub fn new(redis: Redis, slot_lifetime: Duration) -> Self {
        Self {
            redis,
            script: Arc::new(Script::new(include_str!("lua/limits.lua"))),
            settler: Arc::new(OnceLock::new()),
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
    pub fn ns(&self) -> String {
        self.redis.key("").trim_end_matches(':').to_owned()
    }

    /// A new slot id, unique across instances.
    pub fn slot_id(&self) -> String {
        let n = self.next_slot.fetch_add(1, Ordering::Relaxed);
        format!("{}:{n}", self.instance)
    }

    /// Asks Redis to admit a request against `checks` (one round trip). `Err` means Redis is
    /// unreachable: the caller goes on with local state.
    pub async fn admit(&self, checks: &Checks, slot: &str) -> Result<Verdict, Unavailable> {
        let mut invocation = self.script.prepare_invoke();
        invocation.arg("admit").arg(now_millis()).arg(slot);
        for k in checks.keys() {
            invocation.key(k);
        }
        for a in checks.args() {
            invocation.arg(a);
        }
        let reply: Vec<String> = self
            .redis
            .run("admit", |mut conn| async move {
                invocation.invoke_async(&mut conn).await
            })
            .await?;
        checks.verdict(&reply).ok_or_else(|| {
            self.redis.mark_down("admit", "unexpected reply");
            Unavailable
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
        let settlement = ticket.settlement(slot, tokens, cost);
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

/// Sends queued settlements, as many as are waiting (up to `SETTLE_BATCH`) per script call.
async fn settle_batches(redis: Redis, script: Arc<Script>, mut queue: mpsc::Receiver<Settlement>) {
    while let Some((mut keys, mut args)) = queue.recv().await {
        for _ in 1..SETTLE_BATCH {
            match queue.try_recv() {
                Ok((k, a)) => {
                    keys.extend(k);
                    args.extend(a);
                }
                Err(_) => break,
            }
        }
        let mut invocation = script.prepare_invoke();
        invocation.arg("settle").arg(now_millis()).arg("");
        for k in &keys {
            invocation.key(k);
        }
        for a in &args {
            invocation.arg(a);
        }
        let _ = redis
            .run("settle", |mut conn| async move {
                invocation.invoke_async::<i64>(&mut conn).await
            })
            .await;
    }
}

impl Shared {
    /// Drops the shared spend counter of `token`'s budget period ending at `period` (an admin
    /// set its spend): the next admission starts it again from the database's figure.
    pub fn forget_spend(&self, token: &str, period: Option<chrono::DateTime<chrono::Utc>>) {
        let key = self.redis.key(&format!(
            "key:{token}:spend:{}",
            limits::period_name(period)
        ));
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

/// Milliseconds since the Unix epoch: every instance's clock, which Redis windows compare.
pub fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
