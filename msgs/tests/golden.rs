//! Byte equality with Python `rosbags` (see `scripts/make_golden.py`): for every type, our
//! encoding of the fixture's value equals rosbags' bytes, and decoding rosbags' bytes gives the value.

use ::reflex_msgs::reflex_msgs as reflex;
use ::reflex_msgs::{
    builtin_interfaces, decode, decode_into, diagnostic_msgs, encode, geometry_msgs, rosgraph_msgs, schema_text,
    sensor_msgs, std_msgs, vision_msgs, Message,
};
use std::path::Path;

fn check<T: Message + PartialEq>(stem: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let golden = std::fs::read(dir.join(format!("{stem}.cdr"))).expect("golden .cdr fixture");
    let json = std::fs::read_to_string(dir.join(format!("{stem}.json"))).expect("golden .json fixture");
    let value: T = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{stem}.json: {e}"));
    assert_eq!(T::NAME.replace("/msg/", "__"), stem, "fixture name matches the ROS type name");

    let encoded = encode(&value);
    assert_eq!(encoded, golden, "{}: our CDR differs from rosbags'", T::NAME);

    let decoded: T = decode(&golden).unwrap_or_else(|e| panic!("{}: {e}", T::NAME));
    assert_eq!(decoded, value, "{}: decoding rosbags' bytes", T::NAME);

    // In-place decoding over a value that holds other data must give the same result.
    let mut place = T::default();
    decode_into(&golden, &mut place).unwrap();
    decode_into(&golden, &mut place).unwrap();
    assert_eq!(place, value, "{}: decode_into", T::NAME);
}

#[test]
fn builtin_and_std() {
    check::<builtin_interfaces::Time>("builtin_interfaces__Time");
    check::<std_msgs::Header>("std_msgs__Header");
    check::<rosgraph_msgs::Clock>("rosgraph_msgs__Clock");
}

#[test]
fn sensor_msgs() {
    check::<sensor_msgs::Image>("sensor_msgs__Image");
    check::<sensor_msgs::CompressedImage>("sensor_msgs__CompressedImage");
    check::<sensor_msgs::RegionOfInterest>("sensor_msgs__RegionOfInterest");
    check::<sensor_msgs::CameraInfo>("sensor_msgs__CameraInfo");
}

#[test]
fn vision_geometry_diagnostic() {
    check::<vision_msgs::Detection2DArray>("vision_msgs__Detection2DArray");
    check::<geometry_msgs::TwistStamped>("geometry_msgs__TwistStamped");
    check::<diagnostic_msgs::DiagnosticArray>("diagnostic_msgs__DiagnosticArray");
}

#[test]
fn reflex_types() {
    check::<reflex::VehicleState>("reflex_msgs__VehicleState");
    check::<reflex::BrakeRequest>("reflex_msgs__BrakeRequest");
    check::<reflex::SafeStop>("reflex_msgs__SafeStop");
    check::<reflex::TrackedObjectArray>("reflex_msgs__TrackedObjectArray");
    check::<reflex::MonitorEvent>("reflex_msgs__MonitorEvent");
}

#[test]
fn every_fixture_is_checked() {
    // A fixture added by the script but forgotten here would otherwise pass silently.
    let source = include_str!("golden.rs");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if let Some(stem) = name.strip_suffix(".cdr") {
            assert!(source.contains(&format!("(\"{stem}\")")), "fixture {name} has no check");
        }
    }
}

#[test]
fn header_matches_the_reference_bytes() {
    // The worked example from the CDR notes: Header{stamp(1,2),"cam"}.
    let header = std_msgs::Header { stamp: builtin_interfaces::Time { sec: 1, nanosec: 2 }, frame_id: "cam".into() };
    let expected = [0x00, 0x01, 0x00, 0x00, 1, 0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0, 0x63, 0x61, 0x6D, 0x00];
    assert_eq!(encode(&header), expected);
}

#[test]
fn schema_text_lists_each_dependency_once() {
    let schema = schema_text::<vision_msgs::Detection2DArray>();
    assert!(schema.starts_with("std_msgs/Header header\nvision_msgs/Detection2D[] detections\n"));
    for dependency in [
        "std_msgs/Header",
        "builtin_interfaces/Time",
        "vision_msgs/Detection2D",
        "vision_msgs/ObjectHypothesisWithPose",
        "geometry_msgs/PoseWithCovariance",
        "geometry_msgs/Quaternion",
        "vision_msgs/BoundingBox2D",
        "vision_msgs/Point2D",
    ] {
        let line = format!("\nMSG: {dependency}\n");
        assert_eq!(schema.matches(&line).count(), 1, "{dependency} in\n{schema}");
    }
    let separator = format!("{}\nMSG: ", "=".repeat(80));
    // Header, Time, Detection2D, ObjectHypothesisWithPose, ObjectHypothesis, PoseWithCovariance,
    // Pose, Point, Quaternion, BoundingBox2D, Pose2D, Point2D.
    assert_eq!(schema.matches(&separator).count(), 12);
}

#[test]
fn views_read_rosbags_bytes_in_place() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let golden = std::fs::read(dir.join("sensor_msgs__Image.cdr")).unwrap();
    let owned: sensor_msgs::Image = decode(&golden).unwrap();
    let view: sensor_msgs::ImageView = decode(&golden).unwrap();
    assert_eq!((view.width, view.height, view.encoding, view.step), (owned.width, owned.height, "rgb8", owned.step));
    assert_eq!(view.header.frame_id, owned.header.frame_id);
    assert_eq!(view.data, owned.data.as_slice());
    let data_range = golden.as_ptr_range();
    assert!(data_range.contains(&view.data.as_ptr()), "image data is borrowed from the buffer, not copied");
    assert_eq!(encode(&view), golden, "a view encodes to the same bytes");

    let golden = std::fs::read(dir.join("sensor_msgs__CompressedImage.cdr")).unwrap();
    let owned: sensor_msgs::CompressedImage = decode(&golden).unwrap();
    let view: sensor_msgs::CompressedImageView = decode(&golden).unwrap();
    assert_eq!((view.format, view.data), (owned.format.as_str(), owned.data.as_slice()));
}
