//! What a rogue on the network does with raw zenoh: garbage floods, forged liveliness tokens,
//! raw writes and deletes on keys it should not touch, and taps that count what got through.
//! For the attack tests and the HIL bench's attack rows only: node code never speaks raw
//! zenoh, and this module is how tests play the attacker without depending on zenoh
//! themselves (the runtime is the one crate that does).

use crate::keys;
use crate::node::Node;
use crate::transport::TransportConfig;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use zenoh::Wait;

/// Garbage (bytes that are not CDR) on the key expression `key` at `rate` messages/s for
/// `duration` (or until `stop`), from `node`'s session, dropped rather than blocking when the
/// link is full. Returns how many were sent.
pub fn garbage_flood(node: &Node, key: &str, rate: f64, duration: Duration, stop: &AtomicBool) -> Result<u64, String> {
    let publisher = node
        .session()
        .declare_publisher(key.to_owned())
        .congestion_control(zenoh::qos::CongestionControl::Drop)
        .wait()
        .map_err(|e| e.to_string())?;
    let start = Instant::now();
    let mut sent = 0u64;
    let mut garbage = [0u8; 48];
    // Paced at `rate`: each millisecond's share, then wait for the next millisecond.
    while start.elapsed() < duration && !stop.load(Ordering::Acquire) {
        let due = (start.elapsed().as_secs_f64() * rate) as u64;
        while sent < due {
            for (i, byte) in garbage.iter_mut().enumerate() {
                *byte = (sent as u8).wrapping_mul(31).wrapping_add(i as u8);
            }
            if publisher.put(&garbage[..]).wait().is_ok() {
                sent += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(sent)
}

/// `payload` put on the key expression `key` from `node`'s session (the router may refuse it).
pub fn put(node: &Node, key: &str, payload: &[u8]) -> Result<(), String> {
    node.session().put(key.to_owned(), payload.to_vec()).wait().map_err(|e| e.to_string())
}

/// A `delete` on the key expression `key` from `node`'s session: a write too.
pub fn delete(node: &Node, key: &str) -> Result<(), String> {
    node.session().delete(key.to_owned()).wait().map_err(|e| e.to_string())
}

/// A liveliness token in another node's name (`name` on `host` with `pid`), declared from
/// `node`'s session; it lives until dropped.
pub struct ForgedToken {
    _token: zenoh::liveliness::LivelinessToken,
}

impl ForgedToken {
    pub fn declare(node: &Node, name: &str, host: &str, pid: u32) -> Result<Self, String> {
        let key = keys::liveliness_token(node.prefix(), name, host, pid);
        let token = node.session().liveliness().declare_token(key).wait().map_err(|e| e.to_string())?;
        Ok(Self { _token: token })
    }
}

/// `body` written to node `target`'s fault key from a session of its own opened with
/// `transport` (whose credentials the router judges), then closed.
pub fn raw_fault_command(transport: &TransportConfig, target: &str, body: String) -> Result<(), String> {
    let config = transport.to_zenoh().map_err(|e| e.to_string())?;
    let key = keys::fault_key(&transport.prefix, target);
    let session = zenoh::open(config).wait().map_err(|e| e.to_string())?;
    let sent = session.put(key, body).wait().map_err(|e| e.to_string());
    // Time for the put to leave before the session closes.
    std::thread::sleep(Duration::from_millis(50));
    let _ = session.close().wait();
    sent
}

/// One sample a [`Tap`] saw.
pub struct Seen<'a> {
    pub key: &'a str,
    pub payload: &'a [u8],
    /// A `delete` rather than a `put` (for liveliness: a token that went away).
    pub delete: bool,
}

/// Counts the samples on a key expression (or the liveliness tokens under one) that `matches`
/// picks, below the typed layer: what an attack test checks got through, or did not.
pub struct Tap {
    count: Arc<AtomicU64>,
    _subscriber: zenoh::pubsub::Subscriber<()>,
}

impl Tap {
    /// Samples published on `key`.
    pub fn samples(
        node: &Node,
        key: &str,
        matches: impl Fn(&Seen) -> bool + Send + Sync + 'static,
    ) -> Result<Tap, String> {
        Self::declare(node, key, false, matches)
    }

    /// Liveliness tokens under `key` as they appear (and, with `delete`, as they go).
    pub fn tokens(
        node: &Node,
        key: &str,
        matches: impl Fn(&Seen) -> bool + Send + Sync + 'static,
    ) -> Result<Tap, String> {
        Self::declare(node, key, true, matches)
    }

    fn declare(
        node: &Node,
        key: &str,
        liveliness: bool,
        matches: impl Fn(&Seen) -> bool + Send + Sync + 'static,
    ) -> Result<Tap, String> {
        let count = Arc::new(AtomicU64::new(0));
        let counted = count.clone();
        let callback = move |sample: zenoh::sample::Sample| {
            let payload = sample.payload().to_bytes();
            let seen = Seen {
                key: sample.key_expr().as_str(),
                payload: &payload,
                delete: sample.kind() == zenoh::sample::SampleKind::Delete,
            };
            if matches(&seen) {
                counted.fetch_add(1, Ordering::Relaxed);
            }
        };
        let session = node.session();
        let subscriber = if liveliness {
            session.liveliness().declare_subscriber(key.to_owned()).callback(callback).wait()
        } else {
            session.declare_subscriber(key.to_owned()).callback(callback).wait()
        };
        Ok(Tap { count, _subscriber: subscriber.map_err(|e| e.to_string())? })
    }

    /// How many matching samples so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}
