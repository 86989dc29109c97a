//! The `aeb` node end to end over zenoh: synthetic detections of a car the ego vehicle closes
//! on (boxes projected from known geometry) must escalate to full braking in time; a one-frame
//! ghost must not brake at all.

use reflex_aeb::node::AEB_KIND;
use reflex_aeb::range::CameraModel;
use reflex_msgs::builtin_interfaces::Time;
use reflex_msgs::reflex_msgs::{BrakeRequest, TrackedObjectArray, VehicleState};
use reflex_msgs::vision_msgs::Detection2DArray;
use reflex_runtime::{InputOptions, Node, NodeOptions, NodeSpec, Shutdown, TransportConfig};
use std::time::{Duration, Instant};

const CAMERA: CameraModel = CameraModel { fx: 500.0, fy: 500.0, cx: 320.0, cy: 240.0, height_m: 1.3, pitch_rad: 0.0 };

/// Detections of a car at range `z`, centred in the lane.
fn car_at(z: f64, stamp_ns: i64) -> Detection2DArray {
    reflex_aeb::fixtures::car_at(&CAMERA, z, stamp_ns, "car")
}

/// Runs the aeb node, feeds it `frames` at 20 Hz (stamps 50 ms apart) with the ego moving, and
/// returns the brake requests it published.
fn drive(port: u16, frames: &[Option<f64>]) -> Vec<BrakeRequest> {
    drive_at(port, frames, 10.0, Duration::from_millis(50))
}

/// As [`drive`], with the one vehicle state published `state_age` before the frames saying
/// `speed_mps`.
fn drive_at(port: u16, frames: &[Option<f64>], speed_mps: f64, state_age: Duration) -> Vec<BrakeRequest> {
    let transport = TransportConfig { prefix: format!("aeb{port}"), ..TransportConfig::loopback(port) };
    let spec = NodeSpec { name: "aeb".into(), transport: transport.clone(), ..Default::default() };
    let shutdown = Shutdown::new();
    let aeb = {
        let shutdown = shutdown.clone();
        std::thread::spawn(move || (AEB_KIND.run)(spec, shutdown).map_err(|e| e.to_string()))
    };
    let test = Node::new(NodeOptions::new("test").transport(transport)).unwrap();
    let mut requests =
        test.subscriber::<BrakeRequest>("/aeb/brake_request", InputOptions::default().capacity(512)).unwrap();
    let mut tracks =
        test.subscriber::<TrackedObjectArray>("/aeb/tracks", InputOptions::default().capacity(512)).unwrap();
    let mut detections = test.publisher::<Detection2DArray>("/perception/detections").unwrap();
    let mut state = test.publisher::<VehicleState>("/vehicle/state").unwrap();
    assert!(detections.wait_for_subscribers(Duration::from_secs(20)));
    assert!(state.wait_for_subscribers(Duration::from_secs(20)));
    state.publish(&VehicleState { speed_mps, ..Default::default() }).unwrap();
    std::thread::sleep(state_age);
    let mut seen = Vec::new();
    let mut confirmed_tracks = 0;
    for (index, range) in frames.iter().enumerate() {
        let stamp = 1_000_000_000 + index as i64 * 50_000_000;
        let message = match range {
            Some(z) => car_at(*z, stamp),
            None => Detection2DArray {
                header: reflex_msgs::std_msgs::Header { stamp: Time::from_nanos(stamp), ..Default::default() },
                ..Default::default()
            },
        };
        detections.publish(&message).unwrap();
        let wait = Instant::now();
        while seen.len() <= index && wait.elapsed() < Duration::from_secs(5) {
            test.wait_for_input(Duration::from_millis(5));
            while let Some(request) = requests.recv() {
                seen.push(request.message.clone());
            }
            while let Some(array) = tracks.recv() {
                confirmed_tracks = confirmed_tracks.max(array.message.objects.len());
            }
        }
    }
    shutdown.request();
    aeb.join().unwrap().unwrap();
    assert_eq!(seen.len(), frames.len(), "one brake request per detection frame");
    if frames.iter().flatten().count() >= 3 {
        assert!(confirmed_tracks >= 1, "the car became a confirmed track");
    }
    seen
}

#[test]
fn closing_on_a_stopped_car_escalates_to_full_braking_in_time() {
    // 10 m/s towards a stationary car from 40 m, 20 frames a second.
    let frames: Vec<Option<f64>> =
        (0..70).map(|i| 40.0 - 10.0 * f64::from(i) * 0.05).take_while(|range| *range > 6.0).map(Some).collect();
    let requests = drive(17661, &frames);
    let levels: Vec<u8> = requests.iter().map(|r| r.level).collect();
    eprintln!("levels by frame: {levels:?}");
    assert!(levels.windows(2).all(|w| w[1] >= w[0]), "never decreases while closing: {levels:?}");
    let first_full = levels.iter().position(|&l| l == BrakeRequest::LEVEL_FULL).expect("full braking");
    let first_warn = levels.iter().position(|&l| l >= BrakeRequest::LEVEL_WARN).unwrap();
    let range_at_full = frames[first_full].unwrap();
    // 10 m/s needs 10²/(2·9) = 5.6 m at full braking: full braking must start before that.
    assert!(range_at_full > 8.0, "full braking only at {range_at_full} m");
    assert!((first_full - first_warn) as f64 * 0.05 >= 0.8, "warning {first_warn}, full {first_full}");
    let full = &requests[first_full];
    assert!(full.deceleration_mps2 >= 5.0 && full.deceleration_mps2 <= 9.0);
    assert!(full.reason.starts_with("car track"), "{}", full.reason);
    assert_eq!(
        full.header.stamp,
        Time::from_nanos(1_000_000_000 + first_full as i64 * 50_000_000),
        "stamp of the frame"
    );
}

#[test]
fn a_one_frame_ghost_never_brakes() {
    let mut frames = vec![None; 10];
    frames[3] = Some(8.0); // a car appearing 8 m ahead for one frame
    let requests = drive(17662, &frames);
    assert!(
        requests.iter().all(|r| r.level == BrakeRequest::LEVEL_NONE),
        "{:?}",
        requests.iter().map(|r| r.level).collect::<Vec<_>>()
    );
}

/// H9: the vehicle state said 0 m/s once, then its publisher died; the vehicle drives on. A
/// stale standstill must not gate off the car ahead: after `vehicle_state_max_age_ms` (500 ms)
/// the speed counts as unknown and the AEB brakes.
#[test]
fn a_stale_standstill_does_not_gate_off_a_closing_car() {
    let frames: Vec<Option<f64>> =
        (0..70).map(|i| 40.0 - 10.0 * f64::from(i) * 0.05).take_while(|range| *range > 6.0).map(Some).collect();
    let requests = drive_at(17663, &frames, 0.0, Duration::from_millis(700));
    let levels: Vec<u8> = requests.iter().map(|r| r.level).collect();
    let first_full = levels.iter().position(|&l| l == BrakeRequest::LEVEL_FULL);
    assert!(first_full.is_some_and(|f| frames[f].unwrap() > 8.0), "full braking in time: {levels:?}");
}
