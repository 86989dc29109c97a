//! ROS 2-compatible message types for Reflex, their CDR encoding and their `.msg` schemas.
//!
//! # Concepts
//! - **Field-for-field ROS 2.** Every standard type (`sensor_msgs/msg/Image`,
//!   `vision_msgs/msg/Detection2DArray`, ...) has the fields, order and primitive widths of its
//!   ROS 2 definition, so a message encoded here is byte-identical to one from a ROS 2 node
//!   (checked against Python `rosbags` in `tests/golden.rs`). Types ROS has no equivalent for
//!   live under `reflex_msgs/` with a `.msg` definition in `msg/reflex_msgs/`.
//! - **Wire format.** CDR little-endian (XCDR1) with the 4-byte encapsulation header
//!   `00 01 00 00`. [`encode_into`] writes with the `cdr` crate; [`decode`] and [`decode_into`]
//!   read with this crate's bounded decoder, which never panics, never allocates more than the
//!   input could hold, and reports the byte offset of the first problem.
//! - **Self-describing.** Each type knows its ROS name ([`RosType::NAME`]) and its `.msg` text;
//!   [`schema_text`] joins it with its dependencies in the MCAP `ros2msg` layout, so a
//!   recording carries everything a reader needs.
//! - **No allocation in steady state.** [`encode_into`] writes into a buffer the caller keeps;
//!   [`decode_into`] refills an existing message in place, reusing the capacity of its strings
//!   and sequences. After the first message of a given size neither allocates.
//!
//! ```
//! use reflex_msgs::{decode, encode, std_msgs::Header, builtin_interfaces::Time};
//! let header = Header { stamp: Time { sec: 1, nanosec: 2 }, frame_id: "cam".into() };
//! let bytes = encode(&header);
//! assert_eq!(bytes[..4], [0x00, 0x01, 0x00, 0x00]);
//! assert_eq!(decode::<Header>(&bytes).unwrap(), header);
//! ```

mod de;
mod image;
pub mod topics;
mod types;

pub use image::Mounting;
pub use types::*;

use serde::{de::DeserializeOwned, Serialize};
use std::fmt;

/// A ROS 2 type: its full name, its own `.msg` text, and the types its fields use.
pub trait RosType {
    /// Full ROS 2 name, e.g. `sensor_msgs/msg/Image`.
    const NAME: &'static str;
    /// The type's own `.msg` definition (without its dependencies).
    const DEFINITION: &'static str;
    /// Appends every type this one depends on (transitively, each once) to `out`.
    fn collect_dependencies(out: &mut Vec<(&'static str, &'static str)>);
    /// The message's `std_msgs/Header`, for types that carry one.
    fn header(&self) -> Option<&std_msgs::Header> {
        None
    }
}

/// A message view that carries a capture stamp (for age bookkeeping on borrowed decodes).
pub trait Stamped {
    fn stamp(&self) -> builtin_interfaces::Time;
}

/// A type that can travel as a message: a ROS type that encodes and decodes.
pub trait Message: RosType + Serialize + DeserializeOwned + Default + Clone + fmt::Debug + Send + 'static {}
impl<T> Message for T where T: RosType + Serialize + DeserializeOwned + Default + Clone + fmt::Debug + Send + 'static {}

/// Appends `T` and its dependencies to `out` unless it is already there.
#[doc(hidden)]
pub fn push_dependency<T: RosType>(out: &mut Vec<(&'static str, &'static str)>) {
    if out.iter().all(|(name, _)| *name != T::NAME) {
        out.push((T::NAME, T::DEFINITION));
        T::collect_dependencies(out);
    }
}

/// `pkg/msg/Type` → `pkg/Type`, the form `.msg` files and MCAP `MSG:` lines use.
pub fn short_name(full_name: &str) -> String {
    full_name.replacen("/msg/", "/", 1)
}

/// The full `ros2msg` schema of `T` as MCAP's ROS 2 profile expects it: the type's own
/// definition, then each dependency after a line of 80 `=` and `MSG: pkg/Type`.
pub fn schema_text<T: RosType>() -> String {
    let mut dependencies = Vec::new();
    T::collect_dependencies(&mut dependencies);
    let mut text = String::from(T::DEFINITION);
    for (name, definition) in dependencies {
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&"=".repeat(80));
        text.push_str("\nMSG: ");
        text.push_str(&short_name(name));
        text.push('\n');
        text.push_str(definition);
    }
    text
}

/// Where and why decoding failed.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeError {
    /// Byte offset in the message (encapsulation header included), when known.
    pub offset: Option<usize>,
    pub kind: DecodeErrorKind,
}

impl DecodeError {
    pub(crate) fn at(offset: usize, kind: DecodeErrorKind) -> Self {
        Self { offset: (offset != usize::MAX).then_some(offset), kind }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.offset {
            Some(offset) => write!(f, "invalid CDR at byte {offset}: {}", self.kind),
            None => write!(f, "invalid CDR: {}", self.kind),
        }
    }
}

impl std::error::Error for DecodeError {}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeErrorKind {
    #[error("{0} bytes is too short for the 4-byte encapsulation header")]
    TooShortForHeader(usize),
    #[error("encapsulation {0:02x?} is not plain CDR (expected 00 01 for little- or 00 00 for big-endian)")]
    UnsupportedEncapsulation([u8; 2]),
    #[error("message ends early: {needed} bytes needed, {remaining} left")]
    UnexpectedEnd { needed: usize, remaining: usize },
    #[error("length {length} is larger than the {remaining} bytes left")]
    LengthExceedsInput { length: usize, remaining: usize },
    #[error("string is not NUL-terminated")]
    StringNotTerminated,
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    #[error("bool byte is {0}, expected 0 or 1")]
    InvalidBool(u8),
    #[error("{0} trailing bytes after the message (wrong type?)")]
    TrailingBytes(usize),
    #[error("{0} is not used by ROS message types")]
    Unsupported(&'static str),
    #[error("{0}")]
    Invalid(String),
}

/// Encodes `message` as CDR little-endian with the encapsulation header.
pub fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    let mut buffer = Vec::new();
    encode_into(message, &mut buffer);
    buffer
}

/// Encodes `message` into `buffer`, replacing its contents and reusing its capacity.
pub fn encode_into<T: Serialize>(message: &T, buffer: &mut Vec<u8>) {
    buffer.clear();
    // Writing to a Vec cannot fail, and every type here maps to CDR: a failure is a bug.
    cdr::serialize_into::<_, _, _, cdr::CdrLe>(&mut *buffer, message, cdr::Infinite)
        .expect("CDR encoding into a Vec is infallible for ROS message types");
}

/// Decodes a CDR message (with encapsulation header) into a new value. View types
/// (`sensor_msgs::ImageView`, ...) borrow their strings and byte blocks from `bytes`.
pub fn decode<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, DecodeError> {
    let mut reader = de::CdrReader::new(bytes)?;
    let value = T::deserialize(&mut reader)?;
    reader.finish()?;
    Ok(value)
}

/// Decodes the leading fields of a message as `T` and ignores the rest: e.g. the
/// `HeaderView` that starts every stamped message, without knowing the full type.
pub fn decode_prefix<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, DecodeError> {
    let mut reader = de::CdrReader::new(bytes)?;
    T::deserialize(&mut reader)
}

/// What tools can do with a message type they only know by name.
#[derive(Clone, Copy)]
pub struct TypeEntry {
    pub name: &'static str,
    /// Whether the type starts with a `std_msgs/Header`.
    pub has_header: bool,
    /// Decodes a message of this type into JSON.
    pub to_json: fn(&[u8]) -> Result<serde_json::Value, DecodeError>,
    /// The MCAP `ros2msg` schema text, with its dependencies (see [`schema_text`]).
    pub schema: fn() -> String,
}

fn entry<T: Message>() -> TypeEntry {
    fn to_json<T: Message>(bytes: &[u8]) -> Result<serde_json::Value, DecodeError> {
        let value: T = decode(bytes)?;
        Ok(serde_json::to_value(&value).expect("message types serialize to JSON"))
    }
    TypeEntry {
        name: T::NAME,
        has_header: T::default().header().is_some(),
        to_json: to_json::<T>,
        schema: schema_text::<T>,
    }
}

/// The message type named `type_name` (e.g. `sensor_msgs/msg/Image`), if this crate has it.
pub fn find_type(type_name: &str) -> Option<TypeEntry> {
    use types::*;
    let all = [
        entry::<builtin_interfaces::Time>(),
        entry::<std_msgs::Header>(),
        entry::<rosgraph_msgs::Clock>(),
        entry::<sensor_msgs::Image>(),
        entry::<sensor_msgs::CompressedImage>(),
        entry::<sensor_msgs::CameraInfo>(),
        entry::<sensor_msgs::RegionOfInterest>(),
        entry::<vision_msgs::Detection2DArray>(),
        entry::<vision_msgs::Detection2D>(),
        entry::<geometry_msgs::TwistStamped>(),
        entry::<diagnostic_msgs::DiagnosticArray>(),
        entry::<reflex_msgs::VehicleState>(),
        entry::<reflex_msgs::BrakeRequest>(),
        entry::<reflex_msgs::SafeStop>(),
        entry::<reflex_msgs::TrackedObjectArray>(),
        entry::<reflex_msgs::MonitorEvent>(),
    ];
    all.into_iter().find(|entry| entry.name == type_name)
}

/// Decodes a CDR message into `place`, reusing the capacity of its strings and sequences.
/// On error `place` holds a partly updated value and should be treated as invalid.
pub fn decode_into<T: DeserializeOwned>(bytes: &[u8], place: &mut T) -> Result<(), DecodeError> {
    let mut reader = de::CdrReader::new(bytes)?;
    T::deserialize_in_place(&mut reader, place)?;
    reader.finish()
}
