//! The watchdog thread: input deadlines and callback budgets checked on the node's duration
//! clock, and the node's health published periodically and on every change.

use crate::health::{HEALTH_PERIOD, TROUBLE_HOLD};
use crate::node::*;
use crate::timing::LatencyHistogram;
use reflex_msgs::reflex_msgs::MonitorEvent;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A topic watched for deadline breaches (see [`Node::watch_deadline`]).
pub struct DeadlineWatch {
    pub(crate) _subscriber: zenoh::pubsub::Subscriber<()>,
    pub(crate) _watch: Arc<InputWatch>,
}

/// What went wrong with an input's messages lately (for its line in the node's health).
#[derive(Clone, Copy)]
pub(crate) enum Trouble {
    Undecodable = 1,
    Dropped = 2,
    Rejected = 3,
}

pub(crate) struct InputWatch {
    pub(crate) topic: String,
    /// 0: no deadline.
    pub(crate) deadline_ns: i64,
    /// Duration-clock arrival of the last message that decoded (armed at subscription).
    pub(crate) last_arrival_ns: AtomicI64,
    pub(crate) missed: AtomicBool,
    /// Duration-clock time of the last undecodable, rejected or dropped message (`i64::MIN`:
    /// none), what it was, and how many there were in all.
    pub(crate) last_trouble_ns: AtomicI64,
    pub(crate) trouble_kind: AtomicU8,
    pub(crate) troubles: AtomicU64,
}

impl InputWatch {
    pub(crate) fn new(topic: &str, deadline_ms: Option<f64>, now_ns: i64) -> Self {
        Self {
            topic: topic.to_string(),
            deadline_ns: deadline_ms.map_or(0, |ms| (ms * 1e6).clamp(0.0, i64::MAX as f64) as i64),
            // The deadline is armed from the moment of subscription, not from the first message.
            last_arrival_ns: AtomicI64::new(now_ns),
            missed: AtomicBool::new(false),
            last_trouble_ns: AtomicI64::new(i64::MIN),
            trouble_kind: AtomicU8::new(0),
            troubles: AtomicU64::new(0),
        }
    }

    /// A message that counts arrived at `at_ns`.
    pub(crate) fn fresh(&self, at_ns: i64) {
        // Relaxed: the watchdog only compares times; no other data hangs off this store.
        self.last_arrival_ns.fetch_max(at_ns, Ordering::Relaxed);
    }

    pub(crate) fn trouble(&self, kind: Trouble, at_ns: i64) {
        self.trouble_kind.store(kind as u8, Ordering::Relaxed);
        self.troubles.fetch_add(1, Ordering::Relaxed);
        self.last_trouble_ns.store(at_ns, Ordering::Relaxed);
    }
}

pub(crate) struct BudgetWatch {
    pub(crate) name: String,
    pub(crate) limit_ns: i64,
    /// Start of the run in progress (duration clock); 0 when idle.
    pub(crate) running_since_ns: AtomicI64,
    /// The run in progress was already reported.
    pub(crate) reported: AtomicBool,
    /// When the last overrun ended or was seen (`i64::MIN`: never).
    pub(crate) last_overrun_ns: AtomicI64,
}

/// An execution budget for one callback (see [`Node::budget`]).
pub struct Budget {
    pub(crate) watch: Arc<BudgetWatch>,
    pub(crate) shared: Arc<NodeShared>,
    pub(crate) runs: u64,
    pub(crate) overruns: u64,
    pub(crate) run_time: LatencyHistogram,
}

impl Budget {
    /// Runs `callback`, measuring it against the budget.
    pub fn run<R>(&mut self, callback: impl FnOnce() -> R) -> R {
        let start = self.shared.clock.mono_ns();
        self.watch.reported.store(false, Ordering::Relaxed);
        // Release: the watchdog that reads a non-zero start also sees `reported` cleared.
        self.watch.running_since_ns.store(start.max(1), Ordering::Release);
        let result = callback();
        self.watch.running_since_ns.store(0, Ordering::Release);
        let end = self.shared.clock.mono_ns();
        let elapsed = end.saturating_sub(start);
        self.runs += 1;
        self.run_time.record_ns(elapsed);
        if elapsed > self.watch.limit_ns {
            self.overruns += 1;
            self.watch.last_overrun_ns.store(end, Ordering::Relaxed);
            // The watchdog may already have reported this run while it was still going.
            if !self.watch.reported.swap(true, Ordering::AcqRel) {
                self.shared.report(
                    MonitorEvent::KIND_BUDGET_OVERRUN,
                    &self.watch.name,
                    elapsed as f64 / 1e6,
                    self.watch.limit_ns as f64 / 1e6,
                    "callback exceeded its budget",
                );
            }
        }
        result
    }

    pub fn runs(&self) -> u64 {
        self.runs
    }

    pub fn overruns(&self) -> u64 {
        self.overruns
    }

    pub fn run_time(&self) -> &LatencyHistogram {
        &self.run_time
    }
}

/// Checks deadlines and running budgets at the moment they expire, on the node's duration
/// clock, and publishes the node's health every [`HEALTH_PERIOD`] and at once on a change.
pub(crate) fn watchdog(shared: &NodeShared) {
    let period = HEALTH_PERIOD.as_nanos() as i64;
    let mut next_health = i64::MIN;
    let mut seen_status_changes = u64::MAX;
    let mut previous_trouble = false;
    while !shared.stopping.load(Ordering::Acquire) {
        // Reading the stamp clock too is how a step of the wall clock gets noticed.
        let (_, now) = shared.clock.now_and_mono_ns();
        let mut next_check = now.saturating_add(WATCHDOG_BACKSTOP.as_nanos() as i64);
        let mut changed = false;
        let mut trouble = false;
        {
            let mut watch = shared.watch.lock().unwrap_or_else(|p| p.into_inner());
            // Entries only the list still holds belong to dropped subscribers and budgets.
            watch.inputs.retain(|input| Arc::strong_count(input) > 1);
            watch.budgets.retain(|budget| Arc::strong_count(budget) > 1);
            for input in &watch.inputs {
                let trouble_at = input.last_trouble_ns.load(Ordering::Relaxed);
                if trouble_at != i64::MIN && now.saturating_sub(trouble_at) <= TROUBLE_HOLD.as_nanos() as i64 {
                    trouble = true;
                }
                if input.deadline_ns == 0 {
                    continue;
                }
                let last = input.last_arrival_ns.load(Ordering::Relaxed);
                let expiry = last.saturating_add(input.deadline_ns);
                if now >= expiry {
                    if !input.missed.swap(true, Ordering::Relaxed) {
                        changed = true;
                        shared.report(
                            MonitorEvent::KIND_DEADLINE_MISSED,
                            &input.topic,
                            now.saturating_sub(last) as f64 / 1e6,
                            input.deadline_ns as f64 / 1e6,
                            "no message within the deadline",
                        );
                    }
                } else {
                    if input.missed.swap(false, Ordering::Relaxed) {
                        changed = true;
                        shared.report(
                            MonitorEvent::KIND_RECOVERED,
                            &input.topic,
                            0.0,
                            input.deadline_ns as f64 / 1e6,
                            "messages arrive again",
                        );
                    }
                    next_check = next_check.min(expiry);
                }
            }
            for budget in &watch.budgets {
                let overrun_at = budget.last_overrun_ns.load(Ordering::Relaxed);
                if overrun_at != i64::MIN && now.saturating_sub(overrun_at) <= TROUBLE_HOLD.as_nanos() as i64 {
                    trouble = true;
                }
                // Acquire pairs with the Release in `Budget::run`.
                let since = budget.running_since_ns.load(Ordering::Acquire);
                if since == 0 {
                    continue;
                }
                let expiry = since.saturating_add(budget.limit_ns);
                if now > expiry {
                    if !budget.reported.swap(true, Ordering::AcqRel) {
                        changed = true;
                        budget.last_overrun_ns.store(now, Ordering::Relaxed);
                        shared.report(
                            MonitorEvent::KIND_BUDGET_OVERRUN,
                            &budget.name,
                            now.saturating_sub(since) as f64 / 1e6,
                            budget.limit_ns as f64 / 1e6,
                            "callback still running past its budget",
                        );
                    }
                } else {
                    next_check = next_check.min(expiry.saturating_add(1));
                }
            }
        }
        let status_changes = shared.statuses.changes.load(Ordering::Acquire);
        if status_changes != seen_status_changes {
            seen_status_changes = status_changes;
            changed = true;
        }
        if trouble && !previous_trouble {
            changed = true;
        }
        previous_trouble = trouble;
        if changed || now >= next_health {
            shared.publish_health(now);
            next_health = now.saturating_add(period);
        }
        next_check = next_check.min(next_health);
        if shared.clock.is_sim() {
            shared.clock.sleep_until(next_check, WATCHDOG_BACKSTOP);
        } else {
            let left = next_check.saturating_sub(shared.clock.mono_ns());
            if left > 0 {
                std::thread::park_timeout(Duration::from_nanos(left as u64));
            }
        }
    }
}
