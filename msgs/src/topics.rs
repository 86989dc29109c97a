//! Well-known topic names. Topics are ROS-style names (`/camera/image`); the runtime maps them
//! to zenoh key expressions in one place (`reflex_runtime::keys`), so the key format can change
//! (e.g. to the rmw_zenoh layout) without touching nodes.

/// Timing and health events from every node's runtime (`reflex_msgs/MonitorEvent`).
pub const MONITOR_EVENTS: &str = "/reflex/events";
/// Camera frames (`sensor_msgs/Image`).
pub const CAMERA_IMAGE: &str = "/camera/image";
/// Camera intrinsics (`sensor_msgs/CameraInfo`).
pub const CAMERA_INFO: &str = "/camera/camera_info";
/// Detector output (`vision_msgs/Detection2DArray`).
pub const DETECTIONS: &str = "/perception/detections";
/// Ego motion (`reflex_msgs/VehicleState`).
pub const VEHICLE_STATE: &str = "/vehicle/state";
/// Braking demand of the AEB reflex (`reflex_msgs/BrakeRequest`).
pub const AEB_REQUEST: &str = "/aeb/brake_request";
/// Supervisor state and safe-stop demand (`reflex_msgs/SafeStop`).
pub const SAFE_STOP: &str = "/monitor/safe_stop";
/// The single actuator command, published by the arbiter only (`reflex_msgs/BrakeRequest`).
pub const ACTUATOR_COMMAND: &str = "/vehicle/brake_command";
/// What the actuator gateway asks of the brake unit (`reflex_msgs/BrakeRequest`): the
/// arbiter's command, or its own braking when the commands stop or lie.
pub const BRAKE_DEMAND: &str = "/vehicle/brake_demand";
/// Diagnostics (`diagnostic_msgs/DiagnosticArray`).
pub const DIAGNOSTICS: &str = "/diagnostics";
/// Simulation time (`rosgraph_msgs/Clock`), followed by nodes with `use_sim_time`.
pub const CLOCK: &str = "/clock";
