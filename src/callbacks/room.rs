//! `Room`: the bound on events waiting for the callbacks; a `Ticket` holds one place until the
//! event is done with (sent, given up, or dropped) everywhere.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Places for events, shared by the request threads and the callback actor.
#[derive(Debug, Clone)]
pub struct Room {
    used: Arc<AtomicUsize>,
    capacity: usize,
}

impl Room {
    /// Room for `capacity` events at once.
    pub fn new(capacity: usize) -> Self {
        Self {
            used: Arc::new(AtomicUsize::new(0)),
            capacity,
        }
    }

    /// A place, or `None` when every place is taken.
    pub fn take(&self) -> Option<Ticket> {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.capacity).then_some(n + 1)
            })
            .ok()
            .map(|_| Ticket(self.used.clone()))
    }

    /// Places taken now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }
}

/// One place in a [`Room`], given back on drop.
#[derive(Debug)]
pub struct Ticket(Arc<AtomicUsize>);

impl Drop for Ticket {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_room_refuses_until_a_ticket_is_dropped() {
        let room = Room::new(2);
        let a = room.take().unwrap();
        let _b = room.take().unwrap();
        assert!(room.take().is_none());
        drop(a);
        assert_eq!(room.used(), 1);
        assert!(room.take().is_some());
    }
}
