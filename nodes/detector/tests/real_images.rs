//! The detector on real photographs (Debian's darknet dog.jpg and frames of OpenCV's vtest.avi),
//! against boxes checked by eye, and against a reference computed with OpenVINO's own Python
//! runtime. Needs the OpenVINO runtime that `scripts/setup.sh` installs (`./test.sh` runs it).

use reflex_detector::{Detection, Detector, DetectorOptions};
use reflex_testing::root;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

fn fixtures() -> PathBuf {
    root().join("nodes/detector/tests/fixtures")
}

fn nanodet() -> Detector {
    load("nanodet.yaml")
}

/// `nanodet.yaml` (FP32) or `nanodet-int8.yaml`.
fn load(config: &str) -> Detector {
    Detector::load(&root().join("models/nanodet").join(config), DetectorOptions::default())
        .unwrap_or_else(|e| panic!("cannot load the shipped {config} (run ./scripts/setup.sh first): {e}"))
}

const PRECISIONS: [&str; 2] = ["nanodet.yaml", "nanodet-int8.yaml"];
const VTEST: [&str; 4] = ["vtest_0000.png", "vtest_0150.png", "vtest_0300.png", "vtest_0450.png"];

fn detect(detector: &mut Detector, file: &str) -> Vec<Detection> {
    let image = image::open(fixtures().join(file)).unwrap().into_rgb8();
    let mut found = Vec::new();
    detector.detect(image.as_raw(), image.width(), image.height(), &mut found).unwrap();
    found
}

struct Truth {
    classes: Vec<String>,
    box_: Detection,
}

fn ground_truth(file: &str) -> Vec<Truth> {
    let text = std::fs::read_to_string(fixtures().join("ground_truth.json")).unwrap();
    let all: Value = serde_json::from_str(&text).unwrap();
    all["images"][file]
        .as_array()
        .unwrap_or_else(|| panic!("no ground truth for {file}"))
        .iter()
        .map(|entry| {
            let b: Vec<f32> = entry["box"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
            let mut classes = vec![entry["class"].as_str().unwrap().to_string()];
            if let Some(also) = entry["also"].as_array() {
                classes.extend(also.iter().map(|v| v.as_str().unwrap().to_string()));
            }
            Truth { classes, box_: Detection { class: 0, score: 1.0, x0: b[0], y0: b[1], x1: b[2], y1: b[3] } }
        })
        .collect()
}

/// Best IoU of a detection of one of the classes with the true box.
fn best_iou(detector: &Detector, found: &[Detection], truth: &Truth) -> f32 {
    found
        .iter()
        .filter(|d| truth.classes.contains(&detector.config().label(d.class)))
        .map(|d| d.iou(&truth.box_))
        .fold(0.0, f32::max)
}

#[test]
fn finds_the_bicycle_the_dog_and_the_pickup_in_dog_jpg() {
    for config in PRECISIONS {
        let mut detector = load(config);
        let found = detect(&mut detector, "dog.png");
        for truth in ground_truth("dog.png") {
            let iou = best_iou(&detector, &found, &truth);
            println!("{config} dog.png {:?}: best IoU {iou:.3}", truth.classes);
            assert!(iou >= 0.5, "{config}: {:?} not found with IoU >= 0.5 (best {iou:.3}); {found:?}", truth.classes);
        }
    }
}

#[test]
fn finds_most_pedestrians_in_vtest_frames() {
    for config in PRECISIONS {
        let mut detector = load(config);
        let (mut people, mut hits) = (0, 0);
        for file in VTEST {
            let found = detect(&mut detector, file);
            let truths = ground_truth(file);
            let frame_hits = truths.iter().filter(|t| best_iou(&detector, &found, t) >= 0.5).count();
            println!("{config} {file}: {frame_hits} of {} pedestrians found at IoU >= 0.5", truths.len());
            (people, hits) = (people + truths.len(), hits + frame_hits);
        }
        let recall = hits as f64 / people as f64;
        println!("{config} vtest recall: {hits}/{people} = {recall:.3}");
        assert!(recall >= 0.7, "{config}: recall {recall:.3} is below 0.7");
    }
}

/// The zoomed pass (`zoom`: the model again over the frame's centre at full resolution) on
/// the vtest frames (768x576; NanoDet's input is 416x416, so the window is the middle 416x416
/// at 1.85 times the pixels of the resized frame): every pedestrian found without it is found
/// again, so recall does not drop, every box lies inside the frame, and the window's model is
/// compiled once, not per frame.
#[test]
fn the_zoomed_pass_keeps_what_the_full_frame_finds() {
    let mut plain = nanodet();
    let options = DetectorOptions { zoom: true, ..DetectorOptions::default() };
    let mut zoomed = Detector::load(&root().join("models/nanodet/nanodet.yaml"), options).unwrap();
    let (mut before, mut after, mut compiles) = (0, 0, None);
    for file in VTEST {
        let (found, more) = (detect(&mut plain, file), detect(&mut zoomed, file));
        for truth in ground_truth(file) {
            let (was, is) = (best_iou(&plain, &found, &truth) >= 0.5, best_iou(&zoomed, &more, &truth) >= 0.5);
            assert!(is || !was, "{file}: {:?} found without the zoom, lost with it; {more:?}", truth.box_);
            (before, after) = (before + usize::from(was), after + usize::from(is));
        }
        let image = image::open(fixtures().join(file)).unwrap();
        let (w, h) = (image.width() as f32, image.height() as f32);
        for d in &more {
            assert!(
                0.0 <= d.x0 && d.x0 < d.x1 && d.x1 <= w && 0.0 <= d.y0 && d.y0 < d.y1 && d.y1 <= h,
                "{file}: {d:?}"
            );
        }
        assert_eq!(*compiles.get_or_insert(zoomed.compiles()), zoomed.compiles(), "compiled again for {file}");
    }
    println!("vtest pedestrians found at IoU >= 0.5: {before} without the zoom, {after} with it");
    assert!(after >= before);
}

/// The INT8 model (NNCF, calibrated on other frames and photographs of the same Debian packages)
/// against FP32 on every fixture: each FP32 detection found again (same class, IoU >= 0.9) but
/// at most one per image (a score at the threshold), at most two extra per image, and box edges
/// within max(4 px, 3 % of the box's larger side).
#[test]
fn int8_finds_what_fp32_finds() {
    let (mut fp32, mut int8) = (load("nanodet.yaml"), load("nanodet-int8.yaml"));
    let mut matched = 0;
    for file in ["dog.png"].into_iter().chain(VTEST) {
        let (reference, quantised) = (detect(&mut fp32, file), detect(&mut int8, file));
        let mut left: Vec<&Detection> = quantised.iter().collect();
        let mut missed = Vec::new();
        for d in &reference {
            let best = left
                .iter()
                .enumerate()
                .filter(|(_, q)| q.class == d.class)
                .map(|(k, q)| (k, q.iou(d)))
                .max_by(|a, b| a.1.total_cmp(&b.1));
            match best {
                Some((k, iou)) if iou >= 0.9 => {
                    let q = left.remove(k);
                    let edge = [q.x0 - d.x0, q.y0 - d.y0, q.x1 - d.x1, q.y1 - d.y1]
                        .into_iter()
                        .map(f32::abs)
                        .fold(0.0, f32::max);
                    let allowed = 4f32.max(0.03 * (d.x1 - d.x0).max(d.y1 - d.y0));
                    assert!(edge <= allowed, "{file}: box moved {edge:.1} px (allowed {allowed:.1}): {d:?} -> {q:?}");
                    matched += 1;
                }
                _ => missed.push(d),
            }
        }
        println!("{file}: {} FP32 detections, {} missed by INT8, {} extra", reference.len(), missed.len(), left.len());
        assert!(missed.len() <= 1, "{file}: INT8 misses {missed:?}");
        assert!(left.len() <= 2, "{file}: INT8 adds {left:?}");
    }
    assert!(matched >= 35, "too few detections compared ({matched})");
}

/// The Python interpreter of the project venv (or REFLEX_PYTHON).
fn python() -> PathBuf {
    std::env::var_os("REFLEX_PYTHON").map(PathBuf::from).unwrap_or_else(|| root().join(".local/venv/bin/python"))
}

#[test]
fn equals_the_openvino_python_reference() {
    let mut detector = nanodet();
    let files = ["dog.png", "vtest_0150.png", "vtest_0300.png"];
    let paths: Vec<PathBuf> = files.iter().map(|f| fixtures().join(f)).collect();
    let output = Command::new(python())
        .arg(root().join("models/tools/reference_detect.py"))
        .arg(root().join("models/nanodet/nanodet.yaml"))
        .args(&paths)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} (run ./scripts/setup.sh): {e}", python().display()));
    assert!(output.status.success(), "reference failed: {}", String::from_utf8_lossy(&output.stderr));
    let reference: Vec<Value> =
        String::from_utf8(output.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let mut compared = 0;
    for (file, path) in files.iter().zip(&paths) {
        let ours = detect(&mut detector, file);
        let theirs: Vec<&Value> = reference.iter().filter(|r| r["file"] == path.to_str().unwrap()).collect();
        assert_eq!(
            ours.len(),
            theirs.len(),
            "{file}: {} detections here, {} in the reference",
            ours.len(),
            theirs.len()
        );
        for (d, r) in ours.iter().zip(&theirs) {
            assert_eq!(d.class as u64, r["class_index"].as_u64().unwrap(), "{file}: class differs: {d:?} vs {r}");
            let score = r["score"].as_f64().unwrap() as f32;
            assert!((d.score - score).abs() < 1e-4, "{file}: score {} vs {score}", d.score);
            let b: Vec<f32> = r["box"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
            for (ours, theirs) in [d.x0, d.y0, d.x1, d.y1].into_iter().zip(b) {
                assert!((ours - theirs).abs() < 0.05, "{file}: box {d:?} vs {r}");
            }
            compared += 1;
        }
    }
    println!("{compared} detections equal to the OpenVINO Python reference");
    assert!(compared >= 15, "too few detections compared ({compared}) for the check to mean anything");
}

#[test]
fn a_model_whose_outputs_do_not_fit_the_decoder_is_refused() {
    let dir = std::env::temp_dir().join(format!("reflex-detector-misfit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let models = root().join("models");
    let config = dir.join("misfit.yaml");
    std::fs::write(
        &config,
        format!(
            "model: {}\nlabels: {}\ninput: {{width: 416, height: 416}}\ndecoder: {{kind: yolov8, output: scores_s8}}\n",
            models.join("nanodet/nanodet.xml").display(),
            models.join("coco.txt").display()
        ),
    )
    .unwrap();
    let error = Detector::load(&config, DetectorOptions::default()).err().expect("a misfit must not load").to_string();
    assert!(error.contains("scores_s8") && error.contains("[1, 2704, 80]") && error.contains("yolov8"), "{error}");

    // The same model with a nanodet decoder that expects a different number of bins.
    let wrong_bins = dir.join("bins.yaml");
    let text = std::fs::read_to_string(models.join("nanodet/nanodet.yaml")).unwrap();
    let text = text
        .replace("model: nanodet.xml", &format!("model: {}", models.join("nanodet/nanodet.xml").display()))
        .replace("labels: ../coco.txt", &format!("labels: {}", models.join("coco.txt").display()))
        .replace("reg_max: 10", "reg_max: 7");
    std::fs::write(&wrong_bins, text).unwrap();
    let error = Detector::load(&wrong_bins, DetectorOptions::default()).err().unwrap().to_string();
    assert!(error.contains("boxes_s8") && error.contains("[1, 2704, 44]") && error.contains("reg_max 7"), "{error}");
}

#[test]
fn a_corrupt_or_missing_model_file_is_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("reflex-detector-corrupt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("labels.txt"), "person\n").unwrap();
    let config = |model: &str| {
        let path = dir.join(format!("{model}.yaml"));
        std::fs::write(
            &path,
            format!("model: {model}\nlabels: labels.txt\ninput: {{width: 64, height: 64}}\ndecoder: {{kind: yolov8, output: o}}\n"),
        )
        .unwrap();
        path
    };
    // Truncated IR: the XML of the real model cut in half, with its weights beside it.
    let xml = std::fs::read(root().join("models/nanodet/nanodet.xml")).unwrap();
    std::fs::write(dir.join("cut.xml"), &xml[..xml.len() / 2]).unwrap();
    std::fs::write(dir.join("cut.bin"), b"not weights").unwrap();
    let error = Detector::load(&config("cut.xml"), DetectorOptions::default()).err().unwrap().to_string();
    assert!(error.contains("cut.xml") && error.contains("cannot read this model"), "{error}");

    std::fs::write(dir.join("junk.onnx"), b"\x08\x07garbage that is no protobuf").unwrap();
    let error = Detector::load(&config("junk.onnx"), DetectorOptions::default()).err().unwrap().to_string();
    assert!(error.contains("junk.onnx") && error.contains("cannot read this model"), "{error}");

    // An IR without its weights file.
    std::fs::write(dir.join("alone.xml"), &xml).unwrap();
    let error = Detector::load(&config("alone.xml"), DetectorOptions::default()).err().unwrap().to_string();
    assert!(error.contains("alone.bin") && error.contains("missing"), "{error}");

    let error = Detector::load(&config("absent.xml"), DetectorOptions::default()).err().unwrap().to_string();
    assert!(error.contains("absent.xml") && error.contains(":1:"), "{error}");
}

#[test]
fn frames_of_any_size_and_bad_frames() {
    let mut detector = nanodet();
    let image = image::open(fixtures().join("dog.png")).unwrap().into_rgb8();
    let half = image::imageops::resize(&image, 384, 288, image::imageops::FilterType::Triangle);
    let mut found = Vec::new();
    detector.detect(half.as_raw(), 384, 288, &mut found).unwrap();
    let bicycle = found.iter().find(|d| detector.config().label(d.class) == "bicycle").expect("bicycle at half size");
    // Boxes come back in the pixels of the frame given, here half the original.
    let truth = Detection { class: 1, score: 1.0, x0: 63.0, y0: 66.5, x1: 283.5, y1: 210.0 };
    assert!(bicycle.iou(&truth) >= 0.5, "{bicycle:?}");
    let error = detector.detect(&[0u8; 10], 384, 288, &mut found).unwrap_err();
    assert!(error.to_string().contains("384x288"), "{error}");
    assert!(found.is_empty());
}

/// M4: a frame whose geometry would make the detector allocate gigabytes is refused before
/// anything is compiled or allocated (here with the letterbox placement, which pads a 1x65535
/// frame to a 65535-wide square).
#[test]
fn an_absurd_frame_geometry_is_refused_without_compiling() {
    let dir = std::env::temp_dir().join(format!("reflex-letterbox-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = std::fs::read_to_string(root().join("models/nanodet/nanodet.yaml")).unwrap();
    let model = root().join("models/nanodet");
    let letterbox = config.replace("resize: stretch", "resize: letterbox");
    assert_ne!(letterbox, config, "the shipped config names its resize mode");
    // The copy names the model's files by absolute path.
    let letterbox = letterbox
        .replace("model: nanodet.xml", &format!("model: {}/nanodet.xml", model.display()))
        .replace("labels: ../coco.txt", &format!("labels: {}/../coco.txt", model.display()));
    let file = dir.join("letterbox.yaml");
    std::fs::write(&file, letterbox).unwrap();
    let mut detector = Detector::load(&file, DetectorOptions::default()).unwrap();
    let ((w, h), _) = detector.canvas(1, 65535);
    assert!(w * h > reflex_detector::MAX_CANVAS_PIXELS, "{w}x{h}");
    let compiles = detector.compiles();
    let error = detector.prepare(1, 65535).unwrap_err().to_string();
    assert!(error.starts_with("frame refused"), "{error}");
    assert_eq!(detector.compiles(), compiles, "nothing was compiled");
}
