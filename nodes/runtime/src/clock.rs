//! The one place nodes read time from: the wall clock, or a simulation clock that a simulator
//! or a test advances. Deadlines, budgets, timers and message stamps all go through it, so a
//! lock-step simulation or a replay behaves the same on a fast and a slow machine.

use reflex_msgs::builtin_interfaces::Time;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A cheap handle to a time source; clones share it.
#[derive(Clone, Debug)]
pub struct Clock {
    source: Source,
}

#[derive(Clone, Debug)]
enum Source {
    /// `CLOCK_REALTIME`, shared by every process on the host, so stamps compare across nodes.
    Wall,
    Sim(Arc<SimTime>),
}

#[derive(Debug, Default)]
struct SimTime {
    now_ns: AtomicI64,
    /// Wakes waiters when the time moves. Only the (rare) waiters and `set` take the lock.
    changed: Condvar,
    lock: Mutex<()>,
}

impl Default for Clock {
    fn default() -> Self {
        Self::wall()
    }
}

impl Clock {
    pub fn wall() -> Self {
        Self { source: Source::Wall }
    }

    /// A simulation clock starting at `start_ns`; it only moves when [`Clock::set_ns`] is called.
    pub fn sim(start_ns: i64) -> Self {
        let time = SimTime { now_ns: AtomicI64::new(start_ns), ..Default::default() };
        Self { source: Source::Sim(Arc::new(time)) }
    }

    pub fn is_sim(&self) -> bool {
        matches!(self.source, Source::Sim(_))
    }

    /// Nanoseconds since the clock's epoch (the Unix epoch for the wall clock).
    pub fn now_ns(&self) -> i64 {
        match &self.source {
            Source::Wall => wall_now_ns(),
            // Acquire pairs with the Release in `set_ns`: whatever the simulator wrote before
            // moving time is visible to a reader that sees the new time.
            Source::Sim(sim) => sim.now_ns.load(Ordering::Acquire),
        }
    }

    pub fn now(&self) -> Time {
        Time::from_nanos(self.now_ns())
    }

    /// Moves a simulation clock to `ns` (never backwards) and wakes everything waiting on it.
    /// Does nothing on the wall clock.
    pub fn set_ns(&self, ns: i64) {
        if let Source::Sim(sim) = &self.source {
            sim.now_ns.fetch_max(ns, Ordering::Release);
            let _guard = sim.lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            sim.changed.notify_all();
        }
    }

    pub fn advance(&self, by: Duration) {
        self.set_ns(self.now_ns().saturating_add(by.as_nanos() as i64));
    }

    /// Sleeps until the clock reads at least `until_ns`, or until `max_wall` of real time has
    /// passed (so callers can check for shutdown). Returns whether `until_ns` was reached.
    pub fn sleep_until(&self, until_ns: i64, max_wall: Duration) -> bool {
        match &self.source {
            Source::Wall => {
                let left = until_ns.saturating_sub(wall_now_ns());
                if left > 0 {
                    std::thread::sleep(Duration::from_nanos(left as u64).min(max_wall));
                }
                wall_now_ns() >= until_ns
            }
            Source::Sim(sim) => {
                let guard = sim.lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                let (_guard, _) = sim
                    .changed
                    .wait_timeout_while(guard, max_wall, |_| sim.now_ns.load(Ordering::Acquire) < until_ns)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                sim.now_ns.load(Ordering::Acquire) >= until_ns
            }
        }
    }
}

pub(crate) fn wall_now_ns() -> i64 {
    // Before 1970 means a broken RTC; 0 keeps arithmetic sane and ages show up as huge.
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sim_clock_moves_only_forward_and_wakes_sleepers() {
        let clock = Clock::sim(1_000);
        assert_eq!(clock.now_ns(), 1_000);
        clock.set_ns(500);
        assert_eq!(clock.now_ns(), 1_000, "never backwards");

        let sleeper = {
            let clock = clock.clone();
            std::thread::spawn(move || clock.sleep_until(5_000, Duration::from_secs(10)))
        };
        std::thread::sleep(Duration::from_millis(20));
        clock.advance(Duration::from_nanos(4_000));
        assert!(sleeper.join().unwrap(), "woken by the clock, not the 10 s backstop");
        assert!(!clock.sleep_until(1_000_000, Duration::from_millis(5)), "backstop returns false");
    }

    #[test]
    fn wall_clock_is_unix_time() {
        let clock = Clock::wall();
        let year_2020_ns = 1_577_836_800_i64 * 1_000_000_000;
        assert!(clock.now_ns() > year_2020_ns);
        assert!(!clock.is_sim());
    }
}
