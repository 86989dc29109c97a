//! Health as a state, not an edge: every node publishes what is wrong with it *now*, on its own
//! key `<prefix>/_health/<node>` (with access control, only that node may write it), every
//! [`HEALTH_PERIOD`] and at once when something changes. The monitor decides from the latest
//! state of each node; a lost message is repaired by the next one, a flood cannot wipe a fault
//! that is still there, and a restarted monitor learns the whole picture within one period.
//!
//! The message is a `diagnostic_msgs/DiagnosticArray` (so ROS tools read it too): the first
//! status is the node itself (`name: "node"`, its worst level, `hardware_id: "<host>/<pid>"`,
//! values `node`, `pid` and `sequence`), then one per input (`input <topic>`: ERROR while its deadline
//! is missed, WARN for undecodable, rejected or dropped messages in the last second), budget
//! (`budget <name>`: WARN after an overrun in the last second), injected faults (`faults`: WARN
//! while any is set), and whatever the node reports itself ([`StatusHandle::set`]: a failed
//! reflex is ERROR, a rejected camera model WARN).

use reflex_msgs::diagnostic_msgs::{DiagnosticArray, DiagnosticStatus, KeyValue};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often a node states its health even when nothing changed.
pub const HEALTH_PERIOD: Duration = Duration::from_millis(100);

/// How long a transient problem (an undecodable message, an overrun) keeps its WARN.
pub const TROUBLE_HOLD: Duration = Duration::from_secs(1);

/// Severity of one status, as `diagnostic_msgs/DiagnosticStatus` levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Ok,
    /// Degraded: the node works, with less margin.
    Warn,
    /// The node cannot do its job: the monitor stops the vehicle.
    Error,
}

impl Level {
    pub fn diagnostic(self) -> u8 {
        match self {
            Level::Ok => DiagnosticStatus::OK,
            Level::Warn => DiagnosticStatus::WARN,
            Level::Error => DiagnosticStatus::ERROR,
        }
    }

    /// From a received status level; STALE and unknown levels count as errors.
    pub fn from_diagnostic(level: u8) -> Self {
        match level {
            DiagnosticStatus::OK => Level::Ok,
            DiagnosticStatus::WARN => Level::Warn,
            _ => Level::Error,
        }
    }
}

/// Statuses a node reports itself, by name; shared by the node and the handles it gives out.
#[derive(Debug, Default)]
pub(crate) struct Statuses {
    entries: Mutex<BTreeMap<String, (Level, String)>>,
    /// Bumped on every change, so the watchdog publishes at once.
    pub(crate) changes: std::sync::atomic::AtomicU64,
    /// The watchdog thread and the clock it sleeps on, woken by a change.
    pub(crate) watchdog: Mutex<Option<(std::thread::Thread, crate::Clock)>>,
}

impl Statuses {
    fn set(&self, name: &str, level: Level, message: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let changed = match entries.get(name) {
            Some((old_level, old_message)) => *old_level != level || old_message != message,
            None => level != Level::Ok,
        };
        if level == Level::Ok {
            entries.remove(name);
        } else {
            entries.insert(name.to_string(), (level, message.to_string()));
        }
        drop(entries);
        if changed {
            self.changes.fetch_add(1, std::sync::atomic::Ordering::Release);
            self.wake_watchdog();
        }
    }

    /// Wakes the watchdog now: it sleeps parked (wall clock) or on a simulation clock.
    pub(crate) fn wake_watchdog(&self) {
        if let Some((thread, clock)) = self.watchdog.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            thread.unpark();
            clock.set_ns(clock.now_ns());
        }
    }

    pub(crate) fn snapshot(&self) -> Vec<(String, Level, String)> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.iter().map(|(name, (level, message))| (name.clone(), *level, message.clone())).collect()
    }
}

/// Lets code without the node (a reflex, an algorithm's wrapper) report a status of the node.
#[derive(Debug, Clone)]
pub struct StatusHandle {
    pub(crate) statuses: Arc<Statuses>,
}

impl StatusHandle {
    /// Sets status `name` (WARN or ERROR until set back to OK); published with the node's
    /// health at once when it changes.
    pub fn set(&self, name: &str, level: Level, message: &str) {
        self.statuses.set(name, level, message);
    }

    pub fn clear(&self, name: &str) {
        self.set(name, Level::Ok, "");
    }
}

/// One line of a node's health, before it becomes a `DiagnosticStatus`.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub name: String,
    pub level: Level,
    pub message: String,
    pub values: Vec<(String, String)>,
}

/// Builds the health message of `node`: the node's own line (its worst level) and `entries`.
pub fn compose(node: &str, host: &str, pid: u32, sequence: u64, entries: &[Entry], out: &mut DiagnosticArray) {
    let worst = entries.iter().map(|e| e.level).max().unwrap_or(Level::Ok);
    let summary = entries
        .iter()
        .filter(|e| e.level > Level::Ok)
        .map(|e| format!("{}: {}", e.name, e.message))
        .collect::<Vec<_>>()
        .join("; ");
    out.status.clear();
    out.status.push(DiagnosticStatus {
        level: worst.diagnostic(),
        name: "node".into(),
        message: if summary.is_empty() { "ok".into() } else { summary },
        hardware_id: format!("{host}/{pid}"),
        values: vec![
            KeyValue { key: "node".into(), value: node.into() },
            KeyValue { key: "pid".into(), value: pid.to_string() },
            KeyValue { key: "sequence".into(), value: sequence.to_string() },
        ],
    });
    for entry in entries {
        out.status.push(DiagnosticStatus {
            level: entry.level.diagnostic(),
            name: entry.name.clone(),
            message: entry.message.clone(),
            hardware_id: format!("{host}/{pid}"),
            values: entry.values.iter().map(|(k, v)| KeyValue { key: k.clone(), value: v.clone() }).collect(),
        });
    }
}

/// What the monitor reads from a node's health message.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub node: String,
    pub pid: u32,
    pub sequence: u64,
    /// Every status but the node's own line, with its level.
    pub entries: Vec<(String, Level, String)>,
}

/// Reads a health message published on `<prefix>/_health/<expected_node>`. A message whose node
/// line is missing or names another node is refused: a node reports on itself only.
pub fn parse(expected_node: &str, message: &DiagnosticArray) -> Result<Report, String> {
    let (first, rest) = message.status.split_first().ok_or("empty health message")?;
    if first.name != "node" {
        return Err(format!("health message starts with {:?}, not the node's line", first.name));
    }
    let value = |key: &str| first.values.iter().find(|kv| kv.key == key).map(|kv| kv.value.as_str());
    let node = value("node").ok_or("health message without the node's name")?;
    if node != expected_node {
        return Err(format!("health of {node:?} on the key of {expected_node:?}"));
    }
    let pid = value("pid").and_then(|p| p.parse().ok()).ok_or("health message without a pid")?;
    let sequence = value("sequence").and_then(|s| s.parse().ok()).ok_or("health message without a sequence")?;
    let mut entries: Vec<(String, Level, String)> =
        rest.iter().map(|s| (s.name.clone(), Level::from_diagnostic(s.level), s.message.clone())).collect();
    // The node's own worst level counts even if a line is missing (a node that says ERROR
    // without saying why is still in error).
    let worst = Level::from_diagnostic(first.level);
    if worst > entries.iter().map(|e| e.1).max().unwrap_or(Level::Ok) {
        entries.push(("node".into(), worst, first.message.clone()));
    }
    Ok(Report { node: node.to_string(), pid, sequence, entries })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_round_trips_and_refuses_another_nodes_report() {
        let entries = vec![
            Entry { name: "input /a".into(), level: Level::Ok, message: "ok".into(), values: vec![] },
            Entry {
                name: "input /b".into(),
                level: Level::Error,
                message: "no message for 250 ms".into(),
                values: vec![("deadline_ms".into(), "100".into())],
            },
        ];
        let mut message = DiagnosticArray::default();
        compose("detector", "car", 42, 7, &entries, &mut message);
        assert_eq!(message.status[0].level, DiagnosticStatus::ERROR, "the node's line is its worst");
        let report = parse("detector", &message).unwrap();
        assert_eq!((report.pid, report.sequence), (42, 7));
        assert_eq!(report.entries[1], ("input /b".into(), Level::Error, "no message for 250 ms".into()));
        assert!(parse("aeb", &message).unwrap_err().contains("health of \"detector\""));
        let mut liar = message.clone();
        liar.status[0].level = DiagnosticStatus::STALE;
        liar.status.truncate(1);
        assert_eq!(parse("detector", &liar).unwrap().entries[0].1, Level::Error, "stale counts as error");
        assert!(parse("detector", &DiagnosticArray::default()).is_err());
    }

    #[test]
    fn statuses_change_only_when_they_differ() {
        let statuses = Statuses::default();
        statuses.set("camera model", Level::Warn, "NaN in K");
        statuses.set("camera model", Level::Warn, "NaN in K");
        assert_eq!(statuses.changes.load(std::sync::atomic::Ordering::Acquire), 1);
        statuses.set("camera model", Level::Ok, "");
        assert!(statuses.snapshot().is_empty());
        assert_eq!(statuses.changes.load(std::sync::atomic::Ordering::Acquire), 2);
    }
}
