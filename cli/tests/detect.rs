//! `reflex detect` end to end: JSON lines and annotated images from the shipped model, and the
//! errors a user sees when the OpenVINO runtime is missing or wrong (never a panic).

use reflex_testing::root;
use std::path::Path;
use std::process::Command;

fn detect(args: &[&str], openvino_lib: Option<&str>) -> (bool, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_reflex"));
    command.current_dir(root()).arg("detect").args(args).env("REFLEX_LOG", "error");
    if let Some(lib) = openvino_lib {
        command.env("OPENVINO_LIB", lib);
    }
    let output = command.output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into(),
        String::from_utf8_lossy(&output.stderr).into(),
    )
}

#[test]
fn prints_one_json_line_per_detection_and_draws_them() {
    let out = std::env::temp_dir().join(format!("reflex-detect-annotate-{}", std::process::id()));
    let image = "nodes/detector/tests/fixtures/dog.png";
    let (ok, stdout, stderr) = detect(&[image, "--annotate", out.to_str().unwrap()], None);
    assert!(ok, "{stderr}");
    let lines: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let classes: Vec<&str> = lines.iter().map(|l| l["class"].as_str().unwrap()).collect();
    assert!(classes.contains(&"bicycle") && classes.contains(&"dog"), "{stdout}");
    for line in &lines {
        assert_eq!(line["file"], image);
        assert_eq!(line["box"].as_array().unwrap().len(), 4);
        assert!(line["score"].as_f64().unwrap() >= 0.3);
    }
    // The annotated image has the boxes drawn: pixels on the bicycle's outline changed.
    let drawn = image::open(out.join("dog.png")).unwrap().into_rgb8();
    let original = image::open(root().join(image)).unwrap().into_rgb8();
    let bicycle = lines.iter().find(|l| l["class"] == "bicycle").unwrap()["box"].as_array().unwrap().clone();
    let (x, y) = (
        ((bicycle[0].as_f64().unwrap() + bicycle[2].as_f64().unwrap()) / 2.0) as u32,
        bicycle[1].as_f64().unwrap() as u32 + 1,
    );
    assert_ne!(drawn.get_pixel(x, y), original.get_pixel(x, y), "no outline at ({x}, {y})");
    assert_eq!(drawn.dimensions(), original.dimensions());
}

#[test]
fn a_missing_runtime_says_what_to_do() {
    let (ok, stdout, stderr) =
        detect(&["nodes/detector/tests/fixtures/dog.png"], Some("/nonexistent/libopenvino_c.so.2641"));
    assert!(!ok && stdout.is_empty());
    assert!(
        stderr.contains("OPENVINO_LIB=/nonexistent/libopenvino_c.so.2641") && stderr.contains("./scripts/setup.sh"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_library_that_is_not_openvino_is_refused_without_a_panic() {
    let libm = ["/lib/x86_64-linux-gnu/libm.so.6", "/usr/lib/x86_64-linux-gnu/libm.so.6", "/lib64/libm.so.6"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("libm to stand in for a wrong library");
    let (ok, _, stderr) = detect(&["nodes/detector/tests/fixtures/dog.png"], Some(libm));
    assert!(!ok);
    assert!(stderr.contains("not the OpenVINO C library") && stderr.contains("OPENVINO_LIB"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn unreadable_images_are_named_and_the_rest_still_run() {
    let junk = std::env::temp_dir().join(format!("reflex-detect-junk-{}.png", std::process::id()));
    std::fs::write(&junk, b"not a png").unwrap();
    let (ok, stdout, stderr) = detect(&[junk.to_str().unwrap(), "nodes/detector/tests/fixtures/vtest_0000.png"], None);
    assert!(!ok, "a failed image makes the exit status non-zero");
    assert!(stderr.contains(junk.to_str().unwrap()) && stderr.contains("cannot read image"), "{stderr}");
    assert!(stdout.contains("\"person\""), "the good image still ran: {stdout}");
}

/// Runs `reflex bench ARGS` from the repository root and returns its standard output; the test
/// fails with the benchmark's errors if it does.
fn bench(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_reflex"))
        .current_dir(root())
        .arg("bench")
        .args(args)
        .env("REFLEX_LOG", "error")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{}\n{stdout}", String::from_utf8_lossy(&output.stderr));
    stdout
}

/// The cells of the table rows that start with `start`.
fn table_rows<'a>(stdout: &'a str, start: &str) -> Vec<Vec<&'a str>> {
    stdout.lines().filter(|l| l.starts_with(start)).map(|l| l.split('|').map(str::trim).collect()).collect()
}

#[test]
fn detector_benchmark_accounts_for_every_frame() {
    let stdout = bench(&["detector", "--frames", "10", "--fps-seconds", "1"]);
    let rows = table_rows(&stdout, "| ");
    let app: Vec<_> = rows.iter().filter(|r| r[1].starts_with("OpenVINO benchmark_app")).collect();
    assert_eq!(app.len(), 2, "before and after:\n{stdout}");
    assert!(app.iter().all(|r| r[2] == "10"), "{app:?}");
    let node: Vec<_> = rows.iter().filter(|r| r[1].starts_with("detector node, queue → publish")).collect();
    assert_eq!(node.len(), 3, "416x416 and 640x480 back to back, 640x480 one in flight:\n{stdout}");
    for row in &node {
        let (n, p50): (u64, f64) = (row[2].parse().unwrap(), row[3].parse().unwrap());
        assert!(n >= 10 && p50 > 0.0, "{row:?}");
    }
    assert_eq!(node[2][2], "10", "one frame in flight: exactly the frames sent after warm-up: {:?}", node[2]);
    let ratio = stdout.lines().find(|l| l.starts_with("Node p50")).expect("ratio line");
    assert!(ratio.trim_end_matches('.').rsplit(' ').next().unwrap().parse::<f64>().unwrap() > 0.0, "{ratio}");
    // Frame-rate run: every frame sent was either answered or dropped (latest wins), none lost.
    let fps = rows.iter().find(|r| r[1] == "640x480 rgb8").expect("frame-rate row");
    let (sent, answered, dropped): (u64, u64, u64) =
        (fps[3].parse().unwrap(), fps[4].parse().unwrap(), fps[6].parse().unwrap());
    assert!(sent >= 20, "{fps:?}");
    assert_eq!(answered + dropped, sent, "{fps:?}");
}

#[test]
fn chain_benchmark_answers_frames_in_every_deployment() {
    let stdout = bench(&[
        "chain",
        "--models",
        "models/simnet/simnet.yaml",
        "--deployments",
        "processes,threads-inline",
        "--rounds",
        "1",
        "--seconds",
        "2",
    ]);
    let rows = table_rows(&stdout, "| simnet");
    let deployments: Vec<&str> = rows.iter().map(|r| r[2]).collect();
    assert_eq!(deployments, ["floor (one function)", "processes", "threads, AEB inline"], "{stdout}");
    for row in &rows {
        // 2 s at 30 fps: about 60 frames captured, and SimNet keeps up with most of them.
        let (frames, answered): (u64, f64) = (row[3].parse().unwrap(), row[4].trim_end_matches(" %").parse().unwrap());
        assert!((45..=75).contains(&frames), "{row:?}");
        assert!(answered >= 50.0, "{row:?}");
        let p50: f64 = row[5].parse().unwrap();
        let hops: f64 = row[10..13].iter().map(|h| h.parse::<f64>().unwrap()).sum();
        assert!(p50 > 0.0 && hops > 0.0, "{row:?}");
    }
    assert_eq!(rows[0][8], "1.00×", "the floor is its own reference: {stdout}");
}
