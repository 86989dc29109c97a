//! `reflex bench hil`: the hardware-in-the-loop fault matrix. For each row the vehicle stack of
//! `hil-tests/vehicle.yaml` (detector, AEB, monitor, arbiter, recorder) runs as real processes
//! under `reflex launch`, and the simulator is the plant in real time: it renders the camera's
//! frames, publishes the vehicle state and obeys the arbiter's command. A braking scenario (CCRs,
//! a stationary car ahead) runs, the row's fault is injected part-way, and the bench checks:
//! no panic in any process; the outcome the row expects (safe stop within the monitor's budget,
//! or nominal operation where the fault is tolerable); no collision; the recording intact. Each
//! row reports its detection time (fault → the monitor's SafeStop) and reaction time (fault →
//! full braking commanded).
//!
//! The stack runs with access control on (the launcher routes and checks every sender; the
//! bench is the external user `bench`), and the plant's brake unit has a watchdog: it brakes
//! when commands stop for 250 ms. The link-cut row puts the vehicle in its own network
//! namespace, reached from the bench over a veth pair, and drops the link with nftables; its
//! detection time comes from the vehicle's own recording (the bench hears nothing after the
//! cut), its reaction time is the watchdog's.
//!
//! The baseline row (no fault) gives the latency figures: capture → command at the plant (end
//! to end) and per hop from the recording (capture → detections → AEB request → command, by
//! publication times of the same frame's stamp).

use super::netns::VehicleNamespace;
use super::{find_in_ancestors, free_port, Interrupted};
use anyhow::{bail, Context, Result};
use reflex_msgs::reflex_msgs::{BrakeRequest, MonitorEvent, SafeStop};
use reflex_msgs::topics;
use reflex_runtime::fault::FaultCommand;
use reflex_runtime::transport::Security;
use reflex_runtime::{keys, InputOptions, LatencyHistogram, Mode, Node, NodeOptions, Subscriber, TransportConfig};
use reflex_sim::plant::{Perception, Plant};
use reflex_sim::run::{CellResult, RunConfig};
use reflex_sim::scenario::{Cell, Expect};
use reflex_sim::world::{Actor, ActorKind};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use zenoh::Wait;

/// The brake unit's watchdog: no command for this long and it brakes by itself.
const ACTUATOR_TIMEOUT: Duration = Duration::from_millis(250);

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
}

/// What a row does to the stack.
#[derive(Debug, Clone)]
enum Fault {
    None,
    /// `reflex fault NODE --kill` (the node is not restarted: the vehicle must stop).
    Kill(&'static str),
    /// A message fault sent to nodes over their fault key.
    Message(Vec<(&'static str, FaultCommand)>),
    /// The plant stops publishing frames.
    StreamLost,
    /// `stress-ng` on every core.
    CpuStress,
    /// The vehicle in its own network namespace; nftables drops everything on the link.
    LinkCut,
}

/// What the row must show.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    /// The monitor engages safe stop within this many ms of the fault (its deadline or budget
    /// for what the fault breaks, with room for a loaded machine), and the arbiter commands
    /// full braking.
    SafeStop(f64),
    /// The fault is tolerable: no safe stop; the AEB brakes for the car as usual.
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
    let corrupt = |node| (node, message(None, |c| c.corrupt_pct = Some(20.0)));
    vec![
        Row { name: "baseline", fault: Fault::None, expect: Outcome::Nominal },
        Row { name: "detector killed", fault: Fault::Kill("detector"), expect: Outcome::SafeStop(1000.0) },
        Row {
            name: "detector stalled",
            fault: Fault::Message(vec![("detector", message(None, |c| c.stall_ms = Some(1500.0)))]),
            expect: Outcome::SafeStop(600.0), // detections deadline 200 ms
        },
        Row {
            name: "camera frozen",
            fault: Fault::Message(vec![("detector", message(Some(topics::CAMERA_IMAGE), |c| c.freeze = Some(true)))]),
            expect: Outcome::SafeStop(800.0), // command age budget 300 ms
        },
        Row { name: "camera stream lost", fault: Fault::StreamLost, expect: Outcome::SafeStop(400.0) }, // image deadline 100 ms
        Row {
            name: "30 % drops on detections",
            fault: Fault::Message(vec![("aeb", message(Some(topics::DETECTIONS), |c| c.drop_pct = Some(30.0)))]),
            expect: Outcome::Nominal,
        },
        Row {
            name: "corrupt messages on every input",
            fault: Fault::Message(vec![corrupt("detector"), corrupt("aeb"), corrupt("monitor"), corrupt("arbiter")]),
            expect: Outcome::Either,
        },
        Row { name: "CPU saturated (stress-ng)", fault: Fault::CpuStress, expect: Outcome::Either },
        // Image deadline 100 ms on the vehicle's side; the brake unit's watchdog on the bench's.
        Row { name: "vehicle–bench link cut", fault: Fault::LinkCut, expect: Outcome::SafeStop(400.0) },
    ]
}

/// One row's figures.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RowResult {
    pub name: String,
    pub expected: String,
    pub safe_stop: bool,
    /// Fault → the monitor's first engaged SafeStop, ms.
    pub detection_ms: Option<f64>,
    /// Fault → the first full-braking command, ms (link cut: fault → the brake unit's
    /// watchdog braking, since no command can reach it).
    pub reaction_ms: Option<f64>,
    /// Fault (or the cell's start, without one) → the brake unit's watchdog braking for lack of
    /// commands, ms.
    pub watchdog_ms: Option<f64>,
    pub impact: bool,
    pub impact_speed_kmh: f64,
    pub min_gap_m: f64,
    pub panics: Vec<String>,
    pub recording: String,
    pub deadline_misses: u64,
    /// Which deadlines, when (s into the cell).
    pub missed: Vec<String>,
    pub decode_errors: u64,
    pub passed: bool,
    pub problems: Vec<String>,
    pub skipped: Option<String>,
    #[serde(skip)]
    end_to_end: Vec<f64>,
    #[serde(skip)]
    hops: Vec<(&'static str, Vec<f64>)>,
}

pub fn run(args: HilArgs) -> Result<()> {
    let all = rows();
    if args.list {
        for row in &all {
            println!("{:34} expects {:?}", row.name, row.expect);
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
    let mut results = Vec::new();
    for row in all.iter().filter(|r| args.rows.is_empty() || args.rows.iter().any(|w| w == r.name)) {
        eprintln!("{}: running", row.name);
        let result = run_row(row, &args, &launch, &model)?;
        eprintln!(
            "{}: {} (safe stop {}, detection {}, reaction {}, impact {:.1} km/h){}",
            result.name,
            if result.skipped.is_some() {
                "skipped"
            } else if result.passed {
                "pass"
            } else {
                "FAIL"
            },
            result.safe_stop,
            ms(result.detection_ms),
            ms(result.reaction_ms),
            result.impact_speed_kmh,
            if result.problems.is_empty() { String::new() } else { format!(": {}", result.problems.join("; ")) }
        );
        results.push(result);
    }
    let report = report(&results, &args)?;
    println!("{report}");
    std::fs::write(args.out.join("report.md"), &report)?;
    std::fs::write(args.out.join("results.json"), serde_json::to_string_pretty(&results)? + "\n")?;
    eprintln!("report: {}", args.out.join("report.md").display());
    if results.iter().any(|r| !r.passed && r.skipped.is_none()) {
        bail!("fault matrix: some rows failed (see the report)");
    }
    Ok(())
}

fn ms(value: Option<f64>) -> String {
    value.map_or("–".into(), |v| format!("{v:.0} ms"))
}

fn slug(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect()
}

fn run_row(row: &Row, args: &HilArgs, launch: &Path, model: &Path) -> Result<RowResult> {
    let dir = std::path::absolute(args.out.join(slug(row.name)))?;
    std::fs::create_dir_all(&dir)?;
    let mut result = RowResult {
        name: row.name.into(),
        expected: match row.expect {
            Outcome::SafeStop(budget) => format!("safe stop ≤ {budget} ms"),
            Outcome::Nominal => "nominal".into(),
            Outcome::Either => "no collision".into(),
        },
        safe_stop: false,
        detection_ms: None,
        reaction_ms: None,
        watchdog_ms: None,
        impact: false,
        impact_speed_kmh: 0.0,
        min_gap_m: f64::NAN,
        panics: Vec::new(),
        recording: String::new(),
        deadline_misses: 0,
        missed: Vec::new(),
        decode_errors: 0,
        passed: false,
        problems: Vec::new(),
        skipped: None,
        end_to_end: Vec::new(),
        hops: Vec::new(),
    };
    if matches!(row.fault, Fault::CpuStress) && Command::new("stress-ng").arg("--version").output().is_err() {
        result.skipped = Some("stress-ng is not installed (apt-get install stress-ng)".into());
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
    let stack = Stack::start(launch, model, &dir, "hil", namespace.as_ref())?;
    let prefix = stack.prefix.clone();
    let node = Node::new(NodeOptions::new("hil-plant").transport(stack.transport.clone()))?;
    let observer = Node::new(NodeOptions::new("hil-observer").transport(stack.transport.clone()))?;
    let big = InputOptions::default().capacity(8192);
    let mut safe_stops = observer.subscriber::<SafeStop>(topics::SAFE_STOP, big)?;
    let mut commands = observer.subscriber::<BrakeRequest>(topics::ACTUATOR_COMMAND, big)?;
    let mut events = observer.subscriber::<MonitorEvent>(topics::MONITOR_EVENTS, big)?;
    let mut plant = Plant::new(node, Perception::Rendered).map_err(|e| anyhow::anyhow!("{e}"))?;
    plant.actuator_timeout = Some(ACTUATOR_TIMEOUT);
    let config = RunConfig::default();
    plant.settle(&config, Duration::from_secs(1), Duration::from_secs(90)).map_err(|e| anyhow::anyhow!("{e}"))?;
    // Only what follows the settling counts.
    drain(&mut safe_stops);
    drain(&mut commands);
    drain(&mut events);

    let cell = ccrs(args.speed_kmh);
    let clock = plant.node().clock().clone();
    let start_ns = clock.now_ns();
    let mut injected_ns: Option<i64> = None;
    let mut stress: Option<std::process::Child> = None;
    let mut failure: Option<String> = None;
    let mut watchdog_s: Option<f64> = None;
    let session = plant.node().session().clone();
    let fault = row.fault.clone();
    let cell_result = plant
        .run_cell_with(&cell, &config, |t, controls| {
            watchdog_s = controls.actuator_timeout_s;
            if t < args.fault_at_s || injected_ns.is_some() {
                return;
            }
            injected_ns = Some(clock.now_ns());
            match &fault {
                Fault::None => {}
                Fault::LinkCut => {
                    if let Err(e) = namespace.as_mut().map(VehicleNamespace::cut).transpose() {
                        failure = Some(format!("cannot cut the link: {e:#}"));
                    }
                }
                Fault::StreamLost => controls.mute_camera = true,
                Fault::Kill(name) => {
                    if let Err(e) = signal_node(&session, &prefix, name, libc::SIGKILL) {
                        failure = Some(e.to_string());
                    }
                }
                Fault::Message(commands) => {
                    for (name, command) in commands {
                        let body = serde_json::to_string(command).expect("fault commands serialise");
                        if let Err(e) = session.put(keys::fault_key(&prefix, name), body).wait() {
                            failure = Some(format!("cannot send the fault to {name}: {e}"));
                        }
                    }
                }
                Fault::CpuStress => {
                    stress = Command::new("stress-ng")
                        .args(["--cpu", "0", "--timeout", "60s", "--quiet"])
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .spawn()
                        .map_err(|e| failure = Some(format!("cannot start stress-ng: {e}")))
                        .ok();
                }
            }
        })
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    // What happens after the cell (the plant stops sending frames) is not the row's doing.
    let end_ns = clock.now_ns();
    if let Some(Err(e)) = namespace.as_mut().map(VehicleNamespace::restore) {
        result.problems.push(format!("cannot restore the link: {e:#}"));
    }
    let fault_s = if injected_ns.is_some() { args.fault_at_s } else { 0.0 };
    result.watchdog_ms = watchdog_s.map(|t| (t - fault_s) * 1e3);
    if let Some(mut child) = stress.take() {
        let _ = child.kill();
        let _ = child.wait();
    }
    if let Some(failure) = failure {
        result.problems.push(failure);
    }
    // Let the last messages land, then look at what the stack said.
    std::thread::sleep(Duration::from_millis(300));
    let injected = injected_ns.unwrap_or(i64::MAX);
    let during = |at: i64| at >= injected && at <= end_ns;
    while let Some(s) = safe_stops.recv() {
        let at = s.source_timestamp_ns.unwrap_or(0);
        if s.message.engaged && during(at) && result.detection_ms.is_none() {
            result.safe_stop = true;
            result.detection_ms = Some((at - injected) as f64 / 1e6);
        }
    }
    while let Some(c) = commands.recv() {
        let at = c.source_timestamp_ns.unwrap_or(0);
        if c.message.level == BrakeRequest::LEVEL_FULL && during(at) && result.reaction_ms.is_none() {
            result.reaction_ms = Some((at - injected) as f64 / 1e6);
        }
    }
    while let Some(e) = events.recv() {
        // Events carry no attachment; their stamp is the reporting node's clock.
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
            MonitorEvent::KIND_DECODE_ERROR => result.decode_errors += 1,
            _ => {}
        }
    }
    drop(plant);
    let recording = stack.recording.clone();
    drop(stack); // the recorder closes its file
    drop(namespace);
    assess(&mut result, &cell_result, row, &dir, &recording, (injected, end_ns));
    Ok(result)
}

/// The vehicle stack of the bench's launch file under `reflex launch`, on a private port and
/// prefix, recording into `dir/recording.mcap` and logging into `dir/stack.log`; with a
/// namespace, inside it, listening for the bench on its end of the link.
struct Stack {
    /// Stopped (SIGINT, then SIGKILL) when the stack is dropped.
    launch: Interrupted,
    prefix: String,
    /// The bench's way in: a client of the launcher's router, as the external user `bench`.
    transport: TransportConfig,
    recording: PathBuf,
    /// The launcher's dictionary and passwords (a private folder, removed with the stack).
    credentials: PathBuf,
}

impl Stack {
    fn start(
        launch: &Path,
        model: &Path,
        dir: &Path,
        name: &str,
        namespace: Option<&VehicleNamespace>,
    ) -> Result<Self> {
        let port = free_port()?;
        let prefix = format!("{name}{port}");
        let recording = dir.join("recording.mcap");
        let _ = std::fs::remove_file(&recording);
        let credentials = std::env::temp_dir().join(format!("reflex-{prefix}-credentials"));
        let _ = std::fs::remove_dir_all(&credentials);
        // Where the bench reaches the launcher: the gateway on the vehicle's end of the link, or
        // the loopback rendezvous (the gateway then an unused ephemeral port).
        let (gateway, entry) = match namespace {
            Some(ns) => {
                let end = format!("tcp/{}:{port}", ns.vehicle_ip);
                (end.clone(), end)
            }
            None => ("tcp/127.0.0.1:0".to_string(), format!("tcp/127.0.0.1:{port}")),
        };
        let log = std::fs::File::create(dir.join("stack.log"))?;
        let exe = std::env::current_exe()?;
        let mut command = match namespace {
            Some(ns) => {
                let [program, rest @ ..] = ns.prefix();
                let mut command = Command::new(program);
                command.args(rest).arg(&exe);
                command
            }
            None => Command::new(&exe),
        };
        let mut launch = Interrupted(
            command
                .arg("launch")
                .arg(launch)
                .args(["--set", &format!("prefix={prefix}"), "--set", &format!("port={port}")])
                .args(["--set", &format!("model={}", model.display())])
                .args(["--set", &format!("recording={}", recording.display())])
                .args(["--set", &format!("gateway={gateway}")])
                .args(["--set", &format!("credentials={}", credentials.display())])
                .env("REFLEX_LOG", "warn")
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .context("cannot start reflex launch")?,
        );
        // The launcher writes the credentials before it opens anything.
        let dictionary = credentials.join("dictionary");
        let waiting = Instant::now();
        while !dictionary.is_file() {
            let log = || std::fs::read_to_string(dir.join("stack.log")).unwrap_or_default();
            if let Ok(Some(status)) = launch.0.try_wait() {
                bail!("reflex launch ended ({status}) before it wrote credentials:\n{}", log());
            }
            if waiting.elapsed() > Duration::from_secs(30) {
                bail!("reflex launch wrote no credentials to {} in 30 s:\n{}", credentials.display(), log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let security = Security {
            user: "bench".into(),
            password_file: credentials.join("bench.password"),
            dictionary_file: dictionary,
            ..Default::default()
        };
        // A client of the launcher's router (it tries for 10 s, then fails naming the endpoint).
        let transport = TransportConfig {
            mode: Mode::Client,
            connect: vec![entry],
            prefix: prefix.clone(),
            security: Some(security),
            ..TransportConfig::default()
        };
        Ok(Self { launch, prefix, transport, recording, credentials })
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.credentials);
    }
}

fn drain<T: reflex_msgs::Message>(input: &mut Subscriber<T>) {
    while input.recv().is_some() {}
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

fn signal_node(session: &zenoh::Session, prefix: &str, name: &str, signal: i32) -> Result<()> {
    let (pid, _) =
        crate::introspect::node_pid(session, prefix, name)?.with_context(|| format!("{name} is not running"))?;
    // SAFETY: kill(2) on the pid of our own launch's node.
    if unsafe { libc::kill(pid as i32, signal) } != 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("signal {signal} to {name} (pid {pid})"));
    }
    Ok(())
}

/// Checks a finished row against what it expects; fills problems and the pass flag.
fn assess(result: &mut RowResult, cell: &CellResult, row: &Row, dir: &Path, recording: &Path, window: (i64, i64)) {
    let messages = reflex_recorder::read_messages(recording);
    if let (Fault::LinkCut, Ok((messages, _))) = (&row.fault, &messages) {
        // The bench heard nothing after the cut: the vehicle's recording tells when its monitor
        // engaged, and the brake unit's watchdog is what stopped the car.
        let (injected, end) = window;
        result.detection_ms = messages
            .iter()
            .filter(|m| m.topic == topics::SAFE_STOP)
            .filter(|m| (injected..=end).contains(&(m.publish_time_ns as i64)))
            .find(|m| reflex_msgs::decode::<SafeStop>(&m.data).is_ok_and(|s| s.engaged))
            .map(|m| (m.publish_time_ns as i64 - injected) as f64 / 1e6);
        result.safe_stop = result.detection_ms.is_some();
        result.reaction_ms = result.watchdog_ms;
    }
    result.impact = cell.impact;
    result.impact_speed_kmh = cell.impact_speed_kmh;
    result.min_gap_m = cell.min_gap_m;
    let log = std::fs::read_to_string(dir.join("stack.log")).unwrap_or_default();
    result.panics = log.lines().filter(|l| l.contains("panicked")).map(str::to_string).collect();
    if !result.panics.is_empty() {
        result.problems.push(format!("{} panic(s) in the stack's log", result.panics.len()));
    }
    match row.expect {
        Outcome::SafeStop(_) if !result.safe_stop => result.problems.push("no safe stop".into()),
        Outcome::SafeStop(_) if result.reaction_ms.is_none() => result.problems.push("no full braking".into()),
        Outcome::SafeStop(budget) if result.detection_ms.is_some_and(|d| d > budget) => {
            result.problems.push(format!("safe stop later than {budget} ms"))
        }
        Outcome::Nominal if result.safe_stop => result.problems.push("safe stop on a tolerable fault".into()),
        Outcome::Nominal if cell.braking_time_s.is_none() => result.problems.push("the AEB did not brake".into()),
        Outcome::Nominal if result.watchdog_ms.is_some() => {
            result.problems.push(format!("the brake unit's watchdog braked: no command for {ACTUATOR_TIMEOUT:?}"))
        }
        _ => {}
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

fn report(results: &[RowResult], args: &HilArgs) -> Result<String> {
    let mut out = format!(
        "# Hardware-in-the-loop fault matrix\n\nVehicle stack `{}` as processes; the simulator as the plant in real time \
         (rendered 640x480 frames at 30 fps through the OpenVINO detector, model `{}`); scenario: CCRs at {} km/h, \
         stationary car ahead from TTC 4 s; fault injected {} s in. Detection: fault → the monitor's first engaged \
         SafeStop; reaction: fault → the first full-braking command (publication times, one host; in the baseline \
         and other nominal rows that is the AEB's own full braking, from 1 s in). Everything is counted up to the \
         end of the cell (the ego at a standstill, or 8 s). The stack runs with access control on (the launcher \
         routes and checks every sender; the bench is the external user `bench`). The plant's brake unit brakes \
         at 6 m/s² by itself when no command came for {} ms (watchdog: fault → that braking). Link cut: the vehicle \
         in its own network namespace, the bench reaching it over a veth pair, every packet on the link dropped by \
         nftables; detection from the vehicle's own recording, reaction = the watchdog.\n\n\
         | row | expects | safe stop | detection | reaction | watchdog | impact km/h | min gap m | deadline misses | decode errors | recording | result |\n\
         |---|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|\n",
        args.launch.display(),
        args.model.display(),
        args.speed_kmh,
        args.fault_at_s,
        ACTUATOR_TIMEOUT.as_millis()
    );
    for r in results {
        let verdict = match (&r.skipped, r.passed) {
            (Some(why), _) => format!("skipped: {why}"),
            (None, true) => "pass".into(),
            (None, false) => format!("**FAIL**: {}", r.problems.join("; ")),
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {:.1} | {} | {} | {} | {} | {} |\n",
            r.name,
            r.expected,
            if r.safe_stop { "yes" } else { "no" },
            ms(r.detection_ms),
            ms(r.reaction_ms),
            ms(r.watchdog_ms),
            r.impact_speed_kmh,
            if r.min_gap_m.is_finite() { format!("{:.2}", r.min_gap_m) } else { "–".into() },
            r.deadline_misses,
            r.decode_errors,
            r.recording,
            verdict
        ));
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
        crate::plot::histogram(&png, "capture → command (baseline)", &baseline.end_to_end)?;
        out.push_str("\n![capture → command histogram](latency_end_to_end.png)\n");
        for (name, values) in &baseline.hops {
            let file = format!("latency_{}.png", slug(name));
            crate::plot::histogram(&args.out.join(&file), name, values)?;
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
    let stack = Stack::start(&launch, &model, &dir, "soak", None)?;
    let (prefix, recording) = (stack.prefix.clone(), stack.recording.clone());
    let node = Node::new(NodeOptions::new("soak-plant").transport(stack.transport.clone()))?;
    let observer = Node::new(NodeOptions::new("soak-observer").transport(stack.transport.clone()))?;
    let mut events =
        observer.subscriber::<MonitorEvent>(topics::MONITOR_EVENTS, InputOptions::default().capacity(8192))?;
    let mut plant = Plant::new(node, Perception::Rendered).map_err(|e| anyhow::anyhow!("{e}"))?;
    plant.actuator_timeout = Some(ACTUATOR_TIMEOUT);
    let config = RunConfig::default();
    plant.settle(&config, Duration::from_secs(1), Duration::from_secs(90)).map_err(|e| anyhow::anyhow!("{e}"))?;
    drain(&mut events);
    let mut pids: Vec<(String, u32)> = STACK
        .iter()
        .filter_map(|name| {
            crate::introspect::node_pid(plant.node().session(), &prefix, name)
                .ok()
                .flatten()
                .map(|(p, _)| (name.to_string(), p))
        })
        .collect();
    if pids.len() != STACK.len() {
        bail!("found {} of the {} stack processes: {pids:?}", pids.len(), STACK.len());
    }
    pids.push((LAUNCHER.into(), stack.launch.0.id()));
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
    let result = plant
        .run_cell_with(&cell, &config, |t, controls| {
            latencies.append(&mut controls.latencies_ns);
            (last_t, sent_total) = (t, controls.frames_sent);
            if t >= next_window {
                next_window += args.window_s;
                close_window(t, sent_total, &mut latencies);
            }
        })
        .map_err(|e| anyhow::anyhow!("{e}"))?;
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
