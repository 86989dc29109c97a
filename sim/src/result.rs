//! What a cell run is configured with ([`RunConfig`]) and what it gives ([`CellResult`], with
//! its time series of [`Sample`]s): the report, the plots and the tests read these.

use crate::actors::NoiseModel;
use crate::dynamics::EgoConfig;
use crate::scenario::Expect;
use crate::scoring::Colour;
use serde::Serialize;

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
    /// First full braking request, and the time to collision (ground truth) with the nearest
    /// object ahead at that moment: how early the AEB braked hard (Euro NCAP and drivers
    /// expect it no earlier than about TTC 2 s where later still avoids).
    pub full_braking_time_s: Option<f64>,
    pub full_braking_ttc_s: Option<f64>,
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
