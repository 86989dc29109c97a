//! What the detector node does with one frame, without transport: which frame sizes go to
//! the model (a new size costs a compile), inference under the node's budget with any stall
//! that is injected, the `vision_msgs` message, and the counts and times it reports.

use crate::{Detection, Detector};
use reflex_msgs::diagnostic_msgs::{DiagnosticStatus, KeyValue};
use reflex_msgs::sensor_msgs::ImageView;
use reflex_msgs::vision_msgs::{BoundingBox2D, Detection2D, Detection2DArray, ObjectHypothesisWithPose};
use reflex_runtime::{Budget, LatencyHistogram};
use std::time::{Duration, Instant};

/// Why a frame gave no detections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The frame's size is refused (absurd, too large, or a change not yet allowed).
    Refused(String),
    /// Conversion or inference failed.
    Failed(String),
}

impl FrameError {
    /// What was wrong, without saying what became of the frame.
    pub fn detail(&self) -> &str {
        match self {
            Self::Refused(problem) | Self::Failed(problem) => problem,
        }
    }
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused(problem) => write!(f, "frame refused: {problem}"),
            Self::Failed(problem) => write!(f, "frame skipped: {problem}"),
        }
    }
}

/// A [`Detector`] with what one frame after another needs: reused buffers, the frame sizes
/// admitted so far and the statistics of the steady state.
pub struct FrameDetector {
    detector: Detector,
    labels: Vec<String>,
    message: Detection2DArray,
    found: Vec<Detection>,
    scratch: Vec<u8>,
    geometry: Geometry,
    stats: Stats,
    bad_frames: u64,
    /// The last frame compiled the model (its time is not steady state).
    compiled: bool,
}

impl FrameDetector {
    pub fn new(detector: Detector) -> Self {
        let labels = detector.config().labels.clone();
        Self {
            detector,
            labels,
            message: Detection2DArray::default(),
            found: Vec::new(),
            scratch: Vec::new(),
            geometry: Geometry::default(),
            // The first frames after start and after each recompile initialise; they are
            // counted apart.
            stats: Stats { warmup: 2, ..Stats::default() },
            bad_frames: 0,
            compiled: false,
        }
    }

    /// Detects in `image` under `budget` (plus `stall`, slept inside the budget on purpose:
    /// fault injection) and returns the message with the frame's header.
    pub fn detect(
        &mut self,
        image: &ImageView<'_>,
        stall: Duration,
        budget: &mut Budget,
    ) -> Result<&Detection2DArray, FrameError> {
        // A new frame size costs a compile (seconds of CPU): at most one per COMPILE_PERIOD,
        // so frames that alternate sizes cannot keep the detector (and the cores the safety
        // units share) busy compiling (M4).
        let detector = &mut self.detector;
        let canvas = |width, height| detector.canvas(width, height).0;
        if let Err(problem) = self.geometry.admit(image.width, image.height, canvas, Instant::now()) {
            self.bad_frames += 1;
            return Err(FrameError::Refused(problem));
        }
        let compiles_before = detector.compiles();
        let (scratch, found) = (&mut self.scratch, &mut self.found);
        let result = budget.run(|| {
            let rgb = image.to_rgb8(scratch)?;
            let result = detector.detect(rgb, image.width, image.height, found).map_err(|e| e.to_string());
            if !stall.is_zero() {
                std::thread::sleep(stall); // a stalled inference, on purpose
            }
            result
        });
        self.compiled = detector.compiles() != compiles_before;
        if let Err(problem) = result {
            self.bad_frames += 1;
            return Err(FrameError::Failed(problem));
        }
        let message = &mut self.message;
        message.header.stamp = image.header.stamp;
        message.header.frame_id.clear();
        message.header.frame_id.push_str(image.header.frame_id);
        fill_message(message, &self.found, &self.labels);
        Ok(&self.message)
    }

    /// Counts a frame whose detections went out: `dequeued` is when it left the queue, `age_ns`
    /// its age then (when its stamp is trusted).
    pub fn finished(&mut self, dequeued: Instant, age_ns: Option<i64>) {
        // Steady state only: a frame that compiled the model for a new size, and the one
        // after it (first inference initialises), are counted apart.
        let stats = &mut self.stats;
        if self.compiled {
            stats.warmup = 2;
        }
        if stats.warmup > 0 {
            stats.warmup -= 1;
            stats.warmup_frames += 1;
        } else {
            stats.processing.record_ns(dequeued.elapsed().as_nanos() as i64);
            if let Some(age) = age_ns {
                stats.age_at_dequeue.record_ns(age);
            }
        }
        stats.frames += 1;
    }

    /// Frames refused or failed so far.
    pub fn bad_frames(&self) -> u64 {
        self.bad_frames
    }

    /// The report on /diagnostics of node `node` reading `input`.
    pub fn report(&self, node: &str, input: &str, dropped: u64, overruns: u64) -> DiagnosticStatus {
        self.stats.report(node, input, dropped, overruns, self.bad_frames)
    }
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
