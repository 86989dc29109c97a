//! Frames from an MCAP recording: a `sensor_msgs/msg/Image` or `sensor_msgs/msg/CompressedImage`
//! topic (JPEG or PNG), released with the recording's own timing (scaled by `rate`).

use crate::{fit_into, FrameSource, Pace, SourceError};
use reflex_msgs::sensor_msgs::{CompressedImageView, ImageView};
use std::path::Path;
use std::time::{Duration, Instant};

const IMAGE: &str = "sensor_msgs/msg/Image";
const COMPRESSED: &str = "sensor_msgs/msg/CompressedImage";

/// One recorded frame: its log time and CDR payload.
struct Recorded {
    log_time_ns: u64,
    compressed: bool,
    data: Vec<u8>,
}

pub struct McapSource {
    frames: Vec<Recorded>,
    next: usize,
    looping: bool,
    rate: f64,
    width: u32,
    height: u32,
    /// Wall time of the first frame of the current pass.
    started: Option<Instant>,
    scratch: Vec<u8>,
    pub topic: String,
}

impl McapSource {
    /// Reads the frames of `topic` (or of the only image topic when `None`).
    pub fn open(
        file: &Path,
        topic: Option<&str>,
        size: Option<(u32, u32)>,
        looping: bool,
        rate: f64,
    ) -> Result<Self, SourceError> {
        let failed = |message: String| SourceError::Failed(format!("{}: {message}", file.display()));
        // Every image channel's frames (the reader shared with replay tolerates a recording cut
        // short by a crash: it plays up to the damage), then the chosen topic's.
        let (messages, damage) = reflex_recorder::read_messages(file).map_err(SourceError::Failed)?;
        if let Some(damage) = damage {
            tracing::warn!(file = %file.display(), "recording {damage}; playing what precedes it");
        }
        let mut by_topic: Vec<(String, Vec<Recorded>)> = Vec::new();
        for message in messages {
            let compressed = match message.type_name.as_str() {
                COMPRESSED => true,
                IMAGE => false,
                _ => continue,
            };
            if message.encoding != "cdr" {
                return Err(failed(format!("topic {} is encoded as {:?}, not cdr", message.topic, message.encoding)));
            }
            let frame = Recorded { log_time_ns: message.log_time_ns, compressed, data: message.data };
            match by_topic.iter_mut().find(|(t, _)| *t == message.topic) {
                Some((_, frames)) => frames.push(frame),
                None => by_topic.push((message.topic, vec![frame])),
            }
        }
        let names: Vec<String> = by_topic.iter().map(|(t, _)| t.clone()).collect();
        let (topic, frames) = match topic {
            Some(wanted) => by_topic.into_iter().find(|(t, _)| t == wanted).ok_or_else(|| {
                failed(format!("no image messages on topic {wanted}; image topics here: {}", list(&names)))
            })?,
            None if by_topic.len() == 1 => by_topic.pop().expect("one topic"),
            None if by_topic.is_empty() => {
                return Err(failed(format!("no {IMAGE} or {COMPRESSED} messages in the recording")))
            }
            None => return Err(failed(format!("several image topics ({}); choose one with `topic`", list(&names)))),
        };
        let mut source =
            Self { frames, next: 0, looping, rate, width: 0, height: 0, started: None, scratch: Vec::new(), topic };
        let (width, height) = match size {
            Some(size) => size,
            None => {
                let first = source.decode(0)?;
                first.dimensions()
            }
        };
        (source.width, source.height) = (width, height);
        Ok(source)
    }

    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    fn decode(&mut self, index: usize) -> Result<image::RgbImage, SourceError> {
        let frame = &self.frames[index];
        let failed = |message: String| SourceError::Failed(format!("{} frame {index}: {message}", self.topic));
        if frame.compressed {
            let view: CompressedImageView =
                reflex_msgs::decode(&frame.data).map_err(|e| failed(format!("bad CompressedImage: {e}")))?;
            let image = image::load_from_memory(view.data)
                .map_err(|e| failed(format!("cannot decode {:?} image: {e}", view.format)))?;
            Ok(image.into_rgb8())
        } else {
            let view: ImageView = reflex_msgs::decode(&frame.data).map_err(|e| failed(format!("bad Image: {e}")))?;
            let rgb = view.to_rgb8(&mut self.scratch).map_err(failed)?.to_vec();
            image::RgbImage::from_raw(view.width, view.height, rgb).ok_or_else(|| failed("size does not add up".into()))
        }
    }
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

impl FrameSource for McapSource {
    fn width(&self) -> u32 {
        self.width
    }

    fn height(&self) -> u32 {
        self.height
    }

    fn pace(&self) -> Pace {
        Pace::Source
    }

    fn fill(&mut self, out: &mut Vec<u8>) -> Result<(), SourceError> {
        if self.next == self.frames.len() {
            if !self.looping {
                return Err(SourceError::Ended);
            }
            self.next = 0;
            self.started = None;
        }
        let index = self.next;
        self.next += 1;
        // Release at the recorded offset from the first frame, scaled by the rate.
        let offset_ns = self.frames[index].log_time_ns.saturating_sub(self.frames[0].log_time_ns);
        let started = *self.started.get_or_insert_with(Instant::now);
        let due = started + Duration::from_nanos((offset_ns as f64 / self.rate) as u64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        fit_into(self.decode(index)?, (self.width, self.height), out);
        Ok(())
    }
}
