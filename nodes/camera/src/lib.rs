//! Frame sources and the camera node.
//!
//! A [`FrameSource`] fills an `rgb8` frame; the camera node stamps it with the capture time
//! (the runtime clock at capture) and publishes `sensor_msgs/Image` and `CameraInfo`. This
//! crate has the moving test pattern so far; V4L2, image folders and MCAP replay join it behind
//! the same trait.

mod pattern;

pub use pattern::TestPattern;

use reflex_msgs::sensor_msgs::{CameraInfo, Image};
use reflex_runtime::spec::check_params_as;
use reflex_runtime::{Direction, Node, NodeKind, NodeOptions, NodeSpec, Port, RunError, Shutdown, Timer};
use serde::Deserialize;
use std::time::Duration;

/// Something that produces frames.
pub trait FrameSource: Send {
    fn width(&self) -> u32;
    fn height(&self) -> u32;
    /// Writes the next frame as `rgb8` into `out` (resized by the source if needed).
    fn fill(&mut self, out: &mut Vec<u8>) -> Result<(), SourceError>;
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("frame source ended")]
    Ended,
    #[error("{0}")]
    Failed(String),
}

/// Parameters of the `test-pattern` node.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TestPatternConfig {
    pub width: u32,
    pub height: u32,
    /// Frames per second.
    pub fps: f64,
    pub frame_id: String,
    /// Focal length in pixels (CameraInfo `k`), the same for x and y.
    pub focal_px: f64,
}

impl Default for TestPatternConfig {
    fn default() -> Self {
        Self { width: 640, height: 480, fps: 30.0, frame_id: "camera".into(), focal_px: 500.0 }
    }
}

impl TestPatternConfig {
    fn validate(&self) -> Result<(), (String, String)> {
        if !(self.fps > 0.0 && self.fps <= 1000.0) {
            return Err(("fps".into(), format!("{} is outside 0 < fps <= 1000", self.fps)));
        }
        for (name, value) in [("width", self.width), ("height", self.height)] {
            if !(8..=8192).contains(&value) {
                return Err((name.into(), format!("{value} is outside 8..=8192 pixels")));
            }
        }
        Ok(())
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

/// The `test-pattern` node kind: a moving pattern at a fixed rate, needing no hardware.
pub const TEST_PATTERN_KIND: NodeKind = NodeKind {
    name: "test-pattern",
    summary: "moving colour bars and a box, published as sensor_msgs/Image at a fixed rate",
    ports: &[IMAGE, CAMERA_INFO],
    parameters: &[
        ("width", "640", "image width, pixels (8..=8192)"),
        ("height", "480", "image height, pixels (8..=8192)"),
        ("fps", "30", "frames per second (0 < fps <= 1000)"),
        ("frame_id", "camera", "header.frame_id of images and camera info"),
        ("focal_px", "500", "focal length in pixels for CameraInfo k and p"),
    ],
    check_params: |value| {
        check_params_as::<TestPatternConfig>(value)?;
        reflex_runtime::spec::parse_params_value::<TestPatternConfig>(value)?.validate()
    },
    run: run_test_pattern,
};

fn run_test_pattern(spec: NodeSpec, shutdown: Shutdown) -> Result<(), RunError> {
    let config: TestPatternConfig = spec.params()?;
    config.validate().map_err(|(path, message)| format!("parameter {path}: {message}"))?;
    let source = TestPattern::new(config.width, config.height);
    run_camera(spec, config, Box::new(source), shutdown)
}

/// Publishes frames from `source` at `config.fps` until shutdown.
fn run_camera(
    spec: NodeSpec,
    config: TestPatternConfig,
    mut source: Box<dyn FrameSource>,
    shutdown: Shutdown,
) -> Result<(), RunError> {
    let node = Node::new(NodeOptions::new(&spec.name).transport(spec.transport.clone()))?;
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
    let mut info = camera_info(&config, width, height);
    let mut timer = Timer::new(node.clock().clone(), Duration::from_secs_f64(1.0 / config.fps));
    tracing::info!(node = %spec.name, topic = image_out.key(), width, height, fps = config.fps, "camera publishing");
    while !shutdown.is_requested() {
        if timer.wait(Duration::from_millis(100)).is_none() {
            continue;
        }
        let capture = node.clock().now();
        match source.fill(&mut image.data) {
            Ok(()) => {}
            Err(SourceError::Ended) => break,
            Err(error) => return Err(error.into()),
        }
        image.header.stamp = capture;
        info.header.stamp = capture;
        image_out.publish(&image)?;
        info_out.publish(&info)?;
    }
    tracing::info!(node = %spec.name, frames = image_out.sent(), missed_ticks = timer.missed_ticks(), "camera stopped");
    Ok(())
}

/// Pinhole intrinsics with the principal point at the image centre and no distortion.
pub fn camera_info(config: &TestPatternConfig, width: u32, height: u32) -> CameraInfo {
    let (f, cx, cy) = (config.focal_px, f64::from(width) / 2.0, f64::from(height) / 2.0);
    let mut info = CameraInfo {
        width,
        height,
        distortion_model: "plumb_bob".into(),
        d: vec![0.0; 5],
        k: [f, 0.0, cx, 0.0, f, cy, 0.0, 0.0, 1.0],
        r: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        p: [f, 0.0, cx, 0.0, 0.0, f, cy, 0.0, 0.0, 0.0, 1.0, 0.0],
        ..Default::default()
    };
    info.header.frame_id = config.frame_id.clone();
    info
}
