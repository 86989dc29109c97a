//! Benchmarks are programs, not timed tests: each measures Reflex and its baseline side by side
//! in the same run, between real processes, and prints a table (Markdown with `--markdown`).

pub mod deadline;
pub mod detector;
pub mod reaction;
pub mod record;
pub mod transport;

use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

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
