//! The part that makes reflexes safe, as plain state machines driven by explicit times (so
//! tests and the simulator run them on the simulation clock):
//!
//! - [`monitor`]: what the monitor node decides from what it hears (health reports, tokens,
//!   silence, the arbiter's commands, standstill), through the supervisor.
//! - [`supervisor`]: turns faults (errors in a node's health, vanished or silent nodes, stale
//!   commands, ...) into the vehicle state nominal → degraded → safe stop; it starts engaged,
//!   and a safe stop ends only after a stable period without faults, at a standstill.
//! - [`arbiter`]: makes the single actuator command out of the AEB request, the safe-stop
//!   demand and the driver's or planner's command: safe stop always wins, otherwise the
//!   strongest braking wins, and a stale input counts as missing.
//! - [`actuator`]: the actuator gateway, the boundary to the brake unit: it brakes by itself
//!   when the arbiter's commands stop, stop advancing or fail plausibility.

pub mod actuator;
pub mod arbiter;
pub mod monitor;
pub mod node;
pub mod supervisor;
pub mod vehicle;
