//! `reflex bench reaction`: from a fault to full braking at the arbiter's output, with the
//! real processes of the vehicle chain under `reflex launch`: camera (test pattern), OpenVINO
//! detector, AEB, monitor and arbiter.
//!
//! Faults, each repeated `--trials` times:
//! - **camera killed** / **detector killed**: `kill -9`; measured from the kill (the monitor
//!   sees the liveliness token go).
//! - **camera frozen**: `SIGSTOP` (the process lives, its token stays, only its frames stop);
//!   measured from the deadline expiry (last frame + deadline): no monitor can know earlier.
//! - **detector delayed**: every inference made `--delay-ms` longer through the run-time fault
//!   key (beyond its budget and the detections deadline); measured from the detections
//!   deadline expiry.
//!
//! After each trial the node is resumed, restarted (restart policy `always`) or its fault
//! cleared, and the system must return to nominal before the next trial.

use crate::{emit, us};
use anyhow::{bail, Result};
use reflex_launch::{free_port, LaunchHandle};
use reflex_msgs::reflex_msgs::BrakeRequest;
use reflex_msgs::sensor_msgs::ImageView;
use reflex_msgs::vision_msgs::Detection2DArray;
use reflex_runtime::fault::FaultCommand;
use reflex_runtime::{InputOptions, LatencyHistogram, Node, NodeOptions, OverflowPolicy, TransportConfig};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct ReactionArgs {
    /// Trials per fault kind.
    #[arg(long, default_value_t = 20)]
    trials: usize,
    /// Deadline the monitor watches on the camera stream, ms.
    #[arg(long, default_value_t = 100.0)]
    deadline_ms: f64,
    /// Deadline the monitor watches on the detections, ms.
    #[arg(long, default_value_t = 200.0)]
    detections_deadline_ms: f64,
    /// Injected inference delay of the "detector delayed" fault, ms.
    #[arg(long, default_value_t = 600.0)]
    delay_ms: f64,
    /// Also write the table (Markdown) to this file.
    #[arg(long)]
    markdown: Option<PathBuf>,
}

pub fn run(args: ReactionArgs) -> Result<()> {
    let port = free_port()?;
    let prefix = format!("reaction{port}");
    let file = std::env::temp_dir().join(format!("reflex-reaction-{port}.yaml"));
    let restart = "restart: {policy: always, max_restarts: 1000, backoff_ms: 50, backoff_max_ms: 50}";
    std::fs::write(
        &file,
        format!(
            "zenoh: {{prefix: {prefix}, rendezvous_port: {port}}}\n\
             fault_injection: {{users: []}}\n\
             nodes:\n\
             \x20 - name: camera\n    kind: test-pattern\n    params: {{fps: 30, width: 320, height: 240}}\n    required: false\n    {restart}\n\
             \x20 - name: detector\n    kind: detector\n    params: {{budget_ms: 100}}\n    required: false\n    {restart}\n\
             \x20 - name: aeb\n    kind: aeb\n\
             \x20 - name: monitor\n    kind: monitor\n    params:\n      required_nodes: [camera, detector]\n      \
             watch: [{{topic: /camera/image, deadline_ms: {}}}, {{topic: /perception/detections, deadline_ms: {}}}]\n      \
             startup_grace_s: 5\n      supervisor: {{stable_period_s: 0.3, release: stable_period}}\n\
             \x20 - name: arbiter\n    kind: arbiter\n",
            args.deadline_ms, args.detections_deadline_ms
        ),
    )?;
    let _launch = LaunchHandle::start(&std::env::current_exe()?, &file, Duration::from_secs(5), |command| {
        command.env("REFLEX_LOG", "error").stdout(Stdio::null()).stderr(Stdio::null());
    })?;
    let transport = TransportConfig { prefix: prefix.clone(), ..TransportConfig::loopback(port) };
    let observer = Node::new(NodeOptions::new("bench-observer").transport(transport))?;
    let clock = observer.clock().clone();
    let mut commands =
        observer.subscriber::<BrakeRequest>("/vehicle/brake_command", InputOptions::default().capacity(1024))?;
    let latest = InputOptions::default().capacity(1).policy(OverflowPolicy::DropOldest);
    let mut images = observer.subscriber::<reflex_msgs::sensor_msgs::Image>("/camera/image", latest)?;
    let mut detections = observer.subscriber::<Detection2DArray>("/perception/detections", latest)?;

    // Waits for the arbiter's command to reach `level`; returns when it was seen.
    let mut wait_command = |level: u8, timeout: Duration, last: &mut (i64, i64)| -> Result<i64> {
        let start = Instant::now();
        loop {
            observer.wait_for_input(Duration::from_millis(2));
            while let Some(Ok(frame)) = images.recv_view::<ImageView>() {
                last.0 = frame.source_timestamp_ns.unwrap_or(0).max(last.0);
            }
            while let Some(found) = detections.recv() {
                last.1 = found.source_timestamp_ns.unwrap_or(0).max(last.1);
            }
            while let Some(command) = commands.recv() {
                if command.message.level == level {
                    return Ok(clock.now_ns());
                }
            }
            if start.elapsed() > timeout {
                bail!("no command of level {level} within {timeout:?}");
            }
        }
    };
    let find_node = |observer: &Node, wanted: &str| -> Result<Option<i32>> {
        Ok(observer.system().find_local_node_pid(wanted)?.map(|pid| pid as i32))
    };
    // A node's pid from its liveliness token, waiting up to 20 s for it to (re)appear.
    let pid_of = |observer: &Node, name: &str| -> Result<i32> {
        let since = Instant::now();
        loop {
            if let Some(pid) = find_node(observer, name)? {
                return Ok(pid);
            }
            if since.elapsed() > Duration::from_secs(20) {
                bail!("{name} is not running");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let system = observer.system();
    let inject = |command: FaultCommand| -> Result<()> { Ok(system.send_fault("detector", &command)?) };

    // Up means: every node runs and the arbiter commands no braking past its start-up grace.
    eprintln!("waiting for the system to come up and settle");
    pid_of(&observer, "camera")?;
    pid_of(&observer, "detector")?;
    // Last arrival (the publisher's send time) of a frame and of a detections message.
    let mut last = (0i64, 0i64);
    std::thread::sleep(Duration::from_secs(3));
    wait_command(BrakeRequest::LEVEL_NONE, Duration::from_secs(60), &mut last)?;
    let faults = [
        "camera process killed (kill -9)",
        "camera frozen (SIGSTOP)",
        "detector process killed (kill -9)",
        "detector delayed",
    ];
    let mut histograms: Vec<LatencyHistogram> = faults.iter().map(|_| LatencyHistogram::new()).collect();
    let started = Instant::now();
    for trial in 0..args.trials {
        for (fault, histogram) in histograms.iter_mut().enumerate() {
            let reaction_ns = match fault {
                0 | 2 => {
                    let pid = pid_of(&observer, if fault == 0 { "camera" } else { "detector" })?;
                    let killed_ns = clock.now_ns();
                    // SAFETY: signalling a process of our own launch.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    wait_command(BrakeRequest::LEVEL_FULL, Duration::from_secs(5), &mut last)? - killed_ns
                }
                1 => {
                    let pid = pid_of(&observer, "camera")?;
                    // SAFETY: as above; SIGCONT follows whatever happens.
                    unsafe { libc::kill(pid, libc::SIGSTOP) };
                    let braking = wait_command(BrakeRequest::LEVEL_FULL, Duration::from_secs(5), &mut last);
                    // SAFETY: as above.
                    unsafe { libc::kill(pid, libc::SIGCONT) };
                    braking? - (last.0 + (args.deadline_ms * 1e6) as i64)
                }
                _ => {
                    inject(FaultCommand { stall_ms: Some(args.delay_ms), ..Default::default() })?;
                    let braking = wait_command(BrakeRequest::LEVEL_FULL, Duration::from_secs(5), &mut last);
                    inject(FaultCommand::default())?;
                    braking? - (last.1 + (args.detections_deadline_ms * 1e6) as i64)
                }
            };
            histogram.record_ns(reaction_ns);
            wait_command(BrakeRequest::LEVEL_NONE, Duration::from_secs(60), &mut last)?;
            // back to nominal
        }
        eprint!("\rtrial {}/{} ({:.0} s)", trial + 1, args.trials, started.elapsed().as_secs_f64());
    }
    eprintln!();
    let mut table = format!(
        "Fault to full braking at the arbiter's output; camera (30 fps) + OpenVINO detector + AEB + monitor + \
         arbiter as processes under `reflex launch`, {} trials per fault; deadlines: camera {} ms, detections {} ms; µs:\n\n",
        args.trials, args.deadline_ms, args.detections_deadline_ms
    );
    table.push_str("| fault | measured from | n | p50 | p99 | max |\n|---|---|---:|---:|---:|---:|\n");
    let from = ["the kill", "the deadline expiry", "the kill", "the detections deadline expiry"];
    for ((fault, from), histogram) in faults.iter().zip(from).zip(&histograms) {
        let fault = if fault.ends_with("delayed") {
            format!("{fault} {} ms per frame", args.delay_ms)
        } else {
            fault.to_string()
        };
        table.push_str(&format!(
            "| {fault} | {from} | {} | {} | {} | {} |\n",
            histogram.count(),
            us(histogram.quantile_ns(0.5)),
            us(histogram.quantile_ns(0.99)),
            us(histogram.max_ns())
        ));
    }
    let _ = std::fs::remove_file(&file);
    emit(&table, args.markdown.as_deref())
}
