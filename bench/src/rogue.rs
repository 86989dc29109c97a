//! What a rogue on the network does with raw zenoh: garbage floods, forged liveliness tokens,
//! raw writes to a control key. The HIL bench's attack rows use these; node code never speaks
//! raw zenoh (only the runtime and the benchmarks' baselines do).

use reflex_runtime::{keys, Node, TransportConfig};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use zenoh::Wait;

/// Garbage (bytes that are not CDR) on `topic` at `rate` messages/s for `duration` (or until
/// `stop`), from `node`'s session, dropped rather than blocking when the link is full. Returns
/// how many were sent.
pub fn garbage_flood(
    node: &Node,
    topic: &str,
    rate: f64,
    duration: Duration,
    stop: &AtomicBool,
) -> Result<u64, String> {
    let publisher = node
        .session()
        .declare_publisher(node.key(topic))
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

/// A liveliness token in another node's name (on this host, with a made-up pid), declared
/// from `node`'s session; it lives until dropped.
pub struct ForgedToken {
    _token: zenoh::liveliness::LivelinessToken,
}

impl ForgedToken {
    pub fn declare(node: &Node, name: &str, pid: u32) -> Result<Self, String> {
        let key = keys::liveliness_token(node.prefix(), name, &reflex_runtime::hostname(), pid);
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
