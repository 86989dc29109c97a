//! Monocular range from a 2D bounding box.
//!
//! Flat ground, pinhole camera at height `H` above the road, pitched down by `θ`. A road point
//! at forward distance `Z` and lateral offset `Y` (left positive) is, in camera coordinates
//! (x right, y down, z forward): `z_c = Z cosθ + H sinθ`, `y_c = H cosθ − Z sinθ`, `x_c = −Y`,
//! and appears at `u = c_x + f_x x_c/z_c`, `v = c_y + f_y y_c/z_c`. The bottom edge of a box is
//! where the object meets the road, so its row gives `Z` (Stein, Mano and Shashua, 2003); the
//! box's width in pixels against the class's typical width gives a second estimate.

/// Intrinsics and mounting of the camera.
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct CameraModel {
    pub fx: f64,
    pub fy: f64,
    pub cx: f64,
    pub cy: f64,
    /// Height of the optical centre above the road, metres.
    pub height_m: f64,
    /// Downward pitch of the optical axis, radians.
    pub pitch_rad: f64,
}

/// Where an object is, from one box.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RangeEstimate {
    /// Forward distance to the object's nearest face along the road, metres.
    pub range_m: f64,
    /// Lateral offset of the box centre at that range, metres, left positive.
    pub lateral_m: f64,
    /// Range from the box width and the class's typical width, when the class has one.
    pub width_range_m: Option<f64>,
}

impl RangeEstimate {
    /// Whether the two estimates agree within `tolerance` (relative); true without a width one.
    pub fn consistent(&self, tolerance: f64) -> bool {
        self.width_range_m.is_none_or(|w| (w - self.range_m).abs() <= tolerance * self.range_m)
    }
}

/// A box in image pixels: left, top, right, bottom.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PixelBox {
    pub left: f64,
    pub top: f64,
    pub right: f64,
    pub bottom: f64,
}

impl PixelBox {
    pub fn from_center(cx: f64, cy: f64, width: f64, height: f64) -> Self {
        Self { left: cx - width / 2.0, top: cy - height / 2.0, right: cx + width / 2.0, bottom: cy + height / 2.0 }
    }

    pub fn width(&self) -> f64 {
        self.right - self.left
    }

    pub fn center_x(&self) -> f64 {
        (self.left + self.right) / 2.0
    }
}

/// Typical width of objects of a COCO class, metres (the Euro NCAP target car is 1.71 m).
pub fn typical_width_m(class_id: &str) -> Option<f64> {
    match class_id {
        "car" => Some(1.75),
        "truck" | "bus" => Some(2.5),
        "person" | "pedestrian" => Some(0.5),
        "bicycle" | "cyclist" => Some(0.6),
        "motorcycle" => Some(0.8),
        _ => None,
    }
}

impl CameraModel {
    /// Projects a road-level point (forward `z`, lateral `y`, height above road `up`) to pixels;
    /// `None` behind the camera.
    pub fn project(&self, z: f64, y: f64, up: f64) -> Option<(f64, f64)> {
        let (sin, cos) = self.pitch_rad.sin_cos();
        let drop = self.height_m - up;
        let z_c = z * cos + drop * sin;
        let y_c = drop * cos - z * sin;
        (z_c > 1e-6).then(|| (self.cx + self.fx * (-y) / z_c, self.cy + self.fy * y_c / z_c))
    }

    /// Forward distance of the road point seen at image row `v`; `None` at or above the horizon.
    pub fn ground_range(&self, v: f64) -> Option<f64> {
        let (sin, cos) = self.pitch_rad.sin_cos();
        let t = (v - self.cy) / self.fy;
        let denominator = t * cos + sin;
        (denominator > 1e-9).then(|| self.height_m * (cos - t * sin) / denominator).filter(|z| *z > 0.0)
    }

    /// Standard deviation of [`ground_range`](Self::ground_range) at row `v` when the row is
    /// off by `sigma_px` (1 sigma): half the spread between the rows a sigma either side.
    /// Infinite when a sigma up reaches the horizon (the row tells nothing of the range).
    pub fn ground_range_sigma(&self, v: f64, sigma_px: f64) -> f64 {
        match (self.ground_range(v - sigma_px), self.ground_range(v + sigma_px)) {
            (Some(far), Some(near)) => (far - near).abs() / 2.0,
            _ => f64::INFINITY,
        }
    }

    /// Depth along the optical axis of a road point at forward distance `z`.
    fn optical_depth(&self, z: f64) -> f64 {
        let (sin, cos) = self.pitch_rad.sin_cos();
        z * cos + self.height_m * sin
    }

    /// Range and lateral offset of the object in `bbox`, of class `class_id`.
    pub fn estimate(&self, bbox: &PixelBox, class_id: &str) -> Option<RangeEstimate> {
        let range_m = self.ground_range(bbox.bottom)?;
        let lateral_m = -(bbox.center_x() - self.cx) / self.fx * self.optical_depth(range_m);
        let width_range_m = typical_width_m(class_id).filter(|_| bbox.width() > 1.0).map(|width| {
            let (sin, cos) = self.pitch_rad.sin_cos();
            let z_c = self.fx * width / bbox.width();
            (z_c - self.height_m * sin) / cos
        });
        Some(RangeEstimate { range_m, lateral_m, width_range_m })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn camera(pitch_deg: f64) -> CameraModel {
        CameraModel { fx: 500.0, fy: 500.0, cx: 320.0, cy: 240.0, height_m: 1.3, pitch_rad: pitch_deg.to_radians() }
    }

    /// The box a car-sized object at (z, y) projects to: bottom from its nearest road contact,
    /// sides from its width at the near face, top from its height.
    fn synthetic_box(camera: &CameraModel, z: f64, y: f64, width: f64, height: f64) -> PixelBox {
        let (left, bottom) = camera.project(z, y + width / 2.0, 0.0).unwrap();
        let (right, _) = camera.project(z, y - width / 2.0, 0.0).unwrap();
        let (_, top) = camera.project(z, y, height).unwrap();
        PixelBox { left, top, right, bottom }
    }

    proptest! {
        #[test]
        fn range_within_five_percent_from_known_geometry(
            z in 4.0f64..80.0, y in -3.0f64..3.0, pitch in -1.0f64..3.0,
        ) {
            let camera = camera(pitch);
            let bbox = synthetic_box(&camera, z, y, 1.75, 1.5);
            prop_assume!(bbox.bottom < 480.0 && bbox.bottom > camera.cy);
            let estimate = camera.estimate(&bbox, "car").unwrap();
            prop_assert!((estimate.range_m - z).abs() <= 0.05 * z, "range {} for {}", estimate.range_m, z);
            prop_assert!((estimate.lateral_m - y).abs() <= 0.05 * z.max(1.0), "lateral {} for {}", estimate.lateral_m, y);
            let width_range = estimate.width_range_m.unwrap();
            prop_assert!((width_range - z).abs() <= 0.05 * z, "width range {} for {}", width_range, z);
            prop_assert!(estimate.consistent(0.1));
        }
    }

    #[test]
    fn range_noise_grows_with_the_square_of_range() {
        let camera = camera(0.0);
        let row = |z: f64| camera.project(z, 0.0, 0.0).unwrap().1;
        // Flat camera: Z = f·H / (v − c_y), so dZ/dv = Z² / (f·H).
        for z in [5.0, 12.0, 40.0] {
            let sigma = camera.ground_range_sigma(row(z), 2.0);
            let expected = z * z * 2.0 / (500.0 * 1.3);
            assert!((sigma - expected).abs() <= 0.02 * expected, "{z} m: {sigma} vs {expected}");
        }
        assert_eq!(camera.ground_range_sigma(241.0, 2.0), f64::INFINITY, "a sigma up is above the horizon");
    }

    #[test]
    fn horizon_and_above_have_no_range() {
        let camera = camera(0.0);
        assert_eq!(camera.ground_range(240.0), None);
        assert_eq!(camera.ground_range(100.0), None);
        let near = camera.ground_range(400.0).unwrap();
        assert!((near - 1.3 * 500.0 / 160.0).abs() < 1e-9, "{near}");
        assert_eq!(typical_width_m("kite"), None);
    }
}
