//! Decoding arbitrary or damaged bytes never panics and always explains itself; values survive
//! an encode/decode round trip.

use ::reflex_msgs::reflex_msgs as reflex;
use ::reflex_msgs::{
    builtin_interfaces::Time, decode, decode_into, diagnostic_msgs, encode, sensor_msgs, std_msgs::Header, vision_msgs,
    DecodeErrorKind, Message,
};
use proptest::prelude::*;

/// Tries every message type on the same bytes; only the absence of a panic is checked here.
fn decode_as_every_type(bytes: &[u8]) {
    fn one<T: Message>(bytes: &[u8]) {
        if let Err(error) = decode::<T>(bytes) {
            assert!(!error.to_string().is_empty());
        }
    }
    one::<Header>(bytes);
    one::<sensor_msgs::Image>(bytes);
    one::<sensor_msgs::CompressedImage>(bytes);
    one::<sensor_msgs::CameraInfo>(bytes);
    one::<vision_msgs::Detection2DArray>(bytes);
    one::<diagnostic_msgs::DiagnosticArray>(bytes);
    one::<reflex::BrakeRequest>(bytes);
    one::<reflex::SafeStop>(bytes);
    one::<reflex::TrackedObjectArray>(bytes);
    one::<reflex::MonitorEvent>(bytes);
}

fn header() -> impl Strategy<Value = Header> {
    (any::<i32>(), 0u32..1_000_000_000, "\\PC{0,12}")
        .prop_map(|(sec, nanosec, frame_id)| Header { stamp: Time { sec, nanosec }, frame_id })
}

fn detections() -> impl Strategy<Value = vision_msgs::Detection2DArray> {
    let detection = (header(), "[a-z]{0,10}", -1e6f64..1e6, prop::collection::vec(("[a-z ]{0,8}", 0.0f64..1.0), 0..3))
        .prop_map(|(header, id, x, hypotheses)| {
            let mut detection = vision_msgs::Detection2D { header, id, ..Default::default() };
            detection.bbox.center.position.x = x;
            detection.bbox.size_y = x * 0.5;
            detection.results = hypotheses
                .into_iter()
                .map(|(class_id, score)| vision_msgs::ObjectHypothesisWithPose {
                    hypothesis: vision_msgs::ObjectHypothesis { class_id, score },
                    ..Default::default()
                })
                .collect();
            detection
        });
    (header(), prop::collection::vec(detection, 0..4))
        .prop_map(|(header, detections)| vision_msgs::Detection2DArray { header, detections })
}

fn image() -> impl Strategy<Value = sensor_msgs::Image> {
    (header(), 0u32..64, 0u32..64, prop::collection::vec(any::<u8>(), 0..256)).prop_map(
        |(header, height, width, data)| sensor_msgs::Image {
            header,
            height,
            width,
            encoding: "rgb8".into(),
            is_bigendian: 0,
            step: width * 3,
            data: data.into(),
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        decode_as_every_type(&bytes);
    }

    #[test]
    fn random_bodies_after_a_valid_header_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let mut bytes = vec![0x00, 0x01, 0x00, 0x00];
        bytes.extend_from_slice(&body);
        decode_as_every_type(&bytes);
    }

    #[test]
    fn detections_round_trip(value in detections()) {
        let bytes = encode(&value);
        prop_assert_eq!(decode::<vision_msgs::Detection2DArray>(&bytes).unwrap(), value.clone());
        let mut place = vision_msgs::Detection2DArray::default();
        decode_into(&bytes, &mut place).unwrap();
        prop_assert_eq!(place, value);
    }

    #[test]
    fn images_round_trip(value in image()) {
        prop_assert_eq!(decode::<sensor_msgs::Image>(&encode(&value)).unwrap(), value);
    }

    #[test]
    fn every_truncation_is_an_error(value in detections(), cut in any::<prop::sample::Index>()) {
        let bytes = encode(&value);
        let keep = cut.index(bytes.len());
        prop_assert!(decode::<vision_msgs::Detection2DArray>(&bytes[..keep]).is_err());
    }

    #[test]
    fn flipped_bytes_never_panic(value in detections(), position in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let mut bytes = encode(&value);
        let index = position.index(bytes.len());
        bytes[index] ^= flip;
        decode_as_every_type(&bytes);
    }
}

#[test]
fn a_forged_length_is_rejected_before_any_allocation() {
    // An Image whose data length claims 4 GiB: the decoder must refuse, not try to allocate.
    let mut bytes = encode(&sensor_msgs::Image::default());
    let length_at = bytes.len() - 4;
    bytes[length_at..].copy_from_slice(&u32::MAX.to_le_bytes());
    let error = decode::<sensor_msgs::Image>(&bytes).unwrap_err();
    assert!(matches!(error.kind, DecodeErrorKind::LengthExceedsInput { length, .. } if length == u32::MAX as usize));
    assert_eq!(error.offset, Some(bytes.len()), "offset points just after the length field");
}

#[test]
fn errors_name_the_problem_and_the_offset() {
    let error = decode::<Header>(&[0x00, 0x01]).unwrap_err();
    assert_eq!(error.to_string(), "invalid CDR at byte 0: 2 bytes is too short for the 4-byte encapsulation header");

    let error = decode::<Header>(&[0x00, 0x02, 0x00, 0x00, 0, 0, 0, 0]).unwrap_err();
    assert!(error.to_string().contains("not plain CDR"), "{error}");

    // A bool byte of 7 in SafeStop.engaged, found as the one byte that `engaged: true` changes.
    let mut bytes = encode(&reflex::SafeStop::default());
    let engaged = encode(&reflex::SafeStop { engaged: true, ..Default::default() });
    let engaged_at = (0..bytes.len()).find(|&i| bytes[i] != engaged[i]).unwrap();
    bytes[engaged_at] = 7;
    let error = decode::<reflex::SafeStop>(&bytes).unwrap_err();
    assert_eq!(error.kind, DecodeErrorKind::InvalidBool(7));
    assert_eq!(error.offset, Some(engaged_at));

    // The wrong type: a Header decoded as Time leaves bytes over.
    let bytes = encode(&Header { frame_id: "camera".into(), ..Default::default() });
    assert!(matches!(decode::<Time>(&bytes).unwrap_err().kind, DecodeErrorKind::TrailingBytes(_)));
}

#[test]
fn big_endian_messages_decode_too() {
    let value = reflex::VehicleState { speed_mps: 12.5, acceleration_mps2: -3.0, ..Default::default() };
    let big_endian = cdr::serialize::<_, _, cdr::CdrBe>(&value, cdr::Infinite).unwrap();
    assert_eq!(big_endian[..2], [0x00, 0x00]);
    assert_eq!(decode::<reflex::VehicleState>(&big_endian).unwrap(), value);
}
