//! A moving test pattern: eight colour bars scrolling left and a white box bouncing across.

use crate::{FrameSource, SourceError};

const BARS: [[u8; 3]; 8] =
    [[255, 255, 255], [255, 255, 0], [0, 255, 255], [0, 255, 0], [255, 0, 255], [255, 0, 0], [0, 0, 255], [16, 16, 16]];

pub struct TestPattern {
    width: u32,
    height: u32,
    frame: u64,
}

impl TestPattern {
    pub fn new(width: u32, height: u32) -> Self {
        Self { width, height, frame: 0 }
    }

    /// Frames produced so far.
    pub fn frames(&self) -> u64 {
        self.frame
    }

    /// Left edge of the box in frame `frame`: it crosses the image in 120 frames and back.
    pub fn box_x(&self, frame: u64) -> u32 {
        let box_size = self.height / 4;
        let travel = u64::from(self.width - box_size);
        let phase = (frame % 240) * travel / 120;
        (if phase > travel { 2 * travel - phase } else { phase }) as u32
    }
}

impl FrameSource for TestPattern {
    fn width(&self) -> u32 {
        self.width
    }

    fn height(&self) -> u32 {
        self.height
    }

    fn fill(&mut self, out: &mut Vec<u8>) -> Result<(), SourceError> {
        let (width, height) = (self.width as usize, self.height as usize);
        out.resize(width * height * 3, 0);
        let bar_width = width.div_ceil(BARS.len());
        let shift = (self.frame as usize * 4) % width;
        let (row0, rest) = out.split_at_mut(width * 3);
        for (x, pixel) in row0.chunks_exact_mut(3).enumerate() {
            pixel.copy_from_slice(&BARS[((x + shift) % width) / bar_width]);
        }
        for row in rest.chunks_exact_mut(width * 3) {
            row.copy_from_slice(row0);
        }
        let box_size = height / 4;
        let (box_x, box_y) = (self.box_x(self.frame) as usize, height / 2 - box_size / 2);
        for y in box_y..box_y + box_size {
            out[(y * width + box_x) * 3..(y * width + box_x + box_size) * 3].fill(250);
        }
        self.frame += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_moves_and_has_the_box_where_it_says() {
        let mut pattern = TestPattern::new(64, 32);
        let mut first = Vec::new();
        pattern.fill(&mut first).unwrap();
        assert_eq!(first.len(), 64 * 32 * 3);
        let mut second = Vec::new();
        pattern.fill(&mut second).unwrap();
        assert_ne!(first, second, "consecutive frames differ");
        // The box (8x8 at y 12..20) is white-ish at its reported position in frame 1.
        let x = pattern.box_x(1) as usize;
        let centre = ((16 * 64) + x + 4) * 3;
        assert_eq!(&second[centre..centre + 3], &[250, 250, 250]);
        assert_eq!(pattern.frames(), 2);
        assert_eq!(pattern.box_x(0), 0);
        assert_eq!(pattern.box_x(120), 64 - 8, "far edge after 120 frames");
        assert_eq!(pattern.box_x(240), 0, "and back");
    }
}
