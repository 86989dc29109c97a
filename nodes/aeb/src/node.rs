//! The `aeb` node kind: wiring only. Its ports, its parameters ([`AebConfig`]) and the
//! [`Aeb`] reflex run as a task: detections, CameraInfo and VehicleState in, a
//! `reflex_msgs/BrakeRequest` (stamped with the frame's capture time) and the tracked objects
//! out.

use crate::core::AebConfig;
use crate::reflex::Aeb;
use reflex_runtime::spec::parse_params_value;
use reflex_runtime::spec::InvalidParam;
use reflex_runtime::task::{run_task, TaskOptions};
use reflex_runtime::{
    Direction, InputOptions, Node, NodeKind, NodeOptions, NodeSpec, OverflowPolicy, Port, RunError, Shutdown,
};
use std::time::Duration;

pub const DETECTIONS: Port = Port {
    optional: false,
    name: "detections",
    topic: "perception/detections",
    type_name: "vision_msgs/msg/Detection2DArray",
    direction: Direction::Input,
};
pub const CAMERA_INFO: Port = Port {
    optional: true,
    name: "camera_info",
    topic: "camera/camera_info",
    type_name: "sensor_msgs/msg/CameraInfo",
    direction: Direction::Input,
};
pub const VEHICLE_STATE: Port = Port {
    optional: true,
    name: "vehicle_state",
    topic: "vehicle/state",
    type_name: "reflex_msgs/msg/VehicleState",
    direction: Direction::Input,
};
pub const BRAKE_REQUEST: Port = Port {
    optional: false,
    name: "brake_request",
    topic: "aeb/brake_request",
    type_name: "reflex_msgs/msg/BrakeRequest",
    direction: Direction::Output,
};
pub const TRACKS: Port = Port {
    optional: false,
    name: "tracks",
    topic: "aeb/tracks",
    type_name: "reflex_msgs/msg/TrackedObjectArray",
    direction: Direction::Output,
};

fn check(value: &serde_json::Value) -> Result<(), InvalidParam> {
    let config: AebConfig = parse_params_value(value)?;
    config.validate()
}

pub const AEB_KIND: NodeKind = NodeKind {
    name: "aeb",
    summary: "autonomous emergency braking: detections -> ranges -> tracks -> staged brake requests",
    ports: &[DETECTIONS, CAMERA_INFO, VEHICLE_STATE, BRAKE_REQUEST, TRACKS],
    parameters: &[
        ("camera_height_m", "1.3", "camera height above the road"),
        ("camera_pitch_deg", "0", "downward pitch of the camera"),
        ("fx, fy, cx, cy", "500,500,320,240", "intrinsics until CameraInfo arrives"),
        ("min_score", "0.3", "detections below this score are ignored"),
        ("box_noise_px", "2", "box edge noise of the detector (1 sigma): weighs each range"),
        ("budget_ms", "10", "execution budget of one call"),
        ("vehicle_state_max_age_ms", "500", "an older vehicle state gates nothing"),
        ("tracker.*", "", "confirm_hits 3, max_misses 3, range_noise_fraction 0.03, ..."),
        ("threat.*", "", "warn_ttc_s 2.6, partial_ttc_s 1.8, full_ttc_s 1.2, max_decel_mps2 9, stop_gap_m 1.5, ..."),
    ],
    check_params: check,
    run,
    inline: true,
};

fn run(spec: NodeSpec, shutdown: Shutdown) -> Result<(), RunError> {
    let config: AebConfig = spec.params()?;
    config.validate().map_err(|invalid| invalid.of_node(&spec.name))?;
    let node = Node::new(NodeOptions::from_spec(&spec))?;
    // Side inputs: only the latest counts.
    let latest = InputOptions::default().capacity(1).policy(OverflowPolicy::DropOldest);
    let options = TaskOptions {
        name: spec.name.clone(),
        inputs: vec![
            (spec.topic(&DETECTIONS), spec.input_options(&DETECTIONS)),
            (spec.topic(&CAMERA_INFO), latest),
            (spec.topic(&VEHICLE_STATE), latest),
        ],
        outputs: vec![spec.topic(&BRAKE_REQUEST), spec.topic(&TRACKS)],
        budget: Duration::from_secs_f64(config.budget_ms / 1e3),
        inline: spec.inline,
    };
    let report = run_task(&node, Aeb::new(&config, node.status_handle()), &options, &shutdown)?;
    tracing::info!(node = %spec.name, calls = report.calls, overruns = report.budget_overruns, "aeb stopped");
    match report.failure {
        Some(failure) => Err(failure.into()),
        None => Ok(()),
    }
}
