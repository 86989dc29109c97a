//! Least privilege on the bus. With `zenoh.access_control` in the launch file a rogue process
//! cannot get a brake command to the actuator nor a safe-stop demand to the arbiter: not with
//! no credentials (it cannot connect), and not with credentials of its own (the launcher's
//! router lets each topic be written only by the nodes the launch graph names, `delete`s
//! included), while the arbiter's commands keep arriving and follow the real monitor. It can
//! neither state another node's health nor declare a liveliness token in another node's name,
//! nor send fault commands (fault injection is off). The same launch without access control
//! lets the rogue's messages through, so the test can fail.

use reflex_msgs::reflex_msgs::{BrakeRequest, SafeStop};
use reflex_runtime::rogue::{self, ForgedToken, Tap};
use reflex_runtime::transport::Security;
use reflex_runtime::{keys, InputOptions, Node, NodeOptions, TransportConfig};
use reflex_testing::{launch, root};
use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// `reflex launch FILE` from the repository root, its output in `dir`/launch.log.
fn launch_logged(file: &std::path::Path, dir: &std::path::Path) -> reflex_testing::LaunchHandle {
    launch(file, |command| {
        command
            .current_dir(root())
            .env("REFLEX_LOG", "error")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("launch.log")).unwrap());
    })
}

/// What the actuator side saw while the arbiter ran and two rogues (one with credentials of its
/// own, one with none) tried everything.
#[derive(Debug, Default)]
struct Seen {
    /// Sources of the commands; a command the arbiter made for a safe stop counts as
    /// `"arbiter (safe stop)"`, one made because no monitor was heard `"arbiter (supervisor missing)"`.
    sources: BTreeSet<String>,
    last: String,
    /// `delete`s on the command key.
    deletes: u64,
    /// Health messages on the arbiter's health key not from the arbiter.
    forged_health: u64,
    /// Liveliness tokens in the arbiter's name with the rogue's pid.
    forged_tokens: u64,
}

fn commands_seen(port: u16, access_control: bool) -> Seen {
    let dir = std::env::temp_dir().join(format!("reflex-acl-{}-{port}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let credentials = dir.join("credentials");
    let prefix = format!("acl{port}");
    let acl = if access_control {
        format!(
            ", access_control: {{publishers: {{/monitor/safe_stop: [monitor]}}, \
             external: [actuator, monitor, rogue], credentials_dir: {:?}}}",
            credentials.display().to_string()
        )
    } else {
        String::new()
    };
    let file = dir.join("launch.yaml");
    std::fs::write(
        &file,
        format!(
            "zenoh: {{prefix: {prefix}, rendezvous_port: {port}{acl}}}\nnodes:\n  - name: arbiter\n    kind: arbiter\n    \
             params: {{rate_hz: 20, startup_grace_s: 0.5}}\n    inputs: {{safe_stop: {{external: true}}}}\n  - name: aeb\n    kind: aeb\n    inputs:\n      detections: {{external: true}}\n      \
             camera_info: {{external: true}}\n      vehicle_state: {{external: true}}\n"
        ),
    )
    .unwrap();
    let _launch = launch_logged(&file, &dir);
    let launch_log = || std::fs::read_to_string(dir.join("launch.log")).unwrap_or_default();
    let as_user = |user: &str| {
        let password = credentials.join(format!("{user}.password"));
        let start = Instant::now();
        while access_control && !password.is_file() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the launcher wrote no credentials within 20 s; its output:\n{}",
                launch_log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let security = access_control.then(|| Security::external(user, password));
        TransportConfig { prefix: prefix.clone(), security, ..TransportConfig::loopback(port) }
    };
    assert!(
        !access_control || !credentials.join("aeb.password").exists(),
        "a node's password is never a file another process could read"
    );
    let actuator = Node::new(NodeOptions::new("actuator").transport(as_user("actuator"))).unwrap();
    let mut commands =
        actuator.subscriber::<BrakeRequest>("/vehicle/brake_command", InputOptions::default().capacity(4096)).unwrap();
    let command_key = keys::topic_key(&prefix, "/vehicle/brake_command");
    let health_key = keys::health_key(&prefix, "arbiter");
    let deletes = Tap::samples(&actuator, &command_key, |seen| seen.delete).unwrap();
    let forged_health = Tap::samples(&actuator, &health_key, |seen| seen.payload.starts_with(b"forged")).unwrap();
    let forged_tokens =
        Tap::tokens(&actuator, &keys::all_nodes(&prefix), |seen| seen.key.ends_with("rogue-host/4242")).unwrap();
    // A rogue with credentials of its own, and one with none.
    let rogue = Node::new(NodeOptions::new("rogue").transport(as_user("rogue"))).unwrap();
    let stranger = Node::new(
        NodeOptions::new("stranger")
            .transport(TransportConfig { prefix: prefix.clone(), ..TransportConfig::loopback(port) }),
    )
    .unwrap();
    let mut rogue_out = rogue.publisher::<BrakeRequest>("/vehicle/brake_command").unwrap();
    let mut stranger_out = stranger.publisher::<BrakeRequest>("/vehicle/brake_command").unwrap();
    let mut rogue_stop = rogue.publisher::<SafeStop>("/monitor/safe_stop").unwrap();
    let _rogue_token = ForgedToken::declare(&rogue, "arbiter", "rogue-host", 4242);
    // The real monitor: all is well.
    let monitor = Node::new(NodeOptions::new("monitor").transport(as_user("monitor"))).unwrap();
    let mut monitor_out = monitor.publisher::<SafeStop>("/monitor/safe_stop").unwrap();
    let forged = |source: &str| BrakeRequest {
        level: BrakeRequest::LEVEL_FULL,
        deceleration_mps2: 9.8,
        source: source.into(),
        reason: "rogue".into(),
        ..Default::default()
    };
    let mut seen = Seen::default();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(6) {
        rogue_out.publish(&forged("rogue")).unwrap();
        stranger_out.publish(&forged("stranger")).unwrap();
        monitor_out.publish(&SafeStop { state: SafeStop::STATE_NOMINAL, ..Default::default() }).unwrap();
        let _ = rogue::delete(&rogue, &command_key);
        let _ = rogue::put(&rogue, &health_key, b"forged");
        std::thread::sleep(Duration::from_millis(10));
        rogue_stop
            .publish(&SafeStop {
                state: SafeStop::STATE_SAFE_STOP,
                engaged: true,
                reason: "rogue".into(),
                ..Default::default()
            })
            .unwrap();
        std::thread::sleep(Duration::from_millis(10));
        while let Some(command) = commands.recv() {
            let message = command.message;
            seen.last = match message.reason.as_str() {
                "safe stop" | "supervisor missing" => format!("{} ({})", message.source, message.reason),
                _ => message.source.clone(),
            };
            seen.sources.insert(seen.last.clone());
        }
    }
    seen.deletes = deletes.count();
    seen.forged_health = forged_health.count();
    seen.forged_tokens = forged_tokens.count();
    seen
}

/// Property 3 (C2, H4, H5, findings of the safety review): least privilege from the launch graph.
#[test]
fn only_the_arbiter_reaches_the_actuator_under_access_control() {
    let seen = commands_seen(17761, true);
    assert!(seen.sources.contains("arbiter"), "the legitimate chain still works: {seen:?}");
    // (Before the real monitor connects, the arbiter may find it missing.)
    assert_eq!(seen.last, "arbiter", "the real monitor's word reaches the arbiter: {seen:?}");
    assert!(!seen.sources.contains("rogue"), "credentials of another user must not command the brakes: {seen:?}");
    assert!(!seen.sources.contains("stranger"), "a process without credentials must not connect: {seen:?}");
    assert!(!seen.sources.contains("arbiter (safe stop)"), "only the monitor may demand a safe stop: {seen:?}");
    assert_eq!(seen.deletes, 0, "a `delete` on the command key is a write too: {seen:?}");
    assert_eq!(seen.forged_health, 0, "only the arbiter may state the arbiter's health: {seen:?}");
    assert_eq!(seen.forged_tokens, 0, "only the arbiter may declare tokens in its name: {seen:?}");
}

#[test]
fn without_access_control_the_rogue_gets_through() {
    let seen = commands_seen(17762, false);
    assert!(seen.sources.contains("arbiter"), "{seen:?}");
    assert!(seen.sources.contains("rogue") && seen.sources.contains("stranger"), "the test can fail: {seen:?}");
    assert!(seen.sources.contains("arbiter (safe stop)"), "the rogue's safe-stop demand gets through: {seen:?}");
    assert!(seen.deletes > 0 && seen.forged_health > 0 && seen.forged_tokens > 0, "{seen:?}");
}

/// A group under access control is one process with one identity: its members share one
/// session, opened as the first member, and the launcher's rules let that session do what each
/// member may. The camera's frames reach the stats node inside the process, and the stats
/// node's report (a topic only `stats` may write) reaches a reader outside; rules that did not
/// know the group would refuse it, since the session is `camera`'s.
#[test]
fn a_group_under_access_control_speaks_for_each_member() {
    use reflex_msgs::diagnostic_msgs::DiagnosticArray;
    let port = 17763;
    let dir = std::env::temp_dir().join(format!("reflex-acl-group-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let credentials = dir.join("credentials");
    let prefix = format!("aclgroup{port}");
    let file = dir.join("launch.yaml");
    std::fs::write(
        &file,
        format!(
            "zenoh: {{prefix: {prefix}, rendezvous_port: {port}, access_control: {{external: [tools], \
             credentials_dir: {:?}}}}}\nnodes:\n  - name: camera\n    kind: test-pattern\n    \
             params: {{fps: 30, width: 64, height: 48}}\n  - name: stats\n    kind: frame-stats\n    \
             params: {{report_period_s: 0.2}}\ngroups:\n  - name: vision\n    nodes: [camera, stats]\n",
            credentials.display().to_string()
        ),
    )
    .unwrap();
    let _launch = launch_logged(&file, &dir);
    let password = credentials.join("tools.password");
    reflex_testing::wait_until("the launcher writes the tools' credentials", Duration::from_secs(20), || {
        password.is_file()
    });
    let transport = TransportConfig {
        prefix,
        security: Some(Security::external("tools", password)),
        ..TransportConfig::loopback(port)
    };
    let tools = Node::new(NodeOptions::new("tools").transport(transport)).unwrap();
    let mut reports =
        tools.subscriber::<DiagnosticArray>("/diagnostics", InputOptions::default().capacity(64)).unwrap();
    let mut rate = None;
    let start = Instant::now();
    while rate.is_none() && start.elapsed() < Duration::from_secs(20) {
        tools.wait_for_input(Duration::from_millis(50));
        while let Some(report) = reports.recv() {
            for status in &report.message.status {
                if status.name.starts_with("stats:") && status.message.ends_with("Hz") {
                    rate = Some(status.message.clone());
                }
            }
        }
    }
    let log = std::fs::read_to_string(dir.join("launch.log")).unwrap_or_default();
    assert!(rate.is_some(), "no frame report from the grouped stats node within 20 s; launch output:\n{log}");
    for node in ["camera", "stats"] {
        assert!(tools.system().find_local_node_pid(node).unwrap().is_some(), "{node} is not listed");
    }
}
