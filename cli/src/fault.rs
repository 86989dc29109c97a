//! `reflex fault NODE ...`: injects a fault into a running node. Message faults (drop, delay,
//! freeze, corrupt per input; stall of the node's callback) go to the node over its fault key
//! (see `reflex_runtime::fault`); process faults (SIGSTOP, SIGCONT, SIGKILL) are signals to the
//! node's process, found from its liveliness token, on this host. Either way the fault is
//! reported on /reflex/events, so recordings show what was injected and when.

use anyhow::{bail, Context, Result};
use reflex_msgs::reflex_msgs::MonitorEvent;
use reflex_msgs::topics;
use reflex_runtime::fault::FaultCommand;
use reflex_runtime::{Node, NodeOptions};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct FaultArgs {
    /// The node's name (as in the launch file).
    node: String,
    /// Apply the input faults to this topic only (default: every input of the node).
    #[arg(long, value_name = "TOPIC")]
    input: Option<String>,
    /// Drop this share of arriving messages, %.
    #[arg(long, value_name = "PCT")]
    drop_pct: Option<f64>,
    /// Hold each arriving message this long before the node may take it, ms.
    #[arg(long, value_name = "MS")]
    delay_ms: Option<f64>,
    /// Repeat the last message in place of every new one (a frozen camera).
    #[arg(long)]
    freeze: bool,
    /// End a freeze.
    #[arg(long, conflicts_with = "freeze")]
    unfreeze: bool,
    /// Flip bytes in this share of arriving messages, %.
    #[arg(long, value_name = "PCT")]
    corrupt_pct: Option<f64>,
    /// Stall the node's per-message callback this long (inside its budget), ms.
    #[arg(long, value_name = "MS")]
    stall_ms: Option<f64>,
    /// Clear every message fault of the node.
    #[arg(long)]
    clear: bool,
    /// Process faults: SIGSTOP the node's process...
    #[arg(long, conflicts_with_all = ["cont", "kill"])]
    stop: bool,
    /// ... SIGCONT it ...
    #[arg(long, conflicts_with_all = ["stop", "kill"])]
    cont: bool,
    /// ... or SIGKILL it (the launcher's restart policy then applies).
    #[arg(long, conflicts_with_all = ["stop", "cont"])]
    kill: bool,
    #[command(flatten)]
    target: crate::Target,
}

impl FaultArgs {
    fn command(&self) -> Option<FaultCommand> {
        let command = FaultCommand {
            input: self.input.clone(),
            drop_pct: self.drop_pct,
            delay_ms: self.delay_ms,
            freeze: (self.freeze || self.unfreeze).then_some(self.freeze),
            corrupt_pct: self.corrupt_pct,
            stall_ms: self.stall_ms,
            clear: self.clear,
        };
        (command != FaultCommand { input: self.input.clone(), ..Default::default() }).then_some(command)
    }

    fn signal(&self) -> Option<(i32, &'static str)> {
        match (self.stop, self.cont, self.kill) {
            (true, _, _) => Some((libc::SIGSTOP, "SIGSTOP")),
            (_, true, _) => Some((libc::SIGCONT, "SIGCONT")),
            (_, _, true) => Some((libc::SIGKILL, "SIGKILL")),
            _ => None,
        }
    }
}

pub fn run(args: FaultArgs) -> Result<bool> {
    let command = args.command();
    let signal = args.signal();
    if command.is_some() && signal.is_some() {
        bail!("a message fault and a process signal at once: send them one at a time");
    }
    if command.is_none() && signal.is_none() {
        bail!(
            "say which fault: --drop-pct, --delay-ms, --freeze/--unfreeze, --corrupt-pct, --stall-ms, --clear, \
             --stop, --cont or --kill (see --help)"
        );
    }
    if let Some(command) = &command {
        command.validate().map_err(anyhow::Error::msg)?;
    }
    let node = Node::new(NodeOptions::new("reflex-fault").transport(args.target.transport()))?;
    // The target's token may take a moment to be seen by a fresh session.
    let start = Instant::now();
    let (pid, host) = loop {
        if let Some(found) = node.system().find_node(&args.node)? {
            break (found.pid, found.host);
        }
        if start.elapsed() > Duration::from_secs(3) {
            bail!("no node {:?} is running under prefix {:?} (see `reflex node list`)", args.node, args.target.prefix);
        }
    };
    let mut events = node.publisher::<MonitorEvent>(topics::MONITOR_EVENTS)?;
    let detail = match (command, signal) {
        (Some(command), _) => {
            node.system().send_fault(&args.node, &command)?;
            eprintln!("sent {} to node {}", serde_json::to_string(&command)?, args.node);
            // The node reports the change itself (KIND_FAULT_INJECTED), with its new settings.
            return Ok(true);
        }
        (None, Some((signal, name))) => {
            if host != reflex_runtime::hostname() {
                bail!("{} runs on host {host:?}; signals only reach processes on this host", args.node);
            }
            // The pid comes from a liveliness token anyone could declare: signal it only if it
            // is really that node (never -1, 0, ourselves or a stranger's process).
            let Some(pid) = node.system().find_local_node_pid(&args.node)? else {
                bail!("no process on this host is the reflex node {:?} (token pid {pid} refused)", args.node);
            };
            let pid = pid as libc::pid_t;
            // SAFETY: kill(2) on a pid checked to be that reflex node.
            if unsafe { libc::kill(pid, signal) } != 0 {
                return Err(std::io::Error::last_os_error()).with_context(|| format!("{name} to pid {pid}"));
            }
            eprintln!("{name} sent to {} (pid {pid})", args.node);
            format!("{name} to pid {pid} by reflex fault")
        }
        (None, None) => unreachable!("checked above"),
    };
    let event = MonitorEvent {
        header: reflex_msgs::std_msgs::Header { stamp: node.clock().now(), frame_id: String::new() },
        kind: MonitorEvent::KIND_FAULT_INJECTED,
        node: args.node.clone(),
        detail,
        ..Default::default()
    };
    events.wait_for_subscribers(Duration::from_millis(300));
    events.publish(&event)?;
    // Give the event time to leave before the session closes.
    std::thread::sleep(Duration::from_millis(100));
    Ok(true)
}
