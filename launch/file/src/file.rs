//! The launch-file format: typed structs (unknown keys refused), `${arg:NAME}` substitution,
//! `--set NAME=VALUE` overrides and `include:` of other files. Every value a later check may
//! complain about keeps its file, line and column.
//!
//! The fully commented reference is `launch/reference.yaml`; `reflex schema` prints the JSON
//! schema generated from these types.

use crate::diagnostics::{Diagnostic, Diagnostics};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A launch file as written.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LaunchFile {
    /// Arguments usable as `${arg:NAME}` anywhere in this file, with their defaults.
    #[serde(default)]
    pub args: BTreeMap<String, ArgDecl>,
    /// Transport settings shared by every node of this launch (top-level file only).
    #[serde(default)]
    pub zenoh: Option<ZenohSection>,
    /// Every node follows the simulation time published on `/clock` (`rosgraph_msgs/Clock`)
    /// instead of the wall clock: deadlines, budgets, timers and stamps run on it (top-level
    /// file only; `reflex sim` sets it for lock-step runs).
    #[serde(default)]
    pub use_sim_time: Option<bool>,
    /// Other launch files whose nodes join this launch.
    #[serde(default)]
    pub include: Vec<Include>,
    /// The nodes to start.
    #[serde(default)]
    pub nodes: Vec<NodeEntry>,
    /// Nodes composed into one process (one thread each), for the lowest latency between them.
    #[serde(default)]
    pub groups: Vec<GroupEntry>,
    /// Fault injection at run time (benches, HIL): off unless present. Every node then listens
    /// on its fault key, and with access control only these users may send (top-level only).
    #[serde(default)]
    pub fault_injection: Option<FaultInjectionEntry>,
    /// Scheduling of the launcher itself, which routes every message when access control is on
    /// (top-level only).
    #[serde(default)]
    pub launcher: Option<LauncherEntry>,
}

/// `fault_injection:` of a launch file.
#[derive(Debug, Deserialize, JsonSchema, Clone, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FaultInjectionEntry {
    /// Users (external, e.g. `bench`) that may send fault commands.
    #[serde(default)]
    pub users: Vec<String>,
}

/// `launcher:` of a launch file: its own real-time scheduling (it is the router).
#[derive(Debug, Deserialize, JsonSchema, Clone, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LauncherEntry {
    /// SCHED_FIFO priority (1-99) for the launcher's threads, the router's among them.
    pub priority: Option<u8>,
    /// CPUs the launcher may run on.
    #[serde(default)]
    pub cpu_affinity: Vec<usize>,
    /// Lock the launcher's memory.
    #[serde(default)]
    pub lock_memory: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArgDecl {
    /// Value when neither an include nor `--set` gives one. Without it the argument is required.
    #[schemars(with = "Option<serde_json::Value>")]
    pub default: Option<Spanned<serde_json::Value>>,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Include {
    /// Path of the launch file, relative to the including file.
    #[schemars(with = "String")]
    pub file: Spanned<String>,
    /// Argument values for the included file.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, serde_json::Value>")]
    pub args: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Deserialize, JsonSchema, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct ZenohSection {
    /// `peer` (default), `client` or `router`.
    pub mode: Option<ZenohMode>,
    /// Endpoints to listen on; default: loopback with the rendezvous port.
    pub listen: Option<Vec<String>>,
    /// Endpoints to connect to; default: the loopback rendezvous.
    pub connect: Option<Vec<String>>,
    /// Large payloads through shared memory between processes on one host (default true).
    pub shared_memory: Option<bool>,
    /// Key-expression prefix of every topic (default `reflex`).
    pub prefix: Option<String>,
    /// Loopback rendezvous port when `listen` and `connect` are empty (default 7450, or
    /// REFLEX_ZENOH_PORT).
    pub rendezvous_port: Option<u16>,
    /// Extra endpoints the launcher listens on for processes off this host's loopback (a
    /// bench in another network namespace, a ground station), e.g. `tcp/10.0.0.1:7447` or
    /// `tls/...`; the launcher then routes, and its nodes are its clients.
    pub gateway: Option<Vec<String>>,
    /// Authentication and access control: every process gets its own credentials (a process
    /// without them cannot connect), and only the named nodes may publish on guarded topics.
    pub access_control: Option<AccessControlEntry>,
    /// Largest message accepted from a link, bytes (default 16 MiB); larger ones are dropped.
    pub max_message_size: Option<usize>,
    /// Certificates for `tls/...` endpoints in `listen`/`connect` (the off-vehicle link):
    /// `root_ca_certificate`, `certificate`, `private_key` (PEM paths, checked at start-up) and
    /// `mutual` (mTLS).
    pub tls: Option<TlsEntry>,
}

/// `zenoh.mode`.
#[derive(Debug, Deserialize, JsonSchema, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ZenohMode {
    /// Talks directly to other peers; the default on one host.
    Peer,
    /// Talks only through a router.
    Client,
    /// Routes for others.
    Router,
}

/// `zenoh.tls`: PEM files and mutual TLS.
#[derive(Debug, Deserialize, JsonSchema, Clone, Default, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TlsEntry {
    pub root_ca_certificate: PathBuf,
    pub certificate: PathBuf,
    pub private_key: PathBuf,
    pub mutual: bool,
}

/// `inputs.<port>.policy`.
#[derive(Debug, Deserialize, JsonSchema, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum QueuePolicy {
    /// Keep the newest message (latest wins).
    DropOldest,
    /// Keep the backlog, drop what arrives while full.
    DropNewest,
}

/// `zenoh.access_control` of a launch file.
#[derive(Debug, Deserialize, JsonSchema, Clone, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AccessControlEntry {
    /// Every topic may be written only by the nodes that declare it as an output (and topics of
    /// inputs marked `external` by the external users); a topic named here may be written by
    /// exactly the users listed instead, e.g. `/clock: [simulator]`.
    #[serde(default)]
    pub publishers: BTreeMap<String, Vec<String>>,
    /// Users for processes outside this launch (a simulator, a bench); their credentials are
    /// written to `credentials_dir` as `<user>.password`.
    #[serde(default)]
    pub external: Vec<String>,
    /// Where the launcher writes the external users' passwords (mode 0600): a folder that is
    /// ours and not open to others (checked), or a new private folder (0700) under the temporary
    /// directory by default. The files are removed when the launch ends. Nodes of the launch get
    /// theirs through a pipe, never a file.
    #[serde(default)]
    pub credentials_dir: Option<PathBuf>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeEntry {
    /// Unique name of the node in this launch.
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// A built-in node kind of the `reflex` binary (`reflex kinds` lists them).
    #[schemars(with = "Option<String>")]
    pub kind: Option<Spanned<String>>,
    /// An external program to run instead of a built-in kind.
    #[schemars(with = "Option<String>")]
    pub exec: Option<Spanned<String>>,
    /// Command-line arguments of an `exec` program.
    #[serde(default)]
    pub args: Vec<String>,
    /// Parameters, checked against the kind's typed configuration.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, serde_json::Value>")]
    pub params: BTreeMap<String, Spanned<serde_json::Value>>,
    /// Topic renames: port name (or default topic) → topic.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub remap: BTreeMap<String, Spanned<String>>,
    /// Prefix for the node's relative topics.
    #[serde(default)]
    pub namespace: String,
    /// Environment variables of the node's process.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub restart: RestartEntry,
    /// CPUs the process may run on.
    #[serde(default)]
    pub cpu_affinity: Vec<usize>,
    /// SCHED_FIFO priority (1-99), set before the program starts so every thread it creates
    /// (zenoh's and OpenVINO's too) runs at it; a warning where the OS refuses.
    #[serde(default)]
    #[schemars(with = "Option<u8>")]
    pub priority: Option<Spanned<u8>>,
    /// Lock the process's memory (`mlockall`) so the hot path never waits for a page.
    #[serde(default)]
    pub lock_memory: bool,
    /// Handle each input message on the thread that delivers it (zenoh's receive thread; in a
    /// group, the publishing member's thread) instead of waking the node's own: one wake-up
    /// less per message. For kinds with short calls that support it (`reflex kinds`).
    #[serde(default)]
    #[schemars(with = "Option<bool>")]
    pub inline: Option<Spanned<bool>>,
    /// The group (one process, its members as threads) this node runs in, with every other node
    /// naming the same one; the same as listing it under `groups:`. Empty or absent: a process
    /// of its own. With a `${arg:...}` value, a launch argument chooses the deployment.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub group: Option<Spanned<String>>,
    /// A safety unit is never stopped because another unit failed (default: true for the
    /// `monitor`, `arbiter` and `actuator` kinds).
    #[serde(default)]
    pub safety: Option<bool>,
    /// Per input port: queue capacity, overflow policy, deadline.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, InputEntry>")]
    pub inputs: BTreeMap<String, Spanned<InputEntry>>,
    /// Faults injected from the start (benches, HIL): `stall_ms` of the node's callback, and
    /// drop/delay/freeze/corrupt on every input; an input's own `fault:` wins over these.
    #[serde(default)]
    #[schemars(with = "Option<FaultEntry>")]
    pub faults: Option<Spanned<FaultEntry>>,
    /// For `exec` nodes: topics the program publishes (used by the checks).
    #[serde(default)]
    pub publishes: Vec<String>,
    /// For `exec` nodes: topics the program subscribes to.
    #[serde(default)]
    pub subscribes: Vec<String>,
    /// Whether the launch fails when this node fails for good (default true).
    #[serde(default = "yes")]
    pub required: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize, JsonSchema, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub struct InputEntry {
    /// Messages queued before the overflow policy drops (default 8).
    pub capacity: Option<usize>,
    /// `drop_oldest` (default: latest wins) or `drop_newest`.
    pub policy: Option<QueuePolicy>,
    /// Maximum gap between messages before a deadline breach is raised.
    pub deadline_ms: Option<f64>,
    /// Published from outside this launch (`reflex replay`, another computer): no node here
    /// needs to publish it.
    #[serde(default)]
    pub external: bool,
    /// Faults injected into this input from the start (see `reflex fault --help`).
    #[serde(default)]
    pub fault: Option<FaultEntry>,
}

/// Injected faults (the runtime's `fault` module): percentages 0–100, times in ms.
#[derive(Debug, Deserialize, JsonSchema, Clone, Copy, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FaultEntry {
    /// Drop this share of arriving messages, %.
    pub drop_pct: Option<f64>,
    /// Hold each message this long before the node may take it, ms.
    pub delay_ms: Option<f64>,
    /// Repeat the last message in place of every new one.
    pub freeze: Option<bool>,
    /// Flip bytes in this share of messages, %.
    pub corrupt_pct: Option<f64>,
    /// The node's per-message callback stalls this long, ms (a node's `faults:` only).
    pub stall_ms: Option<f64>,
}

#[derive(Debug, Deserialize, JsonSchema, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Never restart (default).
    #[default]
    Never,
    /// Restart when the process exits with an error or a signal.
    OnFailure,
    /// Restart whenever the process exits, until the launch stops.
    Always,
}

#[derive(Debug, Deserialize, JsonSchema, Clone, Copy)]
#[serde(deny_unknown_fields, default)]
pub struct RestartEntry {
    pub policy: RestartPolicy,
    /// Restarts before giving up.
    pub max_restarts: u32,
    /// Wait before the first restart; doubles each time up to `backoff_max_ms`.
    pub backoff_ms: u64,
    pub backoff_max_ms: u64,
}

impl Default for RestartEntry {
    fn default() -> Self {
        Self { policy: RestartPolicy::Never, max_restarts: 3, backoff_ms: 500, backoff_max_ms: 10_000 }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupEntry {
    /// Name of the process (used in logs).
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// Names of built-in nodes that run as threads of this one process.
    #[schemars(with = "Vec<String>")]
    pub nodes: Vec<Spanned<String>>,
}

/// A launch file with its includes resolved: every node with the file it came from.
pub struct Loaded {
    pub root: PathBuf,
    pub zenoh: ZenohSection,
    pub use_sim_time: bool,
    pub fault_injection: Option<FaultInjectionEntry>,
    pub launcher: LauncherEntry,
    pub nodes: Vec<(PathBuf, NodeEntry)>,
    pub groups: Vec<(PathBuf, GroupEntry)>,
    /// Text of every file read, for snippets in diagnostics.
    pub sources: BTreeMap<PathBuf, String>,
    /// Includes followed so far (bounded: diamonds of includes cannot explode).
    included: usize,
}

/// At most this many includes in one launch, nested at most this deep.
const MAX_INCLUDES: usize = 64;
const MAX_INCLUDE_DEPTH: usize = 8;

/// Reads `path` with `overrides` (`--set`), following includes. Syntax and type errors of any
/// file end the load; they are returned as diagnostics with file, line and column.
pub fn load(path: &Path, overrides: &BTreeMap<String, String>) -> Result<Loaded, Diagnostics> {
    let mut loaded = Loaded {
        root: path.to_path_buf(),
        zenoh: ZenohSection::default(),
        use_sim_time: false,
        fault_injection: None,
        launcher: LauncherEntry::default(),
        nodes: Vec::new(),
        groups: Vec::new(),
        sources: BTreeMap::new(),
        included: 0,
    };
    let mut stack = Vec::new();
    load_into(path, overrides, &mut loaded, &mut stack, None)?;
    Ok(loaded)
}

fn load_into(
    path: &Path,
    overrides: &BTreeMap<String, String>,
    loaded: &mut Loaded,
    stack: &mut Vec<PathBuf>,
    included_from: Option<(&Path, &Spanned<String>)>,
) -> Result<(), Diagnostics> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        let message = format!("cannot read launch file {}: {error}", path.display());
        match included_from {
            Some((file, at)) => Diagnostics::one(Diagnostic::at(file, &at.referenced, message)),
            None => Diagnostics::one(Diagnostic::file(path, message)),
        }
    })?;
    let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    if stack.contains(&canonical) {
        let (file, at) = included_from.expect("only includes can repeat a file");
        return Err(Diagnostics::one(Diagnostic::at(
            file,
            &at.referenced,
            format!("include cycle: {} includes itself", path.display()),
        )));
    }
    loaded.sources.insert(path.to_path_buf(), text.clone());
    let text = substitute(path, &text, overrides)?;
    let file: LaunchFile =
        serde_saphyr::from_str(&text).map_err(|error| Diagnostics::one(Diagnostic::from_yaml(path, &error)))?;
    if let Some(zenoh) = &file.zenoh {
        if let Some((including, at)) = included_from {
            // One transport for the whole launch: an included file cannot change it.
            let message =
                format!("{} has a `zenoh:` section, but only the top-level launch file may set one", path.display());
            return Err(Diagnostics::one(Diagnostic::at(including, &at.referenced, message)));
        }
        loaded.zenoh = zenoh.clone();
    }
    if let Some(use_sim_time) = file.use_sim_time {
        if let Some((including, at)) = included_from {
            let message = format!(
                "{} sets `use_sim_time`, but only the top-level launch file may (one clock for the whole launch)",
                path.display()
            );
            return Err(Diagnostics::one(Diagnostic::at(including, &at.referenced, message)));
        }
        loaded.use_sim_time = use_sim_time;
    }
    for (present, what) in [(file.fault_injection.is_some(), "fault_injection"), (file.launcher.is_some(), "launcher")]
    {
        if let (true, Some((including, at))) = (present, included_from) {
            let message = format!("{} sets `{what}`, but only the top-level launch file may", path.display());
            return Err(Diagnostics::one(Diagnostic::at(including, &at.referenced, message)));
        }
    }
    if file.fault_injection.is_some() {
        loaded.fault_injection = file.fault_injection.clone();
    }
    if let Some(launcher) = &file.launcher {
        loaded.launcher = launcher.clone();
    }
    stack.push(canonical);
    for include in &file.include {
        let requested = Path::new(&include.file.value);
        if requested.is_absolute() || requested.components().any(|c| c == std::path::Component::ParentDir) {
            let message = format!(
                "include {:?}: only files in this file's folder or below may be included (no absolute paths, no `..`)",
                include.file.value
            );
            return Err(Diagnostics::one(Diagnostic::at(path, &include.file.referenced, message)));
        }
        loaded.included += 1;
        if loaded.included > MAX_INCLUDES || stack.len() >= MAX_INCLUDE_DEPTH {
            let message = format!(
                "include {:?}: more than {MAX_INCLUDES} includes, or nested deeper than {MAX_INCLUDE_DEPTH}",
                include.file.value
            );
            return Err(Diagnostics::one(Diagnostic::at(path, &include.file.referenced, message)));
        }
        let target = path.parent().unwrap_or(Path::new(".")).join(&include.file.value);
        let args = include.args.iter().map(|(k, v)| (k.clone(), scalar_text(v))).collect();
        load_into(&target, &args, loaded, stack, Some((path, &include.file)))?;
    }
    stack.pop();
    let mut groups = file.groups;
    for node in &file.nodes {
        let Some(name) = node.group.as_ref().filter(|name| !name.value.is_empty()) else { continue };
        match groups.iter_mut().find(|group| group.name.value == name.value) {
            Some(group) => group.nodes.push(node.name.clone()),
            None => groups.push(GroupEntry { name: name.clone(), nodes: vec![node.name.clone()] }),
        }
    }
    loaded.nodes.extend(file.nodes.into_iter().map(|node| (path.to_path_buf(), node)));
    loaded.groups.extend(groups.into_iter().map(|group| (path.to_path_buf(), group)));
    Ok(())
}

/// The text a JSON value stands for inside YAML: strings as they are, the rest as JSON.
fn scalar_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

const OPEN: &str = "${arg:";

/// Replaces every `${arg:NAME}` in `text` with the argument's value (override, else default).
/// The `args:` block is read first from a copy in which every substitution is blanked out
/// (same length, so line and column numbers stay true).
fn substitute(path: &Path, text: &str, overrides: &BTreeMap<String, String>) -> Result<String, Diagnostics> {
    #[derive(Deserialize)]
    struct ArgsOnly {
        #[serde(default)]
        args: BTreeMap<String, ArgDecl>,
        #[serde(flatten)]
        _rest: BTreeMap<String, serde::de::IgnoredAny>,
    }
    let occurrences = find_substitutions(path, text)?;
    let mut blanked = text.to_string();
    for (start, end, _) in &occurrences {
        blanked.replace_range(*start..*end, &"x".repeat(end - start));
    }
    let declared: ArgsOnly =
        serde_saphyr::from_str(&blanked).map_err(|e| Diagnostics::one(Diagnostic::from_yaml(path, &e)))?;
    let mut diagnostics = Diagnostics::default();
    for name in overrides.keys() {
        if !declared.args.contains_key(name) {
            diagnostics.push(
                Diagnostic::file(path, format!("argument `{name}` is set but the file declares no such argument"))
                    .hint(known_list("declared arguments", declared.args.keys())),
            );
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (start, end, name) in &occurrences {
        out.push_str(&text[last..*start]);
        let value = overrides
            .get(name)
            .cloned()
            .or_else(|| declared.args.get(name)?.default.as_ref().map(|d| scalar_text(&d.value)));
        match value {
            Some(value) => match place_value(text, *start, &value) {
                Ok(placed) => out.push_str(&placed),
                Err(why) => {
                    let (line, column) = line_column(text, *start);
                    diagnostics.push(
                        Diagnostic::new(path, line, column, format!("argument `{name}` = {value:?}: {why}")).hint(
                            "arguments are values, not YAML: quote the substitution (\"${arg:NAME}\") for free text",
                        ),
                    );
                }
            },
            None => {
                let (line, column) = line_column(text, *start);
                let message = if declared.args.contains_key(name) {
                    format!("argument `{name}` has no default and was not set")
                } else {
                    format!("unknown argument `{name}`")
                };
                let hint = if declared.args.contains_key(name) {
                    format!("give it a value: --set {name}=VALUE")
                } else {
                    known_list("declared arguments", declared.args.keys())
                };
                diagnostics.push(Diagnostic::new(path, line, column, message).hint(hint));
            }
        }
        last = *end;
    }
    out.push_str(&text[last..]);
    diagnostics.into_result(out)
}

/// The text that stands for `value` at byte `offset` of `text`, so that it stays one value
/// there and can never add keys or nodes (M12): inside double quotes it is escaped as a JSON
/// string's content, inside single quotes `'` doubles, and in a plain scalar it must be a plain
/// scalar (no line breaks, no YAML indicators, no `: ` or ` #`).
fn place_value(text: &str, offset: usize, value: &str) -> Result<String, String> {
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err("contains a line break or another control character".into());
    }
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let (mut single, mut double, mut escaped) = (false, false, false);
    for c in text[line_start..offset].chars() {
        match c {
            '\\' if double && !escaped => {
                escaped = true;
                continue;
            }
            '"' if !single && !escaped => double = !double,
            '\'' if !double => single = !single,
            _ => {}
        }
        escaped = false;
    }
    if double {
        let quoted = serde_json::to_string(value).expect("strings serialize");
        return Ok(quoted[1..quoted.len() - 1].to_string());
    }
    if single {
        return Ok(value.replace('\'', "''"));
    }
    let starts_badly = match value.chars().next() {
        None => false,
        Some('-') => value == "-" || value.starts_with("- "),
        Some(c) => "?:,[]{}#&*!|>'\"%@` ".contains(c),
    };
    let inside_badly = value.contains(": ")
        || value.contains(" #")
        || value.ends_with(':')
        || value.ends_with(' ')
        || value.contains(['{', '}', '[', ']', ',']);
    if starts_badly || inside_badly {
        return Err("would not stay one plain value here".into());
    }
    Ok(value.to_string())
}

/// (start, end, name) of every `${arg:NAME}`.
fn find_substitutions(path: &Path, text: &str) -> Result<Vec<(usize, usize, String)>, Diagnostics> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(offset) = text[from..].find(OPEN) {
        let start = from + offset;
        let Some(close) = text[start..].find('}') else {
            let (line, column) = line_column(text, start);
            return Err(Diagnostics::one(Diagnostic::new(
                path,
                line,
                column,
                "unterminated `${arg:` substitution".into(),
            )));
        };
        let name = &text[start + OPEN.len()..start + close];
        if in_comment(text, start) {
            from = start + close + 1;
            continue;
        }
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            let (line, column) = line_column(text, start);
            return Err(Diagnostics::one(Diagnostic::new(
                path,
                line,
                column,
                format!("`{name}` is not an argument name"),
            )));
        }
        found.push((start, start + close + 1, name.to_string()));
        from = start + close + 1;
    }
    Ok(found)
}

/// Whether byte `offset` lies in a YAML comment: after a `#` that starts a comment (at line
/// start or after a space, outside quotes) on the same line.
fn in_comment(text: &str, offset: usize) -> bool {
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let (mut single, mut double, mut previous) = (false, false, ' ');
    for c in text[line_start..offset].chars() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && previous.is_whitespace() => return true,
            _ => {}
        }
        previous = c;
    }
    false
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_column(text: &str, offset: usize) -> (u32, u32) {
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line as u32, column as u32)
}

pub fn known_list<'a>(what: &str, names: impl Iterator<Item = &'a String>) -> String {
    let names: Vec<&str> = names.map(String::as_str).collect();
    if names.is_empty() {
        format!("there are no {what}")
    } else {
        format!("{what}: {}", names.join(", "))
    }
}

/// Parses `NAME=VALUE` pairs from `--set`.
pub fn parse_overrides(pairs: &[String]) -> Result<BTreeMap<String, String>, String> {
    pairs
        .iter()
        .map(|pair| match pair.split_once('=') {
            Some((name, value)) if !name.is_empty() => Ok((name.to_string(), value.to_string())),
            _ => Err(format!("--set {pair:?}: expected NAME=VALUE")),
        })
        .collect()
}

/// The JSON schema of launch files, for editors.
pub fn json_schema() -> String {
    serde_json::to_string_pretty(&schemars::schema_for!(LaunchFile)).expect("schema serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// M12: an argument's value stays one value wherever it is placed.
    #[test]
    fn argument_values_cannot_add_structure() {
        let text = "a: ${arg:x}\nb: \"${arg:x}\"\nc: '${arg:x}'\n";
        let at = |needle: &str| text.find(needle).unwrap();
        let plain = at("${arg:x}\nb");
        let double = text.find("\"${arg:x}\"").unwrap() + 1;
        let single = text.find("'${arg:x}'").unwrap() + 1;
        assert_eq!(place_value(text, plain, "/dev/video0").unwrap(), "/dev/video0");
        assert_eq!(place_value(text, plain, "tcp/10.0.0.1:7447").unwrap(), "tcp/10.0.0.1:7447");
        assert_eq!(place_value(text, plain, "-5").unwrap(), "-5");
        for bad in ["x: y", "{a: 1}", "[1]", "a, b", "x #c", "- item", "&anchor", "*alias", "!tag", "a\nb: c"] {
            assert!(place_value(text, plain, bad).is_err(), "{bad:?} placed plain");
        }
        assert_eq!(place_value(text, double, "a\"b\\c").unwrap(), "a\\\"b\\\\c");
        assert_eq!(place_value(text, single, "it's").unwrap(), "it''s");
        assert!(place_value(text, double, "a\nb").is_err(), "no line breaks anywhere");
    }
}
