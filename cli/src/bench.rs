//! `reflex bench ...`: the benchmarks (crate `reflex-bench`) and the HIL bench (`reflex-hil`).

use anyhow::Result;
use clap::Subcommand;
use reflex_bench::{chain, deadline, detector, reaction, record, transport};

#[derive(Subcommand)]
pub enum BenchCommand {
    /// One-way latency between two processes: Reflex typed pub/sub vs raw zenoh, for payloads
    /// of 64 B, 4 KiB, 64 KiB and a 640x480 rgb8 image.
    Transport(transport::TransportArgs),
    /// Capture to brake command through the vehicle chain (camera, OpenVINO detector, AEB,
    /// arbiter) as processes and as threads of one process, against the floor: the same node
    /// code called one after another in one function.
    Chain(chain::ChainArgs),
    /// Time from a missed input deadline to the breach event reaching another node.
    Deadline(deadline::DeadlineArgs),
    /// Time from a fault (killed or frozen node) to full braking at the arbiter's output.
    Reaction(reaction::ReactionArgs),
    /// Detector time per frame (queue to publish) against OpenVINO's benchmark_app on the same
    /// model and hint, and the frame rate sustained from a 640x480 source.
    Detector(detector::DetectorArgs),
    /// The hardware-in-the-loop fault matrix: the vehicle stack as processes, the simulator as
    /// the plant in real time, one braking scenario per fault; writes a Markdown report.
    Hil(reflex_hil::HilArgs),
    /// A long steady drive of the HIL vehicle stack against the plant: latency, memory and drops
    /// per window (the soak run).
    Soak(reflex_hil::SoakArgs),
    /// Recorder throughput: a 640x480 rgb8 stream at 30 fps into `reflex record`, zstd and none.
    Record(record::RecordBenchArgs),
    /// (internal) The receiving process of `bench transport`.
    #[command(hide = true)]
    TransportSink(transport::SinkArgs),
    /// (internal) The publishing process of `bench deadline`.
    #[command(hide = true)]
    DeadlinePeer(deadline::PeerArgs),
    #[command(hide = true)]
    HilTraffic(reflex_hil::TrafficArgs),
}

pub fn run(command: BenchCommand) -> Result<()> {
    match command {
        BenchCommand::Transport(args) => transport::run(args),
        BenchCommand::Chain(args) => chain::run(args),
        BenchCommand::Deadline(args) => deadline::run(args),
        BenchCommand::Reaction(args) => reaction::run(args),
        BenchCommand::Detector(args) => detector::run(args),
        BenchCommand::Record(args) => record::run(args),
        BenchCommand::Hil(args) => reflex_hil::run(args),
        BenchCommand::Soak(args) => reflex_hil::soak(args),
        BenchCommand::TransportSink(args) => transport::sink(args),
        BenchCommand::DeadlinePeer(args) => deadline::peer(args),
        BenchCommand::HilTraffic(args) => reflex_hil::traffic(args),
    }
}
