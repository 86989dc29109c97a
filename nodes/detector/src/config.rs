//! Model configs: one YAML file per model that says where the network is, what its input
//! wants and how to read its outputs. Bringing a new detector means writing one of these.
//!
//! ```yaml
//! model: nanodet.xml        # OpenVINO IR (.xml + .bin), ONNX (.onnx) or TFLite (.tflite)
//! labels: ../coco.txt       # one class name per line, in the model's class order
//! input: { width: 416, height: 416, layout: NHWC, element: u8, resize: stretch }
//! decoder: { kind: nanodet, reg_max: 10, strides: [8, 16, 32], scores: [...], boxes: [...] }
//! score_threshold: 0.35
//! nms_iou: 0.6
//! ```
//!
//! Paths are relative to the config file. Errors name the file, line and column.

use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The network file, relative to the config file.
    pub model: PathBuf,
    /// Class names, one per line, relative to the config file.
    pub labels: PathBuf,
    pub input: InputConfig,
    pub decoder: DecoderConfig,
    /// Detections scoring below this are dropped (0..1).
    #[serde(default = "default_score_threshold")]
    pub score_threshold: f32,
    /// Class-wise non-maximum suppression: boxes of one class overlapping more than this are merged.
    #[serde(default = "default_nms_iou")]
    pub nms_iou: f32,
    /// At most this many detections per frame, best first.
    #[serde(default = "default_max_detections")]
    pub max_detections: usize,
    /// Free text: where the model came from, its licence.
    #[serde(default)]
    pub description: String,
}

fn default_score_threshold() -> f32 {
    0.35
}
fn default_nms_iou() -> f32 {
    0.6
}
fn default_max_detections() -> usize {
    100
}

/// What the network's input takes. The node feeds `u8` RGB frames (NHWC) of any size; the
/// OpenVINO graph converts them to this.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputConfig {
    /// Input tensor name; may be left out when the model has one input.
    #[serde(default)]
    pub name: Option<String>,
    pub width: u32,
    pub height: u32,
    /// Layout of the model's input tensor: `NHWC` or `NCHW`.
    #[serde(default = "default_layout")]
    pub layout: String,
    /// Element type the model's input takes: `u8` (normalisation baked in, see
    /// models/tools/prepare_model.py) or `f32` (raw 0..255 values converted in the graph).
    #[serde(default = "default_element")]
    pub element: Element,
    /// `stretch` resizes the frame to the input; `letterbox` keeps the aspect ratio and pads.
    #[serde(default)]
    pub resize: ResizeMode,
    /// Grey level of letterbox padding.
    #[serde(default = "default_pad_value")]
    pub pad_value: u8,
    /// Per-channel (R, G, B) value subtracted before scaling, for `f32` models whose
    /// normalisation is not in the graph: input = (pixel - mean) / scale.
    #[serde(default)]
    pub mean: Option<[f32; 3]>,
    /// Per-channel (R, G, B) divisor, e.g. [255, 255, 255] for a YOLOv8 ONNX export.
    #[serde(default)]
    pub scale: Option<[f32; 3]>,
}

impl InputConfig {
    /// Whether the frame must be normalised on the CPU: the `openvino` crate's PrePostProcessor
    /// has no mean/scale step, so a model that needs one and does not have it baked in
    /// (models/tools/prepare_model.py does that) gets its preprocessing done here instead.
    pub fn normalises_on_cpu(&self) -> bool {
        self.mean.is_some_and(|m| m != [0.0; 3]) || self.scale.is_some_and(|s| s != [1.0; 3])
    }
}

fn default_layout() -> String {
    "NHWC".into()
}
fn default_element() -> Element {
    Element::U8
}
fn default_pad_value() -> u8 {
    114
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Element {
    U8,
    F32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResizeMode {
    #[default]
    Stretch,
    Letterbox,
}

/// How to turn the output tensors into boxes.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum DecoderConfig {
    /// NanoDet (GFL head): per stride, class scores `[1, H*W, C]` and box distances
    /// `[1, H*W, 4*(reg_max+1)]` (left, top, right, bottom, each a distribution over bins).
    Nanodet {
        /// Score outputs, one per stride, in the order of `strides`.
        scores: Vec<String>,
        /// Distance outputs, one per stride.
        boxes: Vec<String>,
        strides: Vec<u32>,
        #[serde(default = "default_reg_max")]
        reg_max: usize,
        /// `true` when the graph already applies the sigmoid to the scores.
        #[serde(default = "default_true")]
        scores_are_probabilities: bool,
        /// Grid cell centre offset in cells: 0.5 for NanoDet (GFL), 0 for NanoDet-Plus.
        #[serde(default = "default_center_offset")]
        center_offset: f32,
    },
    /// TensorFlow Object Detection API SSD with its post-processing in the graph: boxes
    /// `[1, N, 4]` as normalised (ymin, xmin, ymax, xmax), classes `[1, N]`, scores `[1, N]`,
    /// and the count `[1]`.
    Ssd {
        boxes: String,
        classes: String,
        scores: String,
        #[serde(default)]
        count: Option<String>,
        /// Subtracted from the class numbers (1 when the label file has no background line
        /// and the model counts from 1, as the TF API's COCO models do).
        #[serde(default)]
        class_offset: i64,
    },
    /// YOLOv8-style: one output `[1, 4 + C, N]` with (cx, cy, w, h) in input pixels then C
    /// class scores (already probabilities).
    Yolov8 { output: String },
}

fn default_reg_max() -> usize {
    7
}
fn default_true() -> bool {
    true
}
fn default_center_offset() -> f32 {
    0.5
}

/// Finds a relative model config path from wherever `reflex` runs: as given when it exists,
/// else under the nearest ancestor of the working directory, then of the executable, that has
/// it (so `models/nanodet/nanodet.yaml` works from any folder of a checkout). Absolute paths
/// and paths found nowhere come back unchanged, for the error to name them.
pub fn resolve_model_path(path: &Path) -> PathBuf {
    if path.is_absolute() || path.exists() {
        return path.to_path_buf();
    }
    let cwd = std::env::current_dir().ok();
    let exe = std::env::current_exe().ok();
    let roots = cwd.iter().flat_map(|d| d.ancestors()).chain(exe.iter().flat_map(|e| e.ancestors().skip(1)));
    roots.map(|root| root.join(path)).find(|candidate| candidate.is_file()).unwrap_or_else(|| path.to_path_buf())
}

/// A model config, read and checked, with its paths resolved and its labels loaded.
#[derive(Debug, Clone)]
pub struct LoadedModelConfig {
    pub path: PathBuf,
    pub config: ModelConfig,
    pub model_path: PathBuf,
    pub labels: Vec<String>,
}

/// A config that cannot be used: the file, where in it, and what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based; 0 when the problem has no single place in the file.
    pub line: u32,
    pub column: u32,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}:{}:{}: {}", self.file.display(), self.line, self.column, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

impl LoadedModelConfig {
    /// Reads and checks a model config; a relative path is resolved with [`resolve_model_path`].
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let resolved = resolve_model_path(path);
        let path = resolved.as_path();
        let error = |message: String| ConfigError { file: path.to_path_buf(), line: 0, column: 0, message };
        let text = std::fs::read_to_string(path).map_err(|e| error(format!("cannot read model config: {e}")))?;
        let config: ModelConfig = serde_saphyr::from_str(&text).map_err(|e| {
            let (mut line, mut column) = e.location().map_or((0, 0), |l| (l.line() as u32, l.column() as u32));
            let message = parser_message(&e.to_string());
            // Inside a tagged section (the decoder) the parser points at the section; point at
            // the offending key itself when it names one.
            if let Some(field) = message.split('`').nth(1).filter(|_| message.starts_with("unknown field")) {
                let (l, c) = find_key(&text, field);
                if l > 0 {
                    (line, column) = (l, c);
                }
            }
            ConfigError { file: path.to_path_buf(), line, column, message }
        })?;
        let at_key = |key: &str, message: String| {
            let (line, column) = find_key(&text, key);
            ConfigError { file: path.to_path_buf(), line, column, message }
        };
        config.validate().map_err(|(key, message)| at_key(key, message))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let model_path = base.join(&config.model);
        if !model_path.is_file() {
            return Err(at_key("model", format!("model file {} does not exist", model_path.display())));
        }
        let labels_path = base.join(&config.labels);
        let labels: Vec<String> = std::fs::read_to_string(&labels_path)
            .map_err(|e| at_key("labels", format!("cannot read labels file {}: {e}", labels_path.display())))?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect();
        if labels.is_empty() {
            return Err(at_key("labels", format!("labels file {} has no class names", labels_path.display())));
        }
        Ok(Self { path: path.to_path_buf(), config, model_path, labels })
    }

    /// The class name for a class index, or the index itself when the labels file is short.
    pub fn label(&self, class: usize) -> String {
        self.labels.get(class).cloned().unwrap_or_else(|| class.to_string())
    }
}

impl ModelConfig {
    /// Checks values serde cannot: returns the offending key and what is wrong.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let input = &self.input;
        if !(1..=8192).contains(&input.width) || !(1..=8192).contains(&input.height) {
            return Err(("input", format!("input size {}x{} is outside 1..=8192", input.width, input.height)));
        }
        if input.layout != "NHWC" && input.layout != "NCHW" {
            return Err(("layout", format!("layout {:?} is neither NHWC nor NCHW", input.layout)));
        }
        if input.normalises_on_cpu() && input.element != Element::F32 {
            return Err((
                "mean",
                "mean and scale need `element: f32` (a u8 input cannot hold normalised values)".into(),
            ));
        }
        if input.scale.is_some_and(|s| s.iter().any(|&v| !(v.is_finite() && v != 0.0))) {
            return Err(("scale", "scale values must be finite and non-zero".into()));
        }
        if !(0.0..=1.0).contains(&self.score_threshold) {
            return Err(("score_threshold", format!("{} is outside 0..=1", self.score_threshold)));
        }
        if !(0.0..=1.0).contains(&self.nms_iou) {
            return Err(("nms_iou", format!("{} is outside 0..=1", self.nms_iou)));
        }
        if self.max_detections == 0 {
            return Err(("max_detections", "must be at least 1".into()));
        }
        if let DecoderConfig::Nanodet { scores, boxes, strides, reg_max, .. } = &self.decoder {
            if scores.len() != strides.len() || boxes.len() != strides.len() {
                return Err((
                    "strides",
                    format!(
                        "{} strides but {} score outputs and {} box outputs: one of each per stride",
                        strides.len(),
                        scores.len(),
                        boxes.len()
                    ),
                ));
            }
            if strides.is_empty() || strides.contains(&0) {
                return Err(("strides", "strides must be a non-empty list of positive numbers".into()));
            }
            if *reg_max == 0 || *reg_max > 64 {
                return Err(("reg_max", format!("{reg_max} is outside 1..=64")));
            }
        }
        Ok(())
    }
}

/// The parser's first line without its own "error: line N column M:" prefix.
fn parser_message(text: &str) -> String {
    let mut message = text.lines().next().unwrap_or("invalid YAML").trim().trim_start_matches("error: ");
    if let Some(rest) = message.strip_prefix("line ") {
        if let Some((_, after)) = rest.split_once(": ") {
            message = after;
        }
    }
    message.to_string()
}

/// Line and column (1-based) of the first `key:` in the text, or (0, 0).
fn find_key(text: &str, key: &str) -> (u32, u32) {
    for (number, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let content = trimmed.strip_prefix("- ").unwrap_or(trimmed);
        if content.starts_with(&format!("{key}:"))
            || line.contains(&format!(" {key}:"))
            || line.contains(&format!("{{{key}:"))
        {
            let column = line.find(&format!("{key}:")).unwrap_or(0) + 1;
            return (number as u32 + 1, column as u32);
        }
    }
    (0, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("reflex-detector-config-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        write(&dir, "m.xml", "<net/>");
        write(&dir, "labels.txt", "person\nbicycle\n");
        dir
    }

    const GOOD: &str =
        "model: m.xml\nlabels: labels.txt\ninput: {width: 416, height: 416}\ndecoder:\n  kind: yolov8\n  output: out\n";

    #[test]
    fn a_good_config_loads_with_labels_and_defaults() {
        let dir = scratch("good");
        let loaded = LoadedModelConfig::load(&write(&dir, "c.yaml", GOOD)).unwrap();
        assert_eq!(loaded.labels, ["person", "bicycle"]);
        assert_eq!(loaded.config.input.element, Element::U8);
        assert_eq!(loaded.config.input.resize, ResizeMode::Stretch);
        assert_eq!(loaded.label(1), "bicycle");
        assert_eq!(loaded.label(7), "7");
        assert!(loaded.model_path.ends_with("m.xml"));
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let dir = scratch("bad");
        let unknown = write(&dir, "u.yaml", &GOOD.replace("  output: out", "  output: out\n  outptu: x"));
        let error = LoadedModelConfig::load(&unknown).unwrap_err();
        assert_eq!(error.line, 7, "{error}");
        assert!(error.message.contains("outptu"), "{error}");

        let kind = write(&dir, "k.yaml", &GOOD.replace("yolov8", "yolo9000"));
        let error = LoadedModelConfig::load(&kind).unwrap_err();
        assert_eq!(error.line, 5, "{error}");
        assert!(error.to_string().starts_with(&format!("{}:5:", kind.display())), "{error}");

        let threshold = write(&dir, "t.yaml", &format!("{GOOD}score_threshold: 1.5\n"));
        let error = LoadedModelConfig::load(&threshold).unwrap_err();
        assert_eq!((error.line, error.column), (7, 1), "{error}");

        let missing = write(&dir, "m.yaml", &GOOD.replace("m.xml", "gone.xml"));
        let error = LoadedModelConfig::load(&missing).unwrap_err();
        assert!(error.message.contains("gone.xml") && error.line == 1, "{error}");
    }

    #[test]
    fn nanodet_needs_one_output_of_each_kind_per_stride() {
        let dir = scratch("nanodet");
        let text = GOOD.replace(
            "  kind: yolov8\n  output: out\n",
            "  kind: nanodet\n  strides: [8, 16]\n  scores: [a, b]\n  boxes: [c]\n",
        );
        let error = LoadedModelConfig::load(&write(&dir, "n.yaml", &text)).unwrap_err();
        assert!(error.message.contains("2 strides but 2 score outputs and 1 box outputs"), "{error}");
        assert_eq!(error.line, 6, "{error}");
    }
}
