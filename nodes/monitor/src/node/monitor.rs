//! The `monitor` node kind: feeds the [`Supervisor`] from the watched nodes' health and
//! tokens and the arbiter's commands, and publishes its state (`SafeStop`) and diagnostics.

use super::VEHICLE_STATE_MAX_AGE_NS;
use crate::actuator::Counter;
use crate::supervisor::{
    CommandSeen, CommandWatch, NodeView, Severity, State, Supervisor, SupervisorConfig, Transition, STARTUP,
};
use reflex_msgs::diagnostic_msgs::{DiagnosticArray, DiagnosticStatus, KeyValue};
use reflex_msgs::reflex_msgs::{BrakeRequest, SafeStop, VehicleState};
use reflex_msgs::topics;
use reflex_runtime::health::{self};
use reflex_runtime::spec::parse_params_value;
use reflex_runtime::{
    discovery::NodeChange, Direction, InputOptions, Node, NodeKind, NodeOptions, NodeSpec, OverflowPolicy, Port,
    RunError, Shutdown, Subscriber, DRAIN_LIMIT,
};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::Duration;

/// The monitor states its state at least this often (the arbiter's `supervisor_max_age_s`
/// must allow a few of these).
const SAFE_STOP_PERIOD_NS: i64 = 100_000_000;
/// Diagnostics at least this often.
const DIAGNOSTICS_PERIOD_NS: i64 = 1_000_000_000;

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
    // Wake the loop at once: a vanished node is the most urgent news there is.
    let monitor_thread = std::thread::current();
    let _liveliness = node
        .system()
        .watch_nodes(true, move |change| {
            let _ = liveliness_tx.try_send(match change {
                NodeChange::Up { .. } => Liveliness::Up,
                NodeChange::Gone { name, pid, .. } => Liveliness::Gone(name, pid),
            });
            monitor_thread.unpark();
        })
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
                    let Some(severity) = Severity::of_health(*level) else { continue };
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
            let seen = CommandSeen {
                arrival_ns: command.arrival_mono_ns,
                counter: Counter::of(&command),
                stamp_ns: command.message.header.stamp.as_nanos(),
                age_ns: command.trusted_age_ns(),
            };
            command_watch.command(&mut supervisor, &mut changes, now, &seen);
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
