//! The monitor node on a simulation clock: the test moves time, a heartbeat stops, and the
//! safe-stop topic must say so exactly once with the right reason, then recover only after the
//! stable period, one level at a time. A monitor starts engaged and holds until it has evidence.
//! Wall-clock waits are bounded; decisions use sim time.

use reflex_monitor::node::{run_monitor_on, MonitorConfig, WatchedTopic};
use reflex_monitor::supervisor::{Release, SupervisorConfig};
use reflex_msgs::reflex_msgs::{SafeStop, VehicleState};
use reflex_runtime::{Clock, InputOptions, Node, NodeOptions, NodeSpec, Shutdown, TransportConfig};
use std::time::{Duration, Instant};

const MS: i64 = 1_000_000;

#[test]
fn a_gap_past_the_deadline_gives_one_safe_stop_and_recovery_waits_for_the_stable_period() {
    let clock = Clock::sim(1_000 * MS);
    let transport = TransportConfig { prefix: "simmonitor".into(), ..TransportConfig::loopback(17651) };
    let spec = NodeSpec { name: "monitor".into(), transport: transport.clone(), ..Default::default() };
    let config = MonitorConfig {
        watch: vec![WatchedTopic { topic: "/test/heartbeat".into(), deadline_ms: 100.0 }],
        supervisor: SupervisorConfig { stable_period_s: 2.0, transient_fault_s: 1.0, release: Release::StablePeriod },
        command_budget_ms: 0.0,
        command_deadline_ms: 0.0,
        ..MonitorConfig::default()
    };
    let shutdown = Shutdown::new();
    let monitor = {
        let (clock, spec, shutdown) = (clock.clone(), spec.clone(), shutdown.clone());
        std::thread::spawn(move || {
            let node = Node::new(NodeOptions::new("monitor").transport(spec.transport.clone()).clock(clock)).unwrap();
            run_monitor_on(&node, &spec, &config, &shutdown).unwrap();
        })
    };
    let test = Node::new(NodeOptions::new("driver").transport(transport).clock(clock.clone())).unwrap();
    let mut heartbeat = test.publisher::<VehicleState>("/test/heartbeat").unwrap();
    let mut states = test.subscriber::<SafeStop>("/monitor/safe_stop", InputOptions::default().capacity(256)).unwrap();
    assert!(heartbeat.wait_for_subscribers(Duration::from_secs(20)), "monitor never subscribed");

    let mut history: Vec<(i64, u8, String)> = Vec::new(); // (sim time, state, reason) at each change
                                                          // Advances sim time by `step_ms` `steps` times, publishing a heartbeat each step if `beat`,
                                                          // and giving the monitor a moment of wall time to react.
    let mut run = |steps: usize, step_ms: i64, beat: bool, history: &mut Vec<(i64, u8, String)>| {
        for _ in 0..steps {
            clock.advance(Duration::from_nanos((step_ms * MS) as u64));
            if beat {
                heartbeat.publish(&VehicleState::default()).unwrap();
            }
            let wall = Instant::now();
            while wall.elapsed() < Duration::from_millis(15) {
                test.wait_for_input(Duration::from_millis(5));
                while let Some(state) = states.recv() {
                    let state = state.message;
                    if history.last().is_none_or(|last| last.1 != state.state) {
                        history.push((clock.now_ns(), state.state, format!("{} {}", state.reason, state.source)));
                    }
                }
            }
        }
    };
    // The monitor states its state every 100 ms (of sim time): wait for the first.
    for _ in 0..300 {
        if !history.is_empty() {
            break;
        }
        run(1, 10, true, &mut history);
    }
    assert_eq!(history[0].1, SafeStop::STATE_SAFE_STOP, "a monitor starts engaged: {history:?}");
    // Evidence (its own watch is healthy), then two stable periods: nominal.
    run(500, 10, true, &mut history);
    assert_eq!(
        history.iter().map(|h| h.1).collect::<Vec<_>>(),
        [SafeStop::STATE_SAFE_STOP, SafeStop::STATE_DEGRADED, SafeStop::STATE_NOMINAL],
        "engaged at start, then nominal while beating: {history:?}"
    );
    // From here on, changes from nominal (late nominal heartbeats are no change).
    history.clear();
    history.push((clock.now_ns(), SafeStop::STATE_NOMINAL, "nominal".into()));

    let stopped_at = clock.now_ns();
    run(50, 10, false, &mut history); // 500 ms of silence
    let safe_stops: Vec<_> = history.iter().filter(|h| h.1 == SafeStop::STATE_SAFE_STOP).collect();
    assert_eq!(safe_stops.len(), 1, "exactly one safe stop: {history:?}");
    assert!(
        safe_stops[0].2.contains("deadline 100 ms") && safe_stops[0].2.ends_with("monitor: input /test/heartbeat"),
        "{history:?}"
    );
    let detected_after = safe_stops[0].0 - stopped_at;
    assert!(
        (100 * MS..=200 * MS).contains(&detected_after),
        "safe stop {} ms of sim time after the last beat",
        detected_after / MS
    );

    // Beats again: safe stop holds for the stable period (2 s of sim time), then degraded,
    // then after another 2 s nominal.
    let resumed_at = clock.now_ns();
    run(190, 10, true, &mut history); // 1.9 s
    assert_eq!(
        history.last().unwrap().1,
        SafeStop::STATE_SAFE_STOP,
        "not released before the stable period: {history:?}"
    );
    run(30, 10, true, &mut history); // to 2.2 s
    let degraded = history.iter().find(|h| h.1 == SafeStop::STATE_DEGRADED).expect("stepped down to degraded");
    assert!(degraded.0 - resumed_at >= 2_000 * MS, "degraded after {} ms", (degraded.0 - resumed_at) / MS);
    run(210, 10, true, &mut history); // to 4.3 s
    let states: Vec<u8> = history.iter().map(|h| h.1).collect();
    assert_eq!(states, [0, 2, 1, 0], "nominal -> safe stop -> degraded -> nominal: {history:?}");
    shutdown.request();
    monitor.join().unwrap();
}
