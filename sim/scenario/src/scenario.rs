//! Scenario files: YAML, one protocol per file, any number parameter given as a list becomes
//! an axis of the grid of cells. Errors name the file, line and column.
//!
//! ```yaml
//! name: CCRs
//! description: car-to-car rear, stationary target
//! ego_speed_kmh: [10, 20, 30, 40, 50]
//! expect: avoid            # or no_braking (false-activation checks)
//! actors:
//!   - kind: car            # car | pedestrian | cyclist
//!     heading: along       # along the road, or crossing: left (from the right, near side) | right
//!     speed_kmh: 0
//!     lateral_m: 0         # along: the centre's offset to the left of the ego's centre line
//!     start_ttc_s: 4       # placed so that the time to collision at the start is this
//! ```

use crate::actor::{Actor, ActorKind};
use serde::{Deserialize, Serialize};
use serde_saphyr::{Location, Spanned};
use std::fmt;
use std::path::{Path, PathBuf};

/// A number, or a list of numbers to sweep.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Param {
    One(f64),
    Many(Vec<f64>),
}

impl Param {
    fn values(&self) -> Vec<f64> {
        match self {
            Param::One(v) => vec![*v],
            Param::Many(v) => v.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    /// A collision to avoid or mitigate: scored by impact speed.
    #[default]
    Avoid,
    /// Nothing in the ego's path: any braking is a false activation.
    NoBraking,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Heading {
    #[default]
    Along,
    /// Crossing from the right (the near side in right-hand traffic) to the left.
    Left,
    /// Crossing from the left to the right.
    Right,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActorSpec {
    pub kind: Spanned<ActorKind>,
    #[serde(default)]
    pub heading: Heading,
    pub speed_kmh: Spanned<Param>,
    /// Along: lateral offset of the centre, m (left positive).
    #[serde(default)]
    pub lateral_m: Option<Spanned<Param>>,
    /// Crossing: where on the ego's front it would be hit without braking, 0 = right edge, 1 = left.
    #[serde(default)]
    pub impact_fraction: Option<Spanned<Param>>,
    /// Start so that the time to collision is this (default 4 s).
    #[serde(default)]
    pub start_ttc_s: Option<Spanned<Param>>,
    /// Or start this far ahead (near face to the ego's front), m: CCRb's headway.
    #[serde(default)]
    pub start_distance_m: Option<Spanned<Param>>,
    #[serde(default)]
    pub brake_at_s: Option<Spanned<Param>>,
    #[serde(default)]
    pub brake_decel_mps2: Option<Spanned<Param>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub ego_speed_kmh: Spanned<Param>,
    #[serde(default)]
    pub expect: Expect,
    /// Simulated time per cell, s (default: start TTC + 3 s).
    #[serde(default)]
    pub duration_s: Option<Spanned<f64>>,
    pub actors: Vec<ActorSpec>,
}

/// One cell of the grid: every parameter fixed.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    pub scenario: String,
    pub expect: Expect,
    pub ego_speed_kmh: f64,
    /// The swept parameters of this cell, `name=value`, for tables and results.
    pub parameters: Vec<(String, f64)>,
    pub actors: Vec<Actor>,
    pub duration_s: f64,
}

impl Cell {
    /// An empty road with the ego standing: what the chain sees between cells.
    pub fn empty() -> Self {
        Self {
            scenario: "settle".into(),
            expect: Expect::NoBraking,
            ego_speed_kmh: 0.0,
            parameters: Vec::new(),
            actors: Vec::new(),
            duration_s: f64::MAX,
        }
    }

    pub fn label(&self) -> String {
        let mut label = format!("{} {} km/h", self.scenario, self.ego_speed_kmh);
        for (name, value) in &self.parameters {
            if name != "ego_speed_kmh" {
                label.push_str(&format!(", {name} {value}"));
            }
        }
        label
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioError {
    pub file: PathBuf,
    pub line: u32,
    pub column: u32,
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file.display(), self.line, self.column, self.message)
    }
}

impl std::error::Error for ScenarioError {}

/// Reads a scenario file and expands its grid.
pub fn load(path: &Path) -> Result<(ScenarioFile, Vec<Cell>), ScenarioError> {
    let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
        file: path.to_path_buf(),
        line: 0,
        column: 0,
        message: format!("cannot read: {e}"),
    })?;
    parse(path, &text)
}

/// Parses the text of scenario file `path` and expands its grid.
pub fn parse(path: &Path, text: &str) -> Result<(ScenarioFile, Vec<Cell>), ScenarioError> {
    let error =
        |line: u32, column: u32, message: String| ScenarioError { file: path.to_path_buf(), line, column, message };
    let file: ScenarioFile = serde_saphyr::from_str(text).map_err(|e| {
        let (line, column) = e.location().map_or((0, 0), |l| (l.line() as u32, l.column() as u32));
        let message =
            e.to_string().lines().next().unwrap_or("invalid YAML").trim().trim_start_matches("error: ").to_string();
        let message = match message.strip_prefix("line ").and_then(|r| r.split_once(": ")) {
            Some((_, rest)) => rest.to_string(),
            None => message,
        };
        error(line, column, message)
    })?;
    let cells = expand(&file).map_err(|(at, message)| error(at.line() as u32, at.column() as u32, message))?;
    Ok((file, cells))
}

/// A parameter's values, checked against `valid`.
fn values(
    name: &str,
    param: &Spanned<Param>,
    valid: impl Fn(f64) -> bool,
    rule: &str,
) -> Result<Vec<f64>, (Location, String)> {
    let values = param.value.values();
    if values.is_empty() {
        return Err((param.referenced, format!("{name}: an empty list")));
    }
    if let Some(bad) = values.iter().find(|v| !v.is_finite() || !valid(**v)) {
        return Err((param.referenced, format!("{name}: {bad} {rule}")));
    }
    Ok(values)
}

/// The most cells one scenario file may expand to (the largest shipped grid has 120).
pub const MAX_CELLS: usize = 10_000;
/// The longest simulated time of one cell, s.
pub const MAX_DURATION_S: f64 = 600.0;

/// The cartesian product of every listed parameter.
fn expand(file: &ScenarioFile) -> Result<Vec<Cell>, (Location, String)> {
    let non_negative = |v: f64| v >= 0.0;
    let ego = values("ego_speed_kmh", &file.ego_speed_kmh, |v| v > 0.0, "must be above 0")?;
    // Axes: (name, values); actors' parameters are named by their index.
    let mut axes: Vec<(String, Vec<f64>)> = vec![("ego_speed_kmh".into(), ego)];
    for (index, actor) in file.actors.iter().enumerate() {
        let prefix = if file.actors.len() > 1 { format!("actor{index}.") } else { String::new() };
        axes.push((
            format!("{prefix}speed_kmh"),
            values("speed_kmh", &actor.speed_kmh, non_negative, "must be 0 or more")?,
        ));
        let optional = [
            ("lateral_m", &actor.lateral_m, None),
            ("impact_fraction", &actor.impact_fraction, Some((0.0, 1.0))),
            ("start_ttc_s", &actor.start_ttc_s, Some((0.5, 20.0))),
            ("start_distance_m", &actor.start_distance_m, Some((0.5, 500.0))),
            ("brake_at_s", &actor.brake_at_s, Some((0.0, 60.0))),
            ("brake_decel_mps2", &actor.brake_decel_mps2, Some((0.0, 15.0))),
        ];
        for (name, param, range) in optional {
            if let Some(param) = param {
                let rule = range.map_or("is not a number".to_string(), |(lo, hi)| format!("is outside {lo}..={hi}"));
                let valid = |v: f64| range.is_none_or(|(lo, hi)| (lo..=hi).contains(&v));
                axes.push((format!("{prefix}{name}"), values(name, param, valid, &rule)?));
            }
        }
        if actor.start_ttc_s.is_some() && actor.start_distance_m.is_some() {
            return Err((actor.kind.referenced, "give start_ttc_s or start_distance_m, not both".into()));
        }
        if actor.heading == Heading::Along && actor.impact_fraction.is_some() {
            return Err((
                actor.kind.referenced,
                "impact_fraction is for crossing actors (heading left or right)".into(),
            ));
        }
    }
    if file.actors.is_empty() {
        return Err((file.ego_speed_kmh.referenced, "a scenario needs at least one actor".into()));
    }
    // One cell runs for this long (in real time under the HIL bench): bounded like the grid.
    if let Some(duration) = &file.duration_s {
        if !(0.1..=MAX_DURATION_S).contains(&duration.value) {
            return Err((
                duration.referenced,
                format!("duration_s {} is outside 0.1..={MAX_DURATION_S} s", duration.value),
            ));
        }
    }
    // Lists multiply: a few long ones would ask for more cells than any run can take.
    let count = axes.iter().try_fold(1usize, |n, (_, values)| n.checked_mul(values.len()));
    if count.is_none_or(|n| n > MAX_CELLS) {
        let sizes: Vec<String> = axes.iter().map(|(name, values)| format!("{name} {}", values.len())).collect();
        return Err((
            file.ego_speed_kmh.referenced,
            format!("the grid has more than {MAX_CELLS} cells ({}): split the file", sizes.join(" x ")),
        ));
    }
    let mut cells = Vec::new();
    let mut index = vec![0usize; axes.len()];
    loop {
        let chosen: Vec<(String, f64)> =
            axes.iter().zip(&index).map(|((name, values), &i)| (name.clone(), values[i])).collect();
        cells.push(make_cell(file, &chosen));
        // Next combination, last axis fastest.
        let mut axis = axes.len();
        loop {
            if axis == 0 {
                return Ok(cells);
            }
            axis -= 1;
            index[axis] += 1;
            if index[axis] < axes[axis].1.len() {
                break;
            }
            index[axis] = 0;
        }
    }
}

fn make_cell(file: &ScenarioFile, chosen: &[(String, f64)]) -> Cell {
    let get = |name: &str| chosen.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
    let ego_kmh = get("ego_speed_kmh").expect("always an axis");
    let ego_mps = ego_kmh / 3.6;
    let ego_width = crate::EGO_WIDTH_M;
    let mut actors = Vec::new();
    let mut longest_ttc: f64 = 0.0;
    for (index, spec) in file.actors.iter().enumerate() {
        let prefix = if file.actors.len() > 1 { format!("actor{index}.") } else { String::new() };
        let param = |name: &str| get(&format!("{prefix}{name}"));
        let speed = param("speed_kmh").unwrap_or(0.0) / 3.6;
        let kind = spec.kind.value;
        let (length, width, _) = kind.size();
        let (vx, vy) = match spec.heading {
            Heading::Along => (speed, 0.0),
            Heading::Left => (0.0, speed),
            Heading::Right => (0.0, -speed),
        };
        let depth = if spec.heading == Heading::Along { length } else { width };
        let closing = (ego_mps - vx).max(0.1);
        let ttc = param("start_ttc_s").unwrap_or(4.0);
        let distance = param("start_distance_m").unwrap_or(closing * ttc);
        longest_ttc = longest_ttc.max(distance / closing);
        let y = match spec.heading {
            Heading::Along => param("lateral_m").unwrap_or(0.0),
            crossing => {
                // Where it would meet the ego's front at the unbraked time to collision.
                let fraction = param("impact_fraction").unwrap_or(0.5);
                let impact_y = -ego_width / 2.0 + fraction * ego_width;
                let meet_s = distance / ego_mps;
                impact_y - if crossing == Heading::Left { speed } else { -speed } * meet_s
            }
        };
        actors.push(Actor {
            kind,
            x_m: distance + depth / 2.0,
            y_m: y,
            vx_mps: vx,
            vy_mps: vy,
            brake_at_s: param("brake_at_s"),
            brake_decel_mps2: param("brake_decel_mps2").unwrap_or(0.0),
        });
    }
    let parameters =
        chosen.iter().filter(|(name, _)| name == "ego_speed_kmh" || is_swept(file, name)).cloned().collect();
    Cell {
        scenario: file.name.clone(),
        expect: file.expect,
        ego_speed_kmh: ego_kmh,
        parameters,
        actors,
        duration_s: file.duration_s.as_ref().map_or(longest_ttc + 3.0, |d| d.value),
    }
}

/// Whether a parameter has more than one value (worth naming in a cell's label).
fn is_swept(file: &ScenarioFile, name: &str) -> bool {
    let (index, field) = match name.strip_prefix("actor").and_then(|r| r.split_once('.')) {
        Some((i, f)) => (i.parse().unwrap_or(0), f),
        None => (0, name),
    };
    let Some(actor) = file.actors.get(index) else { return false };
    let param = match field {
        "speed_kmh" => Some(&actor.speed_kmh),
        "lateral_m" => actor.lateral_m.as_ref(),
        "impact_fraction" => actor.impact_fraction.as_ref(),
        "start_ttc_s" => actor.start_ttc_s.as_ref(),
        "start_distance_m" => actor.start_distance_m.as_ref(),
        "brake_at_s" => actor.brake_at_s.as_ref(),
        "brake_decel_mps2" => actor.brake_decel_mps2.as_ref(),
        _ => None,
    };
    param.is_some_and(|p| matches!(p.value, Param::Many(ref v) if v.len() > 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("reflex-sim-{name}-{}.yaml", std::process::id()));
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn lists_expand_to_a_grid() {
        let path = write(
            "grid",
            "name: CCRb\nego_speed_kmh: 50\nactors:\n  - kind: car\n    speed_kmh: 50\n    start_distance_m: [12, 40]\n    brake_at_s: 1\n    brake_decel_mps2: [2, 6]\n",
        );
        let (_, cells) = load(&path).unwrap();
        assert_eq!(cells.len(), 4);
        let labels: Vec<String> = cells.iter().map(Cell::label).collect();
        assert_eq!(labels[0], "CCRb 50 km/h, start_distance_m 12, brake_decel_mps2 2");
        assert_eq!(labels[3], "CCRb 50 km/h, start_distance_m 40, brake_decel_mps2 6");
        let car = &cells[1].actors[0];
        assert!((car.x_m - (12.0 + 2.01)).abs() < 1e-9 && (car.vx_mps - 50.0 / 3.6).abs() < 1e-12);
    }

    #[test]
    fn start_at_ttc_four_seconds_by_default() {
        let path = write("ttc", "name: CCRs\nego_speed_kmh: [36]\nactors:\n  - {kind: car, speed_kmh: 0}\n");
        let (_, cells) = load(&path).unwrap();
        let car = &cells[0].actors[0];
        assert!((car.x_m - 2.01 - 40.0).abs() < 1e-9, "10 m/s x 4 s: {}", car.x_m);
        assert!((cells[0].duration_s - 7.0).abs() < 1e-9);
    }

    #[test]
    fn a_crossing_pedestrian_meets_the_front_at_its_impact_fraction() {
        let path = write(
            "cpna",
            "name: CPNA\nego_speed_kmh: 36\nactors:\n  - {kind: pedestrian, heading: left, speed_kmh: 5, impact_fraction: 0.25}\n",
        );
        let (_, cells) = load(&path).unwrap();
        let p = &cells[0].actors[0];
        // At t = 4 s it is at y = -0.9 + 0.45 = -0.45 m.
        assert!((p.y_m + p.vy_mps * 4.0 - (-0.45)).abs() < 1e-9);
    }

    /// Lists multiply: a file of a few lines must not ask for billions of cells.
    #[test]
    fn a_grid_too_large_is_refused() {
        let list = (1..=200).map(|k| k.to_string()).collect::<Vec<_>>().join(", ");
        let text = format!(
            "name: X\nego_speed_kmh: [{list}]\nactors:\n  - {{kind: car, speed_kmh: [{list}], lateral_m: [{list}]}}\n"
        );
        let error = parse(Path::new("big.yaml"), &text).unwrap_err();
        assert!(error.message.contains("more than 10000 cells"), "{error}");
        assert_eq!(error.line, 2, "{error}");
    }

    /// One cell of `.inf` or `1e12` s would run for ever under the bench.
    #[test]
    fn an_endless_or_negative_duration_is_refused() {
        for bad in [".inf", ".nan", "-1", "1e12"] {
            let text =
                format!("name: X\nego_speed_kmh: 30\nduration_s: {bad}\nactors:\n  - {{kind: car, speed_kmh: 0}}\n");
            let error = parse(Path::new("long.yaml"), &text).unwrap_err();
            assert!(error.message.contains("duration_s"), "{bad}: {error}");
            assert_eq!(error.line, 3, "{error}");
        }
        let text = "name: X\nego_speed_kmh: 30\nduration_s: 12\nactors:\n  - {kind: car, speed_kmh: 0}\n";
        assert_eq!(parse(Path::new("ok.yaml"), text).unwrap().1[0].duration_s, 12.0);
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let unknown = write("unknown", "name: X\nego_speed_kmh: 30\nactors:\n  - kind: truck\n    speed_kmh: 0\n");
        let error = load(&unknown).unwrap_err();
        assert_eq!((error.line, error.column), (4, 11), "{error}");
        assert!(error.message.contains("truck"), "{error}");

        let negative = write("negative", "name: X\nego_speed_kmh: [30, -10]\nactors:\n  - {kind: car, speed_kmh: 0}\n");
        let error = load(&negative).unwrap_err();
        assert_eq!((error.line, error.column), (2, 16), "{error}");
        assert!(error.message.contains("-10 must be above 0"), "{error}");
        assert!(error.to_string().starts_with(&format!("{}:2:16:", negative.display())));

        let actor_speed = write("speed", "name: X\nego_speed_kmh: 30\nactors:\n  - kind: car\n    speed_kmh: -5\n");
        let error = load(&actor_speed).unwrap_err();
        assert_eq!(error.line, 5, "{error}");
        assert!(error.message.contains("speed_kmh: -5 must be 0 or more"), "{error}");
    }
}
