//! `reflex sim run FILE...` and `reflex sim suite NAME`: scenario grids in closed loop, a
//! results table, and a report folder (results.json, summary.md, a CSV time series per cell).

use anyhow::{bail, Context, Result};
use reflex_runtime::{Node, NodeOptions, TransportConfig};
use reflex_sim::realtime::Plant;
use reflex_sim::run::{run_cell, CellResult, RunConfig};
use reflex_sim::scenario;
use reflex_sim::scoring::Colour;
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(clap::Subcommand)]
pub enum SimCommand {
    /// Run scenario files (each a grid of cells) and report the NCAP-style results.
    Run {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        options: SimOptions,
    },
    /// Run a named catalogue of sim/scenarios/: ccrs, ccrm, ccrb, cpna, cbla, fa_adjacent,
    /// fa_parked, or `all`.
    Suite {
        name: String,
        #[command(flatten)]
        options: SimOptions,
    },
}

#[derive(clap::Args)]
pub struct SimOptions {
    /// Report folder (results.json, summary.md, series/*.csv).
    #[arg(long, default_value = "sim-results")]
    out: PathBuf,
    /// `ground-truth`: actors projected into the camera with the noise model, the AEB in
    /// process (fast sweeps of the control logic). `full`: rendered frames through the detector
    /// and the nodes as processes (not built yet).
    #[arg(long, default_value = "ground-truth")]
    perception: String,
    /// Seed of the noise model.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Box edge noise, pixels (standard deviation).
    #[arg(long, default_value_t = 1.0)]
    noise_px: f64,
    /// Probability that an object is missed in a frame.
    #[arg(long, default_value_t = 0.05)]
    dropout: f64,
    /// Capture to brake request at the actuator, ms (in-process runs; real-time runs measure it).
    #[arg(long, default_value_t = 50.0)]
    latency_ms: f64,
    /// Real time: the AEB, monitor and arbiter run as processes under `reflex launch`, the
    /// simulator is the plant on the wall clock, and true latencies count.
    #[arg(long)]
    realtime: bool,
}

pub fn run(command: SimCommand) -> Result<bool> {
    let (files, options) = match command {
        SimCommand::Run { files, options } => (files, options),
        SimCommand::Suite { name, options } => (suite_files(&name)?, options),
    };
    if options.perception != "ground-truth" {
        bail!(
            "--perception {}: only `ground-truth` is built so far; the camera renderer and the detector trained on \
             its images come next (the full stack runs through them)",
            options.perception
        );
    }
    let mut cells = Vec::new();
    for file in &files {
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
        noise: reflex_sim::world::NoiseModel {
            edge_sigma_px: options.noise_px,
            dropout: options.dropout,
            ..Default::default()
        },
        ..Default::default()
    };
    let terminal = std::io::stderr().is_terminal();
    let mut results = Vec::with_capacity(cells.len());
    let mut chain = if options.realtime { Some(Chain::start()?) } else { None };
    for (index, cell) in cells.iter().enumerate() {
        match &mut chain {
            Some(chain) => {
                chain
                    .plant
                    .settle(config.fps, Duration::from_secs(1), Duration::from_secs(60))
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                results.push(chain.plant.run_cell(cell, &config).map_err(|e| anyhow::anyhow!("{e}"))?);
            }
            None => results.push(run_cell(cell, &config)),
        }
        if terminal {
            let filled = (index + 1) * 30 / cells.len();
            eprint!(
                "\r[{}{}] {}/{} cells: {} ",
                "#".repeat(filled),
                " ".repeat(30 - filled),
                index + 1,
                cells.len(),
                cell.label()
            );
            let _ = std::io::stderr().flush();
        }
    }
    if terminal {
        eprintln!();
    }
    println!("{}", table(&results));
    write_report(&options.out, &config, &results, options.realtime)?;
    println!("{}", totals(&results));
    eprintln!("report: {}", options.out.display());
    Ok(true)
}

/// The chain as processes (`reflex launch` of aeb, monitor, arbiter on a private rendezvous
/// port and prefix) and the simulator's node on the same network.
struct Chain {
    plant: Plant,
    _launch: crate::bench::Interrupted,
}

impl Chain {
    fn start() -> Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let prefix = format!("simrt{port}");
        let file = std::env::temp_dir().join(format!("reflex-sim-chain-{port}.yaml"));
        std::fs::write(
            &file,
            format!(
                "zenoh: {{prefix: {prefix}, rendezvous_port: {port}}}\n\
                 nodes:\n\
                 \x20 - name: aeb\n    kind: aeb\n    inputs:\n      detections: {{external: true}}\n      camera_info: {{external: true}}\n      vehicle_state: {{external: true}}\n\
                 \x20 - name: monitor\n    kind: monitor\n    params:\n      required_nodes: [aeb, arbiter]\n      \
                 watch: [{{topic: /perception/detections, deadline_ms: 200}}]\n      startup_grace_s: 5\n      supervisor: {{stable_period_s: 0.3}}\n\
                 \x20 - name: arbiter\n    kind: arbiter\n"
            ),
        )?;
        let launch = std::process::Command::new(std::env::current_exe()?)
            .arg("launch")
            .arg(&file)
            .env("REFLEX_LOG", "error")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("cannot start reflex launch")?;
        let launch = crate::bench::Interrupted(launch);
        let transport = TransportConfig { prefix, ..TransportConfig::loopback(port) };
        let node = Node::new(NodeOptions::new("sim").transport(transport))?;
        let plant = Plant::new(node).map_err(|e| anyhow::anyhow!("{e}"))?;
        eprintln!("real time: aeb, monitor and arbiter as processes (launch file {})", file.display());
        Ok(Self { plant, _launch: launch })
    }
}

fn suite_files(name: &str) -> Result<Vec<PathBuf>> {
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
        "| cell | impact km/h | colour | points | FCW TTC s | braking at s | min gap m | capture→command ms p50/p99 |\n\
         |---|---:|---|---:|---:|---:|---:|---:|\n",
    );
    for r in results {
        out.push_str(&format!(
            "| {} | {:.1} | {} | {:.2} | {} | {} | {} | {} |\n",
            r.label,
            r.impact_speed_kmh,
            r.colour.name(),
            r.points,
            fmt(r.warning_ttc_s, 2),
            fmt(r.braking_time_s, 2),
            if r.min_gap_m.is_nan() { "–".into() } else { format!("{:.2}", r.min_gap_m) },
            r.latency_ms.map_or("–".into(), |[p50, p99, _]| format!("{p50:.2} / {p99:.2}"))
        ));
    }
    out
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

fn write_report(out: &Path, config: &RunConfig, results: &[CellResult], realtime: bool) -> Result<()> {
    let series = out.join("series");
    std::fs::create_dir_all(&series).with_context(|| format!("cannot create {}", series.display()))?;
    let json =
        serde_json::json!({ "perception": "ground-truth", "realtime": realtime, "config": config, "cells": results });
    std::fs::write(out.join("results.json"), serde_json::to_string_pretty(&json)?)?;
    let summary = format!(
        "# Simulation results\n\nPerception: ground truth with noise (edge σ {} px, dropout {}), seed {}, capture→actuator \
         latency {}, camera {} fps.\n\n## Totals\n\n{}\n## NCAP grid\n\n{}\n## Cells\n\n{}",
        config.noise.edge_sigma_px,
        config.noise.dropout,
        config.seed,
        if realtime {
            "as measured (real time: AEB, monitor and arbiter as processes)".to_string()
        } else {
            format!("{} ms (in process)", config.perception_latency_s * 1e3)
        },
        config.fps,
        totals(results),
        grid(results),
        table(results)
    );
    std::fs::write(out.join("summary.md"), summary)?;
    for r in results {
        let slug: String = r.label.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
        let mut csv = String::from("t_s,gap_m,ego_speed_mps,target_speed_mps,decel_mps2,level\n");
        for s in &r.series {
            csv.push_str(&format!(
                "{:.4},{:.3},{:.3},{:.3},{:.3},{}\n",
                s.t_s, s.gap_m, s.ego_speed_mps, s.target_speed_mps, s.decel_mps2, s.level
            ));
        }
        std::fs::write(series.join(format!("{slug}.csv")), csv)?;
    }
    Ok(())
}
