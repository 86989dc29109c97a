//! Access control on the command path. With `zenoh.access_control` in the launch file, a rogue
//! process cannot get a brake command to the actuator nor a safe-stop demand to the arbiter:
//! not with no credentials (it cannot connect), and not with stolen valid ones (the AEB's: the
//! launcher's router denies `put` on the command key from anyone but the arbiter, and on the
//! safe-stop key from anyone but the monitor), while the arbiter's commands keep arriving and
//! follow the real monitor. The same launch without access control lets the rogue's messages
//! through, so the test can fail.

mod common;

use common::{root, Launch};
use reflex_msgs::reflex_msgs::{BrakeRequest, SafeStop};
use reflex_runtime::transport::Security;
use reflex_runtime::{InputOptions, Node, NodeOptions, TransportConfig};
use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Sources of the commands the actuator saw while the arbiter ran and two rogues published
/// brake commands and safe-stop demands; a command the arbiter made for a safe stop counts as
/// `"arbiter (safe stop)"`, one made because no monitor was heard `"arbiter (supervisor
/// missing)"`.
fn commands_seen(port: u16, access_control: bool) -> (BTreeSet<String>, String) {
    let dir = std::env::temp_dir().join(format!("reflex-acl-{}-{port}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let credentials = dir.join("credentials");
    let prefix = format!("acl{port}");
    let acl = if access_control {
        format!(
            ", access_control: {{publishers: {{/vehicle/brake_command: [arbiter], /monitor/safe_stop: [monitor]}}, \
             external: [actuator, monitor], credentials_dir: {:?}}}",
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
    let _launch = Launch(
        Command::new(env!("CARGO_BIN_EXE_reflex"))
            .current_dir(root())
            .arg("launch")
            .arg(&file)
            .env("REFLEX_LOG", "error")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("launch.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let launch_log = || std::fs::read_to_string(dir.join("launch.log")).unwrap_or_default();
    let as_user = |user: &str| {
        let start = Instant::now();
        while access_control && !credentials.join("dictionary").is_file() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the launcher wrote no credentials within 20 s; its output:\n{}",
                launch_log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let security = access_control.then(|| Security {
            user: user.into(),
            password_file: credentials.join(format!("{user}.password")),
            dictionary_file: credentials.join("dictionary"),
            guarded: [("/vehicle/brake_command".to_string(), vec!["arbiter".to_string()])].into(),
            users: Vec::new(),
        });
        TransportConfig { prefix: prefix.clone(), security, ..TransportConfig::loopback(port) }
    };
    let actuator = Node::new(NodeOptions::new("actuator").transport(as_user("actuator"))).unwrap();
    let mut commands =
        actuator.subscriber::<BrakeRequest>("/vehicle/brake_command", InputOptions::default().capacity(4096)).unwrap();
    // A rogue with the AEB's (valid) credentials, and one with none.
    let impostor = Node::new(NodeOptions::new("impostor").transport(as_user("aeb"))).unwrap();
    let stranger = Node::new(
        NodeOptions::new("stranger")
            .transport(TransportConfig { prefix: prefix.clone(), ..TransportConfig::loopback(port) }),
    )
    .unwrap();
    let mut impostor_out = impostor.publisher::<BrakeRequest>("/vehicle/brake_command").unwrap();
    let mut stranger_out = stranger.publisher::<BrakeRequest>("/vehicle/brake_command").unwrap();
    let mut impostor_stop = impostor.publisher::<SafeStop>("/monitor/safe_stop").unwrap();
    // The real monitor: all is well.
    let monitor = Node::new(NodeOptions::new("monitor").transport(as_user("monitor"))).unwrap();
    let mut monitor_out = monitor.publisher::<SafeStop>("/monitor/safe_stop").unwrap();
    let rogue = |source: &str| BrakeRequest {
        level: BrakeRequest::LEVEL_FULL,
        deceleration_mps2: 9.8,
        source: source.into(),
        reason: "rogue".into(),
        ..Default::default()
    };
    let mut seen = BTreeSet::new();
    let mut last = String::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(6) {
        impostor_out.publish(&rogue("impostor")).unwrap();
        stranger_out.publish(&rogue("stranger")).unwrap();
        monitor_out.publish(&SafeStop { state: SafeStop::STATE_NOMINAL, ..Default::default() }).unwrap();
        std::thread::sleep(Duration::from_millis(10));
        impostor_stop
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
            last = match message.reason.as_str() {
                "safe stop" | "supervisor missing" => format!("{} ({})", message.source, message.reason),
                _ => message.source.clone(),
            };
            seen.insert(last.clone());
        }
    }
    (seen, last)
}

#[test]
fn only_the_arbiter_reaches_the_actuator_under_access_control() {
    let (seen, last) = commands_seen(17761, true);
    assert!(seen.contains("arbiter"), "the legitimate chain still works: {seen:?}");
    // (Before the real monitor connects, the arbiter may find it missing.)
    assert_eq!(last, "arbiter", "the real monitor's word reaches the arbiter: {seen:?}");
    assert!(!seen.contains("impostor"), "valid credentials of another node must not command the brakes: {seen:?}");
    assert!(!seen.contains("stranger"), "a process without credentials must not connect: {seen:?}");
    assert!(!seen.contains("arbiter (safe stop)"), "only the monitor may demand a safe stop: {seen:?}");
}

#[test]
fn without_access_control_the_rogue_gets_through() {
    let (seen, _) = commands_seen(17762, false);
    assert!(seen.contains("arbiter"), "{seen:?}");
    assert!(seen.contains("impostor") && seen.contains("stranger"), "the test can fail: {seen:?}");
    assert!(seen.contains("arbiter (safe stop)"), "the rogue's safe-stop demand gets through: {seen:?}");
}
