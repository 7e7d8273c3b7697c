//! State shared between instances through Redis: key and deployment limits checked atomically,
//! cooldowns and key changes broadcast, with local state whenever Redis is unreachable.

pub mod events;
pub mod limits;
pub mod redis;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ::redis::Script;
use tokio::sync::{mpsc, oneshot, Semaphore};

pub use self::limits::{Checks, Remaining, Ticket, Verdict};
pub use self::redis::{Redis, Unavailable};

/// Settlements waiting for the settler at most; beyond this they are dropped (their slots
/// expire, their spend still reaches the database).
const SETTLE_QUEUE: usize = 16_384;

/// Settlements sent in one script call at most.
const SETTLE_BATCH: usize = 256;

/// One request's settlement: the script's keys and values.
type Settlement = (Vec<String>, Vec<String>);

/// Admissions waiting for the admitter at most; beyond this a request goes on with local state.
const ADMIT_QUEUE: usize = 4096;

/// Admissions sent in one script call at most.
const ADMIT_BATCH: usize = 128;

/// Admission calls out at once; requests arriving meanwhile wait and go in the next batch.
const ADMIT_CALLS_IN_FLIGHT: usize = 2;

/// One request waiting to be admitted, and where its reply goes (with its checks, to read it).
struct AdmitRequest {
    checks: Checks,
    slot: String,
    reply_to: oneshot::Sender<(Checks, Result<Vec<String>, Unavailable>)>,
}

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
        let queue = self.admitter.get_or_init(|| {
            let (tx, rx) = mpsc::channel(ADMIT_QUEUE);
            actix_rt::spawn(admit_batches(self.redis.clone(), self.script.clone(), rx));
            tx
        });
        let (reply_to, reply) = oneshot::channel();
        queue
            .try_send(AdmitRequest {
                checks,
                slot,
                reply_to,
            })
            .map_err(|_| Unavailable)?;
        let answer = actix_rt::time::timeout(redis::COMMAND_TIMEOUT * 2, reply).await;
        let Ok(Ok((checks, Ok(reply)))) = answer else {
            return Err(Unavailable);
        };
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

/// Sends waiting admissions, as many as are queued (up to `ADMIT_BATCH`) per script call, and
/// hands each request its own reply.
async fn admit_batches(redis: Redis, script: Arc<Script>, mut queue: mpsc::Receiver<AdmitRequest>) {
    let in_flight = Arc::new(Semaphore::new(ADMIT_CALLS_IN_FLIGHT));
    while let Some(first) = queue.recv().await {
        // While the calls in flight are out, more requests queue up and join this batch.
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            return;
        };
        let mut batch = Vec::with_capacity(ADMIT_BATCH);
        batch.push(first);
        while batch.len() < ADMIT_BATCH {
            match queue.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let (redis, script) = (redis.clone(), script.clone());
        actix_rt::spawn(async move {
            admit_batch(&redis, &script, batch).await;
            drop(permit);
        });
    }
}

/// One script call for `batch`; each request gets its own reply.
async fn admit_batch(redis: &Redis, script: &Script, batch: Vec<AdmitRequest>) {
    let mut invocation = script.prepare_invoke();
    invocation.arg("admit").arg(now_millis()).arg(batch.len());
    for request in &batch {
        invocation
            .arg(&request.slot)
            .arg(request.checks.keys().len());
        for k in request.checks.keys() {
            invocation.key(k);
        }
        for a in request.checks.args() {
            invocation.arg(a);
        }
    }
    let replies: Result<Vec<Vec<String>>, Unavailable> = redis
        .run("admit", |mut conn| async move {
            invocation.invoke_async(&mut conn).await
        })
        .await;
    let replies: Vec<Result<Vec<String>, Unavailable>> = match replies {
        Ok(r) if r.len() == batch.len() => r.into_iter().map(Ok).collect(),
        _ => vec![Err(Unavailable); batch.len()],
    };
    for (request, reply) in batch.into_iter().zip(replies) {
        let _ = request.reply_to.send((request.checks, reply));
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
