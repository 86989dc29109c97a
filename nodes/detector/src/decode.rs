//! Output decoders (NanoDet, SSD, YOLOv8) and class-wise non-maximum suppression: plain code
//! over `f32` slices, so every rule is unit-tested without a model.

use crate::config::DecoderConfig;

/// One detection, box corners in pixels of the image it is expressed in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    pub class: usize,
    pub score: f32,
    pub x0: f32,
    pub y0: f32,
    pub x1: f32,
    pub y1: f32,
}

impl Detection {
    pub fn area(&self) -> f32 {
        (self.x1 - self.x0).max(0.0) * (self.y1 - self.y0).max(0.0)
    }

    pub fn iou(&self, other: &Detection) -> f32 {
        let w = (self.x1.min(other.x1) - self.x0.max(other.x0)).max(0.0);
        let h = (self.y1.min(other.y1) - self.y0.max(other.y0)).max(0.0);
        let intersection = w * h;
        let union = self.area() + other.area() - intersection;
        if union > 0.0 {
            intersection / union
        } else {
            0.0
        }
    }
}

/// Where decoders read output tensors: by name, with their shape.
pub trait Outputs {
    fn get(&self, name: &str) -> Option<(&[usize], &[f32])>;
}

impl Outputs for std::collections::HashMap<String, (Vec<usize>, Vec<f32>)> {
    fn get(&self, name: &str) -> Option<(&[usize], &[f32])> {
        self.get(name).map(|(shape, data)| (shape.as_slice(), data.as_slice()))
    }
}

/// Checks that the model's outputs fit the decoder; `shape_of` gives an output's static shape.
/// `classes` is the number of labels. Returns a sentence naming the output and the shape wanted.
pub fn check_outputs(
    decoder: &DecoderConfig,
    input: (u32, u32),
    classes: usize,
    shape_of: &dyn Fn(&str) -> Option<Vec<usize>>,
) -> Result<(), String> {
    let shape = |name: &str| shape_of(name).ok_or_else(|| format!("the model has no output named {name:?}"));
    match decoder {
        DecoderConfig::Nanodet { scores, boxes, strides, reg_max, .. } => {
            for ((score_name, box_name), &stride) in scores.iter().zip(boxes).zip(strides) {
                let cells = grid(input, stride).0 * grid(input, stride).1;
                let got = shape(score_name)?;
                if got.len() != 3 || got[0] != 1 || got[1] != cells || got[2] == 0 {
                    return Err(format!(
                        "output {score_name:?} has shape {got:?}; the nanodet decoder wants [1, {cells}, classes] \
                         for stride {stride} at input {}x{}",
                        input.0, input.1
                    ));
                }
                if got[2] > classes {
                    return Err(format!(
                        "output {score_name:?} scores {} classes but the labels file names {classes}",
                        got[2]
                    ));
                }
                let want = [1, cells, 4 * (reg_max + 1)];
                let got = shape(box_name)?;
                if got != want {
                    return Err(format!(
                        "output {box_name:?} has shape {got:?}; the nanodet decoder wants {want:?} \
                         (4 sides x (reg_max {reg_max} + 1) bins) for stride {stride}"
                    ));
                }
            }
        }
        DecoderConfig::Ssd { boxes, classes: class_name, scores, count, .. } => {
            let got = shape(boxes)?;
            if got.len() != 3 || got[0] != 1 || got[2] != 4 {
                return Err(format!("output {boxes:?} has shape {got:?}; the ssd decoder wants [1, N, 4]"));
            }
            let n = got[1];
            for name in [class_name, scores] {
                let got = shape(name)?;
                if got != [1, n] {
                    return Err(format!("output {name:?} has shape {got:?}; the ssd decoder wants [1, {n}]"));
                }
            }
            if let Some(name) = count {
                let got = shape(name)?;
                if got.iter().product::<usize>() != 1 {
                    return Err(format!("output {name:?} has shape {got:?}; the ssd decoder wants one number"));
                }
            }
        }
        DecoderConfig::Yolov8 { output } => {
            let got = shape(output)?;
            if got.len() != 3 || got[0] != 1 || got[1] < 5 {
                return Err(format!(
                    "output {output:?} has shape {got:?}; the yolov8 decoder wants [1, 4 + classes, N]"
                ));
            }
            if got[1] - 4 > classes {
                return Err(format!(
                    "output {output:?} has shape {got:?}: read as the yolov8 decoder's [1, 4 + classes, N] that is \
                     {} classes, but the labels file names {classes}",
                    got[1] - 4
                ));
            }
        }
    }
    Ok(())
}

/// Cells across and down for a stride (partial cells count, as the feature maps do).
fn grid(input: (u32, u32), stride: u32) -> (usize, usize) {
    (input.0.div_ceil(stride) as usize, input.1.div_ceil(stride) as usize)
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// The inverse of the sigmoid (−∞ at 0, +∞ at 1).
fn logit(p: f32) -> f32 {
    (p / (1.0 - p)).ln()
}

/// Decodes candidates above `threshold` into `out` (boxes in model-input pixels), unsorted and
/// before NMS. Shapes must have passed [`check_outputs`]; a tensor that is missing or too short
/// here gives an error rather than a panic.
pub fn decode(
    decoder: &DecoderConfig,
    input: (u32, u32),
    outputs: &dyn Outputs,
    threshold: f32,
    out: &mut Vec<Detection>,
) -> Result<(), String> {
    let get = |name: &str| outputs.get(name).ok_or_else(|| format!("the model produced no output {name:?}"));
    match decoder {
        DecoderConfig::Nanodet { scores, boxes, strides, reg_max, scores_are_probabilities, center_offset } => {
            let bins = reg_max + 1;
            for ((score_name, box_name), &stride) in scores.iter().zip(boxes).zip(strides) {
                let (score_shape, score_data) = get(score_name)?;
                let (_, box_data) = get(box_name)?;
                let (columns, rows) = grid(input, stride);
                let classes = *score_shape.last().unwrap_or(&0);
                if score_data.len() < columns * rows * classes || box_data.len() < columns * rows * 4 * bins {
                    return Err(format!("outputs {score_name:?}/{box_name:?} are shorter than their shapes"));
                }
                // In probability space the threshold is compared directly; for logits, against its logit.
                let raw_threshold = if *scores_are_probabilities { threshold } else { logit(threshold) };
                for cell in 0..columns * rows {
                    let cell_scores = &score_data[cell * classes..(cell + 1) * classes];
                    // Most cells hold nothing: one branch-free pass (vectorised) skips them.
                    if !cell_scores.iter().fold(false, |any, &raw| any | (raw >= raw_threshold)) {
                        continue;
                    }
                    let mut distances: Option<[f32; 4]> = None;
                    for (class, &raw) in cell_scores.iter().enumerate() {
                        let score = if *scores_are_probabilities { raw } else { sigmoid(raw) };
                        if score < threshold {
                            continue;
                        }
                        let [left, top, right, bottom] = *distances.get_or_insert_with(|| {
                            let regression = &box_data[cell * 4 * bins..(cell + 1) * 4 * bins];
                            std::array::from_fn(|side| expected_bin(&regression[side * bins..(side + 1) * bins]))
                        });
                        let s = stride as f32;
                        let cx = ((cell % columns) as f32 + center_offset) * s;
                        let cy = ((cell / columns) as f32 + center_offset) * s;
                        out.push(Detection {
                            class,
                            score,
                            x0: cx - left * s,
                            y0: cy - top * s,
                            x1: cx + right * s,
                            y1: cy + bottom * s,
                        });
                    }
                }
            }
        }
        DecoderConfig::Ssd { boxes, classes, scores, count, class_offset } => {
            let (_, box_data) = get(boxes)?;
            let (_, class_data) = get(classes)?;
            let (_, score_data) = get(scores)?;
            let mut n = score_data.len().min(class_data.len()).min(box_data.len() / 4);
            if let Some(name) = count {
                let (_, count_data) = get(name)?;
                n = n.min(count_data.first().copied().unwrap_or(0.0).max(0.0) as usize);
            }
            let (w, h) = (input.0 as f32, input.1 as f32);
            for i in 0..n {
                let score = score_data[i];
                let class = class_data[i] as i64 - class_offset;
                if score < threshold || class < 0 {
                    continue;
                }
                let b = &box_data[i * 4..i * 4 + 4];
                out.push(Detection {
                    class: class as usize,
                    score,
                    x0: b[1] * w,
                    y0: b[0] * h,
                    x1: b[3] * w,
                    y1: b[2] * h,
                });
            }
        }
        DecoderConfig::Yolov8 { output } => {
            let (shape, data) = get(output)?;
            let (rows, n) = (shape[1], shape[2]);
            if data.len() < rows * n {
                return Err(format!("output {output:?} is shorter than its shape"));
            }
            for i in 0..n {
                let (mut best, mut class) = (f32::MIN, 0);
                for c in 0..rows - 4 {
                    let score = data[(4 + c) * n + i];
                    if score > best {
                        (best, class) = (score, c);
                    }
                }
                if best < threshold {
                    continue;
                }
                let (cx, cy, w, h) = (data[i], data[n + i], data[2 * n + i], data[3 * n + i]);
                out.push(Detection {
                    class,
                    score: best,
                    x0: cx - w / 2.0,
                    y0: cy - h / 2.0,
                    x1: cx + w / 2.0,
                    y1: cy + h / 2.0,
                });
            }
        }
    }
    Ok(())
}

/// The expected value of a distribution given as logits over bins 0..n (softmax, then Σ i·pᵢ).
fn expected_bin(logits: &[f32]) -> f32 {
    let max = logits.iter().copied().fold(f32::MIN, f32::max);
    let (mut sum, mut weighted) = (0.0, 0.0);
    for (i, &logit) in logits.iter().enumerate() {
        let p = (logit - max).exp();
        sum += p;
        weighted += p * i as f32;
    }
    weighted / sum
}

/// Class-wise non-maximum suppression in place: best first, a box is dropped when it overlaps a
/// kept box of the same class by more than `iou`; at most `max` remain.
pub fn nms(detections: &mut Vec<Detection>, iou: f32, max: usize) {
    detections.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept = 0;
    for i in 0..detections.len() {
        if kept == max {
            break;
        }
        let candidate = detections[i];
        if detections[..kept].iter().all(|k| k.class != candidate.class || k.iou(&candidate) <= iou) {
            detections[kept] = candidate;
            kept += 1;
        }
    }
    detections.truncate(kept);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn det(class: usize, score: f32, x0: f32, y0: f32, x1: f32, y1: f32) -> Detection {
        Detection { class, score, x0, y0, x1, y1 }
    }

    #[test]
    fn iou_of_known_boxes() {
        let a = det(0, 1.0, 0.0, 0.0, 10.0, 10.0);
        assert_eq!(a.iou(&a), 1.0);
        assert_eq!(a.iou(&det(0, 1.0, 5.0, 0.0, 15.0, 10.0)), 50.0 / 150.0);
        assert_eq!(a.iou(&det(0, 1.0, 20.0, 20.0, 30.0, 30.0)), 0.0);
    }

    #[test]
    fn nms_is_class_wise_and_keeps_the_best() {
        let mut boxes = vec![
            det(0, 0.6, 1.0, 1.0, 11.0, 11.0),
            det(0, 0.9, 0.0, 0.0, 10.0, 10.0),
            det(1, 0.5, 0.0, 0.0, 10.0, 10.0), // same place, other class: kept
            det(0, 0.7, 50.0, 50.0, 60.0, 60.0),
        ];
        nms(&mut boxes, 0.5, 10);
        let kept: Vec<(usize, f32)> = boxes.iter().map(|d| (d.class, d.score)).collect();
        assert_eq!(kept, [(0, 0.9), (0, 0.7), (1, 0.5)]);
        nms(&mut boxes, 0.5, 2);
        assert_eq!(boxes.len(), 2);
    }

    #[test]
    fn expected_bin_of_a_peaked_distribution() {
        let mut logits = [-30.0f32; 8];
        logits[3] = 30.0;
        assert!((expected_bin(&logits) - 3.0).abs() < 1e-4);
        assert!((expected_bin(&[0.0, 0.0]) - 0.5).abs() < 1e-6);
    }

    /// A NanoDet output with one object: cell (2, 1) of stride 8 scores class 1, distances
    /// peaked at bins (1, 2, 3, 4) → a box around that cell's centre.
    #[test]
    fn nanodet_decodes_a_known_cell() {
        let input = (32, 16); // stride 8 → 4 x 2 cells
        let (classes, reg_max) = (2, 7);
        let mut scores = vec![0.0f32; 8 * classes];
        let cell = 4 + 2; // row 1, column 2
        scores[cell * classes + 1] = 0.8;
        let mut regression = vec![-30.0f32; 8 * 4 * (reg_max + 1)];
        for (side, bin) in [1, 2, 3, 4].into_iter().enumerate() {
            regression[cell * 4 * (reg_max + 1) + side * (reg_max + 1) + bin] = 30.0;
        }
        let outputs: HashMap<String, (Vec<usize>, Vec<f32>)> = [
            ("s".to_string(), (vec![1, 8, classes], scores)),
            ("b".to_string(), (vec![1, 8, 4 * (reg_max + 1)], regression)),
        ]
        .into();
        let config = DecoderConfig::Nanodet {
            scores: vec!["s".into()],
            boxes: vec!["b".into()],
            strides: vec![8],
            reg_max,
            scores_are_probabilities: true,
            center_offset: 0.5,
        };
        let shape_of = |name: &str| Outputs::get(&outputs, name).map(|(s, _)| s.to_vec());
        check_outputs(&config, input, classes, &shape_of).unwrap();
        let mut out = Vec::new();
        decode(&config, input, &outputs, 0.5, &mut out).unwrap();
        assert_eq!(out.len(), 1);
        let d = out[0];
        let (cx, cy) = (2.5 * 8.0, 1.5 * 8.0);
        assert_eq!((d.class, d.score), (1, 0.8));
        for (got, want) in [(d.x0, cx - 8.0), (d.y0, cy - 16.0), (d.x1, cx + 24.0), (d.y1, cy + 32.0)] {
            assert!((got - want).abs() < 1e-3, "{d:?}");
        }
        // Raw logits with scores_are_probabilities: false go through the sigmoid.
        let logits = DecoderConfig::Nanodet {
            scores: vec!["s".into()],
            boxes: vec!["b".into()],
            strides: vec![8],
            reg_max,
            scores_are_probabilities: false,
            center_offset: 0.5,
        };
        out.clear();
        decode(&logits, input, &outputs, 0.6, &mut out).unwrap();
        assert_eq!(out.len(), 1);
        assert!((out[0].score - sigmoid(0.8)).abs() < 1e-6);
    }

    #[test]
    fn nanodet_shapes_that_do_not_fit_are_named() {
        let config = DecoderConfig::Nanodet {
            scores: vec!["s".into()],
            boxes: vec!["b".into()],
            strides: vec![8],
            reg_max: 7,
            scores_are_probabilities: true,
            center_offset: 0.5,
        };
        let shapes = |name: &str| match name {
            "s" => Some(vec![1, 100, 80]),
            "b" => Some(vec![1, 100, 32]),
            _ => None,
        };
        check_outputs(&config, (80, 80), 80, &shapes).unwrap();
        let error = check_outputs(&config, (80, 40), 80, &shapes).unwrap_err();
        assert!(error.contains("\"s\"") && error.contains("[1, 50, classes]") && error.contains("stride 8"), "{error}");
        assert!(check_outputs(&config, (80, 80), 79, &shapes)
            .unwrap_err()
            .contains("80 classes but the labels file names 79"));
        let DecoderConfig::Nanodet { scores, boxes, strides, .. } = config.clone() else { unreachable!() };
        let more_bins = DecoderConfig::Nanodet {
            scores,
            boxes,
            strides,
            reg_max: 10,
            scores_are_probabilities: true,
            center_offset: 0.5,
        };
        let error = check_outputs(&more_bins, (80, 80), 80, &shapes).unwrap_err();
        assert!(error.contains("\"b\"") && error.contains("[1, 100, 44]"), "{error}");
        let missing = |_: &str| None;
        assert!(check_outputs(&config, (80, 80), 80, &missing).unwrap_err().contains("no output named \"s\""));
    }

    #[test]
    fn ssd_decodes_normalised_boxes_with_class_offset() {
        let outputs: HashMap<String, (Vec<usize>, Vec<f32>)> = [
            ("boxes".to_string(), (vec![1, 3, 4], vec![0.1, 0.2, 0.5, 0.6, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.1, 0.1])),
            ("classes".to_string(), (vec![1, 3], vec![1.0, 3.0, 2.0])),
            ("scores".to_string(), (vec![1, 3], vec![0.9, 0.2, 0.8])),
            ("count".to_string(), (vec![1], vec![2.0])),
        ]
        .into();
        let config = DecoderConfig::Ssd {
            boxes: "boxes".into(),
            classes: "classes".into(),
            scores: "scores".into(),
            count: Some("count".into()),
            class_offset: 1,
        };
        let shape_of = |name: &str| Outputs::get(&outputs, name).map(|(s, _)| s.to_vec());
        check_outputs(&config, (300, 200), 90, &shape_of).unwrap();
        let mut out = Vec::new();
        decode(&config, (300, 200), &outputs, 0.5, &mut out).unwrap();
        // The third row scores 0.8 but lies past the count of 2.
        assert_eq!(out, [det(0, 0.9, 0.2 * 300.0, 0.1 * 200.0, 0.6 * 300.0, 0.5 * 200.0)]);
    }

    #[test]
    fn yolov8_takes_the_best_class_per_anchor() {
        // [1, 4 + 2, 3]: anchors in columns.
        #[rustfmt::skip]
        let data = vec![
            10.0, 50.0, 0.0,  // cx
            20.0, 50.0, 0.0,  // cy
            4.0, 10.0, 1.0,   // w
            6.0, 10.0, 1.0,   // h
            0.1, 0.7, 0.2,    // class 0
            0.9, 0.3, 0.1,    // class 1
        ];
        let outputs: HashMap<String, (Vec<usize>, Vec<f32>)> = [("o".to_string(), (vec![1, 6, 3], data))].into();
        let config = DecoderConfig::Yolov8 { output: "o".into() };
        let shape_of = |name: &str| Outputs::get(&outputs, name).map(|(s, _)| s.to_vec());
        check_outputs(&config, (64, 64), 2, &shape_of).unwrap();
        assert!(check_outputs(&config, (64, 64), 1, &shape_of).unwrap_err().contains("2 classes"));
        let mut out = Vec::new();
        decode(&config, (64, 64), &outputs, 0.5, &mut out).unwrap();
        assert_eq!(out, [det(1, 0.9, 8.0, 17.0, 12.0, 23.0), det(0, 0.7, 45.0, 45.0, 55.0, 55.0)]);
    }
}
