//! Recording to MCAP, and reading recordings back.
//!
//! The [`Recorder`] subscribes to the topics that match its filters as their publishers appear
//! (publisher liveliness tokens give the topic and its type) and writes every message, bytes
//! untouched, to MCAP with the `ros2` profile: `cdr` message encoding, `ros2msg` schemas from
//! `reflex-msgs`, zstd chunks, statistics and indexes in the summary. Loss on a crash is
//! bounded: the open chunk is written out at least every `flush_period_s`, so a `kill -9`
//! loses at most that window and the file reads back up to the last flush. A message the
//! writer could not keep up with is counted and reported (never dropped silently).

pub mod bag;
pub mod glob;
mod recorder;
pub mod replay;

pub use bag::{read_messages, BagInfo, RecordedMessage};
pub use recorder::{Recorder, RecorderConfig, RecorderStats, RECORDER_KIND};
