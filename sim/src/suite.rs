//! `reflex sim run FILE...` and `reflex sim suite NAME`: scenario grids in closed loop, a
//! results table, and a report folder (results.json, summary.md, a CSV time series per cell).

use crate::plant::{Perception, Plant};
use crate::result::{CellResult, RunConfig};
use crate::run::run_cell;
use crate::scenario::{self, Cell};
use crate::scoring::Colour;
use anyhow::{bail, Context, Result};
use reflex_launch::LaunchHandle;
use reflex_runtime::{Node, NodeOptions, TransportConfig};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How a suite runs (the options of `reflex sim run|suite`; see there for each one's meaning).
pub struct SuiteOptions {
    pub out: PathBuf,
    /// `full` or `ground-truth`.
    pub perception: String,
    pub realtime: bool,
    pub lockstep: bool,
    pub model: PathBuf,
    pub record_images: bool,
    /// Full perception: the detector and the AEB as one group process, the AEB inline on the
    /// detector's thread (only the generated launch file differs).
    pub group: bool,
    pub seed: u64,
    pub noise_px: f64,
    pub dropout: f64,
    pub latency_ms: f64,
}

/// How a run is carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    InProcess,
    LockStep,
    RealTime,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::InProcess => "in process",
            Mode::LockStep => "lock-step",
            Mode::RealTime => "real time",
        }
    }
}

/// Runs the cells of scenario `files` and writes the report; `Ok(false)`: a file did not load
/// (the error was printed).
pub fn run(files: &[PathBuf], options: &SuiteOptions) -> Result<bool> {
    let perception = if options.perception == "full" { Perception::Rendered } else { Perception::GroundTruth };
    let mode = match (options.realtime, options.lockstep, perception) {
        (true, _, _) => Mode::RealTime,
        (false, true, _) | (false, false, Perception::Rendered) => Mode::LockStep,
        (false, false, Perception::GroundTruth) => Mode::InProcess,
    };
    let mut cells = Vec::new();
    for file in files {
        match scenario::load(file) {
            Ok((_, grid)) => cells.extend(grid),
            Err(error) => {
                eprintln!("error: {error}");
                return Ok(false);
            }
        }
    }
    let config = RunConfig {
        seed: options.seed,
        perception_latency_s: options.latency_ms / 1e3,
        noise: crate::actors::NoiseModel {
            edge_sigma_px: options.noise_px,
            dropout: options.dropout,
            ..Default::default()
        },
        ..Default::default()
    };
    std::fs::create_dir_all(&options.out).with_context(|| format!("cannot create {}", options.out.display()))?;
    let terminal = std::io::stderr().is_terminal();
    let mut results = Vec::with_capacity(cells.len());
    let mut chain = match mode {
        Mode::InProcess => None,
        _ => Some(Chain::start(options, perception, mode)?),
    };
    let started = std::time::Instant::now();
    for (index, cell) in cells.iter().enumerate() {
        if terminal {
            let filled = index * 30 / cells.len();
            eprint!(
                "\r\x1b[K[{}{}] {}/{} cells, {:.0} s: {} ",
                "#".repeat(filled),
                " ".repeat(30 - filled),
                index,
                cells.len(),
                started.elapsed().as_secs_f64(),
                cell.label()
            );
            let _ = std::io::stderr().flush();
        }
        let result = match &mut chain {
            Some(chain) => chain.run_cell(cell, &config, mode).with_context(|| cell.label())?,
            None => run_cell(cell, &config),
        };
        if !terminal && chain.is_some() {
            eprintln!("{}: {} ({:.1} km/h)", result.label, result.colour.name(), result.impact_speed_kmh);
        }
        results.push(result);
    }
    if terminal {
        eprintln!("\r\x1b[K[{}] {} cells in {:.0} s", "#".repeat(30), cells.len(), started.elapsed().as_secs_f64());
    }
    let recording = chain.map(Chain::stop).transpose()?.flatten();
    println!("{}", table(&results));
    let run =
        RunInfo { perception, mode, model: (perception == Perception::Rendered).then_some(&options.model), recording };
    write_report(&options.out, &config, &results, &run)?;
    println!("{}", totals(&results));
    eprintln!("report: {}", options.out.display());
    Ok(true)
}

/// How the results came about, for the report.
struct RunInfo<'a> {
    perception: Perception,
    mode: Mode,
    model: Option<&'a PathBuf>,
    recording: Option<PathBuf>,
}

/// The chain as processes (`reflex launch` on a private rendezvous port and prefix: the
/// detector for full perception, the AEB, monitor, arbiter and a recorder) and the simulator's
/// node on the same network.
struct Chain {
    plant: Plant,
    launch: Option<LaunchHandle>,
    recording: PathBuf,
    started: bool,
}

impl Chain {
    fn start(options: &SuiteOptions, perception: Perception, mode: Mode) -> Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let prefix = format!("sim{port}");
        let lockstep = mode == Mode::LockStep;
        let recording = std::path::absolute(options.out.join("recording.mcap"))?;
        let _ = std::fs::remove_file(&recording);
        let full = perception == Perception::Rendered;
        let model = if full {
            let model = std::path::absolute(reflex_launch::find_in_ancestors(&options.model))?;
            if !model.is_file() {
                bail!("--model {}: no such model config", options.model.display());
            }
            Some(model)
        } else {
            None
        };
        let file = std::env::temp_dir().join(format!("reflex-sim-chain-{port}.yaml"));
        std::fs::write(
            &file,
            chain_launch_file(
                &prefix,
                port,
                lockstep,
                model.as_deref(),
                &recording,
                options.record_images,
                options.group,
            ),
        )?;
        // Catch a bad generated file (or model config) here, with its diagnostics, rather than
        // as a silent chain.
        let check = std::process::Command::new(std::env::current_exe()?).arg("check").arg(&file).output()?;
        if !check.status.success() {
            bail!(
                "the chain's launch file {} does not check:\n{}",
                file.display(),
                String::from_utf8_lossy(&check.stderr)
            );
        }
        let log = std::fs::File::create(options.out.join("chain.log"))?;
        let launch = LaunchHandle::start(&std::env::current_exe()?, &file, Duration::from_secs(5), |command| {
            command.env("REFLEX_LOG", "warn").stdout(log.try_clone().expect("the log file")).stderr(log);
        })?;
        let transport = TransportConfig { prefix, ..TransportConfig::loopback(port) };
        let clock = if lockstep { reflex_runtime::Clock::sim(0) } else { reflex_runtime::Clock::wall() };
        let node = Node::new(NodeOptions::new("sim").transport(transport).clock(clock))?;
        let plant = Plant::new(node, perception)?;
        eprintln!(
            "{}: {} as processes (launch file {}, log {})",
            mode.name(),
            match (full, options.group) {
                (true, true) => "detector and aeb as one group (aeb inline), monitor, arbiter and recorder",
                (true, false) => "detector, aeb, monitor, arbiter and recorder",
                (false, _) => "aeb, monitor, arbiter and recorder",
            },
            file.display(),
            options.out.join("chain.log").display()
        );
        Ok(Self { plant, launch: Some(launch), recording, started: false })
    }

    fn run_cell(
        &mut self,
        cell: &Cell,
        config: &RunConfig,
        mode: Mode,
    ) -> Result<CellResult, reflex_runtime::RunError> {
        if mode == Mode::LockStep {
            if !self.started {
                self.plant.start_lockstep(config, Duration::from_secs(120))?;
                self.started = true;
            }
            // 2 s of empty road, more if the chain still brakes.
            self.plant.settle_lockstep(config, 60, 900)?;
            self.plant.run_cell_lockstep(cell, config)
        } else {
            self.plant.settle(config, Duration::from_secs(1), Duration::from_secs(120))?;
            self.plant.run_cell(cell, config)
        }
    }

    /// Stops the chain (the recorder closes its file) and returns the recording, if written.
    fn stop(mut self) -> Result<Option<PathBuf>> {
        if let Some(launch) = self.launch.take() {
            launch.stop();
        }
        Ok(self.recording.is_file().then_some(self.recording))
    }
}

fn chain_launch_file(
    prefix: &str,
    port: u16,
    lockstep: bool,
    model: Option<&Path>,
    recording: &Path,
    record_images: bool,
    group: bool,
) -> String {
    let mut text = format!("zenoh: {{prefix: {prefix}, rendezvous_port: {port}}}\nuse_sim_time: {lockstep}\nnodes:\n");
    let mut required = vec!["aeb", "arbiter"];
    if let Some(model) = model {
        required.insert(0, "detector");
        text.push_str(&format!(
            "  - name: detector\n    kind: detector\n    params: {{model: {:?}, budget_ms: 60, zoom: true}}\n    \
             inputs:\n      image: {{external: true, capacity: 1, policy: drop_oldest}}\n",
            model.display().to_string()
        ));
        text.push_str(
            "  - name: aeb\n    kind: aeb\n    inputs:\n      camera_info: {external: true}\n      \
             vehicle_state: {external: true}\n",
        );
        if group {
            text.push_str("    inline: true\n");
        }
    } else {
        text.push_str(
            "  - name: aeb\n    kind: aeb\n    inputs:\n      detections: {external: true}\n      \
             camera_info: {external: true}\n      vehicle_state: {external: true}\n",
        );
    }
    text.push_str(&format!(
        "  - name: monitor\n    kind: monitor\n    params:\n      required_nodes: [{}]\n      \
         watch: [{{topic: /perception/detections, deadline_ms: 200}}]\n      startup_grace_s: 5\n      \
         supervisor: {{stable_period_s: 0.3}}\n    inputs:\n      vehicle_state: {{external: true}}\n  \
         - name: arbiter\n    kind: arbiter\n",
        required.join(", ")
    ));
    let exclude = if record_images { "[]" } else { "[/camera/image]" };
    text.push_str(&format!(
        "  - name: recorder\n    kind: recorder\n    params: {{output: {:?}, exclude: {exclude}, queue_messages: 4096}}\n",
        recording.display().to_string()
    ));
    if group && model.is_some() {
        text.push_str("groups:\n  - name: perception\n    nodes: [detector, aeb]\n");
    }
    text
}

pub fn suite_files(name: &str) -> Result<Vec<PathBuf>> {
    let dir = find_scenarios()?;
    if name == "all" {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        files.sort();
        return Ok(files);
    }
    let file = dir.join(format!("{}.yaml", name.to_lowercase()));
    if !file.is_file() {
        let known: Vec<String> = std::fs::read_dir(&dir)?
            .flatten()
            .filter_map(|e| e.path().file_stem().map(|s| s.to_string_lossy().into_owned()))
            .filter(|s| s != "README")
            .collect();
        bail!("no suite {name:?} in {}; known: {}, all", dir.display(), known.join(", "));
    }
    Ok(vec![file])
}

fn find_scenarios() -> Result<PathBuf> {
    let cwd = std::env::current_dir().ok();
    let exe = std::env::current_exe().ok();
    cwd.iter()
        .flat_map(|d| d.ancestors())
        .chain(exe.iter().flat_map(|e| e.ancestors().skip(1)))
        .map(|root| root.join("sim/scenarios"))
        .find(|dir| dir.is_dir())
        .context("cannot find sim/scenarios (run from the Reflex checkout)")
}

fn fmt(value: Option<f64>, digits: usize) -> String {
    value.map_or("–".into(), |v| format!("{v:.digits$}"))
}

pub fn table(results: &[CellResult]) -> String {
    let mut out = String::from(
        "| cell | impact km/h | colour | points | FCW TTC s | braking at s | min gap m | capture→command ms p50/p99 | full braking at TTC s |\n\
         |---|---:|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in results {
        out.push_str(&format!(
            "| {} | {:.1} | {} | {:.2} | {} | {} | {} | {} | {} |\n",
            r.label,
            r.impact_speed_kmh,
            r.colour.name(),
            r.points,
            fmt(r.warning_ttc_s, 2),
            fmt(r.braking_time_s, 2),
            if r.min_gap_m.is_nan() { "–".into() } else { format!("{:.2}", r.min_gap_m) },
            r.latency_ms.map_or("–".into(), |[p50, p99, _]| format!("{p50:.2} / {p99:.2}")),
            fmt(r.full_braking_ttc_s, 2),
        ));
    }
    out
}

/// Full braking earlier than this time to collision, s, is early: from TTC 2 s a car brakes to a
/// standstill from any speed of the Euro NCAP grids with room to spare.
pub const EARLY_FULL_BRAKING_TTC_S: f64 = 2.0;

/// The cells that braked fully before [`EARLY_FULL_BRAKING_TTC_S`] and still avoided (where a
/// later start would have done too, as far as the cell tells), one line each, or a line saying
/// there were none.
fn early_full_braking(results: &[CellResult]) -> String {
    let early: Vec<String> = results
        .iter()
        .filter(|r| !r.impact && r.full_braking_ttc_s.is_some_and(|ttc| ttc > EARLY_FULL_BRAKING_TTC_S))
        .map(|r| format!("- {}: full braking at TTC {:.2} s\n", r.label, r.full_braking_ttc_s.unwrap_or(f64::NAN)))
        .collect();
    if early.is_empty() {
        format!("Full braking before TTC {EARLY_FULL_BRAKING_TTC_S} s: none.\n\n")
    } else {
        let cells = if early.len() == 1 { "1 cell".to_string() } else { format!("{} cells", early.len()) };
        format!(
            "Full braking before TTC {EARLY_FULL_BRAKING_TTC_S} s in {cells} that avoided the impact:\n\n{}\n",
            early.concat()
        )
    }
}

fn totals(results: &[CellResult]) -> String {
    let mut by_scenario: BTreeMap<&str, (f64, usize, usize)> = BTreeMap::new();
    for r in results {
        let entry = by_scenario.entry(&r.scenario).or_default();
        entry.0 += r.points;
        entry.1 += 1;
        entry.2 += usize::from(r.colour == Colour::Green);
    }
    let mut out = String::from("| scenario | cells | green | points |\n|---|---:|---:|---:|\n");
    for (scenario, (points, cells, green)) in by_scenario {
        out.push_str(&format!("| {scenario} | {cells} | {green} | {points:.2} / {cells} |\n"));
    }
    out
}

/// The NCAP-style grid: one row per scenario variant, one column per ego speed.
fn grid(results: &[CellResult]) -> String {
    let mut rows: BTreeMap<String, BTreeMap<i64, Colour>> = BTreeMap::new();
    let mut speeds = std::collections::BTreeSet::new();
    for r in results {
        let variant: Vec<String> =
            r.parameters.iter().filter(|(n, _)| n != "ego_speed_kmh").map(|(n, v)| format!("{n} {v}")).collect();
        let name =
            if variant.is_empty() { r.scenario.clone() } else { format!("{} ({})", r.scenario, variant.join(", ")) };
        let speed = r.ego_speed_kmh.round() as i64;
        speeds.insert(speed);
        rows.entry(name).or_default().insert(speed, r.colour);
    }
    let mut out = String::from("| scenario |");
    for speed in &speeds {
        out.push_str(&format!(" {speed} |"));
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(speeds.len()));
    out.push('\n');
    for (name, cells) in rows {
        out.push_str(&format!("| {name} |"));
        for speed in &speeds {
            out.push_str(&format!(" {} |", cells.get(speed).map_or("", |c| c.name())));
        }
        out.push('\n');
    }
    out
}

fn write_report(out: &Path, config: &RunConfig, results: &[CellResult], run: &RunInfo) -> Result<()> {
    let series = out.join("series");
    let plots = out.join("plots");
    for dir in [&series, &plots] {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let perception = match run.perception {
        Perception::Rendered => "full",
        Perception::GroundTruth => "ground-truth",
    };
    // Paths relative to the report (or as given), so two runs' results compare byte for byte.
    let json = serde_json::json!({
        "perception": perception,
        "mode": run.mode.name(),
        "realtime": run.mode == Mode::RealTime,
        "model": run.model.map(|m| m.display().to_string()),
        "recording": run.recording.as_ref().map(|_| "recording.mcap"),
        "config": config,
        "cells": results,
    });
    std::fs::write(out.join("results.json"), serde_json::to_string_pretty(&json)? + "\n")?;
    let seeing = match (run.perception, run.model) {
        (Perception::Rendered, Some(model)) => {
            format!(
                "rendered camera frames through the OpenVINO detector (model config {}; zoom: a second pass over \
                 the frame's centre at full resolution)",
                model.display()
            )
        }
        _ => format!(
            "ground truth with noise (edge σ {} px, dropout {})",
            config.noise.edge_sigma_px, config.noise.dropout
        ),
    };
    let timing = match run.mode {
        Mode::RealTime => "capture→command latency as measured (real time, the chain as processes)".to_string(),
        Mode::LockStep => format!(
            "lock-step (the chain as processes, each frame answered before the world moves on), commands act {} ms \
             of simulated time after capture",
            config.perception_latency_s * 1e3
        ),
        Mode::InProcess => {
            format!("capture→actuator latency {} ms (AEB in process)", config.perception_latency_s * 1e3)
        }
    };
    let recording =
        run.recording.as_ref().map_or(String::new(), |_| "Recording: [recording.mcap](recording.mcap).\n\n".into());
    let mut plot_list = String::new();
    for r in results {
        let name = format!("{}.png", slug(&r.label));
        crate::plot::cell(&plots.join(&name), r).with_context(|| format!("cannot plot {}", r.label))?;
        plot_list.push_str(&format!("- [{}](plots/{name})\n", r.label));
    }
    let summary = format!(
        "# Simulation results\n\nPerception: {seeing}; {timing}; seed {}, camera {} fps.\n\n{recording}## Totals\n\n{}\n{}\
         ## NCAP grid\n\n{}\n## Cells\n\n{}\n## Plots\n\n{plot_list}",
        config.seed,
        config.fps,
        totals(results),
        early_full_braking(results),
        grid(results),
        table(results)
    );
    std::fs::write(out.join("summary.md"), summary)?;
    for r in results {
        let mut csv = String::from("t_s,gap_m,ego_speed_mps,target_speed_mps,decel_mps2,level\n");
        for s in &r.series {
            csv.push_str(&format!(
                "{:.4},{:.3},{:.3},{:.3},{:.3},{}\n",
                s.t_s, s.gap_m, s.ego_speed_mps, s.target_speed_mps, s.decel_mps2, s.level
            ));
        }
        std::fs::write(series.join(format!("{}.csv", slug(&r.label))), csv)?;
    }
    Ok(())
}

/// A file name from a cell's label.
fn slug(label: &str) -> String {
    label.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect()
}
