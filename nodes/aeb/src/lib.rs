//! Autonomous emergency braking (AEB) as plain, tested algorithms, free of any transport:
//!
//! - [`range`]: distance and lateral offset of an object from its 2D box, with a flat-ground
//!   pinhole model (bottom edge, camera height and pitch) and a known-width cross-check.
//! - [`tracker`]: multi-object tracking with a constant-acceleration Kalman filter on range
//!   (nalgebra); tracks are confirmed after N hits and deleted after M misses, so a single
//!   spurious detection never reaches the brakes.
//! - [`threat`]: time to collision (TTC), enhanced TTC under constant acceleration, required
//!   deceleration, and the staged response (forward-collision warning, partial braking, full
//!   braking) with hysteresis and a release that cannot chatter.
//!
//! The `aeb` node kind ([`node`]) wires these to detections, vehicle state and brake requests
//! as a reflex function; its thresholds are the documented parameters of
//! [`threat::ThreatConfig`].

pub mod node;
pub mod range;
pub mod threat;
pub mod tracker;
