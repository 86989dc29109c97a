//! The detector: a model config compiled by OpenVINO, with the frame's preprocessing (u8 RGB
//! NHWC of the frame's size → resize → element type → layout) inside the OpenVINO graph.

use crate::config::{Element, LoadedModelConfig, ResizeMode};
use crate::decode::{self, Detection, Outputs};
use openvino::prepostprocess::Pipeline;
use openvino::{Core, DeviceType, ElementType, Layout, ResizeAlgorithm, RwPropertyKey, Shape, Tensor};
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
    /// Also runs the model over the frame's centre at full resolution (a window of the model's
    /// input size), for objects too small in the resized frame; see [`Detector::detect`].
    pub zoom: bool,
}

impl Default for DetectorOptions {
    fn default() -> Self {
        Self {
            device: "CPU".into(),
            hint: "LATENCY".into(),
            precision: String::new(),
            threads: 0,
            score_threshold: None,
            zoom: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DetectorError {
    #[error("{0}")]
    Runtime(String),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("{file}: {message}")]
    Model { file: String, message: String },
    #[error("frame {width}x{height} with {bytes} bytes is not rgb8 ({} bytes expected)", *width as usize * *height as usize * 3)]
    Frame { width: u32, height: u32, bytes: usize },
    #[error("inference failed: {0}")]
    Inference(String),
    #[error("frame refused: {0}")]
    Geometry(String),
}

/// The largest canvas (frame plus letterbox padding) the detector will allocate: 16 MP, a
/// 4K frame and then some. A 1x65535 frame would otherwise ask for 65535x65535x3 bytes.
pub const MAX_CANVAS_PIXELS: u64 = 16 * 1024 * 1024;

/// A compiled model for one frame size.
struct Compiled {
    frame: (u32, u32),
    /// The size of the tensor fed to the graph: the frame, or the letterbox canvas around it.
    canvas: (u32, u32),
    /// Where the frame sits in the canvas (letterbox centres it).
    offset: (u32, u32),
    request: openvino::InferRequest,
    input: Tensor,
    /// With CPU normalisation: the u8 canvas the frame is placed in before resizing.
    cpu_canvas: Vec<u8>,
    /// The outputs the decoder reads, with their shapes; tensors are fetched after each inference
    /// (a plugin may hand out new output memory per run).
    outputs: Vec<(String, Vec<usize>)>,
    /// One tensor per entry of `outputs`, in the same order.
    fetched: Vec<Tensor>,
}

pub struct Detector {
    config: LoadedModelConfig,
    options: DetectorOptions,
    core: Core,
    /// The model as read from its files, kept to be read again for each compilation: OpenVINO's
    /// preprocessing changes the model it is built on, and a model already given one frame
    /// size's input cannot take another's (the zoomed pass compiles a second size).
    model_files: (String, String),
    compiled: Option<Compiled>,
    compiles: u64,
    candidates: Vec<Detection>,
    /// With `zoom`: the model compiled for a window of its own input size, the window's pixels
    /// and what was found in it.
    zoomed: Option<Compiled>,
    window: Vec<u8>,
    in_window: Vec<Detection>,
}

impl Detector {
    /// Loads the runtime and the model, and compiles it for frames of the model's own input size
    /// so that a model that does not fit its decoder fails here rather than on the first frame.
    pub fn load(config_path: &Path, options: DetectorOptions) -> Result<Self, DetectorError> {
        let config = LoadedModelConfig::load(config_path)?;
        crate::runtime::load().map_err(DetectorError::Runtime)?;
        let mut core = Core::new().map_err(|e| DetectorError::Runtime(format!("cannot start OpenVINO: {e}")))?;
        let model_error =
            |message: String| DetectorError::Model { file: config.model_path.display().to_string(), message };
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
            (
                RwPropertyKey::InferenceNumThreads,
                if options.threads > 0 { options.threads.to_string() } else { String::new() },
            ),
        ] {
            if !value.is_empty() {
                core.set_property(&device, &key, &value).map_err(|e| {
                    DetectorError::Runtime(format!(
                        "device {}: cannot set {key:?} = {value}: {}",
                        options.device,
                        describe(&e)
                    ))
                })?;
            }
        }
        let model_files = (model_file.to_owned(), weights);
        let mut detector = Self {
            config,
            options,
            core,
            model_files,
            compiled: None,
            compiles: 0,
            candidates: Vec::with_capacity(1024),
            zoomed: None,
            window: Vec::new(),
            in_window: Vec::new(),
        };
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

    /// How many times the model was compiled (once per frame size accepted).
    pub fn compiles(&self) -> u64 {
        self.compiles
    }

    /// The canvas a frame of this size is placed on before resizing (letterbox: padded to the
    /// model's aspect ratio), and the frame's offset on it.
    pub fn canvas(&self, width: u32, height: u32) -> ((u64, u64), (u64, u64)) {
        let input = &self.config.config.input;
        let (width, height) = (u64::from(width.max(1)), u64::from(height.max(1)));
        match input.resize {
            ResizeMode::Stretch => ((width, height), (0, 0)),
            ResizeMode::Letterbox => {
                let scale = (f64::from(input.width) / width as f64).min(f64::from(input.height) / height as f64);
                let cw = ((f64::from(input.width) / scale).round() as u64).max(width);
                let ch = ((f64::from(input.height) / scale).round() as u64).max(height);
                ((cw, ch), ((cw - width) / 2, (ch - height) / 2))
            }
        }
    }

    /// Compiles the model for frames of this size (done once per size; frames of the same size
    /// reuse the compiled graph and its tensors).
    pub fn prepare(&mut self, width: u32, height: u32) -> Result<(), DetectorError> {
        if self.compiled.as_ref().is_some_and(|c| c.frame == (width, height)) {
            return Ok(());
        }
        self.compiled = Some(self.compile(width, height)?);
        Ok(())
    }

    fn compile(&mut self, width: u32, height: u32) -> Result<Compiled, DetectorError> {
        let ((cw, ch), (ox, oy)) = self.canvas(width, height);
        if cw.saturating_mul(ch) > MAX_CANVAS_PIXELS {
            return Err(DetectorError::Geometry(format!(
                "a {width}x{height} frame needs a {cw}x{ch} canvas, more than {MAX_CANVAS_PIXELS} pixels"
            )));
        }
        let (canvas, offset) = ((cw as u32, ch as u32), (ox as u32, oy as u32));
        let input = &self.config.config.input;
        let file = self.config.model_path.display().to_string();
        let error = |what: &str, e: openvino::InferenceError| DetectorError::Model {
            file: file.clone(),
            message: format!("{what}: {}", describe(&e)),
        };
        let on_cpu = input.normalises_on_cpu();
        let (iw, ih) = (i64::from(input.width), i64::from(input.height));
        let tensor = if on_cpu {
            // Resized and normalised here; the graph gets exactly the model's input.
            let shape = if input.layout == "NCHW" { [1, 3, ih, iw] } else { [1, ih, iw, 3] };
            Tensor::new(ElementType::F32, &Shape::new(&shape).unwrap())
        } else {
            Tensor::new(ElementType::U8, &Shape::new(&[1, i64::from(canvas.1), i64::from(canvas.0), 3]).unwrap())
        }
        .map_err(|e| error("cannot make the input tensor", e))?;
        let model = self
            .core
            .read_model_from_file(&self.model_files.0, &self.model_files.1)
            .map_err(|e| error("OpenVINO cannot read this model", e))?;
        let pipeline = Pipeline::new(&model).map_err(|e| error("preprocessing", e))?;
        let input_info = match &input.name {
            Some(name) => pipeline.get_input_info_by_name(name),
            None => pipeline.get_input_info_by_index(0),
        }
        .map_err(|e| error("the model input named in the config", e))?;
        let mut tensor_info = input_info.get_tensor_info().map_err(|e| error("preprocessing", e))?;
        tensor_info.set_from(&tensor).map_err(|e| error("preprocessing", e))?;
        let tensor_layout = if on_cpu { input.layout.as_str() } else { "NHWC" };
        tensor_info.set_layout(Layout::new(tensor_layout).unwrap()).map_err(|e| error("preprocessing", e))?;
        let mut steps = input_info.get_steps().map_err(|e| error("preprocessing", e))?;
        if !on_cpu && canvas != (input.width, input.height) {
            steps.resize(ResizeAlgorithm::Linear).map_err(|e| error("preprocessing: resize", e))?;
        }
        if !on_cpu && input.element == Element::F32 {
            steps.convert_element_type(ElementType::F32).map_err(|e| error("preprocessing: to f32", e))?;
        }
        let mut model_info = input_info.get_model_info().map_err(|e| error("preprocessing", e))?;
        model_info.set_layout(Layout::new(&input.layout).unwrap()).map_err(|e| error("preprocessing: layout", e))?;
        let outputs = model.get_outputs_len().map_err(|e| error("outputs", e))?;
        for index in 0..outputs {
            let output_info = pipeline.get_output_info_by_index(index).map_err(|e| error("outputs", e))?;
            let mut output_tensor = output_info.get_tensor_info().map_err(|e| error("outputs", e))?;
            output_tensor.set_element_type(ElementType::F32).map_err(|e| error("outputs to f32", e))?;
        }
        let model = pipeline.build_new_model().map_err(|e| {
            error(
                &format!("the model does not take a {}x{} input in {} layout", input.width, input.height, input.layout),
                e,
            )
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
                let shape: Vec<usize> =
                    t.get_shape().map(|s| s.get_dimensions().iter().map(|&d| d as usize).collect()).unwrap_or_default();
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
        input_tensor.get_raw_data_mut().map_err(|e| error("input", e))?.fill(if on_cpu { 0 } else { input.pad_value });
        let cpu_canvas =
            if on_cpu { vec![input.pad_value; canvas.0 as usize * canvas.1 as usize * 3] } else { Vec::new() };
        let outputs = found.into_iter().map(|(name, shape, _)| (name, shape)).collect();
        self.compiles += 1;
        tracing::debug!(width, height, canvas = ?canvas, device = %self.options.device, "detector compiled for frame size");
        Ok(Compiled {
            frame: (width, height),
            canvas,
            offset,
            request,
            input: input_tensor,
            cpu_canvas,
            outputs,
            fetched: Vec::new(),
        })
    }

    /// Runs the model on an `rgb8` frame; `out` receives the detections in frame pixels, best
    /// first, after non-maximum suppression. With [`DetectorOptions::zoom`], the zoomed pass
    /// over the frame's centre joins them (see `zoom`).
    pub fn detect(
        &mut self,
        rgb: &[u8],
        width: u32,
        height: u32,
        out: &mut Vec<Detection>,
    ) -> Result<(), DetectorError> {
        out.clear();
        if rgb.len() != width as usize * height as usize * 3 || width == 0 || height == 0 {
            return Err(DetectorError::Frame { width, height, bytes: rgb.len() });
        }
        self.prepare(width, height)?;
        let compiled = self.compiled.as_mut().expect("prepared above");
        infer(compiled, &self.config.config, &self.options, &mut self.candidates, rgb, width, height, out)?;
        if self.options.zoom {
            self.zoom(rgb, width, height, out)?;
        }
        Ok(())
    }

    /// The zoomed pass: the model over the window of its own input size at the frame's centre,
    /// at full resolution (a 640x480 camera and a 320x240 model: the middle quarter, where the
    /// road ahead and what is far on it are, at twice the pixels). Boxes cut by the window's
    /// edges inside the frame are dropped (the full-frame pass sees those objects whole); the
    /// rest replace the full frame's boxes of the same objects (same class, IoU above the NMS
    /// threshold): inside the window the zoomed box is the one measured with more pixels, and
    /// taking whichever scored higher in each frame made a lead car's box, and so its range,
    /// jump between the two from frame to frame. Nothing happens for frames not larger than the
    /// window.
    fn zoom(&mut self, rgb: &[u8], width: u32, height: u32, out: &mut Vec<Detection>) -> Result<(), DetectorError> {
        let input = &self.config.config.input;
        let (ww, wh) = (input.width, input.height);
        if width <= ww || height <= wh {
            return Ok(());
        }
        if self.zoomed.is_none() {
            self.zoomed = Some(self.compile(ww, wh)?);
        }
        let (x0, y0) = ((width - ww) / 2, (height - wh) / 2);
        self.window.clear();
        for row in y0..y0 + wh {
            let start = (row as usize * width as usize + x0 as usize) * 3;
            self.window.extend_from_slice(&rgb[start..start + ww as usize * 3]);
        }
        let compiled = self.zoomed.as_mut().expect("compiled above");
        let config = &self.config.config;
        infer(compiled, config, &self.options, &mut self.candidates, &self.window, ww, wh, &mut self.in_window)?;
        // A box edge this close to a window edge that lies inside the frame is cut by the window.
        const EDGE: f32 = 1.0;
        let (cut_left, cut_top) = (x0 > 0, y0 > 0);
        let (cut_right, cut_bottom) = (x0 + ww < width, y0 + wh < height);
        let (window_w, window_h) = (ww as f32, wh as f32);
        self.in_window.retain(|d| {
            !((cut_left && d.x0 <= EDGE)
                || (cut_top && d.y0 <= EDGE)
                || (cut_right && d.x1 >= window_w - EDGE)
                || (cut_bottom && d.y1 >= window_h - EDGE))
        });
        let (dx, dy) = (x0 as f32, y0 as f32);
        for d in &mut self.in_window {
            (d.x0, d.y0, d.x1, d.y1) = (d.x0 + dx, d.y0 + dy, d.x1 + dx, d.y1 + dy);
        }
        let in_window = &self.in_window;
        out.retain(|d| !in_window.iter().any(|z| z.class == d.class && z.iou(d) > config.nms_iou));
        out.extend_from_slice(in_window);
        decode::nms(out, config.nms_iou, config.max_detections);
        Ok(())
    }
}

/// One pass of a compiled model over an `rgb8` frame of the size it was compiled for: `out`
/// receives the detections in frame pixels, best first, after non-maximum suppression.
#[allow(clippy::too_many_arguments)]
fn infer(
    compiled: &mut Compiled,
    config: &crate::config::ModelConfig,
    options: &DetectorOptions,
    candidates: &mut Vec<Detection>,
    rgb: &[u8],
    width: u32,
    height: u32,
    out: &mut Vec<Detection>,
) -> Result<(), DetectorError> {
    out.clear();
    let inference = |e: openvino::InferenceError| DetectorError::Inference(describe(&e));
    let input = &config.input;
    if input.normalises_on_cpu() {
        place(rgb, width, compiled.canvas.0, compiled.offset, &mut compiled.cpu_canvas);
        let data = compiled.input.get_data_mut::<f32>().map_err(inference)?;
        let normalise = Normalise {
            mean: input.mean.unwrap_or([0.0; 3]),
            scale: input.scale.unwrap_or([1.0; 3]),
            planar: input.layout == "NCHW",
        };
        resize_normalise(&compiled.cpu_canvas, compiled.canvas, data, (input.width, input.height), &normalise);
    } else {
        let data = compiled.input.get_raw_data_mut().map_err(inference)?;
        place(rgb, width, compiled.canvas.0, compiled.offset, data);
    }
    compiled.request.set_input_tensor(&compiled.input).map_err(inference)?;
    compiled.request.infer().map_err(inference)?;
    compiled.fetched.clear();
    for (name, _) in &compiled.outputs {
        let tensor = compiled.request.get_tensor(name).map_err(inference)?;
        compiled.fetched.push(tensor);
    }
    let threshold = options.score_threshold.unwrap_or(config.score_threshold);
    candidates.clear();
    let views = TensorOutputs { outputs: &compiled.outputs, tensors: &compiled.fetched };
    decode::decode(&config.decoder, (config.input.width, config.input.height), &views, threshold, candidates)
        .map_err(DetectorError::Inference)?;
    decode::nms(candidates, config.nms_iou, config.max_detections);
    // Model-input pixels → canvas pixels → frame pixels, clamped to the frame.
    let sx = compiled.canvas.0 as f32 / config.input.width as f32;
    let sy = compiled.canvas.1 as f32 / config.input.height as f32;
    let (ox, oy) = (compiled.offset.0 as f32, compiled.offset.1 as f32);
    let (fw, fh) = (width as f32, height as f32);
    out.extend(candidates.iter().map(|d| Detection {
        x0: (d.x0 * sx - ox).clamp(0.0, fw),
        y0: (d.y0 * sy - oy).clamp(0.0, fh),
        x1: (d.x1 * sx - ox).clamp(0.0, fw),
        y1: (d.y1 * sy - oy).clamp(0.0, fh),
        ..*d
    }));
    Ok(())
}

/// Copies a packed rgb8 frame into a canvas of `canvas_width` at `offset` (the whole canvas
/// when they are the same size).
fn place(rgb: &[u8], width: u32, canvas_width: u32, offset: (u32, u32), canvas: &mut [u8]) {
    if canvas.len() == rgb.len() {
        canvas.copy_from_slice(rgb);
        return;
    }
    let row = width as usize * 3;
    let canvas_row = canvas_width as usize * 3;
    for (y, line) in rgb.chunks_exact(row).enumerate() {
        let start = (y + offset.1 as usize) * canvas_row + offset.0 as usize * 3;
        canvas[start..start + row].copy_from_slice(line);
    }
}

pub(crate) struct Normalise {
    pub mean: [f32; 3],
    pub scale: [f32; 3],
    /// NCHW (planes) rather than NHWC (interleaved).
    pub planar: bool,
}

/// Bilinear resize (half-pixel centres, as OpenVINO's linear resize) of an rgb8 image into the
/// model's f32 input, normalised per channel.
pub(crate) fn resize_normalise(src: &[u8], (sw, sh): (u32, u32), dst: &mut [f32], (dw, dh): (u32, u32), n: &Normalise) {
    let (sw, sh, dw, dh) = (sw as usize, sh as usize, dw as usize, dh as usize);
    let (fx, fy) = (sw as f32 / dw as f32, sh as f32 / dh as f32);
    let plane = dw * dh;
    for y in 0..dh {
        let sy = ((y as f32 + 0.5) * fy - 0.5).clamp(0.0, (sh - 1) as f32);
        let (y0, wy) = (sy as usize, sy.fract());
        let y1 = (y0 + 1).min(sh - 1);
        for x in 0..dw {
            let sx = ((x as f32 + 0.5) * fx - 0.5).clamp(0.0, (sw - 1) as f32);
            let (x0, wx) = (sx as usize, sx.fract());
            let x1 = (x0 + 1).min(sw - 1);
            for c in 0..3 {
                let at = |yy: usize, xx: usize| f32::from(src[(yy * sw + xx) * 3 + c]);
                let top = at(y0, x0) * (1.0 - wx) + at(y0, x1) * wx;
                let bottom = at(y1, x0) * (1.0 - wx) + at(y1, x1) * wx;
                let value = (top * (1.0 - wy) + bottom * wy - n.mean[c]) / n.scale[c];
                let index = if n.planar { c * plane + y * dw + x } else { (y * dw + x) * 3 + c };
                dst[index] = value;
            }
        }
    }
}

struct TensorOutputs<'a> {
    outputs: &'a [(String, Vec<usize>)],
    tensors: &'a [Tensor],
}

impl Outputs for TensorOutputs<'_> {
    fn get(&self, name: &str) -> Option<(&[usize], &[f32])> {
        let index = self.outputs.iter().position(|(n, _)| n == name)?;
        Some((self.outputs[index].1.as_slice(), self.tensors.get(index)?.get_data::<f32>().ok()?))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_normalisation_resizes_and_scales_per_channel() {
        // 4x2 image: left half (R=0, G=100, B=200), right half (R=255, G=100, B=0).
        let mut src = Vec::new();
        for _ in 0..2 {
            for x in 0..4 {
                src.extend_from_slice(if x < 2 { &[0, 100, 200] } else { &[255, 100, 0] });
            }
        }
        let n = Normalise { mean: [0.0, 100.0, 0.0], scale: [255.0, 1.0, 2.0], planar: true };
        let mut dst = vec![f32::NAN; 2 * 1 * 3];
        resize_normalise(&src, (4, 2), &mut dst, (2, 1), &n);
        // Planes: R (x=0, x=1), G, B. Each output pixel samples the middle of its 2x2 block.
        assert_eq!(dst, [0.0, 1.0, 0.0, 0.0, 100.0, 0.0]);
        let interleaved = Normalise { planar: false, ..n };
        resize_normalise(&src, (4, 2), &mut dst, (2, 1), &interleaved);
        assert_eq!(dst, [0.0, 0.0, 100.0, 1.0, 0.0, 0.0]);
        // Upscaling interpolates between neighbours: 1x... a 2-pixel row to 4 pixels.
        let row = [0u8, 0, 0, 255, 255, 255];
        let mut up = vec![0.0f32; 4 * 3];
        resize_normalise(&row, (2, 1), &mut up, (4, 1), &Normalise { mean: [0.0; 3], scale: [1.0; 3], planar: false });
        let reds: Vec<f32> = up.chunks(3).map(|p| p[0]).collect();
        assert_eq!(reds, [0.0, 63.75, 191.25, 255.0]);
    }

    #[test]
    fn place_puts_the_frame_at_its_offset() {
        let frame = [1u8; 2 * 1 * 3];
        let mut canvas = vec![0u8; 4 * 2 * 3];
        place(&frame, 2, 4, (1, 1), &mut canvas);
        let lit: Vec<usize> = canvas.chunks(3).enumerate().filter(|(_, p)| p[0] == 1).map(|(i, _)| i).collect();
        assert_eq!(lit, [5, 6]); // row 1, columns 1 and 2
    }
}
