//! The launcher as a library: a launch file is loaded ([`file`]), checked into a [`Plan`]
//! ([`check`]), and run as supervised processes ([`supervise`]); [`host`] is what each of
//! those processes runs (one node, or a group of nodes as threads), [`kinds`] the node kinds
//! it knows. [`handle`] starts a whole launch as a child process, the way benches, the
//! simulator and tests use it.

pub mod check;
pub mod handle;
pub mod host;
pub mod kinds;
pub mod supervise;

pub use check::{check, run_check, Plan, Program, Unit};
pub use handle::{find_in_ancestors, free_port, ChildGuard, LaunchHandle, LineChild};
/// The launch-file format (its own crate, fuzzed on its own).
pub use reflex_launch_file::{diagnostics, file};

// Older paths inside this crate.
use reflex_launch_file::file as launch_file;
