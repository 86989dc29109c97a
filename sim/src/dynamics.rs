//! Longitudinal dynamics of the vehicle under test: the brake actuator's dead time, its lag
//! (first order) and jerk limit, and the maximum deceleration. No throttle: as in the Euro NCAP
//! tests, the vehicle holds its speed until the AEB brakes.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EgoConfig {
    /// From the command to the start of the actuator's response, s.
    pub actuator_delay_s: f64,
    /// Time constant of the build-up of deceleration, s.
    pub lag_s: f64,
    /// Fastest change of deceleration, m/s³.
    pub max_jerk_mps3: f64,
    /// Deceleration the tyres and brakes can give, m/s².
    pub max_decel_mps2: f64,
    pub length_m: f64,
    pub width_m: f64,
}

impl Default for EgoConfig {
    fn default() -> Self {
        // A passenger car: ~0.1 s hydraulic dead time, ~0.15 s build-up, 30 m/s³, 9.5 m/s² on dry asphalt.
        Self {
            actuator_delay_s: 0.1,
            lag_s: 0.15,
            max_jerk_mps3: 30.0,
            max_decel_mps2: 9.5,
            length_m: 4.6,
            width_m: reflex_scenario::EGO_WIDTH_M,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Ego {
    pub config: EgoConfig,
    /// Position of the front bumper along the road, m.
    pub x_m: f64,
    pub speed_mps: f64,
    /// Current deceleration (≥ 0), m/s².
    pub decel_mps2: f64,
    /// Commands waiting out the dead time: (time they take effect, demand).
    pending: VecDeque<(f64, f64)>,
    demand_mps2: f64,
    pub time_s: f64,
}

impl Ego {
    pub fn new(config: EgoConfig, speed_mps: f64) -> Self {
        Self { config, x_m: 0.0, speed_mps, decel_mps2: 0.0, pending: VecDeque::new(), demand_mps2: 0.0, time_s: 0.0 }
    }

    /// Asks for `decel_mps2` (0 releases); it takes effect after the dead time.
    pub fn command(&mut self, decel_mps2: f64) {
        let demand = decel_mps2.clamp(0.0, self.config.max_decel_mps2);
        if self.pending.back().map_or(self.demand_mps2, |(_, d)| *d) != demand {
            self.pending.push_back((self.time_s + self.config.actuator_delay_s, demand));
        }
    }

    /// Advances by `dt_s` (a millisecond or so for accuracy).
    pub fn step(&mut self, dt_s: f64) {
        self.time_s += dt_s;
        while self.pending.front().is_some_and(|(at, _)| *at <= self.time_s + 1e-12) {
            self.demand_mps2 = self.pending.pop_front().expect("checked").1;
        }
        // First-order lag, discretised exactly (stable for any step), then the jerk limit.
        let alpha = 1.0 - (-dt_s / self.config.lag_s.max(1e-9)).exp();
        let max_change = self.config.max_jerk_mps3 * dt_s;
        let change = ((self.demand_mps2 - self.decel_mps2) * alpha).clamp(-max_change, max_change);
        self.decel_mps2 = (self.decel_mps2 + change).clamp(0.0, self.config.max_decel_mps2);
        if self.speed_mps <= 0.0 {
            self.speed_mps = 0.0;
            return;
        }
        let v0 = self.speed_mps;
        let v1 = (v0 - self.decel_mps2 * dt_s).max(0.0);
        self.x_m += (v0 + v1) / 2.0 * dt_s;
        self.speed_mps = v1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_its_speed_without_commands() {
        let mut ego = Ego::new(EgoConfig::default(), 10.0);
        for _ in 0..1000 {
            ego.step(0.001);
        }
        assert!((ego.x_m - 10.0).abs() < 1e-9 && ego.speed_mps == 10.0);
    }

    #[test]
    fn the_brake_responds_after_its_dead_time_with_lag() {
        let mut ego = Ego::new(EgoConfig::default(), 20.0);
        ego.command(6.0);
        let at = |ego: &mut Ego, t: f64| {
            while ego.time_s < t - 1e-9 {
                ego.step(0.001);
            }
            ego.decel_mps2
        };
        assert_eq!(at(&mut ego, 0.099), 0.0, "nothing during the dead time");
        let d1 = at(&mut ego, 0.25);
        assert!(d1 > 2.0 && d1 < 5.0, "building up: {d1}");
        let d2 = at(&mut ego, 1.0);
        assert!((d2 - 6.0).abs() < 0.05, "settled: {d2}");
        assert!(ego.command_is_capped());
    }

    #[test]
    fn an_ideal_brake_stops_in_the_closed_form_distance() {
        let config = EgoConfig { actuator_delay_s: 0.0, lag_s: 1e-6, max_jerk_mps3: 1e9, ..Default::default() };
        let mut ego = Ego::new(config, 15.0);
        ego.command(5.0);
        while ego.speed_mps > 0.0 {
            ego.step(0.0005);
        }
        let expected = 15.0 * 15.0 / (2.0 * 5.0);
        assert!((ego.x_m - expected).abs() < 0.05, "{} vs {expected}", ego.x_m);
    }

    impl Ego {
        fn command_is_capped(&mut self) -> bool {
            self.command(100.0);
            self.pending.back().map(|(_, d)| *d) == Some(self.config.max_decel_mps2)
        }
    }
}
