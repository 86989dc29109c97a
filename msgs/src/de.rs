//! A bounded, borrowing CDR (XCDR1) decoder.
//!
//! Encoding uses the `cdr` crate, whose output is byte-identical to ROS 2. Decoding does not:
//! `cdr` 0.2.4 allocates a buffer of the length read from the wire *before* it checks that many
//! bytes exist, so four malicious bytes make a node allocate and zero 4 GiB. This decoder checks
//! every length against the bytes that are left before it touches memory, and it hands strings
//! and byte sequences to serde as borrowed slices, which is what lets `decode_into` refill an
//! existing message without allocating.

use serde::de::{self, DeserializeSeed, IntoDeserializer, SeqAccess, Visitor};

use crate::{DecodeError, DecodeErrorKind};

/// Reads the body of a CDR message (after the 4-byte encapsulation header).
pub(crate) struct CdrReader<'de> {
    body: &'de [u8],
    /// Offset into `body`; CDR aligns primitives relative to the start of the body.
    pos: usize,
    big_endian: bool,
}

/// Encapsulation identifiers (first two bytes of a serialized message).
const CDR_BE: [u8; 2] = [0x00, 0x00];
const CDR_LE: [u8; 2] = [0x00, 0x01];
pub(crate) const HEADER_LEN: usize = 4;

impl<'de> CdrReader<'de> {
    /// Checks the encapsulation header and positions the reader at the start of the body.
    pub(crate) fn new(bytes: &'de [u8]) -> Result<Self, DecodeError> {
        if bytes.len() < HEADER_LEN {
            return Err(DecodeError::at(0, DecodeErrorKind::TooShortForHeader(bytes.len())));
        }
        let big_endian = match [bytes[0], bytes[1]] {
            CDR_LE => false,
            CDR_BE => true,
            other => return Err(DecodeError::at(0, DecodeErrorKind::UnsupportedEncapsulation(other))),
        };
        Ok(Self { body: &bytes[HEADER_LEN..], pos: 0, big_endian })
    }

    fn remaining(&self) -> usize {
        self.body.len() - self.pos
    }

    /// Offset in the whole message (header included), for error messages.
    fn offset(&self) -> usize {
        self.pos + HEADER_LEN
    }

    fn error(&self, kind: DecodeErrorKind) -> DecodeError {
        DecodeError::at(self.offset(), kind)
    }

    fn take(&mut self, len: usize) -> Result<&'de [u8], DecodeError> {
        if len > self.remaining() {
            return Err(self.error(DecodeErrorKind::UnexpectedEnd { needed: len, remaining: self.remaining() }));
        }
        let slice = &self.body[self.pos..self.pos + len];
        self.pos += len;
        Ok(slice)
    }

    fn align(&mut self, alignment: usize) -> Result<(), DecodeError> {
        let padding = (alignment - self.pos % alignment) % alignment;
        self.take(padding).map(|_| ())
    }

    fn read_array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        self.align(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        if self.big_endian {
            out.reverse();
        }
        Ok(out)
    }

    fn read_u32(&mut self) -> Result<u32, DecodeError> {
        self.read_array::<4>().map(u32::from_le_bytes)
    }

    /// Reads a u32 element count and checks that at least `min_element_size` bytes per element
    /// remain, so a forged count can never drive an allocation.
    fn read_len(&mut self, min_element_size: usize) -> Result<usize, DecodeError> {
        let len = self.read_u32()? as usize;
        if len.saturating_mul(min_element_size) > self.remaining() {
            return Err(self.error(DecodeErrorKind::LengthExceedsInput { length: len, remaining: self.remaining() }));
        }
        Ok(len)
    }

    fn read_str(&mut self) -> Result<&'de str, DecodeError> {
        let len = self.read_len(1)?;
        let start = self.offset();
        let raw = self.take(len)?;
        // The length counts a terminating NUL; some writers send 0 for an empty string.
        let text = match raw.split_last() {
            None => raw,
            Some((0, text)) => text,
            Some(_) => return Err(DecodeError::at(start, DecodeErrorKind::StringNotTerminated)),
        };
        std::str::from_utf8(text).map_err(|_| DecodeError::at(start, DecodeErrorKind::InvalidUtf8))
    }

    /// Everything after the body was read: trailing bytes beyond alignment padding are an error,
    /// since they mean the message is not of the type we decoded it as.
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        if self.remaining() > 3 {
            return Err(self.error(DecodeErrorKind::TrailingBytes(self.remaining())));
        }
        Ok(())
    }
}

macro_rules! primitive {
    ($method:ident, $visit:ident, $ty:ty, $size:literal) => {
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
            let bytes = self.read_array::<$size>()?;
            visitor.$visit(<$ty>::from_le_bytes(bytes))
        }
    };
}

macro_rules! unsupported {
    ($($method:ident),*) => {
        $(fn $method<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, DecodeError> {
            Err(self.error(DecodeErrorKind::Unsupported(stringify!($method))))
        })*
    };
}

impl<'de> de::Deserializer<'de> for &mut CdrReader<'de> {
    type Error = DecodeError;

    primitive!(deserialize_u8, visit_u8, u8, 1);
    primitive!(deserialize_i8, visit_i8, i8, 1);
    primitive!(deserialize_u16, visit_u16, u16, 2);
    primitive!(deserialize_i16, visit_i16, i16, 2);
    primitive!(deserialize_u32, visit_u32, u32, 4);
    primitive!(deserialize_i32, visit_i32, i32, 4);
    primitive!(deserialize_u64, visit_u64, u64, 8);
    primitive!(deserialize_i64, visit_i64, i64, 8);
    primitive!(deserialize_f32, visit_f32, f32, 4);
    primitive!(deserialize_f64, visit_f64, f64, 8);

    unsupported!(
        deserialize_any,
        deserialize_char,
        deserialize_option,
        deserialize_map,
        deserialize_identifier,
        deserialize_ignored_any
    );

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        match self.take(1)?[0] {
            0 => visitor.visit_bool(false),
            1 => visitor.visit_bool(true),
            other => Err(DecodeError::at(self.offset() - 1, DecodeErrorKind::InvalidBool(other))),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_borrowed_str(self.read_str()?)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        let len = self.read_len(1)?;
        visitor.visit_borrowed_bytes(self.take(len)?)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        // Every ROS element type occupies at least one byte (empty messages carry a dummy u8).
        let len = self.read_len(1)?;
        visitor.visit_seq(Elements { reader: self, left: len })
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_seq(Elements { reader: self, left: len })
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        self.deserialize_tuple(len, visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        self.deserialize_tuple(fields.len(), visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        // ROS enums are plain integers; a Rust enum over CDR is encoded as a u32 discriminant.
        let index = self.read_u32()?;
        visitor.visit_enum(index.into_deserializer())
    }

    fn is_human_readable(&self) -> bool {
        false
    }
}

struct Elements<'a, 'de> {
    reader: &'a mut CdrReader<'de>,
    left: usize,
}

impl<'de> SeqAccess<'de> for Elements<'_, 'de> {
    type Error = DecodeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, DecodeError> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(&mut *self.reader).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        // Bounded by the input: `read_len` checked the count against the remaining bytes.
        Some(self.left)
    }
}

impl de::Error for DecodeError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        DecodeError::at(usize::MAX, DecodeErrorKind::Invalid(msg.to_string()))
    }
}
