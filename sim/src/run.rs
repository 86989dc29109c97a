//! A cell run in closed loop with ground-truth perception: the world's actors projected into
//! the camera with the noise model, the real AEB code (`reflex_aeb::AebCore`) on each
//! frame, its request applied to the ego's brake after the perception latency and the
//! actuator's own delay. No transport: this is the fast sweep of the control logic; the full
//! stack (rendered frames → detector → AEB → arbiter as processes) drives the same world.

use crate::dynamics::{Ego, EgoConfig};
use crate::render::{Appearance, Look, Renderer};
use crate::scenario::{Cell, Expect};
use crate::scoring::{self, Colour};
use crate::world::{gap_and_overlap, ground_truth, Actor, NoiseModel, Rng};
use reflex_aeb::range::CameraModel;
use reflex_aeb::threat::Level;
use reflex_aeb::{AebConfig, AebCore};
use reflex_msgs::std_msgs::Header;
use reflex_msgs::vision_msgs::Detection2DArray;
use serde::Serialize;
use std::collections::VecDeque;

#[derive(Debug, Clone, Serialize)]
pub struct RunConfig {
    pub ego: EgoConfig,
    pub noise: NoiseModel,
    pub seed: u64,
    pub fps: f64,
    /// From capture to the brake request reaching the actuator (detector, AEB, arbiter, hops), s.
    pub perception_latency_s: f64,
    pub image: (u32, u32),
    pub focal_px: f64,
    pub camera_height_m: f64,
    pub camera_pitch_deg: f64,
    /// Physics step, s.
    pub dt_s: f64,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            ego: EgoConfig::default(),
            noise: NoiseModel::default(),
            seed: 1,
            fps: 30.0,
            perception_latency_s: 0.05,
            image: (640, 480),
            focal_px: 500.0,
            camera_height_m: 1.3,
            camera_pitch_deg: 0.0,
            dt_s: 0.001,
        }
    }
}

/// One sample of a run, at the camera rate.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub t_s: f64,
    pub gap_m: f64,
    pub ego_speed_mps: f64,
    pub target_speed_mps: f64,
    pub decel_mps2: f64,
    pub level: u8,
}

#[derive(Debug, Clone, Serialize)]
pub struct CellResult {
    pub label: String,
    pub scenario: String,
    pub ego_speed_kmh: f64,
    pub parameters: Vec<(String, f64)>,
    pub expect: Expect,
    pub impact: bool,
    /// Relative impact speed (0 when avoided), km/h.
    pub impact_speed_kmh: f64,
    pub impact_time_s: Option<f64>,
    pub min_gap_m: f64,
    /// First warning and its time to collision (ground truth) at that moment.
    pub warning_time_s: Option<f64>,
    pub warning_ttc_s: Option<f64>,
    /// First partial or full braking request.
    pub braking_time_s: Option<f64>,
    pub max_decel_mps2: f64,
    pub colour: Colour,
    pub points: f64,
    pub fcw_in_time: bool,
    /// Real-time runs: capture → brake command at the plant, ms (p50, p99, max).
    pub latency_ms: Option<[f64; 3]>,
    /// Camera frames sent, and how many the chain answered with a command (runs through
    /// processes; in process every frame is answered).
    pub frames: u64,
    pub answered: u64,
    #[serde(skip)]
    pub series: Vec<Sample>,
}

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
        self.result.series.push(Sample {
            t_s: t,
            gap_m: self.nearest.map_or(f64::NAN, |(g, _)| g),
            ego_speed_mps: self.ego.speed_mps,
            target_speed_mps: self.actors.first().map_or(0.0, |a| a.vx_mps),
            decel_mps2: self.ego.decel_mps2,
            level: level as u8,
        });
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

/// A cell with the AEB in process: its request reaches the actuator after the configured
/// capture-to-actuator latency.
pub fn run_cell(cell: &Cell, config: &RunConfig) -> CellResult {
    let mut world = World::new(cell, config);
    let mut aeb = AebCore::new(&world.aeb_config());
    // Requests on their way to the actuator: (time they arrive, decel).
    let mut in_flight: VecDeque<(f64, f64)> = VecDeque::new();
    let mut header = Header { frame_id: "camera".into(), ..Default::default() };
    while !world.observe() {
        let t = world.time_s();
        // Stamps start at 1 s: a zero stamp means "no capture time" and the AEB refuses it.
        let stamp_s = t + 1.0;
        header.stamp.sec = stamp_s.floor() as i32;
        header.stamp.nanosec = ((stamp_s - stamp_s.floor()) * 1e9) as u32;
        if let Some(detections) = world.frame(&header) {
            let arrival_ns = header.stamp.as_nanos();
            let decision = match aeb.step(&detections, Some(world.ego.speed_mps), arrival_ns) {
                Ok((decision, _)) => decision,
                Err(refused) => unreachable!("the simulator stamps every frame: {refused:?}"),
            };
            let decel = if decision.level >= Level::Partial { decision.decel_mps2 } else { 0.0 };
            world.record(decision.level, decel);
            in_flight.push_back((t + config.perception_latency_s, decel));
        }
        while in_flight.front().is_some_and(|(at, _)| *at <= t) {
            let (_, decel) = in_flight.pop_front().expect("checked");
            world.ego.command(decel);
        }
        world.advance();
    }
    world.finish()
}
