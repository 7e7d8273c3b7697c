//! `SpendActor`: buffers one record per finished request and writes them in batched
//! transactions; a failed write keeps the batch and retries with backoff.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use actix::{
    Actor, ActorFutureExt, AsyncContext, Context, Handler, Message, ResponseActFuture, WrapFuture,
};
use chrono::{DateTime, Utc};

use crate::db::models::SpendLogRow;
use crate::db::spend::SpendBatch;
use crate::db::DbHandle;
use crate::metrics::{Metrics, RequestRecord};

/// Spend waiting to be written, aggregated per key.
#[derive(Debug, Default)]
pub struct SpendBuffer {
    rows: Vec<SpendLogRow>,
    key_deltas: BTreeMap<String, f64>,
    model_deltas: BTreeMap<(String, String), f64>,
    resets: BTreeMap<String, Option<DateTime<Utc>>>,
    proxy_delta: f64,
    proxy_reset: Option<Option<DateTime<Utc>>>,
}

impl SpendBuffer {
    /// Adds one finished request.
    pub fn record(&mut self, r: RecordSpend, keep_row: bool) {
        if let Some(token) = &r.token {
            if r.cost != 0.0 {
                *self.key_deltas.entry(token.clone()).or_default() += r.cost;
                *self
                    .model_deltas
                    .entry((token.clone(), r.row.model_group.clone()))
                    .or_default() += r.cost;
            }
        }
        self.proxy_delta += r.cost;
        if keep_row {
            self.rows.push(r.row);
        }
    }

    /// A regenerated key: what is buffered under `old` now belongs to `new`.
    pub fn rename_key(&mut self, old: &str, new: &str) {
        if let Some(d) = self.key_deltas.remove(old) {
            *self.key_deltas.entry(new.to_owned()).or_default() += d;
        }
        let moved: Vec<_> = self
            .model_deltas
            .keys()
            .filter(|(t, _)| t == old)
            .cloned()
            .collect();
        for (t, m) in moved {
            if let Some(d) = self.model_deltas.remove(&(t, m.clone())) {
                *self.model_deltas.entry((new.to_owned(), m)).or_default() += d;
            }
        }
        if let Some(next) = self.resets.remove(old) {
            self.resets.insert(new.to_owned(), next);
        }
    }

    /// A key's budget window rolled over: what it spent before no longer counts.
    pub fn reset_key(&mut self, token: String, next: Option<DateTime<Utc>>) {
        self.key_deltas.remove(&token);
        self.model_deltas.retain(|(t, _), _| *t != token);
        self.resets.insert(token, next);
    }

    /// The proxy-wide budget window rolled over.
    pub fn reset_proxy(&mut self, next: Option<DateTime<Utc>>) {
        self.proxy_delta = 0.0;
        self.proxy_reset = Some(next);
    }

    /// Rows waiting.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
            && self.key_deltas.is_empty()
            && self.model_deltas.is_empty()
            && self.resets.is_empty()
            && self.proxy_delta == 0.0
            && self.proxy_reset.is_none()
    }

    /// Everything waiting, as one batch; the buffer is left empty.
    pub fn take(&mut self) -> SpendBatch {
        let b = std::mem::take(self);
        SpendBatch {
            rows: b.rows,
            key_deltas: b.key_deltas.into_iter().collect(),
            model_deltas: b
                .model_deltas
                .into_iter()
                .map(|((t, m), d)| (t, m, d))
                .collect(),
            resets: b
                .resets
                .into_iter()
                .map(|(t, n)| (t, n.map(|n| n.naive_utc())))
                .collect(),
            proxy_delta: b.proxy_delta,
            proxy_reset: b.proxy_reset.map(|n| n.map(|n| n.naive_utc())),
        }
    }

    /// Puts a batch that could not be written back in front of what arrived since.
    pub fn restore(&mut self, batch: SpendBatch) {
        let newer = std::mem::take(self);
        let mut rows = batch.rows;
        rows.extend(newer.rows);
        self.rows = rows;
        self.key_deltas = batch.key_deltas.into_iter().collect();
        self.model_deltas = batch
            .model_deltas
            .into_iter()
            .map(|(t, m, d)| ((t, m), d))
            .collect();
        self.resets = batch
            .resets
            .into_iter()
            .map(|(t, n)| (t, n.map(|n| DateTime::from_naive_utc_and_offset(n, Utc))))
            .collect();
        self.proxy_delta = batch.proxy_delta;
        self.proxy_reset = batch
            .proxy_reset
            .map(|n| n.map(|n| DateTime::from_naive_utc_and_offset(n, Utc)));
        // Newer resets win over older deltas; newer deltas add on top.
        for (token, next) in newer.resets {
            self.reset_key(token, next);
        }
        if let Some(next) = newer.proxy_reset {
            self.reset_proxy(next);
        }
        for (k, d) in newer.key_deltas {
            *self.key_deltas.entry(k).or_default() += d;
        }
        for (k, d) in newer.model_deltas {
            *self.model_deltas.entry(k).or_default() += d;
        }
        self.proxy_delta += newer.proxy_delta;
    }
}

/// The batch back from a finished write (the writer has dropped its share by then).
fn unshare(batch: Arc<SpendBatch>) -> SpendBatch {
    Arc::try_unwrap(batch).unwrap_or_else(|shared| (*shared).clone())
}

/// Buffers spend and writes it to the database in batches, on the database arbiter.
pub struct SpendActor {
    db: DbHandle,
    renamed: std::collections::HashMap<String, String>,
    buffer: SpendBuffer,
    every: Duration,
    max_rows: usize,
    keep_rows: bool,
    writing: bool,
    /// The proxy spend of the batch being written.
    writing_proxy_delta: f64,
    failures: u32,
    /// Where each request is counted for `/metrics`, and the buffer's size shown.
    metrics: Option<Arc<Metrics>>,
}

impl SpendActor {
    /// A writer flushing every `every` or when `max_rows` rows wait.
    pub fn new(db: DbHandle, every: Duration, max_rows: usize, keep_rows: bool) -> Self {
        Self {
            db,
            renamed: Default::default(),
            buffer: SpendBuffer::default(),
            every,
            max_rows,
            keep_rows,
            writing: false,
            writing_proxy_delta: 0.0,
            failures: 0,
            metrics: None,
        }
    }

    /// Counts each request in `metrics` as it is recorded.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Shows the buffer's size in the metrics.
    fn show_buffer(&self) {
        if let Some(m) = &self.metrics {
            m.spend_buffer_rows.set(self.buffer.len() as i64);
        }
    }

    fn write(&mut self, ctx: &mut Context<Self>) {
        if self.writing || self.buffer.is_empty() {
            return;
        }
        self.writing = true;
        let batch = Arc::new(self.buffer.take());
        self.writing_proxy_delta = batch.proxy_delta;
        let db = self.db.clone();
        let job = async move {
            let shared = batch.clone();
            let result = db
                .run(move |db| async move { db.write_spend(shared).await })
                .await;
            (batch, result)
        };
        ctx.spawn(job.into_actor(self).map(|(batch, result), act, ctx| {
            act.writing = false;
            act.writing_proxy_delta = 0.0;
            match result {
                Ok(()) => act.failures = 0,
                Err(e) => {
                    act.failures += 1;
                    if let Some(m) = &act.metrics {
                        m.spend_flush_failures.inc();
                    }
                    let wait = Duration::from_millis(250 * 2u64.pow(act.failures.min(6)));
                    log::warn!(
                        "spend write of {} rows failed ({e}); kept, retrying in {wait:?}",
                        batch.rows.len()
                    );
                    act.buffer.restore(unshare(batch));
                    ctx.run_later(wait, |act, ctx| act.write(ctx));
                }
            }
            act.show_buffer();
        }));
    }
}

impl Actor for SpendActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(self.every, |act, ctx| {
            if act.failures == 0 {
                act.write(ctx);
            }
        });
    }
}

/// One finished request's spend.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct RecordSpend {
    /// The hashed key charged, if any.
    pub token: Option<String>,
    /// USD.
    pub cost: f64,
    /// The spend-log row.
    pub row: SpendLogRow,
    /// The key's alias, for the metrics.
    pub key_alias: Option<String>,
    /// How long the upstream took to answer (the rest of the request is the gateway's own).
    pub upstream: Option<Duration>,
}

impl Handler<RecordSpend> for SpendActor {
    type Result = ();

    fn handle(&mut self, mut msg: RecordSpend, ctx: &mut Context<Self>) {
        // A request that started before its key was regenerated is charged to the new token.
        if let Some(new) = msg.token.as_ref().and_then(|t| self.renamed.get(t)) {
            msg.token = Some(new.clone());
        }
        if let Some(m) = &self.metrics {
            m.request(&RequestRecord {
                row: &msg.row,
                key_alias: msg.key_alias.as_deref(),
                upstream: msg.upstream,
            });
        }
        self.buffer.record(msg, self.keep_rows);
        if self.buffer.len() >= self.max_rows && self.failures == 0 {
            self.write(ctx);
        }
        self.show_buffer();
    }
}

/// A key was regenerated: spend for `old` goes to `new` from now on.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct RenameKey {
    /// The old token.
    pub old: String,
    /// The new token.
    pub new: String,
}

impl Handler<RenameKey> for SpendActor {
    type Result = ();

    fn handle(&mut self, msg: RenameKey, _: &mut Context<Self>) {
        self.buffer.rename_key(&msg.old, &msg.new);
        for target in self.renamed.values_mut() {
            if *target == msg.old {
                target.clone_from(&msg.new);
            }
        }
        self.renamed.insert(msg.old, msg.new);
    }
}

/// A key's budget window rolled over.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct ResetKeySpend {
    /// The hashed key.
    pub token: String,
    /// When it next resets.
    pub next: Option<DateTime<Utc>>,
}

impl Handler<ResetKeySpend> for SpendActor {
    type Result = ();

    fn handle(&mut self, msg: ResetKeySpend, _: &mut Context<Self>) {
        self.buffer.reset_key(msg.token, msg.next);
    }
}

/// The proxy-wide budget window rolled over.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct ResetProxySpend {
    /// When it next resets.
    pub next: Option<DateTime<Utc>>,
}

impl Handler<ResetProxySpend> for SpendActor {
    type Result = ();

    fn handle(&mut self, msg: ResetProxySpend, _: &mut Context<Self>) {
        self.buffer.reset_proxy(msg.next);
    }
}

/// Writes everything buffered now; answers once it is stored (or the write failed).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Result<(), String>")]
pub struct Flush;

impl Handler<Flush> for SpendActor {
    type Result = ResponseActFuture<Self, Result<(), String>>;

    fn handle(&mut self, _: Flush, _: &mut Context<Self>) -> Self::Result {
        let batch = Arc::new(self.buffer.take());
        let db = self.db.clone();
        Box::pin(
            async move {
                let result = if batch.is_empty() {
                    Ok(())
                } else {
                    let shared = batch.clone();
                    db.run(move |db| async move { db.write_spend(shared).await })
                        .await
                };
                (batch, result)
            }
            .into_actor(self)
            .map(|(batch, result), act, _| {
                let result = match result {
                    Ok(()) => Ok(()),
                    Err(e) => {
                        if let Some(m) = &act.metrics {
                            m.spend_flush_failures.inc();
                        }
                        act.buffer.restore(unshare(batch));
                        Err(e.to_string())
                    }
                };
                act.show_buffer();
                result
            }),
        )
    }
}

/// Proxy-wide spend not yet in the database (buffered or being written).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "f64")]
pub struct UnwrittenProxySpend;

impl Handler<UnwrittenProxySpend> for SpendActor {
    type Result = f64;

    fn handle(&mut self, _: UnwrittenProxySpend, _: &mut Context<Self>) -> f64 {
        self.buffer.proxy_delta + self.writing_proxy_delta
    }
}

/// Rows and key deltas waiting (tests and readiness).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "usize")]
pub struct Pending;

impl Handler<Pending> for SpendActor {
    type Result = usize;

    fn handle(&mut self, _: Pending, _: &mut Context<Self>) -> usize {
        self.buffer.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(token: &str, group: &str, cost: f64, id: &str) -> RecordSpend {
        let now = Utc::now().naive_utc();
        RecordSpend {
            token: Some(token.into()),
            cost,
            row: SpendLogRow {
                request_id: id.into(),
                api_key: token.into(),
                model: "m".into(),
                model_group: group.into(),
                model_id: "d".into(),
                api_base: "b".into(),
                provider: "openai".into(),
                prompt_tokens: 1,
                completion_tokens: 1,
                total_tokens: 2,
                spend: cost,
                start_time: now,
                end_time: now,
                status: "success".into(),
                cache_hit: false,
                user_id: None,
                metadata: "{}".into(),
            },
            key_alias: None,
            upstream: None,
        }
    }

    #[test]
    fn spend_aggregates_per_key_in_token_order() {
        let mut b = SpendBuffer::default();
        b.record(record("b", "g", 0.5, "1"), true);
        b.record(record("a", "g", 0.25, "2"), true);
        b.record(record("b", "h", 0.5, "3"), true);
        let batch = b.take();
        assert_eq!(
            batch.key_deltas,
            vec![("a".into(), 0.25), ("b".into(), 1.0)]
        );
        assert_eq!(batch.model_deltas.len(), 3);
        assert_eq!(batch.rows.len(), 3);
        assert!((batch.proxy_delta - 1.25).abs() < 1e-12);
        assert!(b.is_empty());
    }

    #[test]
    fn a_restored_batch_loses_nothing_and_counts_nothing_twice() {
        let mut b = SpendBuffer::default();
        b.record(record("a", "g", 1.0, "1"), true);
        let failed = b.take();
        b.record(record("a", "g", 2.0, "2"), true);
        b.restore(failed);
        let batch = b.take();
        assert_eq!(batch.key_deltas, vec![("a".into(), 3.0)]);
        assert_eq!(
            batch
                .rows
                .iter()
                .map(|r| r.request_id.as_str())
                .collect::<Vec<_>>(),
            ["1", "2"]
        );
        assert!((batch.proxy_delta - 3.0).abs() < 1e-12);
    }

    #[test]
    fn a_reset_drops_the_old_windows_deltas_but_keeps_the_rows() {
        let mut b = SpendBuffer::default();
        b.record(record("a", "g", 1.0, "1"), true);
        b.reset_key("a".into(), None);
        b.record(record("a", "g", 0.5, "2"), true);
        let batch = b.take();
        assert_eq!(batch.key_deltas, vec![("a".into(), 0.5)]);
        assert_eq!(batch.resets.len(), 1);
        assert_eq!(batch.rows.len(), 2);
    }

    #[test]
    fn disabled_spend_logs_keep_totals_without_rows() {
        let mut b = SpendBuffer::default();
        b.record(record("a", "g", 1.0, "1"), false);
        let batch = b.take();
        assert!(batch.rows.is_empty());
        assert_eq!(batch.key_deltas, vec![("a".into(), 1.0)]);
    }
}
