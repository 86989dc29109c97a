//! What the monitor node decides from what it hears, without transport: the evidence of each
//! watched node (health reports, liveliness tokens, silence), the arbiter's command stream and
//! the vehicle's standstill go to the [`Supervisor`], and the result is the `SafeStop` state it
//! states, at once on a change and at least every 100 ms.

use crate::supervisor::{
    CommandSeen, CommandWatch, NodeView, Severity, State, Supervisor, SupervisorConfig, Transition, STARTUP,
};
use crate::vehicle::VehicleSpeed;
use reflex_msgs::diagnostic_msgs::{DiagnosticArray, DiagnosticStatus, KeyValue};
use reflex_msgs::reflex_msgs::SafeStop;
use reflex_runtime::health;
use reflex_runtime::spec::InvalidParam;
use serde::Deserialize;
use std::collections::BTreeMap;

/// The monitor states its state at least this often (the arbiter's `supervisor_max_age_s`
/// must allow a few of these).
const SAFE_STOP_PERIOD_NS: i64 = 100_000_000;
/// Diagnostics at least this often.
const DIAGNOSTICS_PERIOD_NS: i64 = 1_000_000_000;

/// A topic the monitor watches itself.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchedTopic {
    pub topic: String,
    pub deadline_ms: f64,
}

/// Parameters of the `monitor` node.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MonitorConfig {
    /// Small topics whose gaps the monitor watches itself (node inputs' own deadlines come with
    /// their health). Never images: each watched message is reassembled in the monitor.
    pub watch: Vec<WatchedTopic>,
    /// Nodes whose health decides: an ERROR in it, its silence, or its disappearance means safe
    /// stop; a WARN degrades.
    pub required_nodes: Vec<String>,
    /// Time after start for required nodes to report, s (the monitor is engaged meanwhile).
    pub startup_grace_s: f64,
    /// A required node silent for longer than this is lost, ms.
    pub health_timeout_ms: f64,
    /// Maximum age (now − capture stamp) of the actuator command, and longest time its capture
    /// stamp may stay the same, ms; 0 turns both checks off (a system without perception).
    pub command_budget_ms: f64,
    /// Longest gap between two commands of the arbiter, ms; 0 turns the check off.
    pub command_deadline_ms: f64,
    pub supervisor: SupervisorConfig,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            watch: Vec::new(),
            required_nodes: Vec::new(),
            startup_grace_s: 5.0,
            health_timeout_ms: 350.0,
            command_budget_ms: 300.0,
            command_deadline_ms: 100.0,
            supervisor: SupervisorConfig::default(),
        }
    }
}

impl MonitorConfig {
    /// Checks the values; names the parameter.
    pub fn validate(&self) -> Result<(), InvalidParam> {
        for (index, watched) in self.watch.iter().enumerate() {
            if !(watched.deadline_ms > 0.0 && watched.deadline_ms <= 60_000.0) || !watched.topic.starts_with('/') {
                return Err(InvalidParam::new(
                    format!("watch[{index}]"),
                    "needs an absolute topic and 0 < deadline_ms <= 60000",
                ));
            }
        }
        let range = |name: &str, value: f64, low: f64, high: f64, open_low: bool| {
            let ok = if open_low { value > low && value <= high } else { (low..=high).contains(&value) };
            if ok {
                Ok(())
            } else {
                Err(InvalidParam::new(
                    name.to_string(),
                    format!("{value} is outside {}{low}, {high}]", if open_low { "(" } else { "[" }),
                ))
            }
        };
        range("startup_grace_s", self.startup_grace_s, 0.0, 600.0, false)?;
        // Nodes report health every 100 ms and the arbiter commands at 50 Hz: limits below
        // 1.5 report periods or 2 command periods would raise a safe stop that never ends.
        range("health_timeout_ms", self.health_timeout_ms, 150.0, 60_000.0, false)?;
        range("command_budget_ms", self.command_budget_ms, 0.0, 60_000.0, false)?;
        if self.command_deadline_ms != 0.0 {
            range("command_deadline_ms", self.command_deadline_ms, 40.0, 60_000.0, false)?;
        }
        self.supervisor.validate()
    }
}

/// Why a health report was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthRefused {
    /// It is no health report (the reason is logged).
    Malformed(String),
    /// A replay, or sent by an instance that is gone before it went.
    Stale,
}

/// What the monitor states after a [`Monitor::step`].
#[derive(Debug)]
pub struct Statement {
    /// The state changes since the last statement (none for a heartbeat).
    pub changes: Vec<Transition>,
    /// Diagnostics are due too.
    pub diagnostics: bool,
}

/// The monitor's decisions; the node feeds it what arrives and publishes what it states.
/// Times are on the duration clock, in ns.
pub struct Monitor {
    supervisor: Supervisor,
    required: Vec<String>,
    views: BTreeMap<String, NodeView>,
    commands: CommandWatch,
    health_timeout_ns: i64,
    grace_ns: i64,
    started_ns: i64,
    speed: VehicleSpeed,
    changes: Vec<Transition>,
    entries: Vec<(String, Severity, String)>,
    last_statement_ns: i64,
    last_diagnostics_ns: i64,
}

impl Monitor {
    /// A monitor named `name`, started at `now_ns`, engaged until every watched node has
    /// reported healthy. `config` must have passed [`MonitorConfig::validate`].
    pub fn new(name: &str, config: &MonitorConfig, now_ns: i64) -> Self {
        // The monitor's own watches come with its own health.
        let mut watched = config.required_nodes.clone();
        if !config.watch.is_empty() && !watched.contains(&name.to_string()) {
            watched.push(name.to_string());
        }
        Self {
            supervisor: Supervisor::new(config.supervisor, now_ns),
            required: config.required_nodes.clone(),
            views: watched.into_iter().map(|n| (n, NodeView::default())).collect(),
            commands: CommandWatch {
                budget_ns: (config.command_budget_ms * 1e6) as i64,
                deadline_ns: (config.command_deadline_ms * 1e6) as i64,
                last_arrival_ns: None,
                last_counter: None,
                last_stamp: None,
                stamp_changed_ns: None,
            },
            health_timeout_ns: (config.health_timeout_ms * 1e6) as i64,
            grace_ns: (config.startup_grace_s * 1e9) as i64,
            started_ns: now_ns,
            speed: VehicleSpeed::default(),
            changes: vec![Transition {
                from: State::Nominal,
                to: State::SafeStop,
                reason: "no evidence yet that the watched nodes are healthy".into(),
                source: STARTUP.into(),
                at_ns: now_ns,
            }],
            entries: Vec::new(),
            last_statement_ns: i64::MIN,
            last_diagnostics_ns: i64::MIN,
        }
    }

    /// The nodes whose health the monitor reads.
    pub fn watched(&self) -> impl Iterator<Item = &str> {
        self.views.keys().map(String::as_str)
    }

    /// The liveliness token of instance `pid` of node `name` went away. Only a `delete` is
    /// news: a token anyone could declare proves nothing (the node's own health report is
    /// what clears its loss).
    pub fn token_gone(&mut self, now_ns: i64, name: &str, pid: u32) {
        let Some(view) = self.views.get_mut(name) else { return };
        if view.token_gone(pid) {
            self.changes.extend(self.supervisor.raise(
                now_ns,
                &format!("{name}: gone"),
                Severity::SafeStop,
                "node gone",
            ));
        }
    }

    /// A health report of watched node `name` that arrived at `arrival_ns`.
    pub fn health(
        &mut self,
        now_ns: i64,
        name: &str,
        message: &DiagnosticArray,
        arrival_ns: i64,
    ) -> Result<(), HealthRefused> {
        let Some(view) = self.views.get_mut(name) else { return Err(HealthRefused::Stale) };
        let report = health::parse(name, message).map_err(|why| HealthRefused::Malformed(why.to_string()))?;
        match view.report(report.pid, report.sequence, arrival_ns) {
            None => return Err(HealthRefused::Stale),
            Some(true) => self.changes.extend(self.supervisor.clear(now_ns, &format!("{name}: gone"))),
            Some(false) => {}
        }
        let prefix = format!("{name}: ");
        self.entries.clear();
        for (what, level, detail) in &report.entries {
            let Some(severity) = Severity::of_health(*level) else { continue };
            self.entries.push((format!("{prefix}{what}"), severity, detail.clone()));
        }
        view.healthy = self.entries.iter().all(|e| e.1 != Severity::SafeStop);
        self.changes.extend(self.supervisor.reconcile(now_ns, &prefix, &self.entries));
        Ok(())
    }

    /// A vehicle state that arrived at `arrival_ns`; false (refused) when its speed is no number.
    pub fn vehicle_state(&mut self, arrival_ns: i64, speed_mps: f64) -> bool {
        self.speed.hear(arrival_ns, speed_mps)
    }

    /// Decides at `now_ns`: silent nodes, the evidence that ends the start-up safe stop, the
    /// arbiter's `commands` that arrived since the last step, and the time-driven steps of the
    /// supervisor. Returns a statement when the state changed or the heartbeat is due.
    pub fn step(&mut self, now_ns: i64, commands: impl Iterator<Item = CommandSeen>) -> Option<Statement> {
        let now = now_ns;
        let in_grace = now.saturating_sub(self.started_ns) < self.grace_ns;
        for (name, view) in &self.views {
            let silent = match view.last_report_ns {
                Some(at) => now.saturating_sub(at) > self.health_timeout_ns,
                None => !in_grace,
            };
            let source = format!("{name}: silent");
            if silent && self.required.contains(name) {
                let reason = if view.last_report_ns.is_some() { "no health report" } else { "never reported" };
                self.changes.extend(self.supervisor.raise(now, &source, Severity::SafeStop, reason));
            } else if self.supervisor.has_fault(&source) {
                self.changes.extend(self.supervisor.clear(now, &source));
            }
        }
        // Evidence: every watched node has reported, healthy, since the monitor started.
        if self.supervisor.has_fault(STARTUP) && self.views.values().all(|v| v.last_report_ns.is_some() && v.healthy) {
            self.changes.extend(self.supervisor.clear(now, STARTUP));
        }
        for seen in commands {
            self.commands.command(&mut self.supervisor, &mut self.changes, now, &seen);
        }
        if !in_grace {
            self.commands.check(&mut self.supervisor, &mut self.changes, now, self.started_ns);
        }
        self.supervisor.set_standstill(self.speed.standstill(now));
        self.changes.extend(self.supervisor.tick(now));
        let heartbeat_due = now.saturating_sub(self.last_statement_ns) >= SAFE_STOP_PERIOD_NS;
        if self.changes.is_empty() && !heartbeat_due {
            return None;
        }
        let diagnostics =
            !self.changes.is_empty() || now.saturating_sub(self.last_diagnostics_ns) >= DIAGNOSTICS_PERIOD_NS;
        if diagnostics {
            self.last_diagnostics_ns = now;
        }
        self.last_statement_ns = now;
        Some(Statement { changes: std::mem::take(&mut self.changes), diagnostics })
    }

    /// Writes the state into `message` (all but its stamp).
    pub fn fill(&self, message: &mut SafeStop) {
        let (reason, source) = self.supervisor.reason();
        message.state = self.supervisor.state() as u8;
        message.engaged = self.supervisor.state() == State::SafeStop;
        message.reason.clear();
        message.reason.push_str(reason);
        message.source.clear();
        message.source.push_str(source);
    }

    /// The diagnostics of monitor `name` that stated `state`: the state and every active fault.
    pub fn diagnostics(&self, name: &str, state: &SafeStop) -> DiagnosticArray {
        diagnostics(name, &self.supervisor, state)
    }
}

fn diagnostics(name: &str, supervisor: &Supervisor, state: &SafeStop) -> DiagnosticArray {
    let level = match supervisor.state() {
        State::Nominal => DiagnosticStatus::OK,
        State::Degraded => DiagnosticStatus::WARN,
        State::SafeStop => DiagnosticStatus::ERROR,
    };
    let values = supervisor
        .active_faults()
        .map(|(source, severity, reason)| KeyValue {
            key: source.to_string(),
            value: format!("{severity:?}: {reason}"),
        })
        .collect();
    DiagnosticArray {
        header: state.header.clone(),
        status: vec![DiagnosticStatus {
            level,
            name: format!("{name}: supervisor"),
            message: format!("{:?}: {} {}", supervisor.state(), state.reason, state.source).trim().to_string(),
            hardware_id: String::new(),
            values,
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reflex_runtime::health::{compose, Entry};
    use reflex_runtime::Level;

    const MS: i64 = 1_000_000;

    fn report(node: &str, pid: u32, sequence: u64, level: Level) -> DiagnosticArray {
        let entry = Entry { name: "input".into(), level, message: "deadline".into(), values: Vec::new() };
        let mut out = DiagnosticArray::default();
        compose(node, "host", pid, sequence, &[entry], &mut out);
        out
    }

    fn state(monitor: &Monitor) -> (u8, String) {
        let mut message = SafeStop::default();
        monitor.fill(&mut message);
        (message.state, message.source)
    }

    /// The decisions without transport, on explicit times: engaged until the required node
    /// reports healthy, a safe stop when it goes silent or reports an error, a heartbeat every
    /// 100 ms in between, and a garbled or replayed report refused.
    #[test]
    fn the_monitor_decides_from_evidence_and_states_on_time() {
        let config = MonitorConfig {
            required_nodes: vec!["aeb".into()],
            startup_grace_s: 1.0,
            command_deadline_ms: 0.0,
            command_budget_ms: 0.0,
            supervisor: SupervisorConfig { release: crate::supervisor::Release::StablePeriod, ..Default::default() },
            ..MonitorConfig::default()
        };
        let mut monitor = Monitor::new("monitor", &config, 0);
        assert_eq!(monitor.watched().collect::<Vec<_>>(), ["aeb"]);
        let first = monitor.step(0, std::iter::empty()).expect("the first step states");
        assert_eq!(first.changes.len(), 1, "the start-up safe stop is news");
        assert!(monitor.step(50 * MS, std::iter::empty()).is_none(), "nothing new, no heartbeat yet");
        assert!(monitor.step(100 * MS, std::iter::empty()).is_some(), "the heartbeat");
        assert_eq!(state(&monitor).0, SafeStop::STATE_SAFE_STOP);
        assert_eq!(monitor.health(110 * MS, "aeb", &report("aeb", 7, 1, Level::Ok), 110 * MS), Ok(()));
        assert_eq!(
            monitor.health(111 * MS, "aeb", &report("aeb", 7, 1, Level::Ok), 111 * MS),
            Err(HealthRefused::Stale)
        );
        let garbled = report("camera", 7, 2, Level::Ok);
        assert!(matches!(monitor.health(112 * MS, "aeb", &garbled, 112 * MS), Err(HealthRefused::Malformed(_))));
        monitor.step(120 * MS, std::iter::empty());
        // Healthy and stable: the start-up fault cleared, the state steps down after the stable period.
        let mut t = 120 * MS;
        let mut sequence = 2;
        while t < 6_000 * MS && state(&monitor).0 != SafeStop::STATE_NOMINAL {
            t += 100 * MS;
            monitor.health(t, "aeb", &report("aeb", 7, sequence, Level::Ok), t).unwrap();
            sequence += 1;
            monitor.step(t, std::iter::empty());
        }
        assert_eq!(state(&monitor).0, SafeStop::STATE_NOMINAL, "nominal after evidence and the stable period");
        // An error in its health: safe stop at once, with the node's input named.
        t += 10 * MS;
        monitor.health(t, "aeb", &report("aeb", 7, sequence, Level::Error), t).unwrap();
        let statement = monitor.step(t, std::iter::empty()).expect("a change states at once");
        assert!(!statement.changes.is_empty() && statement.diagnostics);
        assert_eq!(state(&monitor), (SafeStop::STATE_SAFE_STOP, "aeb: input".to_string()));
        // Silent for longer than health_timeout_ms: a safe stop of its own.
        t += config.health_timeout_ms as i64 * MS + MS;
        monitor.step(t, std::iter::empty());
        assert!(monitor.supervisor.has_fault("aeb: silent"));
    }

    /// M10 and availability: a replay or a report the dead instance sent before its token went
    /// away never ends the loss; a new instance does, and so does the same instance going on
    /// reporting well past the loss (its token lost to a lease expiry while it lived).
    #[test]
    fn a_loss_ends_only_with_evidence_of_a_live_instance() {
        let mut view = NodeView::default();
        assert_eq!(view.report(10, 1, 0), Some(false));
        assert_eq!(view.report(10, 1, 1), None, "a replay");
        assert!(!view.token_gone(9), "an older instance's token");
        assert!(view.token_gone(10));
        assert_eq!(view.report(10, 2, 2), None, "sent before it went");
        assert_eq!(view.report(10, 3, 3), None, "sent before it went");
        assert_eq!(view.report(10, 4, 4), Some(true), "alive after all");
        assert!(view.token_gone(10));
        assert_eq!(view.report(11, 1, 5), Some(true), "a new instance");
        assert_eq!(view.pid, Some(11));
    }
}
