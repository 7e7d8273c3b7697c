//! `SpendLedger`: the spend buffer as a numbered sequence of changes (records, key renames,
//! budget resets), built the same way from live messages and from a journal being replayed.

use std::collections::HashMap;

use super::spend::SpendBuffer;
use crate::db::spend::{JournalMark, SpendBatch};
use crate::journal::Entry;

/// The spend buffer and the numbers of the changes in it.
#[derive(Debug)]
pub struct SpendLedger {
    buffer: SpendBuffer,
    /// Regenerated keys: old token to new, so late records land on the key that exists.
    renamed: HashMap<String, String>,
    keep_rows: bool,
    /// The number of the last change applied.
    last: u64,
    /// The number of the last change in a batch taken for writing.
    taken: u64,
}

impl SpendLedger {
    /// An empty ledger whose changes are numbered after `after`.
    pub fn new(keep_rows: bool, after: u64) -> Self {
        Self {
            buffer: SpendBuffer::default(),
            renamed: HashMap::new(),
            keep_rows,
            last: after,
            taken: after,
        }
    }

    /// Whether spend-log rows are kept (not with `disable_spend_logs`).
    pub fn keep_rows(&self) -> bool {
        self.keep_rows
    }

    /// The number the next change gets.
    pub fn next_seq(&self) -> u64 {
        self.last + 1
    }

    /// The number of the last change applied.
    pub fn last_seq(&self) -> u64 {
        self.last
    }

    /// Applies change number `seq` (numbers only go up).
    pub fn apply(&mut self, seq: u64, entry: Entry) {
        self.last = self.last.max(seq);
        match entry {
            Entry::Record {
                mut token,
                cost,
                row,
            } => {
                // A request that started before its key was regenerated is charged to the new
                // token.
                if let Some(new) = token.as_ref().and_then(|t| self.renamed.get(t)) {
                    token = Some(new.clone());
                }
                self.buffer.record(token, cost, row, self.keep_rows);
            }
            Entry::Rename { old, new } => {
                self.buffer.rename_key(&old, &new);
                for target in self.renamed.values_mut() {
                    if *target == old {
                        target.clone_from(&new);
                    }
                }
                self.renamed.insert(old, new);
            }
            Entry::ResetKey { token, next } => self.buffer.reset_key(token, next),
            Entry::ResetProxy { next } => self.buffer.reset_proxy(next),
            Entry::ResetEntity {
                kind,
                scope,
                id,
                next,
            } => self.buffer.reset_entity((kind, scope, id), next),
        }
    }

    /// Whether changes arrived since the last batch was taken.
    pub fn has_changes(&self) -> bool {
        self.last > self.taken
    }

    /// Everything since the last batch, as one batch carrying journal `id`'s mark (when a
    /// journal is kept) so the database applies it at most once.
    pub fn take(&mut self, journal: Option<&str>) -> SpendBatch {
        let mut batch = self.buffer.take();
        batch.journal = journal.map(|id| JournalMark {
            id: id.to_owned(),
            to: self.last,
        });
        self.taken = self.last;
        batch
    }

    /// The changes waiting.
    pub fn buffer(&self) -> &SpendBuffer {
        &self.buffer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::models::SpendLogRow;

    fn row(id: &str) -> SpendLogRow {
        let now = chrono::Utc::now().naive_utc();
        SpendLogRow {
            request_id: id.into(),
            api_key: "a".into(),
            model: "m".into(),
            model_group: "g".into(),
            model_id: "d".into(),
            api_base: "b".into(),
            provider: "openai".into(),
            prompt_tokens: 1,
            completion_tokens: 1,
            total_tokens: 2,
            spend: 1.0,
            start_time: now,
            end_time: now,
            status: "success".into(),
            cache_hit: false,
            user_id: None,
            metadata: "{}".into(),
            team_id: None,
            end_user: None,
            request_tags: "[]".into(),
        }
    }

    fn record(token: &str, id: &str) -> Entry {
        Entry::Record {
            token: Some(token.into()),
            cost: 1.0,
            row: row(id),
        }
    }

    #[test]
    fn a_record_for_a_renamed_key_is_charged_to_its_new_token() {
        let mut l = SpendLedger::new(true, 0);
        l.apply(
            1,
            Entry::Rename {
                old: "a".into(),
                new: "b".into(),
            },
        );
        l.apply(2, record("a", "r1"));
        let batch = l.take(Some("j"));
        assert_eq!(batch.key_deltas, vec![("b".into(), 1.0)]);
        assert_eq!(batch.journal.map(|m| m.to), Some(2));
    }

    #[test]
    fn numbers_continue_after_the_start_and_a_take_marks_them_written() {
        let mut l = SpendLedger::new(true, 41);
        assert_eq!(l.next_seq(), 42);
        assert!(!l.has_changes());
        l.apply(42, record("a", "r1"));
        assert!(l.has_changes());
        let batch = l.take(None);
        assert!(batch.journal.is_none());
        assert!(!l.has_changes());
        assert_eq!(l.next_seq(), 43);
    }
}
