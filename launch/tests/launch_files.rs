//! Launch-file checks: every broken file in `tests/bad/` gives exactly the message in its
//! `.expected` file (file, line, column, snippet, hint); the shipped files pass.
//! To update after an intended change: `cd launch/tests/bad && for f in *.yaml; do
//! ../../../target/release/reflex check $f 2> ${f%.yaml}.expected; done` and read the diff.

use std::path::Path;
use std::process::Command;

fn check(dir: &Path, file: &str) -> (bool, String) {
    let output = Command::new(reflex_testing::reflex_bin()).args(["check", file]).current_dir(dir).output().unwrap();
    (output.status.success(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn broken_files_give_the_expected_errors() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let Some(stem) = name.strip_suffix(".yaml") else { continue };
        let expected = std::fs::read_to_string(dir.join(format!("{stem}.expected")))
            .unwrap_or_else(|_| panic!("{name} has no {stem}.expected"));
        let (ok, stderr) = check(&dir, &name);
        assert!(!ok, "{name} passed the check");
        assert_eq!(stderr, expected, "{name}");
        assert!(stderr.contains(&format!("{name}:")), "{name}: the message names the file");
        checked += 1;
    }
    assert!(checked >= 12, "only {checked} broken files found");
}

#[test]
fn shipped_launch_files_pass() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    for file in ["demo.yaml", "vehicle.yaml", "reference.yaml"] {
        let (ok, stderr) = check(dir, file);
        assert!(ok, "{file}: {stderr}");
    }
}

#[test]
fn arguments_can_be_set_and_must_exist() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let run = |args: &[&str]| Command::new(reflex_testing::reflex_bin()).args(args).current_dir(dir).output().unwrap();
    assert!(run(&["check", "demo.yaml", "--set", "fps=10"]).status.success());
    let output = run(&["check", "demo.yaml", "--set", "fps=0"]);
    assert!(!output.status.success(), "fps=0 reaches the parameter check");
    assert!(String::from_utf8_lossy(&output.stderr).contains("0 is outside 0 < fps <= 1000"));
    let output = run(&["check", "demo.yaml", "--set", "speed=3"]);
    assert!(String::from_utf8_lossy(&output.stderr)
        .contains("argument `speed` is set but the file declares no such argument"));
}

#[test]
fn schema_lists_every_top_level_key() {
    let output = Command::new(reflex_testing::reflex_bin()).arg("schema").output().unwrap();
    let schema: serde_json::Value = serde_json::from_slice(&output.stdout).expect("schema is JSON");
    let properties = schema["properties"].as_object().expect("properties");
    for key in ["args", "zenoh", "include", "nodes", "groups"] {
        assert!(properties.contains_key(key), "schema lacks `{key}`");
    }
    assert_eq!(schema["additionalProperties"], serde_json::Value::Bool(false), "unknown keys refused");
}

/// `group:` on nodes, chosen by a launch argument: the HIL bench's vehicle runs as five processes
/// or, with the detector and the AEB in one group, four; a group that would take in a safety
/// unit is refused as under `groups:`.
#[test]
fn a_launch_argument_chooses_the_deployment() {
    let root = reflex_testing::root();
    let check = |sets: &[&str]| {
        let mut command = Command::new(reflex_testing::reflex_bin());
        command.args(["check", "hil-tests/vehicle.yaml"]).current_dir(&root);
        for set in sets {
            command.args(["--set", set]);
        }
        let output = command.output().unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr),
        )
    };
    let (ok, text) = check(&[]);
    assert!(ok && text.contains("(5 processes)"), "{text}");
    let (ok, text) = check(&["perception_group=perception", "aeb_inline=true"]);
    assert!(ok && text.contains("(4 processes)"), "{text}");
    let (ok, text) = check(&["perception_group=monitor"]);
    assert!(!ok && text.contains("group name `monitor` is already used"), "{text}");
}
