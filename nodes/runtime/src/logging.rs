//! `tracing` set-up shared by every binary: `RUST_LOG`-style filter from `REFLEX_LOG` (or
//! `RUST_LOG`), human-readable or JSON lines on stderr.
//!
//! Logging never blocks the thread that logs (M9 of the safety review): a node's stderr is a
//! pipe to its launcher, and a stalled launcher, a terminal held with Ctrl-S or a slow log sink
//! would otherwise stop the monitor's loop at its next line. Each line goes into a bounded
//! queue that one writer thread empties into stderr; when the queue is full the line is
//! dropped and counted, and the count is written once the queue has room again.

use std::io::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};
use tracing_subscriber::{fmt, EnvFilter};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

/// Lines waiting for the writer thread at most.
const QUEUE_LINES: usize = 4096;

/// Installs the global subscriber; a second call (or one in a test harness) is a no-op.
/// zenoh's own chatter is kept at `warn` (and the rendezvous listener's retries, which are
/// expected while another process holds the port, at `error`) unless the filter names it.
pub fn init_tracing(format: LogFormat) {
    let filter = std::env::var("REFLEX_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info,zenoh=warn,zenoh_transport=error,zenoh::net::runtime::orchestrator=error".into());
    let filter = EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a terminal; a launcher that shows a child's output on one sets
    // REFLEX_LOG_COLOR=1 for it.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr()) || std::env::var_os("REFLEX_LOG_COLOR").is_some();
    let builder = fmt().with_env_filter(filter).with_writer(NonBlocking::get).with_ansi(ansi);
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// The writing side handed to the formatter: one `write` per formatted line.
#[derive(Clone)]
pub struct NonBlocking {
    queue: SyncSender<Vec<u8>>,
    dropped: Arc<AtomicU64>,
    /// Lines queued and not written yet.
    pending: Arc<AtomicUsize>,
}

/// Waits (at most `limit`) until the lines logged so far are written: call before exiting.
pub fn flush_logs(limit: std::time::Duration) {
    let writer = NonBlocking::get();
    let start = std::time::Instant::now();
    while writer.pending.load(Ordering::Acquire) > 0 && start.elapsed() < limit {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

impl NonBlocking {
    fn get() -> Self {
        static WRITER: OnceLock<NonBlocking> = OnceLock::new();
        WRITER.get_or_init(|| Self::start(std::io::stderr())).clone()
    }

    /// A queue in front of `sink`, emptied by its own thread.
    pub fn start(mut sink: impl Write + Send + 'static) -> Self {
        let (queue, lines) = sync_channel::<Vec<u8>>(QUEUE_LINES);
        let dropped = Arc::new(AtomicU64::new(0));
        let pending = Arc::new(AtomicUsize::new(0));
        let (seen, written) = (dropped.clone(), pending.clone());
        let spawned = std::thread::Builder::new().name("log-writer".into()).spawn(move || {
            let mut reported = 0;
            while let Ok(line) = lines.recv() {
                let lost = seen.load(Ordering::Relaxed);
                if lost > reported {
                    let _ = writeln!(sink, "[{} log line(s) dropped: the log sink was too slow]", lost - reported);
                    reported = lost;
                }
                let _ = sink.write_all(&line);
                written.fetch_sub(1, Ordering::AcqRel);
            }
        });
        if let Err(error) = spawned {
            // Said once, directly: every line after this is dropped and counted.
            eprintln!("the log writer thread cannot start ({error}): log lines are dropped");
        }
        Self { queue, dropped, pending }
    }

    /// Lines dropped so far because the queue was full.
    #[cfg(test)]
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl Write for NonBlocking {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.pending.fetch_add(1, Ordering::AcqRel);
        match self.queue.try_send(bytes.to_vec()) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.pending.fetch_sub(1, Ordering::AcqRel);
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// A sink that blocks for ever (a pipe nobody reads).
    struct Stuck;

    impl Write for Stuck {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            std::thread::sleep(Duration::from_secs(3600));
            Ok(0)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// M9: with the sink stuck, logging 10,000 lines takes no time and drops (and counts) the rest.
    #[test]
    fn a_stuck_sink_never_blocks_the_logging_thread() {
        let mut writer = NonBlocking::start(Stuck);
        let start = Instant::now();
        for k in 0..10_000 {
            writer.write_all(format!("line {k}\n").as_bytes()).unwrap();
        }
        assert!(start.elapsed() < Duration::from_secs(1), "{:?}", start.elapsed());
        assert!(writer.dropped() >= 10_000 - QUEUE_LINES as u64 - 1, "{}", writer.dropped());
    }
}
