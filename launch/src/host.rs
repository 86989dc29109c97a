//! What a process started by the launcher runs: one node (`reflex node KIND --spec JSON`) or a
//! group of nodes as threads of one process (`reflex group`).

use crate::kinds;
use anyhow::{Context, Result};
use reflex_runtime::{NodeSpec, Shutdown};
use std::time::Duration;

/// Runs one node of a built-in kind until it is asked to stop.
pub fn run_node(kind_name: &str, spec: Option<&str>) -> Result<()> {
    let kind =
        kinds::find(kind_name).with_context(|| format!("unknown node kind `{kind_name}` (see `reflex kinds`)"))?;
    let spec: NodeSpec = serde_json::from_str(spec.unwrap_or("{}")).context("--spec is not a valid node spec")?;
    prepare_node_process(std::slice::from_ref(&spec));
    let shutdown = Shutdown::on_signals()?;
    exit_if_stuck(&shutdown);
    (kind.run)(spec, shutdown).with_context(|| format!("node `{kind_name}` failed"))
}

/// Several nodes as threads of one process; if one fails, all stop and the process fails.
pub fn run_group(name: &str, spec: &str) -> Result<bool> {
    let members: Vec<(String, NodeSpec)> = serde_json::from_str(spec).context("--spec is not a list of node specs")?;
    prepare_node_process(&members.iter().map(|(_, spec)| spec.clone()).collect::<Vec<_>>());
    let shutdown = Shutdown::on_signals()?;
    exit_if_stuck(&shutdown);
    // One session for all members, so messages between them stay inside the process. Under
    // access control it authenticates as the first member, whom the launcher's rules let do
    // what every member may (`Acl::sessions`).
    let session = match members.first() {
        Some((_, spec)) => {
            let mut transport = spec.transport.clone();
            transport.validate()?;
            transport.load_secrets()?;
            Some(transport.open().with_context(|| format!("group `{name}`: cannot open its zenoh session"))?)
        }
        None => None,
    };
    let mut threads = Vec::new();
    for (kind_name, spec) in members {
        let kind = kinds::find(&kind_name).with_context(|| format!("unknown node kind `{kind_name}`"))?;
        let (shutdown, node_name) = (shutdown.clone(), spec.name.clone());
        let session = session.clone();
        let thread = std::thread::Builder::new().name(node_name.clone()).spawn(move || {
            if let Some(session) = session {
                reflex_runtime::transport::use_session_on_this_thread(session);
            }
            let result = (kind.run)(spec, shutdown.clone());
            if let Err(error) = &result {
                eprintln!("node `{node_name}` failed: {error}");
                shutdown.request();
            }
            result.is_ok()
        })?;
        threads.push(thread);
    }
    drop(session);
    tracing::info!(group = name, nodes = threads.len(), "group running");
    let mut all_ok = true;
    for thread in threads {
        all_ok &= thread.join().unwrap_or(false);
    }
    Ok(all_ok)
}

/// What a node process does before anything else: other processes of the same user may not
/// read its memory or descriptors (its password pipe), and its memory is locked if asked.
fn prepare_node_process(specs: &[NodeSpec]) {
    // SAFETY: prctl with plain integer arguments.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0) };
    if specs.iter().any(|spec| spec.lock_memory) {
        if let Err(error) = reflex_runtime::realtime::lock_memory() {
            tracing::warn!(%error, "cannot lock memory (needs root or CAP_IPC_LOCK); it may page");
        }
    }
}

/// A node asked to stop (SIGTERM, or its launcher died) must be gone within 3 s, whatever it
/// was doing: no orphans.
fn exit_if_stuck(shutdown: &Shutdown) {
    let shutdown = shutdown.clone();
    let _ = std::thread::Builder::new().name("exit-guard".into()).spawn(move || {
        while !shutdown.is_requested() {
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_secs(3));
        eprintln!("reflex: did not stop within 3 s of the stop signal; exiting");
        reflex_runtime::flush_logs(Duration::from_millis(200));
        std::process::exit(1);
    });
}
