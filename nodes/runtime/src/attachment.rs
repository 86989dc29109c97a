//! Per-message metadata carried in the zenoh attachment, in the layout rmw_zenoh uses
//! (zenoh-ext serialization): `i64` sequence number, `i64` source timestamp in ns, then the
//! publisher's 16-byte GID with its LEB128 length prefix. Keeping the rmw_zenoh layout now
//! means a ROS 2 key mode later needs no change here.

pub const LEN: usize = 8 + 8 + 1 + 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Attachment {
    pub sequence: i64,
    /// When the publisher handed the message to zenoh (publisher's clock, ns since epoch).
    pub source_timestamp_ns: i64,
    pub gid: [u8; 16],
}

impl Attachment {
    pub fn encode(&self) -> [u8; LEN] {
        let mut out = [0u8; LEN];
        out[..8].copy_from_slice(&self.sequence.to_le_bytes());
        out[8..16].copy_from_slice(&self.source_timestamp_ns.to_le_bytes());
        out[16] = 16;
        out[17..].copy_from_slice(&self.gid);
        out
    }

    /// `None` for attachments of another layout (e.g. from a foreign publisher).
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != LEN || bytes[16] != 16 {
            return None;
        }
        Some(Self {
            sequence: i64::from_le_bytes(bytes[..8].try_into().ok()?),
            source_timestamp_ns: i64::from_le_bytes(bytes[8..16].try_into().ok()?),
            gid: bytes[17..].try_into().ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_foreign_layouts() {
        let attachment = Attachment { sequence: 42, source_timestamp_ns: -7, gid: [9; 16] };
        let bytes = attachment.encode();
        assert_eq!(bytes[..8], 42i64.to_le_bytes());
        assert_eq!(Attachment::decode(&bytes), Some(attachment));
        assert_eq!(Attachment::decode(&bytes[..LEN - 1]), None);
        let mut wrong_prefix = bytes;
        wrong_prefix[16] = 15;
        assert_eq!(Attachment::decode(&wrong_prefix), None);
    }
}
