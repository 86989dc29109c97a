//! Nodes the monitor's integration tests share: a producer at 50 Hz, a consumer whose input
//! has a 100 ms deadline (so its health says whether the producer lives), and a monitor that
//! watches the consumer. Each runs on its own thread until `shutdown`.
#![allow(dead_code)]

use reflex_monitor::node::{run_monitor_on, MonitorConfig};
use reflex_monitor::supervisor::{Release, SupervisorConfig};
use reflex_msgs::reflex_msgs::VehicleState;
use reflex_runtime::{InputOptions, Node, NodeOptions, NodeSpec, Shutdown};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

pub const TOPIC: &str = "/test/state";

/// Publishes on [`TOPIC`] every 20 ms while `producing`.
pub fn producer(options: NodeOptions, shutdown: &Shutdown, producing: &Arc<AtomicBool>) -> JoinHandle<()> {
    let (shutdown, producing) = (shutdown.clone(), producing.clone());
    std::thread::spawn(move || {
        let node = Node::new(options).unwrap();
        let mut out = node.publisher::<VehicleState>(TOPIC).unwrap();
        while !shutdown.is_requested() {
            if producing.load(Ordering::Acquire) {
                let mut state = VehicleState::default();
                state.header.stamp = node.clock().now();
                out.publish(&state).unwrap();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    })
}

/// Takes every message of [`TOPIC`]; its input's deadline is 100 ms.
pub fn consumer(options: NodeOptions, shutdown: &Shutdown) -> JoinHandle<()> {
    let shutdown = shutdown.clone();
    std::thread::spawn(move || {
        let node = Node::new(options).unwrap();
        let deadline = InputOptions::default().capacity(4).deadline(Duration::from_millis(100));
        let mut input = node.subscriber::<VehicleState>(TOPIC, deadline).unwrap();
        while !shutdown.is_requested() {
            node.wait_for_input(Duration::from_millis(5));
            while input.recv().is_some() {}
        }
    })
}

/// A monitor requiring `required`, without command checks, released after 0.3 s without faults.
pub fn monitor(
    options: NodeOptions,
    shutdown: &Shutdown,
    required: &[&str],
    command_deadline_ms: f64,
) -> JoinHandle<()> {
    let shutdown = shutdown.clone();
    let config = MonitorConfig {
        required_nodes: required.iter().map(|n| n.to_string()).collect(),
        startup_grace_s: 2.0,
        command_budget_ms: 0.0,
        command_deadline_ms,
        supervisor: SupervisorConfig { stable_period_s: 0.3, transient_fault_s: 1.0, release: Release::StablePeriod },
        ..MonitorConfig::default()
    };
    std::thread::spawn(move || {
        let spec = NodeSpec { name: options.name.clone(), transport: options.transport.clone(), ..Default::default() };
        let node = Node::new(options).unwrap();
        run_monitor_on(&node, &spec, &config, &shutdown).unwrap();
    })
}
