//! `frame-stats`: consumes an image stream (in place, no copy) and reports its rate, age and
//! drops on /diagnostics (a probe for camera set-ups and the transport benchmarks).

use reflex_msgs::diagnostic_msgs::{DiagnosticArray, DiagnosticStatus, KeyValue};
use reflex_msgs::sensor_msgs::{Image, ImageView};
use reflex_runtime::spec::check_params_as;
use reflex_runtime::{Direction, Node, NodeKind, NodeOptions, NodeSpec, Port, RunError, Shutdown};
use serde::Deserialize;
use std::time::{Duration, Instant};

pub const STATS_IMAGE: Port = Port {
    optional: false,
    name: "image",
    topic: "camera/image",
    type_name: "sensor_msgs/msg/Image",
    direction: Direction::Input,
};
pub const STATS_DIAGNOSTICS: Port = Port {
    optional: false,
    name: "diagnostics",
    topic: "/diagnostics",
    type_name: "diagnostic_msgs/msg/DiagnosticArray",
    direction: Direction::Output,
};

/// `frame-stats`: consumes images (in place, no copy) and publishes their rate, age and drops
/// as `diagnostic_msgs/DiagnosticArray` once per `report_period_s`.
pub const FRAME_STATS_KIND: NodeKind = NodeKind {
    name: "frame-stats",
    summary: "consumes an image stream and reports its rate, age and drops on /diagnostics",
    ports: &[STATS_IMAGE, STATS_DIAGNOSTICS],
    parameters: &[("report_period_s", "1.0", "seconds between two diagnostics reports")],
    check_params: check_params_as::<FrameStatsConfig>,
    run: run_frame_stats,
    inline: false,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FrameStatsConfig {
    pub report_period_s: f64,
}

impl Default for FrameStatsConfig {
    fn default() -> Self {
        Self { report_period_s: 1.0 }
    }
}

fn run_frame_stats(spec: NodeSpec, shutdown: Shutdown) -> Result<(), RunError> {
    let config: FrameStatsConfig = spec.params()?;
    let node = Node::new(NodeOptions::from_spec(&spec))?;
    let topic = spec.topic(&STATS_IMAGE);
    let mut images = node.subscriber::<Image>(&topic, spec.input_options(&STATS_IMAGE))?;
    let mut diagnostics = node.publisher::<DiagnosticArray>(&spec.topic(&STATS_DIAGNOSTICS))?;
    let period = Duration::from_secs_f64(config.report_period_s.max(0.01));
    let mut report = DiagnosticArray::default();
    let (mut frames, mut window_start, mut last_size) = (0u64, Instant::now(), (0, 0));
    while !shutdown.is_requested() {
        node.wait_for_input(Duration::from_millis(50));
        while let Some(received) = images.recv_view::<ImageView>() {
            let Ok(frame) = received else { continue };
            frames += 1;
            last_size = (frame.message.width, frame.message.height);
        }
        if window_start.elapsed() >= period {
            let stats = images.stats();
            let rate = frames as f64 / window_start.elapsed().as_secs_f64();
            let values = [
                ("rate_hz", format!("{rate:.2}")),
                ("size", format!("{}x{}", last_size.0, last_size.1)),
                ("age_p50_ms", format!("{:.3}", stats.age.quantile_ns(0.5) as f64 / 1e6)),
                ("age_p99_ms", format!("{:.3}", stats.age.quantile_ns(0.99) as f64 / 1e6)),
                ("received", stats.received.to_string()),
                ("dropped", images.dropped().to_string()),
                ("through_shared_memory", stats.through_shared_memory.to_string()),
            ];
            report.header.stamp = node.clock().now();
            report.status = vec![DiagnosticStatus {
                level: if frames == 0 { DiagnosticStatus::STALE } else { DiagnosticStatus::OK },
                name: format!("{}: {topic}", spec.name),
                message: if frames == 0 { "no frames".into() } else { format!("{rate:.1} Hz") },
                hardware_id: String::new(),
                values: values.into_iter().map(|(key, value)| KeyValue { key: key.into(), value }).collect(),
            }];
            diagnostics.publish(&report)?;
            (frames, window_start) = (0, Instant::now());
        }
    }
    Ok(())
}
