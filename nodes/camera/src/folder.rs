//! An image folder: PNG and JPEG files in name order, looping, resized to one frame size.

use crate::{fit_into, FrameSource, SourceError};
use std::path::{Path, PathBuf};

pub struct ImageFolder {
    files: Vec<PathBuf>,
    next: usize,
    looping: bool,
    width: u32,
    height: u32,
}

impl ImageFolder {
    /// Lists the folder; the frame size is `size`, or the first image's own size when `None`.
    pub fn open(folder: &Path, size: Option<(u32, u32)>, looping: bool) -> Result<Self, SourceError> {
        let entries = std::fs::read_dir(folder)
            .map_err(|e| SourceError::Failed(format!("image folder {}: {e}", folder.display())))?;
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                    let e = e.to_ascii_lowercase();
                    e == "png" || e == "jpg" || e == "jpeg"
                })
            })
            .collect();
        files.sort();
        let Some(first) = files.first() else {
            return Err(SourceError::Failed(format!(
                "image folder {} has no .png, .jpg or .jpeg files",
                folder.display()
            )));
        };
        let (width, height) = match size {
            Some(size) => size,
            None => image::image_dimensions(first)
                .map_err(|e| SourceError::Failed(format!("{}: cannot read image: {e}", first.display())))?,
        };
        Ok(Self { files, next: 0, looping, width, height })
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

impl FrameSource for ImageFolder {
    fn width(&self) -> u32 {
        self.width
    }

    fn height(&self) -> u32 {
        self.height
    }

    fn fill(&mut self, out: &mut Vec<u8>) -> Result<(), SourceError> {
        if self.next == self.files.len() {
            if !self.looping {
                return Err(SourceError::Ended);
            }
            self.next = 0;
        }
        let path = &self.files[self.next];
        self.next += 1;
        let image = image::open(path)
            .map_err(|e| SourceError::Failed(format!("{}: cannot read image: {e}", path.display())))?
            .into_rgb8();
        fit_into(image, (self.width, self.height), out);
        Ok(())
    }
}
