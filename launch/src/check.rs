//! `reflex check`: everything that can be wrong in a launch file beyond its syntax — unknown
//! kinds, parameters that do not fit the kind, duplicate names, inputs nobody publishes, two
//! publishers on a command topic — reported together, each with file, line, column and a hint.
//! The result is the [`Plan`] that `reflex launch` executes.

use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::kinds;
use crate::launch_file::{
    known_list, FaultEntry, GroupEntry, Loaded, NodeEntry, QueuePolicy, RestartEntry, ZenohMode, ZenohSection,
};
use reflex_msgs::topics;
use reflex_runtime::fault::FaultCommand;
use reflex_runtime::spec::{resolve_topic, InvalidParam};
use reflex_runtime::transport::Tls;
use reflex_runtime::{Direction, InputOptions, Mode, NodeSpec, OverflowPolicy, TransportConfig};
use serde_saphyr::Location;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Topics that must have exactly one publisher: the actuator command (the arbiter), the
/// safe-stop demand (the monitor) and the brake demand (the actuator gateway).
pub const COMMAND_TOPICS: [&str; 3] = [topics::ACTUATOR_COMMAND, topics::SAFE_STOP, topics::BRAKE_DEMAND];

/// Kinds that are safety units unless the launch file says otherwise: never stopped because
/// another unit failed.
pub const SAFETY_KINDS: [&str; 3] = ["monitor", "arbiter", "actuator"];

/// What `reflex launch` starts: one process per unit.
#[derive(Debug)]
pub struct Plan {
    /// The launch's transport; the launcher holds its rendezvous.
    pub transport: TransportConfig,
    /// Credentials, when the launch file asks for access control ...
    pub access: Option<crate::launch_file::AccessControlEntry>,
    /// ... and the rules the launcher's router enforces, derived from the launch graph.
    pub acl: Option<reflex_runtime::transport::Acl>,
    /// The launcher's own scheduling.
    pub launcher: crate::launch_file::LauncherEntry,
    pub units: Vec<Unit>,
}

#[derive(Debug)]
pub struct Unit {
    pub name: String,
    pub program: Program,
    pub restart: RestartEntry,
    pub env: BTreeMap<String, String>,
    pub cpu_affinity: Vec<usize>,
    pub priority: Option<u8>,
    pub required: bool,
    /// Never stopped because another unit failed (the monitor, the arbiter, the gateway).
    pub safety: bool,
}

#[derive(Debug, Clone)]
pub enum Program {
    /// `reflex node KIND --spec JSON`
    Kind { kind: String, spec: NodeSpec },
    /// `reflex group --spec JSON`: several kinds, one thread each.
    Group { members: Vec<(String, NodeSpec)> },
    /// An external program; it finds its spec in `REFLEX_NODE_SPEC`.
    Exec { program: String, args: Vec<String>, spec: NodeSpec },
}

impl Program {
    /// The spec of every node this process runs (one, or a group's members).
    pub fn specs_mut(&mut self) -> Vec<&mut NodeSpec> {
        match self {
            Program::Kind { spec, .. } | Program::Exec { spec, .. } => vec![spec],
            Program::Group { members } => members.iter_mut().map(|(_, spec)| spec).collect(),
        }
    }
}

/// One publisher or subscriber of the plan, for the topic checks.
struct Endpoint<'a> {
    /// An input that needs no publisher.
    optional: bool,
    /// An input published from outside the launch (external users may write it).
    external: bool,
    node: &'a str,
    port: String,
    topic: String,
    type_name: Option<&'static str>,
    direction: Direction,
    file: &'a Path,
    at: Location,
}

pub fn check(loaded: &Loaded) -> Result<Plan, Diagnostics> {
    let mut diagnostics = Diagnostics::default();
    let transport = transport_of(&loaded.zenoh);
    if let Err(error) = transport.validate() {
        diagnostics.push(Diagnostic::file(&loaded.root, format!("zenoh: {error}")));
    }

    let mut seen: BTreeMap<&str, (&Path, Location)> = BTreeMap::new();
    let mut specs: BTreeMap<&str, (Option<&'static reflex_runtime::NodeKind>, NodeSpec)> = BTreeMap::new();
    let mut endpoints = Vec::new();
    for (file, node) in &loaded.nodes {
        let name = node.name.value.as_str();
        if let Some((first_file, first)) = seen.get(name) {
            diagnostics.push(
                Diagnostic::at(file, &node.name.referenced, format!("duplicate node name `{name}`")).hint(format!(
                    "first defined at {}:{}:{}",
                    first_file.display(),
                    first.line(),
                    first.column()
                )),
            );
            continue;
        }
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            diagnostics.push(
                Diagnostic::at(file, &node.name.referenced, format!("node name `{name}` is not usable"))
                    .hint("use letters, digits, '_' and '-'"),
            );
        }
        seen.insert(name, (file, node.name.referenced));
        let mut spec = spec_of(node, &transport, loaded.use_sim_time);
        spec.fault_injection = loaded.fault_injection.is_some();
        let kind = check_node(file, node, &spec, &mut diagnostics, &mut endpoints);
        spec.faults = faults_of(file, node, kind, &spec, &mut diagnostics);
        check_cpus(file, Some(node), &node.cpu_affinity, &mut diagnostics);
        specs.insert(name, (kind, spec));
    }
    check_topics(&endpoints, &mut diagnostics);
    if let Some(access) = &loaded.zenoh.access_control {
        for (topic, allowed) in &access.publishers {
            if !topic.starts_with('/') {
                diagnostics.push(Diagnostic::file(
                    &loaded.root,
                    format!("zenoh.access_control.publishers: {topic:?} must be a topic starting with '/'"),
                ));
            }
            for name in allowed {
                if !seen.contains_key(name.as_str()) && !access.external.contains(name) {
                    diagnostics.push(
                        Diagnostic::file(
                            &loaded.root,
                            format!("zenoh.access_control.publishers: {topic} names {name:?}, which is no node of this launch"),
                        )
                        .hint("list outside processes under `external:`"),
                    );
                }
            }
        }
    }
    if let Some(access) = &loaded.zenoh.access_control {
        // An external user's sessions name themselves `<user>` or `<user>-<anything>`, and the
        // router lets the user write health and liveliness under those names: a node of the
        // launch named so could be spoken for by that outside process.
        for (file, node) in &loaded.nodes {
            let name = node.name.value.as_str();
            if let Some(user) =
                access.external.iter().find(|u| name == u.as_str() || name.starts_with(&format!("{u}-")))
            {
                diagnostics.push(
                    Diagnostic::at(file, &node.name.referenced, format!("node name `{name}` is taken by external user {user:?}"))
                        .hint(format!("an outside process of user {user:?} may write the health of `{user}` and `{user}-*`: rename the node")),
                );
            }
        }
    }
    if let (Some(injection), Some(access)) = (&loaded.fault_injection, &loaded.zenoh.access_control) {
        for user in &injection.users {
            if !access.external.contains(user) {
                diagnostics.push(
                    Diagnostic::file(&loaded.root, format!("fault_injection.users: {user:?} is no external user"))
                        .hint("fault commands come from a bench outside the launch: list it under zenoh.access_control.external"),
                );
            }
        }
    }
    check_cpus(&loaded.root, None, &loaded.launcher.cpu_affinity, &mut diagnostics);
    if loaded.launcher.priority.is_some_and(|p| !(1..=99).contains(&p)) {
        diagnostics.push(Diagnostic::file(&loaded.root, "launcher.priority is outside SCHED_FIFO's 1..=99".into()));
    }
    let safety_of = |name: &str| -> bool {
        let Some((_, node)) = loaded.nodes.iter().find(|(_, n)| n.name.value == name) else { return false };
        node.safety.unwrap_or_else(|| node.kind.as_ref().is_some_and(|k| SAFETY_KINDS.contains(&k.value.as_str())))
    };
    let grouped = check_groups(loaded, &specs, &seen, &mut diagnostics);
    for (file, group) in &loaded.groups {
        let safety: BTreeSet<bool> = group.nodes.iter().map(|m| safety_of(&m.value)).collect();
        if safety.len() > 1 {
            diagnostics.push(
                Diagnostic::at(
                    file,
                    &group.name.referenced,
                    format!("group `{}` mixes safety units and other nodes", group.name.value),
                )
                .hint("a group is one process: a failing perception node would take the safety units with it"),
            );
        }
    }
    let acl = loaded.zenoh.access_control.as_ref().map(|access| {
        let mut acl =
            acl_of(&endpoints, access, loaded.fault_injection.as_ref(), loaded.use_sim_time, seen.keys().copied());
        // A group's members share one session, opened as its first member (`reflex group`).
        for (_, group) in &loaded.groups {
            if let Some((first, rest)) = group.nodes.split_first() {
                for member in rest {
                    acl.sessions.insert(member.value.clone(), first.value.clone());
                }
            }
        }
        acl
    });

    if !diagnostics.is_empty() {
        return Err(diagnostics);
    }
    let mut units = Vec::new();
    for (_, group) in &loaded.groups {
        let members = group
            .nodes
            .iter()
            .filter_map(|member| {
                let (kind, spec) = specs.get(member.value.as_str())?;
                Some(((*kind)?.name.to_string(), spec.clone()))
            })
            .collect();
        let first =
            loaded.nodes.iter().map(|(_, n)| n).find(|n| Some(&n.name.value) == group.nodes.first().map(|m| &m.value));
        units.push(Unit {
            name: group.name.value.clone(),
            program: Program::Group { members },
            restart: first.map_or_else(RestartEntry::default, |n| n.restart),
            env: group_env(loaded, group),
            cpu_affinity: first.map_or_else(Vec::new, |n| n.cpu_affinity.clone()),
            priority: first.and_then(|n| n.priority.as_ref().map(|p| p.value)),
            required: true,
            safety: group.nodes.first().is_some_and(|m| safety_of(&m.value)),
        });
    }
    for (_, node) in &loaded.nodes {
        let name = node.name.value.as_str();
        if grouped.contains(name) {
            continue;
        }
        let (kind, spec) = specs.remove(name).expect("every node has a spec");
        let program = match (kind, &node.exec) {
            (Some(kind), _) => Program::Kind { kind: kind.name.to_string(), spec },
            (None, Some(exec)) => Program::Exec { program: exec.value.clone(), args: node.args.clone(), spec },
            (None, None) => unreachable!("checked above"),
        };
        units.push(Unit {
            name: name.to_string(),
            program,
            restart: node.restart,
            env: node.env.clone(),
            cpu_affinity: node.cpu_affinity.clone(),
            priority: node.priority.as_ref().map(|p| p.value),
            required: node.required,
            safety: safety_of(name),
        });
    }
    Ok(Plan { transport, access: loaded.zenoh.access_control.clone(), acl, launcher: loaded.launcher.clone(), units })
}

/// The transport every node of the launch gets, from the file's `zenoh:` section.
pub fn transport_of(zenoh: &ZenohSection) -> TransportConfig {
    let mut transport = TransportConfig::default();
    if let Some(mode) = zenoh.mode {
        transport.mode = match mode {
            ZenohMode::Peer => Mode::Peer,
            ZenohMode::Client => Mode::Client,
            ZenohMode::Router => Mode::Router,
        };
    }
    if let Some(listen) = &zenoh.listen {
        transport.listen = listen.clone();
    }
    if let Some(connect) = &zenoh.connect {
        transport.connect = connect.clone();
    }
    if let Some(shared_memory) = zenoh.shared_memory {
        transport.shared_memory = shared_memory;
    }
    if let Some(prefix) = &zenoh.prefix {
        transport.prefix = prefix.clone();
    }
    transport.rendezvous_port = zenoh.rendezvous_port;
    transport.gateway = zenoh.gateway.clone().unwrap_or_default();
    transport.tls = zenoh.tls.as_ref().map(|tls| Tls {
        root_ca_certificate: tls.root_ca_certificate.clone(),
        certificate: tls.certificate.clone(),
        private_key: tls.private_key.clone(),
        mutual: tls.mutual,
    });
    if let Some(size) = zenoh.max_message_size {
        transport.max_message_size = size;
    }
    transport
}

/// A launch file's fault entry as the runtime's command.
fn fault_command(entry: &FaultEntry, input: Option<String>) -> FaultCommand {
    FaultCommand {
        input,
        drop_pct: entry.drop_pct,
        delay_ms: entry.delay_ms,
        freeze: entry.freeze,
        corrupt_pct: entry.corrupt_pct,
        stall_ms: entry.stall_ms,
        clear: false,
    }
}

/// CPUs must exist (the launcher would otherwise fail after starting the unit).
fn check_cpus(file: &Path, node: Option<&NodeEntry>, cpus: &[usize], diagnostics: &mut Diagnostics) {
    // SAFETY: sysconf has no preconditions.
    let configured = usize::try_from(unsafe { libc::sysconf(libc::_SC_NPROCESSORS_CONF) }).unwrap_or(1).max(1);
    let limit = configured.min(libc::CPU_SETSIZE as usize);
    for &cpu in cpus {
        if cpu >= limit {
            let message = format!("cpu_affinity: CPU {cpu} does not exist on this machine");
            let hint = "`nproc --all` tells how many CPUs there are; they are numbered from 0";
            diagnostics.push(
                match node {
                    Some(node) => {
                        Diagnostic::at(file, &node.name.referenced, format!("node `{}`: {message}", node.name.value))
                    }
                    None => Diagnostic::file(file, format!("launcher.{message}")),
                }
                .hint(hint),
            );
        }
    }
}

/// Least privilege from the launch graph: who may write each topic.
fn acl_of<'a>(
    endpoints: &[Endpoint],
    access: &crate::launch_file::AccessControlEntry,
    injection: Option<&crate::launch_file::FaultInjectionEntry>,
    use_sim_time: bool,
    nodes: impl Iterator<Item = &'a str>,
) -> reflex_runtime::transport::Acl {
    let mut publishers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut add = |topic: &str, user: &str| {
        let users = publishers.entry(topic.to_string()).or_default();
        if !users.iter().any(|u| u == user) {
            users.push(user.to_string());
        }
    };
    for endpoint in endpoints {
        match endpoint.direction {
            Direction::Output => add(&endpoint.topic, endpoint.node),
            Direction::Input if endpoint.external => {
                for user in &access.external {
                    add(&endpoint.topic, user);
                }
            }
            Direction::Input => {}
        }
    }
    if use_sim_time && !access.publishers.contains_key(topics::CLOCK) {
        for user in &access.external {
            add(topics::CLOCK, user);
        }
    }
    for (topic, users) in &access.publishers {
        publishers.insert(topic.clone(), users.clone());
    }
    reflex_runtime::transport::Acl {
        publishers,
        nodes: nodes.map(str::to_string).collect(),
        external: access.external.clone(),
        fault_injectors: injection.map(|i| i.users.clone()).unwrap_or_default(),
        sessions: BTreeMap::new(),
    }
}

/// Kind, parameters, ports and inputs of one node; returns its kind when it has a known one.
fn check_node<'a>(
    file: &'a Path,
    node: &'a NodeEntry,
    spec: &NodeSpec,
    diagnostics: &mut Diagnostics,
    endpoints: &mut Vec<Endpoint<'a>>,
) -> Option<&'static reflex_runtime::NodeKind> {
    let name = node.name.value.as_str();
    let at_name = node.name.referenced;
    let kind = match (&node.kind, &node.exec) {
        (Some(_), Some(exec)) => {
            diagnostics.push(
                Diagnostic::at(file, &exec.referenced, format!("node `{name}` has both `kind:` and `exec:`"))
                    .hint("a node is either a built-in kind or an external program"),
            );
            None
        }
        (None, None) => {
            diagnostics.push(
                Diagnostic::at(file, &at_name, format!("node `{name}` says neither `kind:` nor `exec:`"))
                    .hint(format!("built-in kinds: {}", kind_names())),
            );
            return None;
        }
        (Some(kind), None) => match kinds::find(&kind.value) {
            Some(found) => Some(found),
            None => {
                let hint = match kinds::closest(&kind.value) {
                    Some(close) => format!("did you mean `{close}`? built-in kinds: {}", kind_names()),
                    None => format!("built-in kinds: {}", kind_names()),
                };
                diagnostics.push(
                    Diagnostic::at(file, &kind.referenced, format!("unknown node kind `{}`", kind.value)).hint(hint),
                );
                return None;
            }
        },
        (None, Some(_)) => None,
    };
    if let Some(priority) = &node.priority {
        if !(1..=99).contains(&priority.value) {
            diagnostics.push(
                Diagnostic::at(
                    file,
                    &priority.referenced,
                    format!("priority {} is outside SCHED_FIFO's 1..=99", priority.value),
                )
                .hint("leave `priority` out for normal scheduling"),
            );
        }
    }
    if let Some(inline) = node.inline.as_ref().filter(|inline| inline.value) {
        if !kind.is_some_and(|kind| kind.inline) {
            let inline_kinds: Vec<&str> = kinds::KINDS.iter().filter(|k| k.inline).map(|k| k.name).collect();
            diagnostics.push(
                Diagnostic::at(file, &inline.referenced, format!("node `{name}` cannot run inline"))
                    .hint(format!("only kinds whose calls are short tasks can: {}", inline_kinds.join(", "))),
            );
        }
    }
    let Some(kind) = kind else {
        // An external program: its declared topics take part in the topic checks.
        for (topics, direction) in [(&node.publishes, Direction::Output), (&node.subscribes, Direction::Input)] {
            for topic in topics {
                endpoints.push(Endpoint {
                    optional: false,
                    external: false,
                    node: name,
                    port: topic.clone(),
                    topic: resolve_topic(&node.namespace, topic),
                    type_name: None,
                    direction,
                    file,
                    at: at_name,
                });
            }
        }
        return None;
    };

    if let Err(InvalidParam { path, message }) = (kind.check_params)(&spec.params) {
        let first = path.split(['.', '[']).next().unwrap_or_default();
        let at = node.params.get(first).map_or(at_name, |v| v.referenced);
        let what = if path.is_empty() { String::new() } else { format!(" `{path}`") };
        diagnostics.push(
            Diagnostic::at(file, &at, format!("node `{name}` ({}): parameter{what}: {message}", kind.name))
                .hint(format!("`reflex kinds {}` lists its parameters", kind.name)),
        );
    }
    let port_names = || known_list("ports", kind.ports.iter().map(|p| p.name.to_string()).collect::<Vec<_>>().iter());
    for (key, topic) in &node.remap {
        if !kind.ports.iter().any(|p| p.name == key || p.topic == key) {
            diagnostics.push(
                Diagnostic::at(
                    file,
                    &topic.referenced,
                    format!("node `{name}` ({}) has no port `{key}` to remap", kind.name),
                )
                .hint(port_names()),
            );
        }
    }
    for (key, input) in &node.inputs {
        match kind.port(key) {
            Some(port) if port.direction == Direction::Input => {}
            _ => {
                let inputs: Vec<String> =
                    kind.ports.iter().filter(|p| p.direction == Direction::Input).map(|p| p.name.to_string()).collect();
                diagnostics.push(
                    Diagnostic::at(
                        file,
                        &input.referenced,
                        format!("node `{name}` ({}) has no input `{key}`", kind.name),
                    )
                    .hint(known_list("inputs", inputs.iter())),
                );
            }
        }
        if input.value.deadline_ms.is_some_and(|d| !(d > 0.0)) || input.value.capacity == Some(0) {
            diagnostics.push(
                Diagnostic::at(
                    file,
                    &input.referenced,
                    format!("node `{name}`: input `{key}` needs capacity >= 1 and deadline_ms > 0"),
                )
                .hint("leave a setting out to use its default"),
            );
        }
    }
    for port in kind.ports {
        let at = node
            .inputs
            .get(port.name)
            .map(|i| i.referenced)
            .or_else(|| node.remap.get(port.name).map(|r| r.referenced))
            .unwrap_or(at_name);
        let external = node.inputs.get(port.name).is_some_and(|i| i.value.external);
        endpoints.push(Endpoint {
            optional: port.optional || external,
            external,
            node: name,
            port: port.name.to_string(),
            topic: spec.topic(port),
            type_name: Some(port.type_name),
            direction: port.direction,
            file,
            at,
        });
    }
    Some(kind)
}

fn kind_names() -> String {
    kinds::KINDS.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
}

/// The faults a node starts with: its `faults:` for every input (and its callback stall), then
/// each input's own `fault:` on that input's topic. Out-of-range values are diagnosed.
fn faults_of(
    file: &Path,
    node: &NodeEntry,
    kind: Option<&'static reflex_runtime::NodeKind>,
    spec: &NodeSpec,
    diagnostics: &mut Diagnostics,
) -> Vec<reflex_runtime::fault::FaultCommand> {
    let name = &node.name.value;
    let mut commands = Vec::new();
    if let Some(entry) = &node.faults {
        let command = fault_command(&entry.value, None);
        match command.validate() {
            Ok(()) => commands.push(command),
            Err(error) => {
                diagnostics.push(Diagnostic::at(file, &entry.referenced, format!("node `{name}`: faults: {error}")))
            }
        }
    }
    for (key, input) in &node.inputs {
        let Some(fault) = input.value.fault else { continue };
        if fault.stall_ms.is_some() {
            diagnostics.push(
                Diagnostic::at(
                    file,
                    &input.referenced,
                    format!("node `{name}`: input `{key}`: stall_ms in an input's fault"),
                )
                .hint("a stall is the node's: put it under the node's `faults:`"),
            );
            continue;
        }
        // An unknown input was diagnosed already; an exec node's inputs are named by topic.
        let topic = match kind {
            Some(kind) => match kind.port(key) {
                Some(port) => spec.topic(port),
                None => continue,
            },
            None => reflex_runtime::spec::resolve_topic(&spec.namespace, key),
        };
        let command = fault_command(&fault, Some(topic));
        match command.validate() {
            Ok(()) => commands.push(command),
            Err(error) => diagnostics.push(Diagnostic::at(
                file,
                &input.referenced,
                format!("node `{name}`: input `{key}`: fault: {error}"),
            )),
        }
    }
    commands
}

/// The spec a node's process receives.
fn spec_of(node: &NodeEntry, transport: &TransportConfig, use_sim_time: bool) -> NodeSpec {
    NodeSpec {
        name: node.name.value.clone(),
        namespace: node.namespace.clone(),
        params: serde_json::Value::Object(node.params.iter().map(|(k, v)| (k.clone(), v.value.clone())).collect()),
        remap: node.remap.iter().map(|(k, v)| (k.clone(), v.value.clone())).collect(),
        inputs: node
            .inputs
            .iter()
            .map(|(k, v)| {
                let defaults = InputOptions::default();
                let options = InputOptions {
                    capacity: v.value.capacity.unwrap_or(defaults.capacity),
                    policy: match v.value.policy {
                        Some(QueuePolicy::DropOldest) => OverflowPolicy::DropOldest,
                        Some(QueuePolicy::DropNewest) => OverflowPolicy::DropNewest,
                        None => defaults.policy,
                    },
                    deadline_ms: v.value.deadline_ms,
                };
                (k.clone(), options)
            })
            .collect(),
        transport: transport.clone(),
        use_sim_time,
        faults: Vec::new(),
        fault_injection: false,
        // Grouped nodes too: a group process locks its memory when any member asks for it.
        lock_memory: node.lock_memory,
        inline: node.inline.as_ref().is_some_and(|inline| inline.value),
    }
}

fn check_topics(endpoints: &[Endpoint], diagnostics: &mut Diagnostics) {
    fn publishers<'e, 'a>(endpoints: &'e [Endpoint<'a>], topic: &'e str) -> impl Iterator<Item = &'e Endpoint<'a>> {
        endpoints.iter().filter(move |e| e.direction == Direction::Output && e.topic == topic)
    }
    for input in endpoints.iter().filter(|e| e.direction == Direction::Input) {
        let sources: Vec<&Endpoint> = publishers(endpoints, &input.topic).collect();
        if sources.is_empty() && !input.optional {
            let same_type: BTreeSet<&str> = endpoints
                .iter()
                .filter(|e| {
                    e.direction == Direction::Output && (input.type_name.is_none() || e.type_name == input.type_name)
                })
                .map(|e| e.topic.as_str())
                .collect();
            let hint = if same_type.is_empty() {
                "no node publishes this type".to_string()
            } else {
                format!("published topics of this type: {}", same_type.into_iter().collect::<Vec<_>>().join(", "))
            };
            diagnostics.push(
                Diagnostic::at(
                    input.file,
                    &input.at,
                    format!(
                        "node `{}` subscribes to `{}` (input `{}`), which no node publishes",
                        input.node, input.topic, input.port
                    ),
                )
                .hint(hint),
            );
        }
        for source in sources {
            if let (Some(expected), Some(offered)) = (input.type_name, source.type_name) {
                if expected != offered {
                    diagnostics.push(Diagnostic::at(
                        input.file,
                        &input.at,
                        format!(
                            "node `{}` expects {expected} on `{}`, but node `{}` publishes {offered} there",
                            input.node, input.topic, source.node
                        ),
                    ));
                }
            }
        }
    }
    for command in COMMAND_TOPICS {
        let sources: Vec<&Endpoint> = publishers(endpoints, command).collect();
        for extra in sources.iter().skip(1) {
            diagnostics.push(
                Diagnostic::at(
                    extra.file,
                    &extra.at,
                    format!("node `{}` is a second publisher on command topic `{command}`", extra.node),
                )
                .hint(format!(
                    "`{command}` must have exactly one publisher; `{}` already publishes it",
                    sources[0].node
                )),
            );
        }
    }
}

/// Checks `groups:`; returns the names of grouped nodes.
fn check_groups<'a>(
    loaded: &'a Loaded,
    specs: &BTreeMap<&str, (Option<&'static reflex_runtime::NodeKind>, NodeSpec)>,
    seen: &BTreeMap<&str, (&Path, Location)>,
    diagnostics: &mut Diagnostics,
) -> BTreeSet<&'a str> {
    let mut grouped = BTreeSet::new();
    let mut group_names: BTreeMap<&str, ()> = BTreeMap::new();
    for (file, group) in &loaded.groups {
        let name = group.name.value.as_str();
        if group_names.insert(name, ()).is_some() || seen.contains_key(name) {
            diagnostics.push(Diagnostic::at(
                file,
                &group.name.referenced,
                format!("group name `{name}` is already used"),
            ));
        }
        if group.nodes.is_empty() {
            diagnostics.push(Diagnostic::at(file, &group.name.referenced, format!("group `{name}` has no nodes")));
        }
        for member in &group.nodes {
            let member_name = member.value.as_str();
            match specs.get(member_name) {
                None => diagnostics.push(
                    Diagnostic::at(
                        file,
                        &member.referenced,
                        format!("group `{name}` names unknown node `{member_name}`"),
                    )
                    .hint(known_list("nodes", specs.keys().map(|k| k.to_string()).collect::<Vec<_>>().iter())),
                ),
                Some((None, _)) => diagnostics.push(
                    Diagnostic::at(
                        file,
                        &member.referenced,
                        format!("node `{member_name}` cannot join group `{name}`"),
                    )
                    .hint("only built-in kinds run as threads of one process; `exec:` nodes run alone"),
                ),
                Some((Some(_), _)) => {
                    if !grouped.insert(member_name) {
                        diagnostics.push(Diagnostic::at(
                            file,
                            &member.referenced,
                            format!("node `{member_name}` is in more than one group"),
                        ));
                    }
                }
            }
        }
    }
    grouped
}

fn group_env(loaded: &Loaded, group: &GroupEntry) -> BTreeMap<String, String> {
    let members: BTreeSet<&str> = group.nodes.iter().map(|m| m.value.as_str()).collect();
    loaded
        .nodes
        .iter()
        .filter(|(_, n)| members.contains(n.name.value.as_str()))
        .flat_map(|(_, n)| n.env.clone())
        .collect()
}

/// Loads and checks the launch file at `path`: its plan, or every diagnostic rendered with file,
/// line and column (what `reflex check` prints).
pub fn run_check(path: &Path, overrides: &BTreeMap<String, String>) -> Result<Plan, String> {
    let loaded =
        crate::launch_file::load(path, overrides).map_err(|d| d.render(&BTreeMap::<PathBuf, String>::new()))?;
    check(&loaded).map_err(|d| d.render(&loaded.sources))
}
