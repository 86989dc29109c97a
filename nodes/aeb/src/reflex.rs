//! The `aeb` reflex: [`AebCore`] on the bus. Detections trigger a decision; the camera model
//! and the ego speed come from the side inputs. The runtime owns all I/O.
//!
//! Nothing from the bus is trusted: a CameraInfo with implausible or non-finite intrinsics or
//! mounting is refused (the last good model stays), detections with non-finite values are
//! dropped, frames without a stamp or stamped in the future are refused (the last decision
//! holds), and each shows in the node's health until it stops.

use crate::core::{AebConfig, AebCore};
use crate::threat::Level;
use reflex_msgs::reflex_msgs::{BrakeRequest, TrackedObject, TrackedObjectArray, VehicleState};
use reflex_msgs::sensor_msgs::CameraInfo;
use reflex_msgs::vision_msgs::Detection2DArray;
use reflex_runtime::reflex::ReflexContext;
use reflex_runtime::task::{Event3, Slot, Taken, Task};
use reflex_runtime::StatusHandle;

/// The reflex: the core, the ego speed and camera model from the side inputs, and what the
/// node's health says about its inputs.
pub struct Aeb {
    core: AebCore,
    /// Ego speed from the last VehicleState and when it arrived (duration clock).
    speed: Option<(f64, i64)>,
    vehicle_state_max_age_ns: i64,
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

    /// Says in the node's health whether the ego speed is stale.
    fn check_vehicle_state(&mut self, now_ns: i64) {
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

impl Task for Aeb {
    type Inputs = (Detection2DArray, CameraInfo, VehicleState);
    type Outputs = (BrakeRequest, TrackedObjectArray);

    fn react(
        &mut self,
        input: Event3<'_, Detection2DArray, CameraInfo, VehicleState>,
        (request, tracks): &mut (Slot<BrakeRequest>, Slot<TrackedObjectArray>),
        context: &ReflexContext,
    ) -> Taken {
        match input {
            Event3::In0(detections) => {
                self.on_detections(detections, request, tracks, context);
                Taken::Accepted
            }
            Event3::In1(info) => {
                let result = self.core.set_camera(info);
                let taken = if result.is_ok() { Taken::Accepted } else { Taken::Rejected };
                self.say(0, "camera model", result.err());
                taken
            }
            Event3::In2(state) if state.speed_mps.is_finite() => {
                self.speed = Some((state.speed_mps, context.arrival_mono_ns));
                Taken::Accepted
            }
            Event3::In2(_) => Taken::Rejected,
        }
    }
}

impl Aeb {
    pub fn new(config: &AebConfig, status: StatusHandle) -> Self {
        Self {
            core: AebCore::new(config),
            speed: None,
            vehicle_state_max_age_ns: (config.vehicle_state_max_age_ms * 1e6) as i64,
            status,
            said: [None, None, None],
        }
    }

    /// One frame: the staged decision as a brake request, and the confirmed tracks.
    fn on_detections(
        &mut self,
        detections: &Detection2DArray,
        request_slot: &mut Slot<BrakeRequest>,
        tracks_slot: &mut Slot<TrackedObjectArray>,
        context: &ReflexContext,
    ) {
        self.check_vehicle_state(context.now_mono_ns);
        let refused_before = self.core.refused_detections;
        let from_the_future = context.input_age_ns.is_some_and(|age| age < -FUTURE_TOLERANCE_NS);
        let speed = self.fresh_speed(context.now_mono_ns);
        let step = if from_the_future {
            Err("detections stamped in the future")
        } else {
            self.core.step(detections, speed, context.arrival_mono_ns).map_err(|_| "detections without a capture stamp")
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
            return;
        };
        let request = request_slot.fill();
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

        let tracks = tracks_slot.fill();
        tracks.header.stamp = request.header.stamp;
        tracks.objects.clear();
        for track in self.core.tracker().confirmed() {
            let threat = crate::threat::Threat::from_track(track, speed);
            tracks.objects.push(TrackedObject {
                track_id: track.id,
                class_id: track.class_id.clone(),
                range_m: track.range_m(),
                range_rate_mps: track.range_rate_mps(),
                lateral_m: track.lateral_m(),
                time_to_collision_s: threat.decision_ttc_s(),
                in_path: crate::threat::in_path_on_arrival(track, &threat, self.core.threat_config()),
            });
        }
    }
}
