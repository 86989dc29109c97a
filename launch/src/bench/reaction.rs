//! `reflex bench reaction`: from a fault to full braking at the arbiter's output, with the
//! real processes of a launch (camera, monitor, arbiter under `reflex launch`).
//!
//! Faults, each repeated `--trials` times:
//! - **kill**: `kill -9` of the camera process; measured from the kill.
//! - **freeze**: `SIGSTOP` of the camera (the process lives, its liveliness token stays, only
//!   its frames stop); measured from the deadline expiry (last frame + deadline), since no
//!   monitor can know earlier.
//! After each trial the camera is resumed or restarted (restart policy `always`) and the
//! system must return to nominal before the next one.

use super::{emit, free_port, us};
use anyhow::{bail, Context, Result};
use reflex_msgs::reflex_msgs::BrakeRequest;
use reflex_msgs::sensor_msgs::ImageView;
use reflex_runtime::keys;
use reflex_runtime::{InputOptions, LatencyHistogram, Node, NodeOptions, OverflowPolicy, TransportConfig};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use zenoh::Wait;

#[derive(clap::Args)]
pub struct ReactionArgs {
    /// Trials per fault kind.
    #[arg(long, default_value_t = 20)]
    trials: usize,
    /// Deadline the monitor watches on the camera stream, ms.
    #[arg(long, default_value_t = 100.0)]
    deadline_ms: f64,
    /// Also write the table (Markdown) to this file.
    #[arg(long)]
    markdown: Option<PathBuf>,
}

struct LaunchProcess(Child);

impl Drop for LaunchProcess {
    fn drop(&mut self) {
        // SAFETY: signalling our own child; SIGINT lets it stop its nodes.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && matches!(self.0.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn run(args: ReactionArgs) -> Result<()> {
    let port = free_port()?;
    let prefix = format!("reaction{port}");
    let file = std::env::temp_dir().join(format!("reflex-reaction-{port}.yaml"));
    std::fs::write(
        &file,
        format!(
            "zenoh: {{prefix: {prefix}, rendezvous_port: {port}}}\n\
             nodes:\n\
             \x20 - name: camera\n    kind: test-pattern\n    params: {{fps: 30, width: 320, height: 240}}\n    required: false\n    restart: {{policy: always, max_restarts: 1000, backoff_ms: 50, backoff_max_ms: 50}}\n\
             \x20 - name: monitor\n    kind: monitor\n    params:\n      required_nodes: [camera]\n      watch: [{{topic: /camera/image, deadline_ms: {}}}]\n      startup_grace_s: 3\n      supervisor: {{stable_period_s: 0.3}}\n\
             \x20 - name: arbiter\n    kind: arbiter\n",
            args.deadline_ms
        ),
    )?;
    let exe = std::env::current_exe()?;
    let _launch = LaunchProcess(
        Command::new(exe)
            .arg("launch")
            .arg(&file)
            .env("REFLEX_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start reflex launch")?,
    );
    let transport = TransportConfig { prefix: prefix.clone(), ..TransportConfig::loopback(port) };
    let observer = Node::new(NodeOptions::new("bench-observer").transport(transport))?;
    let clock = observer.clock().clone();
    let mut commands =
        observer.subscriber::<BrakeRequest>("/vehicle/brake_command", InputOptions::default().capacity(1024))?;
    let latest = InputOptions::default().capacity(1).policy(OverflowPolicy::DropOldest);
    let mut images = observer.subscriber::<reflex_msgs::sensor_msgs::Image>("/camera/image", latest)?;

    let mut last_frame_ns = 0i64;
    // Waits for the command to be `level` (and `reason`, if given); returns when it was seen.
    let mut wait_command = |level: u8, timeout: Duration, last_frame_ns: &mut i64| -> Result<i64> {
        let start = Instant::now();
        loop {
            observer.wait_for_input(Duration::from_millis(2));
            while let Some(Ok(frame)) = images.recv_view::<ImageView>() {
                *last_frame_ns = frame.source_timestamp_ns.unwrap_or(0).max(*last_frame_ns);
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
    eprintln!("waiting for the system to come up and settle");
    let find_camera = |observer: &Node| -> Result<Option<i32>> {
        let replies = observer
            .session()
            .liveliness()
            .get(keys::all_nodes(&prefix))
            .timeout(Duration::from_millis(500))
            .wait()
            .map_err(anyhow::Error::msg)?;
        while let Ok(reply) = replies.recv() {
            if let Ok(sample) = reply.result() {
                if let Some((name, _, pid)) = keys::parse_liveliness_token(&prefix, sample.key_expr().as_str()) {
                    if name == "camera" {
                        return Ok(Some(pid as i32));
                    }
                }
            }
        }
        Ok(None)
    };
    // The camera's pid from its liveliness token, waiting up to 10 s for it to (re)appear.
    let camera_pid = |observer: &Node| -> Result<i32> {
        let since = Instant::now();
        loop {
            if let Some(pid) = find_camera(observer)? {
                return Ok(pid);
            }
            if since.elapsed() > Duration::from_secs(10) {
                bail!("the camera is not running");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };

    // Up means: the camera runs and the arbiter commands no braking past its start-up grace
    // (during which it also commands none, supervisor or not).
    camera_pid(&observer)?;
    std::thread::sleep(Duration::from_secs(3));
    wait_command(BrakeRequest::LEVEL_NONE, Duration::from_secs(30), &mut last_frame_ns)?;
    let (mut kill, mut freeze) = (LatencyHistogram::new(), LatencyHistogram::new());
    let started = Instant::now();
    for trial in 0..args.trials {
        // kill -9: from the kill to full braking.
        let pid = camera_pid(&observer)?;
        let killed_ns = clock.now_ns();
        // SAFETY: signalling the camera process of our own launch.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let braking = wait_command(BrakeRequest::LEVEL_FULL, Duration::from_secs(5), &mut last_frame_ns)?;
        kill.record_ns(braking - killed_ns);
        wait_command(BrakeRequest::LEVEL_NONE, Duration::from_secs(30), &mut last_frame_ns)?; // restarted, recovered

        // SIGSTOP: from the deadline expiry to full braking.
        let pid = camera_pid(&observer)?;
        // SAFETY: as above; SIGCONT follows.
        unsafe { libc::kill(pid, libc::SIGSTOP) };
        let braking = wait_command(BrakeRequest::LEVEL_FULL, Duration::from_secs(5), &mut last_frame_ns);
        // SAFETY: resume it whatever happened.
        unsafe { libc::kill(pid, libc::SIGCONT) };
        let expiry = last_frame_ns + (args.deadline_ms * 1e6) as i64;
        freeze.record_ns(braking? - expiry);
        wait_command(BrakeRequest::LEVEL_NONE, Duration::from_secs(30), &mut last_frame_ns)?;
        eprint!("\rtrial {}/{} ({:.0} s)", trial + 1, args.trials, started.elapsed().as_secs_f64());
    }
    eprintln!();
    let mut table = format!(
        "Fault to full braking at the arbiter's output, camera + monitor + arbiter as processes under `reflex launch`, {} trials per fault, camera deadline {} ms; µs:\n\n",
        args.trials, args.deadline_ms
    );
    table.push_str("| fault | measured from | n | p50 | p99 | max |\n|---|---|---:|---:|---:|---:|\n");
    for (fault, from, histogram) in [
        ("camera process killed (kill -9)", "the kill", &kill),
        ("camera frozen (SIGSTOP)", "the deadline expiry", &freeze),
    ] {
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
