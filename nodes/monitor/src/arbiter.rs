//! The command arbiter: one actuator command from several requests.
//!
//! Inputs, each remembered with the time it *arrived* (duration clock: monotonic or sim): the
//! AEB's request, the supervisor's safe-stop state, and the driver's or planner's command (all
//! `BrakeRequest`-like). An input older than its `max_age` counts as missing. A request that is
//! not plausible (a level beyond FULL, a deceleration that is not finite or outside 0..=15
//! m/s², a NaN TTC) is refused and never stored. Rules, in order:
//! 1. a safe-stop demand (fresh and engaged) wins: full braking at `safe_stop_decel_mps2`, or
//!    more if another input asks for more;
//! 2. a missing supervisor (never heard, or stale) is treated as a safe-stop demand once the
//!    start-up grace has passed: nobody is watching, so the vehicle stops;
//! 3. otherwise the strongest braking wins: a request brakes only from `LEVEL_PARTIAL` up (a
//!    warning's deceleration counts as 0), the command's deceleration is the largest braking
//!    deceleration, and its level the highest level asked for. So a warning that names a large
//!    deceleration can never displace the AEB's full braking.

use reflex_msgs::reflex_msgs::{BrakeRequest, SafeStop};
use reflex_runtime::spec::InvalidParam;

/// The largest deceleration any request may name, m/s² (beyond what tyres give on dry asphalt).
pub const MAX_PLAUSIBLE_DECEL_MPS2: f64 = 15.0;

#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArbiterConfig {
    /// An AEB request older than this is ignored, s.
    pub aeb_max_age_s: f64,
    /// A driver or planner command older than this is ignored, s.
    pub driver_max_age_s: f64,
    /// The supervisor publishes at 10 Hz; silence longer than this means it is gone, s.
    pub supervisor_max_age_s: f64,
    /// How long after start a missing supervisor is tolerated, s.
    pub startup_grace_s: f64,
    /// Deceleration of a safe stop, m/s².
    pub safe_stop_decel_mps2: f64,
}

impl Default for ArbiterConfig {
    fn default() -> Self {
        Self {
            aeb_max_age_s: 0.3,
            driver_max_age_s: 0.3,
            supervisor_max_age_s: 0.5,
            startup_grace_s: 3.0,
            safe_stop_decel_mps2: 6.0,
        }
    }
}

impl ArbiterConfig {
    /// Checks the values; names the parameter (a "safe stop" of 0 m/s², or a supervisor that
    /// may be silent for an hour, is not a safety setting).
    pub fn validate(&self) -> Result<(), InvalidParam> {
        // The supervisor speaks every 100 ms: less than two of its periods is a false alarm.
        for (name, value, low) in [
            ("aeb_max_age_s", self.aeb_max_age_s, 0.0),
            ("driver_max_age_s", self.driver_max_age_s, 0.0),
            ("supervisor_max_age_s", self.supervisor_max_age_s, 0.2),
        ] {
            if !(value > low && value <= 5.0) {
                return Err(InvalidParam::new(name, format!("{value} is outside ({low}, 5] s")));
            }
        }
        if !(0.0..=60.0).contains(&self.startup_grace_s) {
            return Err(InvalidParam::new("startup_grace_s", format!("{} is outside [0, 60] s", self.startup_grace_s)));
        }
        if !(5.0..=MAX_PLAUSIBLE_DECEL_MPS2).contains(&self.safe_stop_decel_mps2) {
            return Err(InvalidParam::new(
                "safe_stop_decel_mps2",
                format!(
                    "{} is outside [5, {MAX_PLAUSIBLE_DECEL_MPS2}] m/s² (UN R152: at least 5)",
                    self.safe_stop_decel_mps2
                ),
            ));
        }
        Ok(())
    }
}

/// The supervisor's last word.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SafeStopState {
    pub engaged: bool,
}

#[derive(Debug, Clone, PartialEq)]
struct Timed<T> {
    value: T,
    received_ns: i64,
}

pub struct Arbiter {
    config: ArbiterConfig,
    started_ns: i64,
    aeb: Option<Timed<BrakeRequest>>,
    driver: Option<Timed<BrakeRequest>>,
    supervisor: Option<Timed<SafeStopState>>,
}

/// Which input decided the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Winner {
    None,
    Aeb,
    Driver,
    SafeStop,
    SupervisorMissing,
}

/// Why a request was refused.
pub fn implausible(request: &BrakeRequest) -> Option<&'static str> {
    if request.level > BrakeRequest::LEVEL_FULL {
        Some("level beyond FULL")
    } else if !request.deceleration_mps2.is_finite() {
        Some("deceleration is not finite")
    } else if !(0.0..=MAX_PLAUSIBLE_DECEL_MPS2).contains(&request.deceleration_mps2) {
        Some("deceleration outside 0..=15 m/s²")
    } else if request.time_to_collision_s.is_nan() {
        Some("time to collision is NaN")
    } else {
        None
    }
}

/// The deceleration a request actually asks of the brakes: only from partial braking up.
fn braking(request: &BrakeRequest) -> f64 {
    if request.level >= BrakeRequest::LEVEL_PARTIAL {
        request.deceleration_mps2
    } else {
        0.0
    }
}

impl Arbiter {
    pub fn new(config: ArbiterConfig, now_ns: i64) -> Self {
        Self { config, started_ns: now_ns, aeb: None, driver: None, supervisor: None }
    }

    /// Stores the AEB's request (arrived at `now_ns`); `Err` with the reason when it is refused.
    pub fn set_aeb(&mut self, now_ns: i64, request: &BrakeRequest) -> Result<(), &'static str> {
        Self::store(&mut self.aeb, now_ns, request)
    }

    pub fn set_driver(&mut self, now_ns: i64, request: &BrakeRequest) -> Result<(), &'static str> {
        Self::store(&mut self.driver, now_ns, request)
    }

    pub fn set_supervisor(&mut self, now_ns: i64, state: SafeStopState) {
        self.supervisor = Some(Timed { value: state, received_ns: now_ns });
    }

    /// Takes the supervisor's `SafeStop` message (arrived at `now_ns`, `age_ns` since it was
    /// stamped where the clock allows one); `Err` when it was delayed in transit beyond the
    /// supervisor's own age limit: then it is not the supervisor's current word.
    pub fn hear_supervisor(
        &mut self,
        now_ns: i64,
        age_ns: Option<i64>,
        message: &SafeStop,
    ) -> Result<(), &'static str> {
        let max_age_ns = (self.config.supervisor_max_age_s * 1e9) as i64;
        if age_ns.is_some_and(|age| age > max_age_ns) {
            return Err("the supervisor's state is older than supervisor_max_age_s");
        }
        let engaged = message.engaged || message.state == SafeStop::STATE_SAFE_STOP;
        self.set_supervisor(now_ns, SafeStopState { engaged });
        Ok(())
    }

    /// Keeps the slot's allocation: the command path runs at the camera rate.
    fn store(slot: &mut Option<Timed<BrakeRequest>>, now_ns: i64, request: &BrakeRequest) -> Result<(), &'static str> {
        if let Some(why) = implausible(request) {
            return Err(why);
        }
        match slot {
            Some(timed) => {
                timed.value.clone_from(request);
                timed.received_ns = now_ns;
            }
            None => *slot = Some(Timed { value: request.clone(), received_ns: now_ns }),
        }
        Ok(())
    }

    fn fresh<T>(slot: &Option<Timed<T>>, now_ns: i64, max_age_s: f64) -> Option<&T> {
        slot.as_ref().filter(|t| (now_ns.saturating_sub(t.received_ns)) as f64 / 1e9 <= max_age_s).map(|t| &t.value)
    }

    /// The command at `now_ns`, written into `command` (header and source left to the caller).
    pub fn decide(&self, now_ns: i64, command: &mut BrakeRequest) -> Winner {
        let c = &self.config;
        let aeb = Self::fresh(&self.aeb, now_ns, c.aeb_max_age_s);
        let driver = Self::fresh(&self.driver, now_ns, c.driver_max_age_s);
        let requests = [(aeb, Winner::Aeb), (driver, Winner::Driver)];
        let fresh = || requests.iter().filter_map(|(request, winner)| request.map(|r| (r, *winner)));
        // The strongest braking, then the highest level; the level of the command is the
        // highest asked for by anyone (a warning still warns while another input brakes).
        let strongest = fresh().max_by(|a, b| braking(a.0).total_cmp(&braking(b.0)).then(a.0.level.cmp(&b.0.level)));
        let level = fresh().map(|(r, _)| r.level).max().unwrap_or(BrakeRequest::LEVEL_NONE);
        let supervisor = Self::fresh(&self.supervisor, now_ns, c.supervisor_max_age_s);
        let in_grace = (now_ns.saturating_sub(self.started_ns)) as f64 / 1e9 < c.startup_grace_s;
        let stop = match supervisor {
            Some(state) if state.engaged => Some(Winner::SafeStop),
            None if !in_grace => Some(Winner::SupervisorMissing),
            _ => None,
        };
        command.reason.clear();
        if let Some(winner) = stop {
            command.level = BrakeRequest::LEVEL_FULL;
            let stronger = strongest.map_or(0.0, |(r, _)| braking(r));
            command.deceleration_mps2 = c.safe_stop_decel_mps2.max(stronger);
            command.time_to_collision_s = strongest.map_or(f64::INFINITY, |(r, _)| r.time_to_collision_s);
            command.reason.push_str(if winner == Winner::SafeStop { "safe stop" } else { "supervisor missing" });
            return winner;
        }
        match strongest {
            Some((request, winner)) => {
                command.level = level;
                command.deceleration_mps2 = braking(request);
                command.time_to_collision_s = request.time_to_collision_s;
                command.reason.push_str(&request.reason);
                winner
            }
            None => {
                command.level = BrakeRequest::LEVEL_NONE;
                command.deceleration_mps2 = 0.0;
                command.time_to_collision_s = f64::INFINITY;
                Winner::None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: i64 = 1_000_000;

    fn request(level: u8, decel: f64) -> BrakeRequest {
        BrakeRequest { level, deceleration_mps2: decel, reason: format!("level {level}"), ..Default::default() }
    }

    #[derive(Clone, Copy, Debug)]
    enum Input {
        Missing,
        Fresh,
        Stale,
    }

    /// Every combination of AEB (full, 8 m/s²), driver (partial, 3 m/s²) and supervisor
    /// (engaged or not), each missing, fresh or stale.
    #[test]
    fn arbiter_matrix() {
        use Input::*;
        let now = 10_000 * MS; // well past the start-up grace
        for aeb in [Missing, Fresh, Stale] {
            for driver in [Missing, Fresh, Stale] {
                for (supervisor, engaged) in
                    [(Missing, false), (Fresh, false), (Fresh, true), (Stale, true), (Stale, false)]
                {
                    let mut arbiter = Arbiter::new(ArbiterConfig::default(), 0);
                    let at = |input: Input, max_age_ms: i64| match input {
                        Missing => None,
                        Fresh => Some(now - 10 * MS),
                        Stale => Some(now - (max_age_ms + 10) * MS),
                    };
                    if let Some(t) = at(aeb, 300) {
                        arbiter.set_aeb(t, &request(BrakeRequest::LEVEL_FULL, 8.0)).unwrap();
                    }
                    if let Some(t) = at(driver, 300) {
                        arbiter.set_driver(t, &request(BrakeRequest::LEVEL_PARTIAL, 3.0)).unwrap();
                    }
                    if let Some(t) = at(supervisor, 500) {
                        arbiter.set_supervisor(t, SafeStopState { engaged });
                    }
                    let mut command = BrakeRequest::default();
                    let winner = arbiter.decide(now, &mut command);
                    let case = format!("aeb {aeb:?}, driver {driver:?}, supervisor {supervisor:?} engaged {engaged}");
                    let supervisor_ok = matches!(supervisor, Fresh);
                    let expected = if supervisor_ok && engaged {
                        (Winner::SafeStop, BrakeRequest::LEVEL_FULL, if matches!(aeb, Fresh) { 8.0 } else { 6.0 })
                    } else if !supervisor_ok {
                        (
                            Winner::SupervisorMissing,
                            BrakeRequest::LEVEL_FULL,
                            if matches!(aeb, Fresh) { 8.0 } else { 6.0 },
                        )
                    } else if matches!(aeb, Fresh) {
                        (Winner::Aeb, BrakeRequest::LEVEL_FULL, 8.0)
                    } else if matches!(driver, Fresh) {
                        (Winner::Driver, BrakeRequest::LEVEL_PARTIAL, 3.0)
                    } else {
                        (Winner::None, BrakeRequest::LEVEL_NONE, 0.0)
                    };
                    assert_eq!((winner, command.level, command.deceleration_mps2), expected, "{case}");
                }
            }
        }
    }

    /// H1: a warning naming a larger (or a NaN) deceleration must not displace full braking.
    #[test]
    fn a_lower_level_or_nan_request_never_beats_full_braking() {
        let now = 10_000 * MS;
        let mut arbiter = Arbiter::new(ArbiterConfig::default(), 0);
        arbiter.set_supervisor(now, SafeStopState { engaged: false });
        arbiter.set_aeb(now, &request(BrakeRequest::LEVEL_FULL, 8.0)).unwrap();
        arbiter.set_driver(now, &request(BrakeRequest::LEVEL_WARN, 8.5)).unwrap();
        let mut command = BrakeRequest::default();
        assert_eq!(arbiter.decide(now, &mut command), Winner::Aeb);
        assert_eq!((command.level, command.deceleration_mps2), (BrakeRequest::LEVEL_FULL, 8.0));
        for bad in [f64::NAN, f64::INFINITY, -1.0, 99.0] {
            assert!(arbiter.set_driver(now, &request(BrakeRequest::LEVEL_FULL, bad)).is_err(), "{bad} refused");
            arbiter.decide(now, &mut command);
            assert!(command.deceleration_mps2.is_finite() && command.deceleration_mps2 >= 8.0, "{bad}: {command:?}");
            assert_eq!(command.level, BrakeRequest::LEVEL_FULL);
        }
        let mut beyond = request(BrakeRequest::LEVEL_NONE, 0.0);
        beyond.level = 7;
        assert!(arbiter.set_aeb(now, &beyond).is_err());
        // A partial brake and a warning together: partial braking, and the warning's level
        // does not lower it.
        let mut arbiter = Arbiter::new(ArbiterConfig::default(), 0);
        arbiter.set_supervisor(now, SafeStopState { engaged: false });
        arbiter.set_aeb(now, &request(BrakeRequest::LEVEL_WARN, 0.0)).unwrap();
        arbiter.set_driver(now, &request(BrakeRequest::LEVEL_PARTIAL, 3.0)).unwrap();
        arbiter.decide(now, &mut command);
        assert_eq!((command.level, command.deceleration_mps2), (BrakeRequest::LEVEL_PARTIAL, 3.0));
    }

    #[test]
    fn config_checks_refuse_unsafe_values() {
        assert!(ArbiterConfig::default().validate().is_ok());
        let bad = ArbiterConfig { safe_stop_decel_mps2: 0.0, ..ArbiterConfig::default() };
        assert_eq!(bad.validate().unwrap_err().path, "safe_stop_decel_mps2");
        let bad = ArbiterConfig { supervisor_max_age_s: 1e9, ..ArbiterConfig::default() };
        assert_eq!(bad.validate().unwrap_err().path, "supervisor_max_age_s");
    }

    #[test]
    fn a_missing_supervisor_is_tolerated_only_during_start_up() {
        let arbiter = Arbiter::new(ArbiterConfig::default(), 0);
        let mut command = BrakeRequest::default();
        assert_eq!(arbiter.decide(1_000 * MS, &mut command), Winner::None);
        assert_eq!(arbiter.decide(3_000 * MS, &mut command), Winner::SupervisorMissing);
        assert_eq!(command.reason, "supervisor missing");
    }
}
