//! The hardware-in-the-loop fault matrix (`reflex bench hil`, `hil-tests/`): the vehicle stack as
//! processes, the simulator as the plant in real time (its brake unit the product's actuator
//! gateway, no watchdog of its own), one braking scenario per fault. Every row passes (or skips,
//! saying why), and its figures are in the report. The rows are the safety case's evidence
//! (`docs/SAFETY.md`): each fails on the behaviour of a953c22 for the finding it names.

use reflex_testing::{output_within, root};
use std::process::Command;
use std::time::Duration;

/// Every row, and the finding of the safety review (`shared/reviews/safety-review.md`) or the
/// issue's property it proves.
const ROWS: [(&str, &str); 28] = [
    ("baseline", "latency figures"),
    ("detector killed", "liveliness loss"),
    ("detector stalled", "input deadline"),
    ("camera frozen", "command stamp not advancing"),
    ("camera stream lost", "input deadline"),
    ("30 % drops on detections", "tolerable loss"),
    ("corrupt messages on every input", "bad input"),
    ("CPU saturated (stress-ng)", "property 6: real-time priorities"),
    ("vehicle–bench link cut", "C3: gateway"),
    ("arbiter SIGSTOP", "C3: gateway"),
    ("arbiter SIGKILL", "C3: gateway"),
    ("monitor SIGSTOP, SIGCONT 1 s later", "H2/H3: supervisor missing, level-triggered health"),
    ("monitor restart", "H3: starts engaged"),
    ("launcher SIGSTOP", "C3: router loss brakes"),
    ("launcher SIGKILL", "C3: router and parent loss brakes"),
    ("wall clock −60 s", "C1"),
    ("wall clock −1 s", "C1"),
    ("wall clock +1 s", "C1"),
    ("garbage flood on detections", "H6/property 3"),
    ("garbage flood on the driver command", "H6: bounded drains"),
    ("spoofed AEB request", "H5/property 3"),
    ("spoofed RECOVERED event and token", "H5: health from the owner only"),
    ("fault-key freeze from a non-bench user", "C2"),
    ("NaN CameraInfo", "H8"),
    ("NaN box", "H7"),
    ("class flicker", "H10"),
    ("stale vehicle state", "H9"),
    ("200 MB message on the image topic", "M3: max_message_size"),
];

#[test]
fn every_row_of_the_fault_matrix_passes_and_is_reported() {
    let out = std::env::temp_dir().join(format!("reflex-hil-{}", std::process::id()));
    // 28 rows of about 10 s, some run twice: 15 minutes is far past a healthy run.
    let output = output_within(
        Command::new(reflex_testing::reflex_bin()).current_dir(root()).args([
            "bench",
            "hil",
            "--out",
            out.to_str().unwrap(),
        ]),
        Duration::from_secs(15 * 60),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stderr}\n{stdout}");
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let rows = results.as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    for (wanted, proves) in ROWS {
        assert!(names.contains(&wanted), "row {wanted} ({proves}) missing: {names:?}");
    }
    let row = |name: &str| rows.iter().find(|r| r["name"] == name).unwrap();
    for row in rows {
        if row["skipped"].is_string() {
            eprintln!("{} skipped: {}", row["name"], row["skipped"]);
            continue;
        }
        assert_eq!(row["passed"], true, "{row}");
        assert_eq!(row["impact"], false, "{row}");
        assert!(row["panics"].as_array().unwrap().is_empty(), "{row}");
        assert!(row["recording"].as_str().unwrap().starts_with("intact"), "{row}");
        let expected = row["expected"].as_str().unwrap();
        if expected.starts_with("safe stop") {
            assert!(row["detection_ms"].as_f64().is_some() && row["reaction_ms"].as_f64().is_some(), "{row}");
            assert_eq!(row["released_while_moving"], false, "{row}");
        }
        if expected == "nominal" {
            // The brake unit followed the arbiter all along: no fallback, no safe stop.
            assert!(row["gateway_ms"].is_null() && row["monitor_ms"].is_null(), "{row}");
        }
    }
    // No command reaches the brake unit: the product's gateway is what brakes (the plant has no
    // watchdog of its own any more).
    for name in ["vehicle–bench link cut", "arbiter SIGSTOP", "arbiter SIGKILL", "launcher SIGSTOP", "launcher SIGKILL"]
    {
        let row = row(name);
        if row["skipped"].is_null() {
            assert!(row["gateway_ms"].as_f64().is_some_and(|w| w > 0.0 && w <= 300.0), "{row}");
        }
    }
    // The stranger did reach the router with its freeze command (the router refused it).
    let freeze = row("fault-key freeze from a non-bench user");
    assert!(freeze["notes"].to_string().contains("freeze command sent"), "{freeze}");
    for row in rows.iter().filter(|r| r["first_run"].is_string()) {
        eprintln!("{} ran twice: {}", row["name"], row["first_run"]);
    }
    let corrupt = row("corrupt messages on every input");
    assert!(corrupt["decode_errors"].as_u64().unwrap() > 0, "corruption reached the decoders: {corrupt}");
    for name in ["garbage flood on detections", "garbage flood on the driver command"] {
        let notes = row(name)["notes"].to_string();
        let rate: f64 =
            notes.split(" msg/s").next().and_then(|s| s.rsplit('(').next()).and_then(|s| s.parse().ok()).unwrap_or(0.0);
        assert!(rate >= 50_000.0, "{name}: at least 50,000 messages/s: {notes}");
    }
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("| **capture → command** |") && report.contains("| detector killed |"), "{report}");
    assert!(out.join("latency_end_to_end.png").is_file());
}
