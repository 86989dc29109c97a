//! How a node reaches the others: zenoh mode, endpoints and shared memory, turned into a
//! `zenoh::Config` in one place.
//!
//! The default needs no router and no multicast: a process first tries to *be* the
//! rendezvous, listening on the well-known loopback port (`tcp/127.0.0.1:7450`, or
//! `rendezvous_port`, or `REFLEX_ZENOH_PORT`) plus an ephemeral one. If the port is taken, it
//! reopens its session listening on an ephemeral port only and connecting to the rendezvous
//! (retrying in the background). The holder introduces the others (zenoh gossip), after which
//! they talk peer to peer. `reflex launch` holds the port for the whole launch, so nodes can
//! crash and restart freely; without a launcher the first node holds it, and once it exits,
//! nodes already connected stay connected but newcomers need a new holder.
//!
//! Why not simpler: listening and connecting to the same port makes a node connect to itself
//! (refused by zenoh, logged as an error at every retry), and a busy listener retried in the
//! background makes closing the session wait 10 s.

use serde::{Deserialize, Serialize};
use zenoh::Wait;

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
    /// Loopback rendezvous port when `listen` and `connect` are empty (default: the
    /// `REFLEX_ZENOH_PORT` environment variable, else 7450).
    pub rendezvous_port: Option<u16>,
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
            rendezvous_port: None,
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
    #[error("cannot open the zenoh session: {0}")]
    Open(String),
}

impl TransportConfig {
    /// A config whose rendezvous is `port` on loopback: processes given the same port find
    /// each other, others do not (tests use this to stay apart).
    pub fn loopback(port: u16) -> Self {
        Self { rendezvous_port: Some(port), ..Self::default() }
    }

    fn rendezvous_endpoint(&self) -> String {
        let port = self.rendezvous_port.unwrap_or_else(|| {
            std::env::var("REFLEX_ZENOH_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(DEFAULT_RENDEZVOUS_PORT)
        });
        format!("tcp/127.0.0.1:{port}")
    }

    fn uses_rendezvous(&self) -> bool {
        self.listen.is_empty() && self.connect.is_empty() && self.mode == Mode::Peer
    }

    pub fn validate(&self) -> Result<(), TransportConfigError> {
        if self.shared_memory && self.shm_pool_bytes < 1024 * 1024 {
            return Err(TransportConfigError::PoolTooSmall(self.shm_pool_bytes));
        }
        zenoh::key_expr::KeyExpr::try_from(self.prefix.as_str())
            .map_err(|e| TransportConfigError::BadPrefix(self.prefix.clone(), e.to_string()))?;
        Ok(())
    }

    /// The zenoh configuration for a session that connects to the rendezvous (or to the
    /// configured endpoints) and listens on an ephemeral loopback port (or the configured ones).
    pub fn to_zenoh(&self) -> Result<zenoh::Config, TransportConfigError> {
        let listen = if self.listen.is_empty() { vec!["tcp/127.0.0.1:0".to_string()] } else { self.listen.clone() };
        let connect = if self.connect.is_empty() { vec![self.rendezvous_endpoint()] } else { self.connect.clone() };
        self.zenoh_config(&listen, &connect)
    }

    fn zenoh_config(&self, listen: &[String], connect: &[String]) -> Result<zenoh::Config, TransportConfigError> {
        self.validate()?;
        let mode = serde_json::to_string(&self.mode).expect("enum serializes");
        let retry = "{period_init_ms: 100, period_max_ms: 1000, period_increase_factor: 2}";
        let settings = [
            ("mode", mode),
            ("scouting/multicast/enabled", "false".into()),
            ("listen/endpoints", serde_json::to_string(listen).expect("strings serialize")),
            // One try per listener (see the module docs).
            ("listen/timeout_ms", "0".into()),
            ("listen/exit_on_failure", "false".into()),
            ("connect/endpoints", serde_json::to_string(connect).expect("strings serialize")),
            // Keep trying in the background: the peer may not be listening yet.
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

    /// Opens a zenoh session with these settings; with the default endpoints, becomes the
    /// rendezvous if the port is free and connects to it otherwise.
    pub fn open(&self) -> Result<zenoh::Session, TransportConfigError> {
        let open =
            |config: zenoh::Config| zenoh::open(config).wait().map_err(|e| TransportConfigError::Open(e.to_string()));
        if !self.uses_rendezvous() {
            return open(self.to_zenoh()?);
        }
        let rendezvous = self.rendezvous_endpoint();
        let session = open(self.zenoh_config(&[rendezvous.clone(), "tcp/127.0.0.1:0".into()], &[])?)?;
        let holds_rendezvous = session.info().locators().wait().iter().any(|locator| locator.to_string() == rendezvous);
        if holds_rendezvous {
            return Ok(session);
        }
        drop(session);
        open(self.to_zenoh()?)
    }
}
