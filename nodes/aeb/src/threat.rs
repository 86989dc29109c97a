//! Threat assessment and the staged response.
//!
//! From a track's range `d`, closing speed `v` (= −range rate) and closing acceleration `a`
//! (= −range acceleration):
//! - **TTC** = d / v (infinite when not closing);
//! - **enhanced TTC** = smallest positive root of ½·a·t² + v·t − d = 0 (constant acceleration:
//!   a braking lead vehicle makes it shorter than TTC);
//! - **required deceleration** = v² / (2d) + a: the extra ego deceleration that brings the
//!   closing speed to zero exactly at contact if the lead keeps its acceleration.
//!
//! *Whether* to brake is decided on cautious values (closing speed less a standard deviation,
//! a braking lead's deceleration only where it stands out of measurement noise, see
//! [`braking_lead_decel`]); *how hard*, once braking, on the estimates themselves
//! ([`Threat::demand_decel_mps2`]), to stop short of the object.
//!
//! An object counts when it will be in the ego's swept path when the ego gets there: its
//! [`PathWindow`] (from its lateral offset and, once the tracker is sure of it, its lateral
//! speed) overlaps the arrivals the estimates allow (see [`in_path_on_arrival`]). A pedestrian
//! walking into the path is a threat seconds before they are in it; one who will have crossed
//! is none.
//!
//! The response escalates at once. Braking (partial or full) holds while the ego still closes on
//! an object in its path, to a standstill if need be: no release and re-apply on the way in.
//! Otherwise it de-escalates only after the threat has stayed below the *release* thresholds (TTC thresholds plus a margin, deceleration thresholds times a factor)
//! for `release_hold_s`, so a threat hovering at a threshold cannot make the brakes chatter.
//! Defaults follow published figures: a warning at least 0.8 s before emergency braking
//! (UN R152), emergency braking of at least 5 m/s² up to the vehicle's maximum, partial braking
//! at 4 m/s² (between the 3.8 and 5.3 m/s² stages of MathWorks' AEB example).

use crate::tracker::{family, Track, CYCLIST_SPEED_MPS, PERSON_SPEED_MPS};
use reflex_runtime::spec::InvalidParam;

#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThreatConfig {
    /// Forward-collision warning below this TTC, s.
    pub warn_ttc_s: f64,
    /// Partial braking below this TTC, s ...
    pub partial_ttc_s: f64,
    /// ... or from this required deceleration, m/s².
    pub partial_required_decel_mps2: f64,
    /// Full braking below this TTC, s ...
    pub full_ttc_s: f64,
    /// ... or from this required deceleration, m/s².
    pub full_required_decel_mps2: f64,
    /// Deceleration demanded while partially braking, m/s².
    pub partial_decel_mps2: f64,
    /// Least deceleration demanded while fully braking (UN R152: at least 5), m/s².
    pub full_decel_min_mps2: f64,
    /// The vehicle's maximum deceleration, m/s².
    pub max_decel_mps2: f64,
    /// Full braking demands the required deceleration times this, within the limits above.
    pub decel_safety_factor: f64,
    /// Release: TTC must exceed a stage's threshold by this much, s ...
    pub release_ttc_margin_s: f64,
    /// ... and the required deceleration fall below its threshold times this ...
    pub release_decel_factor: f64,
    /// ... for this long before the response steps down, s.
    pub release_hold_s: f64,
    /// Vehicle width, m; objects whose centre is within half of it plus the margin are in path.
    pub vehicle_width_m: f64,
    pub path_margin_m: f64,
    /// Full braking aims to stop the closing this far short of the object, m (stopping exactly
    /// at contact leaves nothing for the actuator's lag and the estimates' errors).
    pub stop_gap_m: f64,
}

impl Default for ThreatConfig {
    fn default() -> Self {
        Self {
            warn_ttc_s: 2.6,
            partial_ttc_s: 1.8,
            partial_required_decel_mps2: 3.0,
            full_ttc_s: 1.2,
            full_required_decel_mps2: 5.0,
            partial_decel_mps2: 4.0,
            full_decel_min_mps2: 5.0,
            max_decel_mps2: 9.0,
            decel_safety_factor: 1.3,
            release_ttc_margin_s: 0.5,
            release_decel_factor: 0.7,
            release_hold_s: 0.5,
            vehicle_width_m: 1.8,
            path_margin_m: 0.3,
            stop_gap_m: 1.5,
        }
    }
}

impl ThreatConfig {
    /// Checks the thresholds are ordered and keep the R152 warning lead; names the parameter.
    pub fn validate(&self) -> Result<(), InvalidParam> {
        if !(self.warn_ttc_s > self.partial_ttc_s && self.partial_ttc_s > self.full_ttc_s && self.full_ttc_s > 0.0) {
            return Err(InvalidParam::new("warn_ttc_s", "need warn_ttc_s > partial_ttc_s > full_ttc_s > 0"));
        }
        if self.warn_ttc_s - self.full_ttc_s < 0.8 {
            return Err(InvalidParam::new(
                "warn_ttc_s",
                "the warning must come at least 0.8 s before full braking (UN R152)",
            ));
        }
        if !(5.0..=self.max_decel_mps2).contains(&self.full_decel_min_mps2) {
            return Err(InvalidParam::new("full_decel_min_mps2", "need 5 <= full_decel_min_mps2 <= max_decel_mps2"));
        }
        // The arbiter and the actuator gateway refuse a request beyond 15 m/s² as implausible.
        if !(self.max_decel_mps2 <= 15.0) {
            return Err(InvalidParam::new(
                "max_decel_mps2",
                format!("{} is over 15 m/s², which the arbiter refuses", self.max_decel_mps2),
            ));
        }
        if !(self.partial_decel_mps2 > 0.0 && self.partial_decel_mps2 <= self.full_decel_min_mps2) {
            return Err(InvalidParam::new("partial_decel_mps2", "need 0 < partial_decel_mps2 <= full_decel_min_mps2"));
        }
        if !(1.0..=3.0).contains(&self.decel_safety_factor) {
            return Err(InvalidParam::new(
                "decel_safety_factor",
                format!("{} is outside [1, 3]", self.decel_safety_factor),
            ));
        }
        if !(0.0..1.0).contains(&self.release_decel_factor)
            || self.release_hold_s < 0.0
            || self.release_ttc_margin_s < 0.0
        {
            return Err(InvalidParam::new(
                "release_decel_factor",
                "need 0 <= factor < 1 and non-negative margin and hold",
            ));
        }
        if !(0.0..=10.0).contains(&self.stop_gap_m) {
            return Err(InvalidParam::new("stop_gap_m", format!("{} is outside [0, 10] m", self.stop_gap_m)));
        }
        Ok(())
    }

    /// Half the width of the ego's swept path, margin included, m.
    pub fn path_half_width_m(&self) -> f64 {
        self.vehicle_width_m / 2.0 + self.path_margin_m
    }

    /// When `track` is in the ego's path, from now, as far as its lateral motion tells.
    pub fn path_window(&self, track: &Track) -> Option<PathWindow> {
        PathWindow::of(track.lateral_m(), lateral_speed(track), self.path_half_width_m())
    }
}

/// Above this standard deviation a track's lateral speed is treated as unknown (0): the object
/// is taken where it is now.
pub const LATERAL_SPEED_SIGMA_MAX_MPS: f64 = 0.5;

/// The lateral speed decisions use: a person's or a cyclist's, once the filter is sure of it
/// and it is distinguishable from standing still (over twice its standard deviation); 0
/// otherwise, so noise never moves a car parked in the path out of it, nor one beside the path
/// into it. Vehicles are taken where they are: what moves a passing car sideways in the image
/// is mostly its box clipped at the frame's edge (it made the AEB brake for a parked car and for
/// one in the next lane in the simulator); cars that cut in or turn across are a later step.
pub fn lateral_speed(track: &Track) -> f64 {
    if !matches!(family(&track.class_id), "person" | "cyclist") {
        return 0.0;
    }
    let (speed, sigma) = (track.lateral_rate_mps(), track.lateral_rate_sigma_mps());
    if sigma <= LATERAL_SPEED_SIGMA_MAX_MPS && speed.abs() > 2.0 * sigma {
        speed
    } else {
        0.0
    }
}

/// When an object is inside the ego's swept path, in seconds from now: `[enter_s, leave_s]`
/// (`enter_s` 0 when it is in the path now, `leave_s` infinite when it does not move sideways).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PathWindow {
    pub enter_s: f64,
    pub leave_s: f64,
}

impl PathWindow {
    /// An object at lateral offset `lateral_m` moving sideways at `lateral_speed_mps`, against a
    /// path `half_width_m` either side of the ego's centre line; `None` when it is never in it.
    pub fn of(lateral_m: f64, lateral_speed_mps: f64, half_width_m: f64) -> Option<Self> {
        if lateral_speed_mps.abs() < 1e-6 {
            return (lateral_m.abs() <= half_width_m).then_some(Self { enter_s: 0.0, leave_s: f64::INFINITY });
        }
        let at_left = (half_width_m - lateral_m) / lateral_speed_mps;
        let at_right = (-half_width_m - lateral_m) / lateral_speed_mps;
        let (enter_s, leave_s) = (at_left.min(at_right), at_left.max(at_right));
        (leave_s >= 0.0).then_some(Self { enter_s: enter_s.max(0.0), leave_s })
    }

    /// Whether the object is in the path `t_s` seconds from now.
    pub fn contains(&self, t_s: f64) -> bool {
        self.enter_s <= t_s && t_s <= self.leave_s
    }

    /// Whether an object with this window counts for an arrival `t_s` seconds from now: in the
    /// path then, or out of it by less than [`LEAVE_MARGIN_S`].
    pub fn counts_at(&self, t_s: f64) -> bool {
        self.counts_between(t_s, t_s)
    }

    /// Whether it counts for an arrival some time between `from_s` and `to_s` from now.
    pub fn counts_between(&self, from_s: f64, to_s: f64) -> bool {
        self.enter_s <= to_s && from_s <= self.leave_s + LEAVE_MARGIN_S
    }
}

/// How dangerous one object is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threat {
    pub ttc_s: f64,
    pub enhanced_ttc_s: f64,
    pub required_decel_mps2: f64,
    /// The filter's own estimates, not discounted: what sets how hard to brake once braking
    /// (whether to brake is decided on the cautious values above).
    pub estimate: Closing,
}

/// Range, closing speed (positive closing) and closing acceleration (a braking lead's
/// deceleration; 0 when the lead does not brake) of one object.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Closing {
    pub range_m: f64,
    pub speed_mps: f64,
    pub accel_mps2: f64,
}

impl Threat {
    /// From range `d` (m), range rate (m/s, negative closing) and range acceleration (m/s²).
    pub fn assess(range_m: f64, range_rate_mps: f64, range_accel_mps2: f64) -> Self {
        let (d, v, a) = (range_m.max(0.0), -range_rate_mps, -range_accel_mps2);
        let ttc_s = if v > 1e-3 { d / v } else { f64::INFINITY };
        let enhanced_ttc_s = smallest_positive_root(0.5 * a, v, -d).unwrap_or(f64::INFINITY);
        let required_decel_mps2 = if v > 0.0 && d > 1e-3 {
            (v * v / (2.0 * d) + a).max(0.0)
        } else if d <= 1e-3 {
            f64::INFINITY
        } else {
            0.0
        };
        let estimate = Closing { range_m: d, speed_mps: v, accel_mps2: a.max(0.0) };
        Self { ttc_s, enhanced_ttc_s, required_decel_mps2, estimate }
    }

    /// The threat of a track, on the cautious side of what the filter knows, for an ego
    /// driving at `ego_speed_mps` (when known and fresh).
    ///
    /// The closing speed taken is the filter's estimate less one standard deviation: a track
    /// whose speed is still uncertain (a young one) does not brake on a noisy first guess, and
    /// a settled one is barely affected. The closing acceleration is [`braking_lead_decel`].
    /// Neither closing speed exceeds what the object can do ([`max_closing_mps`]).
    pub fn from_track(track: &Track, ego_speed_mps: Option<f64>) -> Self {
        let rate_sigma = track.covariance[(1, 1)].max(0.0).sqrt();
        let cap = max_closing_mps(track, ego_speed_mps);
        let range_rate = (track.range_rate_mps() + rate_sigma).clamp(-cap, 0.0);
        let mut threat = Self::assess(track.range_m(), range_rate, -braking_lead_decel(track, ego_speed_mps));
        threat.estimate = Closing {
            range_m: track.range_m().max(0.0),
            speed_mps: (-track.range_rate_mps()).min(cap),
            accel_mps2: (-track.range_accel_mps2()).max(0.0),
        };
        threat
    }

    /// How hard to brake once braking: the deceleration that ends the closing `stop_gap_m`
    /// short of the object at the filter's own estimates (a braking lead's deceleration
    /// included, however uncertain: once braking, underestimating it is what hurts), and never
    /// less than the required deceleration the decision was taken on.
    pub fn demand_decel_mps2(&self, stop_gap_m: f64) -> f64 {
        let Closing { range_m, speed_mps, accel_mps2 } = self.estimate;
        let room = (range_m - stop_gap_m).max(0.1);
        let stopping = if speed_mps > 0.0 { speed_mps * speed_mps / (2.0 * room) } else { 0.0 };
        (stopping + accel_mps2).max(self.required_decel_mps2)
    }

    /// The TTC used for decisions: the shorter of plain and enhanced.
    pub fn decision_ttc_s(&self) -> f64 {
        self.ttc_s.min(self.enhanced_ttc_s)
    }
}

/// The fastest `track` can close on the ego, m/s: the ego's speed plus what its kind moves by
/// itself ([`PERSON_SPEED_MPS`], [`CYCLIST_SPEED_MPS`]); unbounded for vehicles
/// (oncoming traffic) and when the ego's speed is not known. A track that claims more is made
/// of boxes that do not measure the object's range faithfully: the simulator's detector made a
/// pedestrian walking at 1.4 m/s close at 11–14 m/s on an ego at 5.6 m/s, and the AEB braked
/// fully at TTC 2.5 s.
pub fn max_closing_mps(track: &Track, ego_speed_mps: Option<f64>) -> f64 {
    let own = match family(&track.class_id) {
        "person" => PERSON_SPEED_MPS,
        "cyclist" => CYCLIST_SPEED_MPS,
        _ => return f64::INFINITY,
    };
    ego_speed_mps.map_or(f64::INFINITY, |ego| ego.abs() + own)
}

/// How many standard deviations of measurement noise a lead's deceleration must stand out by.
pub const ACCEL_NOISE_SIGMAS: f64 = 2.0;

/// How fast a lead must move by itself for its deceleration to count, m/s (beyond twice the
/// standard deviation of its closing speed).
pub const MOVING_LEAD_MPS: f64 = 2.0;

/// The deceleration of a braking lead that decisions count, m/s² (≥ 0): only a lead that moves
/// by itself (the ego's speed less the closing speed) can brake, so for standing objects (a
/// parked car, a pedestrian crossing) it is 0; for a moving one it is the filter's estimate
/// less [`ACCEL_NOISE_SIGMAS`] standard deviations of what measurement noise alone makes of
/// it ([`Track::noise_covariance`]). The filter's own covariance cannot tell: its jerk noise
/// keeps the acceleration's standard deviation near 4 m/s² at any range, so a lead braking at
/// 6 m/s² 12 m ahead never counted and the ego braked a second late (CCRb in the simulator).
/// Unknown ego speed: 0.
pub fn braking_lead_decel(track: &Track, ego_speed_mps: Option<f64>) -> f64 {
    let Some(ego_speed_mps) = ego_speed_mps else { return 0.0 };
    let rate_sigma = track.covariance[(1, 1)].max(0.0).sqrt();
    let lead_speed_mps = ego_speed_mps + track.range_rate_mps();
    if lead_speed_mps < MOVING_LEAD_MPS + 2.0 * rate_sigma {
        return 0.0;
    }
    let noise_sigma = track.noise_covariance[(2, 2)].max(0.0).sqrt();
    (-track.range_accel_mps2() - ACCEL_NOISE_SIGMAS * noise_sigma).max(0.0)
}

/// Smallest positive root of a·t² + b·t + c = 0.
fn smallest_positive_root(a: f64, b: f64, c: f64) -> Option<f64> {
    if a.abs() < 1e-9 {
        return (b.abs() > 1e-9).then(|| -c / b).filter(|t| *t > 0.0);
    }
    let discriminant = b * b - 4.0 * a * c;
    if discriminant < 0.0 {
        return None;
    }
    let root = discriminant.sqrt();
    let (t1, t2) = ((-b - root) / (2.0 * a), (-b + root) / (2.0 * a));
    [t1.min(t2), t1.max(t2)].into_iter().find(|t| *t > 0.0)
}

/// Response stages, ordered; the values are `reflex_msgs/BrakeRequest` levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    None = 0,
    Warn = 1,
    Partial = 2,
    Full = 3,
}

/// What the AEB asks for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    pub level: Level,
    pub decel_mps2: f64,
    pub ttc_s: f64,
}

/// The staged response with hysteresis.
pub struct Stager {
    config: ThreatConfig,
    level: Level,
    /// Since when the threat has been below the release thresholds of the current level, ns.
    below_since_ns: Option<i64>,
}

impl Stager {
    pub fn new(config: ThreatConfig) -> Self {
        Self { config, level: Level::None, below_since_ns: None }
    }

    pub fn level(&self) -> Level {
        self.level
    }

    /// The stage a threat calls for, with the TTC thresholds shifted by `ttc_margin` and the
    /// deceleration thresholds scaled by `decel_factor` (0 and 1 to escalate; the release
    /// values to decide whether the current stage is still justified).
    fn stage(&self, threat: Option<&Threat>, ttc_margin: f64, decel_factor: f64) -> Level {
        let Some(threat) = threat else { return Level::None };
        let (ttc, decel, c) = (threat.decision_ttc_s(), threat.required_decel_mps2, &self.config);
        if ttc <= c.full_ttc_s + ttc_margin || decel >= c.full_required_decel_mps2 * decel_factor {
            Level::Full
        } else if ttc <= c.partial_ttc_s + ttc_margin || decel >= c.partial_required_decel_mps2 * decel_factor {
            Level::Partial
        } else if ttc <= c.warn_ttc_s + ttc_margin {
            Level::Warn
        } else {
            Level::None
        }
    }

    /// One decision at `now_ns` for the most critical in-path threat (`None`: nothing ahead).
    pub fn step(&mut self, now_ns: i64, threat: Option<&Threat>) -> Decision {
        let demanded = self.stage(threat, 0.0, 1.0);
        // Braking holds while the ego still closes on an object in its path: braking makes the
        // TTC grow, and releasing on that made the brakes release and re-apply on the way in.
        // At a standstill nothing is closing (and the caller passes no threat), so the timed
        // release below ends it there.
        // Whether it still closes is judged on the filter's estimate, not the discounted closing
        // speed that decides when to brake: releasing early is the risk here.
        let closing = threat.is_some_and(|t| t.estimate.speed_mps > 0.0);
        if demanded >= self.level {
            self.level = demanded;
            self.below_since_ns = None;
        } else if self.level >= Level::Partial && closing {
            self.below_since_ns = None;
        } else {
            let justified = self.stage(threat, self.config.release_ttc_margin_s, self.config.release_decel_factor);
            if justified >= self.level {
                self.below_since_ns = None;
            } else {
                let since = *self.below_since_ns.get_or_insert(now_ns);
                if (now_ns - since) as f64 / 1e9 >= self.config.release_hold_s {
                    // Step down to what is still justified, never below what is demanded.
                    self.level = justified.max(demanded);
                    self.below_since_ns = None;
                }
            }
        }
        let c = &self.config;
        let decel_mps2 = match self.level {
            Level::Full => {
                let required = threat.map_or(0.0, |t| t.demand_decel_mps2(c.stop_gap_m) * c.decel_safety_factor);
                required.clamp(c.full_decel_min_mps2, c.max_decel_mps2)
            }
            Level::Partial => c.partial_decel_mps2,
            Level::Warn | Level::None => 0.0,
        };
        Decision { level: self.level, decel_mps2, ttc_s: threat.map_or(f64::INFINITY, Threat::decision_ttc_s) }
    }
}

/// How long before the ego's arrival an object must be predicted to have left the path for it
/// not to count, s: a pedestrian who hesitates or stops in the lane is still braked for.
pub const LEAVE_MARGIN_S: f64 = 0.5;

/// Whether `track`, with `threat`, will be in the ego's path when the ego reaches it, or
/// leaves it less than [`LEAVE_MARGIN_S`] before. The ego arrives somewhere between the TTC at
/// the filter's closing speed and the cautious decision TTC (at a closing speed a standard
/// deviation lower, see [`Threat::from_track`]); the object counts if it is in the path at any
/// time in between (now, for a track that is not closing). Judged at the cautious TTC alone, a
/// cyclist crossing into the path dropped out of it whenever the closing speed's uncertainty
/// grew (the later arrival fell after they had crossed), and the brakes, applied for them,
/// were released and re-applied on the way in.
pub fn in_path_on_arrival(track: &Track, threat: &Threat, config: &ThreatConfig) -> bool {
    let Some(window) = config.path_window(track) else { return false };
    let Closing { range_m, speed_mps, .. } = threat.estimate;
    let estimated = if speed_mps > 1e-3 { range_m / speed_mps } else { f64::INFINITY };
    let (from, to) = [threat.decision_ttc_s(), estimated]
        .into_iter()
        .filter(|t| t.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(from, to), t| (from.min(t), to.max(t)));
    if from > to {
        return window.counts_at(0.0);
    }
    window.counts_between(from, to)
}

/// The most critical confirmed, closing track that will be in the path on arrival, and its
/// threat (shortest TTC).
pub fn most_critical<'a>(
    tracks: impl Iterator<Item = &'a Track>,
    config: &ThreatConfig,
    ego_speed_mps: Option<f64>,
) -> Option<(&'a Track, Threat)> {
    tracks
        .filter(|t| t.confirmed)
        .map(|t| (t, Threat::from_track(t, ego_speed_mps)))
        .filter(|(_, threat)| threat.decision_ttc_s().is_finite() || threat.required_decel_mps2 > 0.0)
        .filter(|(t, threat)| in_path_on_arrival(t, threat, config))
        .min_by(|a, b| a.1.decision_ttc_s().total_cmp(&b.1.decision_ttc_s()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn closed_form_values() {
        let threat = Threat::assess(20.0, -10.0, 0.0);
        assert_eq!(threat.ttc_s, 2.0);
        assert!((threat.enhanced_ttc_s - 2.0).abs() < 1e-12);
        assert!((threat.required_decel_mps2 - 100.0 / 40.0).abs() < 1e-12);
        // Lead braking at 4 m/s² while we close at 10 m/s from 20 m: 2t² + 10t − 20 = 0.
        let threat = Threat::assess(20.0, -10.0, -4.0);
        let expected = (-10.0 + (100.0f64 + 160.0).sqrt()) / 4.0;
        assert!((threat.enhanced_ttc_s - expected).abs() < 1e-12, "{}", threat.enhanced_ttc_s);
        assert!((threat.required_decel_mps2 - (2.5 + 4.0)).abs() < 1e-12);
        // Opening, or closing but decelerating to a stop before contact.
        assert_eq!(Threat::assess(20.0, 2.0, 0.0).ttc_s, f64::INFINITY);
        assert_eq!(Threat::assess(20.0, -4.0, 1.0).enhanced_ttc_s, f64::INFINITY, "stops 8 m short");
    }

    #[test]
    fn braking_demand_stops_short_of_the_object() {
        // 10 m/s closing from 20 m, 1.5 m short: 100 / (2 · 18.5).
        let threat = Threat::assess(20.0, -10.0, 0.0);
        assert!((threat.demand_decel_mps2(1.5) - 100.0 / 37.0).abs() < 1e-12);
        assert_eq!(threat.demand_decel_mps2(0.0), threat.required_decel_mps2, "at contact: the required");
        // A lead braking at 4 m/s² adds its deceleration.
        let threat = Threat::assess(20.0, -10.0, -4.0);
        assert!((threat.demand_decel_mps2(1.5) - (100.0 / 37.0 + 4.0)).abs() < 1e-12);
        // Inside the gap: as hard as the limit allows (the stager clamps).
        assert!(Threat::assess(1.0, -5.0, 0.0).demand_decel_mps2(1.5) > 100.0);
    }

    /// CCRb at 50 km/h, 12 m: the lead brakes at 6 m/s² one second in. Measured the way the
    /// camera measures (2 px of a box edge's noise at 500 px focal length and 1.3 m height,
    /// through the geometry), without noise. Before it brakes its deceleration counts for
    /// nothing; partial braking within 0.85 s of the lead's braking and full braking within
    /// 1.0 s stop the simulator's car (50 ms to the actuator, 0.1 s dead time, 0.15 s lag,
    /// 30 m/s³) short of it, where the former AEB (the acceleration ignored until the filter's
    /// own covariance was under 1 m/s²) first braked after 1.07 s and hit it at 25 km/h. An
    /// object that does not move by itself, or an unknown ego speed, gives no braking-lead
    /// deceleration.
    #[test]
    fn a_braking_lead_counts_once_its_deceleration_stands_out() {
        use crate::tracker::{Measurement, Tracker, TrackerConfig};
        let (speed, frame_ns) = (50.0 / 3.6, 33_333_333i64);
        let mut tracker = Tracker::new(TrackerConfig::default());
        let mut stager = Stager::new(ThreatConfig::default());
        let (mut partial_at, mut full_at) = (None, None);
        for frame in 0..75i64 {
            let t = frame as f64 * frame_ns as f64 / 1e9;
            let braking = (t - 1.0).max(0.0);
            let gap = 12.0 - 3.0 * braking * braking;
            let sigma = gap * gap * 2.0 / (500.0 * 1.3);
            let m = Measurement { class_id: "car".into(), range_m: gap, lateral_m: 0.0, range_sigma_m: Some(sigma) };
            tracker.update(frame * frame_ns, &[m]);
            let track = tracker.confirmed().next().cloned();
            let Some(track) = track else { continue };
            let lead_decel = braking_lead_decel(&track, Some(speed));
            if braking == 0.0 {
                assert!(lead_decel < 0.5, "{t:.2} s: {lead_decel} m/s² before the lead brakes");
            }
            assert_eq!(braking_lead_decel(&track, None), 0.0, "unknown ego speed");
            // The same ranges seen from an ego whose own speed is all the closing speed.
            let standing = Some(-track.range_rate_mps());
            assert_eq!(braking_lead_decel(&track, standing), 0.0, "an object that stands");
            let decision = stager.step(frame * frame_ns, Some(&Threat::from_track(&track, Some(speed))));
            if decision.level >= Level::Partial && partial_at.is_none() {
                partial_at = Some(braking);
            }
            if decision.level == Level::Full && full_at.is_none() {
                full_at = Some(braking);
            }
        }
        let (partial_at, full_at) = (partial_at.expect("partial braking"), full_at.expect("full braking"));
        assert!(partial_at > 0.0 && partial_at <= 0.85, "partial braking {partial_at:.2} s after the lead braked");
        assert!(full_at <= 1.0, "full braking {full_at:.2} s after the lead braked");
    }

    /// A "pedestrian" whose boxes close at 12 m/s on an ego at 5 m/s is taken at no more than
    /// a person can do (the ego's speed plus 4 m/s); a car is taken at its word, and so is
    /// anything when the ego's speed is unknown.
    #[test]
    fn closing_speed_is_bounded_by_what_the_object_can_do() {
        let closing_at = |class_id: &str, ego: Option<f64>| {
            let track = crossing(class_id, 20, |t| 30.0 - 12.0 * t, |_| 0.0);
            let threat = Threat::from_track(&track, ego);
            (track.range_m(), threat)
        };
        let (range, threat) = closing_at("person", Some(5.0));
        assert!((threat.estimate.speed_mps - 9.0).abs() < 1e-9, "{threat:?}");
        assert!(threat.ttc_s >= range / 9.0 - 1e-9, "{threat:?}");
        let (range, threat) = closing_at("person", None);
        assert!(threat.estimate.speed_mps > 11.0 && threat.ttc_s < range / 10.0, "{threat:?}");
        let (_, threat) = closing_at("car", Some(5.0));
        assert!(threat.estimate.speed_mps > 11.0, "{threat:?}");
    }

    proptest! {
        /// The same object getting closer at the same speed never lowers the braking level.
        #[test]
        fn level_never_decreases_while_closing(speed_kmh in 10.0f64..80.0, start_m in 20.0f64..80.0) {
            let v = speed_kmh / 3.6;
            let mut stager = Stager::new(ThreatConfig::default());
            let mut previous = Level::None;
            let mut range = start_m;
            let mut t_ns = 0i64;
            while range > 0.5 {
                let decision = stager.step(t_ns, Some(&Threat::assess(range, -v, 0.0)));
                prop_assert!(decision.level >= previous, "{:?} after {:?} at {} m", decision.level, previous, range);
                previous = decision.level;
                range -= v * 0.05;
                t_ns += 50_000_000;
            }
            prop_assert_eq!(previous, Level::Full);
        }

        /// At constant closing speed the warning comes at least 0.8 s before full braking.
        #[test]
        fn warning_leads_full_braking_by_at_least_0_8_s(speed_kmh in 10.0f64..80.0) {
            let v = speed_kmh / 3.6;
            let mut stager = Stager::new(ThreatConfig::default());
            let (mut warned_at, mut full_at) = (None, None);
            let mut range = v * 6.0;
            for step in 0..2000 {
                let t = step as f64 * 0.01;
                let decision = stager.step((t * 1e9) as i64, Some(&Threat::assess(range, -v, 0.0)));
                if decision.level >= Level::Warn && warned_at.is_none() { warned_at = Some(t); }
                if decision.level == Level::Full && full_at.is_none() { full_at = Some(t); }
                range -= v * 0.01;
                if range <= 0.0 { break; }
            }
            let (warned, full) = (warned_at.unwrap(), full_at.unwrap());
            prop_assert!(full - warned >= 0.8 - 1e-9, "warned at {warned}, full at {full}");
        }

        #[test]
        fn full_braking_demand_is_within_limits(range in 0.5f64..60.0, v in 0.5f64..30.0, a in -5.0f64..5.0) {
            let config = ThreatConfig::default();
            let mut stager = Stager::new(config);
            let decision = stager.step(0, Some(&Threat::assess(range, -v, a)));
            if decision.level == Level::Full {
                prop_assert!(decision.decel_mps2 >= 5.0 && decision.decel_mps2 <= config.max_decel_mps2);
            }
        }
    }

    #[test]
    fn release_needs_a_stable_period_and_cannot_chatter() {
        let config = ThreatConfig::default();
        let mut stager = Stager::new(config);
        // TTC oscillating around the partial threshold (1.8 s) every frame for 2 s.
        let mut changes = 0;
        let mut last = Level::None;
        for frame in 0..200i64 {
            let ttc = if frame % 2 == 0 { 1.75 } else { 1.85 };
            let decision = stager.step(frame * 10_000_000, Some(&Threat::assess(ttc * 10.0, -10.0, 0.0)));
            changes += usize::from(decision.level != last);
            last = decision.level;
        }
        assert_eq!(changes, 1, "escalated once, never released while the threat hovers");
        assert_eq!(last, Level::Partial);
        // Threat gone: held for release_hold_s, then down.
        let start = 200 * 10_000_000;
        assert_eq!(stager.step(start, None).level, Level::Partial);
        assert_eq!(stager.step(start + 400_000_000, None).level, Level::Partial);
        assert_eq!(stager.step(start + 500_000_000, None).level, Level::None);
    }

    #[test]
    fn config_checks_name_the_parameter() {
        assert!(ThreatConfig::default().validate().is_ok());
        let config = ThreatConfig { warn_ttc_s: 1.9, ..ThreatConfig::default() };
        assert_eq!(config.validate().unwrap_err().path, "warn_ttc_s");
        let config = ThreatConfig { full_decel_min_mps2: 4.0, ..ThreatConfig::default() };
        assert_eq!(config.validate().unwrap_err().path, "full_decel_min_mps2");
        let config = ThreatConfig { full_decel_min_mps2: f64::NAN, ..ThreatConfig::default() };
        assert_eq!(config.validate().unwrap_err().path, "full_decel_min_mps2");
        let config = ThreatConfig { max_decel_mps2: 20.0, ..ThreatConfig::default() };
        assert_eq!(config.validate().unwrap_err().path, "max_decel_mps2", "more than the arbiter takes");
        let config = ThreatConfig { decel_safety_factor: f64::NAN, ..ThreatConfig::default() };
        assert_eq!(config.validate().unwrap_err().path, "decel_safety_factor");
        let config = ThreatConfig { partial_decel_mps2: 0.0, ..ThreatConfig::default() };
        assert_eq!(config.validate().unwrap_err().path, "partial_decel_mps2");
    }

    /// Time to enter and leave the path against the closed forms: half width 1.2 m.
    #[test]
    fn path_window_closed_forms() {
        // From 6 m right (negative) walking left at 1.5 m/s: enters at (6 - 1.2) / 1.5 = 3.2 s,
        // leaves at (6 + 1.2) / 1.5 = 4.8 s.
        let window = PathWindow::of(-6.0, 1.5, 1.2).unwrap();
        assert!((window.enter_s - 3.2).abs() < 1e-12 && (window.leave_s - 4.8).abs() < 1e-12, "{window:?}");
        assert!(window.contains(4.0) && !window.contains(3.0) && !window.contains(5.0));
        // The same from the left, walking right.
        let window = PathWindow::of(6.0, -1.5, 1.2).unwrap();
        assert!((window.enter_s - 3.2).abs() < 1e-12 && (window.leave_s - 4.8).abs() < 1e-12, "{window:?}");
        // In the path now, walking out: 0 until (1.2 - 0.3) / 1.5 = 0.6 s.
        let window = PathWindow::of(0.3, 1.5, 1.2).unwrap();
        assert_eq!(window.enter_s, 0.0);
        assert!((window.leave_s - 0.6).abs() < 1e-12);
        // Walking away from the path, or standing beside it: never in it.
        assert_eq!(PathWindow::of(-6.0, -1.5, 1.2), None);
        assert_eq!(PathWindow::of(2.0, 0.0, 1.2), None);
        // Leaving 0.2 s before the ego arrives still counts (a pedestrian may hesitate); 0.6 s
        // before does not, nor entering after the ego has passed.
        let window = PathWindow { enter_s: 0.0, leave_s: 2.3 };
        assert!(window.counts_at(2.5) && !window.contains(2.5));
        assert!(!window.counts_at(2.9));
        assert!(!PathWindow { enter_s: 3.0, leave_s: 4.0 }.counts_at(2.5));
        // Standing in it: for ever.
        assert_eq!(PathWindow::of(0.5, 0.0, 1.2), Some(PathWindow { enter_s: 0.0, leave_s: f64::INFINITY }));
    }

    /// Tracks a crossing object measured at 20 Hz for `frames` frames; `lateral(t)` its offset.
    fn crossing(class_id: &str, frames: i64, range: impl Fn(f64) -> f64, lateral: impl Fn(f64) -> f64) -> Track {
        use crate::tracker::{Measurement, Tracker, TrackerConfig};
        let mut tracker = Tracker::new(TrackerConfig::default());
        for frame in 0..frames {
            let t = frame as f64 * 0.05;
            let m = Measurement {
                class_id: class_id.into(),
                range_m: range(t),
                lateral_m: lateral(t),
                range_sigma_m: None,
            };
            tracker.update(frame * 50_000_000, &[m]);
        }
        let track = tracker.confirmed().next().expect("confirmed").clone();
        track
    }

    /// The ego arrives somewhere between the TTC at the filter's closing speed and the cautious
    /// TTC; a cyclist crossing into the path counts if they are in it at any time in between.
    /// At the cautious arrival alone they would have crossed already, and braking for them was
    /// released and re-applied when the closing speed's uncertainty grew (ground truth, seed 5,
    /// CBNA and CBFA 45-60 km/h).
    #[test]
    fn an_object_counts_if_in_the_path_at_any_arrival_the_estimates_allow() {
        let window = PathWindow { enter_s: 1.9, leave_s: 2.4 };
        assert!(window.counts_between(2.1, 3.2));
        assert!(!window.counts_at(3.2) && !window.counts_between(3.0, 3.5) && !window.counts_between(0.5, 1.8));
        let config = ThreatConfig::default();
        let (ego, ride) = (50.0 / 3.6, 15.0 / 3.6);
        // Tracked for 1.5 s: 2 s ahead, the cyclist 8.3 m to the right, meeting the ego's centre.
        let track = crossing("bicycle", 31, |t| ego * (3.5 - t), |t| -ride * (3.5 - t));
        let window = config.path_window(&track).expect("riding into the path");
        let mut threat = Threat::from_track(&track, Some(ego));
        let estimated = threat.estimate.range_m / threat.estimate.speed_mps;
        assert!(window.counts_at(estimated), "{window:?} at {estimated}");
        threat.ttc_s = window.leave_s + LEAVE_MARGIN_S + 1.0;
        threat.enhanced_ttc_s = f64::INFINITY;
        assert!(!window.counts_at(threat.decision_ttc_s()));
        assert!(in_path_on_arrival(&track, &threat, &config));
    }

    /// CPNA: a pedestrian walking at 5 km/h from the near side toward the point the ego will
    /// reach in 2.5 s is a threat while still 3 m beside the path; one walking the other way,
    /// or who will have crossed before the ego arrives, is none; a car beside the path with
    /// the same apparent motion is taken where it is.
    #[test]
    fn a_pedestrian_walking_into_the_path_is_a_threat_before_entering_it() {
        let config = ThreatConfig::default();
        let (ego, walk) = (50.0 / 3.6, 5.0 / 3.6);
        // After 1.5 s of tracking: range 2.5 s ahead, the pedestrian 3.5 m to the right (they
        // reach the centre line when the ego gets there).
        let range = |t: f64| ego * (4.0 - t);
        let walking_in = |t: f64| -walk * (4.0 - t);
        let track = crossing("person", 31, range, walking_in);
        assert!(track.lateral_m().abs() > config.path_half_width_m(), "not in the path yet: {}", track.lateral_m());
        let threat = Threat::from_track(&track, None);
        assert!(in_path_on_arrival(&track, &threat, &config), "{track:?} {threat:?}");
        assert!(most_critical([&track].into_iter(), &config, None).is_some());
        // Walking away from the path.
        let walking_out = |t: f64| -3.5 - walk * t;
        let track = crossing("person", 31, range, walking_out);
        assert!(!in_path_on_arrival(&track, &Threat::from_track(&track, None), &config));
        // In the path now but gone (3 m/s, a runner) long before the ego arrives in 2.5 s.
        let clearing = |t: f64| -1.0 + 3.0 * t;
        let track = crossing("person", 31, |t| 60.0 - ego * t, clearing);
        assert!(!in_path_on_arrival(&track, &Threat::from_track(&track, None), &config), "{track:?}");
        // A car with that apparent sideways motion is judged where it is (beside the path).
        let track = crossing("car", 31, range, walking_in);
        assert!(!in_path_on_arrival(&track, &Threat::from_track(&track, None), &config), "{track:?}");
    }

    /// Staging drivers accept: once braking for an object the ego still closes on, the brakes
    /// hold however much the TTC grows, to a standstill; they are not released and re-applied.
    /// Once nothing closes (a lead that drives away), the timed release applies.
    #[test]
    fn braking_holds_while_closing_and_is_never_released_and_reapplied() {
        let mut stager = Stager::new(ThreatConfig::default());
        let (mut range, mut speed, dt) = (12.0, 10.0, 0.02);
        let mut levels = Vec::new();
        for frame in 0..400i64 {
            if speed <= 0.0 {
                break;
            }
            let decision = stager.step(frame * 20_000_000, Some(&Threat::assess(range, -speed, 0.0)));
            levels.push(decision.level);
            speed = (speed - decision.decel_mps2 * dt).max(0.0);
            range -= speed * dt;
        }
        assert_eq!(speed, 0.0, "braked to a standstill");
        assert!(range > 0.0, "short of the object: {range} m");
        let first = levels.iter().position(|l| *l >= Level::Partial).expect("braked");
        assert!(levels[first..].iter().all(|l| *l >= Level::Partial), "never released while closing: {levels:?}");
        // Full braking at TTC 1 s, after which the TTC grows to 3 s (the ego brakes) while
        // still closing: held, not released after release_hold_s.
        let mut stager = Stager::new(ThreatConfig::default());
        assert_eq!(stager.step(0, Some(&Threat::assess(10.0, -10.0, 0.0))).level, Level::Full);
        for frame in 1..=50i64 {
            let decision = stager.step(frame * 20_000_000, Some(&Threat::assess(15.0, -5.0, 0.0)));
            assert_eq!(decision.level, Level::Full, "frame {frame}: TTC 3 s, still closing");
        }
        // The object stops closing (a lead that drives away): released after the hold time.
        let now = 2_000_000_000;
        assert_eq!(stager.step(now, Some(&Threat::assess(15.0, 2.0, 0.0))).level, Level::Full);
        assert_eq!(stager.step(now + 600_000_000, Some(&Threat::assess(15.0, 2.0, 0.0))).level, Level::None);
    }
}
