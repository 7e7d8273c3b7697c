//! The admitter and the settler: one task each, sending the requests waiting at the same moment
//! to Redis in one script call, so under load a request costs a fraction of a round trip.

use std::sync::Arc;

use ::redis::Script;
use tokio::sync::{mpsc, oneshot, Semaphore};

use super::{now_millis, Checks, Redis, Unavailable};

/// Settlements waiting for the settler at most; beyond this they are dropped (their slots
/// expire, their spend still reaches the database).
pub const SETTLE_QUEUE: usize = 16_384;

/// Settlements sent in one script call at most.
const SETTLE_BATCH: usize = 256;

/// One request's settlement: the script's keys and values.
pub type Settlement = (Vec<String>, Vec<String>);

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
    /// Its parallel-request slot.
    pub slot: String,
    /// Where its reply goes.
    pub reply_to: oneshot::Sender<(Checks, Result<Vec<String>, Unavailable>)>,
}

/// Sends waiting admissions, as many as are queued (up to `ADMIT_BATCH`) per script call, and
/// hands each request its own reply.
pub async fn admit_batches(
    redis: Redis,
    script: Arc<Script>,
    mut queue: mpsc::Receiver<AdmitRequest>,
) {
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
pub async fn settle_batches(
    redis: Redis,
    script: Arc<Script>,
    mut queue: mpsc::Receiver<Settlement>,
) {
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
