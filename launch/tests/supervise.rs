//! `reflex launch` with real processes: clean stop on SIGINT, no orphans after SIGKILL of the
//! launcher, restart with backoff, composed groups, and the introspection tools against
//! `launch/demo.yaml`. Each test has its own rendezvous port and prefix; every wait is bounded.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn reflex() -> Command {
    let mut command = Command::new(reflex_testing::reflex_bin());
    command.env("REFLEX_LOG", "info,zenoh=error");
    command
}

struct Launch {
    child: Child,
    lines: mpsc::Receiver<String>,
    port: u16,
}

impl Launch {
    /// `reflex launch FILE --set ...` with its own rendezvous port; output lines collected.
    fn start(file: &Path, port: u16, sets: &[String]) -> Self {
        let mut command = reflex();
        command.arg("launch").arg(file).env("REFLEX_ZENOH_PORT", port.to_string());
        for set in sets {
            command.args(["--set", set]);
        }
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let (sender, lines) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let sender = sender.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = sender.send(line);
                }
            });
        }
        Self { child, lines, port }
    }

    /// Waits for a line containing `text`; returns every line seen until then.
    fn wait_for(&self, text: &str, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            let found = line.contains(text);
            seen.push(line);
            if found {
                return seen;
            }
        }
        panic!("no line with {text:?} within {timeout:?}; saw:\n{}", seen.join("\n"));
    }

    fn signal(&self, signal: i32) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "launcher still running after {timeout:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn tool(&self, args: &[&str], prefix: &str) -> String {
        let output = reflex()
            .args(args)
            .args(["--prefix", prefix, "--connect", &format!("tcp/127.0.0.1:{}", self.port)])
            .output()
            .unwrap();
        assert!(output.status.success(), "reflex {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

impl Drop for Launch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Live (not zombie) processes whose parent is `parent`.
fn children_of(parent: u32) -> Vec<u32> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // Fields after the command name, which is in parentheses and may contain spaces.
        let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest.trim().to_string()) else { continue };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.get(1) == Some(&parent.to_string().as_str()) && fields[0] != "Z" {
            children.push(pid);
        }
    }
    children
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim().starts_with('Z')))
        .unwrap_or(false)
}

fn wait_gone(pids: &[u32], timeout: Duration) -> Duration {
    let start = Instant::now();
    while pids.iter().any(|&p| alive(p)) {
        assert!(
            start.elapsed() < timeout,
            "processes {:?} still alive after {timeout:?}",
            pids.iter().filter(|&&p| alive(p)).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    start.elapsed()
}

fn demo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("demo.yaml")
}

fn write_launch(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("reflex-launch-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn sigint_stops_every_node_within_two_seconds() {
    let mut launch = Launch::start(&demo(), 17711, &["prefix=sigint".into()]);
    launch.wait_for("camera publishing", Duration::from_secs(20));
    let children = children_of(launch.child.id());
    assert_eq!(children.len(), 2, "one process per node");
    launch.signal(libc::SIGINT);
    let took = wait_gone(&children, Duration::from_secs(2));
    let status = launch.wait_exit(Duration::from_secs(3));
    assert!(status.success(), "a requested stop is not a failure: {status:?}");
    let output: Vec<String> = launch.lines.try_iter().collect();
    assert!(output.iter().any(|l| l.contains("camera stopped")), "the camera stopped itself:\n{}", output.join("\n"));
    assert!(
        !output.iter().any(|l| l.contains("did not stop")),
        "nodes stop by themselves, unkilled:\n{}",
        output.join("\n")
    );
    eprintln!("children gone {took:?} after SIGINT");
}

#[test]
fn sigkill_of_the_launcher_leaves_no_orphans() {
    let mut launch = Launch::start(&demo(), 17712, &["prefix=sigkill".into()]);
    launch.wait_for("camera publishing", Duration::from_secs(20));
    let children = children_of(launch.child.id());
    assert_eq!(children.len(), 2);
    launch.signal(libc::SIGKILL);
    launch.wait_exit(Duration::from_secs(2));
    let took = wait_gone(&children, Duration::from_secs(2));
    eprintln!("children gone {took:?} after SIGKILL of the launcher");
}

#[test]
fn on_failure_restarts_with_backoff_then_gives_up() {
    let file = write_launch(
        "crash.yaml",
        "nodes:\n  - name: crasher\n    exec: /bin/sh\n    args: [\"-c\", \"echo started; exit 3\"]\n    restart: {policy: on-failure, max_restarts: 2, backoff_ms: 200}\n",
    );
    let mut launch = Launch::start(&file, 17713, &[]);
    let start = Instant::now();
    let lines = launch.wait_for("gave up after 2 restarts", Duration::from_secs(10));
    let elapsed = start.elapsed();
    let status = launch.wait_exit(Duration::from_secs(5));
    // Lines on stdout and stderr arrive through two pipes: collect what came after "gave up".
    let mut lines = lines;
    while let Ok(line) = launch.lines.recv_timeout(Duration::from_secs(2)) {
        lines.push(line); // until both pipes are closed (the channel disconnects)
    }
    assert!(!status.success(), "a required node that gave up fails the launch");
    assert_eq!(
        lines.iter().filter(|l| l.contains("[crasher] started")).count(),
        3,
        "first run + 2 restarts:\n{}",
        lines.join("\n")
    );
    assert!(lines.iter().any(|l| l.contains("exited with status 3; restart 1/2 in 200 ms")), "{}", lines.join("\n"));
    assert!(lines.iter().any(|l| l.contains("restart 2/2 in 400 ms")), "backoff doubles:\n{}", lines.join("\n"));
    assert!(elapsed >= Duration::from_millis(600), "waited the backoff (200 + 400 ms), took {elapsed:?}");
}

#[test]
fn a_group_runs_two_nodes_in_one_process() {
    let file = write_launch(
        "group.yaml",
        "zenoh: {prefix: grouped}\nnodes:\n  - name: camera\n    kind: test-pattern\n    params: {fps: 20}\n  - name: stats\n    kind: frame-stats\n    params: {report_period_s: 0.5}\ngroups:\n  - name: vision\n    nodes: [camera, stats]\n",
    );
    let launch = Launch::start(&file, 17714, &[]);
    launch.wait_for("camera publishing", Duration::from_secs(20));
    assert_eq!(children_of(launch.child.id()).len(), 1, "one process for the group");
    let list = launch.tool(&["node", "list"], "grouped");
    let pids: Vec<&str> = list.lines().skip(1).filter_map(|l| l.split_whitespace().nth(2)).collect();
    assert_eq!(pids.len(), 2, "both nodes announce themselves:\n{list}");
    assert_eq!(pids[0], pids[1], "same process:\n{list}");
    // The stats node in the same process still receives the camera's frames.
    let echo = launch.tool(&["topic", "echo", "/diagnostics", "--count", "1", "--duration", "10"], "grouped");
    assert!(echo.contains("\"rate_hz\""), "{echo}");
}

#[test]
fn introspection_tools_work_against_the_demo() {
    let launch = Launch::start(&demo(), 17715, &["prefix=tools".into(), "fps=25".into()]);
    launch.wait_for("camera publishing", Duration::from_secs(20));

    let list = launch.tool(&["node", "list"], "tools");
    for node in ["camera", "stats"] {
        assert!(list.lines().any(|l| l.starts_with(node)), "node list lacks {node}:\n{list}");
    }
    let topics = launch.tool(&["topic", "list", "-v"], "tools");
    assert!(
        topics.contains("/camera/image  [sensor_msgs/msg/Image]  publishers: camera  subscribers: stats"),
        "{topics}"
    );

    // echo decodes: the diagnostics message as JSON, with the stats node's values.
    let echo = launch.tool(&["topic", "echo", "/diagnostics", "--count", "1", "--duration", "10"], "tools");
    let message: serde_json::Value = serde_json::from_str(echo.lines().next().expect("one message")).unwrap();
    assert_eq!(message["status"][0]["name"], "stats: /camera/image");
    let image = launch.tool(&["topic", "echo", "/camera/image", "--count", "1", "--duration", "10"], "tools");
    let image: serde_json::Value = serde_json::from_str(image.lines().next().unwrap()).unwrap();
    assert_eq!((image["width"].as_u64(), image["encoding"].as_str()), (Some(640), Some("rgb8")));
    assert_eq!(image["data"], "<921600 bytes>");
    let raw =
        launch.tool(&["topic", "echo", "/camera/camera_info", "--raw", "--count", "1", "--duration", "10"], "tools");
    assert!(raw.starts_with("00 01 00 00 "), "CDR little-endian header:\n{raw}");

    // hz: close to the configured 25 Hz (generous: a shared 2-core machine).
    let hz = launch.tool(&["topic", "hz", "/camera/image", "--window", "2", "--duration", "4.5"], "tools");
    let rates: Vec<f64> = hz.lines().filter_map(|l| l.split_whitespace().nth(1)?.parse().ok()).collect();
    assert!(!rates.is_empty(), "{hz}");
    let best = rates.iter().copied().fold(0.0, f64::max);
    assert!((18.0..=30.0).contains(&best), "rate {best} Hz, configured 25:\n{hz}");
    assert!(hz.contains("age p50"), "stamped type: age reported:\n{hz}");

    let bw = launch.tool(&["topic", "bw", "/camera/image", "--duration", "2.5"], "tools");
    assert!(bw.contains("mean 900.1 KiB"), "{bw}");
}

#[test]
fn a_killed_node_leads_to_safe_stop_at_the_arbiter() {
    use reflex_msgs::reflex_msgs::{BrakeRequest, SafeStop};
    use reflex_runtime::{InputOptions, Node, NodeOptions, TransportConfig};
    let file = write_launch(
        "chain.yaml",
        "zenoh: {prefix: killed}\nnodes:\n  - name: camera\n    kind: test-pattern\n    params: {fps: 20}\n    required: false\n  - name: monitor\n    kind: monitor\n    params:\n      required_nodes: [camera]\n      command_budget_ms: 0\n      startup_grace_s: 2\n      supervisor: {release: stable_period, stable_period_s: 0.3}\n  - name: arbiter\n    kind: arbiter\n",
    );
    let port = 17716;
    let launch = Launch::start(&file, port, &[]);
    launch.wait_for("camera publishing", Duration::from_secs(20));
    let observer = Node::new(
        NodeOptions::new("observer")
            .transport(TransportConfig { prefix: "killed".into(), ..TransportConfig::loopback(port) }),
    )
    .unwrap();
    let mut commands =
        observer.subscriber::<BrakeRequest>("/vehicle/brake_command", InputOptions::default().capacity(256)).unwrap();
    let mut states =
        observer.subscriber::<SafeStop>("/monitor/safe_stop", InputOptions::default().capacity(64)).unwrap();
    // Nominal first: the monitor has released its start-up engagement and the arbiter commands
    // no braking. (In its own start-up grace the arbiter commands none before it has heard the
    // monitor at all, so its command alone proves nothing.)
    let start = Instant::now();
    let (mut released, mut nominal) = (false, false);
    while !(released && nominal) {
        assert!(start.elapsed() < Duration::from_secs(20), "never nominal (monitor released: {released})");
        observer.wait_for_input(Duration::from_millis(20));
        while let Some(state) = states.recv() {
            released = !state.message.engaged;
        }
        while let Some(command) = commands.recv() {
            nominal = released && command.message.level == BrakeRequest::LEVEL_NONE;
        }
    }
    let list = launch.tool(&["node", "list"], "killed");
    let camera_pid: i32 = list
        .lines()
        .find(|l| l.starts_with("camera"))
        .and_then(|l| l.split_whitespace().nth(2))
        .unwrap()
        .parse()
        .unwrap();
    // SAFETY: killing the camera process the launcher started.
    unsafe { libc::kill(camera_pid, libc::SIGKILL) };
    let killed = Instant::now();
    let (mut stopped_at, mut reason) = (None, String::new());
    while stopped_at.is_none() || reason.is_empty() {
        assert!(killed.elapsed() < Duration::from_secs(5), "no safe stop within 5 s of killing the camera ({reason})");
        observer.wait_for_input(Duration::from_millis(5));
        while let Some(state) = states.recv() {
            // (The monitor's start-up engagement may still be on its way.)
            if state.message.engaged && reason.is_empty() && state.message.source != "monitor start" {
                reason = format!("{} {}", state.message.reason, state.message.source);
            }
        }
        while let Some(command) = commands.recv() {
            if command.message.level == BrakeRequest::LEVEL_FULL && command.message.reason == "safe stop" {
                stopped_at.get_or_insert(killed.elapsed());
            }
        }
    }
    assert!(reason == "node gone camera: gone" || reason.contains("camera: silent"), "reason: {reason}");
    eprintln!("kill -9 camera -> full braking at the arbiter after {:?} ({reason})", stopped_at.unwrap());
}

/// C4: a required perception node that fails for good used to make the launcher stop every
/// unit, the monitor and the arbiter too, at the moment a safe stop was needed. Now the other
/// units stop, the safety units run on, and the arbiter commands full braking.
#[test]
fn perception_failing_for_good_never_stops_the_safety_units() {
    use reflex_msgs::reflex_msgs::BrakeRequest;
    use reflex_runtime::{InputOptions, Node, NodeOptions, TransportConfig};
    let file = write_launch(
        "perception_fails.yaml",
        "zenoh: {prefix: c4}\nnodes:\n  - name: camera\n    exec: /bin/sh\n    args: [\"-c\", \"sleep 2; exit 3\"]\n    \
         restart: {policy: on-failure, max_restarts: 1, backoff_ms: 100}\n  - name: monitor\n    kind: monitor\n    \
         params:\n      required_nodes: [camera]\n      command_budget_ms: 0\n      startup_grace_s: 1\n  - name: arbiter\n    kind: arbiter\n    \
         restart: {policy: on-failure, max_restarts: 3, backoff_ms: 100}\n",
    );
    let port = 17717;
    let launch = Launch::start(&file, port, &[]);
    let lines = launch.wait_for("keeping the safety units", Duration::from_secs(30));
    assert!(lines.iter().any(|l| l.contains("gave up after 1 restarts")), "{}", lines.join("\n"));
    let children = children_of(launch.child.id());
    assert_eq!(children.len(), 2, "the monitor and the arbiter still run: {children:?}");
    let observer = Node::new(
        NodeOptions::new("observer")
            .transport(TransportConfig { prefix: "c4".into(), ..TransportConfig::loopback(port) }),
    )
    .unwrap();
    let mut commands =
        observer.subscriber::<BrakeRequest>("/vehicle/brake_command", InputOptions::default().capacity(256)).unwrap();
    let start = Instant::now();
    let mut full = 0;
    while start.elapsed() < Duration::from_secs(2) {
        observer.wait_for_input(Duration::from_millis(20));
        while let Some(command) = commands.recv() {
            full += usize::from(command.message.level == BrakeRequest::LEVEL_FULL);
        }
    }
    assert!(full >= 50, "the arbiter commands full braking at 50 Hz: {full} in 2 s");
    // A safety unit that dies after that is still restarted (its restart policy holds).
    let arbiter = children
        .iter()
        .copied()
        .find(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains("arbiter"))
        })
        .expect("the arbiter's process");
    // SAFETY: a signal to our launch's own child.
    unsafe { libc::kill(arbiter as i32, libc::SIGKILL) };
    launch.wait_for("`arbiter` was killed by signal 9; restart 1/3", Duration::from_secs(10));
    let start = Instant::now();
    while children_of(launch.child.id()).len() < 2 {
        assert!(start.elapsed() < Duration::from_secs(10), "the arbiter was not started again");
        std::thread::sleep(Duration::from_millis(50));
    }
    while commands.recv().is_some() {}
    let start = Instant::now();
    let mut full = 0;
    while full < 10 {
        assert!(start.elapsed() < Duration::from_secs(20), "the restarted arbiter never commanded full braking");
        observer.wait_for_input(Duration::from_millis(20));
        while let Some(command) = commands.recv() {
            full += usize::from(command.message.level == BrakeRequest::LEVEL_FULL);
        }
    }
}

/// Property 6 (M8): a unit's SCHED_FIFO priority is set before its program starts, so every
/// thread of it runs at that priority, zenoh's too (a953c22 set it on the main thread after
/// the start, and the threads made before stayed SCHED_OTHER).
#[test]
fn every_thread_of_a_prioritised_unit_runs_at_its_priority() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: SCHED_FIFO needs root or CAP_SYS_NICE");
        return;
    }
    let file = write_launch(
        "priority.yaml",
        "zenoh: {prefix: fifo}\nnodes:\n  - name: camera\n    kind: test-pattern\n    priority: 20\n    params: {fps: 10}\n",
    );
    let launch = Launch::start(&file, 17718, &[]);
    launch.wait_for("camera publishing", Duration::from_secs(20));
    let children = children_of(launch.child.id());
    assert_eq!(children.len(), 1);
    let threads = reflex_runtime::realtime::thread_policies(children[0]).unwrap();
    assert!(threads.len() >= 4, "zenoh's threads are there: {threads:?}");
    for (name, policy, priority) in &threads {
        assert_eq!((*policy, *priority), (libc::SCHED_FIFO, 20), "thread {name}: {threads:?}");
    }
}

/// H11: a credentials folder that is not ours alone (here: open to everyone, then a symlink)
/// is refused before anything is written to it.
#[test]
fn a_credentials_folder_open_to_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("reflex-credentials-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let file = write_launch(
        "credentials.yaml",
        &format!(
            "zenoh: {{prefix: creds, access_control: {{external: [bench], credentials_dir: {:?}}}}}\nnodes:\n  - name: camera\n    kind: test-pattern\n",
            dir.display().to_string()
        ),
    );
    let output = reflex().args(["launch", file.to_str().unwrap()]).env("REFLEX_ZENOH_PORT", "17719").output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && stderr.contains("closed to others"), "{stderr}");
    assert!(std::fs::read_dir(&dir).unwrap().next().is_none(), "nothing written into it");
    let link = dir.with_extension("link");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&dir, &link).unwrap();
    let file = write_launch(
        "credentials-link.yaml",
        &format!(
            "zenoh: {{prefix: creds, access_control: {{external: [bench], credentials_dir: {:?}}}}}\nnodes:\n  - name: camera\n    kind: test-pattern\n",
            link.display().to_string()
        ),
    );
    let output = reflex().args(["launch", file.to_str().unwrap()]).env("REFLEX_ZENOH_PORT", "17719").output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && stderr.contains("symlink"), "{stderr}");
    let _ = std::fs::remove_file(&link);
    let _ = std::fs::remove_dir_all(&dir);
}
