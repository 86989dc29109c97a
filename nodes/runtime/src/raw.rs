//! Already-encoded CDR, for the recorder and replay: the same keys, attachments, shared memory
//! and endpoint tokens as the typed publishers and subscribers, without decoding.

use crate::attachment::Attachment;
use crate::keys::EndpointKind;
use crate::node::*;
use crate::publisher::*;
use zenoh::bytes::ZBytes;
use zenoh::sample::SampleKind;
use zenoh::shm::GarbageCollect;
use zenoh::Wait;

/// Publishes CDR bytes the caller vouches are a message of the type it was declared with.
pub struct RawPublisher {
    pub(crate) out: Outlet,
}

/// One received message: its CDR bytes, the publisher's attachment and the arrival time.
pub struct RawSample<'a> {
    pub key: &'a str,
    pub payload: &'a [u8],
    pub attachment: Option<Attachment>,
    /// Arrival on the stamp clock (a recording's log time).
    pub arrival_ns: i64,
}

/// Keeps a raw subscription alive; dropping it unsubscribes.
pub struct RawSubscriber {
    pub(crate) _inner: zenoh::pubsub::Subscriber<()>,
    pub(crate) _token: zenoh::liveliness::LivelinessToken,
}

impl Node {
    /// A publisher of pre-encoded `type_name` messages on `topic`.
    pub fn raw_publisher(&self, topic: &str, type_name: &str) -> Result<RawPublisher, NodeError> {
        Ok(RawPublisher { out: self.outlet(topic, type_name)? })
    }

    /// Calls `callback` on zenoh's receive task for every message on `topic` (a topic name,
    /// or a key expression with `*`/`**` relative to the prefix). The callback must not block:
    /// copy the bytes out and return. `delete`s are not messages and are not passed on.
    pub fn raw_subscriber(
        &self,
        topic: &str,
        type_name: &str,
        callback: impl Fn(RawSample<'_>) + Send + Sync + 'static,
    ) -> Result<RawSubscriber, NodeError> {
        let key = self.key(topic);
        let token = self.endpoint_token(EndpointKind::Subscriber, topic, type_name)?;
        let clock = self.shared.clock.clone();
        let inner = self
            .shared
            .session
            .declare_subscriber(key.clone())
            .callback(move |sample| {
                if sample.kind() == SampleKind::Delete {
                    return;
                }
                let arrival_ns = clock.now_ns();
                let attachment = sample.attachment().and_then(|a| Attachment::decode(&a.to_bytes()));
                let payload = sample.payload().to_bytes();
                callback(RawSample { key: sample.key_expr().as_str(), payload: &payload, attachment, arrival_ns });
            })
            .wait()
            .map_err(|e| NodeError::Declare { what: "subscriber", key, reason: e.to_string() })?;
        Ok(RawSubscriber { _inner: inner, _token: token })
    }
}

impl RawPublisher {
    pub fn publish(&mut self, cdr: &[u8]) -> Result<(), NodeError> {
        let shared = &self.out.shared;
        let mut payload = None;
        if let Some(shm) = shared.shm.as_ref().filter(|_| cdr.len() >= shared.shm_threshold_bytes) {
            shm.garbage_collect();
            if let Ok(mut chunk) = shm.alloc(cdr.len()).with_policy::<GarbageCollect>().wait() {
                chunk[..].copy_from_slice(cdr);
                payload = Some(ZBytes::from(chunk));
            }
        }
        self.out.put(payload.unwrap_or_else(|| ZBytes::from(cdr)))
    }

    pub fn key(&self) -> &str {
        &self.out.key
    }

    pub fn sent(&self) -> u64 {
        self.out.sequence as u64
    }

    /// Whether any subscriber currently matches this topic.
    pub fn has_subscribers(&self) -> bool {
        self.out.has_subscribers()
    }
}
