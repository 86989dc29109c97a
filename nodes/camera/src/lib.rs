//! Frame sources, the camera node ([`node`]) and the `frame-stats` consumer.
//!
//! A [`FrameSource`] fills an `rgb8` frame: a V4L2/UVC camera through nokhwa ([`V4l2Camera`],
//! feature `v4l2`, on by default), a folder of PNG/JPEG files ([`ImageFolder`]), an MCAP
//! recording's Image or CompressedImage topic ([`McapSource`]) or a moving test pattern
//! ([`TestPattern`]). The camera node stamps each frame with its capture time (the runtime clock
//! when the source handed it over) and publishes `sensor_msgs/Image` (`rgb8`) and `CameraInfo`
//! carrying the intrinsics and the mounting (height and pitch, see
//! [`reflex_msgs::sensor_msgs::CameraInfo::mounting`]).

mod folder;
mod frame_stats;
mod mcap_source;
pub mod node;
mod pattern;
#[cfg(feature = "v4l2")]
mod v4l2;

pub use folder::ImageFolder;
pub use frame_stats::FRAME_STATS_KIND;
pub use mcap_source::McapSource;
pub use node::{run_camera, CAMERA_KIND, TEST_PATTERN_KIND};
pub use pattern::TestPattern;
#[cfg(feature = "v4l2")]
pub use v4l2::V4l2Camera;

use reflex_msgs::sensor_msgs::CameraInfo;
use reflex_msgs::Mounting;
use reflex_runtime::spec::InvalidParam;
use serde::Deserialize;
use std::path::PathBuf;

/// Something that produces frames.
pub trait FrameSource {
    fn width(&self) -> u32;
    fn height(&self) -> u32;
    /// Writes the next frame as packed `rgb8` of `width() x height()` into `out`.
    fn fill(&mut self, out: &mut Vec<u8>) -> Result<(), SourceError>;
    /// Who sets the frame rate: the node's timer, or the source itself (a camera delivering at
    /// its own rate, a recording replayed with its own timing).
    fn pace(&self) -> Pace {
        Pace::Timer
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    Timer,
    Source,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("frame source ended")]
    Ended,
    #[error("{0}")]
    Failed(String),
}

/// Writes `image` into `out` as packed rgb8 of exactly `size` (resized when it is not).
pub(crate) fn fit_into(image: image::RgbImage, size: (u32, u32), out: &mut Vec<u8>) {
    let image = if image.dimensions() == size {
        image
    } else {
        image::imageops::resize(&image, size.0, size.1, image::imageops::FilterType::Triangle)
    };
    out.clear();
    out.extend_from_slice(image.as_raw());
}

/// Where frames come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    /// A V4L2/UVC camera (`path`: `/dev/videoN` or an index).
    #[default]
    V4l2,
    /// PNG/JPEG files of a folder (`path`), in name order.
    Folder,
    /// An MCAP recording (`path`), Image or CompressedImage topic `topic`.
    Mcap,
    /// A moving pattern, no hardware.
    TestPattern,
}

/// Parameters of the camera node (kinds `camera` and `test-pattern`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CameraConfig {
    pub source: SourceKind,
    /// Device, folder or file, per source.
    pub path: PathBuf,
    /// MCAP: the image topic (default: the recording's only image topic).
    pub topic: Option<String>,
    /// Frame size; 0 takes the source's own (640x480 for cameras and the test pattern).
    pub width: u32,
    pub height: u32,
    /// Frames per second (timer-paced sources; requested rate for V4L2).
    pub fps: f64,
    /// MCAP: replay speed relative to the recording.
    pub rate: f64,
    /// Folder and MCAP: start again at the end.
    #[serde(rename = "loop")]
    pub looping: bool,
    /// V4L2: MJPEG, YUYV, NV12, GRAY, RAWRGB.
    pub pixel_format: String,
    pub frame_id: String,
    /// Focal length in pixels (x and y) when `fx`/`fy` are not given.
    pub focal_px: f64,
    pub fx: Option<f64>,
    pub fy: Option<f64>,
    /// Principal point; the image centre when not given.
    pub cx: Option<f64>,
    pub cy: Option<f64>,
    /// Height of the optical centre above the road, m.
    pub height_m: f64,
    /// Downward pitch of the optical axis, degrees.
    pub pitch_deg: f64,
}

impl Default for CameraConfig {
    fn default() -> Self {
        Self {
            source: SourceKind::default(),
            path: PathBuf::from("/dev/video0"),
            topic: None,
            width: 0,
            height: 0,
            fps: 30.0,
            rate: 1.0,
            looping: true,
            pixel_format: "MJPEG".into(),
            frame_id: "camera".into(),
            focal_px: 500.0,
            fx: None,
            fy: None,
            cx: None,
            cy: None,
            height_m: 1.3,
            pitch_deg: 0.0,
        }
    }
}

impl CameraConfig {
    fn validate(&self) -> Result<(), InvalidParam> {
        if !(self.fps > 0.0 && self.fps <= 1000.0) {
            return Err(InvalidParam::new("fps", format!("{} is outside 0 < fps <= 1000", self.fps)));
        }
        if !(self.rate > 0.0 && self.rate <= 1000.0) {
            return Err(InvalidParam::new("rate", format!("{} is outside 0 < rate <= 1000", self.rate)));
        }
        for (name, value) in [("width", self.width), ("height", self.height)] {
            if value != 0 && !(8..=8192).contains(&value) {
                return Err(InvalidParam::new(
                    name,
                    format!("{value} is outside 8..=8192 pixels (0: the source's own size)"),
                ));
            }
        }
        if (self.width == 0) != (self.height == 0) {
            return Err(InvalidParam::new("width", "give both width and height, or neither"));
        }
        if !(self.height_m >= 0.0 && self.pitch_deg.abs() < 90.0) {
            return Err(InvalidParam::new("height_m", "mounting: height_m must be >= 0 and |pitch_deg| < 90"));
        }
        #[cfg(feature = "v4l2")]
        if self.source == SourceKind::V4l2 {
            v4l2::pixel_format(&self.pixel_format).map_err(|e| InvalidParam::new("pixel_format", e))?;
        }
        Ok(())
    }

    fn size(&self) -> Option<(u32, u32)> {
        (self.width > 0).then_some((self.width, self.height))
    }

    /// Opens the configured source.
    pub fn open(&self) -> Result<Box<dyn FrameSource>, SourceError> {
        let (w, h) = self.size().unwrap_or((640, 480));
        Ok(match self.source {
            SourceKind::TestPattern => Box::new(TestPattern::new(w, h)),
            SourceKind::Folder => Box::new(ImageFolder::open(&self.path, self.size(), self.looping)?),
            SourceKind::Mcap => {
                Box::new(McapSource::open(&self.path, self.topic.as_deref(), self.size(), self.looping, self.rate)?)
            }
            #[cfg(feature = "v4l2")]
            SourceKind::V4l2 => Box::new(V4l2Camera::open(
                &self.path.to_string_lossy(),
                w,
                h,
                self.fps.round() as u32,
                &self.pixel_format,
            )?),
            #[cfg(not(feature = "v4l2"))]
            SourceKind::V4l2 => {
                return Err(SourceError::Failed(
                    "this build has no V4L2 support (build reflex-camera with its default feature `v4l2`)".into(),
                ))
            }
        })
    }

    /// CameraInfo for frames of this size: intrinsics from the parameters, principal point at
    /// the centre unless given, and the mounting.
    pub fn camera_info(&self, width: u32, height: u32) -> CameraInfo {
        let fx = self.fx.unwrap_or(self.focal_px);
        let fy = self.fy.unwrap_or(self.focal_px);
        let cx = self.cx.unwrap_or(f64::from(width) / 2.0);
        let cy = self.cy.unwrap_or(f64::from(height) / 2.0);
        let mounting = Mounting { height_m: self.height_m, pitch_rad: self.pitch_deg.to_radians() };
        let mut info = CameraInfo::pinhole(width, height, fx, fy, cx, cy, mounting);
        info.header.frame_id = self.frame_id.clone();
        info
    }
}
