//! V4L2/UVC cameras through nokhwa: device, resolution, rate and pixel format from parameters.
//! Opening a missing or busy device is an error that names the device.

use crate::{fit_into, FrameSource, Pace, SourceError};
use nokhwa::pixel_format::RgbFormat;
use nokhwa::utils::{CameraFormat, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType, Resolution};
use nokhwa::Camera;
use std::path::Path;

pub struct V4l2Camera {
    camera: Camera,
    device: String,
    width: u32,
    height: u32,
}

/// `MJPEG`, `YUYV`, `NV12`, `GRAY` or `RAWRGB`.
pub fn pixel_format(name: &str) -> Result<FrameFormat, String> {
    Ok(match name.to_ascii_uppercase().as_str() {
        "MJPEG" | "MJPG" => FrameFormat::MJPEG,
        "YUYV" | "YUY2" => FrameFormat::YUYV,
        "NV12" => FrameFormat::NV12,
        "GRAY" | "GREY" => FrameFormat::GRAY,
        "RAWRGB" | "RGB" => FrameFormat::RAWRGB,
        other => return Err(format!("pixel format {other:?} is not one of MJPEG, YUYV, NV12, GRAY, RAWRGB")),
    })
}

impl V4l2Camera {
    /// Opens `device` (`/dev/videoN` or an index) and starts streaming.
    pub fn open(device: &str, width: u32, height: u32, fps: u32, format: &str) -> Result<Self, SourceError> {
        let failed = |message: String| SourceError::Failed(format!("camera {device}: {message}"));
        let index = match device.strip_prefix("/dev/video").unwrap_or(device).parse::<u32>() {
            Ok(n) => CameraIndex::Index(n),
            Err(_) => CameraIndex::String(device.to_string()),
        };
        let node = match &index {
            CameraIndex::Index(n) => format!("/dev/video{n}"),
            CameraIndex::String(s) => s.clone(),
        };
        if !Path::new(&node).exists() {
            let present: Vec<String> = std::fs::read_dir("/dev")
                .map(|d| {
                    d.flatten()
                        .filter_map(|e| {
                            e.file_name().to_str().filter(|n| n.starts_with("video")).map(|n| format!("/dev/{n}"))
                        })
                        .collect()
                })
                .unwrap_or_default();
            return Err(failed(format!(
                "no such device ({node} does not exist; video devices here: {})",
                if present.is_empty() { "none".to_string() } else { present.join(", ") }
            )));
        }
        let frame_format = pixel_format(format).map_err(failed)?;
        let requested = RequestedFormat::new::<RgbFormat>(RequestedFormatType::Closest(CameraFormat::new(
            Resolution::new(width, height),
            frame_format,
            fps,
        )));
        let mut camera = Camera::new(index, requested).map_err(|e| failed(format!("cannot open: {e}")))?;
        camera
            .open_stream()
            .map_err(|e| failed(format!("cannot start streaming (busy, or the format is refused): {e}")))?;
        let got = camera.resolution();
        tracing::info!(device, width = got.width(), height = got.height(), format = %camera.frame_format(), "V4L2 camera streaming");
        Ok(Self { camera, device: device.to_string(), width, height })
    }
}

impl FrameSource for V4l2Camera {
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
        let failed = |message: String| SourceError::Failed(format!("camera {}: {message}", self.device));
        let buffer = self.camera.frame().map_err(|e| failed(format!("no frame: {e}")))?;
        let image = if buffer.source_frame_format() == FrameFormat::MJPEG {
            image::load_from_memory_with_format(buffer.buffer(), image::ImageFormat::Jpeg)
                .map_err(|e| failed(format!("cannot decode MJPEG frame: {e}")))?
                .into_rgb8()
        } else {
            buffer.decode_image::<RgbFormat>().map_err(|e| failed(format!("cannot decode frame: {e}")))?
        };
        fit_into(image, (self.width, self.height), out);
        Ok(())
    }
}

impl Drop for V4l2Camera {
    fn drop(&mut self) {
        let _ = self.camera.stop_stream();
    }
}
