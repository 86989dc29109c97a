//! Reflex functions through a real node: the example alert reflex, a budget overrun and a
//! panic, each seen from another node as output or monitor events.

use reflex_msgs::reflex_msgs::{BrakeRequest, MonitorEvent};
use reflex_msgs::topics;
use reflex_msgs::vision_msgs::{Detection2D, Detection2DArray, ObjectHypothesis, ObjectHypothesisWithPose};
use reflex_runtime::reflex::{run_reflex, Reflex, ReflexContext, ReflexOptions};
use reflex_runtime::{InputOptions, Node, NodeOptions, Shutdown, TransportConfig};
use std::time::{Duration, Instant};

/// The example from the module docs: warns when a person is between two image columns.
struct PersonAlert {
    left: f64,
    right: f64,
    /// Test hooks: sleep this long per call; panic on this frame.
    sleep: Duration,
    panic_on_frame: Option<i32>,
}

impl Reflex for PersonAlert {
    type Input = Detection2DArray;
    type Output = BrakeRequest;

    fn react(&mut self, detections: &Detection2DArray, alert: &mut BrakeRequest, context: &ReflexContext) -> bool {
        std::thread::sleep(self.sleep);
        if self.panic_on_frame == Some(detections.header.stamp.sec) {
            panic!("frame {} is cursed", detections.header.stamp.sec);
        }
        let person_ahead = detections.detections.iter().any(|d| {
            let x = d.bbox.center.position.x;
            (self.left..=self.right).contains(&x) && d.results.iter().any(|r| r.hypothesis.class_id == "person")
        });
        alert.header.stamp = detections.header.stamp;
        alert.level = if person_ahead { BrakeRequest::LEVEL_WARN } else { BrakeRequest::LEVEL_NONE };
        alert.source.clear();
        alert.source.push_str(context.name);
        true
    }
}

fn frame(sec: i32, class_id: &str, x: f64) -> Detection2DArray {
    let mut detection = Detection2D::default();
    detection.bbox.center.position.x = x;
    detection.results.push(ObjectHypothesisWithPose {
        hypothesis: ObjectHypothesis { class_id: class_id.into(), score: 0.9 },
        ..Default::default()
    });
    let mut message = Detection2DArray { detections: vec![detection], ..Default::default() };
    message.header.stamp.sec = sec;
    message
}

/// Runs `reflex` in a node on its own thread, feeds `frames` from a second node, and returns
/// the alerts and monitor events that second node saw.
/// Stops waiting once `done` says so (or after 5 s).
type Done = fn(&[BrakeRequest], &[MonitorEvent]) -> bool;

fn exercise(
    port: u16,
    reflex: PersonAlert,
    budget: Duration,
    frames: &[Detection2DArray],
    done: Done,
) -> (Vec<BrakeRequest>, Vec<MonitorEvent>) {
    let transport = TransportConfig { prefix: format!("reflex{port}"), ..TransportConfig::loopback(port) };
    let shutdown = Shutdown::new();
    let runner = {
        let (transport, shutdown) = (transport.clone(), shutdown.clone());
        std::thread::spawn(move || {
            let node = Node::new(NodeOptions::new("alert-node").transport(transport)).unwrap();
            let options = ReflexOptions {
                name: "person-alert".into(),
                input_topic: "/detections".into(),
                input: InputOptions::default().capacity(16),
                output_topic: "/alert".into(),
                budget,
            };
            run_reflex(&node, reflex, &options, &shutdown).unwrap()
        })
    };
    let observer = Node::new(NodeOptions::new("observer").transport(transport)).unwrap();
    let mut alerts = observer.subscriber::<BrakeRequest>("/alert", InputOptions::default().capacity(64)).unwrap();
    let mut events =
        observer.subscriber::<MonitorEvent>(topics::MONITOR_EVENTS, InputOptions::default().capacity(64)).unwrap();
    let mut detections = observer.publisher::<Detection2DArray>("/detections").unwrap();
    assert!(detections.wait_for_subscribers(Duration::from_secs(20)));
    std::thread::sleep(Duration::from_millis(100));
    for message in frames {
        detections.publish(message).unwrap();
        std::thread::sleep(Duration::from_millis(30));
    }
    let (mut seen_alerts, mut seen_events) = (Vec::new(), Vec::new());
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        observer.wait_for_input(Duration::from_millis(20));
        while let Some(alert) = alerts.recv() {
            seen_alerts.push(alert.message.clone());
        }
        while let Some(event) = events.recv() {
            if event.message.node == "alert-node" {
                seen_events.push(event.message.clone());
            }
        }
        if done(&seen_alerts, &seen_events) {
            break;
        }
    }
    shutdown.request();
    let report = runner.join().unwrap();
    assert!(report.calls as usize <= frames.len());
    (seen_alerts, seen_events)
}

#[test]
fn the_alert_reflex_warns_for_a_person_in_the_region_only() {
    let reflex = PersonAlert { left: 200.0, right: 440.0, sleep: Duration::ZERO, panic_on_frame: None };
    let frames =
        [frame(1, "person", 320.0), frame(2, "person", 50.0), frame(3, "car", 320.0), frame(4, "person", 400.0)];
    let (alerts, events) = exercise(17641, reflex, Duration::from_millis(50), &frames, |alerts, _| alerts.len() == 4);
    let levels: Vec<(i32, u8)> = alerts.iter().map(|a| (a.header.stamp.sec, a.level)).collect();
    assert_eq!(levels, [(1, 1), (2, 0), (3, 0), (4, 1)]);
    assert!(alerts.iter().all(|a| a.source == "person-alert"));
    assert!(events.iter().all(|e| e.kind != MonitorEvent::KIND_BUDGET_OVERRUN), "{events:?}");
}

#[test]
fn a_slow_reflex_is_reported_while_it_overruns() {
    let reflex = PersonAlert { left: 0.0, right: 640.0, sleep: Duration::from_millis(300), panic_on_frame: None };
    let (alerts, events) =
        exercise(17642, reflex, Duration::from_millis(20), &[frame(1, "person", 1.0)], |alerts, events| {
            alerts.len() == 1 && events.iter().any(|e| e.kind == MonitorEvent::KIND_BUDGET_OVERRUN)
        });
    assert_eq!(alerts.len(), 1, "a slow reflex still delivers");
    let overrun = events.iter().find(|e| e.kind == MonitorEvent::KIND_BUDGET_OVERRUN).expect("overrun event");
    assert_eq!(overrun.topic, "person-alert");
    assert_eq!(overrun.limit_ms, 20.0);
    assert!(
        overrun.value_ms >= 20.0 && overrun.value_ms < 300.0,
        "reported while still running: {} ms",
        overrun.value_ms
    );
}

#[test]
fn a_panicking_reflex_becomes_a_monitor_event_not_a_crash() {
    let reflex = PersonAlert { left: 0.0, right: 640.0, sleep: Duration::ZERO, panic_on_frame: Some(2) };
    let frames = [frame(1, "person", 1.0), frame(2, "person", 1.0), frame(3, "person", 1.0)];
    // Waits the full 5 s: frame 3 must produce nothing, which only time can show.
    let (alerts, events) = exercise(17643, reflex, Duration::from_millis(50), &frames, |_, _| false);
    assert_eq!(alerts.iter().map(|a| a.header.stamp.sec).collect::<Vec<_>>(), [1], "disabled after the panic");
    let failure = events.iter().find(|e| e.kind == MonitorEvent::KIND_CALLBACK_FAILED).expect("failure event");
    assert_eq!(failure.topic, "person-alert");
    assert!(failure.detail.contains("frame 2 is cursed"), "{}", failure.detail);
}
