//! `tracing` set-up shared by every binary: `RUST_LOG`-style filter from `REFLEX_LOG` (or
//! `RUST_LOG`), human-readable or JSON lines on stderr.

use tracing_subscriber::{fmt, EnvFilter};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

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
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
