//! The `aeb` node: the algorithms of this crate as a reflex function on detections.
//!
//! Each `vision_msgs/Detection2DArray` triggers one call: boxes → ranges (camera model from
//! parameters, intrinsics refreshed from `CameraInfo`) → tracker → most critical in-path track
//! → staged decision → `reflex_msgs/BrakeRequest` (stamped with the frame's capture time) and
//! the tracked objects. Ego speed comes from `reflex_msgs/VehicleState`: a stopped vehicle does
//! not brake for what it is not closing on.

use crate::range::{CameraModel, PixelBox};
use crate::threat::{most_critical, Decision, Level, Stager, Threat, ThreatConfig};
use crate::tracker::{Measurement, Track, Tracker, TrackerConfig};
use reflex_msgs::reflex_msgs::{BrakeRequest, TrackedObject, TrackedObjectArray, VehicleState};
use reflex_msgs::sensor_msgs::CameraInfo;
use reflex_msgs::vision_msgs::Detection2DArray;
use reflex_runtime::reflex::{run_reflex, Reflex, ReflexContext, ReflexOptions};
use reflex_runtime::spec::parse_params_value;
use reflex_runtime::{
    Direction, InputOptions, Node, NodeKind, NodeOptions, NodeSpec, OverflowPolicy, Port, Publisher, RunError,
    Shutdown, Subscriber,
};
use serde::Deserialize;
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

/// Parameters of the `aeb` node.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AebConfig {
    /// Camera height above the road, m.
    pub camera_height_m: f64,
    /// Downward pitch of the camera, degrees.
    pub camera_pitch_deg: f64,
    /// Intrinsics until the first CameraInfo arrives.
    pub fx: f64,
    pub fy: f64,
    pub cx: f64,
    pub cy: f64,
    /// Detections below this score are ignored.
    pub min_score: f64,
    /// Execution budget of one call, ms.
    pub budget_ms: f64,
    pub tracker: TrackerConfig,
    pub threat: ThreatConfig,
}

impl Default for AebConfig {
    fn default() -> Self {
        Self {
            camera_height_m: 1.3,
            camera_pitch_deg: 0.0,
            fx: 500.0,
            fy: 500.0,
            cx: 320.0,
            cy: 240.0,
            min_score: 0.3,
            budget_ms: 10.0,
            tracker: TrackerConfig::default(),
            threat: ThreatConfig::default(),
        }
    }
}

fn check(value: &serde_json::Value) -> Result<(), (String, String)> {
    let config: AebConfig = parse_params_value(value)?;
    config.threat.validate().map_err(|(path, message)| (format!("threat.{path}"), message))?;
    if !(config.camera_height_m > 0.0) {
        return Err(("camera_height_m".into(), "must be above 0".into()));
    }
    Ok(())
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
        ("budget_ms", "10", "execution budget of one call"),
        ("tracker.*", "", "confirm_hits 3, max_misses 3, range_noise_fraction 0.05, ..."),
        ("threat.*", "", "warn_ttc_s 2.6, partial_ttc_s 1.8, full_ttc_s 1.2, max_decel_mps2 9, ..."),
    ],
    check_params: check,
    run,
};

/// The AEB without transport: detections in, a staged decision out. The node wraps it; the
/// simulator's fast sweeps run it directly, so both exercise the same code.
pub struct AebCore {
    pub camera: CameraModel,
    min_score: f64,
    threat: ThreatConfig,
    tracker: Tracker,
    stager: Stager,
    measurements: Vec<Measurement>,
}

impl AebCore {
    pub fn new(config: &AebConfig) -> Self {
        Self {
            camera: CameraModel {
                fx: config.fx,
                fy: config.fy,
                cx: config.cx,
                cy: config.cy,
                height_m: config.camera_height_m,
                pitch_rad: config.camera_pitch_deg.to_radians(),
            },
            min_score: config.min_score,
            threat: config.threat,
            tracker: Tracker::new(config.tracker),
            stager: Stager::new(config.threat),
            measurements: Vec::new(),
        }
    }

    /// Takes intrinsics (and the mounting, when carried) from a CameraInfo.
    pub fn set_camera(&mut self, info: &CameraInfo) {
        let k = info.k;
        if k[0] > 0.0 && k[4] > 0.0 {
            (self.camera.fx, self.camera.cx, self.camera.fy, self.camera.cy) = (k[0], k[2], k[4], k[5]);
        }
        // A camera that carries its mounting overrides the parameters.
        if let Some(mounting) = info.mounting().filter(|m| m.height_m > 0.0) {
            (self.camera.height_m, self.camera.pitch_rad) = (mounting.height_m, mounting.pitch_rad);
        }
    }

    /// One frame's detections: ranges → tracks → the most critical in-path track → the staged
    /// decision. `speed_mps` is the ego speed when known (a vehicle standing still closes on
    /// nothing by itself).
    pub fn step(
        &mut self,
        detections: &Detection2DArray,
        speed_mps: Option<f64>,
    ) -> (Decision, Option<(Track, Threat)>) {
        let stamp_ns = detections.header.stamp.as_nanos();
        self.measurements.clear();
        for detection in &detections.detections {
            let Some(best) = detection.results.iter().max_by(|a, b| a.hypothesis.score.total_cmp(&b.hypothesis.score))
            else {
                continue;
            };
            if best.hypothesis.score < self.min_score {
                continue;
            }
            let bbox = &detection.bbox;
            let pixels =
                PixelBox::from_center(bbox.center.position.x, bbox.center.position.y, bbox.size_x, bbox.size_y);
            if let Some(estimate) = self.camera.estimate(&pixels, &best.hypothesis.class_id) {
                self.measurements.push(Measurement {
                    class_id: best.hypothesis.class_id.clone(),
                    range_m: estimate.range_m,
                    lateral_m: estimate.lateral_m,
                });
            }
        }
        self.tracker.update(stamp_ns, &self.measurements);
        let standing = speed_mps.is_some_and(|speed| speed.abs() < 0.1);
        let critical = if standing { None } else { most_critical(self.tracker.tracks().iter(), &self.threat) };
        let decision = self.stager.step(stamp_ns, critical.as_ref().map(|(_, threat)| threat));
        (decision, critical.map(|(track, threat)| (track.clone(), threat)))
    }

    pub fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    pub fn threat_config(&self) -> &ThreatConfig {
        &self.threat
    }
}

/// The reflex: the core and the node's side inputs.
pub struct Aeb {
    core: AebCore,
    camera_info: Subscriber<CameraInfo>,
    vehicle_state: Subscriber<VehicleState>,
    /// Ego speed from the last VehicleState; `None` until one arrives (then nothing is gated).
    speed_mps: Option<f64>,
    tracks_out: Publisher<TrackedObjectArray>,
    tracks: TrackedObjectArray,
}

impl Aeb {
    fn refresh_side_inputs(&mut self) {
        while let Some(info) = self.camera_info.recv() {
            self.core.set_camera(info.message);
        }
        while let Some(state) = self.vehicle_state.recv() {
            self.speed_mps = Some(state.message.speed_mps);
        }
    }
}

impl Reflex for Aeb {
    type Input = Detection2DArray;
    type Output = BrakeRequest;

    fn react(&mut self, detections: &Detection2DArray, request: &mut BrakeRequest, context: &ReflexContext) -> bool {
        self.refresh_side_inputs();
        let (decision, critical) = self.core.step(detections, self.speed_mps);
        request.header.stamp = detections.header.stamp;
        request.header.frame_id.clone_from(&detections.header.frame_id);
        request.level = decision.level as u8;
        request.deceleration_mps2 = decision.decel_mps2;
        request.time_to_collision_s = decision.ttc_s;
        request.reason.clear();
        if let Some((track, _)) = &critical {
            if decision.level > Level::None {
                use std::fmt::Write;
                let _ = write!(request.reason, "{} track {} at {:.1} m", track.class_id, track.id, track.range_m());
            }
        }
        request.source.clear();
        request.source.push_str(context.name);

        self.tracks.header.stamp = detections.header.stamp;
        self.tracks.objects.clear();
        for track in self.core.tracker.confirmed() {
            let threat = crate::threat::Threat::from_track(track);
            self.tracks.objects.push(TrackedObject {
                track_id: track.id,
                class_id: track.class_id.clone(),
                range_m: track.range_m(),
                range_rate_mps: track.range_rate_mps(),
                lateral_m: track.lateral_m,
                time_to_collision_s: threat.decision_ttc_s(),
                in_path: self.core.threat.in_path(track.lateral_m),
            });
        }
        if let Err(error) = self.tracks_out.publish(&self.tracks) {
            tracing::warn!(%error, "cannot publish tracks");
        }
        true
    }
}

fn run(spec: NodeSpec, shutdown: Shutdown) -> Result<(), RunError> {
    let config: AebConfig = spec.params()?;
    let node = Node::new(NodeOptions::from_spec(&spec))?;
    let latest = InputOptions::default().capacity(1).policy(OverflowPolicy::DropOldest);
    let aeb = Aeb {
        core: AebCore::new(&config),
        camera_info: node.subscriber(&spec.topic(&CAMERA_INFO), latest)?,
        vehicle_state: node.subscriber(&spec.topic(&VEHICLE_STATE), latest)?,
        speed_mps: None,
        tracks_out: node.publisher(&spec.topic(&TRACKS))?,
        tracks: TrackedObjectArray::default(),
    };
    let options = ReflexOptions {
        name: spec.name.clone(),
        input_topic: spec.topic(&DETECTIONS),
        input: spec.input_options(&DETECTIONS),
        output_topic: spec.topic(&BRAKE_REQUEST),
        budget: Duration::from_secs_f64(config.budget_ms.max(0.1) / 1e3),
    };
    let report = run_reflex(&node, aeb, &options, &shutdown)?;
    tracing::info!(node = %spec.name, calls = report.calls, overruns = report.budget_overruns, "aeb stopped");
    match report.failure {
        Some(failure) => Err(failure.into()),
        None => Ok(()),
    }
}
