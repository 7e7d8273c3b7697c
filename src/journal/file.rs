//! `JournalFile`: the journal on disk: lines appended in groups with one `fdatasync` each, a
//! size bound, and compaction in place once the database holds what the head of the file says.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::entry;

/// Bytes copied per step when compacting.
const COPY_CHUNK: usize = 64 * 1024;

/// Limits of one journal file.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The file never grows past this; changes that do not fit are not journaled.
    pub max_bytes: u64,
    /// Applied lines are cut from the head once they take this much room.
    pub compact_at: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: 256 * 1024 * 1024,
            compact_at: 4 * 1024 * 1024,
        }
    }
}

/// An open, locked journal file.
#[derive(Debug)]
pub struct JournalFile {
    file: File,
    limits: Limits,
    header_len: u64,
    /// Bytes written and synced (or being synced).
    len: u64,
    /// Bytes staged for the next commit.
    staged: u64,
    /// Each line not known to be in the database: its number and where it ends, in order.
    unapplied: VecDeque<(u64, u64)>,
    /// Where the first line not known to be in the database starts.
    live_from: u64,
    /// The highest number the database holds.
    applied: u64,
}

impl JournalFile {
    /// Takes over `file` (already locked, `len` bytes long, starting with journal `id`'s header
    /// or empty) once the database holds everything in it: it is cut back to its header.
    pub fn resume(file: File, id: &str, limits: Limits) -> io::Result<Self> {
        let header = entry::header(id);
        let header_len = header.len() as u64;
        file.set_len(0)?;
        file.write_all_at(header.as_bytes(), 0)?;
        file.sync_all()?;
        Ok(Self {
            file,
            limits,
            header_len,
            len: header_len,
            staged: 0,
            unapplied: VecDeque::new(),
            live_from: header_len,
            applied: 0,
        })
    }

    /// Adds line `seq` to `group` (the next commit) if the file has room for it.
    pub fn stage(&mut self, seq: u64, line: &[u8], group: &mut Vec<u8>) -> bool {
        let end = self.len + self.staged + line.len() as u64;
        if end > self.limits.max_bytes {
            return false;
        }
        group.extend_from_slice(line);
        self.staged += line.len() as u64;
        self.unapplied.push_back((seq, end));
        true
    }

    /// Writes `group` and waits for it to reach the disk. On failure nothing of it counts (the
    /// file is cut back), and `group` is emptied either way.
    pub fn commit(&mut self, group: &mut Vec<u8>) -> io::Result<()> {
        let result = self
            .file
            .write_all_at(group, self.len)
            .and_then(|()| self.file.sync_data());
        let staged = std::mem::take(&mut self.staged);
        group.clear();
        match result {
            Ok(()) => {
                self.len += staged;
                Ok(())
            }
            Err(e) => {
                while self
                    .unapplied
                    .back()
                    .is_some_and(|&(_, end)| end > self.len)
                {
                    self.unapplied.pop_back();
                }
                let _ = self.file.set_len(self.len);
                Err(e)
            }
        }
    }

    /// The database holds every change up to `seq`: lines up to it may go.
    pub fn applied(&mut self, seq: u64) -> io::Result<()> {
        if seq <= self.applied {
            return Ok(());
        }
        self.applied = seq;
        while let Some(&(s, end)) = self.unapplied.front() {
            if s > seq {
                break;
            }
            self.live_from = end;
            self.unapplied.pop_front();
        }
        if self.unapplied.is_empty() {
            // Nothing left to replay. A crash before this reaches the disk replays lines the
            // database already holds, and its mark makes them no-ops.
            self.live_from = self.header_len;
            if self.len > self.header_len {
                self.len = self.header_len;
                self.file.set_len(self.len)?;
            }
            return Ok(());
        }
        let dead = self.live_from - self.header_len;
        let live = self.len - self.live_from;
        if dead >= self.limits.compact_at && dead >= live {
            self.compact()?;
        }
        Ok(())
    }

    /// Moves the live tail to just after the header. The copy never overlaps its source, and
    /// it reaches the disk before the file is cut: a crash midway leaves the tail twice (the
    /// reader keeps one copy of each number) and a damaged line between (skipped).
    fn compact(&mut self) -> io::Result<()> {
        let shift = self.live_from - self.header_len;
        let mut buf = vec![0u8; COPY_CHUNK];
        let mut from = self.live_from;
        while from < self.len {
            let n = COPY_CHUNK.min((self.len - from) as usize);
            self.file.read_exact_at(&mut buf[..n], from)?;
            self.file.write_all_at(&buf[..n], from - shift)?;
            from += n as u64;
        }
        self.file.sync_data()?;
        self.len -= shift;
        self.file.set_len(self.len)?;
        for (_, end) in &mut self.unapplied {
            *end -= shift;
        }
        self.live_from = self.header_len;
        Ok(())
    }

    /// The file's size.
    pub fn size(&self) -> u64 {
        self.len
    }

    /// Whether every line is in the database.
    pub fn all_applied(&self) -> bool {
        self.unapplied.is_empty()
    }
}

/// Creates (or opens) the journal at `path` and locks it against a second instance.
pub fn open_locked(path: &Path) -> io::Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(io::Error::other(format!(
            "the spend journal {} is in use by another llmgate (give each instance its own \
             general_settings.spend_journal_path)",
            path.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// Makes the directory entry of a newly created file durable.
pub fn sync_dir(path: &Path) {
    let dir = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(d) => d.to_path_buf(),
        None => ".".into(),
    };
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::entry::{decode, encode, Entry};

    fn scratch(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "llmgate-journal-{tag}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("spend.journal")
    }

    fn line(seq: u64) -> Vec<u8> {
        encode(seq, &Entry::ResetProxy { next: None })
    }

    fn open(path: &Path, limits: Limits) -> JournalFile {
        JournalFile::resume(open_locked(path).unwrap(), "j", limits).unwrap()
    }

    fn append(f: &mut JournalFile, seqs: std::ops::RangeInclusive<u64>) -> usize {
        let mut group = Vec::new();
        let taken = seqs.filter(|&s| f.stage(s, &line(s), &mut group)).count();
        f.commit(&mut group).unwrap();
        taken
    }

    fn seqs_on_disk(path: &Path) -> Vec<u64> {
        let c = decode(&std::fs::read(path).unwrap()).unwrap();
        c.entries.iter().map(|(s, _)| *s).collect()
    }

    #[test]
    fn a_committed_group_is_on_disk_in_order() {
        let path = scratch("group");
        let mut f = open(&path, Limits::default());
        append(&mut f, 1..=3);
        append(&mut f, 4..=4);
        assert_eq!(seqs_on_disk(&path), [1, 2, 3, 4]);
    }

    #[test]
    fn once_all_is_applied_the_file_is_cut_back_to_its_header() {
        let path = scratch("cut");
        let mut f = open(&path, Limits::default());
        append(&mut f, 1..=5);
        f.applied(3).unwrap();
        assert_eq!(seqs_on_disk(&path), [1, 2, 3, 4, 5]);
        f.applied(5).unwrap();
        assert!(f.all_applied());
        assert_eq!(f.size(), entry::header("j").len() as u64);
        assert_eq!(seqs_on_disk(&path), Vec::<u64>::new());
        append(&mut f, 6..=6);
        assert_eq!(seqs_on_disk(&path), [6]);
    }

    #[test]
    fn applied_lines_at_the_head_are_compacted_away_keeping_the_tail() {
        let path = scratch("compact");
        let one = line(1).len() as u64;
        let mut f = open(
            &path,
            Limits {
                max_bytes: 1 << 20,
                compact_at: 10 * one,
            },
        );
        append(&mut f, 1..=30);
        f.applied(5).unwrap();
        assert_eq!(seqs_on_disk(&path).len(), 30, "too little dead room yet");
        f.applied(25).unwrap();
        assert_eq!(seqs_on_disk(&path), [26, 27, 28, 29, 30]);
        append(&mut f, 31..=31);
        f.applied(28).unwrap();
        assert_eq!(
            seqs_on_disk(&path),
            [26, 27, 28, 29, 30, 31],
            "too little dead room"
        );
        f.applied(31).unwrap();
        assert_eq!(seqs_on_disk(&path), Vec::<u64>::new());
    }

    #[test]
    fn the_file_never_grows_past_its_bound_and_has_room_again_once_applied() {
        let path = scratch("bound");
        let one = line(1).len() as u64;
        let header = entry::header("j").len() as u64;
        let mut f = open(
            &path,
            Limits {
                max_bytes: header + 4 * one,
                compact_at: 1 << 20,
            },
        );
        assert_eq!(append(&mut f, 1..=6), 4);
        assert!(std::fs::metadata(&path).unwrap().len() <= header + 4 * one);
        f.applied(4).unwrap();
        assert_eq!(append(&mut f, 7..=8), 2);
        assert_eq!(seqs_on_disk(&path), [7, 8]);
    }

    #[test]
    fn a_second_opener_is_refused_while_the_first_holds_the_lock() {
        let path = scratch("lock");
        let _first = open_locked(&path).unwrap();
        let second = open_locked(&path).unwrap_err();
        assert!(second.to_string().contains("in use"), "{second}");
    }
}
