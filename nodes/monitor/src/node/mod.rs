//! The `monitor`, `arbiter` and `actuator` node kinds: wiring that feeds the [`Monitor`],
//! the [`Arbiter`] and the [`ActuatorGateway`] from topics and publishes what they decide.
//!
//! [`Monitor`]: crate::monitor::Monitor
//! [`Arbiter`]: crate::arbiter::Arbiter
//! [`ActuatorGateway`]: crate::actuator::ActuatorGateway

mod actuator;
mod arbiter;
mod monitor;

pub use actuator::*;
pub use arbiter::*;
pub use monitor::*;
