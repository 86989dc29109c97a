//! `reflex sim` in ground-truth mode: the CCRs grid with the real AEB code, a report other
//! programs can read, runs that repeat bit for bit, and scenario errors with file, line, column.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().unwrap()
}

fn sim(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_reflex")).current_dir(root()).arg("sim").args(args).output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into(),
        String::from_utf8_lossy(&output.stderr).into(),
    )
}

#[test]
fn ccrs_is_all_green_and_runs_repeat_bit_for_bit() {
    let out = |n: u32| std::env::temp_dir().join(format!("reflex-sim-ccrs-{}-{n}", std::process::id()));
    let (ok, stdout, stderr) = sim(&["suite", "ccrs", "--out", out(1).to_str().unwrap()]);
    assert!(ok, "{stderr}");
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out(1).join("results.json")).unwrap()).unwrap();
    let cells = results["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 18, "9 speeds x 2 overlaps");
    for cell in cells {
        assert_eq!(cell["colour"], "green", "{cell}");
        assert_eq!(cell["impact"], false, "{cell}");
        assert!(cell["braking_time_s"].as_f64().is_some(), "the AEB braked: {cell}");
    }
    assert!(stdout.contains("| CCRs | 18 | 18 | 18.00 / 18 |"), "{stdout}");
    let summary = std::fs::read_to_string(out(1).join("summary.md")).unwrap();
    assert!(summary.contains("## NCAP grid") && summary.contains("| CCRs (lateral_m 0.9) |"), "{summary}");
    assert!(out(1).join("series/CCRs_50_km_h__lateral_m_0.csv").is_file());

    let (ok, _, stderr) = sim(&["suite", "ccrs", "--out", out(2).to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert_eq!(
        std::fs::read(out(1).join("results.json")).unwrap(),
        std::fs::read(out(2).join("results.json")).unwrap()
    );
    // Another seed changes the noise, and so the numbers.
    let (ok, _, _) = sim(&["suite", "ccrs", "--seed", "2", "--out", out(3).to_str().unwrap()]);
    assert!(ok);
    assert_ne!(
        std::fs::read(out(1).join("results.json")).unwrap(),
        std::fs::read(out(3).join("results.json")).unwrap()
    );
}

#[test]
fn false_activation_checks_do_not_brake() {
    let out = std::env::temp_dir().join(format!("reflex-sim-fa-{}", std::process::id()));
    let (ok, stdout, stderr) =
        sim(&["run", "sim/scenarios/fa_adjacent.yaml", "sim/scenarios/fa_parked.yaml", "--out", out.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    for cell in results["cells"].as_array().unwrap() {
        assert_eq!(cell["expect"], "no_braking");
        assert!(cell["braking_time_s"].is_null(), "false activation: {cell}\n{stdout}");
    }
}

#[test]
fn a_bad_scenario_is_named_with_file_line_and_column() {
    let file = std::env::temp_dir().join(format!("reflex-sim-bad-{}.yaml", std::process::id()));
    std::fs::write(&file, "name: X\nego_speed_kmh: 30\nactors:\n  - kind: tram\n    speed_kmh: 0\n").unwrap();
    let (ok, _, stderr) = sim(&["run", file.to_str().unwrap()]);
    assert!(!ok);
    assert!(stderr.contains(&format!("{}:4:11:", file.display())) && stderr.contains("tram"), "{stderr}");
    std::fs::write(&file, "name: X\nego_speed_kmh: [30, -20]\nactors:\n  - {kind: car, speed_kmh: 0}\n").unwrap();
    let (ok, _, stderr) = sim(&["run", file.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        stderr.contains(&format!("{}:2:16:", file.display())) && stderr.contains("-20 must be above 0"),
        "{stderr}"
    );
    let (ok, _, stderr) = sim(&["run", "sim/scenarios/ccrs.yaml", "--perception", "full"]);
    assert!(!ok && stderr.contains("only `ground-truth` is built so far"), "{stderr}");
}

#[test]
fn real_time_runs_the_chain_as_processes_and_measures_latency() {
    let dir = std::env::temp_dir().join(format!("reflex-sim-rt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = dir.join("ccrs.yaml");
    std::fs::write(&scenario, "name: CCRs\nego_speed_kmh: [20, 40]\nactors:\n  - {kind: car, speed_kmh: 0}\n").unwrap();
    let out = dir.join("report");
    let (ok, stdout, stderr) = sim(&["run", scenario.to_str().unwrap(), "--realtime", "--out", out.to_str().unwrap()]);
    assert!(ok, "{stderr}\n{stdout}");
    assert!(stderr.contains("aeb, monitor and arbiter as processes"), "{stderr}");
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["realtime"], true);
    let cells = results["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 2);
    for cell in cells {
        // The chain's brake commands reached the plant: it braked, and the capture → command
        // time was measured on the frames it answered.
        assert!(cell["braking_time_s"].as_f64().is_some(), "{cell}");
        let latency = cell["latency_ms"].as_array().unwrap_or_else(|| panic!("no latency: {cell}"));
        assert!(latency[0].as_f64().unwrap() > 0.0, "{cell}");
    }
    assert_eq!(cells[0]["impact"], false, "20 km/h against a stationary car is avoided: {}", cells[0]);
}
