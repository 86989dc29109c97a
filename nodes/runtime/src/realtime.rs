//! Real-time set-up a node process does for itself: locking its memory. (Priorities and CPU
//! sets are set by the launcher before the program starts, so every thread inherits them.)

/// Locks the process's current and future memory (`mlockall`), so the hot path never waits for
/// a page to be read back. Needs root or CAP_IPC_LOCK; with only a finite RLIMIT_MEMLOCK it
/// may succeed, but every allocation past the limit then fails and the process aborts, so give
/// such a process the capability rather than a limit.
pub fn lock_memory() -> std::io::Result<()> {
    // SAFETY: mlockall takes flags only.
    if unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The scheduling policy and priority of every thread of process `pid` (from
/// `/proc/<pid>/task/*/stat`): (thread name, policy, priority). For tests and reports.
pub fn thread_policies(pid: u32) -> std::io::Result<Vec<(String, i32, i32)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let tid: i32 = match entry?.file_name().to_string_lossy().parse() {
            Ok(tid) => tid,
            Err(_) => continue,
        };
        let name = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm")).unwrap_or_default();
        // SAFETY: plain syscalls on a thread id; a thread that ended gives -1.
        let policy = unsafe { libc::sched_getscheduler(tid) };
        let mut param = libc::sched_param { sched_priority: 0 };
        // SAFETY: as above; param is ours.
        unsafe { libc::sched_getparam(tid, &mut param) };
        if policy >= 0 {
            out.push((name.trim().to_string(), policy & !libc::SCHED_RESET_ON_FORK, param.sched_priority));
        }
    }
    Ok(out)
}
