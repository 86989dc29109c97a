//! The `monitor`, `arbiter` and `actuator` node kinds: thin wrappers that feed the
//! [`Supervisor`], the [`Arbiter`] and the [`ActuatorGateway`] from topics and publish what
//! they decide.

use crate::actuator::{ActuatorGateway, Counter, GatewayConfig};
use crate::arbiter::{Arbiter, ArbiterConfig, SafeStopState};
use crate::supervisor::{Severity, State, Supervisor, SupervisorConfig, Transition, STARTUP};
use reflex_msgs::diagnostic_msgs::{DiagnosticArray, DiagnosticStatus, KeyValue};
use reflex_msgs::reflex_msgs::{BrakeRequest, SafeStop, VehicleState};
use reflex_msgs::topics;
use reflex_runtime::health::{self, Level};
use reflex_runtime::spec::parse_params_value;
use reflex_runtime::{
    keys, Direction, InputOptions, Node, NodeKind, NodeOptions, NodeSpec, OverflowPolicy, Port, RunError, Shutdown,
    Subscriber, DRAIN_LIMIT,
};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::Duration;
use zenoh::sample::SampleKind;
use zenoh::Wait;

/// The monitor states its state at least this often (the arbiter's `supervisor_max_age_s`
/// must allow a few of these).
const SAFE_STOP_PERIOD_NS: i64 = 100_000_000;
/// Diagnostics at least this often.
const DIAGNOSTICS_PERIOD_NS: i64 = 1_000_000_000;
/// A vehicle state older than this does not tell whether the vehicle stands still.
const VEHICLE_STATE_MAX_AGE_NS: i64 = 500_000_000;
/// A command stamped more than this in the future (beyond clock noise) is a lie or a broken clock.
const FUTURE_TOLERANCE_NS: i64 = 50_000_000;

pub const COMMAND_IN: Port = Port {
    optional: true,
    name: "command",
    topic: topics::ACTUATOR_COMMAND,
    type_name: "reflex_msgs/msg/BrakeRequest",
    direction: Direction::Input,
};
pub const MONITOR_VEHICLE_STATE: Port = Port {
    optional: true,
    name: "vehicle_state",
    topic: topics::VEHICLE_STATE,
    type_name: "reflex_msgs/msg/VehicleState",
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
    /// Small topics whose gaps the monitor watches itself (node inputs' own deadlines come with
    /// their health). Never images: each watched message is reassembled in the monitor.
    pub watch: Vec<WatchedTopic>,
    /// Nodes whose health decides: an ERROR in it, its silence, or its disappearance means safe
    /// stop; a WARN degrades.
    pub required_nodes: Vec<String>,
    /// Time after start for required nodes to report, s (the monitor is engaged meanwhile).
    pub startup_grace_s: f64,
    /// A required node silent for longer than this is lost, ms.
    pub health_timeout_ms: f64,
    /// Maximum age (now − capture stamp) of the actuator command, and longest time its capture
    /// stamp may stay the same, ms; 0 turns both checks off (a system without perception).
    pub command_budget_ms: f64,
    /// Longest gap between two commands of the arbiter, ms; 0 turns the check off.
    pub command_deadline_ms: f64,
    pub supervisor: SupervisorConfig,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            watch: Vec::new(),
            required_nodes: Vec::new(),
            startup_grace_s: 5.0,
            health_timeout_ms: 350.0,
            command_budget_ms: 300.0,
            command_deadline_ms: 100.0,
            supervisor: SupervisorConfig::default(),
        }
    }
}

impl MonitorConfig {
    /// Checks the values; names the parameter.
    pub fn validate(&self) -> Result<(), (String, String)> {
        for (index, watched) in self.watch.iter().enumerate() {
            if !(watched.deadline_ms > 0.0 && watched.deadline_ms <= 60_000.0) || !watched.topic.starts_with('/') {
                return Err((format!("watch[{index}]"), "needs an absolute topic and 0 < deadline_ms <= 60000".into()));
            }
        }
        let range = |name: &str, value: f64, low: f64, high: f64, open_low: bool| {
            let ok = if open_low { value > low && value <= high } else { (low..=high).contains(&value) };
            if ok {
                Ok(())
            } else {
                Err((
                    name.to_string(),
                    format!("{value} is outside {}{low}, {high}]", if open_low { "(" } else { "[" }),
                ))
            }
        };
        range("startup_grace_s", self.startup_grace_s, 0.0, 600.0, false)?;
        // Nodes report health every 100 ms and the arbiter commands at 50 Hz: limits below
        // 1.5 report periods or 2 command periods would raise a safe stop that never ends.
        range("health_timeout_ms", self.health_timeout_ms, 150.0, 60_000.0, false)?;
        range("command_budget_ms", self.command_budget_ms, 0.0, 60_000.0, false)?;
        if self.command_deadline_ms != 0.0 {
            range("command_deadline_ms", self.command_deadline_ms, 40.0, 60_000.0, false)?;
        }
        self.supervisor.validate()
    }
}

fn check_monitor(value: &serde_json::Value) -> Result<(), (String, String)> {
    let config: MonitorConfig = parse_params_value(value)?;
    config.validate()
}

pub const MONITOR_KIND: NodeKind = NodeKind {
    name: "monitor",
    summary: "safety supervisor: node health, liveliness, the arbiter's commands -> SafeStop",
    ports: &[COMMAND_IN, MONITOR_VEHICLE_STATE, SAFE_STOP_OUT, DIAGNOSTICS],
    parameters: &[
        ("required_nodes", "[]", "nodes whose health decides (error, silence, loss: safe stop)"),
        ("watch", "[]", "[{topic, deadline_ms}] small topics watched by the monitor itself"),
        ("startup_grace_s", "5", "time for required nodes to report (engaged meanwhile)"),
        ("health_timeout_ms", "350", "a required node silent this long is lost"),
        ("command_budget_ms", "300", "maximum age of the actuator command since capture; 0: off"),
        ("command_deadline_ms", "100", "longest gap between the arbiter's commands; 0: off"),
        ("supervisor.stable_period_s", "2", "fault-free time before stepping down a level"),
        ("supervisor.transient_fault_s", "1", "how long one-off faults stay active"),
        ("supervisor.release", "standstill", "a safe stop ends at a standstill, or after the stable period"),
    ],
    check_params: check_monitor,
    run: run_monitor,
};

/// What the monitor learns from liveliness tokens: a node instance (name, pid) came or went.
enum Liveliness {
    Up,
    Gone(String, u32),
}

/// What the monitor knows of one required node.
#[derive(Default)]
struct NodeView {
    /// Duration-clock arrival of its last valid health report, its pid and sequence.
    last_report_ns: Option<i64>,
    pid: Option<u32>,
    sequence: u64,
    /// Healthy (no ERROR) in its last report.
    healthy: bool,
    /// The pid whose liveliness token went away and its last sequence then, while neither a
    /// newer instance nor this one (well past that sequence) has reported.
    gone: Option<(u32, u64)>,
}

/// Reports of an instance whose token went away that say nothing: those it may have sent
/// before it died. A live one (its token lost to a lease expiry under load) is believed again
/// from its `GONE_REPORTS_IGNORED + 1`-th next report on; the safe stop it raised stays latched.
const GONE_REPORTS_IGNORED: u64 = 2;

impl NodeView {
    /// The liveliness token of instance `pid` went away: whether that is a loss (it is the
    /// current instance, or none has reported yet). A late `delete` of an older instance says
    /// nothing about the current one.
    fn token_gone(&mut self, pid: u32) -> bool {
        let current = self.pid.is_none_or(|current| current == pid);
        if current {
            self.gone = Some((pid, self.sequence));
        }
        current
    }

    /// A health report of instance `pid` with `sequence` arrived at `arrival_ns`: `None` when
    /// it is refused (a replay, or sent by a gone instance before it went), else whether it
    /// ended a loss.
    fn report(&mut self, pid: u32, sequence: u64, arrival_ns: i64) -> Option<bool> {
        let from_gone =
            self.gone.is_some_and(|(gone, last)| gone == pid && sequence <= last.saturating_add(GONE_REPORTS_IGNORED));
        if from_gone || (self.pid == Some(pid) && sequence <= self.sequence) {
            return None;
        }
        self.pid = Some(pid);
        self.sequence = sequence;
        self.last_report_ns = Some(arrival_ns);
        Some(self.gone.take().is_some())
    }
}

fn run_monitor(spec: NodeSpec, shutdown: Shutdown) -> Result<(), RunError> {
    let config: MonitorConfig = spec.params()?;
    let node = Node::new(NodeOptions::from_spec(&spec))?;
    run_monitor_on(&node, &spec, &config, &shutdown)
}

/// The commands the monitor checks: the arbiter's output stream.
struct CommandWatch {
    budget_ns: i64,
    deadline_ns: i64,
    last_arrival_ns: Option<i64>,
    last_counter: Option<Counter>,
    last_stamp: Option<i64>,
    stamp_changed_ns: Option<i64>,
}

impl CommandWatch {
    /// Checks one command; faults go to `supervisor`.
    fn command(
        &mut self,
        supervisor: &mut Supervisor,
        changes: &mut Vec<Transition>,
        now: i64,
        received: &reflex_runtime::Received<&BrakeRequest>,
    ) {
        // A new publisher after a silence is a restarted arbiter (its counter starts again);
        // the silence itself has already raised "command stream".
        let silence_ns = if self.deadline_ns > 0 { self.deadline_ns } else { 100_000_000 };
        let silent = self.last_arrival_ns.is_none_or(|at| received.arrival_mono_ns.saturating_sub(at) > silence_ns);
        self.last_arrival_ns = Some(received.arrival_mono_ns);
        if let Some(counter) = Counter::of(received) {
            let went_back = self.last_counter.is_some_and(|last| {
                if last.publisher == counter.publisher {
                    counter.value <= last.value
                } else {
                    !silent
                }
            });
            if went_back {
                changes.extend(supervisor.raise_transient(
                    now,
                    "command counter",
                    Severity::SafeStop,
                    "the arbiter's command counter went back (a replay, or a second sender)",
                ));
            }
            self.last_counter = Some(counter);
        }
        if self.budget_ns == 0 {
            return;
        }
        let stamp = received.message.header.stamp.as_nanos();
        if self.last_stamp != Some(stamp) && stamp != 0 {
            self.stamp_changed_ns = Some(received.arrival_mono_ns);
        }
        self.last_stamp = Some(stamp);
        match received.trusted_age_ns() {
            _ if stamp == 0 => {}
            Some(age) if age > self.budget_ns => changes.extend(supervisor.raise_transient(
                now,
                "command age",
                Severity::SafeStop,
                "command older than its budget",
            )),
            Some(age) if age < -FUTURE_TOLERANCE_NS => changes.extend(supervisor.raise_transient(
                now,
                "command age",
                Severity::SafeStop,
                "command stamped in the future",
            )),
            _ => {}
        }
    }

    /// The stream's own state: silent, or its capture stamp standing still.
    fn check(&self, supervisor: &mut Supervisor, changes: &mut Vec<Transition>, now: i64, since_ns: i64) {
        let older = |at: Option<i64>, limit: i64| now.saturating_sub(at.unwrap_or(since_ns)) > limit;
        if self.deadline_ns > 0 && older(self.last_arrival_ns, self.deadline_ns) {
            changes.extend(supervisor.raise(
                now,
                "command stream",
                Severity::SafeStop,
                "the arbiter's commands stopped",
            ));
        } else if supervisor.has_fault("command stream") {
            changes.extend(supervisor.clear(now, "command stream"));
        }
        if self.budget_ns > 0 && older(self.stamp_changed_ns, self.budget_ns) {
            changes.extend(supervisor.raise(
                now,
                "command stamp",
                Severity::SafeStop,
                "the commands' capture stamp stopped advancing",
            ));
        } else if supervisor.has_fault("command stamp") {
            changes.extend(supervisor.clear(now, "command stamp"));
        }
    }
}

/// The monitor's loop on an existing node, whatever its clock (tests use a simulation clock).
pub fn run_monitor_on(
    node: &Node,
    spec: &NodeSpec,
    config: &MonitorConfig,
    shutdown: &Shutdown,
) -> Result<(), RunError> {
    config.validate().map_err(|(path, message)| format!("monitor parameter {path}: {message}"))?;
    let clock = node.clock().clone();
    let mut commands = node.subscriber::<BrakeRequest>(
        &spec.topic(&COMMAND_IN),
        // Every command is checked; the arbiter may publish twice per frame.
        InputOptions::default().capacity(32).policy(OverflowPolicy::DropOldest),
    )?;
    let mut vehicle_state = node.subscriber::<VehicleState>(
        &spec.topic(&MONITOR_VEHICLE_STATE),
        InputOptions::default().capacity(1).policy(OverflowPolicy::DropOldest),
    )?;
    let mut safe_stop_out = node.publisher::<SafeStop>(&spec.topic(&SAFE_STOP_OUT))?;
    let mut diagnostics_out = node.publisher::<DiagnosticArray>(&spec.topic(&DIAGNOSTICS))?;
    let _watches = config
        .watch
        .iter()
        .map(|w| node.watch_deadline(&w.topic, Duration::from_secs_f64(w.deadline_ms / 1e3)))
        .collect::<Result<Vec<_>, _>>()?;
    // The health of each required node, each on its own key and in its own one-slot queue: a
    // flood on one cannot displace another's. The monitor's own watches come with its own.
    let mut watched: Vec<String> = config.required_nodes.clone();
    if !config.watch.is_empty() && !watched.contains(&spec.name) {
        watched.push(spec.name.clone());
    }
    let mut health: Vec<(String, Subscriber<DiagnosticArray>)> = watched
        .iter()
        .map(|name| Ok((name.clone(), node.health_subscriber(name)?)))
        .collect::<Result<_, RunError>>()?;
    let mut views: BTreeMap<String, NodeView> = watched.iter().map(|n| (n.clone(), NodeView::default())).collect();

    // Bounded: token churn cannot grow the monitor's memory (what does not fit is dropped; the
    // nodes' health says the rest).
    let (liveliness_tx, liveliness) = mpsc::sync_channel(1024);
    let prefix = spec.transport.prefix.clone();
    // Wake the loop at once: a vanished node is the most urgent news there is.
    let monitor_thread = std::thread::current();
    let _liveliness = node
        .session()
        .liveliness()
        .declare_subscriber(keys::all_nodes(&prefix))
        .history(true)
        .callback(move |sample| {
            if let Some((name, _, pid)) = keys::parse_liveliness_token(&prefix, sample.key_expr().as_str()) {
                let _ = liveliness_tx.try_send(match sample.kind() {
                    SampleKind::Put => Liveliness::Up,
                    SampleKind::Delete => Liveliness::Gone(name, pid),
                });
                monitor_thread.unpark();
            }
        })
        .wait()
        .map_err(|e| format!("cannot watch node liveliness: {e}"))?;

    let started = clock.mono_ns();
    let mut supervisor = Supervisor::new(config.supervisor, started);
    let mut command_watch = CommandWatch {
        budget_ns: (config.command_budget_ms * 1e6) as i64,
        deadline_ns: (config.command_deadline_ms * 1e6) as i64,
        last_arrival_ns: None,
        last_counter: None,
        last_stamp: None,
        stamp_changed_ns: None,
    };
    let health_timeout_ns = (config.health_timeout_ms * 1e6) as i64;
    let grace_ns = (config.startup_grace_s * 1e9) as i64;
    let mut standstill_seen: Option<(i64, bool)> = None;
    let mut message = SafeStop::default();
    let (mut last_publish, mut last_diagnostics) = (i64::MIN, i64::MIN);
    let mut entries: Vec<(String, Severity, String)> = Vec::new();
    tracing::info!(node = %spec.name, required = ?config.required_nodes, watched = config.watch.len(), "monitor up (engaged until the required nodes report healthy)");
    let mut changes: Vec<Transition> = vec![Transition {
        from: State::Nominal,
        to: State::SafeStop,
        reason: "no evidence yet that the watched nodes are healthy".into(),
        source: STARTUP.into(),
        at_ns: started,
    }];
    while !shutdown.is_requested() {
        node.wait_for_input(Duration::from_millis(10));
        let now = clock.mono_ns();
        let in_grace = now.saturating_sub(started) < grace_ns;
        for _ in 0..DRAIN_LIMIT {
            let Ok(update) = liveliness.try_recv() else { break };
            // Only a `delete` is news: a token anyone could declare proves nothing (the node's
            // own health report is what clears its loss).
            let Liveliness::Gone(name, pid) = update else { continue };
            let Some(view) = views.get_mut(&name) else { continue };
            if view.token_gone(pid) {
                changes.extend(supervisor.raise(now, &format!("{name}: gone"), Severity::SafeStop, "node gone"));
            }
        }
        for (name, subscriber) in &mut health {
            let view = views.get_mut(name.as_str()).expect("a view per watched node");
            for _ in 0..DRAIN_LIMIT {
                let Some(received) = subscriber.recv() else { break };
                let report = match health::parse(name, received.message) {
                    Ok(report) => report,
                    Err(why) => {
                        tracing::warn!(node = %name, "health report refused: {why}");
                        subscriber.reject();
                        continue;
                    }
                };
                match view.report(report.pid, report.sequence, received.arrival_mono_ns) {
                    None => {
                        subscriber.reject();
                        continue;
                    }
                    Some(true) => changes.extend(supervisor.clear(now, &format!("{name}: gone"))),
                    Some(false) => {}
                }
                let prefix = format!("{name}: ");
                entries.clear();
                for (what, level, detail) in &report.entries {
                    let severity = match level {
                        Level::Ok => continue,
                        Level::Warn => Severity::Degraded,
                        Level::Error => Severity::SafeStop,
                    };
                    entries.push((format!("{prefix}{what}"), severity, detail.clone()));
                }
                view.healthy = entries.iter().all(|e| e.1 != Severity::SafeStop);
                changes.extend(supervisor.reconcile(now, &prefix, &entries));
            }
        }
        for (name, view) in &views {
            let silent = match view.last_report_ns {
                Some(at) => now.saturating_sub(at) > health_timeout_ns,
                None => !in_grace,
            };
            let source = format!("{name}: silent");
            if silent && config.required_nodes.contains(name) {
                let reason = if view.last_report_ns.is_some() { "no health report" } else { "never reported" };
                changes.extend(supervisor.raise(now, &source, Severity::SafeStop, reason));
            } else if supervisor.has_fault(&source) {
                changes.extend(supervisor.clear(now, &source));
            }
        }
        // Evidence: every watched node has reported, healthy, since the monitor started.
        if supervisor.has_fault(STARTUP) && views.values().all(|v| v.last_report_ns.is_some() && v.healthy) {
            changes.extend(supervisor.clear(now, STARTUP));
        }
        for _ in 0..DRAIN_LIMIT {
            let Some(command) = commands.recv() else { break };
            command_watch.command(&mut supervisor, &mut changes, now, &command);
        }
        if !in_grace {
            command_watch.check(&mut supervisor, &mut changes, now, started);
        }
        if let Some(state) = vehicle_state.recv() {
            let speed = state.message.speed_mps;
            if speed.is_finite() {
                standstill_seen = Some((state.arrival_mono_ns, speed.abs() < 0.1));
            } else {
                vehicle_state.reject();
            }
        }
        let standstill =
            standstill_seen.is_some_and(|(at, still)| still && now.saturating_sub(at) <= VEHICLE_STATE_MAX_AGE_NS);
        supervisor.set_standstill(standstill);
        changes.extend(supervisor.tick(now));
        let heartbeat_due = now.saturating_sub(last_publish) >= SAFE_STOP_PERIOD_NS;
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
            // A transient zenoh error must not end the safety supervisor: log and go on.
            if let Err(error) = safe_stop_out.publish(&message) {
                tracing::error!(%error, "cannot publish the safe-stop state");
            }
            if !changes.is_empty() || now.saturating_sub(last_diagnostics) >= DIAGNOSTICS_PERIOD_NS {
                if let Err(error) = diagnostics_out.publish(&diagnostics(&spec.name, &supervisor, &message)) {
                    tracing::error!(%error, "cannot publish diagnostics");
                }
                last_diagnostics = now;
            }
            last_publish = now;
            changes.clear();
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

impl ArbiterNodeConfig {
    /// Checks the values; names the parameter.
    pub fn validate(&self) -> Result<(), (String, String)> {
        self.arbiter.validate()?;
        if !(10.0..=1000.0).contains(&self.rate_hz) {
            return Err(("rate_hz".into(), format!("{} is outside [10, 1000] Hz", self.rate_hz)));
        }
        Ok(())
    }
}

fn check_arbiter(value: &serde_json::Value) -> Result<(), (String, String)> {
    parse_params_value::<ArbiterNodeConfig>(value)?.validate()
}

pub const ARBITER_KIND: NodeKind = NodeKind {
    name: "arbiter",
    summary: "the single actuator command: safe stop wins, else the strongest fresh, plausible brake request",
    ports: &[AEB_IN, SAFE_STOP_IN, DRIVER_IN, COMMAND_OUT],
    parameters: &[
        ("aeb_max_age_s", "0.3", "older AEB requests are ignored"),
        ("driver_max_age_s", "0.3", "older driver commands are ignored"),
        ("supervisor_max_age_s", "0.5", "a silent supervisor counts as missing -> safe stop"),
        ("startup_grace_s", "3", "time a missing supervisor is tolerated after start"),
        ("safe_stop_decel_mps2", "6", "deceleration of a safe stop (5..15)"),
        ("rate_hz", "50", "the command is republished at least this often"),
    ],
    check_params: check_arbiter,
    run: run_arbiter,
};

/// How many full-braking commands the arbiter sends when it is asked to stop.
const FINAL_COMMANDS: usize = 3;

fn run_arbiter(spec: NodeSpec, shutdown: Shutdown) -> Result<(), RunError> {
    let config: ArbiterNodeConfig = spec.params()?;
    let node = Node::new(NodeOptions::from_spec(&spec))?;
    run_arbiter_on(&node, &spec, &config, &shutdown)
}

/// The arbiter's loop on an existing node, whatever its clock (tests step it).
pub fn run_arbiter_on(
    node: &Node,
    spec: &NodeSpec,
    config: &ArbiterNodeConfig,
    shutdown: &Shutdown,
) -> Result<(), RunError> {
    config.validate().map_err(|(path, message)| format!("arbiter parameter {path}: {message}"))?;
    let clock = node.clock().clone();
    let latest = InputOptions::default().capacity(1).policy(OverflowPolicy::DropOldest);
    let mut aeb =
        node.subscriber::<BrakeRequest>(&spec.topic(&AEB_IN), spec.inputs.get("aeb").copied().unwrap_or(latest))?;
    let mut safe_stop = node.subscriber::<SafeStop>(&spec.topic(&SAFE_STOP_IN), latest)?;
    let mut driver = node.subscriber::<BrakeRequest>(&spec.topic(&DRIVER_IN), latest)?;
    let mut command_out = node.publisher::<BrakeRequest>(&spec.topic(&COMMAND_OUT))?;
    let mut arbiter = Arbiter::new(config.arbiter, clock.mono_ns());
    let mut command = BrakeRequest { source: spec.name.clone(), ..Default::default() };
    let period_ns = (1e9 / config.rate_hz) as i64;
    let mut last_publish = i64::MIN;
    while !shutdown.is_requested() {
        node.wait_for_input(Duration::from_millis(5));
        let mut changed = false;
        // Each input in turn, a bounded number of messages each: a flood on one cannot keep
        // the arbiter from deciding and publishing.
        for _ in 0..DRAIN_LIMIT {
            let Some(request) = aeb.recv() else { break };
            match arbiter.set_aeb(request.arrival_mono_ns, request.message) {
                Ok(()) => command.header.stamp = request.message.header.stamp,
                Err(_) => aeb.reject(),
            }
            changed = true;
        }
        for _ in 0..DRAIN_LIMIT {
            let Some(request) = driver.recv() else { break };
            if arbiter.set_driver(request.arrival_mono_ns, request.message).is_err() {
                driver.reject();
            }
            changed = true;
        }
        for _ in 0..DRAIN_LIMIT {
            let Some(state) = safe_stop.recv() else { break };
            // Delayed in transit beyond the supervisor's own age limit: not the supervisor's
            // current word.
            let max_age_ns = (config.arbiter.supervisor_max_age_s * 1e9) as i64;
            if state.trusted_age_ns().is_some_and(|age| age > max_age_ns) {
                safe_stop.reject();
                continue;
            }
            let engaged = state.message.engaged || state.message.state == SafeStop::STATE_SAFE_STOP;
            arbiter.set_supervisor(state.arrival_mono_ns, SafeStopState { engaged });
            changed = true;
        }
        let now = clock.mono_ns();
        if changed || now.saturating_sub(last_publish) >= period_ns {
            arbiter.decide(now, &mut command);
            // A transient zenoh error must not end the arbiter: the next period tries again.
            if let Err(error) = command_out.publish(&command) {
                tracing::error!(%error, "cannot publish the command");
            }
            last_publish = now;
        }
    }
    // Asked to stop: the last word is full braking, so whoever still listens brakes.
    command.level = BrakeRequest::LEVEL_FULL;
    command.deceleration_mps2 = config.arbiter.safe_stop_decel_mps2;
    command.reason.clear();
    command.reason.push_str("arbiter stopping");
    for _ in 0..FINAL_COMMANDS {
        let _ = command_out.publish(&command);
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

pub const GATEWAY_COMMAND_IN: Port = Port {
    optional: false,
    name: "command",
    topic: topics::ACTUATOR_COMMAND,
    type_name: "reflex_msgs/msg/BrakeRequest",
    direction: Direction::Input,
};
pub const GATEWAY_VEHICLE_STATE: Port = Port {
    optional: true,
    name: "vehicle_state",
    topic: topics::VEHICLE_STATE,
    type_name: "reflex_msgs/msg/VehicleState",
    direction: Direction::Input,
};
pub const DEMAND_OUT: Port = Port {
    optional: false,
    name: "demand",
    topic: topics::BRAKE_DEMAND,
    type_name: "reflex_msgs/msg/BrakeRequest",
    direction: Direction::Output,
};

/// Parameters of the `actuator` node.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ActuatorNodeConfig {
    #[serde(flatten)]
    pub gateway: GatewayConfig,
    /// The demand is published this often, Hz.
    pub rate_hz: f64,
}

impl Default for ActuatorNodeConfig {
    fn default() -> Self {
        Self { gateway: GatewayConfig::default(), rate_hz: 100.0 }
    }
}

fn check_actuator(value: &serde_json::Value) -> Result<(), (String, String)> {
    let config: ActuatorNodeConfig = parse_params_value(value)?;
    config.gateway.validate()?;
    if !(10.0..=1000.0).contains(&config.rate_hz) {
        return Err(("rate_hz".into(), format!("{} is outside [10, 1000] Hz", config.rate_hz)));
    }
    Ok(())
}

pub const ACTUATOR_KIND: NodeKind = NodeKind {
    name: "actuator",
    summary: "actuator gateway: obeys the arbiter's commands, brakes by itself when they stop, stall or lie",
    ports: &[GATEWAY_COMMAND_IN, GATEWAY_VEHICLE_STATE, DEMAND_OUT],
    parameters: &[
        ("timeout_ms", "100", "no valid command this long: brake"),
        ("stale_stamp_ms", "500", "the commands' capture stamp unchanged this long: brake"),
        ("fallback_decel_mps2", "6", "deceleration when braking by itself"),
        ("max_decel_mps2", "15", "largest plausible commanded deceleration (the arbiter's limit)"),
        ("recover_ms", "500", "valid commands needed (and a standstill) before a fallback ends"),
        (
            "release",
            "standstill",
            "a fallback ends at a standstill on a fresh /vehicle/state; stable_period where none exists",
        ),
        ("rate_hz", "100", "the demand to the brake unit is published this often"),
    ],
    check_params: check_actuator,
    run: run_actuator,
};

/// The gateway as a process: the demand for the brake unit's bus bridge on `/vehicle/brake_demand`.
fn run_actuator(spec: NodeSpec, shutdown: Shutdown) -> Result<(), RunError> {
    let config: ActuatorNodeConfig = spec.params()?;
    check_actuator(&spec.params).map_err(|(path, message)| format!("actuator parameter {path}: {message}"))?;
    let node = Node::new(NodeOptions::from_spec(&spec))?;
    let clock = node.clock().clone();
    let mut commands = node.subscriber::<BrakeRequest>(
        &spec.topic(&GATEWAY_COMMAND_IN),
        InputOptions::default().capacity(16).policy(OverflowPolicy::DropOldest),
    )?;
    let mut vehicle_state = node.subscriber::<VehicleState>(
        &spec.topic(&GATEWAY_VEHICLE_STATE),
        InputOptions::default().capacity(1).policy(OverflowPolicy::DropOldest),
    )?;
    let mut demand_out = node.publisher::<BrakeRequest>(&spec.topic(&DEMAND_OUT))?;
    let mut gateway = ActuatorGateway::new(config.gateway);
    let mut demand = BrakeRequest { source: spec.name.clone(), ..Default::default() };
    let mut speed: Option<(i64, f64)> = None;
    let period_ns = (1e9 / config.rate_hz) as i64;
    let mut last_publish = i64::MIN;
    let mut last_fallback = None;
    while !shutdown.is_requested() {
        node.wait_for_input(Duration::from_millis(2));
        for _ in 0..DRAIN_LIMIT {
            let Some(command) = commands.recv() else { break };
            if gateway.command(command.arrival_mono_ns, command.message, Counter::of(&command)) {
                demand.header.stamp = command.message.header.stamp;
                demand.time_to_collision_s = command.message.time_to_collision_s;
            } else {
                commands.reject();
            }
        }
        if let Some(state) = vehicle_state.recv() {
            if state.message.speed_mps.is_finite() {
                speed = Some((state.arrival_mono_ns, state.message.speed_mps));
            }
        }
        let now = clock.mono_ns();
        let known_speed = speed.filter(|(at, _)| now.saturating_sub(*at) <= VEHICLE_STATE_MAX_AGE_NS).map(|(_, v)| v);
        let out = gateway.output(now, known_speed);
        if out.fallback != last_fallback {
            match out.fallback {
                Some(why) => {
                    tracing::warn!(reason = why.describe(), "actuator gateway braking by itself");
                    node.set_status("gateway", Level::Error, why.describe());
                }
                None => {
                    tracing::info!("actuator gateway follows the arbiter again");
                    node.set_status("gateway", Level::Ok, "");
                }
            }
            last_fallback = out.fallback;
        }
        if now.saturating_sub(last_publish) >= period_ns {
            demand.level = out.level;
            demand.deceleration_mps2 = out.decel_mps2;
            demand.reason.clear();
            demand.reason.push_str(out.fallback.map_or("arbiter", |f| f.describe()));
            if let Err(error) = demand_out.publish(&demand) {
                tracing::error!(%error, "cannot publish the brake demand");
            }
            last_publish = now;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// M10 and availability: a replay or a report the dead instance sent before its token went
    /// away never ends the loss; a new instance does, and so does the same instance going on
    /// reporting well past the loss (its token lost to a lease expiry while it lived).
    #[test]
    fn a_loss_ends_only_with_evidence_of_a_live_instance() {
        let mut view = NodeView::default();
        assert_eq!(view.report(10, 1, 0), Some(false));
        assert_eq!(view.report(10, 1, 1), None, "a replay");
        assert!(!view.token_gone(9), "an older instance's token");
        assert!(view.token_gone(10));
        assert_eq!(view.report(10, 2, 2), None, "sent before it went");
        assert_eq!(view.report(10, 3, 3), None, "sent before it went");
        assert_eq!(view.report(10, 4, 4), Some(true), "alive after all");
        assert!(view.token_gone(10));
        assert_eq!(view.report(11, 1, 5), Some(true), "a new instance");
        assert_eq!(view.pid, Some(11));
    }
}
