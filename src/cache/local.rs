//! `LocalStore`: cached replies in this process's memory, bounded in entries and in bytes,
//! expiring by TTL; the oldest entries go first when it is full. The lock is held only for a
//! map operation, never across an await.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::entry::Entry;

/// The most bytes of reply bodies kept at once, whatever `max_size_in_memory` says.
pub const MAX_TOTAL_BYTES: usize = 256 * 1024 * 1024;

struct Slot {
    entry: Entry,
    expires: Instant,
    /// Which insertion this is, so a stale place in `order` is recognised.
    seq: u64,
}

#[derive(Default)]
struct Inner {
    map: HashMap<Arc<str>, Slot>,
    /// Keys in insertion order, oldest first; places whose `seq` no longer matches are stale.
    order: VecDeque<(Arc<str>, u64)>,
    bytes: usize,
    seq: u64,
}

impl Inner {
    fn remove(&mut self, key: &str) {
        if let Some(slot) = self.map.remove(key) {
            self.bytes -= slot.entry.body.len();
        }
    }

    /// Drops the oldest live entry; false when there is none.
    fn evict_oldest(&mut self) -> bool {
        while let Some((key, seq)) = self.order.pop_front() {
            if self.map.get(&key).is_some_and(|s| s.seq == seq) {
                self.remove(&key);
                return true;
            }
        }
        false
    }

    /// Drops expired entries from the old end of the queue.
    fn drop_expired_front(&mut self, now: Instant) {
        while let Some((key, seq)) = self.order.front() {
            match self.map.get(key) {
                Some(s) if s.seq == *seq && s.expires > now => return,
                Some(s) if s.seq == *seq => {
                    let key = key.clone();
                    self.order.pop_front();
                    self.remove(&key);
                }
                _ => {
                    self.order.pop_front();
                }
            }
        }
    }
}

/// A bounded in-memory store.
pub struct LocalStore {
    inner: Mutex<Inner>,
    max_entries: usize,
    max_bytes: usize,
}

impl LocalStore {
    /// A store keeping at most `max_entries` entries and `max_bytes` bytes of bodies.
    pub fn new(max_entries: usize, max_bytes: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            max_entries: max_entries.max(1),
            max_bytes,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves a consistent map (each step is whole): go on.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The entry under `key`, unless expired (then it is dropped) or older than `max_age`.
    pub fn get(&self, key: &str, max_age: Option<Duration>, now: Instant) -> Option<Entry> {
        let mut inner = self.lock();
        let slot = inner.map.get(key)?;
        if slot.expires <= now {
            inner.remove(key);
            return None;
        }
        if let Some(max) = max_age {
            if slot.entry.age_ms(super::entry::now_ms()) > max.as_millis() as u64 {
                return None;
            }
        }
        Some(slot.entry.clone())
    }

    /// Stores `entry` under `key` for `ttl`, making room by dropping expired, then oldest,
    /// entries. An entry bigger than the whole byte budget is not stored.
    pub fn put(&self, key: Arc<str>, entry: Entry, ttl: Duration, now: Instant) {
        let size = entry.body.len();
        if size > self.max_bytes {
            return;
        }
        let mut inner = self.lock();
        inner.remove(&key);
        inner.drop_expired_front(now);
        while inner.map.len() >= self.max_entries || inner.bytes + size > self.max_bytes {
            if !inner.evict_oldest() {
                break;
            }
        }
        inner.seq += 1;
        let seq = inner.seq;
        inner.bytes += size;
        inner.order.push_back((key.clone(), seq));
        inner.map.insert(
            key,
            Slot {
                entry,
                expires: now + ttl,
                seq,
            },
        );
        // Keys rewritten again and again leave stale places behind: keep the queue in bounds.
        if inner.order.len() > 2 * self.max_entries + 16 {
            let Inner { map, order, .. } = &mut *inner;
            order.retain(|(k, seq)| map.get(k).is_some_and(|s| s.seq == *seq));
        }
    }

    /// Entries held now (expired ones not yet dropped included).
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of bodies held now.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::Usage;
    use bytes::Bytes;

    fn entry(body: &'static str) -> Entry {
        Entry::new(Bytes::from_static(body.as_bytes()), Usage::default())
    }

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn a_full_store_drops_its_oldest_entry() {
        let s = LocalStore::new(2, MAX_TOTAL_BYTES);
        let now = Instant::now();
        s.put("a".into(), entry("1"), MIN, now);
        s.put("b".into(), entry("2"), MIN, now);
        s.put("c".into(), entry("3"), MIN, now);
        assert_eq!(s.len(), 2);
        assert!(s.get("a", None, now).is_none());
        assert_eq!(s.get("c", None, now).unwrap().body, "3");
    }

    #[test]
    fn entries_expire_and_expired_ones_make_room_first() {
        let s = LocalStore::new(2, MAX_TOTAL_BYTES);
        let now = Instant::now();
        s.put("short".into(), entry("1"), Duration::from_secs(1), now);
        s.put("long".into(), entry("2"), MIN, now);
        let later = now + Duration::from_secs(2);
        assert!(s.get("short", None, later).is_none());
        s.put("new".into(), entry("3"), MIN, later);
        assert!(s.get("long", None, later).is_some());
        assert!(s.get("new", None, later).is_some());
    }

    #[test]
    fn the_byte_budget_bounds_the_store() {
        let s = LocalStore::new(100, 10);
        let now = Instant::now();
        s.put("a".into(), entry("12345"), MIN, now);
        s.put("b".into(), entry("12345"), MIN, now);
        s.put("c".into(), entry("123"), MIN, now);
        assert!(s.bytes() <= 10);
        assert!(s.get("a", None, now).is_none());
        s.put("huge".into(), entry("12345678901"), MIN, now);
        assert!(s.get("huge", None, now).is_none());
    }

    #[test]
    fn rewriting_one_key_keeps_the_queue_bounded() {
        let s = LocalStore::new(4, MAX_TOTAL_BYTES);
        let now = Instant::now();
        for _ in 0..1000 {
            s.put("same".into(), entry("x"), MIN, now);
        }
        assert_eq!(s.len(), 1);
        assert!(s.lock().order.len() <= 2 * 4 + 16);
        assert_eq!(s.bytes(), 1);
    }

    #[test]
    fn max_age_refuses_an_old_entry_without_dropping_it() {
        let s = LocalStore::new(4, MAX_TOTAL_BYTES);
        let now = Instant::now();
        let mut old = entry("x");
        old.written_ms -= 5_000;
        s.put("k".into(), old, MIN, now);
        assert!(s.get("k", Some(Duration::from_secs(1)), now).is_none());
        assert!(s.get("k", Some(Duration::from_secs(10)), now).is_some());
        assert!(s.get("k", None, now).is_some());
    }
}
