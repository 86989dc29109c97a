//! The detector: a model config compiled by OpenVINO, with the frame's preprocessing (u8 RGB
//! NHWC of the frame's size → resize → element type → layout) inside the OpenVINO graph.

use crate::config::{Element, LoadedModelConfig, ResizeMode};
use crate::decode::{self, Detection, Outputs};
use openvino::prepostprocess::Pipeline;
use openvino::{Core, DeviceType, ElementType, Layout, Model, ResizeAlgorithm, RwPropertyKey, Shape, Tensor};
use std::path::Path;

/// How to run the model.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorOptions {
    /// OpenVINO device: `CPU`, `GPU`, `AUTO`, …
    pub device: String,
    /// Performance hint: `LATENCY`, `THROUGHPUT` or `CUMULATIVE_THROUGHPUT`; empty leaves the device default.
    pub hint: String,
    /// Inference precision hint: `f32`, `f16`, `bf16`; empty leaves the device default.
    pub precision: String,
    /// Inference threads; 0 leaves the device default.
    pub threads: u32,
    /// Overrides the model config's score threshold.
    pub score_threshold: Option<f32>,
}

impl Default for DetectorOptions {
    fn default() -> Self {
        Self { device: "CPU".into(), hint: "LATENCY".into(), precision: String::new(), threads: 0, score_threshold: None }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DetectorError {
    #[error("{0}")]
    Runtime(String),
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("{file}: {message}")]
    Model { file: String, message: String },
    #[error("frame {width}x{height} with {bytes} bytes is not rgb8 ({} bytes expected)", *width as usize * *height as usize * 3)]
    Frame { width: u32, height: u32, bytes: usize },
    #[error("inference failed: {0}")]
    Inference(String),
}

/// A compiled model for one frame size.
struct Compiled {
    frame: (u32, u32),
    /// The size of the tensor fed to the graph: the frame, or the letterbox canvas around it.
    canvas: (u32, u32),
    /// Where the frame sits in the canvas (letterbox centres it).
    offset: (u32, u32),
    request: openvino::InferRequest,
    input: Tensor,
    /// The outputs the decoder reads, with their shapes; tensors are fetched after each inference
    /// (a plugin may hand out new output memory per run).
    outputs: Vec<(String, Vec<usize>)>,
    fetched: Vec<(String, Vec<usize>, Tensor)>,
}

pub struct Detector {
    config: LoadedModelConfig,
    options: DetectorOptions,
    core: Core,
    model: Model,
    compiled: Option<Compiled>,
    candidates: Vec<Detection>,
}

impl Detector {
    /// Loads the runtime and the model, and compiles it for frames of the model's own input size
    /// so that a model that does not fit its decoder fails here rather than on the first frame.
    pub fn load(config_path: &Path, options: DetectorOptions) -> Result<Self, DetectorError> {
        let config = LoadedModelConfig::load(config_path)?;
        crate::runtime::load().map_err(DetectorError::Runtime)?;
        let mut core = Core::new().map_err(|e| DetectorError::Runtime(format!("cannot start OpenVINO: {e}")))?;
        let model_error = |message: String| DetectorError::Model { file: config.model_path.display().to_string(), message };
        let model_file = config.model_path.to_str().ok_or_else(|| model_error("path is not UTF-8".into()))?;
        let weights = if config.model_path.extension().is_some_and(|e| e == "xml") {
            config.model_path.with_extension("bin").to_string_lossy().into_owned()
        } else {
            String::new()
        };
        if !weights.is_empty() && !Path::new(&weights).is_file() {
            return Err(model_error(format!("the IR's weights file {weights} is missing")));
        }
        let model = core
            .read_model_from_file(model_file, &weights)
            .map_err(|e| model_error(format!("OpenVINO cannot read this model: {}", describe(&e))))?;
        let inputs = model.get_inputs_len().map_err(|e| model_error(describe(&e)))?;
        if inputs != 1 {
            return Err(model_error(format!("the model has {inputs} inputs; the detector feeds exactly one image")));
        }
        let device = DeviceType::from(options.device.as_str());
        for (key, value) in [
            (RwPropertyKey::HintPerformanceMode, options.hint.clone()),
            (RwPropertyKey::HintInferencePrecision, options.precision.clone()),
            (RwPropertyKey::InferenceNumThreads, if options.threads > 0 { options.threads.to_string() } else { String::new() }),
        ] {
            if !value.is_empty() {
                core.set_property(&device, &key, &value).map_err(|e| {
                    DetectorError::Runtime(format!("device {}: cannot set {key:?} = {value}: {}", options.device, describe(&e)))
                })?;
            }
        }
        let mut detector = Self { config, options, core, model, compiled: None, candidates: Vec::with_capacity(1024) };
        let (w, h) = (detector.config.config.input.width, detector.config.config.input.height);
        detector.prepare(w, h)?;
        Ok(detector)
    }

    pub fn config(&self) -> &LoadedModelConfig {
        &self.config
    }

    pub fn options(&self) -> &DetectorOptions {
        &self.options
    }

    /// Compiles the model for frames of this size (done once per size; frames of the same size
    /// reuse the compiled graph and its tensors).
    pub fn prepare(&mut self, width: u32, height: u32) -> Result<(), DetectorError> {
        if self.compiled.as_ref().is_some_and(|c| c.frame == (width, height)) {
            return Ok(());
        }
        let input = &self.config.config.input;
        let (canvas, offset) = match input.resize {
            ResizeMode::Stretch => ((width, height), (0, 0)),
            ResizeMode::Letterbox => {
                let scale = (f64::from(input.width) / f64::from(width)).min(f64::from(input.height) / f64::from(height));
                let cw = ((f64::from(input.width) / scale).round() as u32).max(width);
                let ch = ((f64::from(input.height) / scale).round() as u32).max(height);
                ((cw, ch), ((cw - width) / 2, (ch - height) / 2))
            }
        };
        let file = self.config.model_path.display().to_string();
        let error = |what: &str, e: openvino::InferenceError| DetectorError::Model {
            file: file.clone(),
            message: format!("{what}: {}", describe(&e)),
        };
        let tensor = Tensor::new(ElementType::U8, &Shape::new(&[1, i64::from(canvas.1), i64::from(canvas.0), 3]).unwrap())
            .map_err(|e| error("cannot make the input tensor", e))?;
        let pipeline = Pipeline::new(&self.model).map_err(|e| error("preprocessing", e))?;
        let input_info = match &input.name {
            Some(name) => pipeline.get_input_info_by_name(name),
            None => pipeline.get_input_info_by_index(0),
        }
        .map_err(|e| error("the model input named in the config", e))?;
        let mut tensor_info = input_info.get_tensor_info().map_err(|e| error("preprocessing", e))?;
        tensor_info.set_from(&tensor).map_err(|e| error("preprocessing", e))?;
        tensor_info.set_layout(Layout::new("NHWC").unwrap()).map_err(|e| error("preprocessing", e))?;
        let mut steps = input_info.get_steps().map_err(|e| error("preprocessing", e))?;
        if canvas != (input.width, input.height) {
            steps.resize(ResizeAlgorithm::Linear).map_err(|e| error("preprocessing: resize", e))?;
        }
        if input.element == Element::F32 {
            steps.convert_element_type(ElementType::F32).map_err(|e| error("preprocessing: to f32", e))?;
        }
        let mut model_info = input_info.get_model_info().map_err(|e| error("preprocessing", e))?;
        model_info.set_layout(Layout::new(&input.layout).unwrap()).map_err(|e| error("preprocessing: layout", e))?;
        let outputs = self.model.get_outputs_len().map_err(|e| error("outputs", e))?;
        for index in 0..outputs {
            let output_info = pipeline.get_output_info_by_index(index).map_err(|e| error("outputs", e))?;
            let mut output_tensor = output_info.get_tensor_info().map_err(|e| error("outputs", e))?;
            output_tensor.set_element_type(ElementType::F32).map_err(|e| error("outputs to f32", e))?;
        }
        let model = pipeline.build_new_model().map_err(|e| {
            error(&format!("the model does not take a {}x{} input in {} layout", input.width, input.height, input.layout), e)
        })?;
        let device = DeviceType::from(self.options.device.as_str());
        let mut compiled = self.core.compile_model(&model, device).map_err(|e| {
            DetectorError::Runtime(format!("device {}: cannot compile {file}: {}", self.options.device, describe(&e)))
        })?;
        let request = compiled.create_infer_request().map_err(|e| error("infer request", e))?;

        // Every output the decoder reads must exist with a shape it understands.
        let names = decoder_outputs(&self.config.config.decoder);
        let mut found = Vec::new();
        for name in &names {
            if let Ok(t) = request.get_tensor(name) {
                let shape: Vec<usize> = t.get_shape().map(|s| s.get_dimensions().iter().map(|&d| d as usize).collect()).unwrap_or_default();
                found.push((name.clone(), shape, t));
            }
        }
        let shape_of = |name: &str| found.iter().find(|(n, _, _)| n == name).map(|(_, s, _)| s.clone());
        decode::check_outputs(
            &self.config.config.decoder,
            (input.width, input.height),
            self.config.labels.len(),
            &shape_of,
        )
        .map_err(|message| DetectorError::Model {
            file: self.config.path.display().to_string(),
            message: format!("{message} (decoder {:?} of {file})", decoder_kind(&self.config.config.decoder)),
        })?;
        let mut input_tensor = tensor;
        input_tensor.get_raw_data_mut().map_err(|e| error("input", e))?.fill(input.pad_value);
        let outputs = found.into_iter().map(|(name, shape, _)| (name, shape)).collect();
        self.compiled = Some(Compiled {
            frame: (width, height),
            canvas,
            offset,
            request,
            input: input_tensor,
            outputs,
            fetched: Vec::new(),
        });
        tracing::debug!(width, height, canvas = ?canvas, device = %self.options.device, "detector compiled for frame size");
        Ok(())
    }

    /// Runs the model on an `rgb8` frame; `out` receives the detections in frame pixels, best
    /// first, after non-maximum suppression.
    pub fn detect(&mut self, rgb: &[u8], width: u32, height: u32, out: &mut Vec<Detection>) -> Result<(), DetectorError> {
        out.clear();
        if rgb.len() != width as usize * height as usize * 3 || width == 0 || height == 0 {
            return Err(DetectorError::Frame { width, height, bytes: rgb.len() });
        }
        self.prepare(width, height)?;
        let compiled = self.compiled.as_mut().expect("prepared above");
        let inference = |e: openvino::InferenceError| DetectorError::Inference(describe(&e));
        {
            let data = compiled.input.get_raw_data_mut().map_err(inference)?;
            let row = width as usize * 3;
            let canvas_row = compiled.canvas.0 as usize * 3;
            if compiled.canvas == (width, height) {
                data.copy_from_slice(rgb);
            } else {
                for (y, line) in rgb.chunks_exact(row).enumerate() {
                    let start = (y + compiled.offset.1 as usize) * canvas_row + compiled.offset.0 as usize * 3;
                    data[start..start + row].copy_from_slice(line);
                }
            }
        }
        compiled.request.set_input_tensor(&compiled.input).map_err(inference)?;
        compiled.request.infer().map_err(inference)?;
        compiled.fetched.clear();
        for (name, shape) in &compiled.outputs {
            let tensor = compiled.request.get_tensor(name).map_err(inference)?;
            compiled.fetched.push((name.clone(), shape.clone(), tensor));
        }
        let config = &self.config.config;
        let threshold = self.options.score_threshold.unwrap_or(config.score_threshold);
        self.candidates.clear();
        let views = TensorOutputs(&compiled.fetched);
        decode::decode(&config.decoder, (config.input.width, config.input.height), &views, threshold, &mut self.candidates)
            .map_err(DetectorError::Inference)?;
        decode::nms(&mut self.candidates, config.nms_iou, config.max_detections);
        // Model-input pixels → canvas pixels → frame pixels, clamped to the frame.
        let sx = compiled.canvas.0 as f32 / config.input.width as f32;
        let sy = compiled.canvas.1 as f32 / config.input.height as f32;
        let (ox, oy) = (compiled.offset.0 as f32, compiled.offset.1 as f32);
        let (fw, fh) = (width as f32, height as f32);
        out.extend(self.candidates.iter().map(|d| Detection {
            x0: (d.x0 * sx - ox).clamp(0.0, fw),
            y0: (d.y0 * sy - oy).clamp(0.0, fh),
            x1: (d.x1 * sx - ox).clamp(0.0, fw),
            y1: (d.y1 * sy - oy).clamp(0.0, fh),
            ..*d
        }));
        Ok(())
    }
}

struct TensorOutputs<'a>(&'a [(String, Vec<usize>, Tensor)]);

impl Outputs for TensorOutputs<'_> {
    fn get(&self, name: &str) -> Option<(&[usize], &[f32])> {
        let (_, shape, tensor) = self.0.iter().find(|(n, _, _)| n == name)?;
        Some((shape.as_slice(), tensor.get_data::<f32>().ok()?))
    }
}

fn decoder_outputs(decoder: &crate::config::DecoderConfig) -> Vec<String> {
    use crate::config::DecoderConfig::*;
    match decoder {
        Nanodet { scores, boxes, .. } => scores.iter().chain(boxes).cloned().collect(),
        Ssd { boxes, classes, scores, count, .. } => {
            [boxes, classes, scores].into_iter().cloned().chain(count.iter().cloned()).collect()
        }
        Yolov8 { output } => vec![output.clone()],
    }
}

fn decoder_kind(decoder: &crate::config::DecoderConfig) -> &'static str {
    use crate::config::DecoderConfig::*;
    match decoder {
        Nanodet { .. } => "nanodet",
        Ssd { .. } => "ssd",
        Yolov8 { .. } => "yolov8",
    }
}

/// OpenVINO's own message where it gave one (it names the node and the cause), else the kind.
fn describe(error: &openvino::InferenceError) -> String {
    match &error.message {
        Some(message) if !message.trim().is_empty() => {
            let message = message.trim();
            // OpenVINO prefixes messages with the C++ source location of the check that failed.
            message.lines().filter(|l| !l.trim().is_empty()).take(6).collect::<Vec<_>>().join(" ")
        }
        _ => format!("{:?}", error.kind),
    }
}
