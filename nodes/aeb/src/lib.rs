//! Autonomous emergency braking (AEB) as plain, tested algorithms, free of any transport:
//!
//! - [`range`]: distance and lateral offset of an object from its 2D box, with a flat-ground
//!   pinhole model (bottom edge, camera height and pitch) and a known-width cross-check.
//! - [`tracker`]: multi-object tracking with a constant-acceleration Kalman filter on range
//!   (nalgebra), each measurement weighed by its own noise, and the part of each estimate's
//!   error that measurement noise alone makes; tracks are confirmed after N hits and deleted
//!   after M misses, so a single spurious detection never reaches the brakes.
//! - [`threat`]: time to collision (TTC), enhanced TTC under constant acceleration, required
//!   deceleration, and the staged response (forward-collision warning, partial braking, full
//!   braking) with hysteresis and a release that cannot chatter.
//!
//! - [`core`]: [`AebCore`], the three above as one step per frame, with its parameters.
//! - [`reflex`]: [`Aeb`], the core as a reflex task (typed inputs and outputs, no I/O).
//! - [`node`]: the `aeb` node kind, wiring only; its thresholds are the documented parameters
//!   of [`threat::ThreatConfig`].

pub mod core;
#[doc(hidden)]
pub mod fixtures;
pub mod node;
pub mod range;
pub mod reflex;
pub mod threat;
pub mod tracker;

pub use crate::core::{AebConfig, AebCore};
pub use node::AEB_KIND;
pub use reflex::Aeb;
