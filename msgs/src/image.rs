//! Helpers on image messages that every consumer needs: packed `rgb8` from the common raw
//! encodings, and the camera mounting carried in `CameraInfo`.

use crate::sensor_msgs::{CameraInfo, ImageView};

impl<'a> ImageView<'a> {
    /// The pixels as tightly packed `rgb8`: the message's own bytes when they already are
    /// (no copy), else converted into `scratch` from `bgr8`, `rgba8`, `bgra8`, `mono8` or rows
    /// with padding. Errors name the encoding or the size that does not add up.
    pub fn to_rgb8<'s>(&self, scratch: &'s mut Vec<u8>) -> Result<&'s [u8], String>
    where
        'a: 's,
    {
        let (w, h) = (self.width as usize, self.height as usize);
        let channels = match self.encoding {
            "rgb8" | "bgr8" => 3,
            "rgba8" | "bgra8" => 4,
            "mono8" => 1,
            other => {
                return Err(format!("image encoding {other:?} is not supported (rgb8, bgr8, rgba8, bgra8, mono8)"))
            }
        };
        let step = self.step as usize;
        // Checked: on a 32-bit target w * channels and step * (h - 1) can wrap (L1).
        let row_bytes = w.checked_mul(channels);
        let needed = row_bytes.and_then(|row| step.checked_mul(h.saturating_sub(1))?.checked_add(row));
        let packed = w.checked_mul(h).and_then(|pixels| pixels.checked_mul(3));
        let fits = matches!((row_bytes, needed, packed), (Some(row), Some(needed), Some(_)) if step >= row && self.data.len() >= needed);
        if w == 0 || h == 0 || !fits {
            return Err(format!(
                "image {}x{} {} with step {} has {} bytes: its rows do not fit (a step shorter than a row, too few bytes, or sizes that overflow)",
                self.width,
                self.height,
                self.encoding,
                self.step,
                self.data.len()
            ));
        }
        if self.encoding == "rgb8" && step == w * 3 {
            return Ok(&self.data[..w * h * 3]);
        }
        scratch.clear();
        scratch.reserve(w * h * 3);
        for row in 0..h {
            let line = &self.data[row * step..row * step + w * channels];
            for px in line.chunks_exact(channels) {
                match self.encoding {
                    "rgb8" | "rgba8" => scratch.extend_from_slice(&px[..3]),
                    "bgr8" | "bgra8" => scratch.extend_from_slice(&[px[2], px[1], px[0]]),
                    _ => scratch.extend_from_slice(&[px[0], px[0], px[0]]),
                }
            }
        }
        Ok(scratch)
    }
}

/// Where the camera sits: height of the optical centre above the road and downward pitch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mounting {
    pub height_m: f64,
    pub pitch_rad: f64,
}

impl CameraInfo {
    /// Pinhole intrinsics without distortion, and the mounting (see [`CameraInfo::mounting`]).
    pub fn pinhole(width: u32, height: u32, fx: f64, fy: f64, cx: f64, cy: f64, mounting: Mounting) -> Self {
        let (s, c) = mounting.pitch_rad.sin_cos();
        Self {
            width,
            height,
            distortion_model: "plumb_bob".into(),
            d: vec![0.0; 5],
            k: [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0],
            r: [1.0, 0.0, 0.0, 0.0, c, -s, 0.0, s, c],
            p: [fx, 0.0, cx, 0.0, 0.0, fy, cy, fy * mounting.height_m, 0.0, 0.0, 1.0, 0.0],
            ..Default::default()
        }
    }

    /// The mounting, by Reflex's convention for a monocular camera (ROS has no field for it):
    /// `r` rotates the camera frame to a level frame (a rotation about x by the downward
    /// pitch), and `p`'s Ty entry (`p[7]`) is `fy` times the height above the road, as if the
    /// rectified reference camera sat on the road below. `None` when `r` is not such a rotation
    /// or `fy` is zero (a camera that does not carry its mounting), or when any entry is not a
    /// finite number.
    pub fn mounting(&self) -> Option<Mounting> {
        if !self.r.iter().chain(&self.p).all(|v| v.is_finite()) {
            return None;
        }
        let r = &self.r;
        let about_x = r[0] == 1.0 && r[1] == 0.0 && r[2] == 0.0 && r[3] == 0.0 && r[6] == 0.0;
        let (s, c) = (r[7], r[8]);
        if !about_x || (s * s + c * c - 1.0).abs() > 1e-6 || (r[4] - c).abs() > 1e-9 || (r[5] + s).abs() > 1e-9 {
            return None;
        }
        if self.p[5] == 0.0 || self.p[7] == 0.0 {
            return None;
        }
        let mounting = Mounting { height_m: self.p[7] / self.p[5], pitch_rad: s.atan2(c) };
        (mounting.height_m.is_finite() && mounting.pitch_rad.is_finite()).then_some(mounting)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::std_msgs::HeaderView;

    fn view<'a>(encoding: &'a str, width: u32, step: u32, data: &'a [u8]) -> ImageView<'a> {
        ImageView { header: HeaderView::default(), height: 1, width, encoding, is_bigendian: 0, step, data }
    }

    #[test]
    fn rgb8_without_padding_is_borrowed_as_is() {
        let data = [1, 2, 3, 4, 5, 6];
        let mut scratch = Vec::new();
        let rgb = view("rgb8", 2, 6, &data).to_rgb8(&mut scratch).unwrap().as_ptr();
        assert_eq!(rgb, data.as_ptr());
    }

    #[test]
    fn other_encodings_convert() {
        let mut scratch = Vec::new();
        assert_eq!(view("bgr8", 1, 3, &[1, 2, 3]).to_rgb8(&mut scratch).unwrap(), [3, 2, 1]);
        assert_eq!(view("bgra8", 1, 4, &[1, 2, 3, 9]).to_rgb8(&mut scratch).unwrap(), [3, 2, 1]);
        assert_eq!(view("mono8", 2, 2, &[7, 8]).to_rgb8(&mut scratch).unwrap(), [7, 7, 7, 8, 8, 8]);
        // Row padding: step 8 for a 2-pixel rgb8 row.
        assert_eq!(view("rgb8", 2, 8, &[1, 2, 3, 4, 5, 6, 0, 0]).to_rgb8(&mut scratch).unwrap(), [1, 2, 3, 4, 5, 6]);
        let error = view("yuv422", 1, 2, &[0, 0]).to_rgb8(&mut scratch).unwrap_err();
        assert!(error.contains("yuv422"), "{error}");
        let error = view("rgb8", 4, 12, &[0; 6]).to_rgb8(&mut scratch).unwrap_err();
        assert!(error.contains("do not fit"), "{error}");
    }

    #[test]
    fn mounting_round_trips_through_camera_info() {
        let mounting = Mounting { height_m: 1.3, pitch_rad: 2f64.to_radians() };
        let info = CameraInfo::pinhole(640, 480, 500.0, 510.0, 320.0, 240.0, mounting);
        let back = info.mounting().unwrap();
        assert!((back.height_m - 1.3).abs() < 1e-12 && (back.pitch_rad - mounting.pitch_rad).abs() < 1e-12);
        assert_eq!(CameraInfo::default().mounting(), None);
        let mut tilted = info.clone();
        tilted.r[1] = 0.1;
        assert_eq!(tilted.mounting(), None);
    }

    /// H8: NaN in the rotation passed every `>` test and gave a NaN pitch.
    #[test]
    fn non_finite_mounting_entries_give_no_mounting() {
        let info =
            CameraInfo::pinhole(640, 480, 500.0, 500.0, 320.0, 240.0, Mounting { height_m: 1.3, pitch_rad: 0.0 });
        for index in [4, 5, 7, 8] {
            let mut bad = info.clone();
            bad.r[index] = f64::NAN;
            assert_eq!(bad.mounting(), None, "r[{index}] = NaN");
        }
        let mut bad = info.clone();
        bad.p[7] = f64::INFINITY;
        assert_eq!(bad.mounting(), None);
    }
}
