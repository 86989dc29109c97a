//! The camera renderer: a pinhole camera (the same [`CameraModel`] the AEB ranges with) looking
//! down a three-lane road with dashed and solid markings, grass beyond, a sky with haze, and
//! the actors as shaded boxes (a car's wheels, body, glass, lights and plate; a pedestrian's
//! legs, torso, arms and head; a cyclist's wheels, frame and rider). Every pixel is a ray cast
//! against the road plane and the actors' parts; shading is Lambert with a sun and ambient
//! light, contact shadows darken the road under each actor, and optional sensor noise is a
//! hash of (seed, frame, pixel). The same inputs give the same bytes on every machine.
//!
//! [`Renderer::render`] also returns each actor's tight box in the image (from the pixels it
//! covers, so occlusion and clipping count): the labels of the detector's training data.

use crate::actors::{Actor, ActorKind, Rng};
use reflex_aeb::range::CameraModel;
use serde::Serialize;

/// Linear RGB in 0..1.
pub type Rgb = [f32; 3];

/// Lane width of the road, m; the ego drives in the middle one of three.
pub const LANE_WIDTH_M: f64 = 3.5;

/// Light, colours and noise of a scene.
#[derive(Debug, Clone, Serialize)]
pub struct Look {
    pub sky_zenith: Rgb,
    pub sky_horizon: Rgb,
    pub asphalt: Rgb,
    pub grass: Rgb,
    pub marking: Rgb,
    /// Unit vector towards the sun (x forward, y left, z up).
    pub sun_dir: [f64; 3],
    pub sun: f32,
    pub ambient: f32,
    /// Distance at which haze hides two thirds of an object's colour, m.
    pub haze_m: f64,
    /// Sensor noise, standard deviation in 8-bit levels (0 for none).
    pub noise: f32,
    /// Exposure gain.
    pub exposure: f32,
}

impl Default for Look {
    fn default() -> Self {
        Self {
            sky_zenith: [0.30, 0.45, 0.75],
            sky_horizon: [0.75, 0.80, 0.85],
            asphalt: [0.22, 0.22, 0.23],
            grass: [0.25, 0.38, 0.15],
            marking: [0.85, 0.85, 0.82],
            sun_dir: normalise([0.4, 0.5, 0.75]),
            sun: 0.75,
            ambient: 0.45,
            haze_m: 400.0,
            noise: 2.0,
            exposure: 1.0,
        }
    }
}

impl Look {
    /// A randomised scene (domain randomisation for the training data): sky, road and grass
    /// tones, sun direction and strength, haze, noise and exposure.
    pub fn random(rng: &mut Rng) -> Self {
        let mut u = |lo: f64, hi: f64| (lo + (hi - lo) * rng.uniform()) as f32;
        let overcast = u(0.0, 1.0);
        let blue = [0.30 + 0.4 * overcast, 0.45 + 0.3 * overcast, 0.75 + 0.1 * overcast];
        let asphalt = u(0.12, 0.38);
        let tint = u(-0.02, 0.02);
        let grass_kind = u(0.0, 1.0);
        let grass = if grass_kind < 0.6 {
            [u(0.15, 0.3), u(0.3, 0.45), u(0.08, 0.2)]
        } else {
            [u(0.35, 0.55), u(0.33, 0.5), u(0.25, 0.35)] // dry grass, gravel
        };
        let marking = u(0.65, 0.95);
        let azimuth = f64::from(u(0.0, std::f64::consts::TAU));
        let elevation = f64::from(u(0.15, 1.3));
        let sun_dir = [azimuth.cos() * elevation.cos(), azimuth.sin() * elevation.cos(), elevation.sin()];
        Self {
            sky_zenith: blue,
            sky_horizon: [u(0.65, 0.9), u(0.7, 0.9), u(0.75, 0.92)],
            asphalt: [asphalt + tint, asphalt + tint, asphalt + 0.01],
            grass,
            marking: [marking, marking, marking * u(0.85, 1.0)],
            sun_dir,
            sun: u(0.2, 0.9) * (1.0 - 0.6 * overcast),
            ambient: u(0.35, 0.6),
            haze_m: f64::from(u(150.0, 800.0)),
            noise: u(0.0, 6.0),
            exposure: u(0.75, 1.3),
        }
    }
}

/// How an actor looks: its paint (car body, cyclist frame), clothes, skin, and size.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Appearance {
    pub paint: Rgb,
    pub top: Rgb,
    pub trousers: Rgb,
    pub skin: Rgb,
    /// Size relative to the kind's nominal size (1 in the scenarios).
    pub scale: f64,
}

impl Appearance {
    /// A random but plausible look (the seeded generator decides it, so runs repeat).
    pub fn random(rng: &mut Rng, scale_spread: f64) -> Self {
        const PAINTS: [Rgb; 10] = [
            [0.85, 0.85, 0.85],
            [0.05, 0.05, 0.06],
            [0.45, 0.46, 0.48],
            [0.6, 0.05, 0.05],
            [0.08, 0.15, 0.45],
            [0.7, 0.7, 0.72],
            [0.1, 0.3, 0.15],
            [0.75, 0.55, 0.1],
            [0.25, 0.25, 0.3],
            [0.9, 0.9, 0.85],
        ];
        const SKINS: [Rgb; 4] = [[0.85, 0.68, 0.55], [0.65, 0.48, 0.35], [0.45, 0.32, 0.22], [0.3, 0.2, 0.15]];
        let mut pick = |n: usize| (rng.next_u64() % n as u64) as usize;
        let paint = PAINTS[pick(PAINTS.len())];
        let skin = SKINS[pick(SKINS.len())];
        let mut colour = || {
            let r = rng.uniform() as f32;
            let g = rng.uniform() as f32;
            let b = rng.uniform() as f32;
            let dark = 0.25 + 0.75 * rng.uniform() as f32;
            [r * dark, g * dark, b * dark]
        };
        let top = colour();
        let trousers = colour();
        let scale = 1.0 + scale_spread * (2.0 * rng.uniform() - 1.0);
        Self { paint, top, trousers, skin, scale }
    }

    /// The look of actor `index` in a scenario run with `seed`: the same every time.
    pub fn for_actor(seed: u64, index: usize) -> Self {
        let mut rng = Rng::new(seed ^ (0xA5A5_0000 + index as u64).wrapping_mul(0x9E37_79B9));
        Self::random(&mut rng, 0.0)
    }
}

/// An axis-aligned box in world coordinates with its colour.
#[derive(Debug, Clone, Copy)]
struct Part {
    min: [f64; 3],
    max: [f64; 3],
    colour: Rgb,
    /// Specular-ish boost for glass and lights (added to the shaded colour).
    glow: f32,
}

/// The parts of an actor, in world coordinates (x forward, y left, z up).
fn parts(actor: &Actor, look: &Appearance, out: &mut Vec<Part>) {
    let s = look.scale;
    let crossing = actor.vy_mps.abs() > actor.vx_mps.abs();
    // Local frame: a along the actor's motion (a < 0 is its back), b across it, z up.
    let mut add = |a: (f64, f64), b: (f64, f64), z: (f64, f64), colour: Rgb, glow: f32| {
        let (a, b, z) = ((a.0 * s, a.1 * s), (b.0 * s, b.1 * s), (z.0 * s, z.1 * s));
        let (x, y) = if crossing { (b, a) } else { (a, b) };
        out.push(Part {
            min: [actor.x_m + x.0, actor.y_m + y.0, z.0],
            max: [actor.x_m + x.1, actor.y_m + y.1, z.1],
            colour,
            glow,
        });
    };
    let (length, width, _) = actor.kind.size();
    let (l, w) = (length / 2.0, width / 2.0);
    const TYRE: Rgb = [0.04, 0.04, 0.04];
    match actor.kind {
        ActorKind::Car => {
            for a in [-l + 0.55, l - 0.75] {
                for b in [(-w + 0.02, -w + 0.3), (w - 0.3, w - 0.02)] {
                    add((a - 0.32, a + 0.32), b, (0.0, 0.64), TYRE, 0.0);
                }
            }
            add((-l, l), (-w, w), (0.28, 0.95), look.paint, 0.0);
            add((-l + 0.6, l - 1.4), (-w + 0.1, w - 0.1), (0.95, 1.5), [0.1, 0.12, 0.15], 0.05);
            add((-l + 0.75, l - 1.55), (-w + 0.12, w - 0.12), (1.44, 1.5), look.paint, 0.0); // roof
            add((-l - 0.05, -l + 0.15), (-w + 0.05, w - 0.05), (0.22, 0.42), [0.08, 0.08, 0.08], 0.0); // bumper
            add((-l - 0.02, -l + 0.1), (-0.26, 0.26), (0.45, 0.57), [0.9, 0.9, 0.85], 0.1); // plate
            for b in [(-w + 0.06, -w + 0.36), (w - 0.36, w - 0.06)] {
                add((-l - 0.02, -l + 0.1), b, (0.72, 0.88), [0.75, 0.05, 0.03], 0.25); // tail lights
                add((l - 0.1, l + 0.02), b, (0.68, 0.8), [0.9, 0.9, 0.8], 0.3); // headlights
            }
        }
        ActorKind::Pedestrian => {
            for b in [(-0.18, -0.03), (0.03, 0.18)] {
                add((-0.08, 0.08), b, (0.0, 0.86), look.trousers, 0.0);
            }
            add((-0.12, 0.12), (-0.2, 0.2), (0.86, 1.46), look.top, 0.0);
            for b in [(-0.25, -0.2), (0.2, 0.25)] {
                add((-0.06, 0.06), b, (0.82, 1.42), look.top, 0.0);
            }
            add((-0.04, 0.04), (-0.05, 0.05), (1.46, 1.54), look.skin, 0.0);
            add((-0.1, 0.1), (-0.09, 0.09), (1.54, 1.8), look.skin, 0.0);
            add((-0.11, 0.11), (-0.1, 0.1), (1.72, 1.8), [0.1, 0.07, 0.05], 0.0);
            // hair
        }
        ActorKind::Cyclist => {
            for a in [-l + 0.35, l - 0.35] {
                add((a - 0.34, a + 0.34), (-0.03, 0.03), (0.0, 0.68), TYRE, 0.0);
            }
            add((-0.45, 0.5), (-0.04, 0.04), (0.34, 0.62), look.paint, 0.0);
            add((0.45, 0.52), (-w, w), (0.95, 1.0), [0.15, 0.15, 0.15], 0.0); // handlebar
            add((-0.2, 0.05), (-0.16, 0.16), (0.35, 0.95), look.trousers, 0.0);
            add((-0.2, 0.2), (-0.2, 0.2), (0.95, 1.42), look.top, 0.0);
            add((-0.1, 0.1), (-0.1, 0.1), (1.44, 1.7), look.skin, 0.0);
            add((-0.12, 0.12), (-0.11, 0.11), (1.58, 1.7), look.paint, 0.0); // helmet
        }
    }
}

fn normalise(v: [f64; 3]) -> [f64; 3] {
    let n = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
    [v[0] / n, v[1] / n, v[2] / n]
}

/// A tight box of an actor's pixels: left, top, right, bottom (right and bottom exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PixelRect {
    pub left: u32,
    pub top: u32,
    pub right: u32,
    pub bottom: u32,
    /// Pixels the actor covers.
    pub area: u32,
}

/// Renders frames of one camera.
pub struct Renderer {
    pub camera: CameraModel,
    pub width: u32,
    pub height: u32,
    pub look: Look,
    pub seed: u64,
    parts: Vec<(usize, Part)>,
}

impl Renderer {
    pub fn new(camera: CameraModel, width: u32, height: u32, look: Look, seed: u64) -> Self {
        Self { camera, width, height, look, seed, parts: Vec::new() }
    }

    /// Renders the scene seen from a camera above the ego's front bumper at `ego_x_m` into
    /// `rgb` (width·height·3 bytes, row-major RGB8), and returns each actor's box (`None` where
    /// it covers no pixel). `frame` varies the sensor noise.
    pub fn render(
        &mut self,
        ego_x_m: f64,
        actors: &[(Actor, Appearance)],
        frame: u64,
        rgb: &mut [u8],
    ) -> Vec<Option<PixelRect>> {
        let (width, height) = (self.width as usize, self.height as usize);
        assert_eq!(rgb.len(), width * height * 3, "the buffer is not {width}x{height} RGB8");
        self.parts.clear();
        let mut scratch = Vec::new();
        for (index, (actor, look)) in actors.iter().enumerate() {
            scratch.clear();
            parts(actor, look, &mut scratch);
            self.parts.extend(scratch.iter().map(|p| (index, *p)));
        }
        // Each actor's screen rectangle (from its parts' corners) so rays skip what they miss.
        let bounds: Vec<Option<(f64, f64, f64, f64)>> = (0..actors.len())
            .map(|index| self.screen_bounds(ego_x_m, self.parts.iter().filter(|(i, _)| *i == index).map(|(_, p)| p)))
            .collect();
        let camera = self.camera;
        let (sin, cos) = camera.pitch_rad.sin_cos();
        let origin = [ego_x_m, 0.0, camera.height_m];
        let look = &self.look;
        let sun = normalise(look.sun_dir);
        let shadows: Vec<(f64, f64, f64, f64)> = actors
            .iter()
            .map(|(actor, appearance)| {
                let (fx, fy) = actor.footprint();
                let (hx, hy) = (fx * appearance.scale / 2.0 + 0.25, fy * appearance.scale / 2.0 + 0.2);
                (actor.x_m - hx, actor.x_m + hx, actor.y_m - hy, actor.y_m + hy)
            })
            .collect();
        let parts = &self.parts;
        let bounds = &bounds;
        let shadows = &shadows;
        let noise_seed = self.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ frame.wrapping_mul(0xD1B5_4A32_D192_ED03);
        let band = |first_row: usize, out: &mut [u8]| -> Vec<Option<PixelRect>> {
            let mut rects: Vec<Option<PixelRect>> = vec![None; actors.len()];
            for local in 0..out.len() / (width * 3) {
                let row = first_row + local;
                let v = row as f64 + 0.5;
                let yc = (v - camera.cy) / camera.fy;
                for col in 0..width {
                    let u = col as f64 + 0.5;
                    let xc = (u - camera.cx) / camera.fx;
                    // Camera ray (x right, y down, z forward) in world axes.
                    let dir = [cos - yc * sin, -xc, -(sin + yc * cos)];
                    let mut best: Option<(f64, usize, usize)> = None; // (t, part, face axis)
                    for (k, (actor, part)) in parts.iter().enumerate() {
                        let Some((l, t, r, b)) = bounds[*actor] else { continue };
                        if u < l || u > r || v < t || v > b {
                            continue;
                        }
                        if let Some((hit, axis)) = slab(origin, dir, part) {
                            if best.is_none_or(|(t, _, _)| hit < t) {
                                best = Some((hit, k, axis));
                            }
                        }
                    }
                    let colour = if let Some((t, k, axis)) = best {
                        let (actor, part) = parts[k];
                        let rect = rects[actor].get_or_insert(PixelRect {
                            left: col as u32,
                            top: row as u32,
                            right: col as u32 + 1,
                            bottom: row as u32 + 1,
                            area: 0,
                        });
                        rect.left = rect.left.min(col as u32);
                        rect.right = rect.right.max(col as u32 + 1);
                        rect.bottom = rect.bottom.max(row as u32 + 1);
                        rect.area += 1;
                        // The face's outward normal: against the ray on the hit axis.
                        let mut normal = [0.0; 3];
                        normal[axis] = -dir[axis].signum();
                        let lambert = (normal[0] * sun[0] + normal[1] * sun[1] + normal[2] * sun[2]).max(0.0) as f32;
                        let light = look.ambient + look.sun * lambert;
                        let shaded = part.colour.map(|c| c * light + part.glow);
                        let distance = t * (dir[0] * dir[0] + dir[1] * dir[1] + dir[2] * dir[2]).sqrt();
                        haze(shaded, look, distance)
                    } else if dir[2] < -1e-9 {
                        let t = -origin[2] / dir[2];
                        let (x, y) = (origin[0] + t * dir[0], t * dir[1]);
                        let mut colour = ground(x, y, look);
                        for (x0, x1, y0, y1) in shadows {
                            if x > *x0 && x < *x1 && y > *y0 && y < *y1 {
                                colour = colour.map(|c| c * 0.45);
                            }
                        }
                        let lit = look.ambient + look.sun * sun[2] as f32;
                        haze(
                            colour.map(|c| c * lit),
                            look,
                            t * (dir[0] * dir[0] + dir[1] * dir[1] + dir[2] * dir[2]).sqrt(),
                        )
                    } else {
                        sky(dir, look)
                    };
                    let offset = (local * width + col) * 3;
                    let index = (row * width + col) * 3;
                    for (channel, value) in colour.iter().enumerate() {
                        let mut level = value * look.exposure * 255.0;
                        if look.noise > 0.0 {
                            level += look.noise * triangular(noise_seed, (index + channel) as u64);
                        }
                        out[offset + channel] = level.round().clamp(0.0, 255.0) as u8;
                    }
                }
            }
            rects
        };
        // Bands of rows in parallel: each pixel depends only on its ray, so the bytes are the
        // same however the rows are split.
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8);
        let rows_per_band = height.div_ceil(threads).max(1);
        let band = &band;
        let bands: Vec<Vec<Option<PixelRect>>> = std::thread::scope(|scope| {
            let handles: Vec<_> = rgb
                .chunks_mut(rows_per_band * width * 3)
                .enumerate()
                .map(|(i, out)| scope.spawn(move || band(i * rows_per_band, out)))
                .collect();
            handles.into_iter().map(|h| h.join().expect("a render band panicked")).collect()
        });
        let mut rects: Vec<Option<PixelRect>> = vec![None; actors.len()];
        for band in bands {
            for (merged, part) in rects.iter_mut().zip(band) {
                let Some(part) = part else { continue };
                *merged = Some(match *merged {
                    None => part,
                    Some(m) => PixelRect {
                        left: m.left.min(part.left),
                        top: m.top.min(part.top),
                        right: m.right.max(part.right),
                        bottom: m.bottom.max(part.bottom),
                        area: m.area + part.area,
                    },
                });
            }
        }
        rects
    }

    /// The pixel rectangle an actor's parts can cover; the whole image when a corner is behind
    /// the camera; `None` when it is wholly behind.
    fn screen_bounds<'a>(&self, ego_x_m: f64, parts: impl Iterator<Item = &'a Part>) -> Option<(f64, f64, f64, f64)> {
        let (mut l, mut t, mut r, mut b) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
        let mut any = false;
        let mut behind = false;
        for part in parts {
            any = true;
            for x in [part.min[0], part.max[0]] {
                for y in [part.min[1], part.max[1]] {
                    for z in [part.min[2], part.max[2]] {
                        match self.camera.project(x - ego_x_m, y, z) {
                            Some((u, v)) => {
                                (l, t, r, b) = (l.min(u), t.min(v), r.max(u), b.max(v));
                            }
                            None => behind = true,
                        }
                    }
                }
            }
        }
        if !any || (behind && l == f64::MAX) {
            return None;
        }
        if behind {
            return Some((f64::MIN, f64::MIN, f64::MAX, f64::MAX));
        }
        Some((l - 1.0, t - 1.0, r + 1.0, b + 1.0))
    }
}

/// Ray against an axis-aligned box (slab method): the entry distance and the axis of the face
/// it enters through; `None` when missed or behind.
fn slab(origin: [f64; 3], dir: [f64; 3], part: &Part) -> Option<(f64, usize)> {
    let (mut near, mut far, mut axis) = (f64::MIN, f64::MAX, 0);
    for k in 0..3 {
        if dir[k].abs() < 1e-12 {
            if origin[k] < part.min[k] || origin[k] > part.max[k] {
                return None;
            }
            continue;
        }
        let inv = 1.0 / dir[k];
        let (mut t0, mut t1) = ((part.min[k] - origin[k]) * inv, (part.max[k] - origin[k]) * inv);
        if t0 > t1 {
            std::mem::swap(&mut t0, &mut t1);
        }
        if t0 > near {
            (near, axis) = (t0, k);
        }
        far = far.min(t1);
        if near > far {
            return None;
        }
    }
    (near > 0.0).then_some((near, axis))
}

/// The road surface at (x, y): asphalt with dashed lane lines and solid edges, grass beyond.
fn ground(x: f64, y: f64, look: &Look) -> Rgb {
    let half_road = 1.5 * LANE_WIDTH_M;
    let ay = y.abs();
    if ay > half_road + 0.6 {
        let grain = 0.85 + 0.3 * hash_unit(((x * 2.0).floor() as i64, (y * 2.0).floor() as i64));
        return look.grass.map(|c| c * grain as f32);
    }
    let edge = (ay - (half_road - 0.25)).abs() < 0.1;
    let lane = (ay - LANE_WIDTH_M / 2.0).abs() < 0.075 && x.rem_euclid(12.0) < 3.0;
    if edge || lane {
        return look.marking;
    }
    if ay > half_road {
        return look.asphalt.map(|c| c * 1.15); // shoulder
    }
    let grain = 0.92 + 0.16 * hash_unit(((x * 5.0).floor() as i64, (y * 5.0).floor() as i64));
    look.asphalt.map(|c| c * grain as f32)
}

fn sky(dir: [f64; 3], look: &Look) -> Rgb {
    let elevation = (dir[2] / (dir[0] * dir[0] + dir[1] * dir[1] + dir[2] * dir[2]).sqrt()).clamp(0.0, 1.0) as f32;
    let k = elevation.sqrt().min(1.0);
    [0, 1, 2].map(|i| look.sky_horizon[i] * (1.0 - k) + look.sky_zenith[i] * k)
}

fn haze(colour: Rgb, look: &Look, distance_m: f64) -> Rgb {
    let k = (1.0 - (-distance_m / look.haze_m).exp()) as f32;
    [0, 1, 2].map(|i| colour[i] * (1.0 - k) + look.sky_horizon[i] * k)
}

fn hash_unit(cell: (i64, i64)) -> f64 {
    let mut rng = Rng::new((cell.0 as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (cell.1 as u64).rotate_left(29));
    rng.uniform()
}

/// Zero-mean noise with unit standard deviation (triangular: the sum of two uniforms), from a
/// hash of the seed and the sample index.
fn triangular(seed: u64, index: u64) -> f32 {
    let mut z = seed ^ index.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let a = (z & 0xFFFF_FFFF) as f32 / 4_294_967_296.0;
    let b = (z >> 32) as f32 / 4_294_967_296.0;
    (a + b - 1.0) * 2.449_49 // √6: the variance of a − b + … is 1/6
}

/// Halves an RGB8 image in each direction by averaging 2x2 blocks: what OpenVINO's linear
/// resize with half-pixel centres does at exactly half size, so training images match what the
/// detector sees of a camera frame twice their size.
pub fn halve(rgb: &[u8], width: u32, height: u32) -> Vec<u8> {
    let (w, h) = (width as usize / 2, height as usize / 2);
    let stride = width as usize * 3;
    let mut out = vec![0u8; w * h * 3];
    for y in 0..h {
        for x in 0..w {
            for c in 0..3 {
                let at = |dy: usize, dx: usize| u32::from(rgb[(2 * y + dy) * stride + (2 * x + dx) * 3 + c]);
                let sum = at(0, 0) + at(0, 1) + at(1, 0) + at(1, 1);
                out[(y * w + x) * 3 + c] = sum.div_ceil(4).min(255) as u8;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actors::project_box;
    use crate::fixtures::{camera, car};

    fn render(actors: &[(Actor, Appearance)], look: Look, seed: u64) -> (Vec<u8>, Vec<Option<PixelRect>>) {
        let mut renderer = Renderer::new(camera(), 640, 480, look, seed);
        let mut rgb = vec![0; 640 * 480 * 3];
        let rects = renderer.render(0.0, actors, 0, &mut rgb);
        (rgb, rects)
    }

    #[test]
    fn a_car_covers_the_pixels_its_box_projects_to() {
        let actors = [(car(22.01, 0.0), Appearance::for_actor(1, 0))];
        let (_, rects) = render(&actors, Look::default(), 1);
        let rect = rects[0].expect("the car is in view");
        let [left, top, right, bottom] = project_box(&camera(), (640, 480), 0.0, &actors[0].0).unwrap();
        // The rendered car fills its nominal box to within a pixel or two (the bumper sticks
        // out 5 cm at the back, the cabin is narrower than the body).
        assert!((f64::from(rect.left) - left).abs() <= 2.0, "{rect:?} vs {left}");
        assert!((f64::from(rect.right) - right).abs() <= 2.0, "{rect:?} vs {right}");
        assert!((f64::from(rect.bottom) - bottom).abs() <= 2.0, "{rect:?} vs {bottom}");
        assert!((f64::from(rect.top) - top).abs() <= 3.0, "{rect:?} vs {top}");
        assert!(rect.area > 1000);
    }

    #[test]
    fn the_same_scene_renders_the_same_bytes_and_noise_follows_the_seed() {
        let actors = [(car(15.0, 0.5), Appearance::for_actor(3, 0))];
        let (a, _) = render(&actors, Look::default(), 3);
        let (b, _) = render(&actors, Look::default(), 3);
        let (c, _) = render(&actors, Look::default(), 4);
        assert_eq!(a, b);
        assert_ne!(a, c);
        let quiet = Look { noise: 0.0, ..Look::default() };
        assert_eq!(render(&actors, quiet.clone(), 3).0, render(&actors, quiet, 4).0);
    }

    #[test]
    fn sky_above_road_below_and_occlusion_hides_the_far_car() {
        let far = car(40.0, 0.0);
        let near = car(12.0, 0.0);
        let actors = [(far, Appearance::for_actor(1, 0)), (near, Appearance::for_actor(1, 1))];
        let (rgb, rects) = render(&actors, Look { noise: 0.0, ..Look::default() }, 1);
        assert!(rects[0].is_none(), "hidden behind the near car: {:?}", rects[0]);
        assert!(rects[1].is_some());
        let pixel = |x: usize, y: usize| &rgb[(y * 640 + x) * 3..(y * 640 + x) * 3 + 3];
        assert!(pixel(5, 5)[2] > pixel(5, 5)[0], "sky is blue at the top");
        let road = pixel(320, 470);
        assert!(road[0] < 100 && road[0].abs_diff(road[2]) < 20, "grey road at the bottom: {road:?}");
    }

    #[test]
    fn crossing_pedestrians_and_cyclists_render_within_their_nominal_boxes() {
        for kind in [ActorKind::Pedestrian, ActorKind::Cyclist] {
            for vy in [0.0, 1.4] {
                let actor = Actor { kind, vy_mps: vy, ..car(12.0, 1.0) };
                let actors = [(actor.clone(), Appearance::for_actor(2, 0))];
                let (_, rects) = render(&actors, Look::default(), 2);
                let rect = rects[0].expect("in view");
                let [left, top, right, bottom] = project_box(&camera(), (640, 480), 0.0, &actor).unwrap();
                assert!(
                    f64::from(rect.left) >= left - 2.0 && f64::from(rect.right) <= right + 2.0,
                    "{kind:?} {rect:?}"
                );
                assert!(f64::from(rect.top) >= top - 2.0 && (f64::from(rect.bottom) - bottom).abs() <= 2.0, "{kind:?}");
            }
        }
    }

    #[test]
    fn halving_averages_blocks() {
        let image = [0u8, 0, 0, 4, 4, 4, 8, 8, 8, 12, 12, 12]; // 2x2
        assert_eq!(halve(&image, 2, 2), vec![6, 6, 6]);
    }
}
