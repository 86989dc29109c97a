//! The supervisor state machine.
//!
//! Each fault has a *source* (a node's input, a node, the command stream) and a severity. A
//! `SafeStop` fault (a missed deadline, a node gone or silent, a command older than the
//! end-to-end budget, a failed reflex) puts the vehicle in safe stop; a `Degraded` fault (a
//! budget overrun, dropped or undecodable messages, an injected fault) degrades it. A fault
//! clears when its source recovers (`clear`, or a node's next health report without it) or,
//! for one-off faults, by itself after `transient_fault_s`.
//!
//! The supervisor **starts engaged**: a monitor that was just (re)started knows nothing yet,
//! so it holds the safe stop (the `STARTUP` fault) until its caller has evidence that every
//! watched node is healthy. The state steps back only after no fault has been active for
//! `stable_period_s`, one level at a time (safe stop → degraded → nominal), and a safe stop
//! **latches until the vehicle stands still** (`release: standstill`, the default) or, where
//! no vehicle state exists, until the stable period alone has passed (`release:
//! stable_period`). So a flapping input, a clock step or a restart cannot release the brakes
//! of a moving vehicle.

use crate::actuator::Counter;
use reflex_runtime::spec::InvalidParam;
use reflex_runtime::Level;
use std::collections::BTreeMap;

/// The source of the fault every supervisor starts with: no evidence yet.
pub const STARTUP: &str = "monitor start";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    Nominal = 0,
    Degraded = 1,
    SafeStop = 2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Degraded,
    SafeStop,
}

/// When a safe stop may end (besides a stable period without faults).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Release {
    /// Only once the vehicle stands still (speed under 0.1 m/s on a fresh `/vehicle/state`).
    #[default]
    Standstill,
    /// After the stable period alone: for systems without a vehicle state (a fixed robot cell).
    StablePeriod,
}

#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SupervisorConfig {
    /// Time without any active fault before the state steps down one level, s.
    pub stable_period_s: f64,
    /// How long a one-off fault (an overrun, a drop) stays active, s.
    pub transient_fault_s: f64,
    /// When a safe stop may end.
    pub release: Release,
}

impl Default for SupervisorConfig {
    fn default() -> Self {
        Self { stable_period_s: 2.0, transient_fault_s: 1.0, release: Release::Standstill }
    }
}

impl SupervisorConfig {
    /// Checks the values; names the parameter.
    pub fn validate(&self) -> Result<(), InvalidParam> {
        if !(self.stable_period_s > 0.0 && self.stable_period_s <= 600.0) {
            return Err(InvalidParam::new("supervisor.stable_period_s", "must be in (0, 600] s"));
        }
        if !(self.transient_fault_s > 0.0 && self.transient_fault_s <= 600.0) {
            return Err(InvalidParam::new("supervisor.transient_fault_s", "must be in (0, 600] s"));
        }
        Ok(())
    }
}

/// A change of state, to publish as `reflex_msgs/SafeStop` and diagnostics.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub from: State,
    pub to: State,
    pub reason: String,
    pub source: String,
    pub at_ns: i64,
}

#[derive(Debug, Clone)]
struct Fault {
    severity: Severity,
    reason: String,
    /// Persistent faults stay until cleared; transient ones expire at this time.
    expires_ns: Option<i64>,
}

pub struct Supervisor {
    config: SupervisorConfig,
    state: State,
    reason: String,
    source: String,
    faults: BTreeMap<String, Fault>,
    /// Since when no safe-stop fault has been active (None while one is) ...
    calm_since_ns: Option<i64>,
    /// ... and since when no fault at all has been (None while any is).
    quiet_since_ns: Option<i64>,
    /// Whether the vehicle stands still, as the caller last said.
    standstill: bool,
}

impl Supervisor {
    /// A supervisor engaged in safe stop by the [`STARTUP`] fault, which its caller clears once
    /// it has evidence that all is well.
    pub fn new(config: SupervisorConfig, now_ns: i64) -> Self {
        let mut supervisor = Self {
            config,
            state: State::Nominal,
            reason: String::new(),
            source: String::new(),
            faults: BTreeMap::new(),
            calm_since_ns: None,
            quiet_since_ns: None,
            standstill: false,
        };
        supervisor.raise(now_ns, STARTUP, Severity::SafeStop, "no evidence yet that the watched nodes are healthy");
        supervisor
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// Why the state is what it is, and what it concerns.
    pub fn reason(&self) -> (&str, &str) {
        (&self.reason, &self.source)
    }

    /// Sources with an active fault.
    pub fn active_faults(&self) -> impl Iterator<Item = (&str, Severity, &str)> {
        self.faults.iter().map(|(source, fault)| (source.as_str(), fault.severity, fault.reason.as_str()))
    }

    pub fn has_fault(&self, source: &str) -> bool {
        self.faults.contains_key(source)
    }

    /// Whether the vehicle stands still (a safe stop may end only then, unless
    /// `release: stable_period`).
    pub fn set_standstill(&mut self, standstill: bool) {
        self.standstill = standstill;
    }

    /// A fault that lasts until [`Supervisor::clear`] for the same source.
    pub fn raise(&mut self, now_ns: i64, source: &str, severity: Severity, reason: &str) -> Option<Transition> {
        self.insert(now_ns, source, severity, reason, None)
    }

    /// A fault that clears itself after `transient_fault_s`.
    pub fn raise_transient(
        &mut self,
        now_ns: i64,
        source: &str,
        severity: Severity,
        reason: &str,
    ) -> Option<Transition> {
        let hold = (self.config.transient_fault_s.clamp(0.0, 600.0) * 1e9) as i64;
        self.insert(now_ns, source, severity, reason, Some(now_ns.saturating_add(hold)))
    }

    fn insert(
        &mut self,
        now_ns: i64,
        source: &str,
        severity: Severity,
        reason: &str,
        expires_ns: Option<i64>,
    ) -> Option<Transition> {
        match self.faults.get_mut(source) {
            // Keep the allocation: the same fault is raised again at the message rate.
            Some(fault) => {
                fault.severity = severity;
                fault.expires_ns = expires_ns;
                if fault.reason != reason {
                    fault.reason.clear();
                    fault.reason.push_str(reason);
                }
            }
            None => {
                self.faults.insert(source.to_string(), Fault { severity, reason: reason.to_string(), expires_ns });
            }
        }
        self.quiet_since_ns = None;
        if severity == Severity::SafeStop {
            self.calm_since_ns = None;
        }
        let wanted = match severity {
            Severity::SafeStop => State::SafeStop,
            Severity::Degraded => State::Degraded,
        };
        (wanted > self.state).then(|| self.go(now_ns, wanted, reason, source))
    }

    /// The source recovered (messages arrive again, the node is back).
    pub fn clear(&mut self, now_ns: i64, source: &str) -> Option<Transition> {
        self.faults.remove(source);
        self.tick(now_ns)
    }

    /// Makes the persistent faults whose source starts with `prefix` exactly `faults`: the ones
    /// a node's latest health report names, so whatever it no longer names is cleared.
    pub fn reconcile(&mut self, now_ns: i64, prefix: &str, faults: &[(String, Severity, String)]) -> Vec<Transition> {
        self.faults.retain(|source, fault| {
            !(source.starts_with(prefix) && fault.expires_ns.is_none() && !faults.iter().any(|f| &f.0 == source))
        });
        let mut changes: Vec<Transition> = Vec::new();
        for (source, severity, reason) in faults {
            changes.extend(self.raise(now_ns, source, *severity, reason));
        }
        changes.extend(self.tick(now_ns));
        changes
    }

    /// Expires transient faults and steps the state down after a stable period, one level at
    /// a time: from safe stop once no safe-stop fault has been active for the stable period
    /// (and, with `release: standstill`, the vehicle stands still), from degraded once no fault
    /// at all has been. Call periodically.
    pub fn tick(&mut self, now_ns: i64) -> Option<Transition> {
        self.faults.retain(|_, fault| fault.expires_ns.is_none_or(|t| t > now_ns));
        let severe = self.faults.values().any(|f| f.severity == Severity::SafeStop);
        if severe {
            self.calm_since_ns = None;
        }
        if !self.faults.is_empty() {
            self.quiet_since_ns = None;
        }
        let stable = |since: Option<i64>| {
            since.is_some_and(|t| now_ns.saturating_sub(t) as f64 / 1e9 >= self.config.stable_period_s)
        };
        match self.state {
            State::SafeStop if !severe => {
                let since = *self.calm_since_ns.get_or_insert(now_ns);
                let latched = self.config.release == Release::Standstill && !self.standstill;
                if stable(Some(since)) && !latched {
                    // Degraded needs its own stable period.
                    self.quiet_since_ns = self.faults.is_empty().then_some(now_ns);
                    let reason = if self.config.release == Release::Standstill {
                        "no safe-stop fault for the stable period, vehicle at a standstill"
                    } else {
                        "no safe-stop fault for the stable period"
                    };
                    return Some(self.go(now_ns, State::Degraded, reason, ""));
                }
            }
            State::Degraded if self.faults.is_empty() => {
                let since = *self.quiet_since_ns.get_or_insert(now_ns);
                if stable(Some(since)) {
                    return Some(self.go(now_ns, State::Nominal, "no fault for the stable period", ""));
                }
            }
            _ => {}
        }
        None
    }

    fn go(&mut self, now_ns: i64, to: State, reason: &str, source: &str) -> Transition {
        let transition =
            Transition { from: self.state, to, reason: reason.to_string(), source: source.to_string(), at_ns: now_ns };
        self.state = to;
        self.reason = reason.to_string();
        self.source = source.to_string();
        transition
    }
}

// What the monitor concludes from what it sees: health reports and tokens of the watched
// nodes, and the arbiter's command stream. The node only feeds these from its topics.

/// A command stamped more than this in the future (beyond clock noise) is a lie or a broken clock.
const FUTURE_TOLERANCE_NS: i64 = 50_000_000;

impl Severity {
    /// What a health entry of a watched node means for the vehicle: a warning degrades, an
    /// error stops; `Ok` is no fault.
    pub fn of_health(level: Level) -> Option<Severity> {
        match level {
            Level::Ok => None,
            Level::Warn => Some(Severity::Degraded),
            Level::Error => Some(Severity::SafeStop),
        }
    }
}

/// What the monitor knows of one required node.
#[derive(Default)]
pub(crate) struct NodeView {
    /// Duration-clock arrival of its last valid health report, its pid and sequence.
    pub(crate) last_report_ns: Option<i64>,
    pub(crate) pid: Option<u32>,
    pub(crate) sequence: u64,
    /// Healthy (no ERROR) in its last report.
    pub(crate) healthy: bool,
    /// The pid whose liveliness token went away and its last sequence then, while neither a
    /// newer instance nor this one (well past that sequence) has reported.
    pub(crate) gone: Option<(u32, u64)>,
}

/// Reports of an instance whose token went away that say nothing: those it may have sent
/// before it died. A live one (its token lost to a lease expiry under load) is believed again
/// from its `GONE_REPORTS_IGNORED + 1`-th next report on; the safe stop it raised stays latched.
const GONE_REPORTS_IGNORED: u64 = 2;

impl NodeView {
    /// The liveliness token of instance `pid` went away: whether that is a loss (it is the
    /// current instance, or none has reported yet). A late `delete` of an older instance says
    /// nothing about the current one.
    pub(crate) fn token_gone(&mut self, pid: u32) -> bool {
        let current = self.pid.is_none_or(|current| current == pid);
        if current {
            self.gone = Some((pid, self.sequence));
        }
        current
    }

    /// A health report of instance `pid` with `sequence` arrived at `arrival_ns`: `None` when
    /// it is refused (a replay, or sent by a gone instance before it went), else whether it
    /// ended a loss.
    pub(crate) fn report(&mut self, pid: u32, sequence: u64, arrival_ns: i64) -> Option<bool> {
        let from_gone =
            self.gone.is_some_and(|(gone, last)| gone == pid && sequence <= last.saturating_add(GONE_REPORTS_IGNORED));
        if from_gone || (self.pid == Some(pid) && sequence <= self.sequence) {
            return None;
        }
        self.pid = Some(pid);
        self.sequence = sequence;
        self.last_report_ns = Some(arrival_ns);
        Some(self.gone.take().is_some())
    }
}

/// One command of the arbiter as the monitor saw it.
pub struct CommandSeen {
    /// Arrival on the duration clock.
    pub arrival_ns: i64,
    pub counter: Option<Counter>,
    /// The capture stamp it carries.
    pub stamp_ns: i64,
    /// Its age since capture, when the clock allows one.
    pub age_ns: Option<i64>,
}

/// The commands the monitor checks: the arbiter's output stream.
pub(crate) struct CommandWatch {
    pub(crate) budget_ns: i64,
    pub(crate) deadline_ns: i64,
    pub(crate) last_arrival_ns: Option<i64>,
    pub(crate) last_counter: Option<Counter>,
    pub(crate) last_stamp: Option<i64>,
    pub(crate) stamp_changed_ns: Option<i64>,
}

impl CommandWatch {
    /// Checks one command; faults go to `supervisor`.
    pub(crate) fn command(
        &mut self,
        supervisor: &mut Supervisor,
        changes: &mut Vec<Transition>,
        now: i64,
        seen: &CommandSeen,
    ) {
        // A new publisher after a silence is a restarted arbiter (its counter starts again);
        // the silence itself has already raised "command stream".
        let silence_ns = if self.deadline_ns > 0 { self.deadline_ns } else { 100_000_000 };
        let silent = self.last_arrival_ns.is_none_or(|at| seen.arrival_ns.saturating_sub(at) > silence_ns);
        self.last_arrival_ns = Some(seen.arrival_ns);
        if let Some(counter) = seen.counter {
            let went_back = self.last_counter.is_some_and(|last| {
                if last.publisher == counter.publisher {
                    counter.value <= last.value
                } else {
                    !silent
                }
            });
            if went_back {
                changes.extend(supervisor.raise_transient(
                    now,
                    "command counter",
                    Severity::SafeStop,
                    "the arbiter's command counter went back (a replay, or a second sender)",
                ));
            }
            self.last_counter = Some(counter);
        }
        if self.budget_ns == 0 {
            return;
        }
        let stamp = seen.stamp_ns;
        if self.last_stamp != Some(stamp) && stamp != 0 {
            self.stamp_changed_ns = Some(seen.arrival_ns);
        }
        self.last_stamp = Some(stamp);
        match seen.age_ns {
            _ if stamp == 0 => {}
            Some(age) if age > self.budget_ns => changes.extend(supervisor.raise_transient(
                now,
                "command age",
                Severity::SafeStop,
                "command older than its budget",
            )),
            Some(age) if age < -FUTURE_TOLERANCE_NS => changes.extend(supervisor.raise_transient(
                now,
                "command age",
                Severity::SafeStop,
                "command stamped in the future",
            )),
            _ => {}
        }
    }

    /// The stream's own state: silent, or its capture stamp standing still.
    pub(crate) fn check(&self, supervisor: &mut Supervisor, changes: &mut Vec<Transition>, now: i64, since_ns: i64) {
        let older = |at: Option<i64>, limit: i64| now.saturating_sub(at.unwrap_or(since_ns)) > limit;
        if self.deadline_ns > 0 && older(self.last_arrival_ns, self.deadline_ns) {
            changes.extend(supervisor.raise(
                now,
                "command stream",
                Severity::SafeStop,
                "the arbiter's commands stopped",
            ));
        } else if supervisor.has_fault("command stream") {
            changes.extend(supervisor.clear(now, "command stream"));
        }
        if self.budget_ns > 0 && older(self.stamp_changed_ns, self.budget_ns) {
            changes.extend(supervisor.raise(
                now,
                "command stamp",
                Severity::SafeStop,
                "the commands' capture stamp stopped advancing",
            ));
        } else if supervisor.has_fault("command stamp") {
            changes.extend(supervisor.clear(now, "command stamp"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    /// A supervisor past its start: evidence came at 0, the stable periods passed at a standstill.
    fn nominal(config: SupervisorConfig) -> Supervisor {
        let mut supervisor = Supervisor::new(config, -10 * S);
        supervisor.set_standstill(true);
        supervisor.clear(-10 * S, STARTUP);
        supervisor.tick(-5 * S);
        supervisor.tick(0);
        assert_eq!(supervisor.state(), State::Nominal);
        supervisor.set_standstill(false);
        supervisor
    }

    #[test]
    fn a_missed_deadline_gives_safe_stop_exactly_once_with_its_reason() {
        let mut supervisor = nominal(SupervisorConfig::default());
        let first = supervisor.raise(S, "/perception/detections", Severity::SafeStop, "deadline missed").unwrap();
        assert_eq!((first.from, first.to), (State::Nominal, State::SafeStop));
        assert_eq!((first.reason.as_str(), first.source.as_str()), ("deadline missed", "/perception/detections"));
        // The same breach reported again, and another, lesser fault: no new transition.
        assert_eq!(supervisor.raise(S + 1, "/perception/detections", Severity::SafeStop, "deadline missed"), None);
        assert_eq!(supervisor.raise_transient(S + 2, "aeb", Severity::Degraded, "budget overrun"), None);
        assert_eq!(supervisor.state(), State::SafeStop);
    }

    #[test]
    fn recovery_only_after_a_stable_period_and_one_level_at_a_time() {
        let config = SupervisorConfig { release: Release::StablePeriod, ..SupervisorConfig::default() };
        let mut supervisor = nominal(config);
        supervisor.raise(S, "/camera/image", Severity::SafeStop, "deadline missed");
        assert_eq!(supervisor.clear(2 * S, "/camera/image"), None, "cleared, but not stable yet");
        assert_eq!(supervisor.tick(3 * S), None);
        // The input flaps: the stable period starts again.
        supervisor.raise(3 * S + 1, "/camera/image", Severity::SafeStop, "deadline missed");
        supervisor.clear(3 * S + 2, "/camera/image");
        assert_eq!(supervisor.tick(5 * S), None, "1.99 s after the last fault");
        let step = supervisor.tick(5 * S + 2).unwrap();
        assert_eq!((step.from, step.to), (State::SafeStop, State::Degraded));
        assert_eq!(supervisor.tick(6 * S), None, "degraded needs its own stable period");
        let step = supervisor.tick(7 * S + 2).unwrap();
        assert_eq!((step.from, step.to), (State::Degraded, State::Nominal));
    }

    #[test]
    fn transient_faults_expire_by_themselves() {
        let mut supervisor = nominal(SupervisorConfig::default());
        let degraded = supervisor.raise_transient(S, "detector", Severity::Degraded, "budget overrun").unwrap();
        assert_eq!(degraded.to, State::Degraded);
        assert_eq!(supervisor.active_faults().count(), 1);
        assert_eq!(supervisor.tick(S + S / 2), None);
        assert_eq!(supervisor.tick(2 * S), None, "expired now; the stable period starts");
        assert_eq!(supervisor.active_faults().count(), 0);
        assert_eq!(supervisor.tick(4 * S).map(|t| t.to), Some(State::Nominal));
    }

    /// H3: a (re)started supervisor is engaged until its caller has evidence; the evidence
    /// alone does not release a moving vehicle.
    #[test]
    fn a_new_supervisor_starts_engaged_and_holds_until_evidence_and_standstill() {
        let mut supervisor = Supervisor::new(SupervisorConfig::default(), 0);
        assert_eq!(supervisor.state(), State::SafeStop, "engaged from the first instant");
        assert_eq!(supervisor.tick(100 * S), None, "no evidence: held for ever");
        supervisor.clear(100 * S, STARTUP);
        assert_eq!(supervisor.tick(110 * S), None, "moving: latched");
        supervisor.set_standstill(true);
        assert_eq!(supervisor.tick(110 * S).map(|t| t.to), Some(State::Degraded));
    }

    /// Property 6: a safe stop latches until the vehicle stands still instead of flapping.
    #[test]
    fn a_safe_stop_latches_until_standstill() {
        let mut supervisor = nominal(SupervisorConfig::default());
        supervisor.raise(S, "/camera/image", Severity::SafeStop, "deadline missed");
        supervisor.clear(S + 1, "/camera/image");
        for t in 2..30 {
            assert_eq!(supervisor.tick(t * S), None, "still moving at {t} s: held");
        }
        assert_eq!(supervisor.state(), State::SafeStop);
        supervisor.set_standstill(true);
        assert_eq!(supervisor.tick(30 * S).map(|t| t.to), Some(State::Degraded));
    }

    /// A lasting warning (degraded) does not hold a safe stop: the state steps down to
    /// degraded and stays there while the warning lasts.
    #[test]
    fn a_lasting_warning_keeps_degraded_but_does_not_hold_a_safe_stop() {
        let config = SupervisorConfig { release: Release::StablePeriod, ..SupervisorConfig::default() };
        let mut supervisor = nominal(config);
        supervisor.raise(S, "aeb: vehicle state", Severity::Degraded, "stale");
        supervisor.raise(S, "/camera/image", Severity::SafeStop, "deadline missed");
        supervisor.clear(2 * S, "/camera/image");
        assert_eq!(supervisor.tick(4 * S + 1).map(|t| t.to), Some(State::Degraded));
        assert_eq!(supervisor.tick(20 * S), None, "degraded while the warning lasts");
        supervisor.clear(20 * S, "aeb: vehicle state");
        assert_eq!(supervisor.tick(22 * S).map(|t| t.to), Some(State::Nominal));
    }

    #[test]
    fn reconcile_clears_what_a_node_no_longer_reports() {
        let config = SupervisorConfig { release: Release::StablePeriod, ..SupervisorConfig::default() };
        let mut supervisor = nominal(config);
        let bad = [("aeb: input /d".to_string(), Severity::SafeStop, "missed".to_string())];
        let changes = supervisor.reconcile(S, "aeb: ", &bad);
        assert_eq!(changes[0].to, State::SafeStop);
        supervisor.raise(S, "detector: input /i", Severity::SafeStop, "missed");
        supervisor.reconcile(2 * S, "aeb: ", &[]);
        assert!(!supervisor.has_fault("aeb: input /d"));
        assert!(supervisor.has_fault("detector: input /i"), "another node's fault stays");
    }

    #[test]
    fn config_checks_name_the_parameter() {
        let bad = SupervisorConfig { transient_fault_s: 0.0, ..SupervisorConfig::default() };
        assert_eq!(bad.validate().unwrap_err().path, "supervisor.transient_fault_s");
        let bad = SupervisorConfig { stable_period_s: f64::NAN, ..SupervisorConfig::default() };
        assert_eq!(bad.validate().unwrap_err().path, "supervisor.stable_period_s");
    }
}
