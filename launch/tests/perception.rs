//! The perception chain as real processes under `reflex launch`: the camera node playing the
//! fixture photographs from a folder, the detector node on them, and this test as a third
//! process on the same zenoh network checking what comes out.

use reflex_msgs::sensor_msgs::{CameraInfo, ImageView};
use reflex_msgs::vision_msgs::Detection2DArray;
use reflex_runtime::{InputOptions, Node, NodeOptions, TransportConfig};
use reflex_testing::{launch, root};
use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

#[test]
fn camera_folder_to_detector_over_zenoh() {
    let port = 17721;
    let prefix = format!("perception{port}");
    let file = std::env::temp_dir().join(format!("reflex-perception-{port}.yaml"));
    std::fs::write(
        &file,
        format!(
            "zenoh: {{prefix: {prefix}, rendezvous_port: {port}}}\n\
             nodes:\n\
             \x20 - name: camera\n    kind: camera\n    params: {{source: folder, path: nodes/detector/tests/fixtures, fps: 4, height_m: 1.4, pitch_deg: 2}}\n\
             \x20 - name: detector\n    kind: detector\n"
        ),
    )
    .unwrap();
    let observer = Node::new(
        NodeOptions::new("perception-observer")
            .transport(TransportConfig { prefix, ..TransportConfig::loopback(port) }),
    )
    .unwrap();
    let mut images = observer
        .subscriber::<reflex_msgs::sensor_msgs::Image>("/camera/image", InputOptions::default().capacity(64))
        .unwrap();
    let mut infos =
        observer.subscriber::<CameraInfo>("/camera/camera_info", InputOptions::default().capacity(64)).unwrap();
    let mut detections = observer
        .subscriber::<Detection2DArray>("/perception/detections", InputOptions::default().capacity(64))
        .unwrap();
    let _launch = launch(&file, |command| {
        command.current_dir(root()).env("REFLEX_LOG", "warn").stdout(Stdio::null());
    });

    let (mut image_stamps, mut first_image) = (BTreeSet::new(), None);
    let (mut messages, mut matched, mut dog_frame, mut crowd_frame, mut mounting) = (0, 0, false, false, None);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60)
        && !(messages >= 8 && dog_frame && crowd_frame && mounting.is_some())
    {
        observer.wait_for_input(Duration::from_millis(50));
        while let Some(Ok(frame)) = images.recv_view::<ImageView>() {
            let stamp = frame.message.header.stamp.as_nanos();
            assert_eq!((frame.message.width, frame.message.height, frame.message.encoding), (768, 576, "rgb8"));
            first_image.get_or_insert(stamp);
            image_stamps.insert(stamp);
        }
        while let Some(info) = infos.recv() {
            mounting = info.message.mounting();
        }
        while let Some(received) = detections.recv() {
            let message = received.message;
            let stamp = message.header.stamp.as_nanos();
            if first_image.is_none_or(|first| stamp < first) {
                continue; // a frame from before this test's subscription was ready
            }
            messages += 1;
            // Every detection message answers a frame the camera published, stamp for stamp.
            matched += usize::from(image_stamps.contains(&stamp));
            let labels: Vec<&str> =
                message.detections.iter().map(|d| d.results[0].hypothesis.class_id.as_str()).collect();
            dog_frame |= labels.contains(&"dog") && labels.contains(&"bicycle");
            crowd_frame |= labels.iter().filter(|l| **l == "person").count() >= 3;
            for d in &message.detections {
                assert_eq!(d.header.stamp, message.header.stamp);
                assert!(d.bbox.size_x > 0.0 && d.bbox.center.position.x <= 768.0, "{d:?}");
            }
        }
    }
    let _ = std::fs::remove_file(&file);
    assert!(messages >= 8, "only {messages} detection messages in 60 s");
    assert_eq!(matched, messages, "every detection stamp equals a published frame's stamp");
    assert!(dog_frame, "the dog photograph gave a dog and a bicycle");
    assert!(crowd_frame, "a vtest frame gave at least three people");
    let mounting = mounting.expect("camera info with the mounting");
    assert!((mounting.height_m - 1.4).abs() < 1e-9 && (mounting.pitch_rad.to_degrees() - 2.0).abs() < 1e-9);
}
