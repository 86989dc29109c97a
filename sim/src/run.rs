//! A cell run in closed loop with ground-truth perception: the world's actors projected into
//! the camera with the noise model, the real AEB code (`reflex_aeb::node::AebCore`) on each
//! frame, its request applied to the ego's brake after the perception latency and the
//! actuator's own delay. No transport: this is the fast sweep of the control logic; the full
//! stack (rendered frames → detector → AEB → arbiter as processes) drives the same world.

use crate::dynamics::{Ego, EgoConfig};
use crate::scenario::{Cell, Expect};
use crate::scoring::{self, Colour};
use crate::world::{gap_and_overlap, ground_truth, NoiseModel, Rng};
use reflex_aeb::node::{AebConfig, AebCore};
use reflex_aeb::range::CameraModel;
use reflex_aeb::threat::Level;
use reflex_msgs::std_msgs::Header;
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
    #[serde(skip)]
    pub series: Vec<Sample>,
}

pub fn run_cell(cell: &Cell, config: &RunConfig) -> CellResult {
    let mut ego = Ego::new(config.ego, cell.ego_speed_kmh / 3.6);
    let mut actors = cell.actors.clone();
    let camera = CameraModel {
        fx: config.focal_px,
        fy: config.focal_px,
        cx: f64::from(config.image.0) / 2.0,
        cy: f64::from(config.image.1) / 2.0,
        height_m: config.camera_height_m,
        pitch_rad: config.camera_pitch_deg.to_radians(),
    };
    let aeb_config = AebConfig {
        fx: camera.fx,
        fy: camera.fy,
        cx: camera.cx,
        cy: camera.cy,
        camera_height_m: camera.height_m,
        camera_pitch_deg: config.camera_pitch_deg,
        ..Default::default()
    };
    let mut aeb = AebCore::new(&aeb_config);
    let mut rng = Rng::new(config.seed);
    let frame_period = 1.0 / config.fps;
    let (mut next_frame, mut t) = (0.0, 0.0);
    // Requests on their way to the actuator: (time they arrive, decel).
    let mut in_flight: VecDeque<(f64, f64)> = VecDeque::new();
    let mut result = CellResult {
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
    };
    let mut header = Header { frame_id: "camera".into(), ..Default::default() };
    while t < cell.duration_s {
        // Contact and the nearest in-path object.
        let mut nearest: Option<(f64, f64)> = None; // (gap, closing speed)
        for actor in &actors {
            let (gap, overlap) = gap_and_overlap(ego.x_m, config.ego.width_m, actor);
            if overlap {
                if gap <= 0.0 && !result.impact {
                    result.impact = true;
                    result.impact_time_s = Some(t);
                    result.impact_speed_kmh = ((ego.speed_mps - actor.vx_mps).max(0.0)) * 3.6;
                }
                if gap > -actor.footprint().0 {
                    let closing = ego.speed_mps - actor.vx_mps;
                    if nearest.is_none_or(|(g, _)| gap < g) {
                        nearest = Some((gap, closing));
                    }
                }
            }
        }
        if let Some((gap, _)) = nearest {
            result.min_gap_m = result.min_gap_m.min(gap.max(0.0));
        }
        if result.impact {
            break;
        }
        if t + 1e-9 >= next_frame {
            next_frame += frame_period;
            header.stamp.sec = t.floor() as i32;
            header.stamp.nanosec = ((t - t.floor()) * 1e9) as u32;
            let detections = ground_truth(&camera, config.image, ego.x_m, &actors, &config.noise, &mut rng, &header);
            let (decision, _) = aeb.step(&detections, Some(ego.speed_mps));
            if decision.level >= Level::Warn && result.warning_time_s.is_none() {
                result.warning_time_s = Some(t);
                result.warning_ttc_s = nearest.filter(|(_, c)| *c > 0.0).map(|(g, c)| g / c);
            }
            let decel = if decision.level >= Level::Partial { decision.decel_mps2 } else { 0.0 };
            if decel > 0.0 && result.braking_time_s.is_none() {
                result.braking_time_s = Some(t);
            }
            in_flight.push_back((t + config.perception_latency_s, decel));
            let target_speed = actors.first().map_or(0.0, |a| a.vx_mps);
            result.series.push(Sample {
                t_s: t,
                gap_m: nearest.map_or(f64::NAN, |(g, _)| g),
                ego_speed_mps: ego.speed_mps,
                target_speed_mps: target_speed,
                decel_mps2: ego.decel_mps2,
                level: decision.level as u8,
            });
        }
        while in_flight.front().is_some_and(|(at, _)| *at <= t) {
            let (_, decel) = in_flight.pop_front().expect("checked");
            ego.command(decel);
        }
        ego.step(config.dt_s);
        for actor in &mut actors {
            actor.step(t, config.dt_s);
        }
        result.max_decel_mps2 = result.max_decel_mps2.max(ego.decel_mps2);
        t += config.dt_s;
        if ego.speed_mps == 0.0 && actors.iter().all(|a| a.vx_mps == 0.0 || a.vy_mps != 0.0) && t > 0.5 {
            // Standing still with nothing coming at us: the cell is decided.
            if actors.iter().all(|a| a.vy_mps == 0.0) {
                break;
            }
        }
    }
    if result.min_gap_m == f64::MAX {
        result.min_gap_m = f64::NAN;
    }
    result.colour = match cell.expect {
        Expect::Avoid => scoring::colour(cell.ego_speed_kmh, result.impact_speed_kmh),
        Expect::NoBraking => {
            if result.braking_time_s.is_some() {
                Colour::Red
            } else {
                Colour::Green
            }
        }
    };
    result.points = result.colour.points();
    result.fcw_in_time = scoring::fcw_in_time(result.warning_ttc_s);
    result
}
