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
//!
//! With access control on ([`Security`]), the holder is a zenoh router and the others its
//! clients instead, so that one session sees (and checks) who sends every message.

use serde::{Deserialize, Serialize};
use zenoh::Wait;

/// How long a client session tries to reach its router before `open` fails.
pub const CLIENT_CONNECT_TIMEOUT_MS: u64 = 10_000;

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
    /// Extra endpoints the rendezvous holder (the launcher) listens on, for processes beyond
    /// this host's loopback: the bench in another network namespace, a ground station
    /// (`tcp/10.0.0.1:7447`, `tls/...`). Like `security`, they make the holder a router and
    /// the others its clients, so what comes in through them reaches every node.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gateway: Vec<String>,
    /// Authentication and access control (`zenoh.access_control` in a launch file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security: Option<Security>,
    /// Certificates for `tls/...` endpoints (the off-vehicle link).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<Tls>,
}

/// TLS for `tls/HOST:PORT` endpoints in `listen`/`connect`/`gateway`: the CA that signs the peers'
/// certificates, this side's certificate and key (PEM files), and mutual TLS (the listener
/// also checks the connecting side's certificate).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Tls {
    pub root_ca_certificate: std::path::PathBuf,
    pub certificate: std::path::PathBuf,
    pub private_key: std::path::PathBuf,
    pub mutual: bool,
}

impl Tls {
    /// Checks each file exists and holds what it should (PEM); names the file.
    pub fn validate(&self) -> Result<(), String> {
        for (what, path, marker) in [
            ("root_ca_certificate", &self.root_ca_certificate, "CERTIFICATE-----"),
            ("certificate", &self.certificate, "CERTIFICATE-----"),
            ("private_key", &self.private_key, "PRIVATE KEY-----"),
        ] {
            let text = std::fs::read_to_string(path).map_err(|e| format!("tls.{what}: {}: {e}", path.display()))?;
            // `BEGIN CERTIFICATE-----`; `BEGIN [RSA |EC ]PRIVATE KEY-----`.
            if !text.contains(marker) {
                return Err(format!(
                    "tls.{what}: {} is not a PEM file with a {}",
                    path.display(),
                    marker.trim_end_matches('-')
                ));
            }
        }
        Ok(())
    }

    fn settings(&self) -> Vec<(&'static str, String)> {
        let path = |p: &std::path::Path| serde_json::to_string(&p.display().to_string()).expect("strings serialize");
        vec![
            ("transport/link/tls/root_ca_certificate", path(&self.root_ca_certificate)),
            ("transport/link/tls/listen_certificate", path(&self.certificate)),
            ("transport/link/tls/listen_private_key", path(&self.private_key)),
            ("transport/link/tls/connect_certificate", path(&self.certificate)),
            ("transport/link/tls/connect_private_key", path(&self.private_key)),
            ("transport/link/tls/enable_mtls", self.mutual.to_string()),
        ]
    }
}

/// Who a session is, who may talk to it, and who may publish on the guarded keys.
///
/// Every session authenticates with zenoh's user/password scheme: it presents `user` and the
/// password in `password_file`, and the accepting side refuses anyone not in `dictionary_file`
/// (`user:password` lines), so a process without credentials cannot connect at all. zenoh's
/// scheme tells only the *accepting* side of a link who the other is, so with security on, the
/// rendezvous holder (the launcher) opens as a zenoh **router** and every other session as a
/// **client** of it: the router accepts every link, knows every sender, and its access control
/// denies at ingress every `put` on a guarded topic from any user but the ones allowed for it.
/// A node with valid credentials still cannot command the brakes unless it is the arbiter.
/// Passwords travel in files (mode 0600), never on command lines.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Security {
    pub user: String,
    pub password_file: std::path::PathBuf,
    pub dictionary_file: std::path::PathBuf,
    /// Topic → the users allowed to publish on it.
    pub guarded: std::collections::BTreeMap<String, Vec<String>>,
    /// Every user of the system (the ones denied a guarded topic are the others); empty: the
    /// users of the dictionary file.
    pub users: Vec<String>,
}

impl Security {
    /// zenoh settings: usrpwd authentication and the access-control block.
    fn settings(&self, prefix: &str) -> Result<Vec<(&'static str, String)>, TransportConfigError> {
        let password = std::fs::read_to_string(&self.password_file)
            .map_err(|e| TransportConfigError::Open(format!("cannot read {}: {e}", self.password_file.display())))?;
        let json = |v: &str| serde_json::to_string(v).expect("strings serialize");
        let users: Vec<String> = if self.users.is_empty() {
            let dictionary = std::fs::read_to_string(&self.dictionary_file).map_err(|e| {
                TransportConfigError::Open(format!("cannot read {}: {e}", self.dictionary_file.display()))
            })?;
            dictionary.lines().filter_map(|l| l.split_once(':').map(|(u, _)| u.to_string())).collect()
        } else {
            self.users.clone()
        };
        let mut rules = Vec::new();
        let mut subjects = Vec::new();
        let mut policies = Vec::new();
        for (k, (topic, allowed)) in self.guarded.iter().enumerate() {
            let others: Vec<&String> = users.iter().filter(|u| !allowed.contains(u)).collect();
            if others.is_empty() {
                continue;
            }
            rules.push(serde_json::json!({
                "id": format!("guard{k}"), "permission": "deny", "flows": ["ingress"], "messages": ["put"],
                "key_exprs": [crate::keys::topic_key(prefix, topic)],
            }));
            subjects.push(serde_json::json!({ "id": format!("others{k}"), "usernames": others }));
            policies.push(serde_json::json!({
                "id": format!("policy{k}"), "rules": [format!("guard{k}")], "subjects": [format!("others{k}")],
            }));
        }
        let acl = serde_json::json!({
            "enabled": !rules.is_empty(), "default_permission": "allow",
            "rules": rules, "subjects": subjects, "policies": policies,
        });
        Ok(vec![
            ("transport/auth/usrpwd/user", json(&self.user)),
            ("transport/auth/usrpwd/password", json(password.trim())),
            ("transport/auth/usrpwd/dictionary_file", json(&self.dictionary_file.display().to_string())),
            ("access_control", acl.to_string()),
        ])
    }
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
            gateway: Vec::new(),
            security: None,
            tls: None,
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
    #[error("{0}")]
    Tls(String),
    #[error("endpoint {0:?}: {1} (expected e.g. tcp/10.0.0.1:7447)")]
    BadEndpoint(String, String),
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

    /// The rendezvous holder routes and every other session is its client (access control,
    /// or a gateway), instead of peers talking directly.
    fn routed(&self) -> bool {
        self.security.is_some() || !self.gateway.is_empty()
    }

    pub fn validate(&self) -> Result<(), TransportConfigError> {
        if self.shared_memory && self.shm_pool_bytes < 1024 * 1024 {
            return Err(TransportConfigError::PoolTooSmall(self.shm_pool_bytes));
        }
        zenoh::key_expr::KeyExpr::try_from(self.prefix.as_str())
            .map_err(|e| TransportConfigError::BadPrefix(self.prefix.clone(), e.to_string()))?;
        if let Some(tls) = &self.tls {
            tls.validate().map_err(TransportConfigError::Tls)?;
        }
        for endpoint in self.listen.iter().chain(&self.connect).chain(&self.gateway) {
            endpoint
                .parse::<zenoh::config::EndPoint>()
                .map_err(|e| TransportConfigError::BadEndpoint(endpoint.clone(), e.to_string()))?;
        }
        Ok(())
    }

    /// The zenoh configuration for a session that connects to the rendezvous (or to the
    /// configured endpoints) and listens on an ephemeral loopback port (or the configured ones).
    /// With security or a gateway and the rendezvous in use, the session is a client of the
    /// rendezvous holder (see [`Security`]); a client listens on nothing.
    pub fn to_zenoh(&self) -> Result<zenoh::Config, TransportConfigError> {
        if self.routed() && self.uses_rendezvous() {
            return self.zenoh_config(Mode::Client, &[], &[self.rendezvous_endpoint()]);
        }
        let listen = match self.mode {
            Mode::Client => Vec::new(),
            _ if self.listen.is_empty() => vec!["tcp/127.0.0.1:0".to_string()],
            _ => self.listen.clone(),
        };
        let connect = if self.connect.is_empty() { vec![self.rendezvous_endpoint()] } else { self.connect.clone() };
        self.zenoh_config(self.mode, &listen, &connect)
    }

    fn zenoh_config(
        &self,
        mode: Mode,
        listen: &[String],
        connect: &[String],
    ) -> Result<zenoh::Config, TransportConfigError> {
        self.validate()?;
        let client = mode == Mode::Client;
        let mode = serde_json::to_string(&mode).expect("enum serializes");
        let retry = "{period_init_ms: 100, period_max_ms: 1000, period_increase_factor: 2}";
        let settings = [
            ("mode", mode),
            ("scouting/multicast/enabled", "false".into()),
            ("listen/endpoints", serde_json::to_string(listen).expect("strings serialize")),
            // One try per listener (see the module docs).
            ("listen/timeout_ms", "0".into()),
            ("listen/exit_on_failure", "false".into()),
            ("connect/endpoints", serde_json::to_string(connect).expect("strings serialize")),
            // Peers keep trying in the background: the other may not be listening yet. A client
            // has nothing without its router, so it tries for CLIENT_CONNECT_TIMEOUT_MS and
            // then fails, naming the endpoint (a refused certificate or password would
            // otherwise hang it for ever).
            ("connect/timeout_ms", if client { CLIENT_CONNECT_TIMEOUT_MS.to_string() } else { "-1".into() }),
            ("connect/exit_on_failure", client.to_string()),
            ("connect/retry", retry.into()),
            ("transport/shared_memory/enabled", self.shared_memory.to_string()),
            // Do not hold `open` for ~0.5 s waiting on gossip: publishers that must not lose
            // their first messages wait for subscribers explicitly (`wait_for_subscribers`).
            ("open/return_conditions/connect_scouted", "false".into()),
        ];
        let mut config = zenoh::Config::default();
        let security = match &self.security {
            Some(security) => security.settings(&self.prefix)?,
            None => Vec::new(),
        };
        let tls = self.tls.as_ref().map(Tls::settings).unwrap_or_default();
        for (key, value) in settings.into_iter().chain(security).chain(tls) {
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
        let holder = if self.routed() {
            // The holder routes for everyone (and checks every sender, see `Security`).
            let listen: Vec<String> = std::iter::once(rendezvous.clone()).chain(self.gateway.iter().cloned()).collect();
            self.zenoh_config(Mode::Router, &listen, &[])?
        } else {
            self.zenoh_config(self.mode, &[rendezvous.clone(), "tcp/127.0.0.1:0".into()], &[])?
        };
        let session = open(holder)?;
        let holds_rendezvous = session.info().locators().wait().iter().any(|locator| locator.to_string() == rendezvous);
        if holds_rendezvous {
            return Ok(session);
        }
        drop(session);
        open(self.to_zenoh()?)
    }
}
