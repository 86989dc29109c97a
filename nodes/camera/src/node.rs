//! The `camera` and `test-pattern` node kinds: wiring of a [`FrameSource`] to the image and
//! CameraInfo topics.

use crate::{CameraConfig, FrameSource, Pace, SourceError, SourceKind};
use reflex_msgs::sensor_msgs::{CameraInfo, Image};
use reflex_runtime::spec::InvalidParam;
use reflex_runtime::spec::{check_params_as, parse_params_value};
use reflex_runtime::{Direction, Node, NodeKind, NodeOptions, NodeSpec, Port, RunError, Shutdown, Timer};
use std::time::Duration;

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

fn check(value: &serde_json::Value) -> Result<(), InvalidParam> {
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
    inline: false,
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
    inline: false,
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
    config.validate().map_err(|invalid| invalid.of_node(&spec.name))?;
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
