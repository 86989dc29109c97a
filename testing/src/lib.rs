//! What the workspace's tests share: the repository root, the `reflex` binary they drive, a
//! guard that stops a child process, and waiting on a condition with a timeout (never a bare
//! sleep standing in for one).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use reflex_launch::{free_port, ChildGuard, LaunchHandle};

/// The repository's root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().expect("the repository root exists")
}

/// The `reflex` binary of this build (`target/<profile>/reflex`, beside the test's own
/// `deps/` folder). `cargo test --workspace` builds it with the CLI crate's tests; a test run
/// for one crate alone needs `cargo build -p reflex-cli` first (with the same profile).
pub fn reflex_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("tests run from target/<profile>/deps");
    let bin = profile_dir.join("reflex");
    assert!(
        bin.is_file(),
        "{} is missing: build it first (`cargo build --release -p reflex-cli`, or run the whole \
         workspace's tests)",
        bin.display()
    );
    bin
}

/// A child's default grace in tests: SIGINT, then up to 10 s before SIGKILL.
pub const GRACE: Duration = Duration::from_secs(10);

/// Guards `child` with the tests' grace period.
pub fn guard(child: std::process::Child) -> ChildGuard {
    ChildGuard::new(child, GRACE)
}

/// Waits until `done` holds, checking every 10 ms; panics naming `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}
