//! The `monitor` and `arbiter` node kinds: thin wrappers that feed the [`Supervisor`] and the
//! [`Arbiter`] from topics and publish what they decide.

use crate::arbiter::{Arbiter, ArbiterConfig, SafeStopState};
use crate::supervisor::{Severity, State, Supervisor, SupervisorConfig, Transition};
use reflex_msgs::diagnostic_msgs::{DiagnosticArray, DiagnosticStatus, KeyValue};
use reflex_msgs::reflex_msgs::{BrakeRequest, MonitorEvent, SafeStop};
use reflex_msgs::topics;
use reflex_runtime::spec::parse_params_value;
use reflex_runtime::{
    keys, Direction, InputOptions, Node, NodeKind, NodeOptions, NodeSpec, OverflowPolicy, Port, RunError, Shutdown,
};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::sync::mpsc;
use std::time::Duration;
use zenoh::sample::SampleKind;
use zenoh::Wait;

pub const EVENTS: Port = Port {
    optional: true,
    name: "events",
    topic: topics::MONITOR_EVENTS,
    type_name: "reflex_msgs/msg/MonitorEvent",
    direction: Direction::Input,
};
pub const COMMAND_IN: Port = Port {
    optional: true,
    name: "command",
    topic: topics::ACTUATOR_COMMAND,
    type_name: "reflex_msgs/msg/BrakeRequest",
    direction: Direction::Input,
};
pub const SAFE_STOP_OUT: Port = Port {
    optional: false,
    name: "safe_stop",
    topic: topics::SAFE_STOP,
    type_name: "reflex_msgs/msg/SafeStop",
    direction: Direction::Output,
};
pub const DIAGNOSTICS: Port = Port {
    optional: false,
    name: "diagnostics",
    topic: topics::DIAGNOSTICS,
    type_name: "diagnostic_msgs/msg/DiagnosticArray",
    direction: Direction::Output,
};

/// A topic the monitor watches itself.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchedTopic {
    pub topic: String,
    pub deadline_ms: f64,
}

/// Parameters of the `monitor` node.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MonitorConfig {
    /// Topics whose gaps the monitor watches itself (inputs' own deadlines arrive as events).
    pub watch: Vec<WatchedTopic>,
    /// Nodes whose disappearance (liveliness token gone) means safe stop.
    pub required_nodes: Vec<String>,
    /// Time after start for required nodes to appear, s.
    pub startup_grace_s: f64,
    /// Maximum age (now − capture stamp) of the actuator command, ms.
    pub command_budget_ms: f64,
    pub supervisor: SupervisorConfig,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            watch: Vec::new(),
            required_nodes: Vec::new(),
            startup_grace_s: 5.0,
            command_budget_ms: 300.0,
            supervisor: SupervisorConfig::default(),
        }
    }
}

fn check_monitor(value: &serde_json::Value) -> Result<(), (String, String)> {
    let config: MonitorConfig = parse_params_value(value)?;
    for (index, watched) in config.watch.iter().enumerate() {
        if !(watched.deadline_ms > 0.0) || !watched.topic.starts_with('/') {
            return Err((format!("watch[{index}]"), "needs an absolute topic and deadline_ms > 0".into()));
        }
    }
    Ok(())
}

pub const MONITOR_KIND: NodeKind = NodeKind {
    name: "monitor",
    summary: "safety supervisor: deadlines, node liveliness, budgets, command age -> SafeStop",
    ports: &[EVENTS, COMMAND_IN, SAFE_STOP_OUT, DIAGNOSTICS],
    parameters: &[
        ("watch", "[]", "[{topic, deadline_ms}] watched by the monitor itself"),
        ("required_nodes", "[]", "nodes whose loss means safe stop"),
        ("startup_grace_s", "5", "time for required nodes to appear"),
        ("command_budget_ms", "300", "maximum age of the actuator command since capture"),
        ("supervisor.stable_period_s", "2", "fault-free time before stepping down a level"),
        ("supervisor.transient_fault_s", "1", "how long one-off faults stay active"),
    ],
    check_params: check_monitor,
    run: run_monitor,
};

/// What the monitor learns from liveliness tokens.
enum Liveliness {
    Up(String),
    Gone(String),
}

fn run_monitor(spec: NodeSpec, shutdown: Shutdown) -> Result<(), RunError> {
    let config: MonitorConfig = spec.params()?;
    let node = Node::new(NodeOptions::from_spec(&spec))?;
    run_monitor_on(&node, &spec, &config, &shutdown)
}

/// The monitor's loop on an existing node, whatever its clock (tests use a simulation clock).
pub fn run_monitor_on(
    node: &Node,
    spec: &NodeSpec,
    config: &MonitorConfig,
    shutdown: &Shutdown,
) -> Result<(), RunError> {
    let clock = node.clock().clone();
    let mut events = node.subscriber::<MonitorEvent>(&spec.topic(&EVENTS), InputOptions::default().capacity(256))?;
    let mut commands = node.subscriber::<BrakeRequest>(
        &spec.topic(&COMMAND_IN),
        // Every command is checked for its age; the arbiter may publish twice per frame.
        InputOptions::default().capacity(32).policy(OverflowPolicy::DropOldest),
    )?;
    let mut safe_stop_out = node.publisher::<SafeStop>(&spec.topic(&SAFE_STOP_OUT))?;
    let mut diagnostics_out = node.publisher::<DiagnosticArray>(&spec.topic(&DIAGNOSTICS))?;
    let _watches = config
        .watch
        .iter()
        .map(|w| node.watch_deadline(&w.topic, Duration::from_secs_f64(w.deadline_ms / 1e3)))
        .collect::<Result<Vec<_>, _>>()?;

    let (liveliness_tx, liveliness) = mpsc::channel();
    let prefix = spec.transport.prefix.clone();
    // Wake the loop at once: a vanished node is the most urgent news there is.
    let monitor_thread = std::thread::current();
    let _liveliness = node
        .session()
        .liveliness()
        .declare_subscriber(keys::all_nodes(&prefix))
        .history(true)
        .callback(move |sample| {
            if let Some((name, _, _)) = keys::parse_liveliness_token(&prefix, sample.key_expr().as_str()) {
                let _ = liveliness_tx.send(match sample.kind() {
                    SampleKind::Put => Liveliness::Up(name),
                    SampleKind::Delete => Liveliness::Gone(name),
                });
                monitor_thread.unpark();
            }
        })
        .wait()
        .map_err(|e| format!("cannot watch node liveliness: {e}"))?;

    let started = clock.now_ns();
    let mut supervisor = Supervisor::new(config.supervisor, started);
    let mut alive: BTreeSet<String> = BTreeSet::new();
    let mut message = SafeStop::default();
    let (mut last_publish, mut startup_checked) = (0i64, false);
    let command_budget_ns = (config.command_budget_ms * 1e6) as i64;
    tracing::info!(node = %spec.name, required = ?config.required_nodes, watched = config.watch.len(), "monitor up");
    while !shutdown.is_requested() {
        node.wait_for_input(Duration::from_millis(10));
        let now = clock.now_ns();
        let mut changes: Vec<Transition> = Vec::new();
        while let Ok(update) = liveliness.try_recv() {
            match update {
                Liveliness::Up(name) => {
                    changes.extend(supervisor.clear(now, &format!("node {name}")));
                    alive.insert(name);
                }
                Liveliness::Gone(name) => {
                    alive.remove(&name);
                    if config.required_nodes.contains(&name) {
                        changes.extend(supervisor.raise(now, &format!("node {name}"), Severity::SafeStop, "node gone"));
                    }
                }
            }
        }
        if !startup_checked && (now - started) as f64 / 1e9 >= config.startup_grace_s {
            startup_checked = true;
            for name in config.required_nodes.iter().filter(|n| !alive.contains(*n)) {
                changes.extend(supervisor.raise(
                    now,
                    &format!("node {name}"),
                    Severity::SafeStop,
                    "node never started",
                ));
            }
        }
        while let Some(event) = events.recv() {
            let event = event.message;
            let source = if event.topic.is_empty() { event.node.clone() } else { event.topic.clone() };
            let change = match event.kind {
                MonitorEvent::KIND_DEADLINE_MISSED => {
                    supervisor.raise(now, &source, Severity::SafeStop, "deadline missed")
                }
                MonitorEvent::KIND_RECOVERED => supervisor.clear(now, &source),
                // Recorded by whoever records /reflex/events; the fault's effects are what count.
                MonitorEvent::KIND_FAULT_INJECTED => None,
                MonitorEvent::KIND_CALLBACK_FAILED => {
                    supervisor.raise(now, &source, Severity::SafeStop, "reflex failed")
                }
                MonitorEvent::KIND_BUDGET_OVERRUN => {
                    supervisor.raise_transient(now, &source, Severity::Degraded, "budget overrun")
                }
                _ => supervisor.raise_transient(now, &source, Severity::Degraded, "messages lost or undecodable"),
            };
            changes.extend(change);
        }
        while let Some(command) = commands.recv() {
            if command.age_ns.is_some_and(|age| age > command_budget_ns) {
                changes.extend(supervisor.raise_transient(
                    now,
                    "command age",
                    Severity::SafeStop,
                    "command older than its budget",
                ));
            }
        }
        changes.extend(supervisor.tick(now));
        let heartbeat_due = now - last_publish >= 1_000_000_000;
        if !changes.is_empty() || heartbeat_due {
            for change in &changes {
                tracing::warn!(from = ?change.from, to = ?change.to, reason = %change.reason, source = %change.source, "supervisor");
            }
            let (reason, source) = supervisor.reason();
            message.header.stamp = clock.now();
            message.state = supervisor.state() as u8;
            message.engaged = supervisor.state() == State::SafeStop;
            message.reason.clear();
            message.reason.push_str(reason);
            message.source.clear();
            message.source.push_str(source);
            safe_stop_out.publish(&message)?;
            diagnostics_out.publish(&diagnostics(&spec.name, &supervisor, &message))?;
            last_publish = now;
        }
    }
    Ok(())
}

fn diagnostics(name: &str, supervisor: &Supervisor, state: &SafeStop) -> DiagnosticArray {
    let level = match supervisor.state() {
        State::Nominal => DiagnosticStatus::OK,
        State::Degraded => DiagnosticStatus::WARN,
        State::SafeStop => DiagnosticStatus::ERROR,
    };
    let values = supervisor
        .active_faults()
        .map(|(source, severity, reason)| KeyValue {
            key: source.to_string(),
            value: format!("{severity:?}: {reason}"),
        })
        .collect();
    DiagnosticArray {
        header: state.header.clone(),
        status: vec![DiagnosticStatus {
            level,
            name: format!("{name}: supervisor"),
            message: format!("{:?}: {} {}", supervisor.state(), state.reason, state.source).trim().to_string(),
            hardware_id: String::new(),
            values,
        }],
    }
}

pub const AEB_IN: Port = Port {
    optional: true,
    name: "aeb",
    topic: "aeb/brake_request",
    type_name: "reflex_msgs/msg/BrakeRequest",
    direction: Direction::Input,
};
pub const SAFE_STOP_IN: Port = Port {
    optional: false,
    name: "safe_stop",
    topic: topics::SAFE_STOP,
    type_name: "reflex_msgs/msg/SafeStop",
    direction: Direction::Input,
};
pub const DRIVER_IN: Port = Port {
    optional: true,
    name: "driver",
    topic: "vehicle/driver_command",
    type_name: "reflex_msgs/msg/BrakeRequest",
    direction: Direction::Input,
};
pub const COMMAND_OUT: Port = Port {
    optional: false,
    name: "command",
    topic: topics::ACTUATOR_COMMAND,
    type_name: "reflex_msgs/msg/BrakeRequest",
    direction: Direction::Output,
};

/// Parameters of the `arbiter` node.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArbiterNodeConfig {
    #[serde(flatten)]
    pub arbiter: ArbiterConfig,
    /// The command is republished at least this often, Hz.
    pub rate_hz: f64,
}

impl Default for ArbiterNodeConfig {
    fn default() -> Self {
        Self { arbiter: ArbiterConfig::default(), rate_hz: 50.0 }
    }
}

pub const ARBITER_KIND: NodeKind = NodeKind {
    name: "arbiter",
    summary: "the single actuator command: safe stop wins, else the strongest fresh brake request",
    ports: &[AEB_IN, SAFE_STOP_IN, DRIVER_IN, COMMAND_OUT],
    parameters: &[
        ("aeb_max_age_s", "0.3", "older AEB requests are ignored"),
        ("driver_max_age_s", "0.3", "older driver commands are ignored"),
        ("supervisor_max_age_s", "1.5", "a silent supervisor counts as missing -> safe stop"),
        ("startup_grace_s", "3", "time a missing supervisor is tolerated after start"),
        ("safe_stop_decel_mps2", "6", "deceleration of a safe stop"),
        ("rate_hz", "50", "the command is republished at least this often"),
    ],
    check_params: reflex_runtime::spec::check_params_as::<ArbiterNodeConfig>,
    run: run_arbiter,
};

fn run_arbiter(spec: NodeSpec, shutdown: Shutdown) -> Result<(), RunError> {
    let config: ArbiterNodeConfig = spec.params()?;
    let node = Node::new(NodeOptions::from_spec(&spec))?;
    let clock = node.clock().clone();
    let latest = InputOptions::default().capacity(1).policy(OverflowPolicy::DropOldest);
    let mut aeb =
        node.subscriber::<BrakeRequest>(&spec.topic(&AEB_IN), spec.inputs.get("aeb").copied().unwrap_or(latest))?;
    let mut safe_stop = node.subscriber::<SafeStop>(&spec.topic(&SAFE_STOP_IN), latest)?;
    let mut driver = node.subscriber::<BrakeRequest>(&spec.topic(&DRIVER_IN), latest)?;
    let mut command_out = node.publisher::<BrakeRequest>(&spec.topic(&COMMAND_OUT))?;
    let mut arbiter = Arbiter::new(config.arbiter, clock.now_ns());
    let mut command = BrakeRequest { source: spec.name.clone(), ..Default::default() };
    let period_ns = (1e9 / config.rate_hz.max(1.0)) as i64;
    let mut last_publish = 0i64;
    while !shutdown.is_requested() {
        node.wait_for_input(Duration::from_millis(5));
        let now = clock.now_ns();
        let mut changed = false;
        while let Some(request) = aeb.recv() {
            arbiter.set_aeb(now, request.message);
            command.header.stamp = request.message.header.stamp;
            changed = true;
        }
        while let Some(request) = driver.recv() {
            arbiter.set_driver(now, request.message);
            changed = true;
        }
        while let Some(state) = safe_stop.recv() {
            arbiter.set_supervisor(now, SafeStopState { engaged: state.message.engaged });
            changed = true;
        }
        if changed || now - last_publish >= period_ns {
            arbiter.decide(now, &mut command);
            command_out.publish(&command)?;
            last_publish = now;
        }
    }
    Ok(())
}
