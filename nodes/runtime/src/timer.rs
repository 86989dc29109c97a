//! A periodic timer on the node's duration clock (monotonic, or simulation time): `wait` sleeps
//! until the next tick and says how late it woke, so a node can tell a missed period from a
//! punctual one. A step of the wall clock does not stop or rush it.

use crate::clock::Clock;
use std::time::Duration;

pub struct Timer {
    clock: Clock,
    period_ns: i64,
    next_ns: i64,
    missed_ticks: u64,
}

/// One tick: when it was due (duration time) and how late it came.
#[derive(Debug, Clone, Copy)]
pub struct Tick {
    pub due_ns: i64,
    pub late_ns: i64,
}

impl Timer {
    pub fn new(clock: Clock, period: Duration) -> Self {
        let period_ns = (period.as_nanos() as i64).max(1);
        let next_ns = clock.mono_ns() + period_ns;
        Self { clock, period_ns, next_ns, missed_ticks: 0 }
    }

    /// Sleeps until the next tick, at most `max_wait` of wall time (to check for shutdown).
    /// `None` when `max_wait` passed first. Ticks that passed entirely are skipped and counted.
    pub fn wait(&mut self, max_wait: Duration) -> Option<Tick> {
        if !self.clock.sleep_until(self.next_ns, max_wait) {
            return None;
        }
        let now = self.clock.mono_ns();
        let due_ns = self.next_ns;
        let behind = (now - due_ns) / self.period_ns;
        self.missed_ticks += behind as u64;
        self.next_ns = due_ns + (behind + 1) * self.period_ns;
        Some(Tick { due_ns, late_ns: now - due_ns })
    }

    pub fn missed_ticks(&self) -> u64 {
        self.missed_ticks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_follow_the_sim_clock_and_count_skips() {
        let clock = Clock::sim(0);
        let mut timer = Timer::new(clock.clone(), Duration::from_millis(10));
        assert!(timer.wait(Duration::from_millis(1)).is_none(), "sim time did not move");
        clock.set_ns(10_000_000);
        let tick = timer.wait(Duration::from_secs(1)).unwrap();
        assert_eq!((tick.due_ns, tick.late_ns), (10_000_000, 0));
        clock.set_ns(45_000_000);
        let tick = timer.wait(Duration::from_secs(1)).unwrap();
        assert_eq!((tick.due_ns, tick.late_ns), (20_000_000, 25_000_000));
        assert_eq!(timer.missed_ticks(), 2, "ticks at 30 and 40 ms were skipped");
        clock.set_ns(50_000_000);
        assert_eq!(timer.wait(Duration::from_secs(1)).unwrap().due_ns, 50_000_000);
    }
}
