//! What the workspace's tests share: the repository root, the `reflex` binary they drive, a
//! guard that stops a child process, and waiting on a condition with a timeout (never a bare
//! sleep standing in for one).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use reflex_launch::{free_port, ChildGuard, LaunchHandle, LineChild};

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

/// `reflex launch file` as a child of the test, stopped (its nodes with it) when dropped;
/// `configure` sets its working folder, environment and output.
pub fn launch(file: &Path, configure: impl FnOnce(&mut std::process::Command)) -> LaunchHandle {
    LaunchHandle::start(&reflex_bin(), file, GRACE, configure).expect("reflex launch starts")
}

/// Waits until `done` holds, checking every 10 ms; panics naming `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `command` to its end with its output captured, but for at most `limit` of wall time:
/// past it the child is killed and the test fails with what it printed so far (a hung run
/// fails, it never hangs the suite).
pub fn output_within(command: &mut std::process::Command, limit: Duration) -> std::process::Output {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("the command starts");
    let read = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = read(Box::new(child.stdout.take().expect("piped")));
    let stderr = read(Box::new(child.stderr.take().expect("piped")));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("the child can be waited for") {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let (out, err) = (stdout.join().unwrap_or_default(), stderr.join().unwrap_or_default());
            panic!(
                "{command:?} ran past its limit of {limit:?} and was killed\n--- stdout\n{}\n--- stderr\n{}",
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&err)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    std::process::Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}
