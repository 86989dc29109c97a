//! Faults injected into a running node over zenoh, for benches and hardware-in-the-loop tests.
//!
//! Every node listens on `<prefix>/_fault/<node>` (see [`crate::keys::fault_key`]) for a JSON
//! object; each field present replaces the current setting, `{}` or `{"clear": true}` clears all:
//!
//! ```json
//! {"delay_ms": 300}
//! ```
//!
//! - `delay_ms`: nodes that do per-message work (the detector) wait this long inside their
//!   budgeted callback, as a stalled inference would.
//!
//! Each change is logged at `warn` and reported as a monitor event, so an injected fault is
//! never mistaken for a real one afterwards.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[derive(Debug, Default)]
pub struct Faults {
    delay_us: AtomicU64,
}

#[derive(Debug, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultCommand {
    #[serde(default)]
    pub delay_ms: Option<f64>,
    #[serde(default)]
    pub clear: bool,
}

impl Faults {
    /// The injected per-message delay (zero when none).
    pub fn delay(&self) -> Duration {
        Duration::from_micros(self.delay_us.load(Ordering::Relaxed))
    }

    /// Applies a command; returns a description of the new settings.
    pub fn apply(&self, command: &FaultCommand) -> Result<String, String> {
        if command.clear || *command == FaultCommand::default() {
            self.delay_us.store(0, Ordering::Relaxed);
            return Ok("faults cleared".into());
        }
        if let Some(delay) = command.delay_ms {
            if !(0.0..=60_000.0).contains(&delay) {
                return Err(format!("delay_ms {delay} is outside 0..=60000"));
            }
            self.delay_us.store((delay * 1e3) as u64, Ordering::Relaxed);
        }
        Ok(format!("delay_ms = {}", self.delay().as_secs_f64() * 1e3))
    }

    /// Parses and applies a JSON payload.
    pub fn apply_json(&self, payload: &[u8]) -> Result<String, String> {
        let command: FaultCommand = serde_json::from_slice(payload).map_err(|e| format!("bad fault command: {e}"))?;
        self.apply(&command)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_set_and_clear() {
        let faults = Faults::default();
        assert_eq!(faults.delay(), Duration::ZERO);
        assert_eq!(faults.apply_json(br#"{"delay_ms": 250}"#).unwrap(), "delay_ms = 250");
        assert_eq!(faults.delay(), Duration::from_millis(250));
        assert!(faults.apply_json(br#"{"delay_ms": -1}"#).unwrap_err().contains("outside"));
        assert!(faults.apply_json(br#"{"dleay_ms": 5}"#).unwrap_err().contains("unknown field"));
        assert!(faults.apply_json(b"garbage").is_err());
        assert_eq!(faults.delay(), Duration::from_millis(250), "bad commands change nothing");
        assert_eq!(faults.apply_json(b"{}").unwrap(), "faults cleared");
        assert_eq!(faults.delay(), Duration::ZERO);
    }
}
