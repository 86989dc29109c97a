//! The `detector` node: `sensor_msgs/Image` in (latest frame wins), inference on the node's own
//! thread, `vision_msgs/Detection2DArray` out with the frame's header, so that the age of a
//! detection message is the end-to-end latency from capture.

use crate::{Detection, Detector, DetectorOptions};
use reflex_msgs::diagnostic_msgs::{DiagnosticArray, DiagnosticStatus, KeyValue};
use reflex_msgs::reflex_msgs::MonitorEvent;
use reflex_msgs::sensor_msgs::{Image, ImageView};
use reflex_msgs::vision_msgs::{BoundingBox2D, Detection2D, Detection2DArray, ObjectHypothesisWithPose};
use reflex_runtime::spec::parse_params_value;
use reflex_runtime::{
    Direction, InputOptions, LatencyHistogram, Node, NodeKind, NodeOptions, NodeSpec, OverflowPolicy, Port, RunError,
    Shutdown,
};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub const IMAGE: Port = Port {
    optional: false,
    name: "image",
    topic: "camera/image",
    type_name: "sensor_msgs/msg/Image",
    direction: Direction::Input,
};
pub const DETECTIONS: Port = Port {
    optional: false,
    name: "detections",
    topic: "perception/detections",
    type_name: "vision_msgs/msg/Detection2DArray",
    direction: Direction::Output,
};
pub const DIAGNOSTICS: Port = Port {
    optional: false,
    name: "diagnostics",
    topic: "/diagnostics",
    type_name: "diagnostic_msgs/msg/DiagnosticArray",
    direction: Direction::Output,
};

/// Parameters of the `detector` node.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectorConfig {
    /// Model config (YAML), relative to the working directory.
    pub model: PathBuf,
    pub device: String,
    pub hint: String,
    pub precision: String,
    pub threads: u32,
    /// Overrides the model config's threshold when set.
    pub score_threshold: Option<f32>,
    /// Execution budget of one frame (copy in, inference, decoding), ms.
    pub budget_ms: f64,
    /// Fault injection: every frame takes this much longer (inside the budget); see also the
    /// run-time `delay_ms` fault (reflex_runtime::fault).
    pub inject_delay_ms: f64,
    /// Seconds between two reports on /diagnostics.
    pub report_period_s: f64,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        Self {
            model: PathBuf::from("models/nanodet/nanodet.yaml"),
            device: "CPU".into(),
            hint: "LATENCY".into(),
            precision: String::new(),
            threads: 0,
            score_threshold: None,
            budget_ms: 100.0,
            inject_delay_ms: 0.0,
            report_period_s: 1.0,
        }
    }
}

impl DetectorConfig {
    pub fn options(&self) -> DetectorOptions {
        DetectorOptions {
            device: self.device.clone(),
            hint: self.hint.clone(),
            precision: self.precision.clone(),
            threads: self.threads,
            score_threshold: self.score_threshold,
        }
    }
}

fn check(value: &serde_json::Value) -> Result<(), (String, String)> {
    let config: DetectorConfig = parse_params_value(value)?;
    if !(config.budget_ms > 0.0) {
        return Err(("budget_ms".into(), "must be above 0".into()));
    }
    if !(config.inject_delay_ms >= 0.0) {
        return Err(("inject_delay_ms".into(), "must be 0 or more".into()));
    }
    if let Some(t) = config.score_threshold {
        if !(0.0..=1.0).contains(&t) {
            return Err(("score_threshold".into(), format!("{t} is outside 0..=1")));
        }
    }
    if !["", "LATENCY", "THROUGHPUT", "CUMULATIVE_THROUGHPUT"].contains(&config.hint.as_str()) {
        return Err(("hint".into(), format!("{:?} is not LATENCY, THROUGHPUT or CUMULATIVE_THROUGHPUT", config.hint)));
    }
    crate::config::LoadedModelConfig::load(&config.model).map_err(|e| ("model".into(), e.to_string()))?;
    Ok(())
}

pub const DETECTOR_KIND: NodeKind = NodeKind {
    name: "detector",
    summary: "object detection with OpenVINO: images in (latest wins), vision_msgs/Detection2DArray out",
    ports: &[IMAGE, DETECTIONS, DIAGNOSTICS],
    parameters: &[
        ("model", "models/nanodet/nanodet.yaml", "model config (network file, labels, input, decoder)"),
        ("device", "CPU", "OpenVINO device: CPU, GPU, AUTO, ..."),
        ("hint", "LATENCY", "performance hint: LATENCY, THROUGHPUT, CUMULATIVE_THROUGHPUT, or empty"),
        ("precision", "", "inference precision hint (f32, f16, bf16); empty: the device's default"),
        ("threads", "0", "inference threads; 0: the device's default"),
        ("score_threshold", "", "overrides the model config's threshold"),
        ("budget_ms", "100", "execution budget of one frame; overruns become monitor events"),
        ("inject_delay_ms", "0", "fault injection: every frame takes this much longer (inside the budget)"),
        ("report_period_s", "1", "seconds between reports (rate, per-frame time, drops) on /diagnostics"),
    ],
    check_params: check,
    run,
};

fn run(spec: NodeSpec, shutdown: Shutdown) -> Result<(), RunError> {
    let config: DetectorConfig = spec.params()?;
    let mut detector = Detector::load(&config.model, config.options()).map_err(|e| e.to_string())?;
    let node = Node::new(NodeOptions::from_spec(&spec))?;
    // Latest frame wins unless the launch file says otherwise: a detector must never work
    // through a backlog of stale frames.
    let options = match spec.inputs.get(IMAGE.name) {
        Some(options) => *options,
        None => InputOptions::default().capacity(1).policy(OverflowPolicy::DropOldest),
    };
    let mut images = node.subscriber::<Image>(&spec.topic(&IMAGE), options)?;
    let mut output = node.publisher::<Detection2DArray>(&spec.topic(&DETECTIONS))?;
    let mut budget = node.budget("inference", Duration::from_secs_f64(config.budget_ms / 1e3));
    let mut diagnostics = node.publisher::<DiagnosticArray>(&spec.topic(&DIAGNOSTICS))?;
    let labels = detector.config().labels.clone();
    let mut message = Detection2DArray::default();
    let (mut found, mut scratch) = (Vec::<Detection>::new(), Vec::<u8>::new());
    let mut bad_frames = 0u64;
    let mut geometry = Geometry::default();
    // The first frames after start and after each recompile initialise; they are counted apart.
    let mut stats = Stats { warmup: 2, ..Stats::default() };
    let period = Duration::from_secs_f64(config.report_period_s.max(0.05));
    let mut next_report = Instant::now() + period;
    tracing::info!(node = %spec.name, model = %config.model.display(), device = %config.device, input = images.key(), "detector ready");
    while !shutdown.is_requested() {
        // Reports go out on time even when frames never stop coming.
        if Instant::now() >= next_report {
            next_report += period;
            let report = stats.report(&spec.name, images.key(), images.dropped(), budget.overruns(), bad_frames);
            let mut array = DiagnosticArray::default();
            array.header.stamp = node.clock().now();
            array.status = vec![report];
            diagnostics.publish(&array)?;
        }
        {
            let Some(received) = images.recv_view::<ImageView>() else {
                node.wait_for_input(Duration::from_millis(5));
                continue;
            };
            let dequeued = Instant::now();
            let Ok(frame) = received else { continue }; // decode errors are counted and reported by the runtime
            let image = &frame.message;
            // A new frame size costs a compile (seconds of CPU): at most one per COMPILE_PERIOD,
            // so frames that alternate sizes cannot keep the detector (and the cores the safety
            // units share) busy compiling (M4).
            let canvas = |width, height| detector.canvas(width, height).0;
            if let Err(problem) = geometry.admit(image.width, image.height, canvas, Instant::now()) {
                images.reject();
                bad_frames += 1;
                if bad_frames == 1 || bad_frames.is_power_of_two() {
                    tracing::warn!(node = %spec.name, frames = bad_frames, "frame refused: {problem}");
                    node.report(MonitorEvent::KIND_INPUT_REJECTED, images.key(), 0.0, 0.0, &problem);
                }
                continue;
            }
            let compiles_before = detector.compiles();
            let injected = node.faults().stall() + Duration::from_secs_f64(config.inject_delay_ms / 1e3);
            let result = budget.run(|| {
                let rgb = image.to_rgb8(&mut scratch)?;
                let result = detector.detect(rgb, image.width, image.height, &mut found).map_err(|e| e.to_string());
                if !injected.is_zero() {
                    std::thread::sleep(injected); // a stalled inference, on purpose
                }
                result
            });
            if let Err(problem) = result {
                bad_frames += 1;
                if bad_frames == 1 || bad_frames.is_power_of_two() {
                    tracing::warn!(node = %spec.name, frames = bad_frames, "frame skipped: {problem}");
                    node.report(MonitorEvent::KIND_DECODE_ERROR, images.key(), 0.0, 0.0, &problem);
                }
                continue;
            }
            message.header.stamp = image.header.stamp;
            message.header.frame_id.clear();
            message.header.frame_id.push_str(image.header.frame_id);
            fill_message(&mut message, &found, &labels);
            output.publish(&message)?;
            // Steady state only: a frame that compiled the model for a new size, and the one
            // after it (first inference initialises), are counted apart.
            if detector.compiles() != compiles_before {
                stats.warmup = 2;
            }
            if stats.warmup > 0 {
                stats.warmup -= 1;
                stats.warmup_frames += 1;
            } else {
                stats.processing.record_ns(dequeued.elapsed().as_nanos() as i64);
                if let Some(age) = frame.age_ns {
                    stats.age_at_dequeue.record_ns(age);
                }
            }
            stats.frames += 1;
        }
    }
    tracing::info!(
        node = %spec.name,
        frames = budget.runs(),
        overruns = budget.overruns(),
        inference_p50_ms = budget.run_time().quantile_ns(0.5) as f64 / 1e6,
        dropped = images.dropped(),
        "detector stopped"
    );
    Ok(())
}

/// A new frame size may cost a compile at most this often.
const COMPILE_PERIOD: Duration = Duration::from_secs(10);
/// A new frame size is taken only after this many frames of it in a row: one stray frame (a
/// driver glitch, a corrupt header) must not make the detector refuse the real size for
/// `COMPILE_PERIOD` and so cause a safe stop.
const SIZE_CHANGE_FRAMES: u32 = 10;

/// Which frame sizes the detector takes: the first (within limits), and another one only when
/// it has lasted `SIZE_CHANGE_FRAMES` frames and the last change is `COMPILE_PERIOD` old.
#[derive(Default)]
struct Geometry {
    size: Option<(u32, u32)>,
    changed_at: Option<Instant>,
    /// Another size seen in a row, and how many times.
    candidate: Option<((u32, u32), u32)>,
}

impl Geometry {
    /// Whether a `width`x`height` frame may go to the model at `now`; `canvas` gives the
    /// model input a frame of that size needs.
    fn admit(
        &mut self,
        width: u32,
        height: u32,
        canvas: impl FnOnce(u32, u32) -> (u64, u64),
        now: Instant,
    ) -> Result<(), String> {
        if self.size == Some((width, height)) {
            self.candidate = None;
            return Ok(());
        }
        if width == 0 || height == 0 || width > 16_384 || height > 16_384 {
            return Err(format!("{width}x{height} is no camera frame"));
        }
        let (cw, ch) = canvas(width, height);
        if cw.saturating_mul(ch) > crate::engine::MAX_CANVAS_PIXELS {
            return Err(format!("a {width}x{height} frame needs a {cw}x{ch} canvas"));
        }
        if let Some((w, h)) = self.size {
            let seen = match self.candidate {
                Some((size, n)) if size == (width, height) => n + 1,
                _ => 1,
            };
            self.candidate = Some(((width, height), seen));
            if seen < SIZE_CHANGE_FRAMES {
                return Err(format!("{width}x{height} after {w}x{h}: {seen} such frames in a row, a size change takes {SIZE_CHANGE_FRAMES}"));
            }
            if let Some(at) = self.changed_at.filter(|at| now.saturating_duration_since(*at) < COMPILE_PERIOD) {
                return Err(format!(
                    "{width}x{height} after {w}x{h} {:.1} s ago (one size change per {COMPILE_PERIOD:?})",
                    now.saturating_duration_since(at).as_secs_f64()
                ));
            }
        }
        self.size = Some((width, height));
        self.changed_at = Some(now);
        self.candidate = None;
        Ok(())
    }
}

/// What the detector reports on /diagnostics: counts since start, steady-state times.
#[derive(Default)]
struct Stats {
    frames: u64,
    warmup: u32,
    warmup_frames: u64,
    /// From taking the frame off the queue to publishing its detections.
    processing: LatencyHistogram,
    /// Capture to dequeue: how old frames are when the detector starts on them.
    age_at_dequeue: LatencyHistogram,
}

impl Stats {
    fn report(&self, node: &str, input: &str, dropped: u64, overruns: u64, bad_frames: u64) -> DiagnosticStatus {
        let ms = |h: &LatencyHistogram, q: f64| format!("{:.3}", h.quantile_ns(q) as f64 / 1e6);
        let values = [
            ("frames", self.frames.to_string()),
            ("steady_frames", self.processing.count().to_string()),
            ("warmup_frames", self.warmup_frames.to_string()),
            ("dropped", dropped.to_string()),
            ("bad_frames", bad_frames.to_string()),
            ("budget_overruns", overruns.to_string()),
            ("processing_p50_ms", ms(&self.processing, 0.5)),
            ("processing_p99_ms", ms(&self.processing, 0.99)),
            ("processing_max_ms", format!("{:.3}", self.processing.max_ns() as f64 / 1e6)),
            ("age_at_dequeue_p50_ms", ms(&self.age_at_dequeue, 0.5)),
        ];
        DiagnosticStatus {
            level: if self.frames == 0 { DiagnosticStatus::STALE } else { DiagnosticStatus::OK },
            name: format!("{node}: detector"),
            message: format!("{} frames from {input}", self.frames),
            hardware_id: String::new(),
            values: values.into_iter().map(|(key, value)| KeyValue { key: key.into(), value }).collect(),
        }
    }
}

/// Detections as `vision_msgs`: label strings as class ids, boxes in image pixels (centre and
/// size). Reuses the message's vectors.
pub fn fill_message(message: &mut Detection2DArray, found: &[Detection], labels: &[String]) {
    message.detections.resize_with(found.len(), Detection2D::default);
    for (out, d) in message.detections.iter_mut().zip(found) {
        out.header.clone_from(&message.header);
        out.results.resize_with(1, ObjectHypothesisWithPose::default);
        let hypothesis = &mut out.results[0].hypothesis;
        hypothesis.class_id.clear();
        match labels.get(d.class) {
            Some(label) => hypothesis.class_id.push_str(label),
            None => hypothesis.class_id.push_str(&d.class.to_string()),
        }
        hypothesis.score = f64::from(d.score);
        out.bbox = BoundingBox2D::default();
        out.bbox.center.position.x = f64::from(d.x0 + d.x1) / 2.0;
        out.bbox.center.position.y = f64::from(d.y0 + d.y1) / 2.0;
        out.bbox.size_x = f64::from(d.x1 - d.x0);
        out.bbox.size_y = f64::from(d.y1 - d.y0);
        out.id.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(width: u32, height: u32) -> (u64, u64) {
        (u64::from(width), u64::from(height))
    }

    /// M4 and nuisance braking: a stray frame of another size changes nothing; a camera that
    /// really changed size is followed after SIZE_CHANGE_FRAMES frames, at most once per
    /// COMPILE_PERIOD; absurd sizes never.
    #[test]
    fn a_stray_frame_size_never_displaces_the_real_one() {
        let start = Instant::now();
        let mut geometry = Geometry::default();
        assert!(geometry.admit(640, 480, frame, start).is_ok());
        let later = start + COMPILE_PERIOD * 2;
        assert!(geometry.admit(1280, 720, frame, later).is_err(), "one stray frame");
        assert!(geometry.admit(640, 480, frame, later).is_ok(), "the real size goes on");
        for k in 1..SIZE_CHANGE_FRAMES {
            assert!(geometry.admit(1280, 720, frame, later).is_err(), "frame {k} of the new size");
        }
        assert!(geometry.admit(1280, 720, frame, later).is_ok(), "the new size, after it lasted");
        assert!(geometry.admit(640, 480, frame, later).is_err(), "and now the old one is the stray");
        for _ in 0..2 * SIZE_CHANGE_FRAMES {
            assert!(geometry.admit(320, 240, frame, later).is_err(), "a second change within the period");
        }
        assert!(geometry.admit(320, 240, frame, later + COMPILE_PERIOD).is_ok());
        assert!(geometry.admit(0, 240, frame, later + COMPILE_PERIOD * 3).is_err());
        let huge = |w: u32, h: u32| (u64::from(w) * 1000, u64::from(h) * 1000);
        for _ in 0..2 * SIZE_CHANGE_FRAMES {
            assert!(geometry.admit(640, 480, huge, later + COMPILE_PERIOD * 3).is_err(), "canvas too large");
        }
    }
}
