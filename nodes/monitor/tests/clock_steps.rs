//! C1 of the safety review, property 1 of issue 14: durations run on the monotonic clock, so a
//! step of the wall clock neither releases a safe stop nor raises one. Every node of this test
//! shares one host clock whose wall part the test steps (`Clock::wall_with_offset`), as NTP, GPS
//! or an RTC would; the monotonic part runs on.
//!
//! On a953c22 (every duration on the wall clock) the step of −10 s made the missed input look
//! recovered (a RECOVERED event, the fault cleared, the safe stop released after the stable
//! period), and the step of +1 s made every deadline expire at once (a safe stop on an empty
//! road).

mod common;

use reflex_monitor::node::{run_arbiter_on, ArbiterNodeConfig};
use reflex_msgs::reflex_msgs::{BrakeRequest, MonitorEvent, SafeStop};
use reflex_runtime::{Clock, InputOptions, Node, NodeOptions, NodeSpec, Shutdown, TransportConfig};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct System {
    offset: Arc<AtomicI64>,
    producing: Arc<AtomicBool>,
    shutdown: Shutdown,
    threads: Vec<std::thread::JoinHandle<()>>,
    observer: Node,
    states: reflex_runtime::Subscriber<SafeStop>,
    commands: reflex_runtime::Subscriber<BrakeRequest>,
    events: reflex_runtime::Subscriber<MonitorEvent>,
}

/// A producer (50 Hz), a consumer whose input has a 100 ms deadline, the monitor watching the
/// consumer, and the arbiter, on one stepped host clock.
fn system(port: u16) -> System {
    let offset = Arc::new(AtomicI64::new(0));
    let clock = Clock::wall_with_offset(offset.clone());
    let transport = TransportConfig { prefix: format!("steps{port}"), ..TransportConfig::loopback(port) };
    let options = |name: &str| NodeOptions::new(name).transport(transport.clone()).clock(clock.clone());
    let shutdown = Shutdown::new();
    let producing = Arc::new(AtomicBool::new(true));
    let mut threads = vec![
        common::producer(options("producer"), &shutdown, &producing),
        common::consumer(options("consumer"), &shutdown),
        common::monitor(options("monitor"), &shutdown, &["consumer", "arbiter"], 100.0),
    ];
    let spec = |name: &str| NodeSpec { name: name.into(), transport: transport.clone(), ..Default::default() };
    {
        let (options, shutdown, spec) = (options("arbiter"), shutdown.clone(), spec("arbiter"));
        threads.push(std::thread::spawn(move || {
            let node = Node::new(options).unwrap();
            run_arbiter_on(&node, &spec, &ArbiterNodeConfig::default(), &shutdown).unwrap();
        }));
    }
    let observer = Node::new(options("observer")).unwrap();
    let big = InputOptions::default().capacity(4096);
    let states = observer.subscriber::<SafeStop>("/monitor/safe_stop", big).unwrap();
    let commands = observer.subscriber::<BrakeRequest>("/vehicle/brake_command", big).unwrap();
    let events = observer.subscriber::<MonitorEvent>("/reflex/events", big).unwrap();
    System { offset, producing, shutdown, threads, observer, states, commands, events }
}

impl System {
    /// Watches for `how_long`: (engaged states, full-braking commands, other commands,
    /// RECOVERED events, non-engaged states).
    fn watch(&mut self, how_long: Duration) -> (usize, usize, usize, usize, usize) {
        let mut seen = (0, 0, 0, 0, 0);
        let start = Instant::now();
        while start.elapsed() < how_long {
            self.observer.wait_for_input(Duration::from_millis(5));
            while let Some(state) = self.states.recv() {
                if state.message.engaged {
                    seen.0 += 1;
                } else {
                    seen.4 += 1;
                }
            }
            while let Some(command) = self.commands.recv() {
                if command.message.level == BrakeRequest::LEVEL_FULL {
                    seen.1 += 1;
                } else {
                    seen.2 += 1;
                }
            }
            while let Some(event) = self.events.recv() {
                seen.3 += usize::from(event.message.kind == MonitorEvent::KIND_RECOVERED);
            }
        }
        seen
    }

    /// Waits until the monitor says nominal and the arbiter commands no braking.
    fn until_nominal(&mut self) {
        let start = Instant::now();
        loop {
            assert!(start.elapsed() < Duration::from_secs(30), "never nominal");
            let (engaged, full, other, _, calm) = self.watch(Duration::from_millis(300));
            if engaged == 0 && full == 0 && other > 0 && calm > 0 {
                return;
            }
        }
    }

    fn stop(self) {
        self.shutdown.request();
        for thread in self.threads {
            thread.join().unwrap();
        }
    }
}

#[test]
fn a_step_back_of_10_s_during_a_safe_stop_keeps_it() {
    let mut system = system(17681);
    system.until_nominal();
    system.producing.store(false, Ordering::Release);
    let (engaged, full, ..) = system.watch(Duration::from_millis(600));
    assert!(engaged > 0 && full > 0, "the dead producer gives a safe stop and full braking");
    system.offset.store(-10_000_000_000, Ordering::Relaxed);
    // Three seconds: ten stable periods, had the fault been cleared.
    let (engaged, full, other, recovered, calm) = system.watch(Duration::from_secs(3));
    assert_eq!(recovered, 0, "no RECOVERED from a step of the wall clock");
    assert_eq!((other, calm), (0, 0), "held: full braking only ({full} commands, {engaged} engaged states)");
    assert!(full > 50 && engaged > 10);
    system.stop();
}

#[test]
fn a_step_forward_of_1_s_with_healthy_inputs_raises_nothing() {
    let mut system = system(17682);
    system.until_nominal();
    system.offset.store(1_000_000_000, Ordering::Relaxed);
    let (engaged, full, other, ..) = system.watch(Duration::from_secs(2));
    assert_eq!((engaged, full), (0, 0), "no safe stop, no braking");
    assert!(other > 50, "the arbiter kept commanding");
    system.offset.store(-1_000_000_000, Ordering::Relaxed);
    let (engaged, full, ..) = system.watch(Duration::from_secs(2));
    assert_eq!((engaged, full), (0, 0), "nor for a step back");
    system.stop();
}
