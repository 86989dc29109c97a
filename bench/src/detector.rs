//! `reflex bench detector`: the detector node's time per frame (queue to publish) against
//! OpenVINO's own `benchmark_app` on the same model with the same hint, run in the same
//! session; then the frame rate it sustains from a 640x480 source.
//!
//! The node runs as its own process (`reflex node detector`), fed real frames over zenoh by
//! this process. Lock-step (the next frame goes out when the previous frame's detections came
//! back) for latency, as `benchmark_app -api sync` does; free-running at the source rate for
//! the frame rate.

use crate::emit;
use anyhow::{bail, Context, Result};
use reflex_detector::LoadedModelConfig;
use reflex_launch::{find_in_ancestors, free_port, ChildGuard};
use reflex_msgs::diagnostic_msgs::DiagnosticArray;
use reflex_msgs::sensor_msgs::Image;
use reflex_msgs::vision_msgs::Detection2DArray;
use reflex_runtime::{
    InputOptions, LatencyHistogram, Node, NodeOptions, NodeSpec, Publisher, Subscriber, TransportConfig,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct DetectorArgs {
    /// Model config.
    #[arg(long, default_value = "models/nanodet/nanodet.yaml")]
    model: PathBuf,
    /// Frames per measurement (and benchmark_app iterations).
    #[arg(long, default_value_t = 200)]
    frames: usize,
    #[arg(long, default_value = "CPU")]
    device: String,
    /// Performance hint for both: LATENCY or THROUGHPUT.
    #[arg(long, default_value = "LATENCY")]
    hint: String,
    /// The picture the frames are made from (resized to each frame size).
    #[arg(long, default_value = "nodes/detector/tests/fixtures/vtest_0150.png")]
    image: PathBuf,
    /// Source rate and duration of the frame-rate run.
    #[arg(long, default_value_t = 30.0)]
    source_fps: f64,
    #[arg(long, default_value_t = 10.0)]
    fps_seconds: f64,
    /// OpenVINO's benchmark_app (default: the project venv's, else PATH).
    #[arg(long)]
    benchmark_app: Option<PathBuf>,
    /// Also write the tables (Markdown) to this file.
    #[arg(long)]
    markdown: Option<PathBuf>,
}

/// benchmark_app's latency figures, ms.
struct AppFigures {
    median: f64,
    average: f64,
    max: f64,
    count: usize,
}

pub fn run(args: DetectorArgs) -> Result<()> {
    let config = LoadedModelConfig::load(&args.model).map_err(|e| anyhow::anyhow!("{e}"))?;
    let picture = image::open(find_in_ancestors(&args.image))
        .with_context(|| format!("cannot read {}", args.image.display()))?
        .into_rgb8();
    let (iw, ih) = (config.config.input.width, config.config.input.height);

    eprintln!("benchmark_app: {} iterations of {}", args.frames, config.model_path.display());
    let app_before = benchmark_app(&args, &config.model_path)?;

    let port = free_port()?;
    let prefix = format!("benchdet{port}");
    let transport = TransportConfig { prefix, ..TransportConfig::loopback(port) };
    let bench = Node::new(NodeOptions::new("bench-detector-source").transport(transport.clone()))?;
    let mut frames_out = bench.publisher::<Image>("/camera/image")?;
    let mut detections =
        bench.subscriber::<Detection2DArray>("/perception/detections", InputOptions::default().capacity(1024))?;
    let mut diagnostics = bench.subscriber::<DiagnosticArray>("/diagnostics", InputOptions::default().capacity(64))?;

    // Per-frame time as benchmark_app measures it: back to back, the next frame already
    // waiting when one is done (the source runs faster than the detector; latest wins).
    let mut node_rows = Vec::new();
    for (w, h) in [(iw, ih), (640, 480)] {
        let _detector = start_detector(&args, &transport)?;
        if !frames_out.wait_for_subscribers(Duration::from_secs(30)) {
            bail!("the detector process did not subscribe within 30 s");
        }
        wait_report(&bench, &mut diagnostics, |r| num(r, "frames") == 0.0)?; // this process's, routed
        let frame = frame_of(&picture, w, h);
        eprintln!("detector node: {} frames of {w}x{h}, the next frame always waiting", args.frames);
        // Two frames in flight: while the detector works on one, the next waits in its queue,
        // and a new one is sent only when a result comes back (no flood, no drops).
        let (start, mut in_flight) = (Instant::now(), 0);
        let report = loop {
            while in_flight < 2 {
                send(&bench, &mut frames_out, &frame)?;
                in_flight += 1;
            }
            bench.wait_for_input(Duration::from_millis(20));
            while detections.recv().is_some() {
                in_flight -= 1;
            }
            let mut done = None;
            while let Some(received) = diagnostics.recv() {
                done = done
                    .or(detector_report(received.message).filter(|r| num(r, "steady_frames") >= args.frames as f64));
            }
            if let Some(report) = done {
                break report;
            }
            if start.elapsed() > Duration::from_secs(120) {
                bail!("the detector did not process {} frames within 120 s", args.frames);
            }
        };
        node_rows.push((format!("detector node, queue → publish, {w}x{h} frames"), report));
    }
    let app_after = benchmark_app(&args, &config.model_path)?;

    // End to end with one frame in flight, then the rate sustained from a 30 fps camera.
    let _detector = start_detector(&args, &transport)?;
    if !frames_out.wait_for_subscribers(Duration::from_secs(30)) {
        bail!("the detector process did not subscribe within 30 s");
    }
    wait_report(&bench, &mut diagnostics, |r| num(r, "frames") == 0.0)?;
    let frame = frame_of(&picture, 640, 480);
    eprintln!("detector node: {} lock-step frames of 640x480", args.frames);
    let mut end_to_end = LatencyHistogram::new();
    for i in 0..args.frames + 2 {
        let sent = send(&bench, &mut frames_out, &frame)?;
        let arrived = wait_detections(&bench, &mut detections, sent, Duration::from_secs(10))?;
        if i >= 2 {
            end_to_end.record_ns(arrived - sent);
        }
    }
    let lock_step = wait_report(&bench, &mut diagnostics, |r| num(r, "steady_frames") >= args.frames as f64)?;
    eprintln!("detector node: 640x480 at {} fps for {} s", args.source_fps, args.fps_seconds);
    let period = Duration::from_secs_f64(1.0 / args.source_fps);
    let (start, mut next, mut sent_count, mut received) = (Instant::now(), Instant::now(), 0u64, 0u64);
    while start.elapsed().as_secs_f64() < args.fps_seconds {
        if Instant::now() >= next {
            send(&bench, &mut frames_out, &frame)?;
            sent_count += 1;
            next += period;
        }
        bench.wait_for_input(next.saturating_duration_since(Instant::now()).min(Duration::from_millis(5)));
        while detections.recv().is_some() {
            received += 1;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let settle = Instant::now();
    while settle.elapsed() < Duration::from_millis(500) {
        bench.wait_for_input(Duration::from_millis(20));
        while detections.recv().is_some() {
            received += 1;
        }
    }
    let after =
        wait_report(&bench, &mut diagnostics, |r| num(r, "frames") >= num(&lock_step, "frames") + received as f64)?;
    let dropped = num(&after, "dropped") - num(&lock_step, "dropped");

    let app_median = (app_before.median + app_after.median) / 2.0;
    let mut table = format!(
        "Detector per-frame latency, {} on {} (hint {}), {} frames per row; benchmark_app runs before and \
         after the node in the same session; machine: {}; ms:\n\n",
        config.model_path.display(),
        args.device,
        args.hint,
        args.frames,
        crate::cpu()
    );
    table.push_str("| measurement | n | p50 | p99 | max | mean |\n|---|---:|---:|---:|---:|---:|\n");
    for (when, app) in [("before", &app_before), ("after", &app_after)] {
        table.push_str(&format!(
            "| OpenVINO benchmark_app -api sync, {iw}x{ih} u8 tensor ({when}) | {} | {:.2} (median) | – | {:.2} | {:.2} |\n",
            app.count, app.median, app.max, app.average
        ));
    }
    for (name, report) in &node_rows {
        table.push_str(&format!(
            "| {name} | {} | {:.2} | {:.2} | {:.2} | – |\n",
            report.get("steady_frames").cloned().unwrap_or_default(),
            num(report, "processing_p50_ms"),
            num(report, "processing_p99_ms"),
            num(report, "processing_max_ms"),
        ));
    }
    table.push_str(&format!(
        "| detector node, queue → publish, 640x480, one frame in flight | {} | {:.2} | {:.2} | {:.2} | – |\n",
        lock_step.get("steady_frames").cloned().unwrap_or_default(),
        num(&lock_step, "processing_p50_ms"),
        num(&lock_step, "processing_p99_ms"),
        num(&lock_step, "processing_max_ms"),
    ));
    table.push_str(&format!(
        "| ↳ capture → detections at a subscriber, one frame in flight | {} | {:.2} | {:.2} | {:.2} | – |\n",
        end_to_end.count(),
        end_to_end.quantile_ns(0.5) as f64 / 1e6,
        end_to_end.quantile_ns(0.99) as f64 / 1e6,
        end_to_end.max_ns() as f64 / 1e6
    ));
    let node_p50 = node_rows.first().map_or(0.0, |(_, r)| num(r, "processing_p50_ms"));
    table.push_str(&format!(
        "\nNode p50 ({iw}x{ih}, back to back) / benchmark_app median (mean of before and after): {:.3}.\n\n",
        node_p50 / app_median
    ));
    table.push_str(
        "Frame rate sustained (latest frame wins; frames the detector had no time for are dropped, counted):\n\n\
         | source | source fps | frames sent | detection messages | detections/s | dropped | processing p50 ms |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
    );
    table.push_str(&format!(
        "| 640x480 rgb8 | {:.1} | {sent_count} | {received} | {:.1} | {dropped:.0} | {} |\n",
        sent_count as f64 / elapsed,
        received as f64 / elapsed,
        after.get("processing_p50_ms").cloned().unwrap_or_default()
    ));
    emit(&table, args.markdown.as_deref())
}

fn frame_of(picture: &image::RgbImage, w: u32, h: u32) -> Image {
    let resized = image::imageops::resize(picture, w, h, image::imageops::FilterType::Triangle);
    Image {
        width: w,
        height: h,
        encoding: "rgb8".into(),
        step: w * 3,
        data: resized.into_raw().into(),
        ..Default::default()
    }
}

/// Publishes the frame stamped now; returns the stamp in ns.
fn send(node: &Node, out: &mut Publisher<Image>, frame: &Image) -> Result<i64> {
    let mut frame = frame.clone();
    frame.header.stamp = node.clock().now();
    out.publish(&frame)?;
    Ok(i64::from(frame.header.stamp.sec) * 1_000_000_000 + i64::from(frame.header.stamp.nanosec))
}

/// Waits for the detections of the frame stamped `stamp_ns`; returns their arrival time.
fn wait_detections(
    node: &Node,
    input: &mut Subscriber<Detection2DArray>,
    stamp_ns: i64,
    timeout: Duration,
) -> Result<i64> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        node.wait_for_input(Duration::from_millis(20));
        while let Some(received) = input.recv() {
            let s = received.message.header.stamp;
            if i64::from(s.sec) * 1_000_000_000 + i64::from(s.nanosec) == stamp_ns {
                return Ok(node.clock().now_ns());
            }
        }
    }
    bail!("no detections for a frame within {timeout:?}")
}

/// The detector's next /diagnostics report that satisfies `done`, as key → value. (Reports
/// of a detector process that was stopped fail `frames == 0`, which each measurement waits
/// for first: that also proves the report's route from the new process exists.)
fn wait_report(
    node: &Node,
    input: &mut Subscriber<DiagnosticArray>,
    done: impl Fn(&BTreeMap<String, String>) -> bool,
) -> Result<BTreeMap<String, String>> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        node.wait_for_input(Duration::from_millis(50));
        while let Some(received) = input.recv() {
            if let Some(values) = detector_report(received.message).filter(|r| done(r)) {
                return Ok(values);
            }
        }
    }
    bail!("the detector sent no diagnostics report with the expected counts within 10 s")
}

/// The detector's status in a diagnostics message, as key → value.
fn detector_report(array: &DiagnosticArray) -> Option<BTreeMap<String, String>> {
    let status = array.status.iter().find(|s| s.name.ends_with(": detector"))?;
    Some(status.values.iter().map(|kv| (kv.key.clone(), kv.value.clone())).collect())
}

fn num(report: &BTreeMap<String, String>, key: &str) -> f64 {
    report.get(key).and_then(|v| v.parse().ok()).unwrap_or(0.0)
}

/// `reflex node detector` as a child process, stopped when dropped.
fn start_detector(args: &DetectorArgs, transport: &TransportConfig) -> Result<ChildGuard> {
    let spec = NodeSpec {
        name: "detector".into(),
        params: serde_json::json!({
            "model": args.model, "device": args.device, "hint": args.hint, "report_period_s": 0.2, "budget_ms": 1000.0,
        }),
        transport: transport.clone(),
        ..Default::default()
    };
    let child = Command::new(std::env::current_exe()?)
        .args(["node", "detector", "--spec", &serde_json::to_string(&spec)?])
        .env("REFLEX_LOG", "error")
        .stdout(Stdio::null())
        .spawn()
        .context("cannot start the detector process")?;
    Ok(ChildGuard::from(child))
}

fn find_benchmark_app(explicit: Option<&Path>) -> PathBuf {
    if let Some(path) = explicit {
        return path.to_path_buf();
    }
    if let Ok(dir) = std::env::current_dir() {
        for root in dir.ancestors() {
            let candidate = root.join(".local/venv/bin/benchmark_app");
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    PathBuf::from("benchmark_app")
}

fn benchmark_app(args: &DetectorArgs, model: &Path) -> Result<AppFigures> {
    let app = find_benchmark_app(args.benchmark_app.as_deref());
    let output = Command::new(&app)
        .arg("-m")
        .arg(model)
        .args(["-d", &args.device, "-hint", &args.hint.to_lowercase(), "-api", "sync", "-niter"])
        .arg(args.frames.to_string())
        .output()
        .with_context(|| format!("cannot run {} (./scripts/setup.sh installs it into .local/venv)", app.display()))?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let tail: Vec<&str> = text.lines().rev().take(10).collect();
        bail!("{} failed: {}\n{}", app.display(), String::from_utf8_lossy(&output.stderr), tail.join("\n"));
    }
    let figure = |label: &str| -> Result<f64> {
        text.lines()
            .find_map(|line| {
                let rest = line.split_once(&format!("{label}:"))?.1.trim();
                // Milliseconds, or microseconds for fast models (benchmark_app picks the unit).
                match rest.strip_suffix("ms") {
                    Some(ms) => ms.trim().parse().ok(),
                    None => rest.strip_suffix("us")?.trim().parse::<f64>().ok().map(|us| us / 1e3),
                }
            })
            .with_context(|| format!("benchmark_app printed no {label} latency:\n{text}"))
    };
    let count = text
        .lines()
        .find_map(|line| line.split_once("Count:")?.1.split_whitespace().next()?.parse().ok())
        .unwrap_or(args.frames);
    Ok(AppFigures { median: figure("Median")?, average: figure("Average")?, max: figure("Max")?, count })
}
