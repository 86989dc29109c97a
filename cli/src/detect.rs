//! `reflex detect`: the detector node's code on image files, one JSON line per detection, and
//! optionally the images with their boxes drawn so a person can look.

use anyhow::{Context, Result};
use reflex_detector::{Detection, Detector, DetectorOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct DetectArgs {
    /// Model config (YAML): network file, labels, input and decoder.
    #[arg(long, default_value = "models/nanodet/nanodet.yaml")]
    pub model: PathBuf,
    /// Image files (PNG or JPEG).
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// Write each image with its boxes drawn, as PNG, into this folder.
    #[arg(long, value_name = "DIR")]
    pub annotate: Option<PathBuf>,
    /// OpenVINO device: CPU, GPU, AUTO, ...
    #[arg(long, default_value = "CPU")]
    pub device: String,
    /// Performance hint: LATENCY, THROUGHPUT, CUMULATIVE_THROUGHPUT.
    #[arg(long, default_value = "LATENCY")]
    pub hint: String,
    /// Inference threads (0: the device's default).
    #[arg(long, default_value_t = 0)]
    pub threads: u32,
    /// Overrides the model config's score threshold.
    #[arg(long)]
    pub threshold: Option<f32>,
    /// Also run the model over the image's centre at full resolution (a window of the model's
    /// input size): finds objects too small in the resized image.
    #[arg(long)]
    pub zoom: bool,
}

pub fn run(args: DetectArgs) -> Result<bool> {
    let options = DetectorOptions {
        device: args.device.clone(),
        hint: args.hint.clone(),
        threads: args.threads,
        score_threshold: args.threshold,
        zoom: args.zoom,
        ..Default::default()
    };
    let mut detector = Detector::load(&args.model, options)?;
    if let Some(dir) = &args.annotate {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut found = Vec::new();
    let mut failed = 0;
    for path in &args.images {
        let image = match image::open(path) {
            Ok(image) => image.into_rgb8(),
            Err(error) => {
                eprintln!("{}: cannot read image: {error}", path.display());
                failed += 1;
                continue;
            }
        };
        let (width, height) = image.dimensions();
        detector.detect(image.as_raw(), width, height, &mut found).with_context(|| path.display().to_string())?;
        for d in &found {
            let line = serde_json::json!({
                "file": path.display().to_string(),
                "class": detector.config().label(d.class),
                "class_index": d.class,
                "score": round(d.score, 4),
                "box": [round(d.x0, 1), round(d.y0, 1), round(d.x1, 1), round(d.y1, 1)],
            });
            writeln!(out, "{line}")?;
        }
        if let Some(dir) = &args.annotate {
            let target = annotated_path(dir, path);
            let mut canvas = image;
            for d in &found {
                draw_box(&mut canvas, d);
            }
            canvas.save(&target).with_context(|| format!("cannot write {}", target.display()))?;
            eprintln!("{}: {} detections -> {}", path.display(), found.len(), target.display());
        }
    }
    Ok(failed == 0)
}

fn round(value: f32, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (f64::from(value) * scale).round() / scale
}

fn annotated_path(dir: &Path, image: &Path) -> PathBuf {
    let stem = image.file_stem().map_or_else(|| "image".into(), |s| s.to_string_lossy().into_owned());
    dir.join(format!("{stem}.png"))
}

/// A 3-pixel outline in a colour per class, with a score bar along the top edge (its length
/// is the score) so strong and weak detections tell apart at a glance.
fn draw_box(image: &mut image::RgbImage, d: &Detection) {
    const PALETTE: [[u8; 3]; 8] = [
        [230, 25, 75],
        [60, 180, 75],
        [255, 225, 25],
        [0, 130, 200],
        [245, 130, 48],
        [145, 30, 180],
        [70, 240, 240],
        [240, 50, 230],
    ];
    let colour = image::Rgb(PALETTE[d.class % PALETTE.len()]);
    let (w, h) = image.dimensions();
    let clamp = |v: f32, max: u32| (v.max(0.0) as u32).min(max.saturating_sub(1));
    let (x0, y0, x1, y1) = (clamp(d.x0, w), clamp(d.y0, h), clamp(d.x1, w), clamp(d.y1, h));
    for t in 0..3 {
        for x in x0..=x1 {
            for y in [y0.saturating_add(t).min(h - 1), y1.saturating_sub(t)] {
                image.put_pixel(x, y, colour);
            }
        }
        for y in y0..=y1 {
            for x in [x0.saturating_add(t).min(w - 1), x1.saturating_sub(t)] {
                image.put_pixel(x, y, colour);
            }
        }
    }
    let bar_end = x0 + ((x1 - x0) as f32 * d.score.clamp(0.0, 1.0)) as u32;
    for y in y0.saturating_sub(6)..y0 {
        for x in x0..bar_end {
            image.put_pixel(x, y, colour);
        }
    }
}
