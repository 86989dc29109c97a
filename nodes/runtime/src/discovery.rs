//! A node's view of the system it belongs to ([`System`]): which nodes are alive (from their
//! liveliness tokens), on which host and with which process id, and the control verbs tools
//! and benches use on them (sending a fault). The key format stays inside the runtime.

use crate::fault::FaultCommand;
use crate::keys;
pub use crate::keys::{EndpointInfo, EndpointKind};
use crate::transport::{TransportConfig, TransportConfigError};
use crate::Node;
use std::time::{Duration, Instant};
use zenoh::sample::SampleKind;
use zenoh::Wait;

/// How long a liveliness query waits for replies.
const QUERY_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
#[error("liveliness query on {selector} failed")]
pub struct DiscoveryError {
    selector: String,
    #[source]
    source: zenoh::Error,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot send the fault to node {node}")]
pub struct SendFaultError {
    node: String,
    #[source]
    source: zenoh::Error,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("transport settings")]
    Transport(#[from] TransportConfigError),
    #[error("cannot open a zenoh session")]
    Open(#[source] zenoh::Error),
}

#[derive(Debug, thiserror::Error)]
#[error("cannot {what} `{key}`")]
pub struct WatchError {
    what: &'static str,
    key: String,
    #[source]
    source: zenoh::Error,
}

/// A node appearing or going, by its liveliness token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeChange {
    Up { name: String, host: String, pid: u32 },
    Gone { name: String, host: String, pid: u32 },
}

/// Keeps a watch (of nodes, endpoints or a topic) alive; dropping it ends the watch.
pub struct Watch {
    _subscriber: zenoh::pubsub::Subscriber<()>,
}

/// The system a node belongs to (its session and key prefix): cheap to clone, usable while the
/// node itself is borrowed elsewhere.
#[derive(Clone)]
pub struct System {
    session: zenoh::Session,
    prefix: String,
}

impl Node {
    /// This node's view of its system, for discovery and control.
    pub fn system(&self) -> System {
        System { session: self.session().clone(), prefix: self.prefix().to_string() }
    }
}

/// Where a running node lives, as its liveliness token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeLocation {
    pub pid: u32,
    pub host: String,
}

impl System {
    /// Joins the system of `transport` as an observer (no node, no token: tools such as
    /// `reflex topic list`), giving gossip up to `settle` to introduce the peers.
    pub fn connect(transport: &TransportConfig, settle: Duration) -> Result<Self, ConnectError> {
        // `to_zenoh`, not `open`: a tool connects and never takes the rendezvous port.
        let config = transport.to_zenoh()?;
        let session = zenoh::open(config).wait().map_err(ConnectError::Open)?;
        // Gossip introduces the peers within milliseconds; wait until their number stops growing.
        let start = Instant::now();
        let (mut peers, mut stable_since) = (0, Instant::now());
        while start.elapsed() < settle {
            let now_peers = session.info().peers_zid().wait().count();
            if now_peers != peers {
                (peers, stable_since) = (now_peers, Instant::now());
            } else if peers > 0 && stable_since.elapsed() > Duration::from_millis(150) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(Self { session, prefix: transport.prefix.clone() })
    }

    /// Calls `on_change` (on zenoh's thread: it must not block) for every node that appears or
    /// goes; with `history`, first for the nodes already running.
    pub fn watch_nodes(
        &self,
        history: bool,
        on_change: impl Fn(NodeChange) + Send + Sync + 'static,
    ) -> Result<Watch, WatchError> {
        let (prefix, key) = (self.prefix.clone(), keys::all_nodes(&self.prefix));
        let subscriber = self
            .session
            .liveliness()
            .declare_subscriber(&key)
            .history(history)
            .callback(move |sample| {
                if let Some((name, host, pid)) = keys::parse_liveliness_token(&prefix, sample.key_expr().as_str()) {
                    on_change(match sample.kind() {
                        SampleKind::Put => NodeChange::Up { name, host, pid },
                        SampleKind::Delete => NodeChange::Gone { name, host, pid },
                    });
                }
            })
            .wait()
            .map_err(|source| WatchError { what: "watch the nodes", key, source })?;
        Ok(Watch { _subscriber: subscriber })
    }

    /// Every publisher or subscriber that exists now, by its endpoint token.
    pub fn endpoints(&self, kind: EndpointKind) -> Result<Vec<EndpointInfo>, DiscoveryError> {
        Ok(self
            .liveliness_keys(&keys::all_endpoints(&self.prefix, kind))?
            .iter()
            .filter_map(|key| keys::parse_endpoint_token(&self.prefix, key))
            .collect())
    }

    /// Calls `on_new` (on zenoh's thread: it must not block) for every publisher or subscriber
    /// that appears from now on.
    pub fn watch_endpoints(
        &self,
        kind: EndpointKind,
        on_new: impl Fn(EndpointInfo) + Send + Sync + 'static,
    ) -> Result<Watch, WatchError> {
        let (prefix, key) = (self.prefix.clone(), keys::all_endpoints(&self.prefix, kind));
        let subscriber = self
            .session
            .liveliness()
            .declare_subscriber(&key)
            .callback(move |sample| {
                if sample.kind() == SampleKind::Put {
                    if let Some(info) = keys::parse_endpoint_token(&prefix, sample.key_expr().as_str()) {
                        on_new(info);
                    }
                }
            })
            .wait()
            .map_err(|source| WatchError { what: "watch the endpoints", key, source })?;
        Ok(Watch { _subscriber: subscriber })
    }

    /// Calls `on_message` (on zenoh's thread: it must not block) with the bytes of every
    /// message on `topic`, without announcing a subscriber (an observer's view).
    pub fn watch_topic(
        &self,
        topic: &str,
        on_message: impl Fn(&[u8]) + Send + Sync + 'static,
    ) -> Result<Watch, WatchError> {
        let key = keys::topic_key(&self.prefix, topic);
        let subscriber = self
            .session
            .declare_subscriber(&key)
            .callback(move |sample| {
                if sample.kind() == SampleKind::Put {
                    on_message(&sample.payload().to_bytes());
                }
            })
            .wait()
            .map_err(|source| WatchError { what: "subscribe to", key, source })?;
        Ok(Watch { _subscriber: subscriber })
    }

    /// Sends a fault command to node `node` (it applies it and reports it on /reflex/events).
    pub fn send_fault(&self, node: &str, command: &FaultCommand) -> Result<(), SendFaultError> {
        let body = serde_json::to_string(command).expect("fault commands serialise");
        self.session
            .put(keys::fault_key(&self.prefix, node), body)
            .wait()
            .map_err(|source| SendFaultError { node: node.to_string(), source })
    }

    /// The keys of every liveliness token matching `selector`, sorted, without duplicates.
    pub(crate) fn liveliness_keys(&self, selector: &str) -> Result<Vec<String>, DiscoveryError> {
        let replies = self
            .session
            .liveliness()
            .get(selector)
            .timeout(QUERY_TIMEOUT)
            .wait()
            .map_err(|source| DiscoveryError { selector: selector.to_string(), source })?;
        // Take every reply: dropping the receiver early makes zenoh log an error for each late one.
        let mut keys = Vec::new();
        while let Ok(reply) = replies.recv() {
            if let Ok(sample) = reply.result() {
                keys.push(sample.key_expr().to_string());
            }
        }
        keys.sort();
        keys.dedup();
        Ok(keys)
    }

    /// Every running node of this node's system: name and location.
    pub fn running_nodes(&self) -> Result<Vec<(String, NodeLocation)>, DiscoveryError> {
        let prefix = &self.prefix;
        Ok(self
            .liveliness_keys(&keys::all_nodes(prefix))?
            .iter()
            .filter_map(|key| keys::parse_liveliness_token(prefix, key))
            .map(|(name, host, pid)| (name, NodeLocation { pid, host }))
            .collect())
    }

    /// The location of the running node `name`, from its liveliness token.
    pub fn find_node(&self, name: &str) -> Result<Option<NodeLocation>, DiscoveryError> {
        Ok(self.running_nodes()?.into_iter().find(|(found, _)| found == name).map(|(_, location)| location))
    }

    /// The process id of node `name` when it runs on this host and that process really is a
    /// Reflex node of that name (a token is only a claim: never signal a pid on its word).
    pub fn find_local_node_pid(&self, name: &str) -> Result<Option<u32>, DiscoveryError> {
        let host = crate::hostname();
        Ok(self
            .running_nodes()?
            .into_iter()
            .filter(|(found, location)| found == name && location.host == host)
            .map(|(_, location)| location.pid)
            .find(|pid| is_reflex_node(*pid, name)))
    }
}

/// Whether process `pid` is a reflex node or group running node `name`.
pub fn is_reflex_node(pid: u32, name: &str) -> bool {
    let pid_max: u32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(4_194_304);
    if pid <= 1 || pid > pid_max || pid == std::process::id() {
        return false;
    }
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { return false };
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let is_node = args.get(1).is_some_and(|a| *a == b"node" || *a == b"group");
    let spec = args.iter().position(|a| *a == b"--spec").and_then(|i| args.get(i + 1));
    let named = spec.and_then(|s| serde_json::from_slice::<serde_json::Value>(s).ok()).is_some_and(|spec| {
        let one = |v: &serde_json::Value| v.get("name").and_then(|n| n.as_str()) == Some(name);
        one(&spec) || spec.as_array().is_some_and(|members| members.iter().any(|m| m.get(1).is_some_and(one)))
    });
    is_node && named
}

#[cfg(test)]
mod tests {
    use super::*;

    /// H12: a token's pid is never signalled unless it is that reflex node: not -1 or 0 (which
    /// kill(2) reads as "every process" and "my group"), not pid 1, not ourselves, not a stranger.
    #[test]
    fn only_real_reflex_nodes_are_signalled() {
        for pid in [0, 1, u32::MAX, u32::MAX - 1, std::process::id()] {
            assert!(!is_reflex_node(pid, "camera"), "pid {pid}");
        }
        let mut stranger = std::process::Command::new("sleep").arg("10").spawn().unwrap();
        assert!(!is_reflex_node(stranger.id(), "camera"), "a process that is no reflex node");
        let _ = stranger.kill();
        let _ = stranger.wait();
    }
}
