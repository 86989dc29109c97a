//! The supervisor state machine.
//!
//! Each fault has a *source* (a topic, node or reflex name) and a severity. A `SafeStop`
//! fault (a missed deadline on a watched input, a required node gone, a command older than the
//! end-to-end budget, a failed reflex) puts the vehicle in safe stop; a `Degraded` fault (a
//! budget overrun, dropped or undecodable messages) degrades it. A fault clears when its source
//! recovers (`clear`) or, for one-off faults, by itself after `transient_fault_s`. The state
//! steps back only after no fault has been active for `stable_period_s`, and one level at a
//! time (safe stop → degraded → nominal), so a flapping input cannot release the brakes.

use std::collections::BTreeMap;

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

#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SupervisorConfig {
    /// Time without any active fault before the state steps down one level, s.
    pub stable_period_s: f64,
    /// How long a one-off fault (an overrun, a drop) stays active, s.
    pub transient_fault_s: f64,
}

impl Default for SupervisorConfig {
    fn default() -> Self {
        Self { stable_period_s: 2.0, transient_fault_s: 1.0 }
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
    /// When the last fault went away (None while any is active).
    quiet_since_ns: Option<i64>,
}

impl Supervisor {
    pub fn new(config: SupervisorConfig, now_ns: i64) -> Self {
        Self {
            config,
            state: State::Nominal,
            reason: "started".into(),
            source: String::new(),
            faults: BTreeMap::new(),
            quiet_since_ns: Some(now_ns),
        }
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
        let expires = now_ns + (self.config.transient_fault_s * 1e9) as i64;
        self.insert(now_ns, source, severity, reason, Some(expires))
    }

    fn insert(
        &mut self,
        now_ns: i64,
        source: &str,
        severity: Severity,
        reason: &str,
        expires_ns: Option<i64>,
    ) -> Option<Transition> {
        let fault = Fault { severity, reason: reason.to_string(), expires_ns };
        self.faults.insert(source.to_string(), fault);
        self.quiet_since_ns = None;
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

    /// Expires transient faults and steps the state down after a stable period. Call
    /// periodically (the monitor does at its diagnostics rate and on every event).
    pub fn tick(&mut self, now_ns: i64) -> Option<Transition> {
        self.faults.retain(|_, fault| fault.expires_ns.is_none_or(|t| t > now_ns));
        if !self.faults.is_empty() {
            self.quiet_since_ns = None;
            return None;
        }
        let quiet_since = *self.quiet_since_ns.get_or_insert(now_ns);
        let stable = (now_ns - quiet_since) as f64 / 1e9 >= self.config.stable_period_s;
        if stable && self.state > State::Nominal {
            let lower = if self.state == State::SafeStop { State::Degraded } else { State::Nominal };
            // Each step down needs its own stable period.
            self.quiet_since_ns = Some(now_ns);
            return Some(self.go(now_ns, lower, "no fault for the stable period", ""));
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

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn a_missed_deadline_gives_safe_stop_exactly_once_with_its_reason() {
        let mut supervisor = Supervisor::new(SupervisorConfig::default(), 0);
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
        let config = SupervisorConfig::default();
        let mut supervisor = Supervisor::new(config, 0);
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
        let mut supervisor = Supervisor::new(SupervisorConfig::default(), 0);
        let degraded = supervisor.raise_transient(S, "detector", Severity::Degraded, "budget overrun").unwrap();
        assert_eq!(degraded.to, State::Degraded);
        assert_eq!(supervisor.active_faults().count(), 1);
        assert_eq!(supervisor.tick(S + S / 2), None);
        assert_eq!(supervisor.tick(2 * S), None, "expired now; the stable period starts");
        assert_eq!(supervisor.active_faults().count(), 0);
        assert_eq!(supervisor.tick(4 * S).map(|t| t.to), Some(State::Nominal));
    }
}
