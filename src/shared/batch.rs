//! The admitter and the settler: one task each, sending the requests waiting at the same moment
//! to Redis in one script call, so under load a request costs a fraction of a round trip.

use std::sync::Arc;
use std::time::Instant;

use ::redis::aio::MultiplexedConnection;
use ::redis::{Cmd, ErrorKind, FromRedisValue, RedisResult, Script, ServerErrorKind};
use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{mpsc, oneshot};

use super::redis::COMMAND_TIMEOUT;
use super::{now_millis, Checks, Redis, Ticket, Unavailable};

/// Settlements waiting for the settler at most; beyond this they are dropped (their slots
/// expire, their spend still reaches the database).
pub const SETTLE_QUEUE: usize = 16_384;

/// Settlements sent in one script call at most.
const SETTLE_BATCH: usize = 256;

/// One request's end: what its admission counted, its slot, the tokens it used and its cost.
pub struct Settlement {
    /// What ending it must undo or add.
    pub ticket: Ticket,
    /// Its parallel-request slot.
    pub slot: String,
    /// Tokens used.
    pub tokens: u64,
    /// USD.
    pub cost: f64,
}

/// Admissions waiting for the admitter at most; beyond this Redis counts as down (for a second)
/// and requests go on with local state.
pub const ADMIT_QUEUE: usize = 4096;

/// Admissions sent in one script call at most.
const ADMIT_BATCH: usize = 128;

/// Admission calls out at once; requests arriving meanwhile wait and go in the next batch.
const ADMIT_CALLS_IN_FLIGHT: usize = 2;

/// One request waiting to be admitted, and where its reply goes (with its checks, to read it).
pub struct AdmitRequest {
    /// The request's checks.
    pub checks: Checks,
    /// Its parallel-request slot (the lease's slots' prefix, when `copies` > 1).
    pub slot: String,
    /// How many copies of it to admit: 1, or a lease's size.
    pub copies: u32,
    /// Where its reply goes.
    pub reply_to: oneshot::Sender<(Checks, Result<Vec<String>, Unavailable>)>,
    /// When it was queued.
    pub queued: Instant,
}

impl AdmitRequest {
    /// Answers "Redis unavailable" to a request that waited longer than a command may take
    /// (it goes on with local state); hands back the others.
    fn unless_stale(self, now: Instant) -> Option<Self> {
        if now.duration_since(self.queued) <= COMMAND_TIMEOUT {
            return Some(self);
        }
        let _ = self.reply_to.send((self.checks, Err(Unavailable)));
        None
    }
}

/// Sends waiting admissions, as many as are queued (up to `ADMIT_BATCH`) per script call, and
/// hands each request its own reply. The calls run inside this task rather than as tasks of
/// their own: on a busy worker every task wake is a turn in the queue behind the HTTP traffic,
/// and an admission's turns are what its request waits for.
pub async fn admit_batches(
    redis: Redis,
    script: Arc<Script>,
    mut queue: mpsc::Receiver<AdmitRequest>,
) {
    let mut calls = FuturesUnordered::new();
    let mut open = true;
    loop {
        tokio::select! {
            biased;
            Some(()) = calls.next(), if !calls.is_empty() => {}
            // While the calls in flight are out, more requests queue up and join the next batch.
            next = queue.recv(), if open && calls.len() < ADMIT_CALLS_IN_FLIGHT => match next {
                Some(first) => {
                    let now = Instant::now();
                    let mut batch = Vec::with_capacity(ADMIT_BATCH);
                    batch.extend(first.unless_stale(now));
                    while batch.len() < ADMIT_BATCH {
                        match queue.try_recv() {
                            Ok(next) => batch.extend(next.unless_stale(now)),
                            Err(_) => break,
                        }
                    }
                    if !batch.is_empty() {
                        calls.push(admit_batch(&redis, &script, batch));
                    }
                }
                None => open = false,
            },
            else => return,
        }
    }
}

/// One script call for `batch`; each request gets its own reply.
async fn admit_batch(redis: &Redis, script: &Script, batch: Vec<AdmitRequest>) {
    let keys: usize = batch.iter().map(|r| r.checks.keys().len()).sum();
    let bytes: usize = batch
        .iter()
        .map(|r| {
            let text = |v: &[String]| v.iter().map(String::len).sum::<usize>();
            text(r.checks.keys()) + text(r.checks.args()) + r.slot.len() + 8
        })
        .sum();
    let mut cmd = evalsha(script, keys, 4 * keys + 3 * batch.len() + 5, bytes + 64);
    for request in &batch {
        for k in request.checks.keys() {
            cmd.arg(k);
        }
    }
    cmd.arg("admit").arg(now_millis()).arg(batch.len());
    for request in &batch {
        cmd.arg(&request.slot)
            .arg(request.copies)
            .arg(request.checks.keys().len());
        for a in request.checks.args() {
            cmd.arg(a);
        }
    }
    let replies: Result<Vec<Vec<String>>, Unavailable> = redis
        .run("admit", |mut conn| async move {
            run_script(&mut conn, script, &cmd).await
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
pub async fn settle_batches(
    redis: Redis,
    script: Arc<Script>,
    mut queue: mpsc::Receiver<Settlement>,
) {
    let mut batch = Vec::with_capacity(SETTLE_BATCH);
    while let Some(first) = queue.recv().await {
        batch.push(first);
        while batch.len() < SETTLE_BATCH {
            match queue.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let keys: usize = batch.iter().map(|s| s.ticket.len()).sum();
        let bytes: usize = batch
            .iter()
            .map(|s| {
                s.ticket.keys().map(str::len).sum::<usize>() + s.slot.len() + 32 * s.ticket.len()
            })
            .sum();
        let mut cmd = evalsha(&script, keys, 5 * keys + 5, bytes + 64);
        for s in &batch {
            for k in s.ticket.keys() {
                cmd.arg(k);
            }
        }
        cmd.arg("settle").arg(now_millis()).arg("");
        for s in batch.drain(..) {
            s.ticket.write_values(&s.slot, s.tokens, s.cost, &mut cmd);
        }
        let script = &*script;
        let _ = redis
            .run("settle", |mut conn| async move {
                run_script::<i64>(&mut conn, script, &cmd).await
            })
            .await;
    }
}

/// `EVALSHA` of `script` with `keys` keys, its keys and values to be appended (about `args`
/// of them, `bytes` long in all). Built as one command in one buffer sized up front, rather
/// than through `redis::ScriptInvocation`, which copies each value into an allocation of its
/// own first: on a busy worker those allocations, and the large buffers regrown as they fill,
/// cost more than the call.
fn evalsha(script: &Script, keys: usize, args: usize, bytes: usize) -> Cmd {
    let mut cmd = Cmd::with_capacity(args, bytes);
    cmd.arg("EVALSHA").arg(script.get_hash()).arg(keys);
    cmd
}

/// Runs `cmd` (an `EVALSHA` of `script`), loading the script first if Redis does not have it.
async fn run_script<T: FromRedisValue>(
    conn: &mut MultiplexedConnection,
    script: &Script,
    cmd: &Cmd,
) -> RedisResult<T> {
    match cmd.query_async(conn).await {
        Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
            script.prepare_invoke().load_async(conn).await?;
            cmd.query_async(conn).await
        }
        other => other,
    }
}
