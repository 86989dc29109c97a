//! The hardware-in-the-loop bench (`reflex bench hil`, `reflex bench soak`): the vehicle stack
//! of `hil-tests/vehicle.yaml` as real processes against the simulator as the plant in real
//! time, one fault per row of the matrix; what each row checks and how it is timed is in
//! `hil-tests/README.md`.

mod netns;

use anyhow::{bail, Context, Result};
use netns::VehicleNamespace;
use reflex_launch::{find_in_ancestors, free_port, LaunchHandle};
use reflex_msgs::reflex_msgs::{BrakeRequest, MonitorEvent, SafeStop};
use reflex_msgs::sensor_msgs::{CameraInfo, Image};
use reflex_msgs::topics;
use reflex_msgs::vision_msgs::Detection2DArray;
use reflex_runtime::clock::monotonic_ns;
use reflex_runtime::fault::FaultCommand;
use reflex_runtime::rogue;
use reflex_runtime::transport::Security;
use reflex_runtime::System;
use reflex_runtime::{
    Clock, InputOptions, LatencyHistogram, Mode, Node, NodeOptions, OverflowPolicy, Subscriber, TransportConfig,
};
use reflex_sim::actors::{Actor, ActorKind};
use reflex_sim::plant::{Perception, Plant};
use reflex_sim::result::{CellResult, RunConfig};
use reflex_sim::scenario::{Cell, Expect};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The bench's own SCHED_FIFO priority: below every unit of the vehicle stack, above
/// everything else (stress-ng), as a separate computer would be.
const BENCH_PRIORITY: i32 = 40;

/// Where Debian's libfaketime lives (the `libfaketime` package).
const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

#[derive(clap::Args)]
pub struct HilArgs {
    /// Rows to run (see --list); default: every row.
    #[arg(long = "row", value_name = "NAME")]
    rows: Vec<String>,
    /// List the rows and exit.
    #[arg(long)]
    list: bool,
    /// Report folder: report.md, latency histograms (PNG), a folder per row (recording, log).
    #[arg(long, default_value = "hil-report")]
    out: PathBuf,
    /// The vehicle stack's launch file.
    #[arg(long, default_value = "hil-tests/vehicle.yaml")]
    launch: PathBuf,
    /// Detector model config.
    #[arg(long, default_value = "models/simnet/simnet.yaml")]
    model: PathBuf,
    /// Ego speed of the braking scenario (a stationary car ahead, starting at TTC 4 s).
    #[arg(long, default_value_t = 30.0)]
    speed_kmh: f64,
    /// When the fault is injected, s after the scenario starts.
    #[arg(long, default_value_t = 1.0)]
    fault_at_s: f64,
    /// Launch-file arguments of the vehicle stack (KEY=VALUE, repeatable), e.g. the deployment
    /// `--set perception_group=perception --set aeb_inline=true` (detector and AEB as one
    /// process, the AEB on the detector's thread).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
}

/// How the detector's output reaches the AEB in a row: straight, or through the bench, which
/// changes it on the way (a detector that lies).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Lie {
    /// Every fifth frame's first box gets a NaN centre.
    NanBox,
    /// Every other frame calls the car a truck.
    ClassFlicker,
}

/// What a row does to the stack.
#[derive(Debug, Clone)]
enum Fault {
    None,
    /// A signal to a node's process (found and checked from its token); SIGSTOPped processes
    /// get SIGCONT after `resume_after_s`, or at the end of the cell.
    Signal {
        node: &'static str,
        signal: i32,
        resume_after_s: Option<f64>,
    },
    /// A signal to the launcher (the router of every message): SIGSTOP (SIGCONT at the end),
    /// or SIGKILL.
    Launcher(i32),
    /// Message faults sent to nodes over their fault key (as the bench user).
    Message(Vec<(&'static str, FaultCommand)>),
    /// The plant stops publishing frames.
    StreamLost,
    /// `stress-ng` on every core.
    CpuStress,
    /// The vehicle in its own network namespace; nftables drops everything on the link.
    LinkCut,
    /// The vehicle's wall clock (and the bench camera's) steps by this many ms.
    ClockStep(i64),
    /// Garbage at ≥ 50,000 messages/s for 2 s on a topic, from the bench's credentials.
    Flood(&'static str),
    /// The bench publishes "no braking" AEB requests (it may not: the AEB owns the topic).
    SpoofRequest,
    /// The detector is killed, and the bench publishes RECOVERED events and declares a
    /// liveliness token in its name (it may do neither).
    SpoofRecovery,
    /// A credentialed user that is no bench user freezes the arbiter's inputs over the fault key.
    ForeignFreeze,
    /// The camera's CameraInfo from now on carries NaN in its mounting.
    NanCameraInfo,
    /// The vehicle state says 0 m/s once, then stops.
    StaleVehicleState,
    /// The detector's output reaches the AEB through the bench, which lies (from the start; the
    /// lie itself begins at the fault).
    Relay(Lie),
    /// One 200 MB message on the image topic.
    HugeImage,
}

/// Who must notice a fault for its row.
#[derive(Debug, Clone, Copy, PartialEq)]
enum By {
    /// The monitor's engaged SafeStop.
    Monitor,
    /// The arbiter, finding its supervisor missing (commands "supervisor missing").
    Arbiter,
    /// The actuator gateway braking by itself (no command can reach it, or none can be trusted).
    Gateway,
}

/// What the row must show.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    /// Noticed by `By` within this many ms of the fault, full braking at the brake unit, and
    /// held until the vehicle stands still.
    SafeStop(f64, By),
    /// The fault is tolerable: no safe stop, the gateway follows the arbiter, the AEB brakes
    /// for the car as usual.
    Nominal,
    /// Either is acceptable (the fault's effect depends on where it lands); no collision.
    Either,
}

struct Row {
    name: &'static str,
    fault: Fault,
    expect: Outcome,
}

fn message(input: Option<&str>, edit: impl FnOnce(&mut FaultCommand)) -> FaultCommand {
    let mut command = FaultCommand { input: input.map(str::to_string), ..Default::default() };
    edit(&mut command);
    command
}

fn rows() -> Vec<Row> {
    use By::*;
    use Outcome::*;
    let corrupt = |node| (node, message(None, |c| c.corrupt_pct = Some(20.0)));
    let signal = |node, signal, resume_after_s| Fault::Signal { node, signal, resume_after_s };
    vec![
        Row { name: "baseline", fault: Fault::None, expect: Nominal },
        Row {
            name: "detector killed",
            fault: signal("detector", libc::SIGKILL, None),
            expect: SafeStop(1000.0, Monitor),
        },
        Row {
            name: "detector stalled",
            fault: Fault::Message(vec![("detector", message(None, |c| c.stall_ms = Some(1500.0)))]),
            expect: SafeStop(600.0, Monitor), // image deadline 100 ms, detections deadline 200 ms
        },
        Row {
            name: "camera frozen",
            fault: Fault::Message(vec![("detector", message(Some(topics::CAMERA_IMAGE), |c| c.freeze = Some(true)))]),
            expect: SafeStop(800.0, Monitor), // the command's capture stamp stops: budget 300 ms
        },
        Row { name: "camera stream lost", fault: Fault::StreamLost, expect: SafeStop(400.0, Monitor) }, // image deadline 100 ms
        Row {
            name: "30 % drops on detections",
            fault: Fault::Message(vec![("aeb", message(Some(topics::DETECTIONS), |c| c.drop_pct = Some(30.0)))]),
            expect: Nominal,
        },
        Row {
            name: "corrupt messages on every input",
            fault: Fault::Message(vec![corrupt("detector"), corrupt("aeb"), corrupt("monitor"), corrupt("arbiter")]),
            expect: Either,
        },
        Row { name: "CPU saturated (stress-ng)", fault: Fault::CpuStress, expect: Nominal },
        // No command reaches the brake unit after the cut: its gateway brakes.
        Row { name: "vehicle–bench link cut", fault: Fault::LinkCut, expect: SafeStop(400.0, Gateway) },
        Row {
            name: "arbiter SIGSTOP",
            fault: signal("arbiter", libc::SIGSTOP, None),
            expect: SafeStop(300.0, Gateway),
        },
        Row {
            name: "arbiter SIGKILL",
            fault: signal("arbiter", libc::SIGKILL, None),
            expect: SafeStop(300.0, Gateway),
        },
        Row {
            name: "monitor SIGSTOP, SIGCONT 1 s later",
            fault: signal("monitor", libc::SIGSTOP, Some(1.0)),
            expect: SafeStop(800.0, Arbiter), // supervisor_max_age_s 0.5
        },
        // The launcher restarts it; the new monitor starts engaged (the arbiter may not even
        // notice the gap).
        Row {
            name: "monitor restart",
            fault: signal("monitor", libc::SIGKILL, None),
            expect: SafeStop(800.0, Monitor),
        },
        Row { name: "launcher SIGSTOP", fault: Fault::Launcher(libc::SIGSTOP), expect: SafeStop(300.0, Gateway) },
        Row { name: "launcher SIGKILL", fault: Fault::Launcher(libc::SIGKILL), expect: SafeStop(300.0, Gateway) },
        Row { name: "wall clock −60 s", fault: Fault::ClockStep(-60_000), expect: Nominal },
        Row { name: "wall clock −1 s", fault: Fault::ClockStep(-1_000), expect: Nominal },
        Row { name: "wall clock +1 s", fault: Fault::ClockStep(1_000), expect: Nominal },
        Row { name: "garbage flood on detections", fault: Fault::Flood(topics::DETECTIONS), expect: Nominal },
        Row { name: "garbage flood on the driver command", fault: Fault::Flood(DRIVER_COMMAND), expect: Nominal },
        Row { name: "spoofed AEB request", fault: Fault::SpoofRequest, expect: Nominal },
        Row {
            name: "spoofed RECOVERED event and token",
            fault: Fault::SpoofRecovery,
            expect: SafeStop(1000.0, Monitor),
        },
        Row { name: "fault-key freeze from a non-bench user", fault: Fault::ForeignFreeze, expect: Nominal },
        Row { name: "NaN CameraInfo", fault: Fault::NanCameraInfo, expect: Nominal },
        Row { name: "NaN box", fault: Fault::Relay(Lie::NanBox), expect: Nominal },
        Row { name: "class flicker", fault: Fault::Relay(Lie::ClassFlicker), expect: Nominal },
        Row { name: "stale vehicle state", fault: Fault::StaleVehicleState, expect: Nominal },
        Row { name: "200 MB message on the image topic", fault: Fault::HugeImage, expect: Nominal },
    ]
}

const DRIVER_COMMAND: &str = "/vehicle/driver_command";

/// One row's figures.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RowResult {
    pub name: String,
    pub expected: String,
    pub safe_stop: bool,
    /// Fault → the monitor's first engaged SafeStop, ms.
    pub monitor_ms: Option<f64>,
    /// Fault → the arbiter's first "supervisor missing" command, ms.
    pub arbiter_ms: Option<f64>,
    /// Fault (or the cell's start, without one) → the actuator gateway braking by itself, ms,
    /// and why.
    pub gateway_ms: Option<f64>,
    pub gateway_reason: Option<String>,
    /// Fault → noticed by whom the row names, ms.
    pub detection_ms: Option<f64>,
    /// Fault → the brake unit applying full braking, ms.
    pub reaction_ms: Option<f64>,
    /// A safe stop released while the vehicle still moved.
    pub released_while_moving: bool,
    pub impact: bool,
    pub impact_speed_kmh: f64,
    pub min_gap_m: f64,
    pub panics: Vec<String>,
    pub recording: String,
    pub deadline_misses: u64,
    /// Which deadlines, when (s into the cell).
    pub missed: Vec<String>,
    pub decode_errors: u64,
    /// What the row's fault did, in figures (messages flooded per second, ...).
    pub notes: Vec<String>,
    pub passed: bool,
    pub problems: Vec<String>,
    pub skipped: Option<String>,
    /// Why the row ran twice: its first run ended in a safe stop on a tolerable fault (see
    /// [`FALSE_STOP`]); the figures are the second run's.
    pub first_run: Option<String>,
    #[serde(skip)]
    end_to_end: Vec<f64>,
    #[serde(skip)]
    hops: Vec<(&'static str, Vec<f64>)>,
}

impl RowResult {
    fn new(row: &Row) -> Self {
        Self {
            name: row.name.into(),
            expected: match row.expect {
                Outcome::SafeStop(budget, by) => format!("safe stop ≤ {budget} ms ({})", by_name(by)),
                Outcome::Nominal => "nominal".into(),
                Outcome::Either => "no collision".into(),
            },
            safe_stop: false,
            monitor_ms: None,
            arbiter_ms: None,
            gateway_ms: None,
            gateway_reason: None,
            detection_ms: None,
            reaction_ms: None,
            released_while_moving: false,
            impact: false,
            impact_speed_kmh: 0.0,
            min_gap_m: f64::NAN,
            panics: Vec::new(),
            recording: String::new(),
            deadline_misses: 0,
            missed: Vec::new(),
            decode_errors: 0,
            notes: Vec::new(),
            passed: false,
            problems: Vec::new(),
            skipped: None,
            first_run: None,
            end_to_end: Vec::new(),
            hops: Vec::new(),
        }
    }
}

fn by_name(by: By) -> &'static str {
    match by {
        By::Monitor => "monitor",
        By::Arbiter => "arbiter",
        By::Gateway => "gateway",
    }
}

pub fn run(args: HilArgs) -> Result<()> {
    let all = rows();
    if args.list {
        for row in &all {
            println!("{:40} expects {:?}", row.name, row.expect);
        }
        return Ok(());
    }
    for wanted in &args.rows {
        if !all.iter().any(|r| r.name == wanted) {
            let names: Vec<&str> = all.iter().map(|r| r.name).collect();
            bail!("no row {wanted:?}; rows: {}", names.join(", "));
        }
    }
    let launch = find_in_ancestors(&args.launch);
    let model = find_in_ancestors(&args.model);
    if !launch.is_file() {
        bail!("{}: no such launch file", args.launch.display());
    }
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    let bench_priority = bench_scheduling();
    let mut results = Vec::new();
    let selected: Vec<&Row> =
        all.iter().filter(|r| args.rows.is_empty() || args.rows.iter().any(|w| w == r.name)).collect();
    for (index, row) in selected.iter().enumerate() {
        eprintln!("[{}/{}] {}: running", index + 1, selected.len(), row.name);
        let mut result = run_row(row, &args, &launch, &model)?;
        if result.problems.len() == 1 && result.problems[0] == FALSE_STOP {
            // The safe direction: the stack stopped where it needed not. On a shared 2-core
            // machine one stall of the whole box (every process's input late at once) does
            // that; run the row once more to tell such a stall from a systematic false stop.
            // A collision, a missing or late safe stop is never run again.
            let why = format!("{FALSE_STOP} (missed: {})", result.missed.join(", "));
            eprintln!("[{}/{}] {}: {why}; running it once more", index + 1, selected.len(), row.name);
            // The first run's log and recording stay beside the second's.
            let dir = args.out.join(slug(row.name));
            let kept = args.out.join(format!("{}-first-run", slug(row.name)));
            let _ = std::fs::remove_dir_all(&kept);
            std::fs::rename(&dir, &kept).with_context(|| format!("cannot keep {}", dir.display()))?;
            result = run_row(row, &args, &launch, &model)?;
            result.first_run = Some(why);
        }
        eprintln!(
            "[{}/{}] {}: {} (detection {}, reaction {}, impact {:.1} km/h){}",
            index + 1,
            selected.len(),
            result.name,
            if result.skipped.is_some() {
                "skipped"
            } else if result.passed {
                "pass"
            } else {
                "FAIL"
            },
            ms(result.detection_ms),
            ms(result.reaction_ms),
            result.impact_speed_kmh,
            if result.problems.is_empty() { String::new() } else { format!(": {}", result.problems.join("; ")) }
        );
        results.push(result);
    }
    let report = report(&results, &args, bench_priority)?;
    println!("{report}");
    std::fs::write(args.out.join("report.md"), &report)?;
    std::fs::write(args.out.join("results.json"), serde_json::to_string_pretty(&results)? + "\n")?;
    eprintln!("report: {}", args.out.join("report.md").display());
    if results.iter().any(|r| !r.passed && r.skipped.is_none()) {
        bail!("fault matrix: some rows failed (see the report)");
    }
    Ok(())
}

/// The bench as separate hardware: its threads (set before any is made, so all inherit it) at
/// a real-time priority below the vehicle's; processes it starts begin with normal scheduling
/// ([`normal_scheduling`]). Returns the priority, or `None` where the OS refuses.
fn bench_scheduling() -> Option<i32> {
    let param = libc::sched_param { sched_priority: BENCH_PRIORITY };
    // SAFETY: plain syscall on ourselves.
    let ok = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) } == 0;
    if !ok {
        eprintln!(
            "bench: cannot run at SCHED_FIFO {BENCH_PRIORITY} ({}); the bench shares the CPU with the vehicle",
            std::io::Error::last_os_error()
        );
    }
    ok.then_some(BENCH_PRIORITY)
}

/// A process the bench starts (the launcher, stress-ng) begins with normal scheduling, not the
/// bench's.
fn normal_scheduling(command: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: sched_setscheduler is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            libc::sched_setscheduler(0, libc::SCHED_OTHER, &libc::sched_param { sched_priority: 0 });
            Ok(())
        })
    }
}

fn ms(value: Option<f64>) -> String {
    value.map_or("–".into(), |v| format!("{v:.0} ms"))
}

fn slug(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect()
}

/// A thread of the bench that runs until told to stop.
struct Background {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<Vec<String>>>,
}

impl Background {
    fn start(name: &str, work: impl FnOnce(&AtomicBool) -> Vec<String> + Send + 'static) -> Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new().name(name.into()).spawn(move || work(&flag))?;
        Ok(Self { stop, handle: Some(handle) })
    }

    /// Stops it; returns its notes.
    fn finish(mut self) -> Vec<String> {
        self.stop.store(true, Ordering::Release);
        self.handle.take().and_then(|h| h.join().ok()).unwrap_or_default()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

/// Where the stack runs and what is preloaded into it, for one row.
#[derive(Default)]
struct StackOptions<'a> {
    namespace: Option<&'a VehicleNamespace>,
    /// libfaketime's control file: the vehicle's wall clock offset.
    faketime: Option<PathBuf>,
    /// The AEB reads the detections the bench relays.
    relay: bool,
    /// More launch-file arguments (`--set`).
    sets: &'a [String],
}

/// The one problem for which a row runs a second time.
const FALSE_STOP: &str = "safe stop on a tolerable fault";

fn run_row(row: &Row, args: &HilArgs, launch: &Path, model: &Path) -> Result<RowResult> {
    let dir = std::path::absolute(args.out.join(slug(row.name)))?;
    std::fs::create_dir_all(&dir)?;
    let mut result = RowResult::new(row);
    if matches!(row.fault, Fault::CpuStress) && Command::new("stress-ng").arg("--version").output().is_err() {
        result.skipped = Some("stress-ng is not installed (apt-get install stress-ng)".into());
        return Ok(result);
    }
    if matches!(row.fault, Fault::ClockStep(_)) && !Path::new(LIBFAKETIME).is_file() {
        result.skipped = Some(format!("{LIBFAKETIME} is missing (apt-get install libfaketime)"));
        return Ok(result);
    }
    let mut namespace = None;
    if matches!(row.fault, Fault::LinkCut) {
        match VehicleNamespace::create() {
            Ok(created) => namespace = Some(created),
            Err(why) => {
                result.skipped = Some(format!("no network namespace: {why:#}"));
                return Ok(result);
            }
        }
    }
    let faketime = matches!(row.fault, Fault::ClockStep(_)).then(|| dir.join("faketime"));
    if let Some(file) = &faketime {
        std::fs::write(file, "+0\n")?;
    }
    let options = StackOptions {
        namespace: namespace.as_ref(),
        faketime: faketime.clone(),
        relay: matches!(row.fault, Fault::Relay(_)),
        sets: &args.sets,
    };
    let stack = Stack::start(launch, model, &dir, "hil", &options)?;
    // The bench's camera clock: stepped together with the vehicle's in the clock-step rows.
    let offset = Arc::new(AtomicI64::new(0));
    let clock = Clock::wall_with_offset(offset.clone());
    let node = Node::new(NodeOptions::new("bench-plant").transport(stack.transport.clone()).clock(clock.clone()))?;
    let observer =
        Node::new(NodeOptions::new("bench-observer").transport(stack.transport.clone()).clock(clock.clone()))?;
    let big = InputOptions::default().capacity(8192).policy(OverflowPolicy::DropNewest);
    let mut safe_stops = observer.subscriber::<SafeStop>(topics::SAFE_STOP, big)?;
    let mut commands = observer.subscriber::<BrakeRequest>(topics::ACTUATOR_COMMAND, big)?;
    let mut events = observer.subscriber::<MonitorEvent>(topics::MONITOR_EVENTS, big)?;
    // The relay runs from the start: the AEB's detections come through it.
    let lie_now = Arc::new(AtomicBool::new(false));
    let relay = match row.fault {
        Fault::Relay(lie) => Some(relay(&stack.transport, lie, lie_now.clone())?),
        _ => None,
    };
    let mut plant = Plant::new(node, Perception::Rendered)?;
    let config = RunConfig::default();
    plant.settle(&config, Duration::from_secs(1), Duration::from_secs(90))?;
    // Only what follows the settling counts.
    drain(&mut safe_stops);
    drain(&mut commands);
    drain(&mut events);

    let cell = ccrs(args.speed_kmh);
    let start_ns = clock.now_ns();
    let mut injected_ns: Option<i64> = None;
    let mut stress: Option<std::process::Child> = None;
    let mut failure: Option<String> = None;
    let mut background: Vec<Background> = Vec::new();
    let mut stopped: Vec<libc::pid_t> = Vec::new();
    let mut resumed = false;
    // Reactions are timed on the monotonic clock from the moment just before the injection
    // (an injection can take a while: a liveliness query, a new session, a process to start,
    // and the plant catches up on its steps afterwards, so plant time would hide that).
    let mut injected_mono: Option<i64> = None;
    let mut gateway: Option<(i64, String)> = None;
    let mut full_at: Option<i64> = None;
    let mut standstill_ns: Option<i64> = None;
    let system = plant.node().system();
    let fault = row.fault.clone();
    let launcher_pid = stack.launch.id() as libc::pid_t;
    let cell_result = plant.run_cell_with(&cell, &config, |t, controls| {
        if let Some((_, why)) = controls.gateway_fallback {
            gateway.get_or_insert((monotonic_ns(), why.describe().to_string()));
        }
        if t >= args.fault_at_s && full_at.is_none() && controls.applied_level == BrakeRequest::LEVEL_FULL {
            full_at = Some(monotonic_ns());
        }
        if t >= args.fault_at_s && standstill_ns.is_none() && controls.speed_mps < 0.1 {
            // On the bench's clock, stepped like the stack's: compared with its stamps.
            standstill_ns = Some(clock.now_ns());
        }
        if let (Fault::Signal { resume_after_s: Some(after), .. }, Some(_)) = (&fault, injected_ns) {
            if !resumed && t >= args.fault_at_s + after {
                resumed = true;
                for pid in stopped.drain(..) {
                    // SAFETY: SIGCONT to a process we stopped.
                    unsafe { libc::kill(pid, libc::SIGCONT) };
                }
            }
        }
        if t < args.fault_at_s || injected_ns.is_some() {
            return;
        }
        let before = clock.now_ns();
        injected_mono = Some(monotonic_ns());
        let outcome = inject(
            &fault,
            &mut Injection {
                system: &system,
                transport: &stack.transport,
                credentials: &stack.credentials,
                namespace: namespace.as_mut(),
                faketime: faketime.as_deref(),
                offset: &offset,
                launcher_pid,
                lie_now: &lie_now,
            },
            controls,
        );
        // The stack's stamps are compared with this; after a clock step, on the stepped clock.
        injected_ns = Some(if matches!(fault, Fault::ClockStep(_)) { clock.now_ns() } else { before });
        match outcome {
            Ok(Injected { stress: s, background: b, stopped: p }) => {
                stress = s;
                background.extend(b);
                stopped.extend(p);
            }
            Err(e) => failure = Some(format!("{e:#}")),
        }
    })?;
    // What happens after the cell (the plant stops sending frames) is not the row's doing.
    let end_ns = clock.now_ns();
    for pid in stopped.drain(..) {
        // SAFETY: SIGCONT to a process we stopped.
        unsafe { libc::kill(pid, libc::SIGCONT) };
    }
    for job in background {
        result.notes.extend(job.finish());
    }
    if let Some(relay) = relay {
        result.notes.extend(relay.finish());
    }
    if let Some(Err(e)) = namespace.as_mut().map(VehicleNamespace::restore) {
        result.problems.push(format!("cannot restore the link: {e:#}"));
    }
    if let Some(mut child) = stress.take() {
        let _ = child.kill();
        let _ = child.wait();
    }
    if let Some(failure) = failure {
        result.problems.push(failure);
    }
    let since_injection = |at: i64| injected_mono.map(|from| (at - from) as f64 / 1e6);
    if let Some((at, why)) = gateway {
        result.gateway_ms = since_injection(at);
        result.gateway_reason = Some(why);
    }
    result.reaction_ms = full_at.and_then(since_injection);
    // Let the last messages land, then look at what the stack said.
    std::thread::sleep(Duration::from_millis(300));
    let injected = injected_ns.unwrap_or(i64::MAX);
    let during = |at: i64| at >= injected && at <= end_ns;
    let mut first_engaged: Option<i64> = None;
    for _ in 0..1_000_000 {
        let Some(s) = safe_stops.recv() else { break };
        let at = s.source_timestamp_ns.unwrap_or(0);
        if !during(at) {
            continue;
        }
        if s.message.engaged {
            first_engaged.get_or_insert(at);
        } else if first_engaged.is_some() && standstill_ns.is_none_or(|still| at < still) {
            result.released_while_moving = true;
        }
    }
    result.monitor_ms = first_engaged.map(|at| (at - injected) as f64 / 1e6);
    for _ in 0..1_000_000 {
        let Some(c) = commands.recv() else { break };
        let at = c.source_timestamp_ns.unwrap_or(0);
        if c.message.reason == "supervisor missing" && during(at) && result.arbiter_ms.is_none() {
            result.arbiter_ms = Some((at - injected) as f64 / 1e6);
        }
    }
    for _ in 0..1_000_000 {
        let Some(e) = events.recv() else { break };
        // Events carry the reporting node's stamp.
        let at = e.message.header.stamp.as_nanos();
        if at < start_ns || at > end_ns {
            continue;
        }
        if e.message.kind == MonitorEvent::KIND_DEADLINE_MISSED {
            result.missed.push(format!(
                "{} {} at {:.2} s",
                e.message.node,
                e.message.topic,
                (at - start_ns) as f64 / 1e9
            ));
        }
        match e.message.kind {
            MonitorEvent::KIND_DEADLINE_MISSED => result.deadline_misses += 1,
            // A decode-error event carries the count so far (events are rate limited).
            MonitorEvent::KIND_DECODE_ERROR => {
                result.decode_errors = result.decode_errors.max(e.message.value_ms as u64)
            }
            _ => {}
        }
    }
    drop(plant);
    drop(observer);
    let recording = stack.recording.clone();
    if matches!(row.fault, Fault::Launcher(libc::SIGKILL)) {
        // The launcher is gone; its nodes got SIGTERM (the recorder closed its file).
        stack.wait_for_nodes_to_end(Duration::from_secs(5));
    }
    drop(stack); // the recorder closes its file
    drop(namespace);
    assess(&mut result, &cell_result, row, &dir, &recording, (injected, end_ns));
    Ok(result)
}

/// What `inject` may use.
struct Injection<'a> {
    system: &'a System,
    transport: &'a TransportConfig,
    credentials: &'a Path,
    namespace: Option<&'a mut VehicleNamespace>,
    faketime: Option<&'a Path>,
    offset: &'a AtomicI64,
    launcher_pid: libc::pid_t,
    lie_now: &'a AtomicBool,
}

/// What an injection left running.
#[derive(Default)]
struct Injected {
    stress: Option<std::process::Child>,
    background: Vec<Background>,
    stopped: Vec<libc::pid_t>,
}

fn inject(fault: &Fault, at: &mut Injection, controls: &mut reflex_sim::plant::Controls) -> Result<Injected> {
    let mut injected = Injected::default();
    match fault {
        Fault::None => {}
        Fault::LinkCut => {} // below, once the borrow of `at` allows
        Fault::StreamLost => controls.mute_camera = true,
        Fault::Signal { node, signal, .. } => {
            let pid = signal_node(at.system, node, *signal)?;
            if *signal == libc::SIGSTOP {
                injected.stopped.push(pid);
            }
        }
        Fault::Launcher(signal) => {
            // SAFETY: a signal to the launcher we started.
            if unsafe { libc::kill(at.launcher_pid, *signal) } != 0 {
                bail!("signal {signal} to the launcher: {}", std::io::Error::last_os_error());
            }
            if *signal == libc::SIGSTOP {
                injected.stopped.push(at.launcher_pid);
            }
        }
        Fault::Message(commands) => {
            for (name, command) in commands {
                at.system.send_fault(name, command)?;
            }
        }
        Fault::CpuStress => {
            injected.stress = Some(
                normal_scheduling(&mut Command::new("stress-ng"))
                    .args(["--cpu", "0", "--timeout", "60s", "--quiet"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .context("cannot start stress-ng")?,
            );
        }
        Fault::ClockStep(step_ms) => {
            let file = at.faketime.context("no faketime file")?;
            // libfaketime reads the offset at every call (FAKETIME_NO_CACHE): the vehicle's
            // processes see the step at once, as the bench's camera clock does.
            let seconds = *step_ms as f64 / 1e3;
            std::fs::write(file, format!("{seconds:+}\n"))?;
            at.offset.store(step_ms * 1_000_000, Ordering::Relaxed);
        }
        Fault::Flood(topic) => {
            let (transport, topic) = (at.transport.clone(), topic.to_string());
            injected.background.push(Background::start("bench-flood", move |stop| {
                outside_process(&transport, &["flood", "--topic", &topic], stop)
            })?);
        }
        Fault::SpoofRequest => {
            let transport = at.transport.clone();
            injected.background.push(Background::start("bench-spoof", move |stop| spoof_requests(&transport, stop))?);
        }
        Fault::SpoofRecovery => {
            signal_node(at.system, "detector", libc::SIGKILL)?;
            let transport = at.transport.clone();
            injected.background.push(Background::start("bench-spoof", move |stop| spoof_recovery(&transport, stop))?);
        }
        Fault::ForeignFreeze => {
            // On a thread of its own: opening an authenticated session takes tens of ms, and
            // the plant's loop (the camera) must not stall for it.
            let mut transport = at.transport.clone();
            transport.security = Some(Security::external("visitor", at.credentials.join("visitor.password")));
            let body = serde_json::to_string(&message(None, |c| c.freeze = Some(true)))?;
            injected.background.push(Background::start("bench-visitor", move |_| {
                let sent = rogue::raw_fault_command(&transport, "arbiter", body);
                vec![match sent {
                    Ok(()) => {
                        "visitor: freeze command sent to the arbiter's fault key (the router decides)".to_string()
                    }
                    Err(e) => format!("visitor: FAILED to send the freeze command: {e}"),
                }]
            })?);
        }
        Fault::NanCameraInfo => {
            controls.camera_info_edit = Some(|info: &mut CameraInfo| {
                for index in [4, 5, 7, 8] {
                    info.r[index] = f64::NAN;
                }
                info.k[2] = f64::NAN;
            });
        }
        Fault::StaleVehicleState => controls.freeze_vehicle_state = Some(0.0),
        Fault::Relay(_) => at.lie_now.store(true, Ordering::Release),
        Fault::HugeImage => {
            let transport = at.transport.clone();
            injected
                .background
                .push(Background::start("bench-huge", move |stop| outside_process(&transport, &["huge"], stop))?);
        }
    }
    if let (Fault::LinkCut, Some(namespace)) = (fault, at.namespace.as_deref_mut()) {
        namespace.cut()?;
    }
    Ok(injected)
}

/// What an outside process does to the bus (`reflex bench hil-traffic`, hidden): the heavy
/// traffic of the flood and 200 MB rows comes from a process of its own at normal scheduling,
/// as it would from another program, so it competes with the vehicle, not with the bench's
/// brake unit.
#[derive(clap::Args)]
pub struct TrafficArgs {
    /// `flood` (garbage at 70,000 messages/s for 2 s) or `huge` (one 200 MB image).
    what: String,
    /// The topic of a flood.
    #[arg(long)]
    topic: Option<String>,
}

/// `reflex bench hil-traffic`: the transport (the bench's credentials) comes as JSON in
/// `REFLEX_BENCH_TRANSPORT`; what happened is printed as `note: ...` lines.
pub fn traffic(args: TrafficArgs) -> Result<()> {
    let transport: TransportConfig =
        serde_json::from_str(&std::env::var("REFLEX_BENCH_TRANSPORT").context("REFLEX_BENCH_TRANSPORT is not set")?)
            .context("REFLEX_BENCH_TRANSPORT is not a transport")?;
    let notes = match (args.what.as_str(), &args.topic) {
        ("flood", Some(topic)) => flood(&transport, topic, &AtomicBool::new(false)),
        ("huge", _) => huge_image(&transport),
        (what, _) => bail!("no traffic {what:?} (flood --topic T, or huge)"),
    };
    for note in notes {
        println!("note: {note}");
    }
    Ok(())
}

/// Runs `reflex bench hil-traffic ARGS` at normal scheduling until it ends (or `stop`); its notes.
fn outside_process(transport: &TransportConfig, args: &[&str], stop: &AtomicBool) -> Vec<String> {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => return vec![format!("cannot find the reflex executable: {e}")],
    };
    let json = serde_json::to_string(transport).expect("transports serialise");
    let child = normal_scheduling(&mut Command::new(exe))
        .args(["bench", "hil-traffic"])
        .args(args)
        .env("REFLEX_BENCH_TRANSPORT", json)
        .env("REFLEX_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => return vec![format!("cannot start the outside process: {e}")],
    };
    let start = Instant::now();
    while matches!(child.try_wait(), Ok(None)) {
        if stop.load(Ordering::Acquire) || start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = std::io::Read::read_to_string(&mut stdout, &mut out);
    }
    out.lines().filter_map(|l| l.strip_prefix("note: ")).map(|n| format!("{n} (a process of its own)")).collect()
}

/// The flood's rate, messages/s (the figure is at least 50,000).
const FLOOD_RATE: f64 = 70_000.0;

/// Garbage (bytes that are not CDR) at [`FLOOD_RATE`] for 2 s.
fn flood(transport: &TransportConfig, topic: &str, stop: &AtomicBool) -> Vec<String> {
    let node = match Node::new(NodeOptions::new("bench-flood").transport(transport.clone())) {
        Ok(node) => node,
        Err(e) => return vec![format!("flood: cannot open a session: {e}")],
    };
    let start = Instant::now();
    let sent = match rogue::garbage_flood(&node, &node.key(topic), FLOOD_RATE, Duration::from_secs(2), stop) {
        Ok(sent) => sent,
        Err(e) => return vec![format!("flood: {e}")],
    };
    let rate = sent as f64 / start.elapsed().as_secs_f64();
    vec![format!(
        "flood on {topic}: {sent} garbage messages in {:.1} s ({rate:.0} msg/s)",
        start.elapsed().as_secs_f64()
    )]
}

/// "No braking" requests on the AEB's topic at 200 Hz (the router must drop them).
fn spoof_requests(transport: &TransportConfig, stop: &AtomicBool) -> Vec<String> {
    let Ok(node) = Node::new(NodeOptions::new("bench-spoof").transport(transport.clone())) else {
        return vec!["spoof: cannot open a session".into()];
    };
    let Ok(mut out) = node.publisher::<BrakeRequest>(topics::AEB_REQUEST) else { return vec![] };
    let mut sent = 0;
    while !stop.load(Ordering::Acquire) {
        let request = BrakeRequest {
            header: reflex_msgs::std_msgs::Header { stamp: node.clock().now(), frame_id: "camera".into() },
            level: BrakeRequest::LEVEL_NONE,
            source: "aeb".into(),
            ..Default::default()
        };
        if out.publish(&request).is_ok() {
            sent += 1;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    vec![format!("spoof: {sent} 'no braking' AEB requests sent")]
}

/// RECOVERED events for the detector's inputs and outputs, and a liveliness token in the
/// detector's name, every 20 ms.
fn spoof_recovery(transport: &TransportConfig, stop: &AtomicBool) -> Vec<String> {
    let Ok(node) = Node::new(NodeOptions::new("bench-spoof").transport(transport.clone())) else {
        return vec!["spoof: cannot open a session".into()];
    };
    let token = rogue::ForgedToken::declare(&node, "detector", &reflex_runtime::hostname(), 4242);
    let Ok(mut events) = node.publisher::<MonitorEvent>(topics::MONITOR_EVENTS) else { return vec![] };
    let mut sent = 0;
    while !stop.load(Ordering::Acquire) {
        for topic in [topics::CAMERA_IMAGE, topics::DETECTIONS, ""] {
            let event = MonitorEvent {
                header: reflex_msgs::std_msgs::Header { stamp: node.clock().now(), frame_id: String::new() },
                kind: MonitorEvent::KIND_RECOVERED,
                node: "detector".into(),
                topic: topic.into(),
                detail: "messages arrive again".into(),
                ..Default::default()
            };
            sent += u64::from(events.publish(&event).is_ok());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    vec![format!(
        "spoof: {sent} RECOVERED events, liveliness token {}",
        if token.is_ok() { "declared (the router decides)" } else { "refused" }
    )]
}

/// One 200 MB image on the image topic (the router's max_message_size must drop it).
fn huge_image(transport: &TransportConfig) -> Vec<String> {
    let Ok(node) = Node::new(NodeOptions::new("bench-huge").transport(transport.clone())) else {
        return vec!["huge: cannot open a session".into()];
    };
    let Ok(mut out) = node.publisher::<Image>(topics::CAMERA_IMAGE) else { return vec![] };
    let (width, height) = (10_000u32, 6_667u32);
    let image = Image {
        header: reflex_msgs::std_msgs::Header { stamp: node.clock().now(), frame_id: "camera".into() },
        width,
        height,
        encoding: "rgb8".into(),
        step: width * 3,
        data: reflex_msgs::Bytes(vec![0; (width * 3 * height) as usize]),
        ..Default::default()
    };
    let start = Instant::now();
    let sent = out.publish(&image);
    vec![format!(
        "huge: one {:.0} MB image published ({}) in {:.2} s",
        image.data.len() as f64 / 1e6,
        if sent.is_ok() { "accepted by the bench's session" } else { "refused by the bench's session" },
        start.elapsed().as_secs_f64()
    )]
}

/// The detector's output, relayed to the AEB with `lie` applied once `lie_now` is set.
fn relay(transport: &TransportConfig, lie: Lie, lie_now: Arc<AtomicBool>) -> Result<Background> {
    let transport = transport.clone();
    let ready = Arc::new(AtomicBool::new(false));
    let up = ready.clone();
    let background = Background::start("bench-relay", move |stop| {
        let Ok(node) = Node::new(NodeOptions::new("bench-relay").transport(transport)) else {
            return vec!["relay: cannot open a session".into()];
        };
        let options = InputOptions::default().capacity(4).policy(OverflowPolicy::DropOldest);
        let (Ok(mut input), Ok(mut output)) = (
            node.subscriber::<Detection2DArray>(topics::DETECTIONS, options),
            node.publisher::<Detection2DArray>(RELAYED),
        ) else {
            return vec!["relay: cannot subscribe or publish".into()];
        };
        up.store(true, Ordering::Release);
        let (mut frames, mut lies) = (0u64, 0u64);
        let mut copy = Detection2DArray::default();
        while !stop.load(Ordering::Acquire) {
            node.wait_for_input(Duration::from_millis(5));
            while let Some(received) = input.recv() {
                copy.clone_from(received.message);
                frames += 1;
                if lie_now.load(Ordering::Acquire) && !copy.detections.is_empty() {
                    match lie {
                        Lie::NanBox if frames % 5 == 0 => {
                            copy.detections[0].bbox.center.position.x = f64::NAN;
                            lies += 1;
                        }
                        Lie::ClassFlicker if frames % 2 == 0 => {
                            for detection in &mut copy.detections {
                                for result in &mut detection.results {
                                    if result.hypothesis.class_id == "car" {
                                        result.hypothesis.class_id = "truck".into();
                                    }
                                }
                            }
                            lies += 1;
                        }
                        _ => {}
                    }
                }
                let _ = output.publish(&copy);
            }
        }
        vec![format!("relay: {frames} detection frames relayed, {lies} of them changed ({lie:?})")]
    })?;
    let start = Instant::now();
    while !ready.load(Ordering::Acquire) && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(background)
}

/// The topic the AEB reads in the relay rows.
const RELAYED: &str = "/bench/detections";

/// The vehicle stack of the bench's launch file under `reflex launch`, on a private port and
/// prefix, recording into `dir/recording.mcap` and logging into `dir/stack.log`; with a
/// namespace, inside it, listening for the bench on its end of the link.
struct Stack {
    /// Stopped (SIGINT, then SIGKILL) when the stack is dropped.
    launch: LaunchHandle,
    prefix: String,
    /// The bench's way in: a client of the launcher's router, as the external user `bench`.
    transport: TransportConfig,
    recording: PathBuf,
    /// The launcher's folder for external users' passwords (removed with the stack).
    credentials: PathBuf,
}

impl Stack {
    fn start(launch: &Path, model: &Path, dir: &Path, name: &str, options: &StackOptions) -> Result<Self> {
        let port = free_port()?;
        let prefix = format!("{name}{port}");
        let recording = dir.join("recording.mcap");
        let _ = std::fs::remove_file(&recording);
        let credentials = std::env::temp_dir().join(format!("reflex-{prefix}-credentials"));
        let _ = std::fs::remove_dir_all(&credentials);
        // Where the bench reaches the launcher: the gateway on the vehicle's end of the link, or
        // the loopback rendezvous (the gateway then an unused ephemeral port).
        let (gateway, entry) = match options.namespace {
            Some(ns) => {
                let end = format!("tcp/{}:{port}", ns.vehicle_ip);
                (end.clone(), end)
            }
            None => ("tcp/127.0.0.1:0".to_string(), format!("tcp/127.0.0.1:{port}")),
        };
        let log = std::fs::File::create(dir.join("stack.log"))?;
        let log_out = log.try_clone()?;
        let exe = std::env::current_exe()?;
        let mut command = match options.namespace {
            Some(ns) => {
                let [program, rest @ ..] = ns.prefix();
                let mut command = Command::new(program);
                command.args(rest).arg(&exe);
                command
            }
            None => Command::new(&exe),
        };
        if let Some(file) = &options.faketime {
            // Only the wall clock is faked: durations run on the real monotonic clock.
            command
                .env("LD_PRELOAD", LIBFAKETIME)
                .env("FAKETIME_TIMESTAMP_FILE", file)
                .env("FAKETIME_NO_CACHE", "1")
                .env("DONT_FAKE_MONOTONIC", "1");
        }
        let mut sets = vec![
            format!("prefix={prefix}"),
            format!("port={port}"),
            format!("model={}", model.display()),
            format!("recording={}", recording.display()),
            format!("gateway={gateway}"),
            format!("credentials={}", credentials.display()),
        ];
        if options.relay {
            sets.push(format!("aeb_detections={RELAYED}"));
            sets.push("relay=true".into());
        }
        sets.extend(options.sets.iter().cloned());
        let mut launch = LaunchHandle::spawn(command, launch, Duration::from_secs(5), |command| {
            for set in &sets {
                command.args(["--set", set]);
            }
            normal_scheduling(command).env("REFLEX_LOG", "warn").stdout(log_out).stderr(log);
        })?;
        // The launcher writes the external users' credentials before it opens anything.
        let password = credentials.join("bench.password");
        let waiting = Instant::now();
        while !password.is_file() {
            let log = || std::fs::read_to_string(dir.join("stack.log")).unwrap_or_default();
            if let Some(status) = launch.try_wait() {
                bail!("reflex launch ended ({status}) before it wrote credentials:\n{}", log());
            }
            if waiting.elapsed() > Duration::from_secs(30) {
                bail!("reflex launch wrote no credentials to {} in 30 s:\n{}", credentials.display(), log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // A client of the launcher's router (it tries for 10 s, then fails naming the endpoint).
        let transport = TransportConfig {
            mode: Mode::Client,
            connect: vec![entry],
            prefix: prefix.clone(),
            security: Some(Security::external("bench", password)),
            ..TransportConfig::default()
        };
        Ok(Self { launch, prefix, transport, recording, credentials })
    }

    /// After the launcher was killed: its nodes got SIGTERM and end by themselves; wait (at most
    /// `limit`) for the processes of this stack to be gone.
    fn wait_for_nodes_to_end(&self, limit: Duration) {
        let start = Instant::now();
        while start.elapsed() < limit {
            let left = std::fs::read_dir("/proc").map_or(0, |entries| {
                entries
                    .filter_map(|e| e.ok())
                    .filter(|e| {
                        std::fs::read(e.path().join("cmdline"))
                            .is_ok_and(|c| c.windows(self.prefix.len()).any(|w| w == self.prefix.as_bytes()))
                    })
                    .count()
            });
            if left == 0 {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.credentials);
    }
}

fn drain<T: reflex_msgs::Message>(input: &mut Subscriber<T>) {
    for _ in 0..1_000_000 {
        if input.recv().is_none() && input.pending() == 0 {
            break;
        }
    }
}

/// A stationary car ahead, at TTC 4 s: the braking scenario of every row.
fn ccrs(speed_kmh: f64) -> Cell {
    let speed = speed_kmh / 3.6;
    let (length, _, _) = ActorKind::Car.size();
    Cell {
        scenario: "CCRs".into(),
        expect: Expect::Avoid,
        ego_speed_kmh: speed_kmh,
        parameters: vec![("ego_speed_kmh".into(), speed_kmh)],
        actors: vec![Actor {
            kind: ActorKind::Car,
            x_m: 4.0 * speed + length / 2.0,
            y_m: 0.0,
            vx_mps: 0.0,
            vy_mps: 0.0,
            brake_at_s: None,
            brake_decel_mps2: 0.0,
        }],
        duration_s: 4.0 + 4.0,
    }
}

/// Signals node `name` of this bench's stack, after checking its token's pid really is that
/// reflex node (H12). Returns the pid.
fn signal_node(system: &System, name: &str, signal: i32) -> Result<libc::pid_t> {
    let pid = system
        .find_local_node_pid(name)?
        .with_context(|| format!("{name} is not running (or its token does not match a reflex process)"))?
        as libc::pid_t;
    // SAFETY: kill(2) on the pid of our own launch's node, checked above.
    if unsafe { libc::kill(pid, signal) } != 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("signal {signal} to {name} (pid {pid})"));
    }
    Ok(pid)
}

/// Checks a finished row against what it expects; fills problems and the pass flag.
fn assess(result: &mut RowResult, cell: &CellResult, row: &Row, dir: &Path, recording: &Path, window: (i64, i64)) {
    let messages = reflex_recorder::read_messages(recording);
    if let (Fault::LinkCut, Ok((messages, _))) = (&row.fault, &messages) {
        // The bench heard nothing after the cut: the vehicle's recording tells when its monitor
        // engaged.
        let (injected, end) = window;
        result.monitor_ms = messages
            .iter()
            .filter(|m| m.topic == topics::SAFE_STOP)
            .filter(|m| (injected..=end).contains(&(m.publish_time_ns as i64)))
            .find(|m| reflex_msgs::decode::<SafeStop>(&m.data).is_ok_and(|s| s.engaged))
            .map(|m| (m.publish_time_ns as i64 - injected) as f64 / 1e6);
    }
    result.safe_stop = result.monitor_ms.is_some() || result.arbiter_ms.is_some() || result.gateway_ms.is_some();
    result.impact = cell.impact;
    result.impact_speed_kmh = cell.impact_speed_kmh;
    result.min_gap_m = cell.min_gap_m;
    let log = std::fs::read_to_string(dir.join("stack.log")).unwrap_or_default();
    result.panics = log.lines().filter(|l| l.contains("panicked")).map(str::to_string).collect();
    if !result.panics.is_empty() {
        result.problems.push(format!("{} panic(s) in the stack's log", result.panics.len()));
    }
    match row.expect {
        Outcome::SafeStop(budget, by) => {
            result.detection_ms = match by {
                By::Monitor => result.monitor_ms,
                By::Arbiter => result.arbiter_ms,
                By::Gateway => result.gateway_ms,
            };
            match result.detection_ms {
                None => result.problems.push(format!("not noticed by the {}", by_name(by))),
                Some(d) if d > budget => result.problems.push(format!("noticed after {d:.0} ms, budget {budget} ms")),
                Some(_) => {}
            }
            if result.reaction_ms.is_none() {
                result.problems.push("no full braking at the brake unit".into());
            }
            if result.released_while_moving {
                result.problems.push("the safe stop was released while the vehicle moved".into());
            }
        }
        Outcome::Nominal => {
            if result.monitor_ms.is_some() || result.arbiter_ms.is_some() {
                result.problems.push(FALSE_STOP.into());
            }
            if cell.braking_time_s.is_none() {
                result.problems.push("the AEB did not brake".into());
            }
            if let Some(why) = &result.gateway_reason {
                result.problems.push(format!("the actuator gateway braked by itself: {why}"));
            }
        }
        Outcome::Either => {}
    }
    if cell.impact {
        result.problems.push(format!("collision at {:.1} km/h", cell.impact_speed_kmh));
    }
    match messages {
        Ok((messages, None)) if !messages.is_empty() => {
            result.recording = format!("intact, {} messages", messages.len());
            if row.name == "baseline" {
                let (end_to_end, hops) = hop_latencies(&messages);
                result.end_to_end = end_to_end;
                result.hops = hops;
            }
        }
        Ok((messages, Some(damage))) => {
            result.recording = format!("damaged after {} messages: {damage}", messages.len());
            result.problems.push("recording damaged".into());
        }
        Ok(_) => {
            result.recording = "empty".into();
            result.problems.push("recording empty".into());
        }
        Err(error) => {
            result.recording = error.clone();
            result.problems.push("recording unreadable".into());
        }
    }
    result.passed = result.problems.is_empty();
}

/// Per frame stamp, the first publication time on each topic of the chain (from the
/// recording's publish times, the publishers' clocks): capture → detections → AEB request →
/// command, and the whole.
fn hop_latencies(messages: &[reflex_recorder::RecordedMessage]) -> (Vec<f64>, Vec<(&'static str, Vec<f64>)>) {
    let chain = [topics::DETECTIONS, topics::AEB_REQUEST, topics::ACTUATOR_COMMAND];
    let mut first: BTreeMap<i64, [Option<u64>; 3]> = BTreeMap::new();
    for m in messages {
        let Some(k) = chain.iter().position(|t| *t == m.topic) else { continue };
        // Every message on the chain starts with its header.
        let Ok(header) = reflex_msgs::decode_prefix::<reflex_msgs::std_msgs::HeaderView>(&m.data) else { continue };
        let stamp = header.stamp.as_nanos();
        let slot = &mut first.entry(stamp).or_default()[k];
        if slot.is_none_or(|t| m.publish_time_ns < t) {
            *slot = Some(m.publish_time_ns);
        }
    }
    let names = ["camera → detections", "detections → AEB request", "AEB request → command"];
    let mut hops: Vec<(&'static str, Vec<f64>)> = names.iter().map(|n| (*n, Vec::new())).collect();
    let mut end_to_end = Vec::new();
    for (stamp, times) in first {
        let [Some(d), Some(a), Some(c)] = times else { continue };
        let points = [stamp as u64, d, a, c];
        for (k, (_, values)) in hops.iter_mut().enumerate() {
            values.push((points[k + 1] as f64 - points[k] as f64) / 1e6);
        }
        end_to_end.push((c as f64 - stamp as f64) / 1e6);
    }
    (end_to_end, hops)
}

fn percentiles(values: &[f64]) -> String {
    if values.is_empty() {
        return "| – | – | – | – | 0 |".into();
    }
    let mut histogram = LatencyHistogram::new();
    for v in values {
        histogram.record_ns((v.max(0.0) * 1e6) as i64);
    }
    let q = |p: f64| histogram.quantile_ns(p) as f64 / 1e6;
    format!(
        "| {:.2} | {:.2} | {:.2} | {:.2} | {} |",
        q(0.5),
        q(0.99),
        q(0.999),
        histogram.max_ns() as f64 / 1e6,
        values.len()
    )
}

fn report(results: &[RowResult], args: &HilArgs, bench_priority: Option<i32>) -> Result<String> {
    let mut out = format!(
        "# Hardware-in-the-loop fault matrix\n\nVehicle stack `{}` as processes at real-time priorities; the simulator as \
         the plant in real time (rendered 640x480 frames at 30 fps through the OpenVINO detector, model `{}`); \
         scenario: CCRs at {} km/h, stationary car ahead from TTC 4 s; fault injected {} s in. The brake unit obeys \
         the product's actuator gateway (it brakes by itself when commands stop, stop advancing or fail \
         plausibility; the plant has no watchdog of its own). The stack runs with access control on (rules derived \
         from the launch graph; the bench is the external user `bench`, `visitor` a credentialed stranger). The \
         bench {}.\n\n\
         Noticed: fault → the monitor's first engaged SafeStop (monitor), the arbiter's first \"supervisor missing\" \
         command (arbiter), the gateway braking by itself (gateway); detection is the one the row names. Reaction: \
         fault → the brake unit applying full braking (in nominal rows, the AEB's own full braking). Everything is \
         counted up to the end of the cell (the ego at a standstill, or 8 s). \"Fault\" is the moment just before the \
         bench starts injecting it.\n\n\
         | row | expects | monitor | arbiter | gateway | detection | reaction | impact km/h | min gap m | deadline misses | decode errors | recording | result |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|\n",
        args.launch.display(),
        args.model.display(),
        args.speed_kmh,
        args.fault_at_s,
        match bench_priority {
            Some(p) => format!("runs at SCHED_FIFO {p}, below every unit of the vehicle (as separate hardware would)"),
            None => "could not get a real-time priority and shares the CPU with the vehicle".into(),
        }
    );
    for r in results {
        let verdict = match (&r.skipped, r.passed) {
            (Some(why), _) => format!("skipped: {why}"),
            (None, true) => "pass".into(),
            (None, false) => format!("**FAIL**: {}", r.problems.join("; ")),
        };
        let gateway = match (&r.gateway_ms, &r.gateway_reason) {
            (Some(at), Some(why)) => format!("{at:.0} ms ({why})"),
            _ => "–".into(),
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.1} | {} | {} | {} | {} | {} |\n",
            r.name,
            r.expected,
            ms(r.monitor_ms),
            ms(r.arbiter_ms),
            gateway,
            ms(r.detection_ms),
            ms(r.reaction_ms),
            r.impact_speed_kmh,
            if r.min_gap_m.is_finite() { format!("{:.2}", r.min_gap_m) } else { "–".into() },
            r.deadline_misses,
            r.decode_errors,
            r.recording,
            verdict
        ));
    }
    let notes: Vec<String> =
        results.iter().flat_map(|r| r.notes.iter().map(move |n| format!("- {}: {n}", r.name))).collect();
    let twice: Vec<String> = results
        .iter()
        .filter_map(|r| {
            r.first_run.as_ref().map(|why| format!("- {}: first run: {why}; the table gives the second", r.name))
        })
        .collect();
    if !twice.is_empty() {
        out.push_str("\n## Rows run twice\n\nA row expected to run nominal that ended in a safe stop is run once more (a stall of the whole machine stops the stack, as it should); any other failure counts at once.\n\n");
        out.push_str(&twice.join("\n"));
        out.push('\n');
    }
    if !notes.is_empty() {
        out.push_str("\n## What the faults did\n\n");
        out.push_str(&notes.join("\n"));
        out.push('\n');
    }
    if let Some(baseline) = results.iter().find(|r| r.name == "baseline" && !r.end_to_end.is_empty()) {
        out.push_str(
            "\n## Latency (baseline row, per frame, from the recording)\n\n| hop | p50 ms | p99 ms | p99.9 ms | max ms | frames |\n|---|---:|---:|---:|---:|---:|\n",
        );
        for (name, values) in &baseline.hops {
            out.push_str(&format!("| {name} {}\n", percentiles(values)));
        }
        out.push_str(&format!("| **capture → command** {}\n", percentiles(&baseline.end_to_end)));
        let png = args.out.join("latency_end_to_end.png");
        reflex_sim::plot::histogram(&png, "capture → command (baseline)", &baseline.end_to_end)?;
        out.push_str("\n![capture → command histogram](latency_end_to_end.png)\n");
        for (name, values) in &baseline.hops {
            let file = format!("latency_{}.png", slug(name));
            reflex_sim::plot::histogram(&args.out.join(&file), name, values)?;
            out.push_str(&format!("![{name}]({file})\n"));
        }
    }
    Ok(out)
}

#[derive(clap::Args)]
pub struct SoakArgs {
    /// How long, minutes.
    #[arg(long, default_value_t = 10.0)]
    minutes: f64,
    /// Seconds per row of the table.
    #[arg(long, default_value_t = 30.0)]
    window_s: f64,
    /// Report folder: soak.md, the recording and the stack's log.
    #[arg(long, default_value = "hil-report/soak")]
    out: PathBuf,
    #[arg(long, default_value = "hil-tests/vehicle.yaml")]
    launch: PathBuf,
    #[arg(long, default_value = "models/simnet/simnet.yaml")]
    model: PathBuf,
}

/// One window of a soak run.
struct Window {
    end_s: f64,
    sent: u64,
    answered: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    /// Resident memory per node, KiB.
    rss_kib: Vec<(String, u64)>,
    drops: u64,
    misses: u64,
}

const STACK: [&str; 5] = ["detector", "aeb", "monitor", "arbiter", "recorder"];
/// The launcher's column in the soak table: it routes every message of the stack.
const LAUNCHER: &str = "launcher (router)";

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")?.split_whitespace().next()?.parse().ok())
}

/// `reflex bench soak`: the vehicle stack against the plant in real time for a long steady
/// drive (30 km/h behind a car at the same speed, 25 m ahead: nothing to brake for), with a
/// row per window: frames sent and answered, capture → command latency, resident memory of
/// every node, queue drops and deadline misses.
pub fn soak(args: SoakArgs) -> Result<()> {
    let launch = find_in_ancestors(&args.launch);
    let model = find_in_ancestors(&args.model);
    let dir = std::path::absolute(&args.out)?;
    std::fs::create_dir_all(&dir)?;
    bench_scheduling();
    let stack = Stack::start(&launch, &model, &dir, "soak", &StackOptions::default())?;
    let recording = stack.recording.clone();
    let node = Node::new(NodeOptions::new("bench-plant").transport(stack.transport.clone()))?;
    let observer = Node::new(NodeOptions::new("bench-observer").transport(stack.transport.clone()))?;
    let mut events =
        observer.subscriber::<MonitorEvent>(topics::MONITOR_EVENTS, InputOptions::default().capacity(8192))?;
    let mut plant = Plant::new(node, Perception::Rendered)?;
    let config = RunConfig::default();
    plant.settle(&config, Duration::from_secs(1), Duration::from_secs(90))?;
    drain(&mut events);
    let mut pids: Vec<(String, u32)> = STACK
        .iter()
        .filter_map(|name| {
            plant.node().system().find_node(name).ok().flatten().map(|found| (name.to_string(), found.pid))
        })
        .collect();
    if pids.len() != STACK.len() {
        bail!("found {} of the {} stack processes: {pids:?}", pids.len(), STACK.len());
    }
    pids.push((LAUNCHER.into(), stack.launch.id()));
    let speed = 30.0 / 3.6;
    let duration_s = args.minutes * 60.0;
    let cell = Cell {
        scenario: "soak".into(),
        expect: Expect::NoBraking,
        ego_speed_kmh: 30.0,
        parameters: Vec::new(),
        actors: vec![Actor {
            kind: ActorKind::Car,
            x_m: 25.0 + ActorKind::Car.size().0 / 2.0,
            y_m: 0.0,
            vx_mps: speed,
            vy_mps: 0.0,
            brake_at_s: None,
            brake_decel_mps2: 0.0,
        }],
        duration_s,
    };
    let mut windows: Vec<Window> = Vec::new();
    let mut next_window = args.window_s;
    let mut last_sent = 0;
    let mut latencies: Vec<i64> = Vec::new();
    // Every drop and miss, explained: node, topic, what the runtime said, when.
    let mut explained: Vec<String> = Vec::new();
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut close_window = |t: f64, sent_total: u64, latencies: &mut Vec<i64>| {
        if sent_total == last_sent && latencies.is_empty() {
            return; // nothing since the last window
        }
        let (mut drops, mut misses) = (0, 0);
        while let Some(e) = events.recv() {
            let e = e.message;
            match e.kind {
                MonitorEvent::KIND_QUEUE_DROP => drops += 1,
                MonitorEvent::KIND_DEADLINE_MISSED => misses += 1,
                _ => continue,
            }
            explained.push(format!("{:.0} s: {} on {}: {}", t, e.node, e.topic, e.detail));
        }
        let mut histogram = LatencyHistogram::new();
        for l in latencies.iter() {
            histogram.record_ns(*l);
        }
        let ms = |ns: u64| ns as f64 / 1e6;
        windows.push(Window {
            end_s: t,
            sent: sent_total - last_sent,
            answered: latencies.len(),
            p50_ms: ms(histogram.quantile_ns(0.5)),
            p99_ms: ms(histogram.quantile_ns(0.99)),
            max_ms: ms(histogram.max_ns()),
            rss_kib: pids.iter().map(|(n, p)| (n.clone(), rss_kib(*p).unwrap_or(0))).collect(),
            drops,
            misses,
        });
        last_sent = sent_total;
        latencies.clear();
        if terminal {
            eprint!("\r\x1b[Ksoak: {:.0} / {:.0} s", t, duration_s);
        } else {
            eprintln!("soak: {:.0} / {:.0} s", t, duration_s);
        }
    };
    let (mut last_t, mut sent_total) = (0.0, 0);
    let result = plant.run_cell_with(&cell, &config, |t, controls| {
        latencies.append(&mut controls.latencies_ns);
        (last_t, sent_total) = (t, controls.frames_sent);
        if t >= next_window {
            next_window += args.window_s;
            close_window(t, sent_total, &mut latencies);
        }
    })?;
    // The last, partial window (the cell may end just before a window's end).
    close_window(last_t, sent_total, &mut latencies);
    drop(plant);
    drop(stack);
    let (messages, damage) = reflex_recorder::read_messages(&recording).map_err(anyhow::Error::msg)?;
    let mut out = format!(
        "# Soak run\n\nThe HIL vehicle stack (`{}`, model `{}`) against the plant in real time for {} min at 30 fps: \
         30 km/h behind a car at the same speed 25 m ahead, access control on (the launcher routes every message). \
         Braking: {}. Recording: {} messages{}.\n\n\
         | window end s | frames sent | answered | p50 ms | p99 ms | max ms | queue-drop events | deadline misses |{}\n|---:|---:|---:|---:|---:|---:|---:|---:|{}\n",
        args.launch.display(),
        args.model.display(),
        args.minutes,
        result.braking_time_s.map_or("none".into(), |t| format!("at {t:.1} s (false activation)")),
        messages.len(),
        damage.map_or(String::new(), |d| format!(", damaged: {d}")),
        pids.iter().map(|(n, _)| format!(" {n} RSS MiB |")).collect::<String>(),
        "---:|".repeat(pids.len()),
    );
    for w in &windows {
        out.push_str(&format!(
            "| {:.0} | {} | {} | {:.2} | {:.2} | {:.2} | {} | {} |{}\n",
            w.end_s,
            w.sent,
            w.answered,
            w.p50_ms,
            w.p99_ms,
            w.max_ms,
            w.drops,
            w.misses,
            w.rss_kib.iter().map(|(_, k)| format!(" {:.1} |", *k as f64 / 1024.0)).collect::<String>()
        ));
    }
    if let (Some(first), Some(last)) = (windows.get(1), windows.last()) {
        out.push_str("\nResident memory from the second window to the last (the first includes warm-up):\n\n");
        for ((name, a), (_, b)) in first.rss_kib.iter().zip(&last.rss_kib) {
            out.push_str(&format!(
                "- {name}: {:.1} → {:.1} MiB ({:+.1} %)\n",
                *a as f64 / 1024.0,
                *b as f64 / 1024.0,
                (*b as f64 / *a as f64 - 1.0) * 100.0
            ));
        }
        let p99: Vec<f64> = windows.iter().skip(1).map(|w| w.p99_ms).collect();
        let (lo, hi) = (p99.iter().copied().fold(f64::MAX, f64::min), p99.iter().copied().fold(0.0, f64::max));
        out.push_str(&format!("\np99 per window after the first: {lo:.2}–{hi:.2} ms.\n"));
    }
    out.push_str("\nQueue drops and deadline misses reported (window end, node, input, detail):\n\n");
    if explained.is_empty() {
        out.push_str("- none\n");
    }
    for line in &explained {
        out.push_str(&format!("- {line}\n"));
    }
    println!("{out}");
    std::fs::write(dir.join("soak.md"), &out)?;
    eprintln!("\nreport: {}", dir.join("soak.md").display());
    Ok(())
}
