//! `reflex sim ...`: scenario grids in closed loop (`reflex_sim::suite`) and the detector's
//! training set (`reflex_sim::dataset`).

use anyhow::{Context, Result};
use reflex_sim::suite::{self, SuiteOptions};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum SimCommand {
    /// Run scenario files (each a grid of cells) and report the NCAP-style results.
    Run {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        options: SimOptions,
    },
    /// Run a named catalogue of sim/scenarios/: ccrs, ccrm, ccrb, cpna, cpfa, cpla, cbna,
    /// cbfa, cbla, fa_adjacent, fa_parked, or `all`.
    Suite {
        name: String,
        #[command(flatten)]
        options: SimOptions,
    },
    /// Render a labelled, domain-randomised training set for the simulator's detector
    /// (images/NNNNNN.png at 320x240 and labels.json); see models/simnet/.
    Dataset {
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Number of images.
        #[arg(long, default_value_t = 4000)]
        count: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

#[derive(clap::Args)]
pub struct SimOptions {
    /// Report folder: results.json, summary.md, a PNG plot and a CSV series per cell, and the
    /// run's MCAP recording (runs through processes).
    #[arg(long, default_value = "sim-results")]
    out: PathBuf,
    /// `full`: rendered camera frames through the OpenVINO detector, the AEB, monitor and
    /// arbiter as processes. `ground-truth`: the world's actors projected into the camera with
    /// the noise model instead of the detector (without --realtime or --lockstep, the AEB runs
    /// in process: the fast sweep of the control logic).
    #[arg(long, default_value = "full", value_parser = ["full", "ground-truth"])]
    perception: String,
    /// Real time: the world runs on the wall clock and true latencies count (default for
    /// processes: lock-step, where the world waits for the chain's answer to every frame and
    /// two runs agree bit for bit).
    #[arg(long, conflicts_with = "lockstep")]
    realtime: bool,
    /// Ground truth through the processes in lock-step (full perception always runs this way
    /// unless --realtime).
    #[arg(long)]
    lockstep: bool,
    /// Detector model config for full perception.
    #[arg(long, default_value = "models/simnet/simnet.yaml")]
    model: PathBuf,
    /// Record the camera frames too (large: about 1 MB each before compression).
    #[arg(long)]
    record_images: bool,
    /// Full perception: run the detector and the AEB as one group process (one zenoh session),
    /// the AEB inline on the detector's thread, instead of a process each. Only the chain's
    /// launch file differs; lock-step results are the same bit for bit.
    #[arg(long)]
    group: bool,
    /// Seed of the noise model, the actors' looks and the sensor noise.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Ground truth: box edge noise, pixels (standard deviation).
    #[arg(long, default_value_t = 1.0)]
    noise_px: f64,
    /// Ground truth: probability that an object is missed in a frame.
    #[arg(long, default_value_t = 0.05)]
    dropout: f64,
    /// Capture to brake command at the actuator, ms, in simulated time (in-process and
    /// lock-step runs; real-time runs measure it).
    #[arg(long, default_value_t = 50.0)]
    latency_ms: f64,
}

impl From<SimOptions> for SuiteOptions {
    fn from(o: SimOptions) -> Self {
        SuiteOptions {
            out: o.out,
            perception: o.perception,
            realtime: o.realtime,
            lockstep: o.lockstep,
            model: o.model,
            record_images: o.record_images,
            group: o.group,
            seed: o.seed,
            noise_px: o.noise_px,
            dropout: o.dropout,
            latency_ms: o.latency_ms,
        }
    }
}

pub fn run(command: SimCommand) -> Result<bool> {
    match command {
        SimCommand::Run { files, options } => suite::run(&files, &options.into()),
        SimCommand::Suite { name, options } => suite::run(&suite::suite_files(&name)?, &options.into()),
        SimCommand::Dataset { out, count, seed } => {
            let terminal = std::io::stderr().is_terminal();
            reflex_sim::dataset::write(&out, count, seed, |done| {
                if terminal {
                    eprint!("\r{done}/{count} images");
                    let _ = std::io::stderr().flush();
                }
            })
            .with_context(|| format!("cannot write the data set to {}", out.display()))?;
            if terminal {
                eprintln!();
            }
            println!("{count} images and labels.json in {}", out.display());
            Ok(true)
        }
    }
}
