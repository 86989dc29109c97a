//! The `monitor` node kind: feeds the [`Monitor`] from the watched nodes' health and tokens,
//! the arbiter's commands and the vehicle state, and publishes what it states (`SafeStop`) and
//! its diagnostics.

use crate::actuator::Counter;
use crate::monitor::{HealthRefused, Monitor};
pub use crate::monitor::{MonitorConfig, WatchedTopic};
use crate::supervisor::CommandSeen;
use reflex_msgs::diagnostic_msgs::DiagnosticArray;
use reflex_msgs::reflex_msgs::{BrakeRequest, SafeStop, VehicleState};
use reflex_msgs::topics;
use reflex_runtime::spec::parse_params_value;
use reflex_runtime::spec::InvalidParam;
use reflex_runtime::{
    discovery::NodeChange, Direction, InputOptions, Node, NodeKind, NodeOptions, NodeSpec, OverflowPolicy, Port,
    RunError, Shutdown, Subscriber, DRAIN_LIMIT,
};
use std::sync::mpsc;
use std::time::Duration;

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

fn check_monitor(value: &serde_json::Value) -> Result<(), InvalidParam> {
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
    inline: false,
};

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
    config.validate().map_err(|invalid| invalid.of_node(&spec.name))?;
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
    let mut monitor = Monitor::new(&spec.name, config, clock.mono_ns());
    // The health of each watched node, each on its own key and in its own one-slot queue: a
    // flood on one cannot displace another's.
    let mut health: Vec<(String, Subscriber<DiagnosticArray>)> = monitor
        .watched()
        .map(|name| Ok((name.to_string(), node.health_subscriber(name)?)))
        .collect::<Result<_, RunError>>()?;
    // Bounded: token churn cannot grow the monitor's memory (what does not fit is dropped; the
    // nodes' health says the rest).
    let (gone_tx, gone) = mpsc::sync_channel::<(String, u32)>(1024);
    // Wake the loop at once: a vanished node is the most urgent news there is.
    let monitor_thread = std::thread::current();
    let _liveliness = node
        .system()
        .watch_nodes(true, move |change| {
            if let NodeChange::Gone { name, pid, .. } = change {
                let _ = gone_tx.try_send((name, pid));
            }
            monitor_thread.unpark();
        })
        .map_err(|e| format!("cannot watch node liveliness: {e}"))?;
    let mut message = SafeStop::default();
    tracing::info!(node = %spec.name, required = ?config.required_nodes, watched = config.watch.len(), "monitor up (engaged until the required nodes report healthy)");
    while !shutdown.is_requested() {
        node.wait_for_input(Duration::from_millis(10));
        let now = clock.mono_ns();
        for (name, pid) in gone.try_iter().take(DRAIN_LIMIT) {
            monitor.token_gone(now, &name, pid);
        }
        for (name, subscriber) in &mut health {
            for _ in 0..DRAIN_LIMIT {
                let Some(received) = subscriber.recv() else { break };
                match monitor.health(now, name, received.message, received.arrival_mono_ns) {
                    Ok(()) => {}
                    Err(refused) => {
                        if let HealthRefused::Malformed(why) = refused {
                            tracing::warn!(node = %name, "health report refused: {why}");
                        }
                        subscriber.reject();
                    }
                }
            }
        }
        if let Some(state) = vehicle_state.recv() {
            if !monitor.vehicle_state(state.arrival_mono_ns, state.message.speed_mps) {
                vehicle_state.reject();
            }
        }
        let arrived = std::iter::from_fn(|| commands.recv().map(|command| seen(&command))).take(DRAIN_LIMIT);
        let Some(statement) = monitor.step(now, arrived) else { continue };
        for change in &statement.changes {
            tracing::warn!(from = ?change.from, to = ?change.to, reason = %change.reason, source = %change.source, "supervisor");
        }
        message.header.stamp = clock.now();
        monitor.fill(&mut message);
        // A transient zenoh error must not end the safety supervisor: log and go on.
        if let Err(error) = safe_stop_out.publish(&message) {
            tracing::error!(%error, "cannot publish the safe-stop state");
        }
        if statement.diagnostics {
            if let Err(error) = diagnostics_out.publish(&monitor.diagnostics(&spec.name, &message)) {
                tracing::error!(%error, "cannot publish diagnostics");
            }
        }
    }
    Ok(())
}

/// What the monitor checks of one command of the arbiter.
fn seen(command: &reflex_runtime::Received<&BrakeRequest>) -> CommandSeen {
    CommandSeen {
        arrival_ns: command.arrival_mono_ns,
        counter: Counter::of(command),
        stamp_ns: command.message.header.stamp.as_nanos(),
        age_ns: command.trusted_age_ns(),
    }
}
