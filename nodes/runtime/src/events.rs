//! How a node reports: `MonitorEvent`s on /reflex/events, and counts reported at most once a
//! period.

use crate::node::*;
use reflex_msgs::reflex_msgs::MonitorEvent;

/// Publishes `MonitorEvent`s. Events are rare (a breach, a recovery), so a lock is fine here.
pub(crate) struct EventSink {
    pub(crate) publisher: zenoh::pubsub::Publisher<'static>,
    pub(crate) message: MonitorEvent,
    pub(crate) buffer: Vec<u8>,
}

/// A count of something reported at most once per period.
#[derive(Default)]
pub(crate) struct RateLimited {
    pub(crate) count: u64,
    pub(crate) last_report_ns: Option<i64>,
}

impl RateLimited {
    /// Counts one; returns the total when it is time to report it.
    pub(crate) fn count(&mut self, now_ns: i64) -> Option<u64> {
        self.count += 1;
        let due = self.last_report_ns.is_none_or(|last| now_ns.saturating_sub(last) >= DECODE_REPORT_PERIOD_NS);
        due.then(|| {
            self.last_report_ns = Some(now_ns);
            self.count
        })
    }
}

pub fn event_kind_name(kind: u8) -> &'static str {
    match kind {
        MonitorEvent::KIND_DEADLINE_MISSED => "deadline_missed",
        MonitorEvent::KIND_BUDGET_OVERRUN => "budget_overrun",
        MonitorEvent::KIND_QUEUE_DROP => "queue_drop",
        MonitorEvent::KIND_DECODE_ERROR => "decode_error",
        MonitorEvent::KIND_CALLBACK_FAILED => "callback_failed",
        MonitorEvent::KIND_RECOVERED => "recovered",
        MonitorEvent::KIND_FAULT_INJECTED => "fault_injected",
        MonitorEvent::KIND_INPUT_REJECTED => "input_rejected",
        _ => "unknown",
    }
}
