//! `reflex bench chain`: capture → brake command through the vehicle chain (camera → OpenVINO
//! detector → AEB → arbiter, the monitor beside it) in each deployment, against its **floor**:
//! the same node code called one after another in one function, with no transport.
//!
//! Deployments, each started by `reflex launch` from a generated launch file (only the
//! launch file differs between them):
//! - **processes**: every node its own process (the default of a launch file);
//! - **threads**: camera, detector and AEB as threads of one process (a launch-file group,
//!   one zenoh session); the arbiter and the monitor are safety units and keep their own
//!   processes;
//! - **… AEB inline**: the same with `inline: true` on the AEB, which then handles detections
//!   on the thread that delivers them (zenoh's receive thread; in the group, the detector's).
//!
//! One run interleaves them: every round runs each model in each deployment for `--seconds`,
//! so a machine that slows down during the run slows every row alike. Latencies come from the
//! publishers' own send stamps (the attachment) against the frame's capture stamp, per frame,
//! taking the first message of each topic that carries that frame's stamp; the observer only
//! subscribes to the small messages (camera info, detections, request, command).

use crate::emit;
use anyhow::{bail, Context, Result};
use reflex_aeb::{Aeb, AebConfig};
use reflex_camera::{CameraConfig, FrameSource, ImageFolder};
use reflex_detector::node::DetectorConfig;
use reflex_detector::{Detector, FrameDetector};
use reflex_launch::{free_port, LaunchHandle};
use reflex_monitor::arbiter::{Arbiter, ArbiterConfig, SafeStopState};
use reflex_msgs::reflex_msgs::{BrakeRequest, TrackedObjectArray};
use reflex_msgs::sensor_msgs::{CameraInfo, ImageView};
use reflex_msgs::std_msgs::HeaderView;
use reflex_msgs::vision_msgs::Detection2DArray;
use reflex_runtime::reflex::ReflexContext;
use reflex_runtime::task::{Event3, Slot, Task};
use reflex_runtime::{InputOptions, LatencyHistogram, Node, NodeOptions, Timer, TransportConfig};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Width and height of the camera frames (the HIL bench's and the vehicle launch file's).
const FRAME_SIZE: (u32, u32) = (640, 480);

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Deployment {
    /// The node code called in sequence in one function: no transport, no thread switch.
    Floor,
    /// Every node its own process.
    Processes,
    /// Camera, detector and AEB as threads of one process; arbiter and monitor apart.
    Threads,
    /// Processes, the AEB handling detections on the thread that delivers them.
    ProcessesInline,
    /// Threads, the AEB handling detections on the detector's thread (inline).
    ThreadsInline,
}

impl Deployment {
    fn name(self) -> &'static str {
        match self {
            Deployment::Floor => "floor (one function)",
            Deployment::Processes => "processes",
            Deployment::Threads => "threads (camera+detector+AEB)",
            Deployment::ProcessesInline => "processes, AEB inline",
            Deployment::ThreadsInline => "threads, AEB inline",
        }
    }

    fn grouped(self) -> bool {
        matches!(self, Deployment::Threads | Deployment::ThreadsInline)
    }

    fn inline(self) -> bool {
        matches!(self, Deployment::ProcessesInline | Deployment::ThreadsInline)
    }
}

#[derive(clap::Args)]
pub struct ChainArgs {
    /// Detector model configs, one row group each.
    #[arg(long, value_delimiter = ',', default_values = ["models/simnet/simnet.yaml", "models/nanodet/nanodet.yaml"])]
    models: Vec<PathBuf>,
    /// Deployments to compare (the floor is always measured: the other rows are relative to it).
    #[arg(long, value_delimiter = ',', default_values = ["processes", "processes-inline", "threads", "threads-inline"])]
    deployments: Vec<Deployment>,
    /// Rounds; each runs every model in every deployment once.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Measured seconds per model, deployment and round (after one second of warm-up).
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Camera frame rate.
    #[arg(long, default_value_t = 30.0)]
    fps: f64,
    /// The detector's inference threads (its `threads` parameter); 0: OpenVINO's default.
    #[arg(long, default_value_t = 0)]
    threads: u32,
    /// The detector's `hot_wait_ms` (busy-wait before each expected frame) in the launched
    /// deployments; the floor waits asleep.
    #[arg(long, default_value_t = 0.0)]
    hot_wait_ms: f64,
    /// Folder of camera frames (PNG/JPEG, scaled to 640x480); default: road scenes rendered by
    /// `reflex sim dataset` at the start of the run.
    #[arg(long)]
    frames: Option<PathBuf>,
    /// Also write the table (Markdown) to this file.
    #[arg(long)]
    markdown: Option<PathBuf>,
}

/// What one model in one deployment measured, all rounds together.
#[derive(Default)]
struct Samples {
    end_to_end: LatencyHistogram,
    /// capture → detections, detections → AEB request, AEB request → command.
    hops: [LatencyHistogram; 3],
    /// Frames captured in the measured windows, and of those, frames that reached a command.
    captured: u64,
    answered: u64,
}

impl Samples {
    /// One frame that went all the way: stamps (ns, the same clock) of capture, detections,
    /// request and command.
    fn record(&mut self, points: [i64; 4]) {
        self.end_to_end.record_ns(points[3] - points[0]);
        for (k, hop) in self.hops.iter_mut().enumerate() {
            hop.record_ns(points[k + 1] - points[k]);
        }
        self.answered += 1;
    }
}

pub fn run(args: ChainArgs) -> Result<()> {
    if args.rounds == 0 || !(args.seconds > 0.0) || !(args.fps > 0.0 && args.fps <= 1000.0) {
        bail!("--rounds must be at least 1, --seconds above 0 and --fps in (0, 1000]");
    }
    for model in &args.models {
        reflex_detector::LoadedModelConfig::load(model).with_context(|| format!("model config {}", model.display()))?;
    }
    let rendered = tempdir("frames")?;
    let frames = match &args.frames {
        Some(folder) => folder.clone(),
        None => {
            eprintln!("rendering 30 road scenes with `reflex sim dataset`");
            let status = std::process::Command::new(std::env::current_exe()?)
                .args(["sim", "dataset", "--count", "30", "--out"])
                .arg(&rendered)
                .stdout(Stdio::null())
                .status()?;
            if !status.success() {
                bail!("rendering the frames failed: `reflex sim dataset` {status}");
            }
            rendered.join("images")
        }
    };
    // Fails early, with the folder named, if it holds no frames.
    ImageFolder::open(&frames, Some(FRAME_SIZE), true)?;

    let mut deployments = vec![Deployment::Floor];
    deployments.extend(args.deployments.iter().copied().filter(|d| *d != Deployment::Floor));
    let mut samples: Vec<Vec<Samples>> =
        args.models.iter().map(|_| deployments.iter().map(|_| Samples::default()).collect()).collect();
    let started = Instant::now();
    for round in 0..args.rounds {
        for (m, model) in args.models.iter().enumerate() {
            for (d, deployment) in deployments.iter().enumerate() {
                eprintln!(
                    "round {}/{}: {} {} ({:.0} s)",
                    round + 1,
                    args.rounds,
                    model.display(),
                    deployment.name(),
                    started.elapsed().as_secs_f64()
                );
                let into = &mut samples[m][d];
                match deployment {
                    Deployment::Floor => floor(model, &frames, &args, into)?,
                    _ => launched(*deployment, model, &frames, &args, into)?,
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&rendered);
    emit(&table(&args, &deployments, &samples), args.markdown.as_deref())
}

/// A fresh folder under the temporary directory.
fn tempdir(what: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("reflex-chain-{what}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// The floor: the camera's frame source, the detector's [`FrameDetector`], the [`Aeb`] task
/// and the [`Arbiter`] called one after another at the camera's rate, on this thread.
fn floor(model: &Path, frames: &Path, args: &ChainArgs, into: &mut Samples) -> Result<()> {
    let config = DetectorConfig { model: model.to_path_buf(), threads: args.threads, ..DetectorConfig::default() };
    let detector = Detector::load(model, config.options()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut detect = FrameDetector::new(detector);
    // A node of its own only for what the node code needs from one (a budget, a status
    // handle); nothing is published.
    let node = Node::new(NodeOptions::new("chain-floor").transport(TransportConfig::loopback(free_port()?)))?;
    let clock = node.clock().clone();
    let mut budget = node.budget("inference", Duration::from_secs_f64(config.budget_ms / 1e3));
    let mut aeb = Aeb::new(&AebConfig::default(), node.status_handle());
    let mut slots: (Slot<BrakeRequest>, Slot<TrackedObjectArray>) = Default::default();
    let mut arbiter = Arbiter::new(ArbiterConfig::default(), clock.mono_ns());
    let mut command = BrakeRequest::default();
    let camera = CameraConfig::default();
    let mut info: CameraInfo = camera.camera_info(FRAME_SIZE.0, FRAME_SIZE.1);
    let context = |now_ns: i64, mono_ns: i64| ReflexContext {
        name: "aeb",
        now_ns,
        now_mono_ns: mono_ns,
        arrival_mono_ns: mono_ns,
        input_age_ns: None,
    };
    info.header.stamp = clock.now();
    aeb.react(Event3::In1(&info), &mut slots, &context(clock.now_ns(), clock.mono_ns()));

    let mut source = ImageFolder::open(frames, Some(FRAME_SIZE), true)?;
    let mut pixels = Vec::new();
    let mut timer = Timer::new(clock.clone(), Duration::from_secs_f64(1.0 / args.fps));
    let warm_until = Instant::now() + Duration::from_secs(1);
    let mut window: Option<(Instant, u64)> = None;
    loop {
        if timer.wait(Duration::from_secs(1)).is_none() {
            continue;
        }
        let (start, missed_before) = match window {
            Some(window) => window,
            None if Instant::now() >= warm_until => *window.insert((Instant::now(), timer.missed_ticks())),
            None => (Instant::now(), 0),
        };
        let measuring = window.is_some();
        if measuring && start.elapsed().as_secs_f64() >= args.seconds {
            into.captured += timer.missed_ticks() - missed_before;
            return Ok(());
        }
        source.fill(&mut pixels)?;
        arbiter.set_supervisor(clock.mono_ns(), SafeStopState { engaged: false });
        let capture = clock.now();
        let image = ImageView {
            header: HeaderView { stamp: capture, frame_id: "camera" },
            height: FRAME_SIZE.1,
            width: FRAME_SIZE.0,
            encoding: "rgb8",
            is_bigendian: 0,
            step: FRAME_SIZE.0 * 3,
            data: &pixels,
        };
        let detections = detect.detect(&image, Duration::ZERO, &mut budget).map_err(|e| anyhow::anyhow!("{e}"))?;
        let detected = clock.now_ns();
        aeb.react(Event3::In0(detections), &mut slots, &context(detected, clock.mono_ns()));
        let requested = clock.now_ns();
        let _ = slots.1.take_filled();
        if let Some(request) = slots.0.take_filled() {
            if arbiter.set_aeb(clock.mono_ns(), request).is_ok() {
                command.header.stamp = request.header.stamp;
            }
        }
        arbiter.decide(clock.mono_ns(), &mut command);
        let commanded = clock.now_ns();
        if measuring {
            into.captured += 1;
            if command.header.stamp == capture {
                into.record([capture.as_nanos(), detected, requested, commanded]);
            }
        }
    }
}

/// One deployment under `reflex launch`; an observer takes each frame's first message on the
/// chain's topics.
fn launched(deployment: Deployment, model: &Path, frames: &Path, args: &ChainArgs, into: &mut Samples) -> Result<()> {
    let port = free_port()?;
    let prefix = format!("chain{port}");
    let file = std::env::temp_dir().join(format!("reflex-chain-{port}.yaml"));
    let group =
        if deployment.grouped() { "groups:\n  - name: perception\n    nodes: [camera, detector, aeb]\n" } else { "" };
    let inline = if deployment.inline() { "\n    inline: true" } else { "" };
    std::fs::write(
        &file,
        format!(
            "zenoh: {{prefix: {prefix}, rendezvous_port: {port}, shared_memory: true}}\n\
             nodes:\n\
             \x20 - name: camera\n    kind: camera\n    params: {{source: folder, path: {frames:?}, width: {}, height: {}, fps: {}}}\n\
             \x20 - name: detector\n    kind: detector\n    params: {{model: {model:?}, budget_ms: 200, threads: {}, hot_wait_ms: {}}}\n\
             \x20 - name: aeb\n    kind: aeb{inline}\n\
             \x20 - name: monitor\n    kind: monitor\n    params:\n      required_nodes: [camera, detector, aeb]\n      \
             watch: [{{topic: /camera/image, deadline_ms: 200}}, {{topic: /perception/detections, deadline_ms: 400}}]\n      \
             startup_grace_s: 10\n\
             \x20 - name: arbiter\n    kind: arbiter\n\
             {group}",
            FRAME_SIZE.0, FRAME_SIZE.1, args.fps, args.threads, args.hot_wait_ms
        ),
    )?;
    let launch = LaunchHandle::start(&std::env::current_exe()?, &file, Duration::from_secs(5), |command| {
        command.env("REFLEX_LOG", "error").stdout(Stdio::null());
    });
    let measured = launch.and_then(|launch| observe(deployment, model, port, prefix, launch, args, into));
    let _ = std::fs::remove_file(&file);
    measured
}

/// Watches a launched chain: the frames captured in a window of `--seconds` and, per frame,
/// when its detections, request and command first left their publishers.
fn observe(
    deployment: Deployment,
    model: &Path,
    port: u16,
    prefix: String,
    mut launch: LaunchHandle,
    args: &ChainArgs,
    into: &mut Samples,
) -> Result<()> {
    let observer = Node::new(
        NodeOptions::new("chain-observer").transport(TransportConfig { prefix, ..TransportConfig::loopback(port) }),
    )?;
    let all = InputOptions::default().capacity(1024);
    let mut infos = observer.subscriber::<CameraInfo>("/camera/camera_info", all)?;
    let mut detections = observer.subscriber::<Detection2DArray>("/perception/detections", all)?;
    let mut requests = observer.subscriber::<BrakeRequest>("/aeb/brake_request", all)?;
    let mut commands = observer.subscriber::<BrakeRequest>("/vehicle/brake_command", all)?;
    // Per capture stamp: when detections, request and command first left their publishers.
    let mut first: BTreeMap<i64, [Option<i64>; 3]> = BTreeMap::new();
    fn note(first: &mut BTreeMap<i64, [Option<i64>; 3]>, stamp: i64, k: usize, sent: Option<i64>) {
        if let (Some(sent), true) = (sent, stamp > 0) {
            let slot = &mut first.entry(stamp).or_default()[k];
            if slot.is_none_or(|t| sent < t) {
                *slot = Some(sent);
            }
        }
    }
    let mut captured = Vec::new();
    let launched_at = Instant::now();
    let mut window: Option<(i64, i64)> = None; // capture stamps measured: [from, to)
    let mut measuring_since: Option<Instant> = None;
    loop {
        observer.wait_for_input(Duration::from_millis(5));
        while let Some(info) = infos.recv() {
            captured.push(info.message.header.stamp.as_nanos());
        }
        while let Some(d) = detections.recv() {
            note(&mut first, d.message.header.stamp.as_nanos(), 0, d.source_timestamp_ns);
        }
        while let Some(r) = requests.recv() {
            note(&mut first, r.message.header.stamp.as_nanos(), 1, r.source_timestamp_ns);
        }
        while let Some(c) = commands.recv() {
            note(&mut first, c.message.header.stamp.as_nanos(), 2, c.source_timestamp_ns);
        }
        if let Some(status) = launch.try_wait() {
            bail!("{} with {}: `reflex launch` ended ({status})", deployment.name(), model.display());
        }
        let now_ns = observer.clock().now_ns();
        match (window, measuring_since) {
            // Up: a command answered a frame; measure from a second after that.
            (None, None) if first.values().any(|t| t[2].is_some()) => {
                measuring_since = Some(Instant::now() + Duration::from_secs(1));
            }
            (None, None) if launched_at.elapsed() > Duration::from_secs(60) => {
                bail!("{} with {}: no brake command answered a frame within 60 s", deployment.name(), model.display())
            }
            (None, Some(at)) if Instant::now() >= at => {
                window = Some((now_ns, now_ns + (args.seconds * 1e9) as i64));
            }
            // The window's last frames get a second to come through.
            (Some((_, to)), _) if now_ns > to + 1_000_000_000 => break,
            _ => {}
        }
    }
    let (from, to) = window.expect("the loop ends only with a window");
    for stamp in captured.into_iter().filter(|s| (from..to).contains(s)) {
        into.captured += 1;
        if let Some([Some(d), Some(r), Some(c)]) = first.get(&stamp) {
            into.record([stamp, *d, *r, *c]);
        }
    }
    Ok(())
}

fn ms(ns: u64) -> String {
    format!("{:.2}", ns as f64 / 1e6)
}

fn table(args: &ChainArgs, deployments: &[Deployment], samples: &[Vec<Samples>]) -> String {
    let mut out = format!(
        "Capture → brake command through camera ({}x{} rendered road scenes at {} fps) → OpenVINO detector \
         (CPU, LATENCY hint) → AEB → arbiter, the monitor beside it; {} rounds of {} s per row, interleaved; \
         machine: {}; load: the chain itself and an observer of its small topics. ms:\n\n",
        FRAME_SIZE.0,
        FRAME_SIZE.1,
        args.fps,
        args.rounds,
        args.seconds,
        crate::cpu()
    );
    out.push_str(
        "| model | deployment | frames | answered | p50 | p99 | p99.9 | p50 / floor | p50 − floor | \
         capture → detections p50 | detections → request p50 | request → command p50 |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for (model, rows) in args.models.iter().zip(samples) {
        let name = model.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
        let floor_p50 = rows[0].end_to_end.quantile_ns(0.5) as f64;
        for (deployment, s) in deployments.iter().zip(rows) {
            let p50 = s.end_to_end.quantile_ns(0.5);
            let answered = if s.captured > 0 { 100.0 * s.answered as f64 / s.captured as f64 } else { 0.0 };
            out.push_str(&format!(
                "| {name} | {} | {} | {answered:.0} % | {} | {} | {} | {:.2}× | {:+.2} | {} | {} | {} |\n",
                deployment.name(),
                s.captured,
                ms(p50),
                ms(s.end_to_end.quantile_ns(0.99)),
                ms(s.end_to_end.quantile_ns(0.999)),
                if floor_p50 > 0.0 { p50 as f64 / floor_p50 } else { f64::NAN },
                (p50 as f64 - floor_p50) / 1e6,
                ms(s.hops[0].quantile_ns(0.5)),
                ms(s.hops[1].quantile_ns(0.5)),
                ms(s.hops[2].quantile_ns(0.5)),
            ));
        }
    }
    out.push_str(
        "\n\"answered\": frames captured in the measured windows that reached a brake command (the \
         detector takes the latest frame, so a detector slower than the camera answers fewer).\n",
    );
    out
}
