//! The `aeb` node: the algorithms of this crate as a reflex function on detections.
//!
//! Each `vision_msgs/Detection2DArray` triggers one call: boxes → ranges (camera model from
//! parameters, intrinsics refreshed from `CameraInfo`) → tracker → most critical in-path track
//! → staged decision → `reflex_msgs/BrakeRequest` (stamped with the frame's capture time) and
//! the tracked objects. Ego speed comes from `reflex_msgs/VehicleState`: a stopped vehicle does
//! not brake for what it is not closing on, but only while that state is fresh.
//!
//! Nothing from the bus is trusted: a CameraInfo with implausible or non-finite intrinsics or
//! mounting is refused (the last good model stays), detections with non-finite values are
//! dropped, frames without a stamp or stamped in the future are refused (the last decision
//! holds), and each shows in the node's health until it stops.

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
    Shutdown, StatusHandle, Subscriber,
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
    /// A vehicle state older than this tells nothing about the ego speed, ms.
    pub vehicle_state_max_age_ms: f64,
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
            vehicle_state_max_age_ms: 500.0,
            tracker: TrackerConfig::default(),
            threat: ThreatConfig::default(),
        }
    }
}

impl AebConfig {
    /// Checks the values; names the parameter (intrinsics and mounting the way a camera model
    /// would be refused at run time, see [`check_camera`]).
    pub fn validate(&self) -> Result<(), (String, String)> {
        self.threat.validate().map_err(|(path, message)| (format!("threat.{path}"), message))?;
        let camera = CameraModel {
            fx: self.fx,
            fy: self.fy,
            cx: self.cx,
            cy: self.cy,
            height_m: self.camera_height_m,
            pitch_rad: self.camera_pitch_deg.to_radians(),
        };
        check_camera(&camera, None).map_err(|(path, message)| (path.to_string(), message))?;
        if !(0.0..=1.0).contains(&self.min_score) {
            return Err(("min_score".into(), "must be in [0, 1]".into()));
        }
        if !(self.budget_ms > 0.0 && self.budget_ms <= 10_000.0) {
            return Err(("budget_ms".into(), "must be in (0, 10000] ms".into()));
        }
        if !(self.vehicle_state_max_age_ms > 0.0 && self.vehicle_state_max_age_ms <= 10_000.0) {
            return Err(("vehicle_state_max_age_ms".into(), "must be in (0, 10000] ms".into()));
        }
        Ok(())
    }
}

/// Plausible camera models: intrinsics of a real lens and sensor, a mounting on a vehicle.
/// `Err((parameter, why))`. `size` is the image size when known (the principal point must be
/// inside it).
pub fn check_camera(camera: &CameraModel, size: Option<(u32, u32)>) -> Result<(), (&'static str, String)> {
    let CameraModel { fx, fy, cx, cy, height_m, pitch_rad } = *camera;
    for (name, value) in [("fx", fx), ("fy", fy)] {
        if !(50.0..=20_000.0).contains(&value) {
            return Err((name, format!("{value} px is not a focal length (50..=20000)")));
        }
    }
    let (width, height) = size.map_or((20_000.0, 20_000.0), |(w, h)| (f64::from(w), f64::from(h)));
    if !(0.0..=width).contains(&cx) {
        return Err(("cx", format!("{cx} px is outside the image (0..={width})")));
    }
    if !(0.0..=height).contains(&cy) {
        return Err(("cy", format!("{cy} px is outside the image (0..={height})")));
    }
    if !(0.2..=5.0).contains(&height_m) {
        return Err(("camera_height_m", format!("{height_m} m is not a mounting height (0.2..=5)")));
    }
    if !(pitch_rad.abs() <= 15f64.to_radians()) {
        return Err(("camera_pitch_deg", format!("{:.1}° is beyond ±15°", pitch_rad.to_degrees())));
    }
    Ok(())
}

fn check(value: &serde_json::Value) -> Result<(), (String, String)> {
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
        ("budget_ms", "10", "execution budget of one call"),
        ("vehicle_state_max_age_ms", "500", "an older vehicle state gates nothing"),
        ("tracker.*", "", "confirm_hits 3, max_misses 3, range_noise_fraction 0.05, ..."),
        ("threat.*", "", "warn_ttc_s 2.6, partial_ttc_s 1.8, full_ttc_s 1.2, max_decel_mps2 9, ..."),
    ],
    check_params: check,
    run,
};

/// A frame's capture stamp and arrival may disagree by this much before the tracker trusts the
/// arrival instead (a step of the camera's clock, or a frame from the future).
const STAMP_DISAGREEMENT_NS: i64 = 100_000_000;

/// Why a frame of detections was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The frame has no capture stamp.
    ZeroStamp,
}

/// The tracker's own time line: it follows the frames' capture stamps while they agree with
/// when the frames arrived (duration clock), and the arrivals when they do not.
#[derive(Debug, Clone, Copy)]
struct Timeline {
    stamp_ns: i64,
    arrival_ns: i64,
    t_ns: i64,
}

/// The AEB without transport: detections in, a staged decision out. The node wraps it; the
/// simulator's fast sweeps run it directly, so both exercise the same code.
pub struct AebCore {
    pub camera: CameraModel,
    min_score: f64,
    threat: ThreatConfig,
    tracker: Tracker,
    stager: Stager,
    measurements: Vec<Measurement>,
    timeline: Option<Timeline>,
    last: Option<(Decision, Option<(Track, Threat)>)>,
    /// Detections refused for non-finite values, so far.
    pub refused_detections: u64,
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
            timeline: None,
            last: None,
            refused_detections: 0,
        }
    }

    /// Takes intrinsics (and the mounting, when carried) from a CameraInfo, if they are
    /// plausible; otherwise keeps the model it has and says why.
    pub fn set_camera(&mut self, info: &CameraInfo) -> Result<(), String> {
        let k = info.k;
        let mut camera = self.camera;
        (camera.fx, camera.cx, camera.fy, camera.cy) = (k[0], k[2], k[4], k[5]);
        // A camera that carries its mounting overrides the parameters.
        if let Some(mounting) = info.mounting() {
            (camera.height_m, camera.pitch_rad) = (mounting.height_m, mounting.pitch_rad);
        } else if info.r.iter().chain(&info.p).any(|v| !v.is_finite()) {
            return Err("CameraInfo refused: R or P holds a value that is not a finite number".into());
        }
        let size = (info.width > 0 && info.height > 0).then_some((info.width, info.height));
        check_camera(&camera, size).map_err(|(what, why)| format!("CameraInfo refused: {what}: {why}"))?;
        self.camera = camera;
        Ok(())
    }

    /// One frame's detections, which arrived at `arrival_ns` (duration clock: monotonic or
    /// simulation time): ranges → tracks → the most critical in-path track → the staged
    /// decision. `speed_mps` is the ego speed when known and fresh (a vehicle standing still
    /// closes on nothing by itself). A frame without a capture stamp is refused and the last
    /// decision holds; detections with values that are not finite are dropped and counted.
    pub fn step(
        &mut self,
        detections: &Detection2DArray,
        speed_mps: Option<f64>,
        arrival_ns: i64,
    ) -> Result<(Decision, Option<(Track, Threat)>), Refused> {
        let stamp_ns = detections.header.stamp.as_nanos();
        if stamp_ns == 0 {
            return Err(Refused::ZeroStamp);
        }
        let t_ns = self.advance_timeline(stamp_ns, arrival_ns);
        self.measurements.clear();
        for detection in &detections.detections {
            // The best hypothesis with a finite score (a NaN one must not hide a valid one).
            let best = detection
                .results
                .iter()
                .filter(|r| r.hypothesis.score.is_finite())
                .max_by(|a, b| a.hypothesis.score.total_cmp(&b.hypothesis.score));
            let Some(best) = best else {
                if !detection.results.is_empty() {
                    self.refused_detections += 1;
                }
                continue;
            };
            let bbox = &detection.bbox;
            let values =
                [best.hypothesis.score, bbox.center.position.x, bbox.center.position.y, bbox.size_x, bbox.size_y];
            if values.iter().any(|v| !v.is_finite()) || bbox.size_x < 0.0 || bbox.size_y < 0.0 {
                self.refused_detections += 1;
                continue;
            }
            if best.hypothesis.score < self.min_score {
                continue;
            }
            let pixels =
                PixelBox::from_center(bbox.center.position.x, bbox.center.position.y, bbox.size_x, bbox.size_y);
            if let Some(estimate) = self.camera.estimate(&pixels, &best.hypothesis.class_id) {
                let measurement = Measurement {
                    class_id: best.hypothesis.class_id.clone(),
                    range_m: estimate.range_m,
                    lateral_m: estimate.lateral_m,
                };
                if measurement.is_valid() {
                    self.measurements.push(measurement);
                } else {
                    self.refused_detections += 1;
                }
            }
        }
        self.tracker.update(t_ns, &self.measurements);
        let standing = speed_mps.is_some_and(|speed| speed.abs() < 0.1);
        let critical = if standing { None } else { most_critical(self.tracker.tracks().iter(), &self.threat) };
        let decision = self.stager.step(t_ns, critical.as_ref().map(|(_, threat)| threat));
        let result = (decision, critical.map(|(track, threat)| (track.clone(), threat)));
        self.last = Some(result.clone());
        Ok(result)
    }

    /// The decision of the last frame that was taken (what holds while frames are refused).
    pub fn last_decision(&self) -> Option<&(Decision, Option<(Track, Threat)>)> {
        self.last.as_ref()
    }

    /// The tracker time of a frame: the previous one plus the frame interval by the stamps,
    /// unless that disagrees with the arrivals by more than [`STAMP_DISAGREEMENT_NS`] (or runs
    /// backwards), in which case the arrivals' interval counts.
    fn advance_timeline(&mut self, stamp_ns: i64, arrival_ns: i64) -> i64 {
        let t_ns = match self.timeline {
            None => arrival_ns,
            Some(last) => {
                let by_stamp = stamp_ns.saturating_sub(last.stamp_ns);
                let by_arrival = arrival_ns.saturating_sub(last.arrival_ns).max(0);
                let step = if by_stamp >= 0 && by_stamp.abs_diff(by_arrival) <= STAMP_DISAGREEMENT_NS as u64 {
                    by_stamp
                } else {
                    by_arrival
                };
                last.t_ns.saturating_add(step)
            }
        };
        self.timeline = Some(Timeline { stamp_ns, arrival_ns, t_ns });
        t_ns
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
    /// Ego speed from the last VehicleState and when it arrived (duration clock).
    speed: Option<(f64, i64)>,
    vehicle_state_max_age_ns: i64,
    tracks_out: Publisher<TrackedObjectArray>,
    tracks: TrackedObjectArray,
    status: StatusHandle,
    /// What the node's health says now about each side of its input (to set it on change only).
    said: [Option<String>; 3],
}

/// A detection frame stamped further in the future than this is refused (beyond clock noise
/// between hosts).
const FUTURE_TOLERANCE_NS: i64 = 50_000_000;

impl Aeb {
    fn say(&mut self, slot: usize, name: &str, problem: Option<String>) {
        if self.said[slot] != problem {
            match &problem {
                Some(why) => {
                    tracing::warn!(status = name, "{why}");
                    self.status.set(name, reflex_runtime::Level::Warn, why);
                }
                None => self.status.clear(name),
            }
            self.said[slot] = problem;
        }
    }

    fn refresh_side_inputs(&mut self, now_ns: i64) {
        for _ in 0..reflex_runtime::DRAIN_LIMIT {
            let Some(info) = self.camera_info.recv() else { break };
            let result = self.core.set_camera(info.message);
            if result.is_err() {
                self.camera_info.reject();
            }
            self.say(0, "camera model", result.err());
        }
        for _ in 0..reflex_runtime::DRAIN_LIMIT {
            let Some(state) = self.vehicle_state.recv() else { break };
            if state.message.speed_mps.is_finite() {
                self.speed = Some((state.message.speed_mps, state.arrival_mono_ns));
            } else {
                self.vehicle_state.reject();
            }
        }
        let stale = self.speed.is_some_and(|(_, at)| now_ns.saturating_sub(at) > self.vehicle_state_max_age_ns);
        let problem = stale.then(|| "vehicle state stale: ego speed unknown, no threat is gated off".to_string());
        self.say(1, "vehicle state", problem);
    }

    /// The ego speed if a fresh vehicle state gave one: a stale "0 m/s" must not gate off
    /// every threat (the vehicle may have driven off since).
    fn fresh_speed(&self, now_ns: i64) -> Option<f64> {
        self.speed.filter(|(_, at)| now_ns.saturating_sub(*at) <= self.vehicle_state_max_age_ns).map(|(v, _)| v)
    }
}

impl Reflex for Aeb {
    type Input = Detection2DArray;
    type Output = BrakeRequest;

    fn react(&mut self, detections: &Detection2DArray, request: &mut BrakeRequest, context: &ReflexContext) -> bool {
        self.refresh_side_inputs(context.now_mono_ns);
        let refused_before = self.core.refused_detections;
        let from_the_future = context.input_age_ns.is_some_and(|age| age < -FUTURE_TOLERANCE_NS);
        let step = if from_the_future {
            Err("detections stamped in the future")
        } else {
            self.core
                .step(detections, self.fresh_speed(context.now_mono_ns), context.arrival_mono_ns)
                .map_err(|_| "detections without a capture stamp")
        };
        let problem = match &step {
            Err(why) => Some(format!("frame refused: {why}")),
            Ok(_) if self.core.refused_detections > refused_before => Some(format!(
                "{} detection(s) with values that are not finite refused",
                self.core.refused_detections - refused_before
            )),
            Ok(_) => None,
        };
        self.say(2, "detections", problem);
        // A refused frame changes nothing: the last decision holds (and the request's stamp
        // stays that of the last frame taken, so a stream of refused frames shows as a stamp
        // that stops advancing).
        let taken = step.is_ok();
        let Some((decision, critical)) = step.ok().or_else(|| self.core.last_decision().cloned()) else {
            return false;
        };
        if taken {
            request.header.stamp = detections.header.stamp;
            request.header.frame_id.clone_from(&detections.header.frame_id);
        }
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

        self.tracks.header.stamp = request.header.stamp;
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
    config.validate().map_err(|(path, message)| format!("aeb parameter {path}: {message}"))?;
    let node = Node::new(NodeOptions::from_spec(&spec))?;
    let latest = InputOptions::default().capacity(1).policy(OverflowPolicy::DropOldest);
    let aeb = Aeb {
        core: AebCore::new(&config),
        camera_info: node.subscriber(&spec.topic(&CAMERA_INFO), latest)?,
        vehicle_state: node.subscriber(&spec.topic(&VEHICLE_STATE), latest)?,
        speed: None,
        vehicle_state_max_age_ns: (config.vehicle_state_max_age_ms * 1e6) as i64,
        tracks_out: node.publisher(&spec.topic(&TRACKS))?,
        tracks: TrackedObjectArray::default(),
        status: node.status_handle(),
        said: [None, None, None],
    };
    let options = ReflexOptions {
        name: spec.name.clone(),
        input_topic: spec.topic(&DETECTIONS),
        input: spec.input_options(&DETECTIONS),
        output_topic: spec.topic(&BRAKE_REQUEST),
        budget: Duration::from_secs_f64(config.budget_ms / 1e3),
    };
    let report = run_reflex(&node, aeb, &options, &shutdown)?;
    tracing::info!(node = %spec.name, calls = report.calls, overruns = report.budget_overruns, "aeb stopped");
    match report.failure {
        Some(failure) => Err(failure.into()),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reflex_msgs::builtin_interfaces::Time;
    use reflex_msgs::vision_msgs::{Detection2D, ObjectHypothesis, ObjectHypothesisWithPose};
    use reflex_msgs::Mounting;

    const MS: i64 = 1_000_000;
    const FRAME_MS: i64 = 50;

    /// Detections of a car `z` m ahead in the lane, as the default camera sees it.
    fn car_at(core: &AebCore, z: f64, stamp_ns: i64, class_id: &str) -> Detection2DArray {
        let camera = core.camera;
        let (left, bottom) = camera.project(z, 0.875, 0.0).unwrap();
        let (right, _) = camera.project(z, -0.875, 0.0).unwrap();
        let (_, top) = camera.project(z, 0.0, 1.5).unwrap();
        let mut detection = Detection2D::default();
        detection.bbox.center.position.x = (left + right) / 2.0;
        detection.bbox.center.position.y = (top + bottom) / 2.0;
        detection.bbox.size_x = right - left;
        detection.bbox.size_y = bottom - top;
        detection.results.push(ObjectHypothesisWithPose {
            hypothesis: ObjectHypothesis { class_id: class_id.into(), score: 0.9 },
            ..Default::default()
        });
        let mut message = Detection2DArray { detections: vec![detection], ..Default::default() };
        message.header.stamp = Time::from_nanos(stamp_ns);
        message
    }

    /// Closes on a stationary car at 10 m/s from 40 m, 20 frames a second; `edit(frame, stamp,
    /// detections)` may change each frame. Returns the first frame with full braking.
    fn close_in(
        core: &mut AebCore,
        mut stamp_of: impl FnMut(i64) -> i64,
        mut edit: impl FnMut(i64, &mut Detection2DArray),
    ) -> Option<i64> {
        for frame in 0..70i64 {
            let z = 40.0 - 10.0 * frame as f64 * FRAME_MS as f64 / 1e3;
            if z < 2.0 {
                break;
            }
            let arrival = 5_000 * MS + frame * FRAME_MS * MS;
            let mut detections = car_at(core, z, stamp_of(frame), "car");
            edit(frame, &mut detections);
            if let Ok((decision, _)) = core.step(&detections, Some(10.0), arrival) {
                if decision.level == Level::Full {
                    return Some(frame);
                }
            }
        }
        None
    }

    fn wall(frame: i64) -> i64 {
        1_700_000_000_000 * MS + frame * FRAME_MS * MS
    }

    /// Full braking must come while the car is still more than 8 m away (10 m/s needs 5.6 m).
    fn in_time(frame: Option<i64>) -> bool {
        frame.is_some_and(|f| 40.0 - 10.0 * f as f64 * FRAME_MS as f64 / 1e3 > 8.0)
    }

    #[test]
    fn the_reference_approach_brakes_in_time() {
        let mut core = AebCore::new(&AebConfig::default());
        assert!(in_time(close_in(&mut core, wall, |_, _| {})));
    }

    /// C1: the camera's wall clock steps back 10 s, or forward 1 s, mid-approach: the tracker
    /// follows the frames' arrivals across the step and brakes as it would have.
    #[test]
    fn a_clock_step_in_the_stamps_neither_freezes_nor_rushes_the_tracker() {
        for step_ms in [-10_000, -1_000, 1_000, 60_000] {
            let mut core = AebCore::new(&AebConfig::default());
            let full = close_in(&mut core, |f| wall(f) + if f >= 10 { step_ms * MS } else { 0 }, |_, _| {});
            assert!(in_time(full), "step {step_ms} ms: full braking at frame {full:?}");
            let mut reference = AebCore::new(&AebConfig::default());
            let expected = close_in(&mut reference, wall, |_, _| {});
            assert!(full.unwrap().abs_diff(expected.unwrap()) <= 1, "{full:?} vs {expected:?}");
        }
    }

    /// H8: a CameraInfo with NaN (or absurd) values is refused; the AEB keeps its model and
    /// still brakes for the car.
    #[test]
    fn an_implausible_camera_info_is_refused_and_braking_goes_on() {
        let mut core = AebCore::new(&AebConfig::default());
        let good =
            CameraInfo::pinhole(640, 480, 500.0, 500.0, 320.0, 240.0, Mounting { height_m: 1.3, pitch_rad: 0.0 });
        assert!(core.set_camera(&good).is_ok());
        let before = core.camera;
        let mut nan_rotation = good.clone();
        for index in [4, 5, 7, 8] {
            nan_rotation.r[index] = f64::NAN;
        }
        let mut nan_k = good.clone();
        nan_k.k[2] = f64::NAN;
        let mut huge_fx = good.clone();
        huge_fx.k[0] = 1e12;
        let mut underground = good.clone();
        underground.p[7] = -500.0;
        for bad in [nan_rotation, nan_k, huge_fx, underground] {
            let why = core.set_camera(&bad).unwrap_err();
            assert!(why.starts_with("CameraInfo refused"), "{why}");
            assert_eq!(core.camera, before, "the last good model stays");
        }
        assert!(in_time(close_in(&mut core, wall, |_, _| {})));
    }

    /// H7 through the core: a NaN box in one frame is dropped and counted; braking goes on.
    #[test]
    fn a_nan_box_is_dropped_and_counted() {
        let mut core = AebCore::new(&AebConfig::default());
        let full = close_in(&mut core, wall, |frame, detections| {
            if frame == 8 {
                detections.detections[0].bbox.center.position.x = f64::NAN;
            }
        });
        assert!(in_time(full));
        assert_eq!(core.refused_detections, 1);
    }

    /// A NaN-scored hypothesis beside the real one hides nothing: the real class is taken.
    #[test]
    fn a_nan_hypothesis_does_not_hide_the_valid_one() {
        let mut core = AebCore::new(&AebConfig::default());
        let full = close_in(&mut core, wall, |_, detections| {
            let mut nan = detections.detections[0].results[0].clone();
            nan.hypothesis.score = f64::NAN;
            detections.detections[0].results.insert(0, nan);
        });
        assert!(in_time(full), "{full:?}");
        assert_eq!(core.refused_detections, 0);
    }

    /// M2: a frame stamped zero is refused (the last decision holds); one stamped far in the
    /// future does not stop the tracks from predicting afterwards.
    #[test]
    fn zero_and_future_stamps_do_not_derail_the_tracker() {
        let mut core = AebCore::new(&AebConfig::default());
        let zero = car_at(&core, 30.0, 0, "car");
        assert_eq!(core.step(&zero, None, 0).unwrap_err(), Refused::ZeroStamp);
        let full = close_in(&mut core, |f| if f == 5 { wall(f) + 1_000_000_000 * MS } else { wall(f) }, |_, _| {});
        assert!(in_time(full), "{full:?}");
    }

    #[test]
    fn class_flicker_still_brakes() {
        let mut core = AebCore::new(&AebConfig::default());
        let full = close_in(&mut core, wall, |frame, detections| {
            if frame % 2 == 1 {
                detections.detections[0].results[0].hypothesis.class_id = "truck".into();
            }
        });
        assert!(in_time(full), "{full:?}");
    }

    #[test]
    fn config_checks_name_the_parameter() {
        assert!(AebConfig::default().validate().is_ok());
        let bad = AebConfig { fx: 0.0, ..AebConfig::default() };
        assert_eq!(bad.validate().unwrap_err().0, "fx");
        let bad = AebConfig { camera_height_m: f64::NAN, ..AebConfig::default() };
        assert_eq!(bad.validate().unwrap_err().0, "camera_height_m");
    }
}
