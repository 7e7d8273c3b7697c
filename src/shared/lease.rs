//! Leases: a busy key far from its limits takes a few requests' worth of its quota from Redis
//! at once and admits its next requests here, without a round trip each. Every leased request
//! is counted in Redis before it is used, so limits still hold exactly across instances.
//!
//! A lease is a script call admitting up to n copies of the key's checks: n requests counted in
//! the rate windows' bucket of the current second, n parallel slots held. A copy is used only
//! within that second, so its count stays in the window at least 60 s after its request. Copies
//! not used in their second are given back (their counts taken out, their slots freed), by the
//! next request that finds them stale or by the sweeper within a second or two. The price is
//! that another instance may be refused for a moment by quota leased here and not yet used: a
//! few requests' worth, and only while the key is far from its limits.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::{now_millis, Checks, Remaining, Shared, Ticket, Verdict};

/// Copies a key's first lease takes, and the fewest any lease takes.
const MIN_LEASE: u32 = 4;

/// A key whose leases last less than this asks for twice as many copies the next time.
const LEASE_SPAN: Duration = Duration::from_millis(100);

/// How often the sweeper gives back copies left unused.
pub const SWEEP_EVERY: Duration = Duration::from_millis(500);

/// What Redis last said about a key's room under its limits, and the requests it leased.
/// Shared by a key record's clones; not part of what the record is (it compares equal always).
#[derive(Clone, Default)]
pub struct Headroom(Arc<Room>);

#[derive(Default)]
struct Room {
    /// Whether Redis last found the key far from every limit (see `Checks::ample`).
    ample: AtomicBool,
    book: Mutex<Book>,
}

/// The key's leases of the current second.
#[derive(Default)]
struct Book {
    /// The second their copies were counted in, the only one they may be used in.
    second: u64,
    /// What ending a request admitted on them does (free its slot, count its tokens).
    ticket: Ticket,
    /// What giving an unused copy back undoes.
    giveback: Ticket,
    /// The leases with copies left, oldest first (a new one arrives before the last runs out).
    leases: VecDeque<Leased>,
    /// The key's requests and tokens left once every copy leased is used.
    remaining: Remaining,
    /// Copies the next lease asks for.
    size: u32,
    /// When the newest lease arrived.
    arrived: Option<Instant>,
    /// Whether a lease is on its way.
    leasing: bool,
    /// Whether the sweeper knows this key.
    swept: bool,
}

/// One lease's copies.
struct Leased {
    /// Its slots' prefix: copy c holds `<slot>:c`, from 1.
    slot: String,
    /// The next copy to use, and the number of copies.
    next: u32,
    end: u32,
}

/// A request admitted on a lease: what ending it does, its slot, and the key's room left.
pub struct Credit {
    /// What ending the request must undo or add.
    pub ticket: Ticket,
    /// Its parallel-request slot.
    pub slot: String,
    /// The key's requests and tokens left, for the headers.
    pub remaining: Remaining,
}

impl Headroom {
    /// Whether Redis last found the key far from all its limits.
    pub fn ample(&self) -> bool {
        self.0.ample.load(Ordering::Relaxed)
    }

    /// Notes what Redis said.
    pub fn set(&self, ample: bool) {
        if self.ample() != ample {
            self.0.ample.store(ample, Ordering::Relaxed);
        }
    }

    fn book(&self) -> MutexGuard<'_, Book> {
        self.0.book.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes one leased request if a lease has one left in this second; and when the leases
    /// run low while the key is far from its limits, the size of a new lease to start now (at
    /// most `most`; `Headroom::lease` starts it).
    pub fn take(&self, shared: &Shared, most: u32) -> (Option<Credit>, Option<u32>) {
        let now = now_millis() / 1000;
        let mut book = self.book();
        if book.second != now {
            book.give_back(shared);
        }
        let credit = book.next_copy();
        let left: u32 = book.leases.iter().map(|l| l.end - l.next).sum();
        let want = if !book.leasing && self.ample() && most >= 2 && left <= book.size / 2 {
            book.leasing = true;
            book.size = book.size.clamp(MIN_LEASE, most.max(MIN_LEASE)).min(most);
            Some(book.size)
        } else {
            None
        };
        (credit, want)
    }

    /// Leases `copies` copies of `checks` (the key's own rate and parallel limits only) from
    /// Redis, without waiting: the lease is installed when Redis answers.
    pub fn lease(&self, shared: &Shared, checks: Checks, copies: u32) {
        let giveback = checks.giveback();
        let slot = shared.slot_id();
        let Ok(asked) = shared.ask_copies(checks, slot.clone(), copies) else {
            self.book().leasing = false;
            return;
        };
        let (headroom, shared) = (self.clone(), shared.clone());
        actix_rt::spawn(async move {
            let verdict = asked.verdict().await;
            headroom.install(&shared, verdict, slot, giveback);
        });
    }

    fn install(
        &self,
        shared: &Shared,
        verdict: Result<Verdict, super::Unavailable>,
        slot: String,
        giveback: Ticket,
    ) {
        let mut book = self.book();
        book.leasing = false;
        let Ok(Verdict::Admitted {
            key,
            remaining,
            ample,
            copies,
            ..
        }) = verdict
        else {
            // Refused, or Redis did not answer: requests go back to being admitted one by one.
            self.set(false);
            return;
        };
        self.set(ample);
        let second = key.second();
        if book.second != second {
            book.give_back(shared);
        }
        // A key whose leases last less than `LEASE_SPAN` asks for more each time.
        let now = Instant::now();
        if book.arrived.is_some_and(|at| now - at < LEASE_SPAN) {
            book.size = (book.size * 2).min(super::limits::MAX_LEASE);
        }
        book.arrived = Some(now);
        book.second = second;
        book.ticket = key;
        book.giveback = giveback.in_second(second);
        // Redis counted every copy: the room left once they are all used.
        book.remaining = remaining.plus(1 - i64::from(copies));
        book.leases.push_back(Leased {
            slot,
            next: 0,
            end: copies,
        });
        let known = std::mem::replace(&mut book.swept, true);
        drop(book);
        // (The book's lock is let go first: the sweeper takes the list's, then each book's.)
        if !known {
            shared.sweep(self.clone());
        }
    }

    /// Gives back the lease's copies left unused past their second. Whether the key still has
    /// a lease to watch (unused copies, or one on its way); if not, the sweeper forgets it.
    pub fn sweep(&self, shared: &Shared) -> bool {
        let now = now_millis() / 1000;
        let mut book = self.book();
        if book.second != now {
            book.give_back(shared);
        }
        let watched = book.leasing || !book.leases.is_empty();
        book.swept = watched;
        watched
    }
}

impl Book {
    /// The next unused copy, as a request admitted on it.
    fn next_copy(&mut self) -> Option<Credit> {
        let slot = loop {
            let lease = self.leases.front_mut()?;
            if lease.next < lease.end {
                lease.next += 1;
                break format!("{}:{}", lease.slot, lease.next);
            }
            self.leases.pop_front();
        };
        let unused: u32 = self.leases.iter().map(|l| l.end - l.next).sum();
        Some(Credit {
            ticket: self.ticket.clone(),
            slot,
            remaining: self.remaining.plus(i64::from(unused)),
        })
    }

    /// Gives back the copies not used (their requests and slots, in Redis); a key that left
    /// more than half a lease unused asks for less next time.
    fn give_back(&mut self, shared: &Shared) {
        let mut unused = 0;
        for lease in self.leases.drain(..) {
            for copy in lease.next..lease.end {
                let slot = format!("{}:{}", lease.slot, copy + 1);
                shared.settle(self.giveback.clone(), &slot, 0, 0.0);
            }
            unused += lease.end - lease.next;
        }
        if unused > self.size / 2 {
            self.size = (self.size / 2).max(MIN_LEASE);
        }
    }
}

impl Remaining {
    /// The room left with `n` more requests taken (`n` < 0) or given back.
    fn plus(self, n: i64) -> Remaining {
        let moved = |left: u64| left.saturating_add_signed(n);
        Remaining {
            requests: self.requests.map(|(limit, left)| (limit, moved(left))),
            tokens: self.tokens,
        }
    }
}

impl fmt::Debug for Headroom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Headroom")
            .field("ample", &self.ample())
            .finish_non_exhaustive()
    }
}

impl PartialEq for Headroom {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
