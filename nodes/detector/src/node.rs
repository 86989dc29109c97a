//! The `detector` node: `sensor_msgs/Image` in (latest frame wins), inference on the node's own
//! thread, `vision_msgs/Detection2DArray` out with the frame's header, so that the age of a
//! detection message is the end-to-end latency from capture.

use crate::frames::{FrameDetector, FrameError};
use crate::{Detector, DetectorOptions};
use reflex_msgs::diagnostic_msgs::DiagnosticArray;
use reflex_msgs::reflex_msgs::MonitorEvent;
use reflex_msgs::sensor_msgs::{Image, ImageView};
use reflex_msgs::vision_msgs::Detection2DArray;
use reflex_runtime::spec::parse_params_value;
use reflex_runtime::spec::InvalidParam;
use reflex_runtime::{
    Direction, InputOptions, Node, NodeKind, NodeOptions, NodeSpec, OverflowPolicy, Port, RunError, Shutdown,
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

fn check(value: &serde_json::Value) -> Result<(), InvalidParam> {
    let config: DetectorConfig = parse_params_value(value)?;
    if !(config.budget_ms > 0.0) {
        return Err(InvalidParam::new("budget_ms", "must be above 0"));
    }
    if !(config.inject_delay_ms >= 0.0) {
        return Err(InvalidParam::new("inject_delay_ms", "must be 0 or more"));
    }
    if let Some(t) = config.score_threshold {
        if !(0.0..=1.0).contains(&t) {
            return Err(InvalidParam::new("score_threshold", format!("{t} is outside 0..=1")));
        }
    }
    if !["", "LATENCY", "THROUGHPUT", "CUMULATIVE_THROUGHPUT"].contains(&config.hint.as_str()) {
        return Err(InvalidParam::new(
            "hint",
            format!("{:?} is not LATENCY, THROUGHPUT or CUMULATIVE_THROUGHPUT", config.hint),
        ));
    }
    crate::config::LoadedModelConfig::load(&config.model).map_err(|e| InvalidParam::new("model", e.to_string()))?;
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
    inline: false,
};

fn run(spec: NodeSpec, shutdown: Shutdown) -> Result<(), RunError> {
    let config: DetectorConfig = spec.params()?;
    let detector = Detector::load(&config.model, config.options()).map_err(|e| e.to_string())?;
    let mut frames = FrameDetector::new(detector);
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
    let inject_delay = Duration::from_secs_f64(config.inject_delay_ms / 1e3);
    let period = Duration::from_secs_f64(config.report_period_s.max(0.05));
    let mut next_report = Instant::now() + period;
    tracing::info!(node = %spec.name, model = %config.model.display(), device = %config.device, input = images.key(), "detector ready");
    while !shutdown.is_requested() {
        // Reports go out on time even when frames never stop coming.
        if Instant::now() >= next_report {
            next_report += period;
            let mut array = DiagnosticArray::default();
            array.header.stamp = node.clock().now();
            array.status = vec![frames.report(&spec.name, images.key(), images.dropped(), budget.overruns())];
            diagnostics.publish(&array)?;
        }
        let Some(received) = images.recv_view::<ImageView>() else {
            node.wait_for_input(Duration::from_millis(5));
            continue;
        };
        let dequeued = Instant::now();
        let Ok(frame) = received else { continue }; // decode errors are counted and reported by the runtime
        let stall = node.faults().stall() + inject_delay;
        match frames.detect(&frame.message, stall, &mut budget) {
            Ok(message) => output.publish(message)?,
            Err(problem) => {
                let kind = match problem {
                    FrameError::Refused(_) => {
                        images.reject();
                        MonitorEvent::KIND_INPUT_REJECTED
                    }
                    FrameError::Failed(_) => MonitorEvent::KIND_DECODE_ERROR,
                };
                let bad = frames.bad_frames();
                if bad == 1 || bad.is_power_of_two() {
                    tracing::warn!(node = %spec.name, frames = bad, "{problem}");
                    node.report(kind, images.key(), 0.0, 0.0, problem.detail());
                }
                continue;
            }
        }
        frames.finished(dequeued, frame.age_ns);
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
