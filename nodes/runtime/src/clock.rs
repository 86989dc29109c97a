//! The one place nodes read time from. Two time bases, one per purpose:
//!
//! - **Stamps** ([`Clock::now_ns`], [`Clock::now`]): the wall clock (`CLOCK_REALTIME`, what
//!   NTP, PTP or GPS set), so that message stamps compare across processes and hosts and
//!   recordings carry calendar time. The wall clock can *step*: an NTP correction, a GPS fix,
//!   an RTC read at boot.
//! - **Durations** ([`Clock::mono_ns`]): `CLOCK_MONOTONIC`, which never steps and is shared by
//!   every process on a host. Deadlines, budgets, freshness, heartbeats, timers and the
//!   tracker's prediction all run on it, so a step of the wall clock can neither make a dead
//!   input look alive nor a live one look dead.
//!
//! A simulation clock ([`Clock::sim`]) replaces both: a simulator or a test moves it, and a
//! lock-step run behaves the same on a fast and a slow machine.
//!
//! The wall clock watches itself for steps: each reading compares wall − monotonic with the
//! previous reading, and a change beyond what NTP's slewing can do (500 ppm) is a step.
//! [`Clock::stepped_within`] tells code that compares stamps across time (the age of a
//! command since capture) that stamps made before and after a recent step do not compare.

use reflex_msgs::builtin_interfaces::Time;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// A change of wall − monotonic larger than this (plus the slew allowance) is a step.
const STEP_TOLERANCE_NS: i64 = 2_000_000;
/// NTP slews at most 500 ppm; allow twice that between two readings.
const SLEW_ALLOWANCE_PPM: i64 = 1_000;
/// A clock reading whose two monotonic brackets are further apart than this is not judged.
const READ_BRACKET_NS: i64 = 200_000;

/// A cheap handle to a time source; clones share it.
#[derive(Clone, Debug)]
pub struct Clock {
    source: Source,
}

#[derive(Clone, Debug)]
enum Source {
    Wall(Arc<WallTime>),
    Sim(Arc<SimTime>),
}

#[derive(Debug)]
struct WallTime {
    /// Added to `CLOCK_REALTIME`: zero in a product; a bench or a test steps the clock by
    /// changing it ([`Clock::wall_with_offset`]).
    offset_ns: Arc<AtomicI64>,
    /// wall − monotonic at the last reading, and when (monotonic) that was.
    last_difference_ns: AtomicI64,
    last_reading_ns: AtomicI64,
    /// Monotonic time of the last step seen, and its size; `i64::MIN` when none was seen.
    last_step_at_ns: AtomicI64,
    last_step_ns: AtomicI64,
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
    /// The host's clocks: wall time for stamps, monotonic time for durations.
    pub fn wall() -> Self {
        Self::wall_with_offset(Arc::new(AtomicI64::new(0)))
    }

    /// The host's clocks with `offset` ns added to the wall clock: a bench or a test steps the
    /// wall clock by storing a new offset (the monotonic clock is not affected, as on a real
    /// host).
    pub fn wall_with_offset(offset: Arc<AtomicI64>) -> Self {
        let wall = WallTime {
            offset_ns: offset,
            last_difference_ns: AtomicI64::new(i64::MIN),
            last_reading_ns: AtomicI64::new(0),
            last_step_at_ns: AtomicI64::new(i64::MIN),
            last_step_ns: AtomicI64::new(0),
        };
        Self { source: Source::Wall(Arc::new(wall)) }
    }

    /// A simulation clock starting at `start_ns`; it only moves when [`Clock::set_ns`] is called.
    /// It is both the stamp and the duration time base.
    pub fn sim(start_ns: i64) -> Self {
        let time = SimTime { now_ns: AtomicI64::new(start_ns), ..Default::default() };
        Self { source: Source::Sim(Arc::new(time)) }
    }

    pub fn is_sim(&self) -> bool {
        matches!(self.source, Source::Sim(_))
    }

    /// Stamp time: nanoseconds since the Unix epoch on the wall clock, or simulation time.
    /// Never use differences of it as durations on one host; see [`Clock::mono_ns`].
    pub fn now_ns(&self) -> i64 {
        match &self.source {
            Source::Wall(wall) => wall.read().0,
            // Acquire pairs with the Release in `set_ns`: whatever the simulator wrote before
            // moving time is visible to a reader that sees the new time.
            Source::Sim(sim) => sim.now_ns.load(Ordering::Acquire),
        }
    }

    pub fn now(&self) -> Time {
        Time::from_nanos(self.now_ns())
    }

    /// Duration time: `CLOCK_MONOTONIC` (the same for every process on the host, never steps),
    /// or simulation time.
    pub fn mono_ns(&self) -> i64 {
        match &self.source {
            Source::Wall(_) => monotonic_ns(),
            Source::Sim(sim) => sim.now_ns.load(Ordering::Acquire),
        }
    }

    /// Both at once: (stamp time, duration time).
    pub fn now_and_mono_ns(&self) -> (i64, i64) {
        match &self.source {
            Source::Wall(wall) => wall.read(),
            Source::Sim(sim) => {
                let now = sim.now_ns.load(Ordering::Acquire);
                (now, now)
            }
        }
    }

    /// Whether the wall clock stepped within `window` of duration time (a simulation clock
    /// never steps). Stamps made before and after a step do not compare.
    pub fn stepped_within(&self, window: Duration) -> bool {
        self.last_step().is_some_and(|(at, _)| self.mono_ns().saturating_sub(at) <= window.as_nanos() as i64)
    }

    /// The last step of the wall clock seen: (monotonic time it was seen, its size in ns).
    pub fn last_step(&self) -> Option<(i64, i64)> {
        match &self.source {
            Source::Wall(wall) => {
                // Reading the clock is how steps are noticed.
                wall.read();
                let at = wall.last_step_at_ns.load(Ordering::Acquire);
                (at != i64::MIN).then(|| (at, wall.last_step_ns.load(Ordering::Relaxed)))
            }
            Source::Sim(_) => None,
        }
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

    /// Sleeps until duration time ([`Clock::mono_ns`]) reads at least `until_ns`, or until
    /// `max_wall` of real time has passed (so callers can check for shutdown). Returns whether
    /// `until_ns` was reached.
    pub fn sleep_until(&self, until_ns: i64, max_wall: Duration) -> bool {
        match &self.source {
            Source::Wall(_) => {
                let left = until_ns.saturating_sub(monotonic_ns());
                if left > 0 {
                    std::thread::sleep(Duration::from_nanos(left as u64).min(max_wall));
                }
                monotonic_ns() >= until_ns
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

impl WallTime {
    /// (wall, monotonic), noting a step when wall − monotonic moved more than slewing can.
    /// The wall reading is bracketed by two monotonic ones: a thread preempted between them
    /// would see wall − monotonic grow by the preemption and take it for a step (ages then
    /// untrusted for a second), so a reading that took longer than [`READ_BRACKET_NS`] is
    /// returned but not judged.
    fn read(&self) -> (i64, i64) {
        let mono = monotonic_ns();
        let wall = realtime_ns().saturating_add(self.offset_ns.load(Ordering::Relaxed));
        if monotonic_ns().saturating_sub(mono) > READ_BRACKET_NS {
            return (wall, mono);
        }
        let difference = wall.saturating_sub(mono);
        let previous = self.last_difference_ns.swap(difference, Ordering::AcqRel);
        let previous_at = self.last_reading_ns.swap(mono, Ordering::AcqRel);
        if previous != i64::MIN {
            let allowance =
                STEP_TOLERANCE_NS + mono.saturating_sub(previous_at).max(0) / 1_000_000 * SLEW_ALLOWANCE_PPM;
            let change = difference.saturating_sub(previous);
            if change.saturating_abs() > allowance {
                self.last_step_ns.store(change, Ordering::Relaxed);
                self.last_step_at_ns.store(mono, Ordering::Release);
                tracing::warn!(step_ms = change as f64 / 1e6, "the wall clock stepped");
            }
        }
        (wall, mono)
    }
}

/// `CLOCK_MONOTONIC` in ns: one time line for every process on the host.
pub fn monotonic_ns() -> i64 {
    read_clock(libc::CLOCK_MONOTONIC)
}

fn realtime_ns() -> i64 {
    read_clock(libc::CLOCK_REALTIME)
}

fn read_clock(id: libc::clockid_t) -> i64 {
    let mut time = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec we own; both clocks always exist on Linux.
    unsafe { libc::clock_gettime(id, &mut time) };
    (time.tv_sec as i64).saturating_mul(1_000_000_000).saturating_add(time.tv_nsec as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sim_clock_moves_only_forward_and_wakes_sleepers() {
        let clock = Clock::sim(1_000);
        assert_eq!(clock.now_ns(), 1_000);
        assert_eq!(clock.mono_ns(), 1_000, "one time base in simulation");
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
    fn wall_clock_is_unix_time_and_durations_are_monotonic() {
        let clock = Clock::wall();
        let year_2020_ns = 1_577_836_800_i64 * 1_000_000_000;
        assert!(clock.now_ns() > year_2020_ns);
        assert!(!clock.is_sim());
        let (a, b) = (clock.mono_ns(), clock.mono_ns());
        assert!(b >= a);
        assert!(clock.sleep_until(clock.mono_ns() + 2_000_000, Duration::from_secs(1)));
    }

    /// C1: a step of the wall clock moves stamps, not durations, and is noticed.
    #[test]
    fn a_wall_clock_step_moves_stamps_not_durations_and_is_noticed() {
        let offset = Arc::new(AtomicI64::new(0));
        let clock = Clock::wall_with_offset(offset.clone());
        let (wall, mono) = clock.now_and_mono_ns();
        assert!(!clock.stepped_within(Duration::from_secs(1)));
        offset.store(-10_000_000_000, Ordering::Relaxed);
        let (wall_after, mono_after) = clock.now_and_mono_ns();
        assert!(wall_after < wall - 9_000_000_000, "stamps stepped back 10 s");
        assert!(mono_after >= mono, "durations did not");
        assert!(clock.stepped_within(Duration::from_secs(1)));
        let (_, size) = clock.last_step().unwrap();
        assert!((size + 10_000_000_000).abs() < 50_000_000, "step of {size} ns");
        // Steady again: no new step.
        offset.store(-10_000_000_000, Ordering::Relaxed);
        let (at, _) = clock.last_step().unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(clock.last_step().unwrap().0, at);
    }
}
