//! What a launcher hands a node process, and what a node kind declares about itself.
//!
//! A *node kind* is a built-in node type (`test-pattern`, `detector`, ...): its name, its
//! ports (inputs and outputs with a default topic and a message type), a parameter check and
//! a `run` function. A [`NodeSpec`] is one instance of it: name, namespace, parameters, topic
//! remappings, per-input queue/deadline settings and transport. The launcher validates specs
//! against kinds before anything starts, then passes each spec to `reflex node KIND` as JSON.

use crate::shutdown::Shutdown;
use crate::transport::TransportConfig;
use crate::InputOptions;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One input or output of a node kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Port {
    /// An input that may have no publisher (the checks do not require one).
    pub optional: bool,
    /// Name used in launch files (`remap:` and `inputs:` keys), e.g. `image`.
    pub name: &'static str,
    /// Default topic, relative (namespaced) unless it starts with `/`.
    pub topic: &'static str,
    /// Full ROS type name, e.g. `sensor_msgs/msg/Image`.
    pub type_name: &'static str,
    pub direction: Direction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Input,
    Output,
}

/// The error a node's `run` (and the simulator's plant) returns: what stopped it, as a real
/// error with its source chain, so callers report it with context and need no adapter.
#[derive(Debug)]
pub struct RunError(Box<dyn std::error::Error + Send + Sync>);

impl RunError {
    /// Any error, or a message.
    pub fn other(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self(error.into())
    }
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for RunError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// `?` on the errors nodes meet; anything else goes through [`RunError::other`].
macro_rules! run_error_from {
    ($($ty:ty),+ $(,)?) => {
        $(impl From<$ty> for RunError {
            fn from(error: $ty) -> Self {
                Self(error.into())
            }
        })+
    };
}

run_error_from!(
    String,
    &str,
    Box<dyn std::error::Error + Send + Sync>,
    std::io::Error,
    serde_json::Error,
    crate::NodeError,
    ParamError,
    crate::DiscoveryError,
    crate::discovery::WatchError,
    crate::SendFaultError,
    crate::transport::TransportConfigError,
    reflex_msgs::DecodeError,
);

/// A built-in node type.
pub struct NodeKind {
    pub name: &'static str,
    pub summary: &'static str,
    pub ports: &'static [Port],
    /// Parameters: (name, default, meaning), for `reflex kinds KIND`.
    pub parameters: &'static [(&'static str, &'static str, &'static str)],
    /// Checks parameters without starting anything, naming the parameter that is wrong.
    pub check_params: fn(&serde_json::Value) -> Result<(), InvalidParam>,
    /// Runs the node until `shutdown` is requested.
    pub run: fn(NodeSpec, Shutdown) -> Result<(), RunError>,
    /// Whether the kind can handle its input messages on the thread that delivers them
    /// (`inline: true` in a launch file; see [`crate::task::TaskOptions::inline`]).
    pub inline: bool,
}

impl NodeKind {
    pub fn port(&self, name: &str) -> Option<&Port> {
        self.ports.iter().find(|p| p.name == name)
    }
}

/// Parameters that do not fit a node's typed config.
#[derive(Debug, thiserror::Error)]
#[error("parameters of node `{node}`: {message}")]
pub struct ParamError {
    pub node: String,
    pub message: String,
}

/// One parameter that is wrong: its path in the node's `params` (`threat.warn_ttc_s`,
/// `watch[2]`; empty when not known) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidParam {
    pub path: String,
    pub message: String,
}

impl InvalidParam {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self { path: path.into(), message: message.into() }
    }

    /// The same problem, as seen from the table `prefix` it is inside.
    pub fn within(self, prefix: &str) -> Self {
        let path = if self.path.is_empty() { prefix.to_string() } else { format!("{prefix}.{}", self.path) };
        Self { path, message: self.message }
    }

    /// The problem as an error of node `node`.
    pub fn of_node(self, node: &str) -> ParamError {
        ParamError { node: node.to_string(), message: self.to_string() }
    }
}

impl std::fmt::Display for InvalidParam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for InvalidParam {}

/// Typed parameter check for a kind whose config type is `T` (unknown keys refused by `T`).
pub fn check_params_as<T: serde::de::DeserializeOwned>(value: &serde_json::Value) -> Result<(), InvalidParam> {
    parse_params_value::<T>(value).map(|_| ())
}

/// Parses parameters into `T`, naming the parameter that is wrong.
pub fn parse_params_value<T: serde::de::DeserializeOwned>(value: &serde_json::Value) -> Result<T, InvalidParam> {
    let value = if value.is_null() { serde_json::Value::Object(Default::default()) } else { value.clone() };
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let path = if path == "." { String::new() } else { path };
        InvalidParam::new(path, error.into_inner().to_string())
    })
}

/// One node instance, as the launcher passes it to the node process.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeSpec {
    pub name: String,
    /// Prefix for relative topic names, e.g. `front` → `/front/camera/image`.
    pub namespace: String,
    pub params: serde_json::Value,
    /// Port name or default topic → topic.
    pub remap: BTreeMap<String, String>,
    /// Per input port: queue capacity, overflow policy, deadline.
    pub inputs: BTreeMap<String, InputOptions>,
    pub transport: TransportConfig,
    /// Follow the simulation time on `/clock` instead of the wall clock.
    pub use_sim_time: bool,
    /// Faults injected from the start (see [`crate::fault`]), applied in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<crate::fault::FaultCommand>,
    /// Take fault commands at run time on the node's fault key (a bench's launch file turns
    /// this on with `fault_injection:`; off in products).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub fault_injection: bool,
    /// Lock the process's memory (`mlockall`) at start, so the hot path never page-faults.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub lock_memory: bool,
    /// Handle input messages on the thread that delivers them (kinds that can, see
    /// [`NodeKind::inline`]).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub inline: bool,
}

impl NodeSpec {
    /// The topic a port is connected to: remapped by port name or by default topic, then
    /// placed in the namespace unless absolute.
    pub fn topic(&self, port: &Port) -> String {
        let topic = self.remap.get(port.name).or_else(|| self.remap.get(port.topic)).map_or(port.topic, String::as_str);
        resolve_topic(&self.namespace, topic)
    }

    /// The queue and deadline settings of an input port (defaults when the launch file is silent).
    pub fn input_options(&self, port: &Port) -> InputOptions {
        self.inputs.get(port.name).copied().unwrap_or_default()
    }

    /// The node's parameters as its typed config.
    pub fn params<T: serde::de::DeserializeOwned>(&self) -> Result<T, ParamError> {
        parse_params_value(&self.params).map_err(|invalid| invalid.of_node(&self.name))
    }
}

/// `/abs` stays; `rel` becomes `/<namespace>/rel`.
pub fn resolve_topic(namespace: &str, topic: &str) -> String {
    if topic.starts_with('/') {
        return topic.to_string();
    }
    let namespace = namespace.trim_matches('/');
    if namespace.is_empty() {
        format!("/{topic}")
    } else {
        format!("/{namespace}/{topic}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IMAGE: Port = Port {
        optional: false,
        name: "image",
        topic: "camera/image",
        type_name: "sensor_msgs/msg/Image",
        direction: Direction::Output,
    };

    #[test]
    fn topics_resolve_through_remap_and_namespace() {
        let mut spec = NodeSpec { namespace: "front".into(), ..Default::default() };
        assert_eq!(spec.topic(&IMAGE), "/front/camera/image");
        spec.remap.insert("image".into(), "/cam0/image_raw".into());
        assert_eq!(spec.topic(&IMAGE), "/cam0/image_raw");
        spec.remap.clear();
        spec.remap.insert("camera/image".into(), "raw".into());
        assert_eq!(spec.topic(&IMAGE), "/front/raw");
        assert_eq!(resolve_topic("", "a/b"), "/a/b");
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Config {
        fps: f64,
        #[serde(default)]
        size: Option<[u32; 2]>,
    }

    #[test]
    fn parameter_errors_name_the_parameter() {
        let InvalidParam { path, message } =
            parse_params_value::<Config>(&serde_json::json!({"fps": "x"})).unwrap_err();
        assert_eq!(path, "fps");
        assert!(message.contains("invalid type: string \"x\", expected f64"), "{message}");
        let InvalidParam { path, message } =
            parse_params_value::<Config>(&serde_json::json!({"fps": 1, "size": [1, "a"]})).unwrap_err();
        assert_eq!(path, "size[1]");
        assert!(message.contains("expected u32"), "{message}");
        let message = parse_params_value::<Config>(&serde_json::json!({"fps": 1, "speed": 2})).unwrap_err().message;
        assert!(message.contains("unknown field `speed`"), "{message}");
        let message = parse_params_value::<Config>(&serde_json::Value::Null).unwrap_err().message;
        assert!(message.contains("missing field `fps`"), "{message}");
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Camera {
        #[serde(default = "default_fps")]
        fps: f64,
        device: Option<String>,
    }
    fn default_fps() -> f64 {
        30.0
    }

    #[test]
    fn spec_params_default_and_name_the_node() {
        let mut spec = NodeSpec { name: "cam".into(), ..Default::default() };
        assert_eq!(spec.params::<Camera>().unwrap(), Camera { fps: 30.0, device: None });
        spec.params = serde_json::json!({"fsp": 10});
        let error = spec.params::<Camera>().unwrap_err().to_string();
        assert!(error.starts_with("parameters of node `cam`: "), "{error}");
        assert!(error.contains("unknown field `fsp`, expected"), "{error}");
        spec.params = serde_json::json!({"fps": "fast"});
        let error = spec.params::<Camera>().unwrap_err().to_string();
        assert!(error.contains("fps: invalid type: string \"fast\", expected f64"), "{error}");
    }
}
