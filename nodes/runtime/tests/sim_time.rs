//! `use_sim_time`: a node follows `rosgraph_msgs/Clock` on `/clock` instead of the wall clock,
//! never backwards, and its deadlines run on that time.

use reflex_msgs::builtin_interfaces::Time;
use reflex_msgs::reflex_msgs::MonitorEvent;
use reflex_msgs::rosgraph_msgs::Clock;
use reflex_runtime::{InputOptions, Node, NodeOptions, NodeSpec, TransportConfig};
use std::time::Duration;

/// Waits up to 10 s for `done`.
fn wait_until(what: &str, done: impl FnMut() -> bool) {
    reflex_testing::wait_until(what, Duration::from_secs(10), done);
}

#[test]
fn a_node_with_use_sim_time_follows_the_clock_topic() {
    let port = 17741;
    let transport = TransportConfig { prefix: format!("simtime{port}"), ..TransportConfig::loopback(port) };
    let simulator = Node::new(NodeOptions::new("simulator").transport(transport.clone())).unwrap();
    let spec = NodeSpec { name: "follower".into(), transport, use_sim_time: true, ..Default::default() };
    let follower = Node::new(NodeOptions::from_spec(&spec)).unwrap();
    assert!(follower.clock().is_sim(), "use_sim_time gives the node a simulation clock");
    assert_eq!(follower.clock().now_ns(), 0, "no time before the first /clock message");

    let mut clock = simulator.publisher::<Clock>("/clock").unwrap();
    assert!(clock.wait_for_subscribers(Duration::from_secs(10)));
    let at = |ns: i64| Clock { clock: Time::from_nanos(ns) };
    // Publish until it is seen: the follower's subscription may still be propagating.
    wait_until("the first /clock", || {
        clock.publish(&at(5_000_000_000)).unwrap();
        follower.clock().now_ns() == 5_000_000_000
    });
    clock.publish(&at(7_500_000_000)).unwrap();
    wait_until("7.5 s", || follower.clock().now_ns() == 7_500_000_000);
    clock.publish(&at(6_000_000_000)).unwrap(); // late or repeated: ignored
    clock.publish(&at(8_000_000_000)).unwrap();
    wait_until("8 s", || follower.clock().now_ns() == 8_000_000_000);

    // A deadline on the simulation clock: no message for 2 simulated seconds is a miss, however
    // little wall time passes; and none is missed while simulated time stands still.
    let mut events =
        simulator.subscriber::<MonitorEvent>("/reflex/events", InputOptions::default().capacity(64)).unwrap();
    let _watch = follower.watch_deadline("/never", Duration::from_secs(2)).unwrap();
    let missed = |events: &mut reflex_runtime::Subscriber<MonitorEvent>| {
        let mut seen = false;
        while let Some(event) = events.recv() {
            let e = event.message;
            seen |= e.node == "follower" && e.topic == "/never" && e.kind == MonitorEvent::KIND_DEADLINE_MISSED;
        }
        seen
    };
    // Absence can only be shown over time: half a second of wall time, no miss.
    std::thread::sleep(Duration::from_millis(500));
    assert!(!missed(&mut events), "simulated time stood still: no miss");
    clock.publish(&at(10_500_000_000)).unwrap();
    wait_until("the deadline miss on simulated time", || missed(&mut events));
    // The wall clock was never consulted: the follower's time is what the simulator said.
    assert_eq!(follower.clock().now_ns(), 10_500_000_000);
    // A node without use_sim_time stays on the wall clock.
    assert!(!simulator.clock().is_sim());
}
