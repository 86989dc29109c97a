//! Actors on the road: the Euro NCAP targets' sizes and labels, and how they move.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActorKind {
    Car,
    Pedestrian,
    Cyclist,
}

impl ActorKind {
    /// Length (along its own motion), width, height, m: the Euro NCAP targets.
    pub fn size(self) -> (f64, f64, f64) {
        match self {
            ActorKind::Car => (4.02, 1.71, 1.5),
            ActorKind::Pedestrian => (0.3, 0.5, 1.8),
            ActorKind::Cyclist => (1.8, 0.6, 1.7),
        }
    }

    /// The COCO label a detector gives it.
    pub fn label(self) -> &'static str {
        match self {
            ActorKind::Car => "car",
            ActorKind::Pedestrian => "person",
            ActorKind::Cyclist => "bicycle",
        }
    }
}

/// An actor on the road. `x` along the road (ego's direction), `y` to the left; the box is
/// axis-aligned (cars and cyclists drive along the road; pedestrians cross it).
#[derive(Debug, Clone, Serialize)]
pub struct Actor {
    pub kind: ActorKind,
    /// Centre, m.
    pub x_m: f64,
    pub y_m: f64,
    pub vx_mps: f64,
    pub vy_mps: f64,
    /// Braking starts at this time (s), at `brake_decel_mps2`, until standstill.
    pub brake_at_s: Option<f64>,
    pub brake_decel_mps2: f64,
}

impl Actor {
    /// Extent along x and y (a crossing pedestrian's length is across the road).
    pub fn footprint(&self) -> (f64, f64) {
        let (length, width, _) = self.kind.size();
        if self.vy_mps.abs() > self.vx_mps.abs() {
            (width, length)
        } else {
            (length, width)
        }
    }

    pub fn step(&mut self, time_s: f64, dt_s: f64) {
        if self.brake_at_s.is_some_and(|at| time_s >= at) && self.vx_mps > 0.0 {
            self.vx_mps = (self.vx_mps - self.brake_decel_mps2 * dt_s).max(0.0);
        }
        self.x_m += self.vx_mps * dt_s;
        self.y_m += self.vy_mps * dt_s;
    }
}
