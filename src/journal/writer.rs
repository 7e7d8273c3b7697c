//! `Journal`: the handle the spend actor appends through, and the thread that owns the file:
//! it takes every line waiting, writes them as one group with one `fdatasync`, then wakes the
//! requests whose lines were in it (group commit, off the actix threads).

use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::oneshot;

use super::entry::{encode, Entry};
use super::file::JournalFile;
use crate::metrics::JournalMetrics;

/// Changes waiting for the journal thread at most; past this they are not journaled.
const QUEUE: usize = 16 * 1024;
/// One group is at most this many bytes (the rest waits for the next).
const GROUP_BYTES: usize = 4 * 1024 * 1024;

enum Op {
    Append {
        seq: u64,
        line: Vec<u8>,
        done: Option<oneshot::Sender<()>>,
    },
    Applied(u64),
    Close(oneshot::Sender<()>),
}

/// The journal, as the spend actor sees it (cheap to clone).
#[derive(Clone)]
pub struct Journal {
    id: Arc<str>,
    tx: SyncSender<Op>,
    metrics: Arc<JournalMetrics>,
}

impl Journal {
    /// Starts the thread that owns `file` (journal `id`, at `path`).
    pub fn start(
        file: JournalFile,
        id: String,
        path: PathBuf,
        metrics: Arc<JournalMetrics>,
    ) -> std::io::Result<Self> {
        let (tx, rx) = sync_channel(QUEUE);
        let shared = metrics.clone();
        std::thread::Builder::new()
            .name("spend-journal".into())
            .spawn(move || run(file, &path, &rx, &shared))?;
        Ok(Self {
            id: id.into(),
            tx,
            metrics,
        })
    }

    /// The journal's id (its mark in the database).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Journals change `seq`; `done` is answered once it is on disk. When the queue or the file
    /// is full the change is not journaled and `done` is dropped at once: the request goes on,
    /// its spend still buffered in memory (counted in `llmgate_spend_journal_unjournaled_total`).
    pub fn append(&self, seq: u64, entry: &Entry, done: Option<oneshot::Sender<()>>) {
        let line = encode(seq, entry);
        match self.tx.try_send(Op::Append { seq, line, done }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self.metrics.unjournaled(),
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// The database holds every change up to `seq`.
    pub fn applied(&self, seq: u64) {
        // A full queue drops this one: the next write's mark covers it.
        let _ = self.tx.try_send(Op::Applied(seq));
    }

    /// Waits for what is queued to be written; the file is removed when the database holds all
    /// of it (a clean stop leaves nothing to replay).
    pub async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        let tx_op = self.tx.clone();
        // The queue may be full for a moment: wait off the actix thread.
        let queued = actix_rt::task::spawn_blocking(move || tx_op.send(Op::Close(tx)).is_ok())
            .await
            .unwrap_or(false);
        if queued {
            let _ = rx.await;
        }
    }
}

fn run(mut file: JournalFile, path: &std::path::Path, rx: &Receiver<Op>, m: &JournalMetrics) {
    let mut group = Vec::with_capacity(64 * 1024);
    let mut waiters = Vec::new();
    let mut applied = 0u64;
    let mut logged_full = false;
    while let Ok(first) = rx.recv() {
        let mut close = None;
        let mut records = 0u64;
        let mut next = Some(first);
        while let Some(op) = next.take() {
            match op {
                Op::Append { seq, line, done } => {
                    if file.stage(seq, &line, &mut group) {
                        records += 1;
                        waiters.extend(done);
                    } else {
                        m.unjournaled();
                        if !logged_full {
                            log::error!(
                                "the spend journal {} is full (the database has not taken its \
                                 spend for a while): new spend is kept in memory only",
                                path.display()
                            );
                            logged_full = true;
                        }
                    }
                }
                Op::Applied(seq) => applied = applied.max(seq),
                Op::Close(reply) => close = Some(reply),
            }
            if close.is_none() && group.len() < GROUP_BYTES {
                next = rx.try_recv().ok();
            }
        }
        if !group.is_empty() {
            let started = Instant::now();
            match file.commit(&mut group) {
                Ok(()) => m.synced(records, started.elapsed()),
                Err(e) => {
                    m.error();
                    log::error!(
                        "spend journal {}: write failed ({e}); {records} records are in memory only",
                        path.display()
                    );
                }
            }
        }
        // Woken after the sync: each request's answer completes once its line is on disk.
        for w in waiters.drain(..) {
            let _ = w.send(());
        }
        if let Err(e) = file.applied(applied) {
            m.error();
            log::warn!("spend journal {}: compaction failed ({e})", path.display());
        }
        if file.all_applied() {
            logged_full = false;
        }
        m.bytes(file.size());
        if let Some(reply) = close {
            if file.all_applied() {
                drop(file);
                if let Err(e) = std::fs::remove_file(path) {
                    log::warn!("spend journal {}: not removed ({e})", path.display());
                }
            } else {
                log::warn!(
                    "spend journal {} kept: it holds spend the database has not taken; it is \
                     replayed at the next start",
                    path.display()
                );
            }
            let _ = reply.send(());
            return;
        }
    }
}
