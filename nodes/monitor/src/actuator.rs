//! The actuator gateway: the boundary between the arbiter's commands and the brake unit.
//!
//! The arbiter is the one writer of `/vehicle/brake_command`, so it is also a single point of
//! failure: stopped, killed, frozen, or fed frozen inputs, it can keep the brakes off. The
//! gateway sits where the command leaves the computer (a process beside the CAN bridge, or the
//! brake unit's own logic; the simulator's plant runs it as its brake unit) and trusts nothing
//! it cannot check. It brakes **by itself** at `fallback_decel_mps2` when:
//!
//! - **commands stop**: none valid for `timeout_ms` (the arbiter republishes at 50 Hz, so a
//!   gap of 100 ms is five lost periods: the arbiter, its host or the link is gone);
//! - **commands stop advancing**: the rolling counter (the publisher's sequence number) does not
//!   increase (a replay or a stuck sender), or the command's capture stamp has not changed for
//!   `stale_stamp_ms` (the arbiter is alive but its inputs are frozen, or perception is dead);
//! - **a command fails plausibility**: a level beyond FULL, a deceleration that is not finite
//!   or outside 0..=`max_decel_mps2`, braking levels without deceleration or warnings with it.
//!
//! Once it brakes by itself it **latches**: it keeps braking until valid, advancing commands
//! have come for `recover_ms` and the vehicle stands still (speed under 0.1 m/s), or, when the
//! speed is unknown, until the valid commands alone have lasted `recover_ms`. Until the first
//! valid command it brakes too: a gateway that has heard nothing has nothing to trust.
//!
//! Times are on the caller's duration clock (monotonic or simulation time), so a step of the
//! wall clock changes nothing here.

use reflex_msgs::reflex_msgs::BrakeRequest;

#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// No valid command for this long: brake, ms.
    pub timeout_ms: f64,
    /// The commands' capture stamp unchanged for this long: brake, ms.
    pub stale_stamp_ms: f64,
    /// Deceleration when braking by itself, m/s².
    pub fallback_decel_mps2: f64,
    /// Largest plausible commanded deceleration, m/s².
    pub max_decel_mps2: f64,
    /// Valid, advancing commands needed before a fallback ends, ms.
    pub recover_ms: f64,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            timeout_ms: 100.0,
            stale_stamp_ms: 500.0,
            fallback_decel_mps2: 6.0,
            max_decel_mps2: 12.0,
            recover_ms: 500.0,
        }
    }
}

impl GatewayConfig {
    /// Checks the values; names the parameter.
    pub fn validate(&self) -> Result<(), (String, String)> {
        for (name, value, low, high) in [
            ("timeout_ms", self.timeout_ms, 10.0, 2_000.0),
            ("stale_stamp_ms", self.stale_stamp_ms, 50.0, 10_000.0),
            ("recover_ms", self.recover_ms, 0.0, 60_000.0),
            ("fallback_decel_mps2", self.fallback_decel_mps2, 5.0, 12.0),
            ("max_decel_mps2", self.max_decel_mps2, 5.0, 15.0),
        ] {
            if !(low..=high).contains(&value) {
                return Err((name.into(), format!("{value} is outside [{low}, {high}]")));
            }
        }
        Ok(())
    }
}

/// Why the gateway brakes by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    NoCommandYet,
    CommandsStopped,
    CounterNotAdvancing,
    StampNotAdvancing,
    Implausible,
}

impl Fallback {
    pub fn describe(self) -> &'static str {
        match self {
            Fallback::NoCommandYet => "no valid command yet",
            Fallback::CommandsStopped => "commands stopped",
            Fallback::CounterNotAdvancing => "command counter not advancing",
            Fallback::StampNotAdvancing => "command stamp not advancing",
            Fallback::Implausible => "implausible command",
        }
    }
}

/// What goes to the brake unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Demand {
    pub level: u8,
    pub decel_mps2: f64,
    /// Set while the gateway brakes by itself.
    pub fallback: Option<Fallback>,
}

pub struct ActuatorGateway {
    config: GatewayConfig,
    /// The last valid command and when it arrived.
    last: Option<(u8, f64)>,
    last_valid_ns: Option<i64>,
    last_counter: Option<i64>,
    last_stamp: Option<i64>,
    stamp_changed_ns: Option<i64>,
    /// The last command received was refused (and why).
    refused: Option<Fallback>,
    /// The latched fallback and since when commands have been good again.
    latched: Option<Fallback>,
    good_since_ns: Option<i64>,
    /// Commands refused, by reason, for reports.
    pub refused_count: u64,
}

impl ActuatorGateway {
    pub fn new(config: GatewayConfig) -> Self {
        Self {
            config,
            last: None,
            last_valid_ns: None,
            last_counter: None,
            last_stamp: None,
            stamp_changed_ns: None,
            refused: None,
            latched: Some(Fallback::NoCommandYet),
            good_since_ns: None,
            refused_count: 0,
        }
    }

    pub fn config(&self) -> &GatewayConfig {
        &self.config
    }

    /// Why `command` cannot be obeyed, if it cannot.
    fn implausible(&self, command: &BrakeRequest) -> bool {
        let decel = command.deceleration_mps2;
        !(decel.is_finite() && (0.0..=self.config.max_decel_mps2).contains(&decel))
            || command.level > BrakeRequest::LEVEL_FULL
            || (command.level >= BrakeRequest::LEVEL_PARTIAL && decel <= 0.0)
            || (command.level < BrakeRequest::LEVEL_PARTIAL && decel != 0.0)
    }

    /// A command arrived at `now_ns` with the publisher's rolling counter (`None` when the
    /// sender gives none). Returns whether it was accepted.
    pub fn command(&mut self, now_ns: i64, command: &BrakeRequest, counter: Option<i64>) -> bool {
        if self.implausible(command) {
            self.refused = Some(Fallback::Implausible);
            self.refused_count += 1;
            return false;
        }
        if let (Some(counter), Some(last)) = (counter, self.last_counter) {
            if counter <= last {
                self.refused = Some(Fallback::CounterNotAdvancing);
                self.refused_count += 1;
                return false;
            }
        }
        self.last_counter = counter.or(self.last_counter);
        let stamp = command.header.stamp.as_nanos();
        if self.last_stamp != Some(stamp) {
            self.last_stamp = Some(stamp);
            // A zero stamp is no capture at all: it never counts as advancing.
            if stamp != 0 {
                self.stamp_changed_ns = Some(now_ns);
            }
        }
        self.refused = None;
        self.last = Some((command.level, command.deceleration_mps2));
        self.last_valid_ns = Some(now_ns);
        true
    }

    /// What is wrong right now, if anything.
    fn fault(&self, now_ns: i64) -> Option<Fallback> {
        let older =
            |at: Option<i64>, limit_ms: f64| at.is_none_or(|t| (now_ns.saturating_sub(t)) as f64 / 1e6 > limit_ms);
        if self.last_valid_ns.is_none() {
            return Some(Fallback::NoCommandYet);
        }
        if let Some(refused) = self.refused {
            return Some(refused);
        }
        if older(self.last_valid_ns, self.config.timeout_ms) {
            return Some(Fallback::CommandsStopped);
        }
        if older(self.stamp_changed_ns, self.config.stale_stamp_ms) {
            return Some(Fallback::StampNotAdvancing);
        }
        None
    }

    /// The demand at `now_ns`; `speed_mps` is the vehicle's speed when known (a fallback ends
    /// only at a standstill).
    pub fn output(&mut self, now_ns: i64, speed_mps: Option<f64>) -> Demand {
        match self.fault(now_ns) {
            Some(fault) => {
                self.latched.get_or_insert(fault);
                self.good_since_ns = None;
            }
            None if self.latched.is_some() => {
                let since = *self.good_since_ns.get_or_insert(now_ns);
                let recovered = (now_ns.saturating_sub(since)) as f64 / 1e6 >= self.config.recover_ms;
                let standing = speed_mps.is_none_or(|v| v.abs() < 0.1);
                if recovered && standing {
                    self.latched = None;
                    self.good_since_ns = None;
                }
            }
            None => {}
        }
        let (level, decel) = self.last.unwrap_or((BrakeRequest::LEVEL_NONE, 0.0));
        match self.latched {
            Some(fallback) => Demand {
                level: BrakeRequest::LEVEL_FULL,
                // A valid command that brakes harder still counts.
                decel_mps2: if self.refused.is_none() {
                    self.config.fallback_decel_mps2.max(decel)
                } else {
                    self.config.fallback_decel_mps2
                },
                fallback: Some(self.fault(now_ns).unwrap_or(fallback)),
            },
            None => Demand { level, decel_mps2: decel, fallback: None },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reflex_msgs::builtin_interfaces::Time;

    const MS: i64 = 1_000_000;

    fn command(level: u8, decel: f64, stamp_ms: i64) -> BrakeRequest {
        let mut command = BrakeRequest { level, deceleration_mps2: decel, ..Default::default() };
        command.header.stamp = Time::from_nanos(1_700_000_000_000 * MS + stamp_ms * MS);
        command
    }

    /// Feeds a healthy 50 Hz stream from `from_ms` to `to_ms` (frames every 33 ms).
    fn healthy(gateway: &mut ActuatorGateway, counter: &mut i64, from_ms: i64, to_ms: i64) -> Demand {
        let mut demand = gateway.output(from_ms * MS, Some(0.0));
        for t in (from_ms..to_ms).step_by(20) {
            *counter += 1;
            assert!(gateway.command(t * MS, &command(BrakeRequest::LEVEL_NONE, 0.0, t / 33 * 33), Some(*counter)));
            demand = gateway.output(t * MS, Some(0.0));
        }
        demand
    }

    #[test]
    fn brakes_until_the_first_valid_commands_then_obeys() {
        let mut gateway = ActuatorGateway::new(GatewayConfig::default());
        let demand = gateway.output(0, None);
        assert_eq!(demand.fallback, Some(Fallback::NoCommandYet));
        assert_eq!(demand.level, BrakeRequest::LEVEL_FULL);
        let mut counter = 0;
        let demand = healthy(&mut gateway, &mut counter, 0, 1_000);
        assert_eq!(demand, Demand { level: BrakeRequest::LEVEL_NONE, decel_mps2: 0.0, fallback: None });
    }

    /// C3: an arbiter that stops (SIGSTOP, SIGKILL, its host gone) leaves a braking gateway.
    #[test]
    fn silence_brakes_within_the_timeout_and_latches_until_standstill() {
        let mut gateway = ActuatorGateway::new(GatewayConfig::default());
        let mut counter = 0;
        healthy(&mut gateway, &mut counter, 0, 1_000);
        assert_eq!(gateway.output(1_070 * MS, Some(10.0)).fallback, None, "90 ms after the last command");
        let demand = gateway.output(1_110 * MS, Some(10.0));
        assert_eq!(demand.fallback, Some(Fallback::CommandsStopped));
        assert!(demand.level == BrakeRequest::LEVEL_FULL && demand.decel_mps2 >= 6.0);
        // Commands come back while the vehicle still moves: held.
        for t in (1_200..2_500).step_by(20) {
            counter += 1;
            gateway.command(t * MS, &command(BrakeRequest::LEVEL_NONE, 0.0, t / 33 * 33), Some(counter));
            assert!(gateway.output(t * MS, Some(5.0)).fallback.is_some(), "latched while moving at {t} ms");
        }
        assert_eq!(healthy(&mut gateway, &mut counter, 2_500, 3_200).fallback, None, "released at a standstill");
    }

    /// C2: an arbiter whose inputs are frozen keeps publishing "no braking" with a fresh
    /// counter, but the capture stamp behind it stops.
    #[test]
    fn a_frozen_stamp_brakes_even_with_a_live_counter() {
        let mut gateway = ActuatorGateway::new(GatewayConfig::default());
        let mut counter = 0;
        healthy(&mut gateway, &mut counter, 0, 1_000);
        let mut fallback = None;
        for t in (1_000..2_000).step_by(20) {
            counter += 1;
            assert!(gateway.command(t * MS, &command(BrakeRequest::LEVEL_NONE, 0.0, 990), Some(counter)));
            let demand = gateway.output(t * MS, Some(8.0));
            if demand.fallback.is_some() && fallback.is_none() {
                fallback = Some((t, demand.fallback));
            }
        }
        let (at, why) = fallback.expect("braked");
        assert_eq!(why, Some(Fallback::StampNotAdvancing));
        assert!((1_490..=1_530).contains(&at), "after the 500 ms stale-stamp limit: {at} ms");
    }

    #[test]
    fn replayed_counters_and_implausible_commands_are_refused_and_brake() {
        let mut gateway = ActuatorGateway::new(GatewayConfig::default());
        let mut counter = 0;
        healthy(&mut gateway, &mut counter, 0, 1_000);
        assert!(!gateway.command(1_000 * MS, &command(BrakeRequest::LEVEL_NONE, 0.0, 1_000), Some(counter)));
        assert_eq!(gateway.output(1_000 * MS, Some(0.0)).fallback, Some(Fallback::CounterNotAdvancing));
        for bad in [
            command(BrakeRequest::LEVEL_FULL, f64::NAN, 1_000),
            command(BrakeRequest::LEVEL_FULL, 0.0, 1_000),
            command(BrakeRequest::LEVEL_WARN, 8.5, 1_000),
            command(9, 3.0, 1_000),
            command(BrakeRequest::LEVEL_FULL, 40.0, 1_000),
        ] {
            counter += 1;
            assert!(!gateway.command(1_010 * MS, &bad, Some(counter)), "{bad:?}");
            let demand = gateway.output(1_010 * MS, Some(0.0));
            assert_eq!(demand.fallback, Some(Fallback::Implausible));
            assert_eq!(demand.decel_mps2, 6.0);
        }
    }

    #[test]
    fn a_stronger_valid_command_still_counts_while_latched() {
        let mut gateway = ActuatorGateway::new(GatewayConfig::default());
        let mut counter = 0;
        healthy(&mut gateway, &mut counter, 0, 1_000);
        gateway.output(1_200 * MS, Some(10.0));
        counter += 1;
        gateway.command(1_210 * MS, &command(BrakeRequest::LEVEL_FULL, 9.0, 1_200), Some(counter));
        assert_eq!(gateway.output(1_210 * MS, Some(10.0)).decel_mps2, 9.0);
    }

    #[test]
    fn config_checks_name_the_parameter() {
        assert!(GatewayConfig::default().validate().is_ok());
        let bad = GatewayConfig { timeout_ms: 1e9, ..GatewayConfig::default() };
        assert_eq!(bad.validate().unwrap_err().0, "timeout_ms");
        let bad = GatewayConfig { fallback_decel_mps2: f64::NAN, ..GatewayConfig::default() };
        assert_eq!(bad.validate().unwrap_err().0, "fallback_decel_mps2");
    }
}
