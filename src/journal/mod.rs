//! The spend journal: each change to the spend buffer reaches local disk before its request's
//! answer completes, and is replayed once at startup, so a crash (even `kill -9`) loses no
//! answered request's spend and counts none twice (the database keeps the journal's mark).

mod entry;
mod file;
mod recover;
mod writer;

use std::io;
use std::path::{Path, PathBuf};

pub use entry::{decode, encode, header, Contents, Entry, FormatError};
pub use file::{JournalFile, Limits};
pub use recover::{recover, Recovered};
pub use writer::Journal;

use crate::actors::ledger::SpendLedger;
use crate::db::spend::SpendBatch;

/// A journal found at startup, locked, not yet replayed.
pub struct Opened {
    path: PathBuf,
    file: std::fs::File,
    id: String,
    entries: Vec<(u64, Entry)>,
    skipped: usize,
}

/// Opens (or creates) the journal at `path`, locks it, and reads what it holds.
pub fn open(path: &Path) -> io::Result<Opened> {
    let file = file::open_locked(path)?;
    let bytes = std::fs::read(path)?;
    let contents =
        decode(&bytes).map_err(|e| io::Error::other(format!("{}: {e}", path.display())))?;
    let fresh = contents.id.is_none();
    let id = contents
        .id
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    if fresh {
        file::sync_dir(path);
    }
    Ok(Opened {
        path: path.to_owned(),
        file,
        id,
        entries: contents.entries,
        skipped: contents.skipped,
    })
}

impl Opened {
    /// The journal's id: its mark in the database.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Lines that could not be read (cut short by a crash, or damaged).
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    /// The highest change number in the file.
    pub fn last_seq(&self) -> u64 {
        self.entries.iter().map(|(s, _)| *s).max().unwrap_or(0)
    }

    /// The batch that brings the database up to date: the changes after `applied` (the
    /// database's mark), once each; `None` when it holds them all. The entries are used up
    /// (read `last_seq` first).
    pub fn pending(&mut self, applied: u64, keep_rows: bool) -> Option<(SpendBatch, usize)> {
        replay(
            &self.id,
            std::mem::take(&mut self.entries),
            applied,
            keep_rows,
        )
    }

    /// Empties the file (the database holds all of it) and starts the journal thread; change
    /// numbers go on after `after`.
    pub fn resume(self, limits: Limits) -> io::Result<(JournalFile, String, PathBuf)> {
        let file = JournalFile::resume(self.file, &self.id, limits)?;
        Ok((file, self.id, self.path))
    }
}

/// The changes of journal `id` numbered after `applied`, each once (a crash while compacting
/// can leave a line twice), as one batch carrying the journal's mark; with how many changes.
pub fn replay(
    id: &str,
    mut entries: Vec<(u64, Entry)>,
    applied: u64,
    keep_rows: bool,
) -> Option<(SpendBatch, usize)> {
    entries.retain(|(seq, _)| *seq > applied);
    entries.sort_by_key(|(seq, _)| *seq);
    entries.dedup_by_key(|(seq, _)| *seq);
    if entries.is_empty() {
        return None;
    }
    let count = entries.len();
    let mut ledger = SpendLedger::new(keep_rows, applied);
    for (seq, entry) in entries {
        ledger.apply(seq, entry);
    }
    Some((ledger.take(Some(id)), count))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::models::SpendLogRow;

    fn record(token: &str, id: &str, cost: f64) -> Entry {
        let now = chrono::Utc::now().naive_utc();
        Entry::Record {
            token: Some(token.into()),
            cost,
            row: SpendLogRow {
                request_id: id.into(),
                api_key: token.into(),
                model: "m".into(),
                model_group: "g".into(),
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
        }
    }

    #[test]
    fn replay_takes_only_what_the_database_does_not_hold_and_each_change_once() {
        let entries = vec![
            (1, record("a", "r1", 1.0)),
            (2, record("a", "r2", 2.0)),
            (3, record("b", "r3", 4.0)),
            // Left twice by a crash while compacting.
            (3, record("b", "r3", 4.0)),
            (2, record("a", "r2", 2.0)),
        ];
        let (batch, count) = replay("j", entries, 1, true).unwrap();
        assert_eq!(count, 2);
        assert_eq!(batch.key_deltas, vec![("a".into(), 2.0), ("b".into(), 4.0)]);
        let ids: Vec<_> = batch.rows.iter().map(|r| r.request_id.as_str()).collect();
        assert_eq!(ids, ["r2", "r3"]);
        assert!((batch.proxy_delta - 6.0).abs() < 1e-12);
        let mark = batch.journal.unwrap();
        assert_eq!((mark.id.as_str(), mark.to), ("j", 3));
    }

    #[test]
    fn nothing_to_replay_when_the_database_holds_it_all() {
        let entries = vec![(1, record("a", "r1", 1.0)), (2, record("a", "r2", 1.0))];
        assert!(replay("j", entries, 2, true).is_none());
        assert!(replay("j", Vec::new(), 0, true).is_none());
    }

    #[test]
    fn a_journal_reopened_after_a_crash_reads_back_what_was_synced() {
        let dir = std::env::temp_dir().join(format!(
            "llmgate-journal-reopen-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        let path = dir.join("spend.journal");
        let first = open(&path).unwrap();
        let id = first.id().to_owned();
        let (mut file, _, _) = first.resume(Limits::default()).unwrap();
        let mut group = Vec::new();
        for seq in 1..=3 {
            let line = encode(seq, &record("a", &format!("r{seq}"), 1.0));
            assert!(file.stage(seq, &line, &mut group));
        }
        file.commit(&mut group).unwrap();
        // The process dies here: nothing else is done to the file.
        drop(file);
        let mut again = open(&path).unwrap();
        assert_eq!(again.id(), id);
        assert_eq!(again.last_seq(), 3);
        let (batch, count) = again.pending(1, true).unwrap();
        assert_eq!(count, 2);
        assert_eq!(batch.rows.len(), 2);
        std::fs::remove_dir_all(dir).ok();
    }
}
