//! Recording and replay end to end, with real processes: `reflex record` checked by Python's
//! `mcap` + `mcap-ros2-support` (code nobody here wrote), a `kill -9` in the middle of a
//! recording, `reflex bag info`, and lock-step replay of the vtest recording (written by
//! mcap-ros2-support's writer) through the detector, twice.

use reflex_msgs::diagnostic_msgs::{DiagnosticArray, DiagnosticStatus, KeyValue};
use reflex_msgs::reflex_msgs::BrakeRequest;
use reflex_msgs::sensor_msgs::{CameraInfo, CompressedImage, Image};
use reflex_msgs::vision_msgs::{BoundingBox2D, Detection2D, Detection2DArray, ObjectHypothesisWithPose};
use reflex_msgs::Message;
use reflex_runtime::{InputOptions, Node, NodeOptions, Publisher, TransportConfig};
use reflex_testing::root;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("reflex-bag-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn python() -> PathBuf {
    std::env::var_os("REFLEX_PYTHON").map(PathBuf::from).unwrap_or_else(|| root().join(".local/venv/bin/python"))
}

/// A `reflex` subcommand as a child process on the test's network; SIGINT then kill on drop.
struct Tool(Child);

impl Tool {
    fn start(args: &[&str], prefix: &str, port: u16) -> Self {
        let child = Command::new(reflex_testing::reflex_bin())
            .current_dir(root())
            .args(args)
            .args(["--prefix", prefix, "--connect", &format!("tcp/127.0.0.1:{port}")])
            .env("REFLEX_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Self(child)
    }

    fn interrupt_and_wait(mut self) -> Output {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGINT) };
        self.wait(Duration::from_secs(20))
    }

    fn wait(&mut self, timeout: Duration) -> Output {
        let deadline = Instant::now() + timeout;
        while matches!(self.0.try_wait(), Ok(None)) {
            assert!(Instant::now() < deadline, "reflex did not exit within {timeout:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
        let child = std::mem::replace(&mut self.0, Command::new("true").spawn().unwrap());
        child.wait_with_output().unwrap()
    }
}

impl Drop for Tool {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn node(name: &str, prefix: &str, port: u16) -> Node {
    Node::new(
        NodeOptions::new(name).transport(TransportConfig { prefix: prefix.into(), ..TransportConfig::loopback(port) }),
    )
    .unwrap()
}

fn wait_subscribed<T: Message>(publisher: &Publisher<T>) {
    assert!(
        publisher.wait_for_subscribers(Duration::from_secs(20)),
        "the recorder never subscribed to {}",
        publisher.key()
    );
}

fn pattern(len: usize, seed: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 31 + seed) % 251) as u8).collect()
}

/// Publishes `messages` on `topic`, adding them (as JSON) to `expected`.
fn publish_all<T: Message>(
    publisher: &mut Publisher<T>,
    messages: Vec<(T, Option<usize>)>,
    expected: &mut BTreeMap<String, serde_json::Value>,
    topic: &str,
) {
    for (message, seed) in messages {
        publisher.publish(&message).unwrap();
        let mut json = serde_json::to_value(&message).unwrap();
        if let Some(seed) = seed {
            json["data_seed"] = seed.into();
        }
        let entry =
            expected.entry(topic.to_string()).or_insert_with(|| serde_json::json!({"type": T::NAME, "messages": []}));
        entry["messages"].as_array_mut().unwrap().push(json);
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn stamped(sec: i32, nanosec: u32) -> reflex_msgs::std_msgs::Header {
    let mut header = reflex_msgs::std_msgs::Header::default();
    header.stamp.sec = sec;
    header.stamp.nanosec = nanosec;
    header.frame_id = "camera".into();
    header
}

#[test]
fn a_recording_decodes_in_python_mcap_to_the_values_written() {
    let (port, prefix) = (17731, "bag17731");
    let dir = scratch("interop");
    let file = dir.join("drive.mcap");
    let publisher = node("bag-source", prefix, port);
    let mut images = publisher.publisher::<Image>("/camera/image").unwrap();
    let mut compressed = publisher.publisher::<CompressedImage>("/camera/image/compressed").unwrap();
    let mut infos = publisher.publisher::<CameraInfo>("/camera/camera_info").unwrap();
    let mut detections = publisher.publisher::<Detection2DArray>("/perception/detections").unwrap();
    let mut brakes = publisher.publisher::<BrakeRequest>("/aeb/brake_request").unwrap();
    let mut diagnostics = publisher.publisher::<DiagnosticArray>("/diagnostics").unwrap();
    let recorder = Tool::start(&["record", "-o", file.to_str().unwrap()], prefix, port);
    wait_subscribed(&images);
    wait_subscribed(&compressed);
    wait_subscribed(&infos);
    wait_subscribed(&detections);
    wait_subscribed(&brakes);
    wait_subscribed(&diagnostics);

    let mut expected = BTreeMap::new();
    let frames = (0..4)
        .map(|k| {
            let data = pattern(640 * 480 * 3, k);
            (
                Image {
                    header: stamped(100 + k as i32, 5),
                    width: 640,
                    height: 480,
                    encoding: "rgb8".into(),
                    step: 1920,
                    data: data.into(),
                    ..Default::default()
                },
                Some(k),
            )
        })
        .collect();
    publish_all(&mut images, frames, &mut expected, "/camera/image");
    let jpegs = (0..3)
        .map(|k| {
            (
                CompressedImage {
                    header: stamped(200, k as u32),
                    format: "jpeg".into(),
                    data: pattern(5000 + k, k).into(),
                },
                Some(k),
            )
        })
        .collect();
    publish_all(&mut compressed, jpegs, &mut expected, "/camera/image/compressed");
    let info = CameraInfo::pinhole(
        640,
        480,
        500.5,
        501.25,
        320.0,
        240.0,
        reflex_msgs::Mounting { height_m: 1.3, pitch_rad: 0.03 },
    );
    publish_all(&mut infos, vec![(info, None)], &mut expected, "/camera/camera_info");
    let arrays = (0..3)
        .map(|k| {
            let mut detection = Detection2D { header: stamped(300, k), id: format!("track-{k}"), ..Default::default() };
            let mut hypothesis = ObjectHypothesisWithPose::default();
            hypothesis.hypothesis.class_id = "person".into();
            hypothesis.hypothesis.score = 0.5 + f64::from(k) / 10.0;
            hypothesis.pose.pose.position.x = 12.25;
            detection.results = vec![hypothesis];
            detection.bbox = BoundingBox2D { size_x: 30.5, size_y: 80.0, ..Default::default() };
            detection.bbox.center.position.x = 400.0 + f64::from(k);
            (Detection2DArray { header: stamped(300, k), detections: vec![detection.clone(), detection] }, None)
        })
        .collect();
    publish_all(&mut detections, arrays, &mut expected, "/perception/detections");
    let requests = (0..5u8)
        .map(|k| {
            (
                BrakeRequest {
                    header: stamped(400, u32::from(k)),
                    level: k % 4,
                    deceleration_mps2: -f64::from(k) * 1.5,
                    time_to_collision_s: 1.0 / (1.0 + f64::from(k)),
                    reason: format!("reason {k}"),
                    source: "aeb".into(),
                },
                None,
            )
        })
        .collect();
    publish_all(&mut brakes, requests, &mut expected, "/aeb/brake_request");
    let status = DiagnosticStatus {
        level: DiagnosticStatus::WARN,
        name: "camera".into(),
        message: "late".into(),
        hardware_id: "usb-1".into(),
        values: vec![KeyValue { key: "rate_hz".into(), value: "29.7".into() }],
    };
    publish_all(
        &mut diagnostics,
        vec![(DiagnosticArray { header: stamped(500, 0), status: vec![status] }, None)],
        &mut expected,
        "/diagnostics",
    );
    std::thread::sleep(Duration::from_millis(500));
    let output = recorder.interrupt_and_wait();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "reflex record failed:\n{stderr}");
    assert!(stderr.contains("0 dropped"), "{stderr}");

    let expected_file = dir.join("expected.json");
    std::fs::write(&expected_file, serde_json::json!({ "topics": expected }).to_string()).unwrap();
    let check = Command::new(python())
        .arg(root().join("nodes/recorder/tests/check_mcap.py"))
        .arg(&file)
        .arg(&expected_file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} (run ./scripts/setup.sh): {e}", python().display()));
    let report = String::from_utf8_lossy(&check.stdout);
    println!("{report}");
    assert!(check.status.success(), "python mcap check failed: {}{report}", String::from_utf8_lossy(&check.stderr));
    assert_eq!(report.lines().filter(|l| l.ends_with("decoded and equal")).count(), 6, "{report}");

    // And `reflex bag info` agrees on the counts.
    let info = Command::new(reflex_testing::reflex_bin()).args(["bag", "info"]).arg(&file).output().unwrap();
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(info.status.success(), "{text}");
    assert!(text.contains("profile:     ros2") && text.contains("messages:    17") && text.contains("zstd"), "{text}");
    assert!(
        text.lines().any(|l| l.trim_start().starts_with("/camera/image ")
            && l.contains(" 4 ")
            && l.contains("sensor_msgs/msg/Image")),
        "{text}"
    );
}

#[test]
fn kill_9_loses_at_most_the_flush_window() {
    let (port, prefix) = (17732, "bag17732");
    let dir = scratch("crash");
    let file = dir.join("crash.mcap");
    let publisher = node("crash-source", prefix, port);
    let mut requests = publisher.publisher::<BrakeRequest>("/aeb/brake_request").unwrap();
    let mut recorder = Tool::start(&["record", "-o", file.to_str().unwrap(), "--flush-period-s", "1"], prefix, port);
    wait_subscribed(&requests);
    // 100 Hz for 3.5 s, each message numbered in its stamp; then kill -9 mid-stream.
    let start = Instant::now();
    let mut sent = 0u32;
    while start.elapsed() < Duration::from_millis(3500) {
        sent += 1;
        requests.publish(&BrakeRequest { header: stamped(0, sent), ..Default::default() }).unwrap();
        std::thread::sleep(Duration::from_millis(10));
    }
    // SAFETY: killing our own child.
    unsafe { libc::kill(recorder.0.id() as i32, libc::SIGKILL) };
    recorder.wait(Duration::from_secs(5));

    let (messages, damage) = reflex_recorder::read_messages(&file).expect("the file reads back");
    let numbers: Vec<u32> =
        messages.iter().map(|m| reflex_msgs::decode::<BrakeRequest>(&m.data).unwrap().header.stamp.nanosec).collect();
    let lost = sent as usize - numbers.len();
    println!(
        "sent {sent}, read back {}, lost {lost} ({:.2} s at 100 Hz); damage: {damage:?}",
        numbers.len(),
        lost as f64 / 100.0
    );
    assert!(!numbers.is_empty(), "nothing survived");
    assert_eq!(numbers, (1..=numbers.len() as u32).collect::<Vec<_>>(), "a gap-free prefix survives");
    // At most one flush period (100 messages) plus what was in flight at the kill.
    assert!(lost <= 100 + 15, "lost {lost} messages, more than the 1 s flush window");

    // Python's streaming reader reads the same prefix from the unclosed file.
    let script = "import sys\nfrom mcap.stream_reader import StreamReader\nfrom mcap.records import Message\nn=0\n\
                  try:\n    [n := n + isinstance(r, Message) for r in StreamReader(open(sys.argv[1],'rb'), skip_magic=False).records]\n\
                  except Exception as e:\n    print('stopped:', type(e).__name__, file=sys.stderr)\nprint(n)\n";
    let output = Command::new(python()).args(["-c", script]).arg(&file).output().unwrap();
    let count: usize = String::from_utf8_lossy(&output.stdout).trim().parse().unwrap_or_else(|_| panic!("{output:?}"));
    assert_eq!(count, numbers.len(), "python reads as many messages as we do");
}

#[test]
fn lockstep_replay_through_the_detector_is_repeatable() {
    let (port, prefix) = (17733, "bag17733");
    let dir = scratch("lockstep");
    let launch_file = dir.join("detector.yaml");
    std::fs::write(&launch_file, format!("zenoh: {{prefix: {prefix}, rendezvous_port: {port}}}\nnodes:\n  - name: detector\n    kind: detector\n    inputs:\n      image: {{capacity: 4, policy: drop_newest, external: true}}\n")).unwrap();
    let observer = node("lockstep-observer", prefix, port);
    let mut detections = observer
        .subscriber::<Detection2DArray>("/perception/detections", InputOptions::default().capacity(256))
        .unwrap();
    let mut launch = Command::new(reflex_testing::reflex_bin())
        .current_dir(root())
        .arg("launch")
        .arg(&launch_file)
        .env("REFLEX_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let fixture = root().join("nodes/recorder/tests/fixtures/vtest.mcap");
    let recording = dir.join("detections.mcap");
    let mut runs: Vec<Vec<(i64, Vec<(String, i64, [i64; 4])>)>> = Vec::new();
    for run in 0..2 {
        let recorder = (run == 0).then(|| {
            Tool::start(&["record", "-o", recording.to_str().unwrap(), "/perception/detections"], prefix, port)
        });
        if recorder.is_some() {
            std::thread::sleep(Duration::from_secs(1));
        }
        let mut replay = Tool::start(
            &[
                "replay",
                fixture.to_str().unwrap(),
                "--decompress",
                "--lockstep",
                "/camera/image:/perception/detections",
            ],
            prefix,
            port,
        );
        // The detector process starts with the first run: give lock-step time for its first answer.
        let output = replay.wait(Duration::from_secs(120));
        assert!(output.status.success(), "replay failed: {}", String::from_utf8_lossy(&output.stderr));
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("50 answered in lock-step"),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        std::thread::sleep(Duration::from_millis(300));
        let mut seen = Vec::new();
        while let Some(received) = detections.recv() {
            let message = received.message;
            // Scores and boxes to 1e-6 and 1e-3 px: the same frames must give the same detections.
            let found = message
                .detections
                .iter()
                .map(|d| {
                    let b = &d.bbox;
                    let corners = [
                        b.center.position.x - b.size_x / 2.0,
                        b.center.position.y - b.size_y / 2.0,
                        b.size_x,
                        b.size_y,
                    ];
                    (
                        d.results[0].hypothesis.class_id.clone(),
                        (d.results[0].hypothesis.score * 1e6).round() as i64,
                        corners.map(|v| (v * 1e3).round() as i64),
                    )
                })
                .collect();
            seen.push((message.header.stamp.as_nanos(), found));
        }
        if let Some(recorder) = recorder {
            let output = recorder.interrupt_and_wait();
            assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        }
        runs.push(seen);
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(launch.id() as i32, libc::SIGINT) };
    let _ = launch.wait();
    assert_eq!(runs[0].len(), 50, "one detections message per frame");
    let people: usize = runs[0].iter().map(|(_, f)| f.iter().filter(|d| d.0 == "person").count()).sum();
    println!("run 1: 50 frames, {people} person detections; run 2 identical: {}", runs[0] == runs[1]);
    assert!(people >= 100, "pedestrians in vtest: {people}");
    assert_eq!(runs[0], runs[1], "two lock-step runs give the same detections");
    let (recorded, _) = reflex_recorder::read_messages(&recording).unwrap();
    assert_eq!(recorded.len(), 50, "the detections of run 1 were recorded");
}
