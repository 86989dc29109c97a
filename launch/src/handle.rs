//! Child processes of the `reflex` binary that must not outlive their owner: a whole launch
//! ([`LaunchHandle`]) or any other child ([`ChildGuard`]), stopped with SIGINT and, after a
//! grace period, SIGKILL.

use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A child process asked to stop when dropped (SIGINT: it finishes its work, a launch stops
/// its nodes) and killed if it has not exited within the grace period.
pub struct ChildGuard {
    child: Child,
    grace: Duration,
}

impl ChildGuard {
    pub fn new(child: Child, grace: Duration) -> Self {
        Self { child, grace }
    }

    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Asks the child to stop and waits for it (SIGKILL after the grace period).
    pub fn stop(mut self) -> Option<std::process::ExitStatus> {
        self.stop_in_place()
    }

    fn stop_in_place(&mut self) -> Option<std::process::ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Some(status);
        }
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let deadline = Instant::now() + self.grace;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        self.child.wait().ok()
    }
}

/// The default grace: 5 s, time for a launch to stop its nodes and a recorder to close its file.
impl From<Child> for ChildGuard {
    fn from(child: Child) -> Self {
        Self::new(child, Duration::from_secs(5))
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.stop_in_place();
    }
}

/// A helper process whose stdout is read line by line (a benchmark's other side, a test's
/// second process). Killed on drop.
pub struct LineChild {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl LineChild {
    /// Starts `command` with its stdout piped (and stdin closed).
    pub fn spawn(mut command: Command) -> Result<Self> {
        let mut child =
            command.stdout(Stdio::piped()).stdin(Stdio::null()).spawn().context("cannot start the helper process")?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Self { child, lines })
    }

    /// The first line containing `marker`, from the marker on, within `timeout`.
    pub fn line(&mut self, marker: &str, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                // libtest may print "test name ... " on the same line first.
                Ok(line) if line.contains(marker) => return Ok(line[line.find(marker).unwrap()..].to_string()),
                Ok(_) => continue,
                Err(_) => {
                    let status = self.child.try_wait().ok().flatten();
                    bail!("the helper process printed no {marker:?} line within {timeout:?} (exit status: {status:?})")
                }
            }
        }
    }
}

impl LineChild {
    /// A line containing `marker` among those printed so far (from the marker on), without
    /// waiting; the lines before it are passed over.
    pub fn try_line(&mut self, marker: &str) -> Option<String> {
        while let Ok(line) = self.lines.try_recv() {
            if let Some(at) = line.find(marker) {
                return Some(line[at..].to_string());
            }
        }
        None
    }
}

impl Drop for LineChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `reflex launch FILE` as a child process, stopped (its nodes with it) when dropped.
pub struct LaunchHandle(ChildGuard);

impl LaunchHandle {
    /// Starts `exe launch file` with `configure` applied to the command (arguments such as
    /// `--set`, environment, output); `exe` is the `reflex` binary.
    pub fn start(exe: &Path, file: &Path, grace: Duration, configure: impl FnOnce(&mut Command)) -> Result<Self> {
        Self::spawn(Command::new(exe), file, grace, configure)
    }

    /// The same through `command`, which runs the `reflex` binary: the binary itself, or a
    /// wrapper with it as its last argument (`ip netns exec NS reflex`, for a bench's
    /// namespace). `launch file` is appended, then `configure` applied.
    pub fn spawn(
        mut command: Command,
        file: &Path,
        grace: Duration,
        configure: impl FnOnce(&mut Command),
    ) -> Result<Self> {
        command.arg("launch").arg(file);
        configure(&mut command);
        let program = command.get_program().to_string_lossy().into_owned();
        let child = command.spawn().with_context(|| format!("cannot start {program} launch {}", file.display()))?;
        Ok(Self(ChildGuard::new(child, grace)))
    }

    /// The launcher's process id.
    pub fn id(&self) -> u32 {
        self.0.id()
    }

    /// The launcher's exit status if it has ended.
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.0.child().try_wait().ok().flatten()
    }

    /// Stops the launch (SIGINT, then SIGKILL after the grace period) and waits for it.
    pub fn stop(self) -> Option<std::process::ExitStatus> {
        self.0.stop()
    }
}

/// A free TCP port on loopback for a run's rendezvous, so concurrent runs stay apart.
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("no free loopback port")?;
    Ok(listener.local_addr()?.port())
}

/// A relative path as given when it exists, else under the nearest ancestor of the working
/// directory or of the executable that has it (fixtures found from anywhere in a checkout).
pub fn find_in_ancestors(path: &Path) -> PathBuf {
    if path.is_absolute() || path.exists() {
        return path.to_path_buf();
    }
    let cwd = std::env::current_dir().ok();
    let exe = std::env::current_exe().ok();
    cwd.iter()
        .flat_map(|d| d.ancestors())
        .chain(exe.iter().flat_map(|e| e.ancestors().skip(1)))
        .map(|root| root.join(path))
        .find(|candidate| candidate.exists())
        .unwrap_or_else(|| path.to_path_buf())
}
