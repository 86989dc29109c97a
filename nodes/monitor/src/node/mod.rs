//! The `monitor`, `arbiter` and `actuator` node kinds: wiring that feeds the [`Supervisor`],
//! the [`Arbiter`] and the [`ActuatorGateway`] from topics and publishes what they decide.
//!
//! [`Supervisor`]: crate::supervisor::Supervisor
//! [`Arbiter`]: crate::arbiter::Arbiter
//! [`ActuatorGateway`]: crate::actuator::ActuatorGateway

/// A vehicle state older than this does not tell whether the vehicle stands still.
const VEHICLE_STATE_MAX_AGE_NS: i64 = 500_000_000;

mod actuator;
mod arbiter;
mod monitor;

pub use actuator::*;
pub use arbiter::*;
pub use monitor::*;
