//! The cell's world in closed loop ([`World`]): the ego's dynamics, the actors, the camera and
//! the bookkeeping of the result, fed by whoever decides (the AEB in process, or the nodes as
//! processes through the plant).

use crate::actors::{gap_and_overlap, ground_truth, Actor, Rng};
use crate::dynamics::Ego;
use crate::render::{Appearance, Look, Renderer};
use crate::result::{CellResult, RunConfig, Sample};
use crate::scenario::{Cell, Expect};
use crate::scoring::{self, Colour};
use reflex_aeb::range::CameraModel;
use reflex_aeb::threat::Level;
use reflex_aeb::AebConfig;
use reflex_msgs::std_msgs::Header;
use reflex_msgs::vision_msgs::Detection2DArray;

/// A cell's world in closed loop: the ego, the actors, the camera and the bookkeeping of the
/// result. Whoever runs it (the in-process AEB, or the nodes as processes) feeds it decisions
/// and brake demands.
pub struct World {
    pub ego: Ego,
    pub actors: Vec<Actor>,
    pub camera: CameraModel,
    config: RunConfig,
    rng: Rng,
    /// How each actor looks on camera (fixed by the seed).
    looks: Vec<Appearance>,
    next_frame_s: f64,
    frames: u64,
    duration_s: f64,
    expect: Expect,
    /// The nearest in-path object: (gap, closing speed).
    nearest: Option<(f64, f64)>,
    pub result: CellResult,
    done: bool,
}

impl World {
    pub fn new(cell: &Cell, config: &RunConfig) -> Self {
        let camera = CameraModel {
            fx: config.focal_px,
            fy: config.focal_px,
            cx: f64::from(config.image.0) / 2.0,
            cy: f64::from(config.image.1) / 2.0,
            height_m: config.camera_height_m,
            pitch_rad: config.camera_pitch_deg.to_radians(),
        };
        Self {
            ego: Ego::new(config.ego, cell.ego_speed_kmh / 3.6),
            actors: cell.actors.clone(),
            camera,
            config: config.clone(),
            rng: Rng::new(config.seed),
            looks: (0..cell.actors.len()).map(|i| Appearance::for_actor(config.seed, i)).collect(),
            next_frame_s: 0.0,
            frames: 0,
            duration_s: cell.duration_s,
            expect: cell.expect,
            nearest: None,
            result: CellResult {
                label: cell.label(),
                scenario: cell.scenario.clone(),
                ego_speed_kmh: cell.ego_speed_kmh,
                parameters: cell.parameters.clone(),
                expect: cell.expect,
                impact: false,
                impact_speed_kmh: 0.0,
                impact_time_s: None,
                min_gap_m: f64::MAX,
                warning_time_s: None,
                warning_ttc_s: None,
                braking_time_s: None,
                full_braking_time_s: None,
                full_braking_ttc_s: None,
                max_decel_mps2: 0.0,
                colour: Colour::Green,
                points: 0.0,
                fcw_in_time: false,
                series: Vec::new(),
                latency_ms: None,
                frames: 0,
                answered: 0,
            },
            done: false,
        }
    }

    pub fn time_s(&self) -> f64 {
        self.ego.time_s
    }

    /// The AEB configuration that matches this world's camera.
    pub fn aeb_config(&self) -> AebConfig {
        AebConfig {
            fx: self.camera.fx,
            fy: self.camera.fy,
            cx: self.camera.cx,
            cy: self.camera.cy,
            camera_height_m: self.camera.height_m,
            camera_pitch_deg: self.config.camera_pitch_deg,
            ..Default::default()
        }
    }

    /// Contact, the nearest in-path object, and whether the cell is decided (impact, time up,
    /// or standing still with nothing coming).
    pub fn observe(&mut self) -> bool {
        let t = self.time_s();
        self.nearest = None;
        for actor in &self.actors {
            let (gap, overlap) = gap_and_overlap(self.ego.x_m, self.config.ego.width_m, actor);
            if !overlap {
                continue;
            }
            if gap <= 0.0 && !self.result.impact {
                self.result.impact = true;
                self.result.impact_time_s = Some(t);
                self.result.impact_speed_kmh = (self.ego.speed_mps - actor.vx_mps).max(0.0) * 3.6;
            }
            if gap > -actor.footprint().0 && self.nearest.is_none_or(|(g, _)| gap < g) {
                self.nearest = Some((gap, self.ego.speed_mps - actor.vx_mps));
            }
        }
        if let Some((gap, _)) = self.nearest {
            self.result.min_gap_m = self.result.min_gap_m.min(gap.max(0.0));
        }
        let standing = self.ego.speed_mps == 0.0 && t > 0.5 && self.actors.iter().all(|a| a.vy_mps == 0.0);
        self.done = self.result.impact || t >= self.duration_s || standing;
        self.done
    }

    /// Whether the camera takes a frame now; the next one is then due a frame period later.
    pub fn frame_due(&mut self) -> bool {
        if self.time_s() + 1e-9 < self.next_frame_s {
            return false;
        }
        self.next_frame_s += 1.0 / self.config.fps;
        self.frames += 1;
        true
    }

    /// The camera's next frame, when one is due: ground-truth detections stamped `header`.
    pub fn frame(&mut self, header: &Header) -> Option<Detection2DArray> {
        if !self.frame_due() {
            return None;
        }
        Some(self.ground_truth(header))
    }

    /// What a perfect detector spoiled by the noise model sees now.
    pub fn ground_truth(&mut self, header: &Header) -> Detection2DArray {
        ground_truth(
            &self.camera,
            self.config.image,
            self.ego.x_m,
            &self.actors,
            &self.config.noise,
            &mut self.rng,
            header,
        )
    }

    /// Renders the camera's view now into `rgb` (RGB8 at the configured image size).
    pub fn render(&mut self, renderer: &mut Renderer, rgb: &mut [u8]) {
        let actors: Vec<(Actor, Appearance)> = self.actors.iter().cloned().zip(self.looks.iter().copied()).collect();
        renderer.render(self.ego.x_m, &actors, self.frames, rgb);
    }

    /// A renderer for this world's camera (default look, the run's seed).
    pub fn renderer(&self) -> Renderer {
        Renderer::new(self.camera, self.config.image.0, self.config.image.1, Look::default(), self.config.seed)
    }

    /// Books the chain's answer to a frame: warning and braking times, a sample of the series.
    pub fn record(&mut self, level: Level, decel_mps2: f64) {
        let t = self.time_s();
        if level >= Level::Warn && self.result.warning_time_s.is_none() {
            self.result.warning_time_s = Some(t);
            self.result.warning_ttc_s = self.nearest.filter(|(_, c)| *c > 0.0).map(|(g, c)| g / c);
        }
        if level >= Level::Partial && decel_mps2 > 0.0 && self.result.braking_time_s.is_none() {
            self.result.braking_time_s = Some(t);
        }
        if level == Level::Full && self.result.full_braking_time_s.is_none() {
            self.result.full_braking_time_s = Some(t);
            self.result.full_braking_ttc_s = self.ttc_ahead();
        }
        self.result.series.push(Sample {
            t_s: t,
            gap_m: self.nearest.map_or(f64::NAN, |(g, _)| g),
            ego_speed_mps: self.ego.speed_mps,
            target_speed_mps: self.actors.first().map_or(0.0, |a| a.vx_mps),
            decel_mps2: self.ego.decel_mps2,
            level: level as u8,
        });
    }

    /// Time to collision with the nearest object ahead by its longitudinal gap, wherever it is
    /// sideways (a pedestrian about to cross counts before they are in the path), the ego
    /// keeping its speed and a braking lead braking on to its standstill; `None` when nothing
    /// ahead is reached.
    fn ttc_ahead(&self) -> Option<f64> {
        let t = self.time_s();
        self.actors
            .iter()
            .filter_map(|actor| {
                let gap = gap_and_overlap(self.ego.x_m, self.config.ego.width_m, actor).0;
                let braking = actor.brake_at_s.is_some_and(|at| t >= at) && actor.vx_mps > 0.0;
                let decel = if braking { actor.brake_decel_mps2 } else { 0.0 };
                (gap > 0.0).then(|| time_to_contact(gap, self.ego.speed_mps, actor.vx_mps, decel)).flatten()
            })
            .min_by(f64::total_cmp)
    }

    /// Physics: one step of the ego and every actor.
    pub fn advance(&mut self) {
        let (t, dt) = (self.time_s(), self.config.dt_s);
        self.ego.step(dt);
        for actor in &mut self.actors {
            actor.step(t, dt);
        }
        self.result.max_decel_mps2 = self.result.max_decel_mps2.max(self.ego.decel_mps2);
    }

    /// Scores the cell.
    pub fn finish(mut self) -> CellResult {
        let result = &mut self.result;
        // Every frame is answered in process; a run through processes overwrites `answered`.
        (result.frames, result.answered) = (self.frames, self.frames);
        if result.min_gap_m == f64::MAX {
            result.min_gap_m = f64::NAN;
        }
        result.colour = match self.expect {
            Expect::Avoid => scoring::colour(result.ego_speed_kmh, result.impact_speed_kmh),
            Expect::NoBraking if result.braking_time_s.is_some() => Colour::Red,
            Expect::NoBraking => Colour::Green,
        };
        result.points = result.colour.points();
        result.fcw_in_time = scoring::fcw_in_time(result.warning_ttc_s);
        self.result
    }
}

/// When an ego at `ego_mps` reaches an object `gap_m` ahead moving at `object_mps` and braking
/// at `decel_mps2` to a standstill, s; `None` when it never does.
fn time_to_contact(gap_m: f64, ego_mps: f64, object_mps: f64, decel_mps2: f64) -> Option<f64> {
    if decel_mps2 > 0.0 && object_mps > 0.0 {
        // Closed distance (ego − object)·t + ½·a·t² until the object stands at v/a.
        let stop_s = object_mps / decel_mps2;
        let (a, b) = (0.5 * decel_mps2, ego_mps - object_mps);
        let t = (-b + (b * b + 4.0 * a * gap_m).sqrt()) / (2.0 * a);
        if t <= stop_s {
            return Some(t);
        }
        let closed = b * stop_s + a * stop_s * stop_s;
        return (ego_mps > 0.0).then(|| stop_s + (gap_m - closed) / ego_mps);
    }
    let closing = ego_mps - object_mps;
    (closing > 0.0).then(|| gap_m / closing)
}

#[cfg(test)]
mod tests {
    use super::time_to_contact;

    #[test]
    fn time_to_contact_against_closed_forms() {
        assert_eq!(time_to_contact(20.0, 10.0, 0.0, 0.0), Some(2.0));
        // A lead at the ego's speed braking at 6 m/s² from 12 m: 3·t² = 12, before it stands
        // (at 2.31 s).
        let t = time_to_contact(12.0, 13.9, 13.9, 6.0).unwrap();
        assert!((t - 2.0).abs() < 1e-9, "{t}");
        // From 40 m it stands first, 3·2.317² m closer; the rest at the ego's speed.
        let stop = 13.9 / 6.0;
        let t = time_to_contact(40.0, 13.9, 13.9, 6.0).unwrap();
        assert!((t - (stop + (40.0 - 3.0 * stop * stop) / 13.9)).abs() < 1e-9, "{t}");
        assert_eq!(time_to_contact(10.0, 0.0, 0.0, 0.0), None, "nothing moves");
        assert_eq!(time_to_contact(10.0, 5.0, 8.0, 0.0), None, "pulling away");
    }
}
