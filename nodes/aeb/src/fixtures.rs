//! Detections the way a camera model sees an object: for the tests of this crate and of the
//! nodes and tools built on it.

use crate::range::CameraModel;
use reflex_msgs::builtin_interfaces::Time;
use reflex_msgs::vision_msgs::{Detection2D, Detection2DArray, ObjectHypothesis, ObjectHypothesisWithPose};

/// One frame's detections of a 1.75 m wide, 1.5 m high object of `class_id` at range `z` m,
/// centred in the lane, score 0.9, stamped `stamp_ns`.
pub fn car_at(camera: &CameraModel, z: f64, stamp_ns: i64, class_id: &str) -> Detection2DArray {
    let (left, bottom) = camera.project(z, 0.875, 0.0).expect("the object is in front of the camera");
    let (right, _) = camera.project(z, -0.875, 0.0).expect("the object is in front of the camera");
    let (_, top) = camera.project(z, 0.0, 1.5).expect("the object is in front of the camera");
    let mut detection = Detection2D::default();
    detection.bbox.center.position.x = (left + right) / 2.0;
    detection.bbox.center.position.y = (top + bottom) / 2.0;
    detection.bbox.size_x = right - left;
    detection.bbox.size_y = bottom - top;
    detection.results.push(ObjectHypothesisWithPose {
        hypothesis: ObjectHypothesis { class_id: class_id.into(), score: 0.9 },
        ..Default::default()
    });
    let mut message = Detection2DArray { detections: vec![detection], ..Default::default() };
    message.header.stamp = Time::from_nanos(stamp_ns);
    message
}
