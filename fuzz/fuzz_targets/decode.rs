//! Feeds arbitrary bytes to the decoder of every message type: fresh, in place into a default
//! message, in place into a message already holding data (the shrink and grow reuse paths),
//! and as the borrowed views the runtime reads shared memory with (`to_rgb8` included).
#![no_main]

use libfuzzer_sys::fuzz_target;
use reflex_msgs::reflex_msgs as reflex;
use reflex_msgs::{
    decode, decode_into, decode_prefix, diagnostic_msgs, geometry_msgs, rosgraph_msgs, sensor_msgs, std_msgs,
    vision_msgs, Message,
};

fn all<T: Message>(data: &[u8], populated: &T) {
    let _ = decode::<T>(data);
    let mut place = T::default();
    let _ = decode_into(data, &mut place);
    let mut place = populated.clone();
    let _ = decode_into(data, &mut place);
}

fn populated_detections() -> vision_msgs::Detection2DArray {
    let mut message = vision_msgs::Detection2DArray::default();
    message.header.frame_id = "camera-with-a-long-frame-id".into();
    for k in 0..4 {
        let mut detection = vision_msgs::Detection2D { id: format!("detection {k}"), ..Default::default() };
        detection.results.push(vision_msgs::ObjectHypothesisWithPose {
            hypothesis: vision_msgs::ObjectHypothesis { class_id: "person".into(), score: 0.5 },
            ..Default::default()
        });
        message.detections.push(detection);
    }
    message
}

fuzz_target!(|data: &[u8]| {
    all(data, &std_msgs::Header { frame_id: "base_link".into(), ..Default::default() });
    all(
        data,
        &sensor_msgs::Image {
            encoding: "rgb8".into(),
            width: 2,
            height: 2,
            step: 6,
            data: reflex_msgs::Bytes(vec![7; 12]),
            ..Default::default()
        },
    );
    all(data, &sensor_msgs::CompressedImage::default());
    all(data, &sensor_msgs::CameraInfo { d: vec![0.1; 5], ..Default::default() });
    all(data, &populated_detections());
    all(data, &geometry_msgs::TwistStamped::default());
    all(data, &diagnostic_msgs::DiagnosticArray::default());
    all(data, &reflex::BrakeRequest { reason: "a reason".into(), ..Default::default() });
    all(data, &reflex::SafeStop::default());
    all(data, &reflex::TrackedObjectArray::default());
    all(data, &reflex::MonitorEvent { detail: "detail".into(), ..Default::default() });
    all(data, &reflex::VehicleState::default());
    all(data, &rosgraph_msgs::Clock::default());
    // Borrowed views: what subscribers read in place (shared memory), and the conversion the
    // detector runs on them.
    if let Ok(view) = decode::<sensor_msgs::ImageView>(data) {
        let mut scratch = Vec::new();
        let _ = view.to_rgb8(&mut scratch);
    }
    let _ = decode::<sensor_msgs::CompressedImageView>(data);
    let _ = decode::<std_msgs::HeaderView>(data);
    let _ = decode_prefix::<std_msgs::HeaderView>(data);
});
