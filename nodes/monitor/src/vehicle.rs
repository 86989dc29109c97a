//! What the safety units know of the vehicle's speed: the last vehicle state while it is
//! fresh, nothing otherwise. A safe stop or a fallback ends only at a standstill that is known.

/// A vehicle state older than this does not tell whether the vehicle stands still.
pub const VEHICLE_STATE_MAX_AGE_NS: i64 = 500_000_000;

/// Below this speed, m/s, the vehicle stands still.
const STANDSTILL_MPS: f64 = 0.1;

/// The vehicle's speed as last heard.
#[derive(Debug, Clone, Copy, Default)]
pub struct VehicleSpeed {
    /// When the last valid state arrived (duration clock, ns) and its speed.
    last: Option<(i64, f64)>,
}

impl VehicleSpeed {
    /// A vehicle state that arrived at `arrival_ns`; false (refused) when its speed is no number.
    pub fn hear(&mut self, arrival_ns: i64, speed_mps: f64) -> bool {
        if !speed_mps.is_finite() {
            return false;
        }
        self.last = Some((arrival_ns, speed_mps));
        true
    }

    /// The speed at `now_ns`, if a state fresh enough says it.
    pub fn known(&self, now_ns: i64) -> Option<f64> {
        self.last.filter(|(at, _)| now_ns.saturating_sub(*at) <= VEHICLE_STATE_MAX_AGE_NS).map(|(_, v)| v)
    }

    /// Whether the vehicle is known to stand still at `now_ns`.
    pub fn standstill(&self, now_ns: i64) -> bool {
        self.known(now_ns).is_some_and(|v| v.abs() < STANDSTILL_MPS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_standstill_is_known_only_from_a_fresh_valid_state() {
        let mut speed = VehicleSpeed::default();
        assert!(!speed.standstill(0), "nothing heard");
        assert!(speed.hear(0, 0.05));
        assert!(speed.standstill(VEHICLE_STATE_MAX_AGE_NS));
        assert!(!speed.standstill(VEHICLE_STATE_MAX_AGE_NS + 1), "stale");
        assert!(!speed.hear(10, f64::NAN), "no number");
        assert_eq!(speed.known(10), Some(0.05), "a refused state changes nothing");
        assert!(speed.hear(20, -3.0));
        assert!(!speed.standstill(20));
        assert_eq!(speed.known(20), Some(-3.0));
    }
}
