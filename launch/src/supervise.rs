//! `reflex launch`: one process per unit (a node, or a group of nodes as threads), output
//! prefixed with the unit's name, restart policies with backoff, and a clean stop.
//!
//! Safety units (the monitor, the arbiter, the actuator gateway; `safety:` in the launch file)
//! are never stopped because another unit failed: when a required unit gives up, the launcher
//! stops the others but keeps the safety units running (the vehicle is being stopped by them),
//! until it is itself asked to stop.
//!
//! No orphans: each child runs in its own process group and asks the kernel for a signal when
//! the launcher dies (`PR_SET_PDEATHSIG`): built-in nodes get SIGTERM, so a safety unit can
//! say its last word (the arbiter commands full braking) and every node exits within 3 s of it
//! (see `reflex node`); external programs (`exec:`) get SIGKILL, since nothing makes them
//! exit. On SIGINT/SIGTERM the launcher sends SIGTERM to every group, waits `grace`, then
//! sends SIGKILL.
//!
//! Real time: a unit's SCHED_FIFO priority and CPU set are applied in the child before the
//! program starts, so every thread it ever creates (zenoh's, OpenVINO's) inherits them.

use crate::check::{Plan, Program, Unit};
use crate::launch_file::{LauncherEntry, RestartPolicy};
use anyhow::{bail, Context, Result};
use reflex_runtime::transport::Security;
use reflex_runtime::Shutdown;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const POLL: Duration = Duration::from_millis(20);

struct Running {
    unit: Unit,
    child: Option<Child>,
    /// Threads copying the child's output; joined when it exits so no last line is lost.
    forwarders: Vec<std::thread::JoinHandle<()>>,
    restarts: u32,
    next_start: Option<Instant>,
    backoff: Duration,
    finished: bool,
    failed: bool,
}

/// Runs the plan until every unit has ended or `shutdown` is requested. Returns whether every
/// required unit ended well.
pub fn launch(mut plan: Plan, shutdown: &Shutdown, grace: Duration) -> Result<bool> {
    let exe = std::env::current_exe().context("cannot find the reflex executable to start nodes with")?;
    apply_own_scheduling(&plan.launcher);
    let credentials = match plan.access.clone() {
        Some(access) => Some(Credentials::create(&mut plan, &access)?),
        None => None,
    };
    // Hold the rendezvous for the whole launch, so nodes can come and go (and restart).
    plan.transport.launcher = true;
    let rendezvous = plan.transport.open_rendezvous().context("cannot open the launcher's zenoh session");
    if let Some(credentials) = &credentials {
        // The router read its dictionary when it opened: nobody needs it on disk any more.
        credentials.forget_dictionary();
    }
    let _rendezvous = rendezvous?;
    let colors = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let mut units: Vec<Running> = plan
        .units
        .into_iter()
        .map(|unit| Running {
            backoff: Duration::from_millis(unit.restart.backoff_ms),
            unit,
            child: None,
            forwarders: Vec::new(),
            restarts: 0,
            next_start: Some(Instant::now()),
            finished: false,
            failed: false,
        })
        .collect();
    let name_width = units.iter().map(|u| u.unit.name.len()).max().unwrap_or(0);
    let mut any_required_failed = false;
    let mut others_stopped = false;
    loop {
        if shutdown.is_requested() {
            eprintln!("reflex launch: stopping {} unit(s)", units.iter().filter(|u| u.child.is_some()).count());
            stop_all(&mut units, grace, |_| true);
            break;
        }
        let now = Instant::now();
        for (index, running) in units.iter_mut().enumerate() {
            if let Some(at) = running.next_start {
                if at <= now {
                    running.next_start = None;
                    match spawn(&exe, &running.unit, index, name_width, colors, credentials.as_ref()) {
                        Ok((child, forwarders)) => {
                            running.child = Some(child);
                            running.forwarders = forwarders;
                        }
                        Err(error) => {
                            eprintln!("reflex launch: cannot start `{}`: {error:#}", running.unit.name);
                            (running.finished, running.failed) = (true, true);
                        }
                    }
                }
            }
            let Some(child) = running.child.as_mut() else { continue };
            let Ok(Some(status)) = child.try_wait() else { continue };
            running.child = None;
            drain_output(&mut running.forwarders);
            let ok = status.success();
            let restart = match running.unit.restart.policy {
                RestartPolicy::Never => false,
                RestartPolicy::OnFailure => !ok,
                RestartPolicy::Always => true,
            };
            // Once the others are stopped for a failed required unit, only safety units restart.
            if restart
                && running.restarts < running.unit.restart.max_restarts
                && (!others_stopped || running.unit.safety)
            {
                running.restarts += 1;
                eprintln!(
                    "reflex launch: `{}` {}; restart {}/{} in {} ms",
                    running.unit.name,
                    describe(status),
                    running.restarts,
                    running.unit.restart.max_restarts,
                    running.backoff.as_millis()
                );
                running.next_start = Some(Instant::now() + running.backoff);
                running.backoff =
                    (running.backoff * 2).min(Duration::from_millis(running.unit.restart.backoff_max_ms.max(1)));
                continue;
            }
            running.finished = true;
            running.failed = !ok;
            let gave_up =
                if restart { format!(" (gave up after {} restarts)", running.restarts) } else { String::new() };
            eprintln!("reflex launch: `{}` {}{gave_up}", running.unit.name, describe(status));
            if !ok && running.unit.required {
                any_required_failed = true;
            }
        }
        if any_required_failed && !others_stopped {
            others_stopped = true;
            let safety: Vec<&str> =
                units.iter().filter(|u| u.unit.safety && u.child.is_some()).map(|u| u.unit.name.as_str()).collect();
            if safety.is_empty() {
                eprintln!("reflex launch: a required node failed; stopping the rest");
                stop_all(&mut units, grace, |_| true);
                break;
            }
            eprintln!(
                "reflex launch: a required node failed; stopping the other units, keeping the safety units ({}) \
                 running until the launch is stopped",
                safety.join(", ")
            );
            stop_all(&mut units, grace, |unit| !unit.safety);
        }
        if units.iter().all(|u| u.finished) {
            break;
        }
        std::thread::sleep(POLL);
    }
    drop(credentials);
    Ok(!any_required_failed && !units.iter().any(|u| u.failed && u.unit.required))
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(0), _) => "exited normally".into(),
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => "ended".into(),
    }
}

/// Waits (at most 500 ms: a grandchild may hold the pipe open) for a unit's output to be
/// copied out completely.
fn drain_output(forwarders: &mut Vec<std::thread::JoinHandle<()>>) {
    let deadline = Instant::now() + Duration::from_millis(500);
    while forwarders.iter().any(|f| !f.is_finished()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    for forwarder in forwarders.drain(..) {
        if forwarder.is_finished() {
            let _ = forwarder.join();
        }
    }
}

type Forwarders = Vec<std::thread::JoinHandle<()>>;

/// Every process's credentials. Nodes of the launch get their passwords through a pipe when
/// they start (no file a compromised node could read); only external users' passwords are
/// files (mode 0600, created exclusively, never through a symlink, in a folder that is ours
/// and closed to others), and the router's dictionary lives on disk only until the router has
/// read it. Everything written is removed when the launch ends.
pub struct Credentials {
    dir: PathBuf,
    /// The folder is the launcher's own (removed at the end), not the launch file's.
    private: bool,
    passwords: BTreeMap<String, String>,
    written: Vec<PathBuf>,
    dictionary: PathBuf,
}

impl Credentials {
    fn create(plan: &mut Plan, access: &crate::launch_file::AccessControlEntry) -> Result<Self> {
        let (dir, private) = match &access.credentials_dir {
            Some(dir) => (open_private_dir(dir)?, false),
            None => (create_private_dir()?, true),
        };
        let mut credentials =
            Self { dictionary: dir.join("dictionary"), dir, private, passwords: BTreeMap::new(), written: Vec::new() };
        let mut users: Vec<String> = Vec::new();
        for unit in &mut plan.units {
            users.extend(unit.program.specs_mut().into_iter().map(|spec| spec.name.clone()));
        }
        users.extend(access.external.iter().cloned());
        let mut random = std::fs::File::open("/dev/urandom").context("no /dev/urandom for the passwords")?;
        let mut dictionary = String::new();
        for user in &users {
            let mut bytes = [0u8; 16];
            std::io::Read::read_exact(&mut random, &mut bytes)?;
            let password: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            dictionary.push_str(&format!("{user}:{password}\n"));
            credentials.passwords.insert(user.clone(), password);
        }
        for user in &access.external {
            let path = credentials.dir.join(format!("{user}.password"));
            credentials.write_private(&path, &credentials.passwords[user].clone())?;
        }
        let dictionary_file = credentials.dictionary.clone();
        credentials.write_private(&dictionary_file, &dictionary)?;
        // The router authenticates to nobody: it only checks the others, against the dictionary.
        plan.transport.security = Some(Security::router(dictionary_file, plan.acl.clone()));
        for unit in &mut plan.units {
            for spec in unit.program.specs_mut() {
                // The pipe's descriptor is set when the process starts (`spawn`).
                spec.transport.security = Some(Security::node(&spec.name));
            }
        }
        eprintln!(
            "reflex launch: access control on; external users' credentials in {} ({} topic rules)",
            credentials.dir.display(),
            plan.acl.as_ref().map_or(0, |acl| acl.publishers.len())
        );
        Ok(credentials)
    }

    /// Writes `path` mode 0600: a new file (exclusively, never through a symlink) beside it,
    /// filled, then renamed over it, so a reader never sees it half written.
    fn write_private(&mut self, path: &Path, text: &str) -> Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let partial = path.with_file_name(format!(".{name}.{}.partial", std::process::id()));
        let _ = std::fs::remove_file(&partial);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&partial)
            .with_context(|| format!("cannot create {} (exclusively, mode 0600)", partial.display()))?;
        let written = file
            .write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .and_then(|()| std::fs::rename(&partial, path));
        if let Err(error) = written {
            let _ = std::fs::remove_file(&partial);
            return Err(error).with_context(|| format!("cannot write {}", path.display()));
        }
        self.written.push(path.to_path_buf());
        Ok(())
    }

    fn forget_dictionary(&self) {
        let _ = std::fs::remove_file(&self.dictionary);
    }

    fn password(&self, user: &str) -> Option<&str> {
        self.passwords.get(user).map(String::as_str)
    }
}

impl Drop for Credentials {
    fn drop(&mut self) {
        for path in &self.written {
            let _ = std::fs::remove_file(path);
        }
        if self.private {
            let _ = std::fs::remove_dir(&self.dir);
        }
    }
}

/// A new folder only we can enter, with a name nobody could predict and create first.
fn create_private_dir() -> Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let mut random = std::fs::File::open("/dev/urandom").context("no /dev/urandom")?;
    for _ in 0..16 {
        let mut bytes = [0u8; 8];
        std::io::Read::read_exact(&mut random, &mut bytes)?;
        let name: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let dir = std::env::temp_dir().join(format!("reflex-credentials-{name}"));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot create {}", dir.display())),
        }
    }
    bail!("cannot create a private credentials folder under {}", std::env::temp_dir().display())
}

/// The launch file's credentials folder: created 0700 when missing; when it exists it must be
/// a real folder (not a symlink), ours, and closed to others; refused otherwise (H11).
fn open_private_dir(dir: &Path) -> Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    // Created (the folders above it as needed, the folder itself alone: never through a
    // symlink someone planted meanwhile), then checked whether we made it or found it.
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("cannot create {}", dir.display())),
    }
    match std::fs::symlink_metadata(dir) {
        Err(e) => return Err(e).with_context(|| format!("cannot look at {}", dir.display())),
        Ok(metadata) => {
            // SAFETY: geteuid has no preconditions.
            let me = unsafe { libc::geteuid() };
            if !metadata.file_type().is_dir() {
                bail!("credentials_dir {} is not a folder (a symlink?): refused", dir.display());
            }
            if metadata.uid() != me || metadata.mode() & 0o077 != 0 {
                bail!(
                    "credentials_dir {} must be ours and closed to others (owner {}, mode {:o}): refused",
                    dir.display(),
                    metadata.uid(),
                    metadata.mode() & 0o777
                );
            }
        }
    }
    Ok(std::path::absolute(dir)?)
}

/// A pipe holding `text` whose read end the child inherits; returns that fd (the write end is
/// closed, so the child reads to its end).
fn password_pipe(text: &str) -> Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into the array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error()).context("cannot make a password pipe");
    }
    // SAFETY: both fds are new and ours.
    let (read, write) =
        unsafe { (std::os::fd::OwnedFd::from_raw_fd(fds[0]), std::os::fd::OwnedFd::from_raw_fd(fds[1])) };
    let mut write = std::fs::File::from(write);
    write.write_all(text.as_bytes())?;
    drop(write);
    Ok(read)
}

fn spawn(
    exe: &std::path::Path,
    unit: &Unit,
    index: usize,
    name_width: usize,
    colors: bool,
    credentials: Option<&Credentials>,
) -> Result<(Child, Forwarders)> {
    use std::os::fd::AsRawFd;
    // Each node of the unit gets its password through its own pipe.
    let mut pipes = Vec::new();
    let mut program = unit.program.clone();
    if let Some(credentials) = credentials {
        for spec in program.specs_mut() {
            let password = credentials.password(&spec.name).context("a node without a password")?;
            let pipe = password_pipe(password)?;
            if let Some(security) = &mut spec.transport.security {
                security.password_fd = Some(pipe.as_raw_fd());
            }
            pipes.push(pipe);
        }
    }
    let mut command = match &program {
        Program::Kind { kind, spec } => {
            let mut command = Command::new(exe);
            command.args(["node", kind, "--spec", &serde_json::to_string(spec)?]);
            command
        }
        Program::Group { members } => {
            let mut command = Command::new(exe);
            command.args(["group", "--name", &unit.name, "--spec", &serde_json::to_string(members)?]);
            command
        }
        Program::Exec { program, args, spec } => {
            let mut command = Command::new(program);
            command.args(args).env("REFLEX_NODE_SPEC", serde_json::to_string(spec)?);
            command
        }
    };
    if colors {
        command.env("REFLEX_LOG_COLOR", "1");
    }
    command.envs(&unit.env).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let launcher = std::process::id() as libc::pid_t;
    let inherited: Vec<i32> = pipes.iter().map(AsRawFd::as_raw_fd).collect();
    // A unit without CPUs of its own may run anywhere (the launcher's own set is not its).
    let all_cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize).collect();
    let cpu_set = Some(cpu_set_of(if unit.cpu_affinity.is_empty() { &all_cpus } else { &unit.cpu_affinity })?);
    let priority = unit.priority;
    // Built-in nodes get SIGTERM when the launcher dies, say their last word and exit within
    // 3 s by themselves; an external program promises nothing of the kind: SIGKILL.
    let death_signal = if matches!(program, Program::Exec { .. }) { libc::SIGKILL } else { libc::SIGTERM };
    // SAFETY: only async-signal-safe calls (setpgid, prctl, getppid, fcntl, sched_setaffinity,
    // sched_setscheduler, _exit) between fork and exec; nothing allocates.
    unsafe {
        command.pre_exec(move || {
            libc::setpgid(0, 0);
            libc::prctl(libc::PR_SET_PDEATHSIG, death_signal);
            // The launcher may have died between fork and prctl.
            if libc::getppid() != launcher {
                libc::_exit(1);
            }
            for &fd in &inherited {
                libc::fcntl(fd, libc::F_SETFD, 0);
            }
            if let Some(set) = &cpu_set {
                libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set);
            }
            // The launcher itself may run at a real-time priority: a unit gets its own, or none.
            let (policy, priority) = match priority {
                Some(priority) => (libc::SCHED_FIFO, i32::from(priority)),
                None => (libc::SCHED_OTHER, 0),
            };
            libc::sched_setscheduler(0, policy, &libc::sched_param { sched_priority: priority });
            Ok(())
        });
    }
    let mut child = command.spawn().with_context(|| match &unit.program {
        Program::Exec { program, .. } => format!("cannot run `{program}`"),
        _ => "cannot re-run the reflex executable".into(),
    })?;
    drop(pipes);
    check_scheduling(unit, child.id() as libc::pid_t);
    let prefix = if colors {
        let color = 31 + (index % 6);
        format!("\x1b[{color}m[{:>name_width$}]\x1b[0m ", unit.name)
    } else {
        format!("[{:>name_width$}] ", unit.name)
    };
    let forwarders = vec![
        forward(child.stdout.take().expect("piped"), prefix.clone(), false),
        forward(child.stderr.take().expect("piped"), prefix, true),
    ];
    Ok((child, forwarders))
}

/// A CPU set of `cpus`, each below `CPU_SETSIZE`.
fn cpu_set_of(cpus: &[usize]) -> Result<libc::cpu_set_t> {
    // SAFETY: cpu_set_t is plain data, all zeroes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &cpu in cpus {
        if cpu >= libc::CPU_SETSIZE as usize {
            bail!("CPU {cpu} is beyond CPU_SETSIZE");
        }
        // SAFETY: cpu is inside the set (checked just above).
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    Ok(set)
}

/// Copies a child's output line by line, each line prefixed with the unit's name.
fn forward(
    stream: impl std::io::Read + Send + 'static,
    prefix: String,
    to_stderr: bool,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if to_stderr {
                let _ = writeln!(std::io::stderr().lock(), "{prefix}{line}");
            } else {
                let _ = writeln!(std::io::stdout().lock(), "{prefix}{line}");
            }
        }
    })
}

/// Says clearly where the OS refused a unit's priority or CPU set (they were applied in the
/// child; a refusal there cannot be reported from it).
fn check_scheduling(unit: &Unit, pid: libc::pid_t) {
    let (want_policy, want_priority) = match unit.priority {
        Some(priority) => (libc::SCHED_FIFO, i32::from(priority)),
        None => (libc::SCHED_OTHER, 0),
    };
    let mut param = libc::sched_param { sched_priority: 0 };
    // SAFETY: plain syscalls on a pid we just started, into a sched_param we own.
    let (policy, got) = unsafe { (libc::sched_getscheduler(pid), libc::sched_getparam(pid, &mut param)) };
    if policy >= 0
        && got == 0
        && (policy & !libc::SCHED_RESET_ON_FORK, param.sched_priority) != (want_policy, want_priority)
    {
        let policy_name = |p: i32| {
            if p & !libc::SCHED_RESET_ON_FORK == libc::SCHED_FIFO {
                "SCHED_FIFO"
            } else {
                "normal scheduling"
            }
        };
        eprintln!(
            "reflex launch: warning: `{}` runs with {} priority {} instead of {} priority {want_priority} \
             (SCHED_FIFO needs root or CAP_SYS_NICE, and a priority within RLIMIT_RTPRIO)",
            unit.name,
            policy_name(policy),
            param.sched_priority,
            policy_name(want_policy),
        );
    }
    if !unit.cpu_affinity.is_empty() {
        // SAFETY: a zeroed cpu_set_t is an empty set; sched_getaffinity fills one we own.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        let got = unsafe { libc::sched_getaffinity(pid, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
        // SAFETY: CPU_ISSET reads the set we own.
        let cpus: Vec<usize> =
            (0..libc::CPU_SETSIZE as usize).filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) }).collect();
        let mut wanted = unit.cpu_affinity.clone();
        wanted.sort_unstable();
        wanted.dedup();
        if got == 0 && cpus != wanted {
            eprintln!("reflex launch: warning: `{}` runs on CPUs {cpus:?} instead of {wanted:?}", unit.name);
        }
    }
}

/// The launcher's own priority and CPUs (its router carries every message with access control
/// on), set before its session opens so its threads (the router's among them) inherit them;
/// each child gets its own in `spawn`, or normal scheduling.
fn apply_own_scheduling(launcher: &LauncherEntry) {
    if !launcher.cpu_affinity.is_empty() {
        match cpu_set_of(&launcher.cpu_affinity) {
            // SAFETY: a cpu_set_t we own.
            Ok(set) => unsafe {
                libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
            },
            Err(error) => eprintln!("reflex launch: warning: launcher.cpu_affinity: {error}"),
        }
    }
    if let Some(priority) = launcher.priority {
        let param = libc::sched_param { sched_priority: i32::from(priority) };
        // SAFETY: plain syscall on ourselves.
        if unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) } != 0 {
            eprintln!(
                "reflex launch: warning: cannot give the launcher SCHED_FIFO priority {priority}: {}",
                std::io::Error::last_os_error()
            );
        }
    }
    if launcher.lock_memory {
        if let Err(error) = reflex_runtime::realtime::lock_memory() {
            eprintln!("reflex launch: warning: cannot lock the launcher's memory: {error}");
        }
    }
}

/// SIGTERM to every running unit's process group that `which` selects, up to `grace` to exit,
/// then SIGKILL.
fn stop_all(units: &mut [Running], grace: Duration, which: impl Fn(&Unit) -> bool) {
    for running in units.iter_mut().filter(|r| which(&r.unit)) {
        running.next_start = None;
        if let Some(child) = &running.child {
            // SAFETY: signalling a process group we created.
            unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGTERM) };
        }
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && units.iter_mut().filter(|r| which(&r.unit)).any(still_running) {
        std::thread::sleep(POLL);
    }
    for running in units.iter_mut().filter(|r| which(&r.unit)) {
        drain_output(&mut running.forwarders);
        if let Some(child) = running.child.as_mut() {
            eprintln!("reflex launch: `{}` did not stop within {grace:?}; killing it", running.unit.name);
            // SAFETY: as above.
            unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
            let _ = child.wait();
            running.child = None;
        }
        running.finished = true;
    }
}

fn still_running(running: &mut Running) -> bool {
    match running.child.as_mut().map(|c| c.try_wait()) {
        Some(Ok(None)) => true,
        Some(_) => {
            running.child = None;
            false
        }
        None => false,
    }
}
