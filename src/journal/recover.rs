//! Startup: the journal is opened and locked, what the database does not hold yet is written to
//! it (with the journal's mark, in one transaction), and the file is emptied for this run.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use super::{open, Journal, JournalFile, Limits};
use crate::config::Settings;
use crate::db::DbHandle;
use crate::metrics::JournalMetrics;

/// A journal brought up to date, ready for its thread.
pub struct Recovered {
    file: JournalFile,
    id: String,
    path: PathBuf,
    /// The number of the last change the database holds.
    pub after: u64,
}

/// Opens the journal `settings` ask for (for a gateway on `port`), and replays into the
/// database what it holds that the database does not; `None` when no journal is kept.
pub async fn recover(
    settings: &Settings,
    db: &DbHandle,
    port: u16,
) -> io::Result<Option<Recovered>> {
    let Some(path) = settings.spend_journal.path(&settings.database, port) else {
        return Ok(None);
    };
    let shown = path.display().to_string();
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        io::Error::other(format!("spend journal {shown}: {what}: {e}"))
    };
    let mut opened = open(&path).map_err(|e| fail("cannot open it", &e))?;
    if opened.skipped() > 0 {
        log::warn!(
            "spend journal {shown}: {} lines cut short or damaged were skipped (a line cut short \
             by a crash was never acknowledged)",
            opened.skipped()
        );
    }
    let id = opened.id().to_owned();
    let applied = db
        .run(move |db| async move { db.journal_mark(&id).await })
        .await
        .map_err(|e| fail("cannot read its mark in the database", &e))?;
    // This run numbers its changes after everything in the file and everything the database
    // holds: a number used twice would make the database skip a batch as already applied.
    let after = applied.max(opened.last_seq());
    if let Some((batch, count)) = opened.pending(applied, !settings.disable_spend_logs) {
        let rows = batch.rows.len();
        let batch = Arc::new(batch);
        db.run(move |db| async move { db.write_spend(batch).await })
            .await
            .map_err(|e| fail("cannot replay it into the database", &e))?;
        log::warn!(
            "spend journal {shown}: replayed {count} changes ({rows} spend-log rows) left by a \
             run that did not stop cleanly"
        );
    }
    let (file, id, path) = opened
        .resume(Limits::default())
        .map_err(|e| fail("cannot empty it", &e))?;
    log::info!("spend journal at {shown}");
    Ok(Some(Recovered {
        file,
        id,
        path,
        after,
    }))
}

impl Recovered {
    /// Starts the journal's thread.
    pub fn start(self, metrics: Arc<JournalMetrics>) -> io::Result<Journal> {
        Journal::start(self.file, self.id, self.path, metrics)
    }
}
