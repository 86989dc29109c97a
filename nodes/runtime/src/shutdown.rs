//! A stop signal that `run` functions take as an argument: set by SIGINT/SIGTERM in binaries,
//! by the test itself in tests.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    requested: Arc<AtomicBool>,
}

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }

    /// A signal that SIGINT and SIGTERM set. Registering twice is harmless.
    pub fn on_signals() -> std::io::Result<Self> {
        let shutdown = Self::new();
        for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register(signal, shutdown.requested.clone())?;
        }
        Ok(shutdown)
    }

    pub fn request(&self) {
        // Release/Acquire: whatever the requester did before asking is visible to the loop
        // that sees the request.
        self.requested.store(true, Ordering::Release);
    }

    pub fn is_requested(&self) -> bool {
        self.requested.load(Ordering::Acquire)
    }
}
