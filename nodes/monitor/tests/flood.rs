//! Floods and lies on the bus, without access control (the worst case: anyone may write).
//!
//! - H6: a flood of garbage on the arbiter's driver input cannot keep the arbiter from deciding
//!   and publishing (its drains are bounded), and its decode errors are reported at most once a
//!   second, not once per message (H2).
//! - H2/property 4: a flood on the event log and on a node's health key cannot hide that node's
//!   missed deadline: the monitor decides from the node's health state, repeated every 100 ms,
//!   and a health key drowned in garbage is a silent node.
//! - M10: a liveliness token of another instance with the node's name, declared and dropped,
//!   raises no "node gone" for the instance that reports.
//!
//! On a953c22 the arbiter's `while let Some(..) = recv()` loops stayed inside the flood, every
//! undecodable message made an event and a log line, and the monitor acted on events (a wiped
//! DEADLINE_MISSED was never raised again) and on tokens by name.

mod common;

use reflex_monitor::node::{run_arbiter_on, ArbiterNodeConfig};
use reflex_msgs::reflex_msgs::{BrakeRequest, MonitorEvent, SafeStop};
use reflex_runtime::{keys, rogue, InputOptions, Node, NodeOptions, NodeSpec, Shutdown, TransportConfig};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Garbage on `key` at `rate` messages/s from a session of its own until `stop`; returns the count.
fn flood(transport: TransportConfig, key: String, rate: f64, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let node = Node::new(NodeOptions::new("flooder").transport(transport)).unwrap();
        rogue::garbage_flood(&node, &key, rate, Duration::MAX, &stop).unwrap()
    })
}

#[test]
fn a_flood_on_the_driver_input_does_not_stop_the_arbiter() {
    let port = 17691;
    let transport = TransportConfig { prefix: format!("flood{port}"), ..TransportConfig::loopback(port) };
    let shutdown = Shutdown::new();
    let arbiter = {
        let (transport, shutdown) = (transport.clone(), shutdown.clone());
        std::thread::spawn(move || {
            let node = Node::new(NodeOptions::new("arbiter").transport(transport.clone())).unwrap();
            let spec = NodeSpec { name: "arbiter".into(), transport, ..Default::default() };
            run_arbiter_on(&node, &spec, &ArbiterNodeConfig::default(), &shutdown).unwrap();
        })
    };
    let observer = Node::new(NodeOptions::new("observer").transport(transport.clone())).unwrap();
    let big = InputOptions::default().capacity(8192);
    let mut commands = observer.subscriber::<BrakeRequest>("/vehicle/brake_command", big).unwrap();
    let mut events = observer.subscriber::<MonitorEvent>("/reflex/events", big).unwrap();
    let start = Instant::now();
    while commands.recv().is_none() {
        assert!(start.elapsed() < Duration::from_secs(20), "the arbiter never commanded");
        observer.wait_for_input(Duration::from_millis(10));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let flooder = flood(
        transport.clone(),
        keys::topic_key(&transport.prefix, "/vehicle/driver_command"),
        100_000.0,
        stop.clone(),
    );
    std::thread::sleep(Duration::from_millis(200));
    let (mut count, mut decode_events) = (0, 0);
    let measured = Instant::now();
    while measured.elapsed() < Duration::from_secs(2) {
        observer.wait_for_input(Duration::from_millis(5));
        while commands.recv().is_some() {
            count += 1;
        }
        while let Some(event) = events.recv() {
            decode_events += usize::from(event.message.kind == MonitorEvent::KIND_DECODE_ERROR);
        }
    }
    let rate = f64::from(count) / measured.elapsed().as_secs_f64();
    stop.store(true, Ordering::Release);
    let sent = flooder.join().unwrap();
    shutdown.request();
    arbiter.join().unwrap();
    eprintln!("{sent} garbage messages; commands at {rate:.0} Hz; {decode_events} decode-error events");
    assert!(sent > 150_000, "the flood was a flood: {sent} messages");
    assert!(rate >= 45.0, "commands kept coming at 50 Hz: {rate:.0} Hz");
    assert!(decode_events <= 4, "decode errors reported at most once a second: {decode_events}");
}

#[test]
fn a_flood_cannot_hide_a_missed_deadline_and_a_foreign_token_raises_nothing() {
    let port = 17692;
    let transport = TransportConfig { prefix: format!("flood{port}"), ..TransportConfig::loopback(port) };
    let shutdown = Shutdown::new();
    let producing = Arc::new(AtomicBool::new(true));
    let options = |name: &str| NodeOptions::new(name).transport(transport.clone());
    let threads = [
        common::producer(options("producer"), &shutdown, &producing),
        common::consumer(options("consumer"), &shutdown),
        common::monitor(options("monitor"), &shutdown, &["consumer"], 0.0),
    ];
    let observer = Node::new(NodeOptions::new("observer").transport(transport.clone())).unwrap();
    let mut states =
        observer.subscriber::<SafeStop>("/monitor/safe_stop", InputOptions::default().capacity(4096)).unwrap();
    let watch = |states: &mut reflex_runtime::Subscriber<SafeStop>, how_long: Duration| {
        let (mut engaged, mut calm, mut reasons) = (0, 0, Vec::new());
        let start = Instant::now();
        while start.elapsed() < how_long {
            observer.wait_for_input(Duration::from_millis(5));
            while let Some(state) = states.recv() {
                if state.message.engaged {
                    engaged += 1;
                    reasons.push(format!("{} {}", state.message.reason, state.message.source));
                } else {
                    calm += 1;
                }
            }
        }
        (engaged, calm, reasons)
    };
    // Nominal first.
    let start = Instant::now();
    loop {
        assert!(start.elapsed() < Duration::from_secs(20), "never nominal");
        let (engaged, calm, _) = watch(&mut states, Duration::from_millis(300));
        if engaged == 0 && calm > 0 {
            break;
        }
    }
    // M10: another instance's token with the consumer's name comes and goes: nothing happens.
    let token = rogue::ForgedToken::declare(&observer, "consumer", "elsewhere", 999_999).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    drop(token);
    let (engaged, _, reasons) = watch(&mut states, Duration::from_millis(600));
    assert_eq!(engaged, 0, "a foreign instance's token going away is no loss: {reasons:?}");
    // The producer stops, and a flood drowns the event log and the consumer's health key.
    let stop = Arc::new(AtomicBool::new(false));
    let floods = [
        flood(transport.clone(), keys::topic_key(&transport.prefix, "/reflex/events"), 50_000.0, stop.clone()),
        flood(transport.clone(), keys::health_key(&transport.prefix, "consumer"), 50_000.0, stop.clone()),
    ];
    producing.store(false, Ordering::Release);
    let (engaged, calm, reasons) = watch(&mut states, Duration::from_millis(2500));
    stop.store(true, Ordering::Release);
    for flood in floods {
        flood.join().unwrap();
    }
    assert!(engaged > 0, "the missed deadline (or the drowned health) gives a safe stop");
    assert!(calm <= 5, "and it holds: {calm} nominal states after it ({reasons:?})");
    shutdown.request();
    for thread in threads {
        thread.join().unwrap();
    }
}
