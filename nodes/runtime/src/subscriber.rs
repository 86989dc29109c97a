//! Typed subscribers: zenoh's callback hands each sample to a ring buffer (never blocking),
//! the node's thread decodes it in place with its arrival time and age.

use crate::attachment::Attachment;
use crate::clock::Clock;
use crate::events::*;
use crate::node::*;
use crate::queue::{OverflowPolicy, QueueReader, QueueWriter};
use crate::timing::InputStats;
use crate::watchdog::*;
use reflex_msgs::builtin_interfaces::Time;
use reflex_msgs::reflex_msgs::MonitorEvent;
use reflex_msgs::std_msgs::Header;
use reflex_msgs::{decode_into, DecodeError, Message, Stamped};
use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use zenoh::bytes::ZBytes;
use zenoh::sample::Sample;

/// Options of one subscription.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InputOptions {
    /// Messages the queue holds before the overflow policy drops.
    pub capacity: usize,
    pub policy: OverflowPolicy,
    /// Maximum gap between two messages before a deadline breach is raised; `None`: unwatched.
    /// The watch starts when the subscription is declared, so a topic that never starts
    /// publishing is a breach too.
    pub deadline_ms: Option<f64>,
}

impl Default for InputOptions {
    fn default() -> Self {
        Self { capacity: 8, policy: OverflowPolicy::DropOldest, deadline_ms: None }
    }
}

impl InputOptions {
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }
    pub fn policy(mut self, policy: OverflowPolicy) -> Self {
        self.policy = policy;
        self
    }
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline_ms = Some(deadline.as_secs_f64() * 1e3);
        self
    }
}

/// What the network callback hands to the processing thread.
pub(crate) struct Incoming {
    pub(crate) sample: Sample,
    /// Bytes an injected fault put in place of the payload (a frozen or corrupted copy).
    pub(crate) replaced: Option<Vec<u8>>,
    /// Arrival on the duration clock (deadlines, queueing, freshness) ...
    pub(crate) arrival_mono_ns: i64,
    /// ... and on the stamp clock (transit from the publisher's send time).
    pub(crate) arrival_wall_ns: i64,
    /// Decoded once, in the callback (the sequence check needs it there).
    pub(crate) attachment: Option<Attachment>,
}

/// The queue's writing half, callable from zenoh's `Fn` callback, and the per-publisher
/// sequence check that counts messages lost before they reached us.
///
/// zenoh runs a subscriber's callback on its receive tasks: serially for one link, but calls
/// from two links may overlap. A mutex serializes them; the guarded section is one ring push,
/// which never waits for the reader. (A spin flag did this before: under real-time priorities a
/// spinner could starve the holder on its core, and a panic while holding it left the input
/// dead; a poisoned mutex is simply taken over.)
pub(crate) struct CallbackWriter {
    pub(crate) state: Mutex<CallbackState>,
    /// Messages missing from a publisher's sequence (read by the subscriber for its stats).
    pub(crate) lost: Arc<AtomicU64>,
}

pub(crate) struct CallbackState {
    pub(crate) writer: QueueWriter<Incoming>,
    /// Last (publisher id, sequence number) seen; only one publisher's stream is checked at a
    /// time, interleaved publishers restart the check.
    pub(crate) last: Option<([u8; 16], i64)>,
}

impl CallbackWriter {
    pub(crate) fn new(writer: QueueWriter<Incoming>, lost: Arc<AtomicU64>) -> Self {
        Self { state: Mutex::new(CallbackState { writer, last: None }), lost }
    }

    pub(crate) fn push(&self, item: Incoming) {
        let publisher = item.attachment.map(|a| (a.gid, a.sequence));
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let (Some((gid, sequence)), Some((last_gid, last_sequence))) = (publisher, state.last) {
            // Sequences come from the network: no arithmetic on them may overflow.
            // A jump beyond MAX_COUNTED_GAP is a lie or a reset, not that many lost messages.
            let gap = sequence.saturating_sub(last_sequence).saturating_sub(1).min(MAX_COUNTED_GAP);
            if gid == last_gid && gap > 0 {
                // Relaxed: a counter read for reporting only. Saturating: fetch_add would wrap.
                let _ = self
                    .lost
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| Some(n.saturating_add(gap as u64)));
            }
        }
        if publisher.is_some() {
            state.last = publisher;
        }
        state.writer.push(item);
    }
}

/// A message handed out by [`Subscriber::recv`] (`M` = `&T`) or [`Subscriber::recv_view`]
/// (`M` = a borrowed view), with its timing.
pub struct Received<M> {
    pub message: M,
    /// Now minus `header.stamp` (capture time) on the stamp clock: the end-to-end age so far.
    /// `None` when the type has no header or the stamp is zero.
    pub age_ns: Option<i64>,
    /// False when the wall clock stepped within [`STEP_SETTLE`]: the stamp may be from before
    /// the step, and its age means nothing.
    pub age_trusted: bool,
    /// When the message arrived at this node, on the duration clock (monotonic or sim).
    pub arrival_mono_ns: i64,
    /// Arrival at this node minus the publisher's send time: the transport hop.
    pub transit_ns: Option<i64>,
    pub sequence: Option<i64>,
    /// The publisher's GID (from the attachment): which publisher the sequence belongs to.
    pub publisher: Option<[u8; 16]>,
    /// The publisher's clock when it published (from the attachment).
    pub source_timestamp_ns: Option<i64>,
    /// Whether the payload came through shared memory rather than a copy.
    pub shared_memory: bool,
}

impl<M> Received<M> {
    /// The age since capture when it can be trusted (a stamp, and no recent clock step).
    pub fn trusted_age_ns(&self) -> Option<i64> {
        self.age_ns.filter(|_| self.age_trusted)
    }
}

/// A typed subscriber. `recv` decodes into one message it owns and reuses.
pub struct Subscriber<T: Message> {
    pub(crate) _inner: zenoh::pubsub::Subscriber<()>,
    pub(crate) _token: Option<zenoh::liveliness::LivelinessToken>,
    pub(crate) key: String,
    pub(crate) topic: String,
    pub(crate) reader: QueueReader<Incoming>,
    pub(crate) message: T,
    /// The sample a view from `recv_view` borrows from.
    pub(crate) current: Option<Incoming>,
    pub(crate) gathered: Vec<u8>,
    pub(crate) stats: InputStats,
    pub(crate) reported_drops: u64,
    /// Drops that are trouble (see `report_drops`), last seen.
    pub(crate) troubling_drops: u64,
    pub(crate) policy: OverflowPolicy,
    pub(crate) decode_reports: RateLimited,
    /// Sequence gaps counted by the callback.
    pub(crate) lost: Arc<AtomicU64>,
    pub(crate) shared: Arc<NodeShared>,
    pub(crate) watch: Arc<InputWatch>,
    /// Injected faults of this input, and a message an injected delay holds back.
    pub(crate) fault: Arc<crate::fault::InputFault>,
    pub(crate) held: Option<Incoming>,
}

impl<T: Message> Subscriber<T> {
    /// The next message, decoded, or `None` when there is none to take now. Messages that
    /// fail to decode are counted, reported (at most once a second, with the count) and
    /// skipped; after [`MAX_SKIPPED_PER_RECV`] of them in one call it returns `None`, so a
    /// flood of garbage cannot hold the caller here.
    pub fn recv(&mut self) -> Option<Received<&T>> {
        for _ in 0..MAX_SKIPPED_PER_RECV {
            self.report_drops();
            let incoming = self.next_incoming()?;
            let payload = incoming.sample.payload();
            let shared_memory = payload.as_shm().is_some();
            let result = match &incoming.replaced {
                Some(bytes) => decode_into(bytes, &mut self.message),
                None => decode_payload(payload, &mut self.message),
            };
            if let Err(error) = result {
                self.decode_failed(&error);
                continue;
            }
            self.watch.fresh(incoming.arrival_mono_ns);
            let stamp = self.message.header().map(|h: &Header| h.stamp);
            return Some(received(&self.message, &incoming, stamp, shared_memory, &self.shared.clock, &mut self.stats));
        }
        None
    }

    /// The next message decoded as a borrowed view `V` (e.g. `sensor_msgs::ImageView`) that
    /// reads the payload where it lies: for a shared-memory payload, in the shared segment, so
    /// a frame is never copied. The payload stays held until the next call. A message that
    /// fails to decode is counted, reported, and returned as `Err`.
    pub fn recv_view<'s, V>(&'s mut self) -> Option<Result<Received<V>, DecodeError>>
    where
        V: serde::Deserialize<'s> + Stamped,
    {
        self.report_drops();
        let incoming = self.next_incoming()?;
        // Split borrows: the view borrows `current`/`gathered` while stats are updated.
        let Self { current, gathered, stats, shared, topic, watch, decode_reports, .. } = self;
        let incoming: &'s Incoming = current.insert(incoming);
        let payload = incoming.sample.payload();
        let shared_memory = payload.as_shm().is_some();
        let bytes: &'s [u8] = match (&incoming.replaced, payload.to_bytes()) {
            (Some(replaced), _) => replaced.as_slice(),
            (None, Cow::Borrowed(bytes)) => bytes,
            (None, Cow::Owned(bytes)) => {
                // A fragmented payload (large message over a network link) is gathered once.
                *gathered = bytes;
                gathered.as_slice()
            }
        };
        match reflex_msgs::decode::<V>(bytes) {
            Ok(view) => {
                watch.fresh(incoming.arrival_mono_ns);
                let stamp = Some(view.stamp());
                Some(Ok(received(view, incoming, stamp, shared_memory, &shared.clock, stats)))
            }
            Err(error) => {
                decode_failed(shared, watch, decode_reports, stats, topic, &error);
                Some(Err(error))
            }
        }
    }

    pub(crate) fn decode_failed(&mut self, error: &DecodeError) {
        decode_failed(&self.shared, &self.watch, &mut self.decode_reports, &mut self.stats, &self.topic, error);
    }

    /// Marks a message this node took but refused (a value out of range, a stamp from the
    /// future): counted with the input's troubles, so the node's health shows it.
    pub fn reject(&mut self) {
        self.watch.trouble(Trouble::Rejected, self.shared.clock.mono_ns());
    }

    /// The next message the node may take: the queue's next, unless an injected delay still
    /// holds it back (the node's loop polls again; `recv` returns `None` meanwhile).
    pub(crate) fn next_incoming(&mut self) -> Option<Incoming> {
        let incoming = match self.held.take() {
            Some(held) => held,
            None => self.reader.pop()?,
        };
        let delay_ns = self.fault.delay().as_nanos() as i64;
        if delay_ns > 0 && incoming.arrival_mono_ns.saturating_add(delay_ns) > self.shared.clock.mono_ns() {
            self.held = Some(incoming);
            return None;
        }
        Some(incoming)
    }

    /// Reports messages lost on this input: dropped by the queue's overflow policy, or missing
    /// from the publisher's sequence (lost before arrival, e.g. a congested link). One event per
    /// doubling of the count, not one per message.
    pub(crate) fn report_drops(&mut self) {
        self.stats.dropped = self.reader.dropped();
        self.stats.lost_in_transport = self.lost.load(Ordering::Relaxed);
        // Counts from the network: saturating, never a panic or a wrap that ends the reports.
        let lost = self.stats.dropped.saturating_add(self.stats.lost_in_transport);
        // Drops by a latest-wins queue are its policy, not trouble; messages lost before
        // arrival, or a backlog that overflows, are.
        let troubling = self.stats.lost_in_transport.saturating_add(if self.policy == OverflowPolicy::DropNewest {
            self.stats.dropped
        } else {
            0
        });
        if troubling > self.troubling_drops {
            self.watch.trouble(Trouble::Dropped, self.shared.clock.mono_ns());
            self.troubling_drops = troubling;
        }
        if lost >= self.reported_drops.saturating_mul(2).max(self.reported_drops.saturating_add(1)) {
            let detail = format!(
                "{} dropped by the input queue, {} lost before arrival",
                self.stats.dropped, self.stats.lost_in_transport
            );
            self.shared.report(MonitorEvent::KIND_QUEUE_DROP, &self.topic, lost as f64, 0.0, &detail);
            self.reported_drops = lost;
        }
    }

    /// Messages waiting in the queue.
    pub fn pending(&self) -> usize {
        self.reader.len()
    }

    pub fn stats(&self) -> &InputStats {
        &self.stats
    }

    /// Messages dropped by the queue's overflow policy.
    pub fn dropped(&self) -> u64 {
        self.reader.dropped()
    }

    pub fn key(&self) -> &str {
        &self.key
    }
}

/// Counts an undecodable message and reports it, at most once a period with the count.
pub(crate) fn decode_failed(
    shared: &NodeShared,
    watch: &InputWatch,
    reports: &mut RateLimited,
    stats: &mut InputStats,
    topic: &str,
    error: &DecodeError,
) {
    stats.decode_errors += 1;
    let now = shared.clock.mono_ns();
    watch.trouble(Trouble::Undecodable, now);
    if let Some(count) = reports.count(monotonic_now()) {
        // Formatting allocates, but only on this error path, and at most once a second.
        let detail = format!("{error} ({count} so far)");
        shared.report(MonitorEvent::KIND_DECODE_ERROR, topic, count as f64, 0.0, &detail);
    }
}

/// Timing bookkeeping shared by `recv` and `recv_view`.
pub(crate) fn received<M>(
    message: M,
    incoming: &Incoming,
    stamp: Option<Time>,
    shared_memory: bool,
    clock: &Clock,
    stats: &mut InputStats,
) -> Received<M> {
    let (now, now_mono) = clock.now_and_mono_ns();
    let attachment = incoming.attachment;
    let transit_ns = attachment.map(|a| incoming.arrival_wall_ns.saturating_sub(a.source_timestamp_ns));
    let age_ns = stamp.filter(|s| !s.is_zero()).map(|s| now.saturating_sub(s.as_nanos()));
    let age_trusted = !clock.stepped_within(STEP_SETTLE);
    stats.record(
        age_ns.filter(|_| age_trusted),
        transit_ns,
        now_mono.saturating_sub(incoming.arrival_mono_ns),
        shared_memory,
    );
    Received {
        message,
        age_ns,
        age_trusted,
        arrival_mono_ns: incoming.arrival_mono_ns,
        transit_ns,
        sequence: attachment.map(|a| a.sequence),
        publisher: attachment.map(|a| a.gid),
        source_timestamp_ns: attachment.map(|a| a.source_timestamp_ns),
        shared_memory,
    }
}

pub(crate) fn decode_payload<T: Message>(payload: &ZBytes, place: &mut T) -> Result<(), DecodeError> {
    // Contiguous payloads (shared memory, and anything that arrived in one piece) are read in
    // place; a fragmented one is gathered into one buffer first.
    decode_into(&payload.to_bytes(), place)
}
