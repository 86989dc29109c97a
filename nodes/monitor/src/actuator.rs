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
//!   increase (a replay or a stuck sender), a command carries no counter, or the command's
//!   capture stamp has not changed for `stale_stamp_ms` (the arbiter is alive but its inputs
//!   are frozen, or perception is dead);
//! - **a second sender** speaks while the first is alive. A new publisher (a restarted
//!   arbiter: its counter starts again at 1) is taken only after the old one has been silent
//!   for `timeout_ms`, which has already made the gateway brake;
//! - **a command fails plausibility**: a level beyond FULL, a deceleration that is not finite
//!   or outside 0..=`max_decel_mps2`, braking levels without deceleration or warnings with it.
//!
//! Once it brakes by itself it **latches**, from the first refused command on: it keeps
//! braking until valid, advancing commands have come for `recover_ms` and the vehicle stands
//! still (speed under 0.1 m/s on a fresh vehicle state; an unknown or stale speed is not a
//! standstill). Where no vehicle state exists (a fixed robot cell), `release: stable_period`
//! ends it after the valid commands alone have lasted `recover_ms`. Until the first valid
//! command it brakes too: a gateway that has heard nothing has nothing to trust.
//!
//! Times are on the caller's duration clock (monotonic or simulation time), so a step of the
//! wall clock changes nothing here.

use crate::supervisor::Release;
use reflex_msgs::reflex_msgs::BrakeRequest;
use reflex_runtime::spec::InvalidParam;

#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// No valid command for this long: brake, ms.
    pub timeout_ms: f64,
    /// The commands' capture stamp unchanged for this long: brake, ms.
    pub stale_stamp_ms: f64,
    /// Deceleration when braking by itself, m/s².
    pub fallback_decel_mps2: f64,
    /// Largest plausible commanded deceleration, m/s² (by default the arbiter's own limit, so
    /// a command the arbiter finds plausible is never refused here).
    pub max_decel_mps2: f64,
    /// Valid, advancing commands needed before a fallback ends, ms.
    pub recover_ms: f64,
    /// Whether a fallback also waits for a standstill (the default) or ends after `recover_ms`
    /// of valid commands alone (`stable_period`, for systems without a vehicle state).
    pub release: Release,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            timeout_ms: 100.0,
            stale_stamp_ms: 500.0,
            fallback_decel_mps2: 6.0,
            max_decel_mps2: crate::arbiter::MAX_PLAUSIBLE_DECEL_MPS2,
            recover_ms: 500.0,
            release: Release::Standstill,
        }
    }
}

impl GatewayConfig {
    /// Checks the values; names the parameter.
    pub fn validate(&self) -> Result<(), InvalidParam> {
        for (name, value, low, high) in [
            // Two periods of the arbiter's 50 Hz at least: less brakes on ordinary jitter.
            ("timeout_ms", self.timeout_ms, 40.0, 2_000.0),
            ("stale_stamp_ms", self.stale_stamp_ms, 50.0, 10_000.0),
            ("recover_ms", self.recover_ms, 0.0, 60_000.0),
            ("fallback_decel_mps2", self.fallback_decel_mps2, 5.0, 12.0),
            ("max_decel_mps2", self.max_decel_mps2, 5.0, 15.0),
        ] {
            if !(low..=high).contains(&value) {
                return Err(InvalidParam::new(name, format!("{value} is outside [{low}, {high}]")));
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
    NoCounter,
    SecondSender,
    StampNotAdvancing,
    Implausible,
}

impl Fallback {
    pub fn describe(self) -> &'static str {
        match self {
            Fallback::NoCommandYet => "no valid command yet",
            Fallback::CommandsStopped => "commands stopped",
            Fallback::CounterNotAdvancing => "command counter not advancing",
            Fallback::NoCounter => "command without a counter",
            Fallback::SecondSender => "commands from a second sender",
            Fallback::StampNotAdvancing => "command stamp not advancing",
            Fallback::Implausible => "implausible command",
        }
    }
}

/// Where a command comes from: its publisher (the GID of the message attachment) and that
/// publisher's rolling counter (its sequence number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counter {
    pub publisher: [u8; 16],
    pub value: i64,
}

impl Counter {
    /// The counter of a received message; `None` when it came without an attachment.
    pub fn of<M>(received: &reflex_runtime::Received<M>) -> Option<Self> {
        Some(Self { publisher: received.publisher?, value: received.sequence? })
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
    last_counter: Option<Counter>,
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

    /// A command arrived at `now_ns` with its publisher's rolling counter (`None` when the
    /// sender gives none: refused). Returns whether it was accepted.
    pub fn command(&mut self, now_ns: i64, command: &BrakeRequest, counter: Option<Counter>) -> bool {
        if self.implausible(command) {
            return self.refuse(Fallback::Implausible);
        }
        let Some(counter) = counter else { return self.refuse(Fallback::NoCounter) };
        if let Some(last) = self.last_counter {
            if counter.publisher == last.publisher {
                if counter.value <= last.value {
                    return self.refuse(Fallback::CounterNotAdvancing);
                }
            } else if !self.silent(now_ns) {
                return self.refuse(Fallback::SecondSender);
            }
        }
        self.last_counter = Some(counter);
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

    /// Refuses the command just received: braking by itself at once, latched.
    fn refuse(&mut self, why: Fallback) -> bool {
        self.refused = Some(why);
        self.refused_count += 1;
        self.latched.get_or_insert(why);
        self.good_since_ns = None;
        false
    }

    /// No valid command for `timeout_ms` (or none yet).
    fn silent(&self, now_ns: i64) -> bool {
        self.last_valid_ns.is_none_or(|t| now_ns.saturating_sub(t) as f64 / 1e6 > self.config.timeout_ms)
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
        if self.silent(now_ns) {
            return Some(Fallback::CommandsStopped);
        }
        if older(self.stamp_changed_ns, self.config.stale_stamp_ms) {
            return Some(Fallback::StampNotAdvancing);
        }
        None
    }

    /// The demand at `now_ns`; `speed_mps` is the vehicle's speed from a fresh vehicle state
    /// (`None`: unknown or stale). A fallback ends only at a known standstill, unless
    /// `release: stable_period`.
    pub fn output(&mut self, now_ns: i64, speed_mps: Option<f64>) -> Demand {
        match self.fault(now_ns) {
            Some(fault) => {
                self.latched.get_or_insert(fault);
                self.good_since_ns = None;
            }
            None if self.latched.is_some() => {
                let since = *self.good_since_ns.get_or_insert(now_ns);
                let recovered = (now_ns.saturating_sub(since)) as f64 / 1e6 >= self.config.recover_ms;
                let standing = match self.config.release {
                    Release::Standstill => speed_mps.is_some_and(|v| v.abs() < 0.1),
                    Release::StablePeriod => true,
                };
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

    fn arbiter(value: i64) -> Option<Counter> {
        Some(Counter { publisher: [1; 16], value })
    }

    /// Feeds a healthy 50 Hz stream from `from_ms` to `to_ms` (frames every 33 ms).
    fn healthy(gateway: &mut ActuatorGateway, counter: &mut i64, from_ms: i64, to_ms: i64) -> Demand {
        let mut demand = gateway.output(from_ms * MS, Some(0.0));
        for t in (from_ms..to_ms).step_by(20) {
            *counter += 1;
            assert!(gateway.command(t * MS, &command(BrakeRequest::LEVEL_NONE, 0.0, t / 33 * 33), arbiter(*counter)));
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
            gateway.command(t * MS, &command(BrakeRequest::LEVEL_NONE, 0.0, t / 33 * 33), arbiter(counter));
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
            assert!(gateway.command(t * MS, &command(BrakeRequest::LEVEL_NONE, 0.0, 990), arbiter(counter)));
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
        assert!(!gateway.command(1_000 * MS, &command(BrakeRequest::LEVEL_NONE, 0.0, 1_000), arbiter(counter)));
        assert_eq!(gateway.output(1_000 * MS, Some(0.0)).fallback, Some(Fallback::CounterNotAdvancing));
        for bad in [
            command(BrakeRequest::LEVEL_FULL, f64::NAN, 1_000),
            command(BrakeRequest::LEVEL_FULL, 0.0, 1_000),
            command(BrakeRequest::LEVEL_WARN, 8.5, 1_000),
            command(9, 3.0, 1_000),
            command(BrakeRequest::LEVEL_FULL, 40.0, 1_000),
        ] {
            counter += 1;
            assert!(!gateway.command(1_010 * MS, &bad, arbiter(counter)), "{bad:?}");
            let demand = gateway.output(1_010 * MS, Some(0.0));
            assert_eq!(demand.fallback, Some(Fallback::Implausible));
            assert_eq!(demand.decel_mps2, 6.0);
        }
    }

    /// A restarted arbiter counts from 1 again under a new publisher: followed again once the
    /// old one has been silent (the gateway braked meanwhile), not refused for as long as the
    /// old one had been counting.
    #[test]
    fn a_restarted_arbiter_is_followed_again_after_the_fallback() {
        let mut gateway = ActuatorGateway::new(GatewayConfig::default());
        let mut counter = 100_000;
        healthy(&mut gateway, &mut counter, 0, 1_000);
        assert_eq!(gateway.output(1_300 * MS, Some(8.0)).fallback, Some(Fallback::CommandsStopped));
        let restarted = |value| Some(Counter { publisher: [2; 16], value });
        for (k, t) in (1_300..3_000).step_by(20).enumerate() {
            let accepted =
                gateway.command(t * MS, &command(BrakeRequest::LEVEL_NONE, 0.0, t / 33 * 33), restarted(k as i64 + 1));
            assert!(accepted, "the new arbiter's command {} at {t} ms", k + 1);
            gateway.output(t * MS, Some(0.0));
        }
        assert_eq!(gateway.output(3_000 * MS, Some(0.0)).fallback, None, "released at a standstill");
    }

    #[test]
    fn a_second_sender_or_a_command_without_counter_brakes_at_once() {
        let mut gateway = ActuatorGateway::new(GatewayConfig::default());
        let mut counter = 0;
        healthy(&mut gateway, &mut counter, 0, 1_000);
        let stranger = Some(Counter { publisher: [7; 16], value: 1_000_000 });
        assert!(!gateway.command(1_000 * MS, &command(BrakeRequest::LEVEL_NONE, 0.0, 990), stranger));
        // The arbiter's next good command comes in the same turn: the refusal still latched.
        counter += 1;
        assert!(gateway.command(1_001 * MS, &command(BrakeRequest::LEVEL_NONE, 0.0, 990), arbiter(counter)));
        assert_eq!(gateway.output(1_002 * MS, Some(8.0)).fallback, Some(Fallback::SecondSender));

        let mut gateway = ActuatorGateway::new(GatewayConfig::default());
        let mut counter = 0;
        healthy(&mut gateway, &mut counter, 0, 1_000);
        assert!(!gateway.command(1_000 * MS, &command(BrakeRequest::LEVEL_NONE, 0.0, 990), None));
        assert_eq!(gateway.output(1_000 * MS, Some(8.0)).fallback, Some(Fallback::NoCounter));
    }

    /// An unknown or stale speed is no standstill: the fallback holds, unless the system has
    /// no vehicle state and says so (`release: stable_period`).
    #[test]
    fn an_unknown_speed_never_releases_unless_configured() {
        for (release, released) in [(Release::Standstill, false), (Release::StablePeriod, true)] {
            let mut gateway = ActuatorGateway::new(GatewayConfig { release, ..GatewayConfig::default() });
            let mut counter = 0;
            for t in (0..2_000).step_by(20) {
                counter += 1;
                gateway.command(t * MS, &command(BrakeRequest::LEVEL_NONE, 0.0, t / 33 * 33), arbiter(counter));
                gateway.output(t * MS, None);
            }
            assert_eq!(gateway.output(2_000 * MS, None).fallback.is_none(), released, "{release:?}");
        }
    }

    #[test]
    fn a_stronger_valid_command_still_counts_while_latched() {
        let mut gateway = ActuatorGateway::new(GatewayConfig::default());
        let mut counter = 0;
        healthy(&mut gateway, &mut counter, 0, 1_000);
        gateway.output(1_200 * MS, Some(10.0));
        counter += 1;
        gateway.command(1_210 * MS, &command(BrakeRequest::LEVEL_FULL, 9.0, 1_200), arbiter(counter));
        assert_eq!(gateway.output(1_210 * MS, Some(10.0)).decel_mps2, 9.0);
    }

    #[test]
    fn config_checks_name_the_parameter() {
        assert!(GatewayConfig::default().validate().is_ok());
        let bad = GatewayConfig { timeout_ms: 1e9, ..GatewayConfig::default() };
        assert_eq!(bad.validate().unwrap_err().path, "timeout_ms");
        let bad = GatewayConfig { fallback_decel_mps2: f64::NAN, ..GatewayConfig::default() };
        assert_eq!(bad.validate().unwrap_err().path, "fallback_decel_mps2");
    }
}
