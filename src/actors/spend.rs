//! `SpendActor`: buffers one record per finished request (journaled first, when a journal is
//! kept) and writes them in batched transactions; a failed write keeps its batch and retries
//! it with backoff.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use actix::{
    Actor, ActorFutureExt, AsyncContext, Context, Handler, Message, ResponseFuture, WrapFuture,
};
use chrono::{DateTime, Utc};
use tokio::sync::oneshot;

use super::ledger::SpendLedger;
use crate::db::models::SpendLogRow;
use crate::db::spend::SpendBatch;
use crate::db::DbHandle;
use crate::governance::rollup::{summarize, EntityKey, Reset};
use crate::journal::{Entry, Journal};
use crate::metrics::{Metrics, RequestRecord};

/// Spend waiting to be written, aggregated per key; per entity and per day when taken.
#[derive(Debug, Default)]
pub struct SpendBuffer {
    /// Each request's row, and whether it goes in the spend log (every row is summed into
    /// its entities' spend and days when the batch is taken, logged or not).
    rows: Vec<(SpendLogRow, bool)>,
    key_deltas: BTreeMap<String, f64>,
    model_deltas: BTreeMap<(String, String), f64>,
    resets: BTreeMap<String, Option<DateTime<Utc>>>,
    proxy_delta: f64,
    proxy_reset: Option<Option<DateTime<Utc>>>,
    entity_resets: Vec<Reset>,
}

impl SpendBuffer {
    /// Adds one finished request: `cost` USD charged to `token`, logged as `row` (`keep_row`);
    /// its user, team, team member, end user and tags (named in the row) are charged with it
    /// when the batch is taken.
    pub fn record(&mut self, token: Option<String>, cost: f64, row: SpendLogRow, keep_row: bool) {
        if let Some(token) = token {
            if cost != 0.0 {
                *self
                    .model_deltas
                    .entry((token.clone(), row.model_group.clone()))
                    .or_default() += cost;
                *self.key_deltas.entry(token).or_default() += cost;
            }
        }
        self.proxy_delta += cost;
        self.rows.push((row, keep_row));
    }

    /// An entity's budget window rolled over: what it spent before no longer counts.
    pub fn reset_entity(&mut self, entity: EntityKey, next: Option<DateTime<Utc>>) {
        self.entity_resets.push(Reset {
            entity,
            next,
            after_rows: self.rows.len(),
        });
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
            && self.entity_resets.is_empty()
    }

    /// Everything waiting, as one batch; the buffer is left empty.
    pub fn take(&mut self) -> SpendBatch {
        let b = std::mem::take(self);
        let logged = b.rows.iter().filter(|(_, logged)| *logged).count();
        let (entities, rows) = if logged == b.rows.len() || logged == 0 {
            let all: Vec<SpendLogRow> = b.rows.into_iter().map(|(row, _)| row).collect();
            let entities = summarize(&all, b.entity_resets);
            (entities, if logged == 0 { Vec::new() } else { all })
        } else {
            let all: Vec<SpendLogRow> = b.rows.iter().map(|(row, _)| row.clone()).collect();
            let rows = b
                .rows
                .into_iter()
                .filter_map(|(row, logged)| logged.then_some(row))
                .collect();
            (summarize(&all, b.entity_resets), rows)
        };
        SpendBatch {
            entities,
            rows,
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
            journal: None,
        }
    }
}

/// Buffers spend and writes it to the database in batches, one write at a time, on the
/// database arbiter; with a journal, each change is journaled before it is buffered.
pub struct SpendActor {
    db: DbHandle,
    ledger: SpendLedger,
    journal: Option<Journal>,
    every: Duration,
    max_rows: usize,
    /// The proxy spend of the batch being written, while one is.
    writing: Option<f64>,
    /// A batch whose write failed, with the number of its last change: written again alone,
    /// before anything newer, so the database's journal mark tells whether it landed.
    failed: Option<(Arc<SpendBatch>, u64)>,
    /// The number of the last change written.
    written: u64,
    failures: u32,
    /// Flushes waiting, each for the changes up to its number.
    flushes: Vec<(u64, oneshot::Sender<Result<(), String>>)>,
    /// Where each request is counted for `/metrics`, and the buffer's size shown.
    metrics: Option<Arc<Metrics>>,
}

impl SpendActor {
    /// A writer flushing every `every` or when `max_rows` rows wait.
    pub fn new(db: DbHandle, every: Duration, max_rows: usize, keep_rows: bool) -> Self {
        Self {
            db,
            ledger: SpendLedger::new(keep_rows, 0),
            journal: None,
            every,
            max_rows,
            writing: None,
            failed: None,
            written: 0,
            failures: 0,
            flushes: Vec::new(),
            metrics: None,
        }
    }

    /// Counts each request in `metrics` as it is recorded.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Journals every change in `journal`, numbering them after `after` (what the database
    /// already holds of it).
    pub fn with_journal(mut self, journal: Journal, after: u64) -> Self {
        self.ledger = SpendLedger::new(self.ledger.keep_rows(), after);
        self.written = after;
        self.journal = Some(journal);
        self
    }

    /// Shows the buffer's size in the metrics.
    fn show_buffer(&self) {
        if let Some(m) = &self.metrics {
            m.spend_buffer_rows.set(self.rows_waiting() as i64);
        }
    }

    fn rows_waiting(&self) -> usize {
        self.ledger.buffer().len() + self.failed.as_ref().map_or(0, |(b, _)| b.rows.len())
    }

    /// Numbers a change, journals it (`done` answered once it is on disk), and buffers it.
    fn change(&mut self, entry: Entry, done: Option<oneshot::Sender<()>>) {
        let seq = self.ledger.next_seq();
        if let Some(journal) = &self.journal {
            journal.append(seq, &entry, done);
        }
        self.ledger.apply(seq, entry);
    }

    fn write(&mut self, ctx: &mut Context<Self>) {
        if self.writing.is_some() {
            return;
        }
        let (batch, upto) = match self.failed.take() {
            Some(failed) => failed,
            // Nothing arrived since the last write: an idle interval makes no database call.
            None if !self.ledger.has_changes() => {
                self.done_up_to(self.ledger.last_seq(), Ok(()));
                return;
            }
            None => {
                let upto = self.ledger.last_seq();
                let id = self.journal.as_ref().map(Journal::id);
                (Arc::new(self.ledger.take(id)), upto)
            }
        };
        if batch.is_empty() && batch.journal.is_none() {
            self.done_up_to(upto, Ok(()));
            return;
        }
        self.writing = Some(batch.proxy_delta);
        let db = self.db.clone();
        let job = async move {
            let shared = batch.clone();
            let result = db
                .run(move |db| async move { db.write_spend(shared).await })
                .await;
            (batch, upto, result)
        };
        ctx.spawn(job.into_actor(self).map(|(batch, upto, result), act, ctx| {
            act.writing = None;
            match result {
                Ok(()) => {
                    act.failures = 0;
                    if let (Some(journal), Some(mark)) = (&act.journal, &batch.journal) {
                        journal.applied(mark.to);
                    }
                    act.done_up_to(upto, Ok(()));
                    let more_asked = act.flushes.iter().any(|(t, _)| *t > act.written);
                    if more_asked || act.ledger.buffer().len() >= act.max_rows {
                        act.write(ctx);
                    }
                }
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
                    act.failed = Some((batch, upto));
                    act.done_up_to(act.written, Err(e.to_string()));
                    ctx.run_later(wait, |act, ctx| act.write(ctx));
                }
            }
            act.show_buffer();
        }));
    }

    /// The changes up to `upto` are written (`Ok`), or a write failed (`Err`: every waiting
    /// flush hears of it).
    fn done_up_to(&mut self, upto: u64, result: Result<(), String>) {
        if result.is_ok() {
            self.written = self.written.max(upto);
        }
        let written = self.written;
        let waiting = std::mem::take(&mut self.flushes);
        for (target, reply) in waiting {
            if result.is_err() || target <= written {
                let _ = reply.send(result.clone());
            } else {
                self.flushes.push((target, reply));
            }
        }
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
#[derive(Message, Debug)]
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
    /// Answered once the record is in the journal on disk (dropped at once without one).
    pub durable: Option<oneshot::Sender<()>>,
}

impl Handler<RecordSpend> for SpendActor {
    type Result = ();

    fn handle(&mut self, msg: RecordSpend, ctx: &mut Context<Self>) {
        if let Some(m) = &self.metrics {
            m.request(&RequestRecord {
                row: &msg.row,
                key_alias: msg.key_alias.as_deref(),
                upstream: msg.upstream,
            });
        }
        let entry = Entry::Record {
            token: msg.token,
            cost: msg.cost,
            row: msg.row,
        };
        self.change(entry, msg.durable);
        if self.ledger.buffer().len() >= self.max_rows && self.failures == 0 {
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
        self.change(
            Entry::Rename {
                old: msg.old,
                new: msg.new,
            },
            None,
        );
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
        self.change(
            Entry::ResetKey {
                token: msg.token,
                next: msg.next,
            },
            None,
        );
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
        self.change(Entry::ResetProxy { next: msg.next }, None);
    }
}

/// A user's, team's, member's, end user's or tag's budget window rolled over.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct ResetEntitySpend {
    /// Which entity.
    pub entity: crate::governance::EntityRef,
    /// When it next resets.
    pub next: Option<DateTime<Utc>>,
}

impl Handler<ResetEntitySpend> for SpendActor {
    type Result = ();

    fn handle(&mut self, msg: ResetEntitySpend, _: &mut Context<Self>) {
        let e = msg.entity;
        self.change(
            Entry::ResetEntity {
                kind: e.kind.as_str().to_owned(),
                scope: e.scope.to_string(),
                id: e.id.to_string(),
                next: msg.next,
            },
            None,
        );
    }
}

/// Writes everything buffered now; answers once it is stored (or a write failed).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Result<(), String>")]
pub struct Flush;

impl Handler<Flush> for SpendActor {
    type Result = ResponseFuture<Result<(), String>>;

    fn handle(&mut self, _: Flush, ctx: &mut Context<Self>) -> Self::Result {
        let target = self.ledger.last_seq();
        if target <= self.written {
            return Box::pin(async { Ok(()) });
        }
        let (tx, rx) = oneshot::channel();
        self.flushes.push((target, tx));
        self.write(ctx);
        Box::pin(async move {
            rx.await
                .unwrap_or_else(|_| Err("the spend writer stopped".into()))
        })
    }
}

/// Proxy-wide spend not yet in the database (buffered or being written).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "f64")]
pub struct UnwrittenProxySpend;

impl Handler<UnwrittenProxySpend> for SpendActor {
    type Result = f64;

    fn handle(&mut self, _: UnwrittenProxySpend, _: &mut Context<Self>) -> f64 {
        self.ledger.buffer().proxy_delta
            + self.writing.unwrap_or(0.0)
            + self.failed.as_ref().map_or(0.0, |(b, _)| b.proxy_delta)
    }
}

/// Rows waiting (tests and readiness).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "usize")]
pub struct Pending;

impl Handler<Pending> for SpendActor {
    type Result = usize;

    fn handle(&mut self, _: Pending, _: &mut Context<Self>) -> usize {
        self.rows_waiting()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(
        b: &mut SpendBuffer,
        (token, cost, row): (Option<String>, f64, SpendLogRow),
        keep: bool,
    ) {
        b.record(token, cost, row, keep);
    }

    fn record(token: &str, group: &str, cost: f64, id: &str) -> (Option<String>, f64, SpendLogRow) {
        let now = Utc::now().naive_utc();
        (
            Some(token.into()),
            cost,
            SpendLogRow {
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
                team_id: None,
                end_user: None,
                request_tags: "[]".into(),
            },
        )
    }

    #[test]
    fn spend_aggregates_per_key_in_token_order() {
        let mut b = SpendBuffer::default();
        add(&mut b, record("b", "g", 0.5, "1"), true);
        add(&mut b, record("a", "g", 0.25, "2"), true);
        add(&mut b, record("b", "h", 0.5, "3"), true);
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
    fn a_reset_drops_the_old_windows_deltas_but_keeps_the_rows() {
        let mut b = SpendBuffer::default();
        add(&mut b, record("a", "g", 1.0, "1"), true);
        b.reset_key("a".into(), None);
        add(&mut b, record("a", "g", 0.5, "2"), true);
        let batch = b.take();
        assert_eq!(batch.key_deltas, vec![("a".into(), 0.5)]);
        assert_eq!(batch.resets.len(), 1);
        assert_eq!(batch.rows.len(), 2);
    }

    #[test]
    fn disabled_spend_logs_keep_totals_without_rows() {
        let mut b = SpendBuffer::default();
        add(&mut b, record("a", "g", 1.0, "1"), false);
        let batch = b.take();
        assert!(batch.rows.is_empty());
        assert_eq!(batch.key_deltas, vec![("a".into(), 1.0)]);
    }
}
