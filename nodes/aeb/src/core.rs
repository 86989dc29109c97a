//! The AEB without transport: a frame of detections in, a staged decision out ([`AebCore`]),
//! with its parameters ([`AebConfig`]). The `aeb` reflex runs it on the bus; the simulator's
//! fast sweeps run it directly, so both exercise the same code.

use crate::range::{CameraModel, PixelBox, RangeEstimate};
use crate::threat::{most_critical, Decision, Level, Stager, Threat, ThreatConfig};
use crate::tracker::{Measurement, Track, Tracker, TrackerConfig};
use reflex_msgs::sensor_msgs::CameraInfo;
use reflex_msgs::vision_msgs::Detection2DArray;
use reflex_runtime::spec::InvalidParam;
use serde::Deserialize;

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
    /// How far the detector's box edges scatter around the object's, px (1 sigma): through the
    /// camera's geometry, what each range measurement is worth to the tracker.
    pub box_noise_px: f64,
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
            box_noise_px: 2.0,
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
    pub fn validate(&self) -> Result<(), InvalidParam> {
        self.threat.validate().map_err(|invalid| invalid.within("threat"))?;
        self.tracker.validate().map_err(|invalid| invalid.within("tracker"))?;
        let camera = CameraModel {
            fx: self.fx,
            fy: self.fy,
            cx: self.cx,
            cy: self.cy,
            height_m: self.camera_height_m,
            pitch_rad: self.camera_pitch_deg.to_radians(),
        };
        check_camera(&camera, None).map_err(|(path, message)| InvalidParam::new(path, message))?;
        if !(0.0..=1.0).contains(&self.min_score) {
            return Err(InvalidParam::new("min_score", "must be in [0, 1]"));
        }
        if !(self.box_noise_px > 0.0 && self.box_noise_px <= 50.0) {
            return Err(InvalidParam::new("box_noise_px", format!("{} is outside (0, 50] px", self.box_noise_px)));
        }
        if !(self.budget_ms > 0.0 && self.budget_ms <= 10_000.0) {
            return Err(InvalidParam::new("budget_ms", "must be in (0, 10000] ms"));
        }
        if !(self.vehicle_state_max_age_ms > 0.0 && self.vehicle_state_max_age_ms <= 10_000.0) {
            return Err(InvalidParam::new("vehicle_state_max_age_ms", "must be in (0, 10000] ms"));
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

/// A frame's capture stamp and arrival may disagree by this much before the tracker trusts the
/// arrival instead (a step of the camera's clock, or a frame from the future).
const STAMP_DISAGREEMENT_NS: i64 = 100_000_000;

/// How long braking holds at most for an object that left the camera's view while braked for,
/// ns: time to stop from 80 km/h at 5 m/s², so a standstill ends it first wherever the ego's
/// speed is known.
const OUT_OF_VIEW_HOLD_NS: i64 = 5_000_000_000;

/// A box edge this close to the image's edge, px, is taken as cut off by it (and within two
/// standard deviations of the box noise, see [`AebConfig::box_noise_px`]).
const EDGE_PX: f64 = 1.0;

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
    /// Image width and height, px: from the CameraInfo, twice the principal point until then.
    image_size: (f64, f64),
    min_score: f64,
    box_noise_px: f64,
    threat: ThreatConfig,
    tracker: Tracker,
    stager: Stager,
    measurements: Vec<Measurement>,
    timeline: Option<Timeline>,
    last: Option<(Decision, Option<(Track, Threat)>)>,
    /// While braking: when the object braked for (the last decision's) was last tracked, in
    /// case it leaves the camera's view.
    braking_seen_ns: Option<i64>,
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
            image_size: (2.0 * config.cx, 2.0 * config.cy),
            min_score: config.min_score,
            box_noise_px: config.box_noise_px,
            threat: config.threat,
            tracker: Tracker::new(config.tracker),
            stager: Stager::new(config.threat),
            measurements: Vec::new(),
            timeline: None,
            last: None,
            braking_seen_ns: None,
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
        self.image_size = size.map_or((2.0 * camera.cx, 2.0 * camera.cy), |(w, h)| (f64::from(w), f64::from(h)));
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
                let Some((range_m, range_sigma_m)) = self.trusted_range(&pixels, &estimate) else { continue };
                let measurement = Measurement {
                    class_id: best.hypothesis.class_id.clone(),
                    range_m,
                    // The box centre's bearing at the range used (the width's when the bottom
                    // edge is cut off by the image).
                    lateral_m: estimate.lateral_m * (range_m / estimate.range_m),
                    range_sigma_m: Some(range_sigma_m),
                };
                if measurement.is_valid() {
                    self.measurements.push(measurement);
                } else {
                    self.refused_detections += 1;
                }
            }
        }
        self.tracker.set_ego_speed(speed_mps);
        self.tracker.update(t_ns, &self.measurements);
        let standing = speed_mps.is_some_and(|speed| speed.abs() < 0.1);
        let critical = if standing {
            None
        } else {
            most_critical(self.tracker.tracks().iter(), &self.threat, speed_mps)
                .map(|(track, threat)| (track.clone(), threat))
        };
        let critical = critical.or_else(|| self.out_of_view(t_ns, standing));
        let decision = self.stager.step(t_ns, critical.as_ref().map(|(_, threat)| threat));
        self.braking_seen_ns = match &critical {
            // An object held out of view keeps the time it was last seen.
            Some((track, _)) if decision.level >= Level::Partial => {
                Some(if self.tracked(track.id) { t_ns } else { self.braking_seen_ns.unwrap_or(t_ns) })
            }
            _ => None,
        };
        let result = (decision, critical);
        self.last = Some(result.clone());
        Ok(result)
    }

    /// The range a box tells and its standard deviation. Its bottom edge is where the object
    /// meets the road only when the image shows it: a box cut off at the bottom of the image
    /// (an object closer than the camera sees the road) would read as a constant range while
    /// the ego closes in, so the box's width against the class's typical width tells the range
    /// instead, if the sides are in the image; otherwise the box tells nothing about range.
    fn trusted_range(&self, pixels: &PixelBox, estimate: &RangeEstimate) -> Option<(f64, f64)> {
        let (width, height) = self.image_size;
        let edge = EDGE_PX.max(2.0 * self.box_noise_px);
        if pixels.bottom < height - edge {
            let sigma = self.camera.ground_range_sigma(pixels.bottom, self.box_noise_px);
            return Some((estimate.range_m, sigma));
        }
        let sides_in = pixels.left > edge && pixels.right < width - edge;
        let range = estimate.width_range_m.filter(|range| sides_in && range.is_finite() && *range > 0.0)?;
        // Both sides scatter: the width's sigma is √2 edges'.
        let sigma = range * std::f64::consts::SQRT_2 * self.box_noise_px / pixels.width();
        Some((range, sigma))
    }

    /// The object braked for when the tracker has lost it (not when it left the path or stopped
    /// closing: then it is still tracked and the stager's release applies): as it was last
    /// seen, until the ego stands ([`OUT_OF_VIEW_HOLD_NS`] at most). Braking for an object
    /// ends close to it, where its bottom edge leaves the image and the camera gives no range;
    /// releasing the brakes there let the ego roll into a lead that was still braking (CCRb in
    /// the simulator). Once engaged, braking holds to a standstill.
    fn out_of_view(&self, t_ns: i64, standing: bool) -> Option<(Track, Threat)> {
        let seen_ns = self.braking_seen_ns?;
        let (_, Some((track, threat))) = self.last.as_ref()? else { return None };
        let held = !self.tracked(track.id) && !standing && t_ns.saturating_sub(seen_ns) <= OUT_OF_VIEW_HOLD_NS;
        held.then(|| (track.clone(), *threat))
    }

    fn tracked(&self, id: u32) -> bool {
        self.tracker.tracks().iter().any(|t| t.id == id)
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

#[cfg(test)]
mod tests {
    use super::*;
    use reflex_msgs::builtin_interfaces::Time;
    use reflex_msgs::Mounting;

    const MS: i64 = 1_000_000;
    const FRAME_MS: i64 = 50;

    fn car_at(core: &AebCore, z: f64, stamp_ns: i64, class_id: &str) -> Detection2DArray {
        crate::fixtures::car_at(&core.camera, z, stamp_ns, class_id)
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

    /// Once braking for an object, the brakes hold when it leaves the camera's view (the
    /// tracker loses it) while the ego still moves, and release only once the ego stands.
    #[test]
    fn braking_holds_to_a_standstill_for_an_object_that_leaves_the_view() {
        let mut core = AebCore::new(&AebConfig::default());
        let full = close_in(&mut core, wall, |_, _| {}).expect("full braking");
        let nothing = |frame: i64| {
            let mut empty = Detection2DArray::default();
            empty.header.stamp = Time::from_nanos(wall(frame));
            empty
        };
        let arrival = |frame: i64| 5_000 * MS + frame * FRAME_MS * MS;
        // Three seconds without a detection, still moving: held.
        for frame in full + 1..full + 61 {
            let (decision, critical) = core.step(&nothing(frame), Some(5.0), arrival(frame)).unwrap();
            assert_eq!(decision.level, Level::Full, "frame {frame}");
            assert!(decision.decel_mps2 >= 5.0);
            assert!(critical.is_some(), "the object braked for, as last seen");
        }
        // Standing: released after the release hold.
        let stop = full + 61;
        let released = (stop..stop + 40)
            .find(|&frame| core.step(&nothing(frame), Some(0.0), arrival(frame)).unwrap().0.level == Level::None)
            .expect("released at a standstill");
        let held_ms = (released - stop) * FRAME_MS;
        assert!((500..=600).contains(&held_ms), "released {held_ms} ms after standing");
    }

    /// A car closer than the camera sees the road: its box is cut off at the bottom of the
    /// image, and the bottom row would say 2.7 m whatever its range. Its width says the range;
    /// cut off at a side too, it says nothing.
    #[test]
    fn a_box_cut_off_at_the_bottom_ranges_by_its_width() {
        let cut = |core: &AebCore, z: f64, left_cut: bool| {
            let mut detections = car_at(core, z, wall(0), "car");
            let bbox = &mut detections.detections[0].bbox;
            let (mut left, top) =
                (bbox.center.position.x - bbox.size_x / 2.0, bbox.center.position.y - bbox.size_y / 2.0);
            let right = left + bbox.size_x;
            if left_cut {
                left = 0.0;
            }
            let bottom = 480.0f64.min(top + bbox.size_y);
            bbox.center.position.x = (left + right) / 2.0;
            bbox.center.position.y = (top + bottom) / 2.0;
            (bbox.size_x, bbox.size_y) = (right - left, bottom - top);
            detections
        };
        let mut core = AebCore::new(&AebConfig::default());
        core.step(&cut(&core, 2.0, false), Some(5.0), 5_000 * MS).unwrap();
        let range = core.tracker().tracks()[0].range_m();
        assert!((range - 2.0).abs() < 0.1, "range {range} m from the width");
        let mut core = AebCore::new(&AebConfig::default());
        core.step(&cut(&core, 2.0, true), Some(5.0), 5_000 * MS).unwrap();
        assert!(core.tracker().tracks().is_empty(), "{:?}", core.tracker().tracks());
    }

    #[test]
    fn config_checks_name_the_parameter() {
        assert!(AebConfig::default().validate().is_ok());
        let bad = AebConfig { box_noise_px: 0.0, ..AebConfig::default() };
        assert_eq!(bad.validate().unwrap_err().path, "box_noise_px");
        let bad = AebConfig { fx: 0.0, ..AebConfig::default() };
        assert_eq!(bad.validate().unwrap_err().path, "fx");
        let bad = AebConfig { camera_height_m: f64::NAN, ..AebConfig::default() };
        assert_eq!(bad.validate().unwrap_err().path, "camera_height_m");
    }
}
