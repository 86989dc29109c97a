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
    /// Busy-wait this long before each expected frame, ms (0: off); see [`HotWait`].
    pub hot_wait_ms: f64,
    /// A second pass over the frame's centre at full resolution (see `Detector::detect`).
    pub zoom: bool,
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
            hot_wait_ms: 0.0,
            zoom: false,
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
            zoom: self.zoom,
        }
    }
}

fn check(value: &serde_json::Value) -> Result<(), InvalidParam> {
    let config: DetectorConfig = parse_params_value(value)?;
    if !(config.budget_ms > 0.0) {
        return Err(InvalidParam::new("budget_ms", "must be above 0"));
    }
    if !(config.hot_wait_ms >= 0.0 && config.hot_wait_ms <= 1000.0) {
        return Err(InvalidParam::new("hot_wait_ms", format!("{} is outside 0..=1000", config.hot_wait_ms)));
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
        ("hot_wait_ms", "0", "busy-wait this long before each expected frame (off: 0); costs that much CPU per frame"),
        (
            "zoom",
            "false",
            "also run the model over the frame's centre at full resolution (a window of the model's input size): \
             finds what is too small in the resized frame, for a second inference per frame",
        ),
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
    let mut hot = HotWait::new(Duration::from_secs_f64(config.hot_wait_ms / 1e3));
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
            hot.wait(&node, node.clock().mono_ns());
            continue;
        };
        let dequeued = Instant::now();
        let Ok(frame) = received else { continue }; // decode errors are counted and reported by the runtime
        hot.arrived(frame.arrival_mono_ns);
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

/// The wait between frames, optionally hot. A thread (and its core) idle for a frame period
/// comes back slower: on the development VM SimNet's inference took 3.2 ms at 30 fps and 2.0 ms
/// back to back. With `hot_wait_ms` the detector sleeps until that long before the next frame
/// is due (the period learned from the arrivals) and then busy-waits for it, up to as long
/// after; a frame that does not come in that window is waited for asleep again.
struct HotWait {
    spin_ns: i64,
    last_arrival_ns: Option<i64>,
    /// Smoothed time between arrivals.
    period_ns: Option<i64>,
}

impl HotWait {
    fn new(spin: Duration) -> Self {
        Self { spin_ns: spin.as_nanos() as i64, last_arrival_ns: None, period_ns: None }
    }

    fn arrived(&mut self, arrival_ns: i64) {
        if let Some(last) = self.last_arrival_ns {
            let gap = arrival_ns - last;
            // Gaps of a second or more are pauses, not the frame rate.
            if (1..1_000_000_000).contains(&gap) {
                self.period_ns = Some(self.period_ns.map_or(gap, |p| (p * 7 + gap) / 8));
            }
        }
        self.last_arrival_ns = Some(arrival_ns);
    }

    fn wait(&self, node: &Node, now_ns: i64) {
        match self.plan(now_ns) {
            Plan::Sleep(at_most) => node.wait_for_input(at_most),
            Plan::Spin => {
                // Hot: look at the queue again soon without giving up the core.
                let spin_until = Instant::now() + Duration::from_micros(20);
                while Instant::now() < spin_until {
                    std::hint::spin_loop();
                }
            }
        }
    }

    fn plan(&self, now_ns: i64) -> Plan {
        let idle = Plan::Sleep(Duration::from_millis(5));
        let (Some(last), Some(period), true) = (self.last_arrival_ns, self.period_ns, self.spin_ns > 0) else {
            return idle;
        };
        let due = last + period;
        if now_ns < due - self.spin_ns {
            Plan::Sleep(Duration::from_nanos((due - self.spin_ns - now_ns) as u64).min(Duration::from_millis(5)))
        } else if now_ns < due + self.spin_ns {
            Plan::Spin
        } else {
            idle // the frame is late: wait for it asleep
        }
    }
}

#[derive(Debug, PartialEq)]
enum Plan {
    /// Until a message arrives, at most this long.
    Sleep(Duration),
    Spin,
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: i64 = 1_000_000;

    #[test]
    fn hot_wait_spins_only_around_the_expected_frame() {
        let mut hot = HotWait::new(Duration::from_millis(5));
        assert_eq!(hot.plan(0), Plan::Sleep(Duration::from_millis(5)), "no frame rate known yet");
        for k in 0..4 {
            hot.arrived(k * 33 * MS);
        }
        assert_eq!(hot.period_ns, Some(33 * MS));
        let last = 99 * MS; // due at 132 ms
        assert_eq!(hot.plan(last + 2 * MS), Plan::Sleep(Duration::from_millis(5)), "long before: asleep, 5 ms at most");
        assert_eq!(hot.plan(last + 25 * MS), Plan::Sleep(Duration::from_millis(3)), "asleep until 5 ms before");
        assert_eq!(hot.plan(last + 29 * MS), Plan::Spin);
        assert_eq!(hot.plan(last + 36 * MS), Plan::Spin, "up to 5 ms late");
        assert_eq!(hot.plan(last + 39 * MS), Plan::Sleep(Duration::from_millis(5)), "a late frame: asleep again");
        // A pause of a second is not the frame rate.
        hot.arrived(last + 2_000 * MS);
        assert_eq!(hot.period_ns, Some(33 * MS));
        // Off: always asleep.
        let mut off = HotWait::new(Duration::ZERO);
        for k in 0..4 {
            off.arrived(k * 33 * MS);
        }
        assert_eq!(off.plan(128 * MS), Plan::Sleep(Duration::from_millis(5)));
    }
}
