//! The Reflex node runtime: what every node process is built on.
//!
//! # Concepts
//! - **Node** ([`Node`]): one process, one zenoh session, a liveliness token
//!   (`<prefix>/_node/<name>/<host>/<pid>`) that vanishes when the process dies, and a
//!   watchdog thread.
//! - **Typed pub/sub** ([`Publisher`], [`Subscriber`]): ROS 2 messages from `reflex-msgs`,
//!   CDR-encoded, on zenoh keys derived from topic names in one place ([`keys`]). Each
//!   message carries an rmw_zenoh-style attachment (sequence number, send time, publisher id).
//! - **Input queues** ([`queue`]): zenoh's receive callback hands each sample to the node's
//!   processing thread through a bounded `rtrb` ring. The callback never blocks; on overflow
//!   the input's policy (`drop_oldest` / `drop_newest`) decides, and every drop is counted and
//!   reported on the monitor topic.
//! - **Timing built in**: every received message's age (now − `header.stamp`, the capture
//!   time), its transport transit time and its queueing time go into HDR histograms
//!   ([`InputStats`]). Inputs declare deadlines (maximum gap) and callbacks declare budgets
//!   ([`Budget`]); the watchdog checks them *when they expire*, not when the next message
//!   happens to arrive, and publishes a `reflex_msgs/MonitorEvent` on `/reflex/events`.
//! - **Clock** ([`Clock`]): wall time for stamps and monotonic time for durations, or
//!   simulation time for both, moved by a simulator or a test. Stamps, deadlines, budgets and
//!   timers all read it; a step of the wall clock moves stamps only.
//! - **Health** ([`health`]): every node states what is wrong with it now on its own key,
//!   periodically and on change; the monitor decides from that state.
//! - **Lifecycle**: create from a typed config (see [`NodeSpec::params`]), start, process, stop;
//!   a node's `run` takes a [`Shutdown`] so tests can stop it, and binaries set it from
//!   SIGINT/SIGTERM.
//! - **Shared memory**: payloads from `shm_threshold_bytes` up (images) are encoded straight
//!   into a chunk of the node's POSIX shared-memory pool and cross to local subscribers without
//!   a copy; segments left by killed processes are cleaned up when a node starts.
//!
//! # No allocation and no lock on the steady-state path
//! - *Receive*: the callback moves zenoh's sample into a pre-allocated ring slot (an atomic
//!   flag serializes overlapping callbacks around that one push; the reader is never waited
//!   for). The drop-oldest mailbox recycles its boxes, so overflow does not allocate either.
//! - *Process*: [`Subscriber::recv`] decodes in place into one message the subscriber owns
//!   (`reflex_msgs::decode_into`), reusing its strings' and vectors' capacity; a contiguous
//!   payload (always the case for shared memory) is read where it lies. Histograms are
//!   fixed-size arrays.
//! - *Publish*: [`Publisher::publish`] encodes into a buffer it keeps, or directly into a
//!   shared-memory chunk taken from the pool. zenoh then takes its own copy of a small
//!   payload (its API takes owned bytes), which is zenoh's allocation, not ours.
//! - Locks exist only off the hot path: the watchdog's lists (touched when inputs are added
//!   and by the watchdog) and the monitor-event publisher (used when something is wrong).
//!
//! ```no_run
//! use reflex_runtime::{InputOptions, Node, NodeOptions, Shutdown};
//! use reflex_msgs::{sensor_msgs::Image, topics};
//! use std::time::Duration;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let node = Node::new(NodeOptions::new("viewer"))?;
//! let options = InputOptions::default().capacity(1).deadline(Duration::from_millis(100));
//! let mut images = node.subscriber::<Image>(topics::CAMERA_IMAGE, options)?;
//! let shutdown = Shutdown::on_signals()?;
//! while !shutdown.is_requested() {
//!     node.wait_for_input(Duration::from_millis(50));
//!     while let Some(image) = images.recv() {
//!         println!("{}x{} age {:?} ns", image.message.width, image.message.height, image.age_ns);
//!     }
//! }
//! # Ok(()) }
//! ```

// The node and its ports (private: the types are re-exported below, one path each).
mod attachment;
mod events;
mod logging;
mod node;
mod publisher;
mod raw;
mod shutdown;
mod subscriber;
mod timer;
mod timing;
mod watchdog;

pub mod clock;
pub mod discovery;
/// Fault commands: the contract of a node's fault key (benches and `reflex fault` send them).
pub mod fault;
/// Health reports as `diagnostic_msgs/DiagnosticArray`, and their parser (the monitor's).
pub mod health;
/// The key layout. Node code never needs it; the raw-zenoh baselines of the benchmarks and
/// the attack tests (a rogue forges keys) do.
pub mod keys;
/// Input queues: public only for the no-allocation test; nodes configure them through
/// [`InputOptions`].
#[doc(hidden)]
pub mod queue;
pub mod realtime;
pub mod reflex;
/// What an attacker does on the bus, for attack tests and the HIL bench; no node uses it.
#[doc(hidden)]
pub mod rogue;
pub mod spec;
pub mod task;
pub mod transport;

pub use clock::Clock;
pub use discovery::{DiscoveryError, NodeChange, NodeLocation, SendFaultError, System, Watch};
pub use events::event_kind_name;
pub use health::{Level, StatusHandle};
pub use logging::{flush_logs, init_tracing, LogFormat};
pub use node::{hostname, Node, NodeError, NodeOptions, DRAIN_LIMIT, MAX_SKIPPED_PER_RECV, STEP_SETTLE};
pub use publisher::Publisher;
pub use queue::OverflowPolicy;
pub use raw::{RawPublisher, RawSample, RawSubscriber};
pub use reflex::{Reflex, ReflexContext};
pub use shutdown::Shutdown;
pub use spec::{Direction, InvalidParam, NodeKind, NodeSpec, ParamError, Port, RunError};
pub use subscriber::{InputOptions, Received, Subscriber};
pub use task::{Slot, Taken, Task};
pub use timer::{Tick, Timer};
pub use timing::{InputStats, LatencyHistogram};
pub use transport::{Mode, TransportConfig};
pub use watchdog::{Budget, DeadlineWatch};

/// What a node author needs, in one `use reflex_runtime::prelude::*;`.
pub mod prelude {
    pub use crate::reflex::{run_reflex, Reflex, ReflexContext, ReflexOptions};
    pub use crate::task::{run_task, Event1, Event2, Event3, Event4, Slot, Taken, Task, TaskOptions};
    pub use crate::{
        Clock, Direction, InputOptions, Level, Node, NodeKind, NodeOptions, NodeSpec, OverflowPolicy, Port, Publisher,
        RunError, Shutdown, StatusHandle, Subscriber,
    };
}
