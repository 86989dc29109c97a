//! The bounded hand-off from the network thread to a node's processing thread.
//!
//! Built on an `rtrb` single-producer single-consumer ring. The writer (zenoh's receive
//! callback) never blocks and never waits for the reader; when the ring is full the input's
//! overflow policy decides what is lost, and every loss is counted:
//!
//! - [`OverflowPolicy::DropNewest`]: the arriving message is dropped; the backlog is kept.
//! - [`OverflowPolicy::DropOldest`]: the newest message always gets through. On overflow it
//!   goes to a one-slot *mailbox* beside the ring (replacing, and counting, any older message
//!   there); the reader, on finding the mailbox full, drops the stale backlog in the ring and
//!   takes the mailbox. With capacity 1 this is exactly "latest wins". Everything dropped is
//!   older than what is delivered.
//!
//! The mailbox is an `AtomicPtr` to a boxed slot. Boxes travel back from reader to writer
//! through a second small ring; the three boxes needed are made with the queue, so neither side
//! allocates afterwards (`tests/no_alloc.rs` counts).

use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverflowPolicy {
    /// Keep the newest message (latest wins): the default for sensor data.
    #[default]
    DropOldest,
    /// Keep the backlog, drop what arrives while full.
    DropNewest,
}

type Slot<T> = Box<Option<T>>;

struct Shared<T> {
    /// Newest overflowed message (DropOldest only); null when empty.
    mailbox: AtomicPtr<Option<T>>,
    dropped: AtomicU64,
}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        let slot = *self.mailbox.get_mut();
        if !slot.is_null() {
            // SAFETY: both halves are gone (we are in the last Arc's drop), so nobody else can
            // hold or swap this pointer; it came from Box::into_raw in `QueueWriter::push`.
            drop(unsafe { Box::from_raw(slot) });
        }
    }
}

/// The writing half, owned by the network callback.
pub struct QueueWriter<T> {
    ring: rtrb::Producer<T>,
    returned_slots: rtrb::Consumer<Slot<T>>,
    spare_slot: Option<Slot<T>>,
    policy: OverflowPolicy,
    shared: Arc<Shared<T>>,
}

/// The reading half, owned by the processing thread.
pub struct QueueReader<T> {
    ring: rtrb::Consumer<T>,
    returned_slots: rtrb::Producer<Slot<T>>,
    shared: Arc<Shared<T>>,
}

/// A queue holding at most `capacity` messages (plus the mailbox for DropOldest).
pub fn input_queue<T: Send>(capacity: usize, policy: OverflowPolicy) -> (QueueWriter<T>, QueueReader<T>) {
    let (producer, consumer) = rtrb::RingBuffer::new(capacity.max(1));
    // Three mailbox boxes circulate (one in the mailbox, one spare with the writer, one on its
    // way back); all are made here, so neither side ever allocates afterwards.
    let (mut slot_producer, slot_consumer) = rtrb::RingBuffer::new(2);
    let spare_slot: Option<Slot<T>> = (policy == OverflowPolicy::DropOldest).then(|| {
        for _ in 0..2 {
            let _ = slot_producer.push(Box::new(None));
        }
        Box::new(None)
    });
    let shared = Arc::new(Shared { mailbox: AtomicPtr::new(std::ptr::null_mut()), dropped: AtomicU64::new(0) });
    let writer =
        QueueWriter { ring: producer, returned_slots: slot_consumer, spare_slot, policy, shared: shared.clone() };
    let reader = QueueReader { ring: consumer, returned_slots: slot_producer, shared };
    (writer, reader)
}

impl<T: Send> QueueWriter<T> {
    /// Hands `item` to the reader without blocking. Returns false if something was dropped.
    pub fn push(&mut self, item: T) -> bool {
        match self.policy {
            OverflowPolicy::DropNewest => match self.ring.push(item) {
                Ok(()) => true,
                Err(rtrb::PushError::Full(_dropped)) => {
                    // Relaxed: a statistic, read for reporting only.
                    self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                    false
                }
            },
            OverflowPolicy::DropOldest => {
                // Acquire pairs with the reader's AcqRel swap: once we see the mailbox empty, the
                // reader has finished draining the ring, so ring order stays oldest-first.
                let mailbox_in_use = !self.shared.mailbox.load(Ordering::Acquire).is_null();
                if !mailbox_in_use && !self.ring.is_full() {
                    // Single producer: the ring can only get emptier until we push.
                    return self.ring.push(item).is_ok();
                }
                self.put_in_mailbox(item)
            }
        }
    }

    fn put_in_mailbox(&mut self, item: T) -> bool {
        let mut slot =
            self.spare_slot.take().or_else(|| self.returned_slots.pop().ok()).unwrap_or_else(|| Box::new(None)); // warm-up only: boxes are recycled after this
        *slot = Some(item);
        // AcqRel: Release publishes the slot's contents to the reader; Acquire makes the contents
        // of a slot we take back (an older message) ours to drop.
        let previous = self.shared.mailbox.swap(Box::into_raw(slot), Ordering::AcqRel);
        if previous.is_null() {
            return true;
        }
        // SAFETY: a non-null mailbox pointer always comes from Box::into_raw above, and the swap
        // transferred its ownership to us; the reader can no longer reach it.
        let mut previous = unsafe { Box::from_raw(previous) };
        let replaced = previous.take();
        self.spare_slot = Some(previous);
        self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        drop(replaced);
        false
    }
}

impl<T: Send> QueueReader<T> {
    /// The next message, oldest first; `None` when nothing is waiting.
    pub fn pop(&mut self) -> Option<T> {
        // Acquire: see the slot contents the writer released with its swap.
        if !self.shared.mailbox.load(Ordering::Acquire).is_null() {
            // The writer does not push into the ring while the mailbox is full, so everything
            // in the ring is older than the mailbox message: drop the stale backlog.
            let stale = self.ring.slots();
            if stale > 0 {
                if let Ok(chunk) = self.ring.read_chunk(stale) {
                    chunk.commit_all();
                }
                self.shared.dropped.fetch_add(stale as u64, Ordering::Relaxed);
            }
            let slot = self.shared.mailbox.swap(std::ptr::null_mut(), Ordering::AcqRel);
            if !slot.is_null() {
                // SAFETY: as in `put_in_mailbox`, the swap gave us sole ownership of the box.
                let mut slot = unsafe { Box::from_raw(slot) };
                let item = slot.take();
                // If the return ring is full the box is freed; never blocks.
                let _ = self.returned_slots.push(slot);
                return item;
            }
        }
        self.ring.pop().ok()
    }

    /// Messages waiting (the mailbox counts as one).
    pub fn len(&self) -> usize {
        self.ring.slots() + usize::from(!self.shared.mailbox.load(Ordering::Relaxed).is_null())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Messages dropped so far by the overflow policy.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_newest_keeps_the_backlog() {
        let (mut writer, mut reader) = input_queue(3, OverflowPolicy::DropNewest);
        for i in 0..5 {
            writer.push(i);
        }
        assert_eq!(reader.dropped(), 2);
        assert_eq!(std::iter::from_fn(|| reader.pop()).collect::<Vec<_>>(), [0, 1, 2]);
    }

    #[test]
    fn drop_oldest_with_capacity_one_is_latest_wins() {
        let (mut writer, mut reader) = input_queue(1, OverflowPolicy::DropOldest);
        for i in 0..10 {
            writer.push(i);
        }
        assert_eq!(reader.len(), 2);
        assert_eq!(reader.pop(), Some(9), "the newest message wins");
        assert_eq!(reader.pop(), None);
        assert_eq!(reader.dropped(), 9);
        writer.push(10);
        writer.push(11);
        assert_eq!(reader.pop(), Some(11));
        assert_eq!(reader.dropped(), 10);
    }

    #[test]
    fn drop_oldest_without_overflow_delivers_everything_in_order() {
        let (mut writer, mut reader) = input_queue(4, OverflowPolicy::DropOldest);
        for round in 0..100 {
            for i in 0..4 {
                writer.push(round * 4 + i);
            }
            for i in 0..4 {
                assert_eq!(reader.pop(), Some(round * 4 + i));
            }
        }
        assert_eq!(reader.dropped(), 0);
    }

    #[test]
    fn slots_are_recycled_and_the_mailbox_freed() {
        // Drop-counting payload: every message is either delivered or dropped, none leaks.
        let live = Arc::new(AtomicU64::new(0));
        struct Counted(Arc<AtomicU64>);
        impl Drop for Counted {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        {
            let (mut writer, mut reader) = input_queue(2, OverflowPolicy::DropOldest);
            for _ in 0..1000 {
                live.fetch_add(1, Ordering::SeqCst);
                writer.push(Counted(live.clone()));
                if live.load(Ordering::SeqCst) > 5 {
                    drop(reader.pop());
                }
            }
            assert!(live.load(Ordering::SeqCst) <= 3, "ring (2) + mailbox (1) at most");
        }
        assert_eq!(live.load(Ordering::SeqCst), 0, "queue dropped with messages inside frees them");
    }

    /// Two real threads: the writer never waits, the reader sees strictly increasing values,
    /// and delivered + dropped == sent for both policies.
    #[test]
    fn concurrent_writer_and_reader_account_for_every_message() {
        for policy in [OverflowPolicy::DropOldest, OverflowPolicy::DropNewest] {
            for capacity in [1, 3, 64] {
                const SENT: u64 = 200_000;
                let (mut writer, mut reader) = input_queue(capacity, policy);
                let producer = std::thread::spawn(move || {
                    for i in 0..SENT {
                        writer.push(i);
                    }
                });
                let mut delivered = 0u64;
                let mut last = None;
                loop {
                    match reader.pop() {
                        Some(value) => {
                            assert!(last.is_none_or(|l| value > l), "{policy:?}: {value} after {last:?}");
                            last = Some(value);
                            delivered += 1;
                        }
                        None if producer.is_finished() && reader.is_empty() => break,
                        None => std::hint::spin_loop(),
                    }
                }
                producer.join().unwrap();
                assert_eq!(delivered + reader.dropped(), SENT, "{policy:?} capacity {capacity}");
                if policy == OverflowPolicy::DropOldest {
                    assert_eq!(last, Some(SENT - 1), "the newest message is never lost");
                }
            }
        }
    }
}
