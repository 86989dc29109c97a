//! Benchmarks are programs, not timed tests: each measures Reflex and its baseline side by side
//! in the same run, between real processes, and prints a table (Markdown with `--markdown`).

mod deadline;
mod detector;
mod hil;
mod netns;
mod reaction;
mod record;
mod transport;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// One-way latency between two processes: Reflex typed pub/sub vs raw zenoh, for payloads
    /// of 64 B, 4 KiB, 64 KiB and a 640x480 rgb8 image.
    Transport(transport::TransportArgs),
    /// Time from a missed input deadline to the breach event reaching another node.
    Deadline(deadline::DeadlineArgs),
    /// Time from a fault (killed or frozen node) to full braking at the arbiter's output.
    Reaction(reaction::ReactionArgs),
    /// Detector time per frame (queue to publish) against OpenVINO's benchmark_app on the same
    /// model and hint, and the frame rate sustained from a 640x480 source.
    Detector(detector::DetectorArgs),
    /// The hardware-in-the-loop fault matrix: the vehicle stack as processes, the simulator as
    /// the plant in real time, one braking scenario per fault; writes a Markdown report.
    Hil(hil::HilArgs),
    /// A long steady drive of the HIL vehicle stack against the plant: latency, memory and drops
    /// per window (the soak run).
    Soak(hil::SoakArgs),
    /// Recorder throughput: a 640x480 rgb8 stream at 30 fps into `reflex record`, zstd and none.
    Record(record::RecordBenchArgs),
    /// (internal) The receiving process of `bench transport`.
    #[command(hide = true)]
    TransportSink(transport::SinkArgs),
    /// (internal) The publishing process of `bench deadline`.
    #[command(hide = true)]
    DeadlinePeer(deadline::PeerArgs),
    #[command(hide = true)]
    HilTraffic(hil::TrafficArgs),
}

pub fn run(command: BenchCommand) -> Result<()> {
    match command {
        BenchCommand::Transport(args) => transport::run(args),
        BenchCommand::Deadline(args) => deadline::run(args),
        BenchCommand::Reaction(args) => reaction::run(args),
        BenchCommand::Detector(args) => detector::run(args),
        BenchCommand::Record(args) => record::run(args),
        BenchCommand::Hil(args) => hil::run(args),
        BenchCommand::Soak(args) => hil::soak(args),
        BenchCommand::TransportSink(args) => transport::sink(args),
        BenchCommand::DeadlinePeer(args) => deadline::peer(args),
        BenchCommand::HilTraffic(args) => hil::traffic(args),
    }
}

/// A relative path as given when it exists, else under the nearest ancestor of the working
/// directory or of the executable that has it (fixtures found from anywhere in a checkout).
pub(crate) fn find_in_ancestors(path: &std::path::Path) -> std::path::PathBuf {
    if path.is_absolute() || path.exists() {
        return path.to_path_buf();
    }
    let cwd = std::env::current_dir().ok();
    let exe = std::env::current_exe().ok();
    cwd.iter()
        .flat_map(|d| d.ancestors())
        .chain(exe.iter().flat_map(|e| e.ancestors().skip(1)))
        .map(|root| root.join(path))
        .find(|candidate| candidate.exists())
        .unwrap_or_else(|| path.to_path_buf())
}

/// A child process that is asked to stop (SIGINT: it finishes its work, a launch stops its
/// nodes) when dropped, and killed if it has not exited 5 s later.
pub(crate) struct Interrupted(pub(crate) std::process::Child);

impl Drop for Interrupted {
    fn drop(&mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGINT) };
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < deadline && matches!(self.0.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free TCP port on loopback for this run's rendezvous, so concurrent runs stay apart.
fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("no free loopback port")?;
    Ok(listener.local_addr()?.port())
}

/// This binary re-run as a helper process, its stdout read line by line. Killed on drop.
struct Helper {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Helper {
    fn start(args: &[String]) -> Result<Self> {
        let exe = std::env::current_exe().context("cannot find the reflex executable")?;
        let mut child = Command::new(exe)
            .args(args)
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .context("cannot start the helper process")?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Self { child, lines })
    }

    /// The first line starting with `prefix`, within `timeout`.
    fn line(&mut self, prefix: &str, timeout: Duration) -> Result<String> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return Ok(line[prefix.len()..].trim().to_string()),
                Ok(_) => continue,
                Err(_) => {
                    let status = self.child.try_wait().ok().flatten();
                    bail!("helper process gave no {prefix:?} line within {timeout:?} (exit status: {status:?})")
                }
            }
        }
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Microseconds with one decimal.
fn us(ns: u64) -> String {
    format!("{:.1}", ns as f64 / 1e3)
}

/// Writes `table` to `path` if given (for docs/benchmarks.md), always prints it.
fn emit(table: &str, path: Option<&std::path::Path>) -> Result<()> {
    println!("{table}");
    if let Some(path) = path {
        std::fs::write(path, table).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("table written to {}", path.display());
    }
    Ok(())
}
