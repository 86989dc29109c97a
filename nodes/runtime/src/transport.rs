//! How a node reaches the others: zenoh mode, endpoints and shared memory, turned into a
//! `zenoh::Config` in one place.
//!
//! The default needs no router and no multicast: every process listens on an ephemeral
//! loopback port and also tries to hold a well-known *rendezvous* port
//! (`tcp/127.0.0.1:7450`), and connects to that port. Whoever holds the rendezvous port
//! introduces the others (zenoh gossip), after which they talk peer to peer; if that process
//! dies, another one takes the port over within a second.

use serde::{Deserialize, Serialize};

/// Port of the loopback rendezvous listener, unless `REFLEX_ZENOH_PORT` says otherwise.
pub const DEFAULT_RENDEZVOUS_PORT: u16 = 7450;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Talks directly to other peers; the default on one host.
    #[default]
    Peer,
    /// Talks only through a router (multi-host deployments, `zenohd`-compatible).
    Client,
    /// Routes for others.
    Router,
}

/// Transport settings of one node. Deserialized from launch files with unknown keys refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TransportConfig {
    pub mode: Mode,
    /// Endpoints to listen on, e.g. `tcp/127.0.0.1:7450`. Empty: the loopback default.
    pub listen: Vec<String>,
    /// Endpoints to connect to. Empty: the loopback rendezvous.
    pub connect: Vec<String>,
    /// Move large payloads (>= `shm_threshold_bytes`) through POSIX shared memory between
    /// processes on one host. Remote subscribers still receive a copy.
    pub shared_memory: bool,
    /// Size of this node's shared-memory pool (zenoh refuses pools under 1 MiB).
    pub shm_pool_bytes: usize,
    /// Payloads from this size up are written straight into shared memory.
    pub shm_threshold_bytes: usize,
    /// Key-expression prefix of every topic, so several systems can share one network.
    pub prefix: String,
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self {
            mode: Mode::Peer,
            listen: Vec::new(),
            connect: Vec::new(),
            shared_memory: true,
            shm_pool_bytes: 32 * 1024 * 1024,
            shm_threshold_bytes: 16 * 1024,
            prefix: "reflex".into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TransportConfigError {
    #[error("zenoh rejected setting `{key}` = {value}: {reason}")]
    Rejected { key: String, value: String, reason: String },
    #[error("shared-memory pool of {0} bytes is below zenoh's 1 MiB minimum")]
    PoolTooSmall(usize),
    #[error("topic prefix {0:?} is not a valid key expression: {1}")]
    BadPrefix(String, String),
}

impl TransportConfig {
    /// A config whose rendezvous is `port` on loopback: processes given the same port find
    /// each other, others do not (tests use this to stay apart).
    pub fn loopback(port: u16) -> Self {
        let endpoint = format!("tcp/127.0.0.1:{port}");
        Self { listen: vec![endpoint.clone(), "tcp/127.0.0.1:0".into()], connect: vec![endpoint], ..Self::default() }
    }

    fn rendezvous_port() -> u16 {
        std::env::var("REFLEX_ZENOH_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(DEFAULT_RENDEZVOUS_PORT)
    }

    pub fn validate(&self) -> Result<(), TransportConfigError> {
        if self.shared_memory && self.shm_pool_bytes < 1024 * 1024 {
            return Err(TransportConfigError::PoolTooSmall(self.shm_pool_bytes));
        }
        zenoh::key_expr::KeyExpr::try_from(self.prefix.as_str())
            .map_err(|e| TransportConfigError::BadPrefix(self.prefix.clone(), e.to_string()))?;
        Ok(())
    }

    /// The zenoh configuration these settings stand for.
    pub fn to_zenoh(&self) -> Result<zenoh::Config, TransportConfigError> {
        self.validate()?;
        let defaults = Self::loopback(Self::rendezvous_port());
        let listen = if self.listen.is_empty() && self.mode != Mode::Client { &defaults.listen } else { &self.listen };
        let connect = if self.connect.is_empty() { &defaults.connect } else { &self.connect };
        let mode = serde_json::to_string(&self.mode).expect("enum serializes");
        let retry = "{period_init_ms: 100, period_max_ms: 1000, period_increase_factor: 2}";
        let settings = [
            ("mode", mode),
            ("scouting/multicast/enabled", "false".into()),
            ("listen/endpoints", serde_json::to_string(listen).expect("strings serialize")),
            // A listener that cannot bind yet (the rendezvous port is taken) retries in the
            // background instead of failing the node.
            ("listen/timeout_ms", "-1".into()),
            ("listen/exit_on_failure", "false".into()),
            ("listen/retry", retry.into()),
            ("connect/endpoints", serde_json::to_string(connect).expect("strings serialize")),
            // Keep trying in the background: two nodes that start together may find the
            // rendezvous port not yet bound, and a one-shot attempt would leave them apart.
            ("connect/timeout_ms", "-1".into()),
            ("connect/exit_on_failure", "false".into()),
            ("connect/retry", retry.into()),
            ("transport/shared_memory/enabled", self.shared_memory.to_string()),
            // Do not hold `open` for ~0.5 s waiting on gossip: publishers that must not lose
            // their first messages wait for subscribers explicitly (`wait_for_subscribers`).
            ("open/return_conditions/connect_scouted", "false".into()),
        ];
        let mut config = zenoh::Config::default();
        for (key, value) in settings {
            config.insert_json5(key, &value).map_err(|e| TransportConfigError::Rejected {
                key: key.into(),
                value: value.clone(),
                reason: e.to_string(),
            })?;
        }
        Ok(config)
    }
}
