//! Frame sources and the camera node.
//!
//! A [`FrameSource`] fills an `rgb8` frame: a V4L2/UVC camera through nokhwa ([`V4l2Camera`],
//! feature `v4l2`, on by default), a folder of PNG/JPEG files ([`ImageFolder`]), an MCAP
//! recording's Image or CompressedImage topic ([`McapSource`]) or a moving test pattern
//! ([`TestPattern`]). The camera node stamps each frame with its capture time (the runtime clock
//! when the source handed it over) and publishes `sensor_msgs/Image` (`rgb8`) and `CameraInfo`
//! carrying the intrinsics and the mounting (height and pitch, see
//! [`reflex_msgs::sensor_msgs::CameraInfo::mounting`]).

mod folder;
mod mcap_source;
mod pattern;
#[cfg(feature = "v4l2")]
mod v4l2;

pub use folder::ImageFolder;
pub use mcap_source::McapSource;
pub use pattern::TestPattern;
#[cfg(feature = "v4l2")]
pub use v4l2::V4l2Camera;

use reflex_msgs::sensor_msgs::{CameraInfo, Image};
use reflex_msgs::Mounting;
use reflex_runtime::spec::{check_params_as, parse_params_value};
use reflex_runtime::{Direction, Node, NodeKind, NodeOptions, NodeSpec, Port, RunError, Shutdown, Timer};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

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
    fn validate(&self) -> Result<(), (String, String)> {
        if !(self.fps > 0.0 && self.fps <= 1000.0) {
            return Err(("fps".into(), format!("{} is outside 0 < fps <= 1000", self.fps)));
        }
        if !(self.rate > 0.0 && self.rate <= 1000.0) {
            return Err(("rate".into(), format!("{} is outside 0 < rate <= 1000", self.rate)));
        }
        for (name, value) in [("width", self.width), ("height", self.height)] {
            if value != 0 && !(8..=8192).contains(&value) {
                return Err((name.into(), format!("{value} is outside 8..=8192 pixels (0: the source's own size)")));
            }
        }
        if (self.width == 0) != (self.height == 0) {
            return Err(("width".into(), "give both width and height, or neither".into()));
        }
        if !(self.height_m >= 0.0 && self.pitch_deg.abs() < 90.0) {
            return Err(("height_m".into(), "mounting: height_m must be >= 0 and |pitch_deg| < 90".into()));
        }
        #[cfg(feature = "v4l2")]
        if self.source == SourceKind::V4l2 {
            v4l2::pixel_format(&self.pixel_format).map_err(|e| ("pixel_format".to_string(), e))?;
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

pub const IMAGE: Port = Port {
    optional: false,
    name: "image",
    topic: "camera/image",
    type_name: "sensor_msgs/msg/Image",
    direction: Direction::Output,
};
pub const CAMERA_INFO: Port = Port {
    optional: false,
    name: "camera_info",
    topic: "camera/camera_info",
    type_name: "sensor_msgs/msg/CameraInfo",
    direction: Direction::Output,
};

const PARAMETERS: &[(&str, &str, &str)] = &[
    ("source", "v4l2", "v4l2, folder, mcap or test-pattern"),
    ("path", "/dev/video0", "V4L2 device, image folder or MCAP file"),
    ("topic", "", "mcap: the image topic (default: the only one)"),
    ("width, height", "0, 0", "frame size; 0: the source's own (640x480 for cameras, test pattern)"),
    ("fps", "30", "frames per second (folder, test pattern; requested rate for V4L2)"),
    ("rate", "1.0", "mcap: replay speed relative to the recording"),
    ("loop", "true", "folder, mcap: start again at the end"),
    ("pixel_format", "MJPEG", "v4l2: MJPEG, YUYV, NV12, GRAY, RAWRGB"),
    ("frame_id", "camera", "header.frame_id of images and camera info"),
    ("focal_px | fx, fy, cx, cy", "500 | centre", "intrinsics for CameraInfo"),
    ("height_m, pitch_deg", "1.3, 0", "mounting: height above the road, downward pitch (in CameraInfo)"),
];

fn check(value: &serde_json::Value) -> Result<(), (String, String)> {
    check_params_as::<CameraConfig>(value)?;
    parse_params_value::<CameraConfig>(value)?.validate()
}

/// The `camera` node kind: any frame source, chosen by `source`.
pub const CAMERA_KIND: NodeKind = NodeKind {
    name: "camera",
    summary: "frames from a V4L2 camera, an image folder, an MCAP recording or a test pattern, as sensor_msgs/Image",
    ports: &[IMAGE, CAMERA_INFO],
    parameters: PARAMETERS,
    check_params: check,
    run: |spec, shutdown| run_with(spec, shutdown, SourceKind::V4l2),
};

/// The `test-pattern` node kind: the camera node with the moving pattern, needing no hardware.
pub const TEST_PATTERN_KIND: NodeKind = NodeKind {
    name: "test-pattern",
    summary: "moving colour bars and a box, published as sensor_msgs/Image at a fixed rate",
    ports: &[IMAGE, CAMERA_INFO],
    parameters: &[
        ("width, height", "640, 480", "image size, pixels (8..=8192)"),
        ("fps", "30", "frames per second (0 < fps <= 1000)"),
        ("frame_id", "camera", "header.frame_id of images and camera info"),
        ("focal_px | fx, fy, cx, cy", "500 | centre", "intrinsics for CameraInfo"),
        ("height_m, pitch_deg", "1.3, 0", "mounting: height above the road, downward pitch (in CameraInfo)"),
    ],
    check_params: check,
    run: |spec, shutdown| run_with(spec, shutdown, SourceKind::TestPattern),
};

impl From<SourceError> for RunError {
    fn from(error: SourceError) -> Self {
        RunError::other(error)
    }
}

fn run_with(spec: NodeSpec, shutdown: Shutdown, default_source: SourceKind) -> Result<(), RunError> {
    let mut config: CameraConfig = spec.params()?;
    if spec.params.get("source").is_none() {
        config.source = default_source;
    }
    config.validate().map_err(|(path, message)| format!("parameter {path}: {message}"))?;
    let source = config.open()?;
    run_camera(spec, config, source, shutdown)
}

/// Publishes frames from `source` until shutdown or the source ends.
pub fn run_camera(
    spec: NodeSpec,
    config: CameraConfig,
    mut source: Box<dyn FrameSource>,
    shutdown: Shutdown,
) -> Result<(), RunError> {
    let node = Node::new(NodeOptions::from_spec(&spec))?;
    let mut image_out = node.publisher::<Image>(&spec.topic(&IMAGE))?;
    let mut info_out = node.publisher::<CameraInfo>(&spec.topic(&CAMERA_INFO))?;
    let (width, height) = (source.width(), source.height());
    let mut image = Image {
        width,
        height,
        encoding: "rgb8".into(),
        step: width * 3,
        data: vec![0; (width * height * 3) as usize].into(),
        ..Default::default()
    };
    image.header.frame_id = config.frame_id.clone();
    let mut info = config.camera_info(width, height);
    let mut timer = Timer::new(node.clock().clone(), Duration::from_secs_f64(1.0 / config.fps));
    let pace = source.pace();
    tracing::info!(node = %spec.name, topic = image_out.key(), width, height, source = ?config.source, "camera publishing");
    while !shutdown.is_requested() {
        if pace == Pace::Timer && timer.wait(Duration::from_millis(100)).is_none() {
            continue;
        }
        match source.fill(&mut image.data) {
            Ok(()) => {}
            Err(SourceError::Ended) => {
                tracing::info!(node = %spec.name, "frame source ended");
                break;
            }
            Err(error) => return Err(error.into()),
        }
        let capture = node.clock().now();
        image.header.stamp = capture;
        info.header.stamp = capture;
        image_out.publish(&image)?;
        info_out.publish(&info)?;
    }
    tracing::info!(node = %spec.name, frames = image_out.sent(), missed_ticks = timer.missed_ticks(), "camera stopped");
    Ok(())
}
