//! Actors, contact, and ground-truth perception: each actor's box projected through the same
//! pinhole model the AEB uses, with a seeded noise model.

use reflex_aeb::range::CameraModel;
use reflex_msgs::std_msgs::Header;
use reflex_msgs::vision_msgs::{BoundingBox2D, Detection2D, Detection2DArray, ObjectHypothesisWithPose};
use serde::{Deserialize, Serialize};

pub use reflex_scenario::actor::{Actor, ActorKind};

/// The ego's footprint against an actor: the gap from the ego's front bumper to the actor's
/// near face (negative when they overlap) and whether they overlap laterally.
pub fn gap_and_overlap(ego_front_m: f64, ego_width_m: f64, actor: &Actor) -> (f64, bool) {
    let (length, width) = actor.footprint();
    let gap = actor.x_m - length / 2.0 - ego_front_m;
    let overlap = (actor.y_m).abs() < (ego_width_m + width) / 2.0;
    (gap, overlap)
}

/// How ground-truth detections are spoiled.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NoiseModel {
    /// Standard deviation added to each box edge, pixels.
    pub edge_sigma_px: f64,
    /// Probability that an object is missed in a frame.
    pub dropout: f64,
    /// Score given to detections.
    pub score: f64,
}

impl Default for NoiseModel {
    fn default() -> Self {
        Self { edge_sigma_px: 1.0, dropout: 0.05, score: 0.8 }
    }
}

/// A small, seeded generator (SplitMix64): runs repeat bit for bit for a seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// The box of an actor in the image of a camera at the ego's front bumper (`camera` includes
/// its height and pitch), clipped to the image; `None` when not in view.
pub fn project_box(camera: &CameraModel, image: (u32, u32), ego_front_m: f64, actor: &Actor) -> Option<[f64; 4]> {
    let (length, width) = actor.footprint();
    let (_, _, height) = actor.kind.size();
    let near = actor.x_m - length / 2.0 - ego_front_m;
    if near < 1.0 {
        return None; // too close for the camera to see it whole
    }
    let mut corners = Vec::with_capacity(8);
    for (z, up) in [(near, 0.0), (near, height), (near + length, 0.0), (near + length, height)] {
        for y in [actor.y_m - width / 2.0, actor.y_m + width / 2.0] {
            corners.push(camera.project(z, y, up)?);
        }
    }
    let left = corners.iter().map(|c| c.0).fold(f64::MAX, f64::min).max(0.0);
    let right = corners.iter().map(|c| c.0).fold(f64::MIN, f64::max).min(f64::from(image.0));
    let top = corners.iter().map(|c| c.1).fold(f64::MAX, f64::min).max(0.0);
    let bottom = corners.iter().map(|c| c.1).fold(f64::MIN, f64::max).min(f64::from(image.1));
    (right - left > 2.0 && bottom - top > 2.0).then_some([left, top, right, bottom])
}

/// Ground-truth detections of every visible actor, spoiled by `noise`.
pub fn ground_truth(
    camera: &CameraModel,
    image: (u32, u32),
    ego_front_m: f64,
    actors: &[Actor],
    noise: &NoiseModel,
    rng: &mut Rng,
    header: &Header,
) -> Detection2DArray {
    let mut array = Detection2DArray { header: header.clone(), detections: Vec::new() };
    for actor in actors {
        let Some([left, top, right, bottom]) = project_box(camera, image, ego_front_m, actor) else { continue };
        if rng.uniform() < noise.dropout {
            continue;
        }
        let mut edge = |value: f64| value + noise.edge_sigma_px * rng.normal();
        let (left, top, right, bottom) = (edge(left), edge(top), edge(right), edge(bottom));
        let mut detection = Detection2D { header: header.clone(), ..Default::default() };
        let mut hypothesis = ObjectHypothesisWithPose::default();
        hypothesis.hypothesis.class_id = actor.kind.label().into();
        hypothesis.hypothesis.score = noise.score;
        detection.results = vec![hypothesis];
        detection.bbox = BoundingBox2D { size_x: right - left, size_y: bottom - top, ..Default::default() };
        detection.bbox.center.position.x = (left + right) / 2.0;
        detection.bbox.center.position.y = (top + bottom) / 2.0;
        array.detections.push(detection);
    }
    array
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{camera, car as car_at};

    #[test]
    fn a_car_ahead_projects_where_the_aeb_ranges_it() {
        let car = car_at(22.01, 0.0); // near face 20 m ahead
        let [left, top, right, bottom] = project_box(&camera(), (640, 480), 0.0, &car).unwrap();
        // Width 1.71 m at 20 m: 500 * 1.71 / 20 = 42.75 px, centred.
        assert!(((right - left) - 42.75).abs() < 1e-6 && ((left + right) / 2.0 - 320.0).abs() < 1e-6);
        // Bottom: the road under the near face, 500 * 1.3 / 20 = 32.5 px below the centre.
        assert!((bottom - 272.5).abs() < 1e-6, "{bottom}");
        assert!(top < 240.0);
        let estimate = camera().estimate(&reflex_aeb::range::PixelBox { left, top, right, bottom }, "car").unwrap();
        assert!((estimate.range_m - 20.0).abs() < 1e-6 && estimate.lateral_m.abs() < 1e-9);
        assert!(project_box(&camera(), (640, 480), 21.5, &car).is_none(), "under 1 m: not seen whole");
        assert!(project_box(&camera(), (640, 480), 0.0, &car_at(22.0, 40.0)).is_none(), "far to the side");
    }

    #[test]
    fn contact_needs_lateral_overlap() {
        let car = car_at(12.01, 0.5);
        assert!(gap_and_overlap(10.0, 1.8, &car).1);
        assert!((gap_and_overlap(10.0, 1.8, &car).0).abs() < 1e-9);
        assert!(!gap_and_overlap(10.0, 1.8, &car_at(12.0, 3.5)).1, "next lane");
        let crossing = Actor { kind: ActorKind::Pedestrian, vy_mps: 1.39, ..car_at(20.0, -4.0) };
        assert_eq!(crossing.footprint(), (0.5, 0.3), "a crossing pedestrian is 0.5 m deep, 0.3 m wide");
    }

    #[test]
    fn the_noise_is_seeded() {
        let actors = [car_at(22.0, 0.0)];
        let header = Header::default();
        let noise = NoiseModel { dropout: 0.3, ..Default::default() };
        let run = |seed| {
            let mut rng = Rng::new(seed);
            (0..50)
                .map(|_| ground_truth(&camera(), (640, 480), 0.0, &actors, &noise, &mut rng, &header))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        let seen = run(7).iter().filter(|a| !a.detections.is_empty()).count();
        assert!((25..=45).contains(&seen), "about 70 % kept: {seen}");
    }

    #[test]
    fn braking_actors_stop() {
        let mut car = Actor { vx_mps: 10.0, brake_at_s: Some(1.0), brake_decel_mps2: 5.0, ..car_at(0.0, 0.0) };
        let mut t = 0.0;
        while t < 5.0 {
            car.step(t, 0.001);
            t += 0.001;
        }
        // 10 m in the first second, then 10²/(2·5) = 10 m of braking.
        assert!((car.x_m - 20.0).abs() < 0.05 && car.vx_mps == 0.0, "{}", car.x_m);
    }
}
