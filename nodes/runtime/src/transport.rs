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

/// Batches zenoh may queue per link for the data priority (its default is 2).
const TX_QUEUE_BATCHES: usize = 16;

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
    /// Largest message a session accepts from a link, bytes; larger ones are dropped (the link
    /// stays up), so nobody can make a node reassemble a gigabyte.
    pub max_message_size: usize,
    /// This session is the launcher's: with access control or a gateway only it may hold the
    /// rendezvous (and route); every other session is a client and never tries.
    #[serde(skip)]
    pub launcher: bool,
}

/// The default `max_message_size`: a 1920x1080 rgb8 frame is 6.2 MB.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 16 * 1024 * 1024;

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

/// Who a session is, and (for the launcher's router) who may talk to it and write what.
///
/// Every session authenticates with zenoh's user/password scheme: it presents `user` and its
/// password, and the accepting side refuses anyone not in `dictionary_file` (`user:password`
/// lines), so a process without credentials cannot connect at all. zenoh's scheme tells only
/// the *accepting* side of a link who the other is, so with security on, the rendezvous holder
/// (the launcher) opens as a zenoh **router** and every other session as a **client** of it:
/// the router accepts every link, knows every sender, and enforces [`Acl`] at ingress. Only the
/// router needs the dictionary and the rules; a node gets its password through a pipe the
/// launcher wrote it into (`password_fd`), so no node can read another node's password from a
/// file. Processes outside the launch read theirs from `password_file` (mode 0600).
/// `Debug` never shows the password.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Security {
    pub user: String,
    /// A file holding the password (processes outside the launch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<std::path::PathBuf>,
    /// An inherited pipe holding the password (nodes the launcher starts); read once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_fd: Option<i32>,
    /// The router's dictionary (`user:password` lines): only the launcher's session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dictionary_file: Option<std::path::PathBuf>,
    /// The rules the router enforces: only the launcher's session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acl: Option<Acl>,
    /// The password once read (never serialized).
    #[serde(skip)]
    password: Option<String>,
}

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Security")
            .field("user", &self.user)
            .field("password_file", &self.password_file)
            .field("password_fd", &self.password_fd)
            .field("dictionary_file", &self.dictionary_file)
            .field("acl", &self.acl)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .finish()
    }
}

/// Least privilege on the bus, derived from the launch graph: every topic may be written
/// (`put` and `delete`) only by the nodes that declare it as an output (or by the users named
/// for it), each node may state its own health and declare its own liveliness and endpoint
/// tokens only, fault commands come only from the named bench users, and everyone may read.
/// Anything not allowed is denied at the router's ingress.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Acl {
    /// Topic → the users that may write it.
    pub publishers: std::collections::BTreeMap<String, Vec<String>>,
    /// The launch's nodes (each is a user of its own name).
    pub nodes: Vec<String>,
    /// Users outside the launch (a bench, a simulator, a tool); their nodes' names start with
    /// the user's name (`bench-plant`).
    pub external: Vec<String>,
    /// Users that may send fault commands (`<prefix>/_fault/**`).
    pub fault_injectors: Vec<String>,
    /// Node → the user its process authenticates as, where that is another node's: the members
    /// of a group share one session, opened as the group's first member, which may then do
    /// what each member may (one process, one identity: its members share its memory anyway).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub sessions: std::collections::BTreeMap<String, String>,
}

impl Acl {
    /// zenoh's `access_control` block for this plan under `prefix`.
    pub fn to_zenoh(&self, prefix: &str) -> serde_json::Value {
        use serde_json::json;
        let key = |topic: &str| crate::keys::topic_key(prefix, topic);
        let mut rules = vec![
            // Everyone may read: subscribe, query, receive what the router forwards.
            json!({"id": "read", "permission": "allow", "flows": ["ingress", "egress"],
                   "messages": ["declare_subscriber", "query", "declare_queryable", "reply",
                                "declare_liveliness_subscriber", "liveliness_query"],
                   "key_exprs": ["**"]}),
            json!({"id": "receive", "permission": "allow", "flows": ["egress"],
                   "messages": ["put", "delete", "liveliness_token"], "key_exprs": ["**"]}),
            // The event log: every node's runtime writes it; the monitor decides from health.
            json!({"id": "events", "permission": "allow", "flows": ["ingress"], "messages": ["put"],
                   "key_exprs": [key(reflex_msgs::topics::MONITOR_EVENTS)]}),
        ];
        let mut subjects = Vec::new();
        let mut policies = Vec::new();
        let everyone: Vec<&String> = self.nodes.iter().chain(&self.external).collect();
        subjects.push(json!({"id": "everyone", "usernames": everyone}));
        policies.push(json!({"id": "everyone", "rules": ["read", "receive", "events"], "subjects": ["everyone"]}));
        for (index, user) in everyone.iter().enumerate() {
            let node = index < self.nodes.len();
            let mut own = Vec::new();
            let topics: Vec<String> =
                self.publishers.iter().filter(|(_, users)| users.contains(user)).map(|(topic, _)| key(topic)).collect();
            if !topics.is_empty() {
                rules.push(json!({"id": format!("write{index}"), "permission": "allow", "flows": ["ingress"],
                                  "messages": ["put", "delete"], "key_exprs": topics}));
                own.push(format!("write{index}"));
            }
            // A node of the launch is its user; an external process's sessions are named after
            // its user: `bench`, `bench-plant` (the launch check refuses nodes named so).
            let names = if node { vec![user.to_string()] } else { vec![user.to_string(), format!("{user}-$*")] };
            let tokens: Vec<String> = names
                .iter()
                .flat_map(|name| ["_node", "_pub", "_sub"].map(|kind| format!("{}/{name}/**", key(kind))))
                .collect();
            rules.push(json!({"id": format!("tokens{index}"), "permission": "allow", "flows": ["ingress"],
                              "messages": ["liveliness_token"], "key_exprs": tokens}));
            own.push(format!("tokens{index}"));
            let health: Vec<String> = names.iter().map(|name| crate::keys::health_key(prefix, name)).collect();
            rules.push(json!({"id": format!("health{index}"), "permission": "allow", "flows": ["ingress"],
                              "messages": ["put"], "key_exprs": health}));
            own.push(format!("health{index}"));
            let usernames: Vec<&String> = std::iter::once(*user).chain(self.sessions.get(*user)).collect();
            subjects.push(json!({"id": format!("user{index}"), "usernames": usernames}));
            policies.push(json!({"id": format!("user{index}"), "rules": own, "subjects": [format!("user{index}")]}));
        }
        if !self.fault_injectors.is_empty() {
            rules.push(json!({"id": "faults", "permission": "allow", "flows": ["ingress"], "messages": ["put"],
                              "key_exprs": [format!("{}/**", key("_fault"))]}));
            subjects.push(json!({"id": "injectors", "usernames": self.fault_injectors}));
            policies.push(json!({"id": "injectors", "rules": ["faults"], "subjects": ["injectors"]}));
        }
        json!({"enabled": true, "default_permission": "deny", "rules": rules, "subjects": subjects, "policies": policies})
    }
}

impl Security {
    /// Credentials of a process outside the launch, from its password file.
    pub fn external(user: &str, password_file: std::path::PathBuf) -> Self {
        Self { user: user.into(), password_file: Some(password_file), ..Default::default() }
    }

    /// A node of a launch: its password comes through a pipe (`password_fd`, set at start).
    pub fn node(user: &str) -> Self {
        Self { user: user.into(), ..Default::default() }
    }

    /// The launcher's router: it checks the others against `dictionary_file` and enforces `acl`.
    pub fn router(dictionary_file: std::path::PathBuf, acl: Option<Acl>) -> Self {
        Self { user: "launch".into(), dictionary_file: Some(dictionary_file), acl, ..Default::default() }
    }

    /// Reads the password now (from the pipe or the file), once: a pipe can be read only once.
    pub fn load_password(&mut self) -> Result<(), TransportConfigError> {
        if self.password.is_some() {
            return Ok(());
        }
        let text = match (self.password_fd, &self.password_file) {
            (Some(fd), _) => read_fd(fd)
                .map_err(|e| TransportConfigError::Open(format!("cannot read the password from fd {fd}: {e}")))?,
            (None, Some(path)) => read_private(path)?,
            (None, None) => return Err(TransportConfigError::Open(format!("user {:?} has no password", self.user))),
        };
        self.password = Some(text.trim().to_string());
        Ok(())
    }

    /// zenoh settings: usrpwd authentication, and for the router the dictionary and the rules.
    fn settings(&self, prefix: &str) -> Result<Vec<(&'static str, String)>, TransportConfigError> {
        let json = |v: &str| serde_json::to_string(v).expect("strings serialize");
        let mut settings = Vec::new();
        // The router (it has the dictionary) checks the others and presents nothing itself.
        if self.dictionary_file.is_none() || self.password_fd.is_some() || self.password_file.is_some() {
            let password = match (&self.password, self.password_fd) {
                (Some(password), _) => password.clone(),
                // A pipe can be read once: whoever holds the descriptor reads it first.
                (None, Some(fd)) => {
                    return Err(TransportConfigError::Open(format!(
                        "the password pipe (fd {fd}) has not been read: call load_password first"
                    )))
                }
                (None, None) => {
                    let mut this = self.clone();
                    this.load_password()?;
                    this.password.unwrap_or_default()
                }
            };
            settings.push(("transport/auth/usrpwd/user", json(&self.user)));
            settings.push(("transport/auth/usrpwd/password", json(&password)));
        }
        if let Some(dictionary) = &self.dictionary_file {
            settings.push(("transport/auth/usrpwd/dictionary_file", json(&dictionary.display().to_string())));
        }
        if let Some(acl) = &self.acl {
            settings.push(("access_control", acl.to_zenoh(prefix).to_string()));
        }
        Ok(settings)
    }
}

/// Reads a pipe to its end and closes it.
fn read_fd(fd: i32) -> std::io::Result<String> {
    use std::io::Read;
    use std::os::fd::FromRawFd;
    if fd < 3 {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a password pipe"));
    }
    // SAFETY: the launcher gave this process the fd for this purpose alone; it is read once
    // and closed here (the File owns it from now on).
    let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    Ok(text)
}

/// Reads a credentials file that must be a regular file of ours, readable by us alone.
pub fn read_private(path: &std::path::Path) -> Result<String, TransportConfigError> {
    use std::os::unix::fs::MetadataExt;
    let refuse = |why: String| TransportConfigError::Open(format!("{}: {why}", path.display()));
    let metadata = std::fs::symlink_metadata(path).map_err(|e| refuse(format!("cannot read it: {e}")))?;
    if !metadata.file_type().is_file() {
        return Err(refuse("not a regular file (a symlink?)".into()));
    }
    // SAFETY: geteuid has no preconditions.
    if metadata.uid() != unsafe { libc::geteuid() } || metadata.mode() & 0o077 != 0 {
        return Err(refuse(format!(
            "must be ours and mode 0600 (owner {}, mode {:o})",
            metadata.uid(),
            metadata.mode() & 0o777
        )));
    }
    std::fs::read_to_string(path).map_err(|e| refuse(format!("cannot read it: {e}")))
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
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            launcher: false,
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
    #[error("max_message_size {0} is outside 64 KiB..=1 GiB")]
    BadMessageSize(usize),
}

thread_local! {
    static GROUP_SESSION: std::cell::RefCell<Option<zenoh::Session>> = const { std::cell::RefCell::new(None) };
}

/// Makes every node created on this thread use `session` instead of opening its own. A group
/// (several nodes as threads of one process) runs all its members on one session, so that a
/// message from one member to another is handed over inside the process (zenoh delivers to
/// the session's own subscribers in the publishing call) instead of crossing a loopback link
/// to a second session of the same process. Other processes and tools see every member as
/// before: each keeps its own liveliness token, health key and fault key.
pub fn use_session_on_this_thread(session: zenoh::Session) {
    GROUP_SESSION.with(|slot| *slot.borrow_mut() = Some(session));
}

/// The session [`use_session_on_this_thread`] gave this thread, if any.
pub(crate) fn group_session() -> Option<zenoh::Session> {
    GROUP_SESSION.with(|slot| slot.borrow().clone())
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
        if !(64 * 1024..=1 << 30).contains(&self.max_message_size) {
            return Err(TransportConfigError::BadMessageSize(self.max_message_size));
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
            ("transport/link/rx/max_message_size", self.max_message_size.to_string()),
            // Every message is express (its own batch), and zenoh queues 2 batches per link and
            // priority: a burst of 3 to one peer (the simulator's clock, frame, camera model and
            // vehicle state to a group) while the sending thread waits for a core was dropped
            // after 1 ms. 16 batches hold any burst of the chain's messages.
            ("transport/link/tx/queue/size/data", TX_QUEUE_BATCHES.to_string()),
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

    /// Reads the password now, if there is one (nodes do this once, before `open`).
    pub fn load_secrets(&mut self) -> Result<(), TransportConfigError> {
        match &mut self.security {
            Some(security) => security.load_password(),
            None => Ok(()),
        }
    }

    /// Opens the session that must hold the rendezvous (the launcher's): fails if another
    /// process holds it, since with access control that would leave nobody enforcing it.
    pub fn open_rendezvous(&self) -> Result<zenoh::Session, TransportConfigError> {
        let session = self.open()?;
        if self.uses_rendezvous() && self.routed() {
            let rendezvous = self.rendezvous_endpoint();
            let holds = session.info().locators().wait().iter().any(|l| l.to_string() == rendezvous);
            if !holds {
                return Err(TransportConfigError::Open(format!(
                    "{rendezvous} is held by another process: with access control the launcher must be the router \
                     (is another launch running on this port?)"
                )));
            }
        }
        Ok(session)
    }

    /// Opens a zenoh session with these settings; with the default endpoints, becomes the
    /// rendezvous if the port is free and connects to it otherwise.
    pub fn open(&self) -> Result<zenoh::Session, TransportConfigError> {
        let open =
            |config: zenoh::Config| zenoh::open(config).wait().map_err(|e| TransportConfigError::Open(e.to_string()));
        if !self.uses_rendezvous() {
            return open(self.to_zenoh()?);
        }
        if self.routed() && !self.launcher {
            // Only the launcher routes: a node that found the router gone must not become an
            // unguarded router itself.
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
