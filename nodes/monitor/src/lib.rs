//! The part that makes reflexes safe, as plain state machines driven by explicit times (so
//! tests and the simulator run them on the simulation clock):
//!
//! - [`supervisor`]: turns faults (missed deadlines, vanished nodes, budget overruns, stale
//!   commands, ...) into the vehicle state nominal → degraded → safe stop, and back only after
//!   a stable period without faults.
//! - [`arbiter`]: makes the single actuator command out of the AEB request, the safe-stop
//!   demand and the driver's or planner's command: safe stop always wins, otherwise the
//!   strongest braking wins, and a stale input counts as missing.

pub mod arbiter;
pub mod node;
pub mod supervisor;
