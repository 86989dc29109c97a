//! Typed publishers: encode into a reused buffer (or a shared-memory chunk for large
//! messages) and put with the attachment (sequence number, send stamp, publisher id).

use crate::attachment::Attachment;
use crate::node::*;
use reflex_msgs::{encode_into, Message};
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;
use zenoh::bytes::ZBytes;
use zenoh::qos::CongestionControl;
use zenoh::shm::GarbageCollect;
use zenoh::Wait;

pub(crate) fn declare_publisher(
    session: &zenoh::Session,
    key: &str,
) -> Result<zenoh::pubsub::Publisher<'static>, NodeError> {
    session
        .declare_publisher(key.to_string())
        // Never block the publishing thread on a slow link: a full queue drops, and the
        // subscriber's sequence-gap count shows it.
        .congestion_control(CongestionControl::Drop)
        // Send at once instead of waiting to batch: latency over throughput.
        .express(true)
        .wait()
        .map_err(|e| NodeError::Declare { what: "publisher", key: key.to_string(), reason: e.to_string() })
}

/// A 16-byte publisher id: the session's zenoh id with the entity number folded in.
pub(crate) fn gid(session: &zenoh::Session, entity: u64) -> [u8; 16] {
    let mut gid = session.zid().to_le_bytes();
    for (byte, entity_byte) in gid.iter_mut().zip(entity.to_le_bytes()) {
        *byte ^= entity_byte;
    }
    gid
}

/// A typed publisher. `publish` reuses one encode buffer and, for large messages, encodes
/// straight into a shared-memory chunk.
pub struct Publisher<T: Message> {
    pub(crate) out: Outlet,
    pub(crate) buffer: Vec<u8>,
    pub(crate) shm_sent: u64,
    pub(crate) _type: PhantomData<fn(&T)>,
}

/// What the typed and raw publishers share: the zenoh publisher, the endpoint token, and the
/// attachment (sequence number, send time, publisher id) put on every message.
pub(crate) struct Outlet {
    pub(crate) inner: zenoh::pubsub::Publisher<'static>,
    pub(crate) _token: Option<zenoh::liveliness::LivelinessToken>,
    pub(crate) key: String,
    pub(crate) gid: [u8; 16],
    pub(crate) sequence: i64,
    pub(crate) shared: Arc<NodeShared>,
}

impl Outlet {
    pub(crate) fn put(&mut self, payload: ZBytes) -> Result<(), NodeError> {
        self.sequence = self.sequence.wrapping_add(1);
        let attachment =
            Attachment { sequence: self.sequence, source_timestamp_ns: self.shared.clock.now_ns(), gid: self.gid }
                .encode();
        self.inner
            .put(payload)
            .attachment(attachment)
            .wait()
            .map_err(|e| NodeError::Publish { key: self.key.clone(), reason: e.to_string() })
    }

    pub(crate) fn has_subscribers(&self) -> bool {
        self.inner.matching_status().wait().map(|status| status.matching()).unwrap_or(false)
    }
}

impl<T: Message> Publisher<T> {
    pub fn publish(&mut self, message: &T) -> Result<(), NodeError> {
        let payload = self.payload(message);
        self.out.put(payload)
    }

    pub(crate) fn payload(&mut self, message: &T) -> ZBytes {
        if let Some(shm) = &self.out.shared.shm {
            let size = cdr::calc_serialized_size(message) as usize;
            if size >= self.out.shared.shm_threshold_bytes {
                // Reclaim chunks the subscribers have released before allocating, so the pool
                // hands out recently used (cache-warm) memory instead of walking the whole
                // segment; the list of chunks in flight is short. Never blocks: on failure the
                // message takes the copying path below.
                shm.garbage_collect();
                if let Ok(mut chunk) = shm.alloc(size).with_policy::<GarbageCollect>().wait() {
                    let mut writer: &mut [u8] = &mut chunk[..];
                    if cdr::serialize_into::<_, _, _, cdr::CdrLe>(&mut writer, message, cdr::Infinite).is_ok() {
                        self.shm_sent += 1;
                        return chunk.into();
                    }
                }
            }
        }
        encode_into(message, &mut self.buffer);
        ZBytes::from(self.buffer.as_slice())
    }

    pub fn key(&self) -> &str {
        &self.out.key
    }

    /// Whether any subscriber (in this process or another) currently matches this topic.
    pub fn has_subscribers(&self) -> bool {
        self.out.has_subscribers()
    }

    /// Waits up to `timeout` for a subscriber to appear; returns whether one did.
    pub fn wait_for_subscribers(&self, timeout: Duration) -> bool {
        let start = std::time::Instant::now();
        while !self.has_subscribers() {
            if start.elapsed() >= timeout {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }

    /// Messages published so far.
    pub fn sent(&self) -> u64 {
        self.out.sequence as u64
    }

    /// Of those, messages written into shared memory.
    pub fn sent_through_shm(&self) -> u64 {
        self.shm_sent
    }
}
