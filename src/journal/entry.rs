//! The journal's format: a header line, then one checksummed JSON line per spend-buffer change.
//!
//! ```text
//! llmgate-spend-journal 1 <journal id>
//! <crc32 of the JSON, 8 hex digits> {"seq":1,"k":"record","token":..,"cost":..,"row":{..}}
//! ```
//! A line cut short by a crash (no newline, or a checksum that does not match) was never
//! acknowledged to its request: reading stops being strict there and skips it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::db::models::SpendLogRow;

/// The first word of the header line.
const MAGIC: &str = "llmgate-spend-journal";
/// The format's version.
const VERSION: u32 = 1;

/// One change to the spend buffer, as journaled and replayed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
#[expect(
    clippy::large_enum_variant,
    reason = "almost every entry is a record: boxing its row would only add an allocation"
)]
pub enum Entry {
    /// A finished request's spend.
    Record {
        /// The hashed key charged, if any.
        token: Option<String>,
        /// USD.
        cost: f64,
        /// The spend-log row.
        row: SpendLogRow,
    },
    /// A regenerated key: spend for `old` goes to `new`.
    Rename {
        /// The old token.
        old: String,
        /// The new token.
        new: String,
    },
    /// A key's budget window rolled over.
    ResetKey {
        /// The hashed key.
        token: String,
        /// When it next resets.
        next: Option<DateTime<Utc>>,
    },
    /// The proxy-wide budget window rolled over.
    ResetProxy {
        /// When it next resets.
        next: Option<DateTime<Utc>>,
    },
    /// A user's, team's, member's, end user's or tag's budget window rolled over.
    ResetEntity {
        /// Its kind, as stored.
        kind: String,
        /// A member's team ("" for other kinds).
        scope: String,
        /// Its id.
        id: String,
        /// When it next resets.
        next: Option<DateTime<Utc>>,
    },
}

#[derive(Serialize)]
struct LineOut<'a> {
    seq: u64,
    #[serde(flatten)]
    entry: &'a Entry,
}

#[derive(Deserialize)]
struct LineIn {
    seq: u64,
    #[serde(flatten)]
    entry: Entry,
}

/// The header line for journal `id`.
pub fn header(id: &str) -> String {
    format!("{MAGIC} {VERSION} {id}\n")
}

/// Room for a typical spend record's line, so that encoding it allocates once.
const LINE_CAPACITY: usize = 768;
/// The checksum and its space, before the JSON.
const CRC_LEN: usize = 9;

/// `entry` number `seq` as one journal line (newline included).
pub fn encode(seq: u64, entry: &Entry) -> Vec<u8> {
    // The JSON is written in place after room for its checksum, which is filled in after: one
    // allocation per line rather than one for the JSON, one for the checksum and one to join them.
    let mut line = Vec::with_capacity(LINE_CAPACITY);
    line.extend_from_slice(b"00000000 ");
    // Serializing plain strings, numbers and dates into a Vec cannot fail.
    if serde_json::to_writer(&mut line, &LineOut { seq, entry }).is_err() {
        line.truncate(CRC_LEN);
    }
    let crc = crc32fast::hash(&line[CRC_LEN..]);
    // Eight hex digits fill exactly the eight placeholder bytes.
    let _ = std::io::Write::write_fmt(&mut &mut line[..8], format_args!("{crc:08x}"));
    line.push(b'\n');
    line
}

/// What a journal file holds.
#[derive(Debug, Default, PartialEq)]
pub struct Contents {
    /// The journal's id, from the header (`None`: no header, an empty or new file).
    pub id: Option<String>,
    /// The entries, in file order.
    pub entries: Vec<(u64, Entry)>,
    /// Lines skipped: cut short by a crash, or damaged.
    pub skipped: usize,
}

/// Why a journal cannot be read at all.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FormatError {
    /// The first line is not a journal header.
    #[error("not an llmgate spend journal (bad header)")]
    NotAJournal,
    /// Written by a newer llmgate.
    #[error("spend journal version {0} is not supported")]
    Version(String),
}

/// Reads a journal's bytes.
pub fn decode(bytes: &[u8]) -> Result<Contents, FormatError> {
    let mut contents = Contents::default();
    if bytes.is_empty() {
        return Ok(contents);
    }
    let mut lines = bytes.split_inclusive(|&b| b == b'\n');
    let head = lines.next().unwrap_or_default();
    let head = std::str::from_utf8(head).map_err(|_| FormatError::NotAJournal)?;
    let Some(head) = head.strip_suffix('\n') else {
        // A header cut short: the file was being created, and holds nothing.
        return Ok(contents);
    };
    let mut words = head.split(' ');
    if words.next() != Some(MAGIC) {
        return Err(FormatError::NotAJournal);
    }
    match words.next() {
        Some(v) if v == VERSION.to_string() => {}
        Some(v) => return Err(FormatError::Version(v.to_owned())),
        None => return Err(FormatError::NotAJournal),
    }
    contents.id = words.next().filter(|id| !id.is_empty()).map(str::to_owned);
    if contents.id.is_none() {
        return Err(FormatError::NotAJournal);
    }
    for line in lines {
        match decode_line(line) {
            Some(e) => contents.entries.push(e),
            None => contents.skipped += 1,
        }
    }
    Ok(contents)
}

fn decode_line(line: &[u8]) -> Option<(u64, Entry)> {
    let line = line.strip_suffix(b"\n")?;
    let (crc, json) = (line.get(..8)?, line.get(9..)?);
    let crc = u32::from_str_radix(std::str::from_utf8(crc).ok()?, 16).ok()?;
    if line.get(8) != Some(&b' ') || crc32fast::hash(json) != crc {
        return None;
    }
    let parsed: LineIn = serde_json::from_slice(json).ok()?;
    Some((parsed.seq, parsed.entry))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn row(id: &str, spend: f64) -> SpendLogRow {
        let at = chrono::NaiveDate::from_ymd_opt(2026, 11, 23)
            .and_then(|d| d.and_hms_micro_opt(7, 30, 0, 123_456))
            .unwrap();
        SpendLogRow {
            request_id: id.into(),
            api_key: "k".into(),
            model: "m".into(),
            model_group: "g".into(),
            model_id: "d".into(),
            api_base: "b".into(),
            provider: "openai".into(),
            prompt_tokens: 10,
            completion_tokens: 20,
            total_tokens: 30,
            spend,
            start_time: at,
            end_time: at,
            status: "success".into(),
            cache_hit: false,
            user_id: Some("u \"quoted\"\nline".into()),
            metadata: "{\"a\":1}".into(),
            team_id: Some("t".into()),
            end_user: None,
            request_tags: "[\"x\"]".into(),
        }
    }

    fn journal(entries: &[(u64, Entry)]) -> Vec<u8> {
        let mut bytes = header("j1").into_bytes();
        for (seq, e) in entries {
            bytes.extend(encode(*seq, e));
        }
        bytes
    }

    fn record(id: &str) -> Entry {
        Entry::Record {
            token: Some("k".into()),
            cost: 0.25,
            row: row(id, 0.25),
        }
    }

    #[test]
    fn every_kind_of_entry_reads_back_as_written() {
        let entries = vec![
            (1, record("a")),
            (
                2,
                Entry::Rename {
                    old: "k".into(),
                    new: "k2".into(),
                },
            ),
            (
                3,
                Entry::ResetKey {
                    token: "k2".into(),
                    next: Some(Utc::now()),
                },
            ),
            (4, Entry::ResetProxy { next: None }),
        ];
        let read = decode(&journal(&entries)).unwrap();
        assert_eq!(read.id.as_deref(), Some("j1"));
        assert_eq!(read.entries, entries);
        assert_eq!(read.skipped, 0);
    }

    #[test]
    fn a_line_is_the_checksum_in_hex_then_the_json() {
        let line = encode(7, &record("a"));
        let json = serde_json::to_vec(&LineOut {
            seq: 7,
            entry: &record("a"),
        })
        .unwrap();
        let mut expected = format!("{:08x} ", crc32fast::hash(&json)).into_bytes();
        expected.extend_from_slice(&json);
        expected.push(b'\n');
        assert_eq!(line, expected);
    }

    #[test]
    fn a_line_cut_short_by_a_crash_is_skipped() {
        let mut bytes = journal(&[(1, record("a")), (2, record("b"))]);
        bytes.truncate(bytes.len() - 5);
        let read = decode(&bytes).unwrap();
        assert_eq!(read.entries.len(), 1);
        assert_eq!(read.skipped, 1);
    }

    #[test]
    fn a_damaged_line_is_skipped_and_the_rest_still_read() {
        let mut bytes = journal(&[(1, record("a")), (2, record("b")), (3, record("c"))]);
        let second = header("j1").len() + encode(1, &record("a")).len() + 20;
        bytes[second] ^= 0x01;
        let read = decode(&bytes).unwrap();
        let seqs: Vec<u64> = read.entries.iter().map(|(s, _)| *s).collect();
        assert_eq!(seqs, [1, 3]);
        assert_eq!(read.skipped, 1);
    }

    #[test]
    fn an_empty_file_or_a_header_cut_short_holds_nothing() {
        assert_eq!(decode(b"").unwrap(), Contents::default());
        assert_eq!(decode(b"llmgate-spend-jou").unwrap(), Contents::default());
    }

    #[test]
    fn another_file_or_a_newer_version_is_refused() {
        assert_eq!(decode(b"hello\n"), Err(FormatError::NotAJournal));
        assert_eq!(
            decode(b"llmgate-spend-journal 9 x\n"),
            Err(FormatError::Version("9".into()))
        );
    }
}
