//! `reflex launch`: one process per unit (a node, or a group of nodes as threads), output
//! prefixed with the unit's name, restart policies with backoff, and a clean stop.
//!
//! No orphans: each child runs in its own process group and asks the kernel for SIGKILL when
//! the launcher dies (`PR_SET_PDEATHSIG`), so even a `kill -9` of the launcher takes every node
//! with it. On SIGINT/SIGTERM the launcher sends SIGTERM to every group, waits `grace`, then
//! sends SIGKILL.

use crate::check::{Plan, Program, Unit};
use crate::launch_file::RestartPolicy;
use anyhow::{Context, Result};
use reflex_runtime::Shutdown;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
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
    let private_credentials = match plan.access.clone() {
        Some(access) => secure(&mut plan, &access)?,
        None => None,
    };
    // Hold the rendezvous for the whole launch, so nodes can come and go (and restart).
    let _rendezvous = plan.transport.open().context("cannot open the launcher's zenoh session")?;
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
    loop {
        if shutdown.is_requested() {
            eprintln!("reflex launch: stopping {} unit(s)", units.iter().filter(|u| u.child.is_some()).count());
            stop_all(&mut units, grace);
            break;
        }
        let now = Instant::now();
        for (index, running) in units.iter_mut().enumerate() {
            if let Some(at) = running.next_start {
                if at <= now {
                    running.next_start = None;
                    match spawn(&exe, &running.unit, index, name_width, colors) {
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
            if restart && running.restarts < running.unit.restart.max_restarts {
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
        if any_required_failed {
            eprintln!("reflex launch: a required node failed; stopping the rest");
            stop_all(&mut units, grace);
            break;
        }
        if units.iter().all(|u| u.finished) {
            break;
        }
        std::thread::sleep(POLL);
    }
    if let Some(dir) = private_credentials {
        let _ = std::fs::remove_dir_all(dir);
    }
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

/// Gives every process of the launch its own credentials (and the external users theirs) and
/// the guarded topics: writes a dictionary and one password file per user, mode 0600. Returns
/// the folder when it is the launcher's own (no `credentials_dir`), to remove at the end.
fn secure(plan: &mut Plan, access: &crate::launch_file::AccessControlEntry) -> Result<Option<std::path::PathBuf>> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let (dir, private) = match &access.credentials_dir {
        Some(dir) => (dir.clone(), false),
        None => (std::env::temp_dir().join(format!("reflex-credentials-{}", std::process::id())), true),
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let dir = std::path::absolute(&dir)?;
    let mut users: Vec<String> = vec!["launch".into()];
    for unit in &mut plan.units {
        users.extend(unit.program.specs_mut().into_iter().map(|spec| spec.name.clone()));
    }
    users.extend(access.external.iter().cloned());
    let write_private = |path: &std::path::Path, text: &str| -> Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        std::io::Write::write_all(&mut file, text.as_bytes())?;
        Ok(())
    };
    let mut dictionary = String::new();
    let mut random = std::fs::File::open("/dev/urandom").context("no /dev/urandom for the passwords")?;
    for user in &users {
        let mut bytes = [0u8; 16];
        std::io::Read::read_exact(&mut random, &mut bytes)?;
        let password: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        dictionary.push_str(&format!("{user}:{password}\n"));
        write_private(&dir.join(format!("{user}.password")), &password)?;
    }
    let dictionary_file = dir.join("dictionary");
    write_private(&dictionary_file, &dictionary)?;
    let security = |user: &str| reflex_runtime::transport::Security {
        user: user.into(),
        password_file: dir.join(format!("{user}.password")),
        dictionary_file: dictionary_file.clone(),
        guarded: access.publishers.clone(),
        users: users.clone(),
    };
    plan.transport.security = Some(security("launch"));
    for unit in &mut plan.units {
        for spec in unit.program.specs_mut() {
            spec.transport.security = Some(security(&spec.name));
        }
    }
    eprintln!("reflex launch: access control on; credentials in {}", dir.display());
    Ok(private.then_some(dir))
}

fn spawn(
    exe: &std::path::Path,
    unit: &Unit,
    index: usize,
    name_width: usize,
    colors: bool,
) -> Result<(Child, Forwarders)> {
    let mut command = match &unit.program {
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
    // SAFETY: only async-signal-safe calls (setpgid, prctl, getppid, _exit) between fork and exec.
    unsafe {
        command.pre_exec(move || {
            libc::setpgid(0, 0);
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            // The launcher may have died between fork and prctl.
            if libc::getppid() != launcher {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    let mut child = command.spawn().with_context(|| match &unit.program {
        Program::Exec { program, .. } => format!("cannot run `{program}`"),
        _ => "cannot re-run the reflex executable".into(),
    })?;
    apply_scheduling(unit, child.id() as libc::pid_t);
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

/// CPU affinity and SCHED_FIFO priority, best effort: a clear warning where the OS refuses.
fn apply_scheduling(unit: &Unit, pid: libc::pid_t) {
    if !unit.cpu_affinity.is_empty() {
        // SAFETY: cpu_set_t is plain data; CPU_SET only writes inside it.
        let result = unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            for &cpu in &unit.cpu_affinity {
                libc::CPU_SET(cpu, &mut set);
            }
            libc::sched_setaffinity(pid, std::mem::size_of::<libc::cpu_set_t>(), &set)
        };
        if result != 0 {
            eprintln!(
                "reflex launch: warning: cannot pin `{}` to CPUs {:?}: {}",
                unit.name,
                unit.cpu_affinity,
                std::io::Error::last_os_error()
            );
        }
    }
    if let Some(priority) = unit.priority {
        let param = libc::sched_param { sched_priority: i32::from(priority) };
        // SAFETY: plain syscall on a pid we just started.
        if unsafe { libc::sched_setscheduler(pid, libc::SCHED_FIFO, &param) } != 0 {
            eprintln!(
                "reflex launch: warning: cannot give `{}` SCHED_FIFO priority {priority}: {} (needs root or CAP_SYS_NICE); it runs with normal scheduling",
                unit.name,
                std::io::Error::last_os_error()
            );
        }
    }
}

/// SIGTERM to every running unit's process group, up to `grace` to exit, then SIGKILL.
fn stop_all(units: &mut [Running], grace: Duration) {
    for running in units.iter_mut() {
        running.next_start = None;
        if let Some(child) = &running.child {
            // SAFETY: signalling a process group we created.
            unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGTERM) };
        }
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && units.iter_mut().any(|u| still_running(u)) {
        std::thread::sleep(POLL);
    }
    for running in units.iter_mut() {
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
