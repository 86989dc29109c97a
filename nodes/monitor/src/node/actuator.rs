//! The `actuator` node kind: the [`ActuatorGateway`] between the arbiter's commands and the
//! brake unit.

use crate::actuator::{ActuatorGateway, Counter, GatewayConfig};
use crate::vehicle::VehicleSpeed;
use reflex_msgs::reflex_msgs::{BrakeRequest, VehicleState};
use reflex_msgs::topics;
use reflex_runtime::health::Level;
use reflex_runtime::spec::parse_params_value;
use reflex_runtime::spec::InvalidParam;
use reflex_runtime::{
    Direction, InputOptions, Node, NodeKind, NodeOptions, NodeSpec, OverflowPolicy, Port, RunError, Shutdown,
    DRAIN_LIMIT,
};
use serde::Deserialize;
use std::time::Duration;

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

fn check_actuator(value: &serde_json::Value) -> Result<(), InvalidParam> {
    let config: ActuatorNodeConfig = parse_params_value(value)?;
    config.gateway.validate()?;
    if !(10.0..=1000.0).contains(&config.rate_hz) {
        return Err(InvalidParam::new("rate_hz", format!("{} is outside [10, 1000] Hz", config.rate_hz)));
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
    inline: false,
};

/// The gateway as a process: the demand for the brake unit's bus bridge on `/vehicle/brake_demand`.
fn run_actuator(spec: NodeSpec, shutdown: Shutdown) -> Result<(), RunError> {
    let config: ActuatorNodeConfig = spec.params()?;
    check_actuator(&spec.params).map_err(|invalid| invalid.of_node(&spec.name))?;
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
    let mut speed = VehicleSpeed::default();
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
            // A speed that is no number leaves the last one (the gateway does not refuse it).
            speed.hear(state.arrival_mono_ns, state.message.speed_mps);
        }
        let now = clock.mono_ns();
        let out = gateway.output(now, speed.known(now));
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
