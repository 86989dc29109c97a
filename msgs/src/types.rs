//! The message types, grouped by ROS package. Field names, order and widths follow the ROS 2
//! definitions in `msg/<package>/<Type>.msg`, which are compiled into each type's schema.

use serde::{Deserialize, Serialize};

/// Implements [`crate::RosType`] from the `.msg` file of the same package and name.
macro_rules! ros_type {
    ($ty:ident, $pkg:literal, [$($dep:ty),*] $(, header: $field:ident)?) => {
        impl crate::RosType for $ty {
            const NAME: &'static str = concat!($pkg, "/msg/", stringify!($ty));
            const DEFINITION: &'static str =
                include_str!(concat!("../msg/", $pkg, "/", stringify!($ty), ".msg"));
            fn collect_dependencies(_out: &mut Vec<(&'static str, &'static str)>) {
                $(crate::push_dependency::<$dep>(_out);)*
            }
            $(fn header(&self) -> Option<&crate::std_msgs::Header> {
                Some(&self.$field)
            })?
        }
    };
}

pub mod builtin_interfaces {
    use super::*;

    /// A point in time: seconds and nanoseconds since the clock's epoch.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
    pub struct Time {
        pub sec: i32,
        pub nanosec: u32,
    }
    ros_type!(Time, "builtin_interfaces", []);

    impl Time {
        /// Splits nanoseconds since the epoch; times outside the i32 seconds range saturate.
        pub fn from_nanos(nanos: i64) -> Self {
            let sec = nanos.div_euclid(1_000_000_000);
            let nanosec = nanos.rem_euclid(1_000_000_000) as u32;
            match i32::try_from(sec) {
                Ok(sec) => Self { sec, nanosec },
                Err(_) if sec < 0 => Self { sec: i32::MIN, nanosec: 0 },
                Err(_) => Self { sec: i32::MAX, nanosec: 999_999_999 },
            }
        }

        pub fn as_nanos(&self) -> i64 {
            i64::from(self.sec) * 1_000_000_000 + i64::from(self.nanosec)
        }

        pub fn is_zero(&self) -> bool {
            self.sec == 0 && self.nanosec == 0
        }
    }
}

pub mod rosgraph_msgs {
    use super::*;
    use crate::builtin_interfaces::Time;

    /// The simulation time, published on `/clock` by a simulator or a replay; nodes with
    /// `use_sim_time` follow it instead of the wall clock.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Clock {
        pub clock: Time,
    }
    ros_type!(Clock, "rosgraph_msgs", [Time]);
}

pub mod std_msgs {
    use super::*;
    use crate::builtin_interfaces::Time;

    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct Header {
        /// For Reflex messages: the capture time of the camera frame the message derives from.
        pub stamp: Time,
        pub frame_id: String,
    }
    ros_type!(Header, "std_msgs", [Time]);

    /// A `Header` read in place from a received buffer (no allocation).
    #[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
    pub struct HeaderView<'a> {
        pub stamp: Time,
        pub frame_id: &'a str,
    }
}

/// A `uint8[]` field: encoded as one length and a block of bytes, decoded in place without
/// reallocating when the new content fits the old capacity.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Bytes(pub Vec<u8>);

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const SHOWN: usize = 16;
        write!(f, "Bytes(len {}: {:02x?}", self.0.len(), &self.0[..self.0.len().min(SHOWN)])?;
        f.write_str(if self.0.len() > SHOWN { "..)" } else { ")" })
    }
}

impl std::ops::Deref for Bytes {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

impl std::ops::DerefMut for Bytes {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
}

impl Serialize for Bytes {
    /// One length and a block in CDR; a short summary (`<921600 bytes>`) in human-readable
    /// formats such as the JSON of `reflex topic echo`, where a number per pixel helps nobody.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&format!("<{} bytes>", self.0.len()))
        } else {
            serializer.serialize_bytes(&self.0)
        }
    }
}

/// Fills a byte vector from whatever form the deserializer offers.
struct BytesVisitor<'a>(&'a mut Vec<u8>);

impl<'de> serde::de::Visitor<'de> for BytesVisitor<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a byte sequence")
    }
    fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<(), E> {
        self.0.clear();
        self.0.extend_from_slice(bytes);
        Ok(())
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.0.clear();
        while let Some(byte) = seq.next_element()? {
            self.0.push(byte);
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut bytes = Vec::new();
        deserializer.deserialize_bytes(BytesVisitor(&mut bytes))?;
        Ok(Self(bytes))
    }

    fn deserialize_in_place<D: serde::Deserializer<'de>>(deserializer: D, place: &mut Self) -> Result<(), D::Error> {
        deserializer.deserialize_bytes(BytesVisitor(&mut place.0))
    }
}

/// A fixed-size `float64[N]` field for N above serde's built-in limit of 32.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct F64Array<const N: usize>(pub [f64; N]);

impl<const N: usize> Default for F64Array<N> {
    fn default() -> Self {
        Self([0.0; N])
    }
}

impl<const N: usize> Serialize for F64Array<N> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut tuple = serializer.serialize_tuple(N)?;
        for value in &self.0 {
            tuple.serialize_element(value)?;
        }
        tuple.end()
    }
}

impl<'de, const N: usize> Deserialize<'de> for F64Array<N> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ArrayVisitor<const N: usize>;
        impl<'de, const N: usize> serde::de::Visitor<'de> for ArrayVisitor<N> {
            type Value = F64Array<N>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                write!(f, "{N} float64 values")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut values = [0.0; N];
                for (index, value) in values.iter_mut().enumerate() {
                    *value = seq.next_element()?.ok_or_else(|| serde::de::Error::invalid_length(index, &self))?;
                }
                Ok(F64Array(values))
            }
        }
        deserializer.deserialize_tuple(N, ArrayVisitor::<N>)
    }
}

pub mod sensor_msgs {
    use super::*;
    use crate::std_msgs::Header;

    /// An uncompressed image; Reflex cameras publish `rgb8`.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct Image {
        pub header: Header,
        pub height: u32,
        pub width: u32,
        pub encoding: String,
        pub is_bigendian: u8,
        /// Bytes per row.
        pub step: u32,
        pub data: Bytes,
    }
    ros_type!(Image, "sensor_msgs", [Header], header: header);

    /// An `Image` read in place: `data` points into the received buffer (for a shared-memory
    /// payload, into the shared segment itself), so a 640x480 frame is never copied.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
    pub struct ImageView<'a> {
        #[serde(borrow)]
        pub header: crate::std_msgs::HeaderView<'a>,
        pub height: u32,
        pub width: u32,
        pub encoding: &'a str,
        pub is_bigendian: u8,
        pub step: u32,
        #[serde(with = "borrowed_bytes")]
        pub data: &'a [u8],
    }

    impl crate::Stamped for ImageView<'_> {
        fn stamp(&self) -> crate::builtin_interfaces::Time {
            self.header.stamp
        }
    }

    impl crate::Stamped for CompressedImageView<'_> {
        fn stamp(&self) -> crate::builtin_interfaces::Time {
            self.header.stamp
        }
    }

    /// A `CompressedImage` read in place.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
    pub struct CompressedImageView<'a> {
        #[serde(borrow)]
        pub header: crate::std_msgs::HeaderView<'a>,
        pub format: &'a str,
        #[serde(with = "borrowed_bytes")]
        pub data: &'a [u8],
    }

    /// `uint8[]` as one length and a block, borrowed when decoding.
    mod borrowed_bytes {
        pub fn serialize<S: serde::Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
            serializer.serialize_bytes(bytes)
        }
        pub fn deserialize<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<&'de [u8], D::Error> {
            <&'de [u8] as serde::Deserialize>::deserialize(deserializer)
        }
    }

    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct CompressedImage {
        pub header: Header,
        /// `jpeg` or `png` (optionally with the source encoding, as image_transport writes it).
        pub format: String,
        pub data: Bytes,
    }
    ros_type!(CompressedImage, "sensor_msgs", [Header], header: header);

    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct RegionOfInterest {
        pub x_offset: u32,
        pub y_offset: u32,
        pub height: u32,
        pub width: u32,
        pub do_rectify: bool,
    }
    ros_type!(RegionOfInterest, "sensor_msgs", []);

    /// Camera intrinsics; `k` is the row-major 3x3 camera matrix [fx 0 cx; 0 fy cy; 0 0 1].
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct CameraInfo {
        pub header: Header,
        pub height: u32,
        pub width: u32,
        pub distortion_model: String,
        pub d: Vec<f64>,
        pub k: [f64; 9],
        pub r: [f64; 9],
        pub p: [f64; 12],
        pub binning_x: u32,
        pub binning_y: u32,
        pub roi: RegionOfInterest,
    }
    ros_type!(CameraInfo, "sensor_msgs", [Header, RegionOfInterest], header: header);
}

pub mod geometry_msgs {
    use super::*;
    use crate::std_msgs::Header;

    #[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
    pub struct Point {
        pub x: f64,
        pub y: f64,
        pub z: f64,
    }
    ros_type!(Point, "geometry_msgs", []);

    #[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
    pub struct Quaternion {
        pub x: f64,
        pub y: f64,
        pub z: f64,
        pub w: f64,
    }
    ros_type!(Quaternion, "geometry_msgs", []);

    impl Default for Quaternion {
        /// The identity rotation, as the ROS definition's default values say.
        fn default() -> Self {
            Self { x: 0.0, y: 0.0, z: 0.0, w: 1.0 }
        }
    }

    #[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
    pub struct Pose {
        pub position: Point,
        pub orientation: Quaternion,
    }
    ros_type!(Pose, "geometry_msgs", [Point, Quaternion]);

    #[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
    pub struct PoseWithCovariance {
        pub pose: Pose,
        /// Row-major 6x6 covariance of (x, y, z, rot x, rot y, rot z).
        pub covariance: F64Array<36>,
    }
    ros_type!(PoseWithCovariance, "geometry_msgs", [Pose]);

    #[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
    pub struct Vector3 {
        pub x: f64,
        pub y: f64,
        pub z: f64,
    }
    ros_type!(Vector3, "geometry_msgs", []);

    #[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
    pub struct Twist {
        pub linear: Vector3,
        pub angular: Vector3,
    }
    ros_type!(Twist, "geometry_msgs", [Vector3]);

    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct TwistStamped {
        pub header: Header,
        pub twist: Twist,
    }
    ros_type!(TwistStamped, "geometry_msgs", [Header, Twist], header: header);
}

/// vision_msgs 4.x (ROS 2 Humble and later).
pub mod vision_msgs {
    use super::*;
    use crate::geometry_msgs::PoseWithCovariance;
    use crate::std_msgs::Header;

    #[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
    pub struct Point2D {
        pub x: f64,
        pub y: f64,
    }
    ros_type!(Point2D, "vision_msgs", []);

    #[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
    pub struct Pose2D {
        pub position: Point2D,
        pub theta: f64,
    }
    ros_type!(Pose2D, "vision_msgs", [Point2D]);

    /// An axis-aligned box in image pixels: centre and full size.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
    pub struct BoundingBox2D {
        pub center: Pose2D,
        pub size_x: f64,
        pub size_y: f64,
    }
    ros_type!(BoundingBox2D, "vision_msgs", [Pose2D]);

    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct ObjectHypothesis {
        /// Class label, e.g. `person` (Reflex uses label strings, not numeric ids).
        pub class_id: String,
        pub score: f64,
    }
    ros_type!(ObjectHypothesis, "vision_msgs", []);

    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct ObjectHypothesisWithPose {
        pub hypothesis: ObjectHypothesis,
        pub pose: PoseWithCovariance,
    }
    ros_type!(ObjectHypothesisWithPose, "vision_msgs", [ObjectHypothesis, PoseWithCovariance]);

    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct Detection2D {
        pub header: Header,
        pub results: Vec<ObjectHypothesisWithPose>,
        pub bbox: BoundingBox2D,
        pub id: String,
    }
    ros_type!(Detection2D, "vision_msgs", [Header, ObjectHypothesisWithPose, BoundingBox2D], header: header);

    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct Detection2DArray {
        pub header: Header,
        pub detections: Vec<Detection2D>,
    }
    ros_type!(Detection2DArray, "vision_msgs", [Header, Detection2D], header: header);
}

pub mod diagnostic_msgs {
    use super::*;
    use crate::std_msgs::Header;

    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct KeyValue {
        pub key: String,
        pub value: String,
    }
    ros_type!(KeyValue, "diagnostic_msgs", []);

    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct DiagnosticStatus {
        /// One of the level constants below.
        pub level: u8,
        pub name: String,
        pub message: String,
        pub hardware_id: String,
        pub values: Vec<KeyValue>,
    }
    ros_type!(DiagnosticStatus, "diagnostic_msgs", [KeyValue]);

    impl DiagnosticStatus {
        pub const OK: u8 = 0;
        pub const WARN: u8 = 1;
        pub const ERROR: u8 = 2;
        pub const STALE: u8 = 3;
    }

    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct DiagnosticArray {
        pub header: Header,
        pub status: Vec<DiagnosticStatus>,
    }
    ros_type!(DiagnosticArray, "diagnostic_msgs", [Header, DiagnosticStatus], header: header);
}

/// Reflex's own types, for what ROS 2 has no standard message for.
pub mod reflex_msgs {
    use super::*;
    use crate::std_msgs::Header;

    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct VehicleState {
        pub header: Header,
        pub speed_mps: f64,
        pub acceleration_mps2: f64,
        pub yaw_rate_radps: f64,
    }
    ros_type!(VehicleState, "reflex_msgs", [Header], header: header);

    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct BrakeRequest {
        pub header: Header,
        /// One of the `LEVEL_*` constants.
        pub level: u8,
        pub deceleration_mps2: f64,
        pub time_to_collision_s: f64,
        pub reason: String,
        pub source: String,
    }
    ros_type!(BrakeRequest, "reflex_msgs", [Header], header: header);

    impl BrakeRequest {
        pub const LEVEL_NONE: u8 = 0;
        pub const LEVEL_WARN: u8 = 1;
        pub const LEVEL_PARTIAL: u8 = 2;
        pub const LEVEL_FULL: u8 = 3;
    }

    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct SafeStop {
        pub header: Header,
        /// One of the `STATE_*` constants.
        pub state: u8,
        pub engaged: bool,
        pub reason: String,
        pub source: String,
    }
    ros_type!(SafeStop, "reflex_msgs", [Header], header: header);

    impl SafeStop {
        pub const STATE_NOMINAL: u8 = 0;
        pub const STATE_DEGRADED: u8 = 1;
        pub const STATE_SAFE_STOP: u8 = 2;
    }

    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct TrackedObject {
        pub track_id: u32,
        pub class_id: String,
        pub range_m: f64,
        pub range_rate_mps: f64,
        pub lateral_m: f64,
        pub time_to_collision_s: f64,
        pub in_path: bool,
    }
    ros_type!(TrackedObject, "reflex_msgs", []);

    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct TrackedObjectArray {
        pub header: Header,
        pub objects: Vec<TrackedObject>,
    }
    ros_type!(TrackedObjectArray, "reflex_msgs", [Header, TrackedObject], header: header);

    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct MonitorEvent {
        pub header: Header,
        /// One of the `KIND_*` constants.
        pub kind: u8,
        pub node: String,
        pub topic: String,
        pub value_ms: f64,
        pub limit_ms: f64,
        pub detail: String,
    }
    ros_type!(MonitorEvent, "reflex_msgs", [Header], header: header);

    impl MonitorEvent {
        pub const KIND_DEADLINE_MISSED: u8 = 0;
        pub const KIND_BUDGET_OVERRUN: u8 = 1;
        pub const KIND_QUEUE_DROP: u8 = 2;
        pub const KIND_DECODE_ERROR: u8 = 3;
        pub const KIND_CALLBACK_FAILED: u8 = 4;
        pub const KIND_RECOVERED: u8 = 5;
        pub const KIND_FAULT_INJECTED: u8 = 6;
        pub const KIND_INPUT_REJECTED: u8 = 7;
    }
}
