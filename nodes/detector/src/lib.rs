//! Object detection on the vehicle with OpenVINO.
//!
//! A [`Detector`] is built from a model config ([`config`]): the network (OpenVINO IR, ONNX or
//! TFLite), its labels, what its input wants and which decoder reads its outputs (NanoDet,
//! TF Object Detection API SSD, YOLOv8). Frames go in as `u8` RGB of any size; resizing,
//! element type and layout conversion run inside the OpenVINO graph (PrePostProcessor), and the
//! boxes come back in frame pixels after class-wise NMS.
//!
//! ```no_run
//! use reflex_detector::{Detector, DetectorOptions};
//! let mut detector = Detector::load("models/nanodet/nanodet.yaml".as_ref(), DetectorOptions::default())?;
//! let (width, height) = (640, 480);
//! let frame = vec![0u8; width * height * 3];
//! let mut found = Vec::new();
//! detector.detect(&frame, width as u32, height as u32, &mut found)?;
//! for d in &found {
//!     println!("{} {:.2} [{:.0} {:.0} {:.0} {:.0}]", detector.config().label(d.class), d.score, d.x0, d.y0, d.x1, d.y1);
//! }
//! # Ok::<(), reflex_detector::DetectorError>(())
//! ```
//!
//! The OpenVINO C library is loaded at run time ([`runtime`]); nothing here links against it.

pub mod config;
pub mod decode;
mod engine;
pub mod frames;
pub mod node;
pub mod runtime;

pub use config::{ConfigError, LoadedModelConfig, ModelConfig};
pub use decode::Detection;
pub use engine::{Detector, DetectorError, DetectorOptions, MAX_CANVAS_PIXELS};
pub use frames::FrameDetector;
pub use node::DETECTOR_KIND;
