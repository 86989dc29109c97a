//! Faults injected into a running node, for benches and hardware-in-the-loop tests: set at
//! start from the launch file (a node's `faults:` and an input's `fault:`), or at run time over
//! zenoh: every node listens on `<prefix>/_fault/<node>` (see [`crate::keys::fault_key`]) for a
//! JSON object (`reflex fault NODE ...` sends one):
//!
//! ```json
//! {"input": "/camera/image", "drop_pct": 30, "delay_ms": 50, "freeze": false, "corrupt_pct": 5}
//! {"stall_ms": 300}
//! {"clear": true}
//! ```
//!
//! Per input (`input` names its topic; without it, every input of the node):
//! - `drop_pct`: that share of arriving messages is discarded before the node sees it (the
//!   publisher's sequence then shows the gap: the node counts them as lost, as on a bad link);
//! - `delay_ms`: each message is held this long after arrival before the node may take it;
//! - `freeze`: the last message before the freeze is delivered again in place of every new one
//!   (a frozen camera: same pixels, same stamp);
//! - `corrupt_pct`: that share of messages has bytes flipped (the decoder must reject or
//!   tolerate them; nothing may panic).
//!
//! Per node: `stall_ms`: nodes that do per-message work (the detector, reflex functions) stall
//! this long inside their budgeted callback, as a hung inference would.
//!
//! Each field present replaces that setting; `{}` or `{"clear": true}` clears everything. Each
//! change is logged at `warn` and reported as a monitor event (`KIND_FAULT_INJECTED`), so an
//! injected fault is never mistaken for a real one afterwards.

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One fault command.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultCommand {
    /// The input (topic) the input faults apply to; `None`: every input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop_pct: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freeze: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrupt_pct: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stall_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub clear: bool,
}

impl FaultCommand {
    fn is_clear(&self) -> bool {
        self.clear || *self == Self::default()
    }

    /// Checks ranges; names the field.
    pub fn validate(&self) -> Result<(), String> {
        let pct = |name: &str, value: Option<f64>| match value {
            Some(v) if !(0.0..=100.0).contains(&v) => Err(format!("{name} {v} is outside 0..=100")),
            _ => Ok(()),
        };
        let ms = |name: &str, value: Option<f64>| match value {
            Some(v) if !(0.0..=60_000.0).contains(&v) => Err(format!("{name} {v} is outside 0..=60000")),
            _ => Ok(()),
        };
        pct("drop_pct", self.drop_pct)?;
        pct("corrupt_pct", self.corrupt_pct)?;
        ms("delay_ms", self.delay_ms)?;
        ms("stall_ms", self.stall_ms)?;
        if self.input.as_deref().is_some_and(|t| !t.starts_with('/')) {
            return Err(format!("input {:?} must be a topic starting with '/'", self.input.as_deref().unwrap_or("")));
        }
        Ok(())
    }

    fn has_input_fields(&self) -> bool {
        self.drop_pct.is_some() || self.delay_ms.is_some() || self.freeze.is_some() || self.corrupt_pct.is_some()
    }
}

/// The input faults' settings, in the units the hot path uses.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct InputSettings {
    drop_ppm: u32,
    corrupt_ppm: u32,
    delay_us: u64,
    freeze: bool,
}

impl InputSettings {
    fn update(&mut self, command: &FaultCommand) {
        let ppm = |pct: f64| (pct * 10_000.0).round() as u32;
        if let Some(v) = command.drop_pct {
            self.drop_ppm = ppm(v);
        }
        if let Some(v) = command.corrupt_pct {
            self.corrupt_ppm = ppm(v);
        }
        if let Some(v) = command.delay_ms {
            self.delay_us = (v * 1e3).round() as u64;
        }
        if let Some(v) = command.freeze {
            self.freeze = v;
        }
    }

    fn describe(&self) -> String {
        format!(
            "drop {}%, delay {} ms, freeze {}, corrupt {}%",
            f64::from(self.drop_ppm) / 1e4,
            self.delay_us as f64 / 1e3,
            self.freeze,
            f64::from(self.corrupt_ppm) / 1e4
        )
    }
}

/// The faults of one input, read by its network callback and its subscriber.
#[derive(Debug)]
pub struct InputFault {
    topic: String,
    active: AtomicBool,
    drop_ppm: AtomicU32,
    corrupt_ppm: AtomicU32,
    delay_us: AtomicU64,
    freeze: AtomicBool,
    rng: AtomicU64,
    /// The message a freeze repeats.
    frozen: Mutex<Option<Vec<u8>>>,
    /// Messages discarded, corrupted and repeated by injection.
    pub dropped: AtomicU64,
    pub corrupted: AtomicU64,
    pub repeated: AtomicU64,
}

/// What the network callback does with an arriving message.
pub enum Verdict {
    Drop,
    /// Deliver, with these bytes instead of the payload when `Some`.
    Deliver(Option<Vec<u8>>),
}

impl InputFault {
    fn new(topic: &str, settings: InputSettings) -> Self {
        let seed =
            topic.bytes().fold(0x9E37_79B9_7F4A_7C15u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3));
        let fault = Self {
            topic: topic.to_string(),
            active: AtomicBool::new(false),
            drop_ppm: AtomicU32::new(0),
            corrupt_ppm: AtomicU32::new(0),
            delay_us: AtomicU64::new(0),
            freeze: AtomicBool::new(false),
            rng: AtomicU64::new(seed | 1),
            frozen: Mutex::new(None),
            dropped: AtomicU64::new(0),
            corrupted: AtomicU64::new(0),
            repeated: AtomicU64::new(0),
        };
        fault.set(settings);
        fault
    }

    fn set(&self, s: InputSettings) {
        self.drop_ppm.store(s.drop_ppm, Ordering::Relaxed);
        self.corrupt_ppm.store(s.corrupt_ppm, Ordering::Relaxed);
        self.delay_us.store(s.delay_us, Ordering::Relaxed);
        if !s.freeze {
            *self.frozen.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
        self.freeze.store(s.freeze, Ordering::Relaxed);
        self.active.store(s != InputSettings::default(), Ordering::Release);
    }

    /// Whether any fault is set (the callback's fast path checks only this).
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    /// How long a message is held after arrival.
    pub fn delay(&self) -> Duration {
        Duration::from_micros(self.delay_us.load(Ordering::Relaxed))
    }

    /// xorshift64*: cheap, lock-free, good enough to pick messages.
    fn next(&self) -> u64 {
        let mut x = self.rng.load(Ordering::Relaxed);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng.store(x, Ordering::Relaxed);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn chance(&self, ppm: u32) -> bool {
        ppm > 0 && (self.next() % 1_000_000) < u64::from(ppm)
    }

    /// Decides an arriving message's fate. `payload` gives its bytes when a copy is needed.
    pub fn on_arrival(&self, payload: impl Fn() -> Vec<u8>) -> Verdict {
        if self.chance(self.drop_ppm.load(Ordering::Relaxed)) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return Verdict::Drop;
        }
        let mut bytes = None;
        if self.freeze.load(Ordering::Relaxed) {
            let mut frozen = self.frozen.lock().unwrap_or_else(|p| p.into_inner());
            match frozen.as_ref() {
                Some(last) => {
                    self.repeated.fetch_add(1, Ordering::Relaxed);
                    bytes = Some(last.clone());
                }
                None => {
                    let copy = payload();
                    *frozen = Some(copy.clone());
                    bytes = Some(copy);
                }
            }
        }
        if self.chance(self.corrupt_ppm.load(Ordering::Relaxed)) {
            let mut copy = bytes.unwrap_or_else(&payload);
            if !copy.is_empty() {
                // A few bytes flipped anywhere, the header and lengths included.
                let flips = (copy.len() / 64).clamp(1, 16);
                for _ in 0..flips {
                    let at = (self.next() % copy.len() as u64) as usize;
                    copy[at] ^= (self.next() % 255 + 1) as u8;
                }
            }
            self.corrupted.fetch_add(1, Ordering::Relaxed);
            bytes = Some(copy);
        }
        Verdict::Deliver(bytes)
    }
}

/// A node's faults: the callback stall and its inputs' faults.
#[derive(Debug, Default)]
pub struct Faults {
    stall_us: AtomicU64,
    state: Mutex<FaultState>,
}

#[derive(Debug, Default)]
struct FaultState {
    /// Settings for every input, and per topic (which win over them).
    all: InputSettings,
    by_topic: std::collections::BTreeMap<String, InputSettings>,
    inputs: Vec<Arc<InputFault>>,
}

impl FaultState {
    fn settings_of(&self, topic: &str) -> InputSettings {
        self.by_topic.get(topic).copied().unwrap_or(self.all)
    }
}

impl Faults {
    /// The injected per-message stall (zero when none).
    pub fn stall(&self) -> Duration {
        Duration::from_micros(self.stall_us.load(Ordering::Relaxed))
    }

    /// The fault handle of a new input on `topic`, with the settings already in force.
    pub fn register_input(&self, topic: &str) -> Arc<InputFault> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let fault = Arc::new(InputFault::new(topic, state.settings_of(topic)));
        state.inputs.push(fault.clone());
        fault
    }

    /// Applies a command; returns a description of the new settings.
    pub fn apply(&self, command: &FaultCommand) -> Result<String, String> {
        command.validate()?;
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if command.is_clear() {
            self.stall_us.store(0, Ordering::Relaxed);
            state.all = InputSettings::default();
            state.by_topic.clear();
        } else {
            if let Some(stall) = command.stall_ms {
                self.stall_us.store((stall * 1e3).round() as u64, Ordering::Relaxed);
            }
            if command.has_input_fields() {
                match &command.input {
                    Some(topic) => {
                        let mut settings = state.settings_of(topic);
                        settings.update(command);
                        state.by_topic.insert(topic.clone(), settings);
                    }
                    None => {
                        state.all.update(command);
                        // A command for every input overrides earlier per-topic settings of
                        // the fields it names.
                        for settings in state.by_topic.values_mut() {
                            settings.update(command);
                        }
                    }
                }
            }
        }
        for input in &state.inputs {
            input.set(state.settings_of(&input.topic));
        }
        Ok(self.describe(&state))
    }

    fn describe(&self, state: &FaultState) -> String {
        if state.all == InputSettings::default() && state.by_topic.is_empty() && self.stall() == Duration::ZERO {
            return "faults cleared".into();
        }
        let mut parts = vec![format!("stall {} ms", self.stall().as_secs_f64() * 1e3)];
        if state.all != InputSettings::default() {
            parts.push(format!("every input: {}", state.all.describe()));
        }
        for (topic, settings) in &state.by_topic {
            parts.push(format!("{topic}: {}", settings.describe()));
        }
        parts.join("; ")
    }

    /// What is injected now, or `None` when nothing is (the node's health says so while any
    /// fault is set, so an injected fault is never mistaken for health).
    pub fn active(&self) -> Option<String> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let quiet = state.all == InputSettings::default()
            && state.by_topic.values().all(|s| *s == InputSettings::default())
            && self.stall() == Duration::ZERO;
        (!quiet).then(|| self.describe(&state))
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
        assert_eq!(faults.stall(), Duration::ZERO);
        assert_eq!(faults.apply_json(br#"{"stall_ms": 250}"#).unwrap(), "stall 250 ms");
        assert_eq!(faults.stall(), Duration::from_millis(250));
        assert!(faults.apply_json(br#"{"stall_ms": -1}"#).unwrap_err().contains("outside"));
        assert!(faults.apply_json(br#"{"drop_pct": 101}"#).unwrap_err().contains("drop_pct 101"));
        assert!(faults.apply_json(br#"{"input": "camera", "drop_pct": 1}"#).unwrap_err().contains("must be a topic"));
        assert!(faults.apply_json(br#"{"stal_ms": 5}"#).unwrap_err().contains("unknown field"));
        assert!(faults.apply_json(b"garbage").is_err());
        assert_eq!(faults.stall(), Duration::from_millis(250), "bad commands change nothing");
        assert_eq!(faults.apply_json(b"{}").unwrap(), "faults cleared");
        assert_eq!(faults.stall(), Duration::ZERO);
    }

    #[test]
    fn input_faults_reach_registered_and_later_inputs() {
        let faults = Faults::default();
        let image = faults.register_input("/camera/image");
        let state = faults.register_input("/vehicle/state");
        assert!(!image.is_active());
        faults.apply_json(br#"{"input": "/camera/image", "delay_ms": 40}"#).unwrap();
        assert!(image.is_active() && !state.is_active());
        assert_eq!(image.delay(), Duration::from_millis(40));
        let later = faults.register_input("/camera/image");
        assert_eq!(later.delay(), Duration::from_millis(40), "an input made afterwards gets it too");
        faults.apply_json(br#"{"drop_pct": 100}"#).unwrap();
        assert!(state.is_active(), "no input named: every input");
        assert!(matches!(state.on_arrival(Vec::new), Verdict::Drop));
        faults.apply_json(br#"{"clear": true}"#).unwrap();
        assert!(!image.is_active() && !state.is_active() && !later.is_active());
    }

    #[test]
    fn drops_hit_about_their_share_and_freeze_repeats_the_first_message() {
        let faults = Faults::default();
        let input = faults.register_input("/x");
        faults.apply_json(br#"{"drop_pct": 30}"#).unwrap();
        let dropped = (0..10_000).filter(|_| matches!(input.on_arrival(|| vec![1]), Verdict::Drop)).count();
        assert!((2_700..3_300).contains(&dropped), "{dropped} of 10000 at 30 %");
        faults.apply_json(br#"{"drop_pct": 0, "freeze": true}"#).unwrap();
        let deliver = |bytes: Vec<u8>| match input.on_arrival(|| bytes.clone()) {
            Verdict::Deliver(Some(b)) => b,
            _ => panic!("a freeze delivers the frozen copy"),
        };
        assert_eq!(deliver(vec![1, 2, 3]), vec![1, 2, 3]);
        assert_eq!(deliver(vec![4, 5, 6]), vec![1, 2, 3], "the first message repeats");
        faults.apply_json(br#"{"freeze": false, "corrupt_pct": 100}"#).unwrap();
        let original = vec![0u8; 256];
        match input.on_arrival(|| original.clone()) {
            Verdict::Deliver(Some(b)) => assert_ne!(b, original, "bytes flipped"),
            _ => panic!("corruption delivers a changed copy"),
        }
        assert_eq!(input.repeated.load(Ordering::Relaxed), 1);
        assert_eq!(input.corrupted.load(Ordering::Relaxed), 1);
    }
}
