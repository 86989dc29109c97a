//! The `arbiter` node kind: feeds the [`Arbiter`] from the AEB, the monitor and the driver,
//! and publishes the one brake command.

use crate::arbiter::{Arbiter, ArbiterConfig};
use reflex_msgs::reflex_msgs::{BrakeRequest, SafeStop};
use reflex_msgs::topics;
use reflex_runtime::spec::parse_params_value;
use reflex_runtime::spec::InvalidParam;
use reflex_runtime::{
    Direction, InputOptions, Node, NodeKind, NodeOptions, NodeSpec, OverflowPolicy, Port, RunError, Shutdown,
    DRAIN_LIMIT,
};
use serde::Deserialize;
use std::time::Duration;

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
    pub fn validate(&self) -> Result<(), InvalidParam> {
        self.arbiter.validate()?;
        if !(10.0..=1000.0).contains(&self.rate_hz) {
            return Err(InvalidParam::new("rate_hz", format!("{} is outside [10, 1000] Hz", self.rate_hz)));
        }
        Ok(())
    }
}

fn check_arbiter(value: &serde_json::Value) -> Result<(), InvalidParam> {
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
    inline: false,
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
    config.validate().map_err(|invalid| invalid.of_node(&spec.name))?;
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
            if arbiter.hear_supervisor(state.arrival_mono_ns, state.trusted_age_ns(), state.message).is_err() {
                safe_stop.reject();
                continue;
            }
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
