//! Benchmarks are programs, not timed tests: each measures Reflex and its baseline side by side
//! in the same run, between real processes, and prints a table (Markdown with `--markdown`).

pub mod chain;
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

/// The CPU's model name and the vector extensions that matter for inference.
fn cpu() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        info.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    let flags = field("flags");
    let wanted = ["sse4_2", "avx", "avx2", "fma", "avx_vnni", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile"];
    let present: Vec<&str> = wanted.iter().copied().filter(|w| flags.split(' ').any(|f| f == *w)).collect();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    format!(
        "{}, {cores} cores; vector extensions: {}",
        field("model name"),
        if present.is_empty() { "unknown".into() } else { present.join(" ") }
    )
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
