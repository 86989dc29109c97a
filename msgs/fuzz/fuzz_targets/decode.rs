//! Feeds arbitrary bytes to the decoder of every message type, fresh and in place.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reflex_msgs::reflex_msgs as reflex;
use reflex_msgs::{decode, decode_into, diagnostic_msgs, geometry_msgs, sensor_msgs, std_msgs, vision_msgs, Message};

fn both<T: Message>(data: &[u8]) {
    let _ = decode::<T>(data);
    let mut place = T::default();
    let _ = decode_into(data, &mut place);
}

fuzz_target!(|data: &[u8]| {
    both::<std_msgs::Header>(data);
    both::<sensor_msgs::Image>(data);
    both::<sensor_msgs::CompressedImage>(data);
    both::<sensor_msgs::CameraInfo>(data);
    both::<vision_msgs::Detection2DArray>(data);
    both::<geometry_msgs::TwistStamped>(data);
    both::<diagnostic_msgs::DiagnosticArray>(data);
    both::<reflex::BrakeRequest>(data);
    both::<reflex::SafeStop>(data);
    both::<reflex::TrackedObjectArray>(data);
    both::<reflex::MonitorEvent>(data);
});
