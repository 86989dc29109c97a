//! `reflex record`, `reflex replay` and `reflex bag info`.

use crate::Target;
use anyhow::{Context, Result};
use reflex_recorder::replay::{replay, ReplayOptions};
use reflex_recorder::{BagInfo, Recorder, RecorderConfig};
use reflex_runtime::{Node, NodeOptions, Shutdown};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args)]
pub struct RecordArgs {
    /// Topics to record: names or globs (`/camera/*`, `/perception/**`). None: every topic.
    pub topics: Vec<String>,
    /// Output file (.mcap); with splitting, NAME_0001.mcap, NAME_0002.mcap, ...
    #[arg(short, long, default_value = "recording.mcap")]
    pub output: PathBuf,
    /// Topics never recorded (globs; repeatable).
    #[arg(long)]
    pub exclude: Vec<String>,
    /// The open chunk is written out at least this often: the most a crash can lose, s.
    #[arg(long, default_value_t = 1.0)]
    pub flush_period_s: f64,
    /// Start a new file after this many MiB.
    #[arg(long, default_value_t = 0.0)]
    pub split_size_mb: f64,
    /// Start a new file after this many seconds.
    #[arg(long, default_value_t = 0.0)]
    pub split_duration_s: f64,
    /// zstd, lz4 or none.
    #[arg(long, default_value = "zstd")]
    pub compression: String,
    /// Stop after this many seconds (default: Ctrl-C).
    #[arg(long)]
    pub duration: Option<f64>,
    #[command(flatten)]
    pub target: Target,
}

#[derive(clap::Args)]
pub struct ReplayArgs {
    pub file: PathBuf,
    /// Playback speed (2 = twice as fast).
    #[arg(long, default_value_t = 1.0)]
    pub rate: f64,
    /// Start again at the end.
    #[arg(long = "loop")]
    pub looping: bool,
    /// Skip this many seconds of the recording's start.
    #[arg(long, default_value_t = 0.0)]
    pub start: f64,
    /// Play at most this many seconds.
    #[arg(long)]
    pub duration: Option<f64>,
    /// Topics to replay (names or globs; repeatable). None: all.
    #[arg(long = "topic")]
    pub topics: Vec<String>,
    /// Rename a topic: --remap /camera/image:=/front/image (repeatable).
    #[arg(long, value_name = "FROM:=TO")]
    pub remap: Vec<String>,
    /// Republish CompressedImage as rgb8 Image (dropping a trailing /compressed from the topic).
    #[arg(long)]
    pub decompress: bool,
    /// Lock-step: after each message on INPUT wait for the message on OUTPUT with the same
    /// header stamp: --lockstep /camera/image:/perception/detections
    #[arg(long, value_name = "INPUT:OUTPUT")]
    pub lockstep: Option<String>,
    /// Seconds to wait for a lock-step answer.
    #[arg(long, default_value_t = 10.0)]
    pub lockstep_timeout: f64,
    #[command(flatten)]
    pub target: Target,
}

pub fn record(args: RecordArgs) -> Result<bool> {
    let config = RecorderConfig {
        output: args.output,
        topics: args.topics,
        exclude: args.exclude,
        flush_period_s: args.flush_period_s,
        split_size_mb: args.split_size_mb,
        split_duration_s: args.split_duration_s,
        compression: args.compression,
        ..Default::default()
    };
    let node = Node::new(NodeOptions::new("reflex-record").transport(args.target.transport()))?;
    let mut recorder = Recorder::new(node, config)?;
    let shutdown = Shutdown::on_signals()?;
    if let Some(seconds) = args.duration {
        let stop = shutdown.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs_f64(seconds));
            stop.request();
        });
    }
    let terminal = std::io::stderr().is_terminal();
    recorder.run(&shutdown, |stats| {
        let line = format!(
            "recording: {} messages, {:.1} MiB, {} topics, {} dropped",
            stats.messages,
            stats.bytes as f64 / (1024.0 * 1024.0),
            stats.per_topic.len(),
            stats.dropped
        );
        if terminal {
            eprint!("\r{line}   ");
        }
    })?;
    let stats = recorder.stats();
    if terminal {
        eprintln!();
    }
    for (topic, count) in &stats.per_topic {
        eprintln!("  {topic}: {count}");
    }
    for (topic, type_name) in &stats.unknown_types {
        eprintln!("  {topic}: not recorded, type {type_name} unknown");
    }
    let files: Vec<String> = stats.files.iter().map(|f| f.display().to_string()).collect();
    eprintln!(
        "recorded {} messages ({:.1} MiB) into {}; {} dropped",
        stats.messages,
        stats.bytes as f64 / (1024.0 * 1024.0),
        if files.is_empty() { "no file (nothing arrived)".into() } else { files.join(", ") },
        stats.dropped
    );
    Ok(stats.dropped == 0)
}

pub fn replay_command(args: ReplayArgs) -> Result<bool> {
    let remap = args
        .remap
        .iter()
        .map(|pair| pair.split_once(":=").map(|(a, b)| (a.to_string(), b.to_string())))
        .collect::<Option<Vec<_>>>()
        .context("--remap takes FROM:=TO")?;
    let lockstep = match &args.lockstep {
        Some(pair) => Some(
            pair.split_once(':')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .context("--lockstep takes INPUT:OUTPUT, e.g. /camera/image:/perception/detections")?,
        ),
        None => None,
    };
    let options = ReplayOptions {
        rate: args.rate,
        looping: args.looping,
        start_s: args.start,
        duration_s: args.duration,
        topics: args.topics,
        remap,
        decompress: args.decompress,
        lockstep,
        lockstep_timeout: Duration::from_secs_f64(args.lockstep_timeout),
        ..Default::default()
    };
    let node = Node::new(NodeOptions::new("reflex-replay").transport(args.target.transport()))?;
    let shutdown = Shutdown::on_signals()?;
    let terminal = std::io::stderr().is_terminal();
    let mut last_drawn = std::time::Instant::now();
    let stats = replay(&node, &args.file, &options, &shutdown, |p| {
        if terminal && (last_drawn.elapsed() > Duration::from_millis(100) || p.done == p.total) {
            last_drawn = std::time::Instant::now();
            let filled = (p.done * 30 / p.total.max(1)) as usize;
            eprint!(
                "\r[{}{}] {}/{} messages, {:.1}/{:.1} s ",
                "#".repeat(filled),
                " ".repeat(30 - filled),
                p.done,
                p.total,
                p.position_s,
                p.duration_s
            );
            let _ = std::io::stderr().flush();
        }
    })?;
    if terminal {
        eprintln!();
    }
    let mut topics: Vec<_> = stats.per_topic.iter().collect();
    topics.sort();
    for (topic, count) in topics {
        eprintln!("  {topic}: {count}");
    }
    eprintln!(
        "replayed {} messages{}",
        stats.published,
        if options.lockstep.is_some() { format!(", {} answered in lock-step", stats.answered) } else { String::new() }
    );
    Ok(true)
}

pub fn info(file: &std::path::Path) -> Result<bool> {
    let info = BagInfo::read(file).map_err(anyhow::Error::msg)?;
    print!("{}", info.render(file));
    Ok(true)
}
