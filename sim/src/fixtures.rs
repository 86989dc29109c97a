//! Fixtures the unit tests of this crate share: the default camera and a parked car.

use crate::actors::{Actor, ActorKind};
use reflex_aeb::range::CameraModel;

/// The AEB's default camera: 640x480, f 500 px, 1.3 m high, level.
pub fn camera() -> CameraModel {
    CameraModel { fx: 500.0, fy: 500.0, cx: 320.0, cy: 240.0, height_m: 1.3, pitch_rad: 0.0 }
}

/// A standing car at `x` m ahead, `y` m to the side.
pub fn car(x: f64, y: f64) -> Actor {
    Actor { kind: ActorKind::Car, x_m: x, y_m: y, vx_mps: 0.0, vy_mps: 0.0, brake_at_s: None, brake_decel_mps2: 0.0 }
}
