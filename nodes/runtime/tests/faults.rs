//! Injected faults over the run-time fault key, through real zenoh sessions: drops, delay,
//! freeze and corruption on one input, each reported as an event, and cleared again.

use reflex_msgs::builtin_interfaces::Time;
use reflex_msgs::reflex_msgs::{MonitorEvent, VehicleState};
use reflex_msgs::std_msgs::Header;
use reflex_runtime::fault::FaultCommand;
use reflex_runtime::{InputOptions, Node, NodeOptions, Subscriber, TransportConfig};
use reflex_testing::wait_until;
use std::time::{Duration, Instant};

const TOPIC: &str = "/vehicle/state";

fn state(k: u32) -> VehicleState {
    VehicleState {
        header: Header { stamp: Time { sec: 1, nanosec: k }, frame_id: "base_link".into() },
        speed_mps: f64::from(k),
        ..Default::default()
    }
}

/// Publishes `count` messages 2 ms apart, then collects what the subscriber takes for 300 ms.
fn exchange(
    sender: &mut reflex_runtime::Publisher<VehicleState>,
    receiver: &Node,
    input: &mut Subscriber<VehicleState>,
    count: u32,
    first: u32,
) -> Vec<(u32, f64, Option<i64>, VehicleState)> {
    let mut got = Vec::new();
    let mut take = |input: &mut Subscriber<VehicleState>| {
        while let Some(m) = input.recv() {
            got.push((m.message.header.stamp.nanosec, m.message.speed_mps, m.transit_ns, m.message.clone()));
        }
    };
    for k in first..first + count {
        sender.publish(&state(k)).unwrap();
        std::thread::sleep(Duration::from_millis(2));
        take(input);
    }
    let until = Instant::now() + Duration::from_millis(300);
    while Instant::now() < until {
        receiver.wait_for_input(Duration::from_millis(5));
        take(input);
    }
    got
}

fn fault_events(events: &mut Subscriber<MonitorEvent>) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(e) = events.recv() {
        if e.message.kind == MonitorEvent::KIND_FAULT_INJECTED && e.message.node == "receiver" {
            out.push(e.message.detail.clone());
        }
    }
    out
}

#[test]
fn drop_delay_freeze_and_corrupt_act_on_the_named_input_and_are_reported() {
    let port = 17751;
    let transport = TransportConfig { prefix: format!("faults{port}"), ..TransportConfig::loopback(port) };
    let sender_node = Node::new(NodeOptions::new("sender").transport(transport.clone())).unwrap();
    let receiver = Node::new(NodeOptions::new("receiver").transport(transport.clone()).fault_injection(true)).unwrap();
    let mut events =
        sender_node.subscriber::<MonitorEvent>("/reflex/events", InputOptions::default().capacity(256)).unwrap();
    let mut input = receiver.subscriber::<VehicleState>(TOPIC, InputOptions::default().capacity(1024)).unwrap();
    let mut sender = sender_node.publisher::<VehicleState>(TOPIC).unwrap();
    assert!(sender.wait_for_subscribers(Duration::from_secs(10)));
    let system = sender_node.system();
    let inject = |body: &str| {
        let before = receiver.faults().active();
        let command: FaultCommand = serde_json::from_str(body).unwrap();
        system.send_fault("receiver", &command).unwrap();
        // The command travels its own way: wait until the receiver has applied it.
        wait_until("the fault command applied", Duration::from_secs(10), || receiver.faults().active() != before);
    };

    // Warm-up: everything arrives.
    let clean = exchange(&mut sender, &receiver, &mut input, 50, 0);
    assert_eq!(clean.len(), 50);

    inject(&format!(r#"{{"input": "{TOPIC}", "drop_pct": 30}}"#));
    let lossy = exchange(&mut sender, &receiver, &mut input, 400, 1000);
    assert!((220..340).contains(&lossy.len()), "about 70 % of 400 delivered: {}", lossy.len());
    assert!(input.stats().lost_in_transport >= 60, "the gaps count as lost: {:?}", input.stats());
    let events_seen = fault_events(&mut events);
    assert!(events_seen.iter().any(|d| d.contains("drop 30%")), "{events_seen:?}");

    inject(r#"{"drop_pct": 0, "delay_ms": 80}"#);
    let start = Instant::now();
    sender.publish(&state(5000)).unwrap();
    loop {
        receiver.wait_for_input(Duration::from_millis(2));
        if let Some(m) = input.recv() {
            assert_eq!(m.message.header.stamp.nanosec, 5000);
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "the delayed message never came");
    }
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(80), "held for the delay: {waited:?}");

    inject(r#"{"delay_ms": 0, "freeze": true}"#);
    let frozen = exchange(&mut sender, &receiver, &mut input, 20, 6000);
    assert_eq!(frozen.len(), 20, "a freeze delivers as many messages ...");
    assert!(frozen.iter().all(|m| m.0 == 6000 && m.1 == 6000.0), "... all of them the first: {frozen:?}");

    inject(r#"{"freeze": false, "corrupt_pct": 100}"#);
    let before = input.stats().decode_errors;
    let corrupted = exchange(&mut sender, &receiver, &mut input, 100, 7000);
    let errors = input.stats().decode_errors - before;
    let intact = corrupted.iter().filter(|m| m.3 == state(m.0)).count();
    // Flipped bytes either break the encoding (counted, reported) or change the values; a few
    // land on bytes decoders ignore (encapsulation options, padding). Nothing panics.
    assert!(errors as usize + corrupted.len() >= 95, "{errors} errors, {} delivered", corrupted.len());
    assert!(intact <= 15, "{intact} of {} delivered messages untouched", corrupted.len());

    inject(r#"{"clear": true}"#);
    let healed = exchange(&mut sender, &receiver, &mut input, 50, 9000);
    assert_eq!(healed.iter().map(|m| m.0).collect::<Vec<_>>(), (9000..9050).collect::<Vec<_>>());
    assert!(fault_events(&mut events).iter().any(|d| d == "faults cleared"));
}

/// C2: fault injection is off unless the launch turns it on: a node that was not told to
/// listen ignores `{"freeze": true}` on its fault key, and its input keeps delivering fresh
/// messages.
#[test]
fn without_fault_injection_the_fault_key_is_ignored() {
    let port = 17752;
    let transport = TransportConfig { prefix: format!("faults{port}"), ..TransportConfig::loopback(port) };
    let sender_node = Node::new(NodeOptions::new("sender").transport(transport.clone())).unwrap();
    let receiver = Node::new(NodeOptions::new("receiver").transport(transport.clone())).unwrap();
    let mut input = receiver.subscriber::<VehicleState>(TOPIC, InputOptions::default().capacity(1024)).unwrap();
    let mut sender = sender_node.publisher::<VehicleState>(TOPIC).unwrap();
    assert!(sender.wait_for_subscribers(Duration::from_secs(10)));
    let command = FaultCommand { freeze: Some(true), drop_pct: Some(100.0), ..Default::default() };
    sender_node.system().send_fault("receiver", &command).unwrap();
    // Absence can only be shown over time: what an enabled node would have applied by now.
    std::thread::sleep(Duration::from_millis(200));
    let got = exchange(&mut sender, &receiver, &mut input, 20, 100);
    assert_eq!(got.iter().map(|m| m.0).collect::<Vec<_>>(), (100..120).collect::<Vec<_>>(), "nothing injected");
    assert!(receiver.faults().active().is_none());
}
