//! `Entry`: one cached reply (its bytes as the client received them, its usage, when it was
//! written), and the compact form it takes in Redis.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::providers::Usage;

/// The largest reply body kept: bigger ones are served but never cached.
pub const MAX_ENTRY_BYTES: usize = 1024 * 1024;

/// Bytes before the body in the stored form: a format tag, then four little-endian u64s.
const HEADER: usize = 1 + 4 * 8;
const FORMAT: u8 = 1;

/// A cached reply.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The reply body as sent to the client (OpenAI JSON).
    pub body: Bytes,
    /// The call's usage, for the spend log of a hit.
    pub usage: Usage,
    /// When it was written, in milliseconds since the epoch (`s-maxage` is measured from it).
    pub written_ms: u64,
}

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Entry {
    /// An entry written now.
    pub fn new(body: Bytes, usage: Usage) -> Self {
        Self {
            body,
            usage,
            written_ms: now_ms(),
        }
    }

    /// How old the entry is at `now_ms`, in milliseconds.
    pub fn age_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.written_ms)
    }

    /// The stored form: header, then the body.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + self.body.len());
        out.push(FORMAT);
        for n in [
            self.written_ms,
            self.usage.prompt_tokens,
            self.usage.completion_tokens,
            self.usage.total_tokens,
        ] {
            out.extend_from_slice(&n.to_le_bytes());
        }
        out.extend_from_slice(&self.body);
        out
    }

    /// Reads the stored form; anything else (another format, a truncated value) is `None`.
    pub fn decode(stored: Bytes) -> Option<Self> {
        if stored.len() < HEADER || stored[0] != FORMAT {
            return None;
        }
        let n = |i: usize| {
            let at = 1 + i * 8;
            let mut b = [0u8; 8];
            b.copy_from_slice(&stored[at..at + 8]);
            u64::from_le_bytes(b)
        };
        Some(Self {
            written_ms: n(0),
            usage: Usage {
                prompt_tokens: n(1),
                completion_tokens: n(2),
                total_tokens: n(3),
            },
            body: stored.slice(HEADER..),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_survives_its_stored_form() {
        let e = Entry::new(Bytes::from_static(b"{\"id\":\"x\"}"), Usage::new(7, 3));
        assert_eq!(Entry::decode(Bytes::from(e.encode())), Some(e));
        assert_eq!(Entry::decode(Bytes::from_static(b"\x02short")), None);
        assert_eq!(Entry::decode(Bytes::new()), None);
    }
}
