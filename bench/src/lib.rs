//! Benchmarks are programs, not timed tests: each measures Reflex and its baseline side by side
//! in the same run, between real processes, and prints a table (Markdown with `--markdown`).

pub mod deadline;
pub mod detector;
pub mod reaction;
pub mod record;
pub mod transport;

use anyhow::{Context, Result};
use reflex_launch::LineChild;
use std::process::Command;
use std::time::Duration;

/// This binary re-run as a helper process, its stdout read line by line. Killed on drop.
struct Helper(LineChild);

impl Helper {
    fn start(args: &[String]) -> Result<Self> {
        let exe = std::env::current_exe().context("cannot find the reflex executable")?;
        let mut command = Command::new(exe);
        command.args(args);
        Ok(Self(LineChild::spawn(command)?))
    }

    /// What follows `prefix` on the first line starting with it, within `timeout`.
    fn line(&mut self, prefix: &str, timeout: Duration) -> Result<String> {
        Ok(self.0.line(prefix, timeout)?[prefix.len()..].trim().to_string())
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
