//! Typed node parameters. A launcher passes a node's `params:` as JSON; the node deserializes
//! them into its config struct (with `#[serde(deny_unknown_fields)]`), and a mistake names
//! the node, the parameter path and what was expected.

use serde::de::DeserializeOwned;

#[derive(Debug, thiserror::Error)]
#[error("parameters of node `{node}`: {message}")]
pub struct ParamError {
    pub node: String,
    pub message: String,
}

/// Parses `json` (an object; empty or `null` means all defaults) into `T`.
pub fn parse_params<T: DeserializeOwned>(node: &str, json: &str) -> Result<T, ParamError> {
    let json = if json.trim().is_empty() { "{}" } else { json };
    let value: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| ParamError { node: node.into(), message: format!("not valid JSON: {e}") })?;
    let value = if value.is_null() { serde_json::Value::Object(Default::default()) } else { value };
    serde_json::from_value(value).map_err(|e| ParamError { node: node.into(), message: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
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
    fn defaults_unknown_keys_and_wrong_types() {
        assert_eq!(parse_params::<Camera>("cam", "").unwrap(), Camera { fps: 30.0, device: None });
        let error = parse_params::<Camera>("cam", r#"{"fsp": 10}"#).unwrap_err().to_string();
        assert!(error.starts_with("parameters of node `cam`: unknown field `fsp`, expected"), "{error}");
        let error = parse_params::<Camera>("cam", r#"{"fps": "fast"}"#).unwrap_err().to_string();
        assert!(error.contains("invalid type: string \"fast\", expected f64"), "{error}");
    }
}
