//! The members of a group (nodes as threads of one process) share one zenoh session, so a
//! message from one to another is handed over inside the process. Proven with sessions that
//! have no way to reach each other: each listens on its own ephemeral port and connects to
//! nothing (no multicast scouting), so only a shared session can deliver.

use reflex_msgs::reflex_msgs::BrakeRequest;
use reflex_runtime::transport::use_session_on_this_thread;
use reflex_runtime::{InputOptions, Node, NodeOptions, TransportConfig};
use std::time::{Duration, Instant};

fn isolated() -> TransportConfig {
    TransportConfig {
        listen: vec!["tcp/127.0.0.1:0".into()],
        prefix: format!("groupsession{}", std::process::id()),
        ..TransportConfig::default()
    }
}

/// Publishes requests of level 1..=3 from `from` to `to` on `/group/request` for up to
/// `within`; returns the levels `to` received.
fn exchange(from: &Node, to: &Node, within: Duration) -> Vec<u8> {
    let mut input = to.subscriber::<BrakeRequest>("/group/request", InputOptions::default()).unwrap();
    let mut output = from.publisher::<BrakeRequest>("/group/request").unwrap();
    let mut received = Vec::new();
    let start = Instant::now();
    let mut level = 0;
    while received.len() < 3 && start.elapsed() < within {
        if level < 3 {
            level += 1;
            output.publish(&BrakeRequest { level, ..Default::default() }).unwrap();
        }
        while let Some(request) = input.recv() {
            received.push(request.message.level);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    received
}

#[test]
fn members_of_a_group_talk_inside_the_process() {
    let session = isolated().open().unwrap();
    let member = std::thread::spawn(move || {
        use_session_on_this_thread(session);
        let camera = Node::new(NodeOptions::new("member-a").transport(isolated())).unwrap();
        let detector = Node::new(NodeOptions::new("member-b").transport(isolated())).unwrap();
        exchange(&camera, &detector, Duration::from_secs(10))
    });
    assert_eq!(member.join().unwrap(), [1, 2, 3], "every message between members arrives, in order");

    // The control: the same settings without a shared session cannot talk at all.
    let a = Node::new(NodeOptions::new("alone-a").transport(isolated())).unwrap();
    let b = Node::new(NodeOptions::new("alone-b").transport(isolated())).unwrap();
    assert_eq!(exchange(&a, &b, Duration::from_secs(1)), Vec::<u8>::new());
}
