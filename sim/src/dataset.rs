//! Labelled training data for the simulator's detector: domain-randomised scenes from the
//! renderer (camera intrinsics and mounting, light, colours, noise, actor kinds, looks, sizes,
//! positions and headings), rendered at the camera's 640x480 and halved to the detector's
//! 320x240 input exactly as the detector's in-graph resize does. Labels are the tight boxes of
//! the pixels each actor covers.
//!
//! Layout written by [`write`]: `images/NNNNNN.png` and `labels.json`
//! (`{"classes": [...], "images": [{"file", "boxes": [[x0, y0, x1, y1, class], ...]}]}`).

use crate::actors::{Actor, ActorKind, Rng};
use crate::render::{halve, Appearance, Look, Renderer, LANE_WIDTH_M};
use reflex_aeb::range::CameraModel;
use serde::Serialize;
use std::path::Path;

/// The classes, in the detector's output order (COCO names, so the AEB's priors apply).
pub const CLASSES: [&str; 3] = ["car", "person", "bicycle"];

/// Camera frames are rendered at this size...
pub const CAMERA_SIZE: (u32, u32) = (640, 480);
/// ...and the detector sees them at this one.
pub const MODEL_SIZE: (u32, u32) = (320, 240);

#[derive(Debug, Clone, Serialize)]
pub struct Labelled {
    pub file: String,
    /// x0, y0, x1, y1 in model-input pixels, and the class index.
    pub boxes: Vec<[f64; 5]>,
    /// Each box's actor's distance ahead of the camera (to its near face), m: for recall by
    /// distance.
    pub distances_m: Vec<f64>,
}

fn class_index(kind: ActorKind) -> usize {
    match kind {
        ActorKind::Car => 0,
        ActorKind::Pedestrian => 1,
        ActorKind::Cyclist => 2,
    }
}

/// One random scene: camera, look and actors (with their looks).
pub fn scene(rng: &mut Rng) -> (CameraModel, Look, f64, Vec<(Actor, Appearance)>) {
    let mut u = |lo: f64, hi: f64| lo + (hi - lo) * rng.uniform();
    let focal = u(430.0, 570.0);
    let camera = CameraModel {
        fx: focal,
        fy: focal,
        cx: 320.0 + u(-12.0, 12.0),
        cy: 240.0 + u(-12.0, 12.0),
        height_m: u(1.05, 1.6),
        pitch_rad: u(-1.5, 3.0).to_radians(),
    };
    let ego_x = u(0.0, 1000.0);
    let look = Look::random(rng);
    let count = [0, 1, 1, 1, 2, 2, 2, 3, 3, 4, 5, 6][(rng.next_u64() % 12) as usize];
    let mut actors = Vec::with_capacity(count);
    for _ in 0..count {
        // People and cyclists are the harder classes (thin, small): as many of each as there
        // are cars, nearly.
        let kind = match rng.uniform() {
            k if k < 0.4 => ActorKind::Car,
            k if k < 0.7 => ActorKind::Pedestrian,
            _ => ActorKind::Cyclist,
        };
        let crossing_share = match kind {
            ActorKind::Car => 0.12,
            ActorKind::Pedestrian => 0.6,
            ActorKind::Cyclist => 0.3,
        };
        let crossing = rng.uniform() < crossing_share;
        // Near objects matter most, and are rarer in a uniform draw: bias towards them; but a
        // person must be found 30-50 m ahead for the AEB to stop from 50-60 km/h, where they are
        // 10-15 px tall at the model's input: a share of actors at 12-55 m.
        let distance =
            if rng.uniform() < 0.6 { 2.5 + 72.0 * rng.uniform().powf(1.4) } else { 12.0 + 43.0 * rng.uniform() };
        let lateral = match rng.uniform() {
            p if p < 0.45 => 1.3 * (2.0 * rng.uniform() - 1.0),
            p if p < 0.8 => {
                LANE_WIDTH_M * if rng.uniform() < 0.5 { -1.0 } else { 1.0 } + 0.9 * (2.0 * rng.uniform() - 1.0)
            }
            _ => 9.0 * (2.0 * rng.uniform() - 1.0),
        };
        let sign = if rng.uniform() < 0.5 { -1.0 } else { 1.0 };
        let actor = Actor {
            kind,
            x_m: ego_x + distance + kind.size().0 / 2.0,
            y_m: lateral,
            vx_mps: if crossing { 0.0 } else { 1.0 },
            vy_mps: if crossing { sign } else { 0.0 },
            brake_at_s: None,
            brake_decel_mps2: 0.0,
        };
        actors.push((actor, Appearance::random(rng, 0.08)));
    }
    (camera, look, ego_x, actors)
}

/// Renders `count` scenes from `seed` into `dir`, calling `progress(done)` now and then.
pub fn write(dir: &Path, count: usize, seed: u64, mut progress: impl FnMut(usize)) -> std::io::Result<()> {
    let images = dir.join("images");
    std::fs::create_dir_all(&images)?;
    let mut rng = Rng::new(seed);
    let mut labelled = Vec::with_capacity(count);
    let (w, h) = CAMERA_SIZE;
    let mut rgb = vec![0u8; (w * h * 3) as usize];
    for index in 0..count {
        let (camera, look, ego_x, actors) = scene(&mut rng);
        let mut renderer = Renderer::new(camera, w, h, look, seed.wrapping_add(index as u64));
        let rects = renderer.render(ego_x, &actors, index as u64, &mut rgb);
        let small = halve(&rgb, w, h);
        let file = format!("images/{index:06}.png");
        image::save_buffer(dir.join(&file), &small, MODEL_SIZE.0, MODEL_SIZE.1, image::ExtendedColorType::Rgb8)
            .map_err(std::io::Error::other)?;
        let mut boxes = Vec::new();
        let mut distances_m = Vec::new();
        for ((actor, _), rect) in actors.iter().zip(rects) {
            let Some(rect) = rect else { continue };
            let [x0, y0, x1, y1] = [rect.left, rect.top, rect.right, rect.bottom].map(|v| f64::from(v) / 2.0);
            // Too small to learn from, or a sliver of an occluded actor.
            if x1 - x0 < 3.0 || y1 - y0 < 3.0 || f64::from(rect.area) < 0.15 * (x1 - x0) * (y1 - y0) * 4.0 {
                continue;
            }
            boxes.push([x0, y0, x1, y1, class_index(actor.kind) as f64]);
            distances_m.push(actor.x_m - actor.kind.size().0 / 2.0 - ego_x);
        }
        labelled.push(Labelled { file, boxes, distances_m });
        if index % 50 == 49 {
            progress(index + 1);
        }
    }
    let json = serde_json::json!({
        "classes": CLASSES,
        "size": [MODEL_SIZE.0, MODEL_SIZE.1],
        "seed": seed,
        "images": labelled,
    });
    std::fs::write(dir.join("labels.json"), serde_json::to_string(&json).map_err(std::io::Error::other)?)?;
    progress(count);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenes_repeat_for_a_seed_and_vary_between_seeds() {
        let describe = |seed| {
            let mut rng = Rng::new(seed);
            (0..20).map(|_| format!("{:?}", scene(&mut rng))).collect::<Vec<_>>()
        };
        assert_eq!(describe(5), describe(5));
        assert_ne!(describe(5), describe(6));
    }

    #[test]
    fn written_labels_match_the_images() {
        let dir = std::env::temp_dir().join(format!("reflex-dataset-{}", std::process::id()));
        write(&dir, 6, 11, |_| {}).unwrap();
        let labels: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("labels.json")).unwrap()).unwrap();
        let images = labels["images"].as_array().unwrap();
        assert_eq!(images.len(), 6);
        let mut boxes = 0;
        for entry in images {
            let distances = entry["distances_m"].as_array().unwrap();
            assert_eq!(distances.len(), entry["boxes"].as_array().unwrap().len(), "a distance per box");
            assert!(distances.iter().all(|d| (0.0..80.0).contains(&d.as_f64().unwrap())), "{distances:?}");
            let image = image::open(dir.join(entry["file"].as_str().unwrap())).unwrap();
            assert_eq!((image.width(), image.height()), MODEL_SIZE);
            for b in entry["boxes"].as_array().unwrap() {
                let v: Vec<f64> = b.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
                assert!(v[0] >= 0.0 && v[2] <= 320.0 && v[1] >= 0.0 && v[3] <= 240.0 && v[0] < v[2] && v[1] < v[3]);
                assert!((0.0..3.0).contains(&v[4]));
                boxes += 1;
            }
        }
        assert!(boxes > 0, "six scenes and not one labelled actor");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
