//! `reflex`: the command-line entry point of Reflex.

mod bag;
mod bench;
mod detect;
mod fault;
mod introspect;
mod sim;

use reflex_launch::{check, file as launch_file, host, kinds, supervise};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use reflex_runtime::{init_tracing, LogFormat, Shutdown, TransportConfig};
use std::path::PathBuf;
use std::time::Duration;

/// Reflex: real-time perception and control middleware for vehicles and robots.
///
/// Nodes are processes that talk over zenoh with ROS 2-compatible messages; every hop is
/// stamped and watched against a deadline. Start a system with `reflex launch FILE`, look at it
/// with `reflex node list` and `reflex topic ...`.
#[derive(Parser)]
#[command(name = "reflex", version, propagate_version = true)]
struct Cli {
    /// Log as JSON lines instead of human-readable text (filter with REFLEX_LOG or RUST_LOG).
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
pub struct Target {
    /// Key-expression prefix of the system to look at (the launch file's `zenoh.prefix`).
    #[arg(long, default_value = "reflex")]
    prefix: String,
    /// zenoh endpoint to connect to (default: the loopback rendezvous, REFLEX_ZENOH_PORT).
    #[arg(long)]
    connect: Vec<String>,
    /// With access control: the external user to connect as (listed under
    /// `zenoh.access_control.external` of the launch file) ...
    #[arg(long, requires = "password_file")]
    user: Option<String>,
    /// ... and its password file (the launcher prints the folder it wrote it to).
    #[arg(long, requires = "user")]
    password_file: Option<PathBuf>,
}

impl Target {
    pub fn transport(&self) -> TransportConfig {
        // Tools only connect (see introspect::open): they never take the rendezvous port.
        let security = match (&self.user, &self.password_file) {
            (Some(user), Some(file)) => Some(reflex_runtime::transport::Security::external(user, file.clone())),
            _ => None,
        };
        TransportConfig {
            prefix: self.prefix.clone(),
            connect: self.connect.clone(),
            security,
            ..TransportConfig::default()
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Start every node of a launch file, supervise them, stop them all on Ctrl-C.
    Launch {
        /// The launch file (YAML); see launch/reference.yaml.
        file: PathBuf,
        /// Set a launch argument: --set speed=30 (repeatable).
        #[arg(long = "set", value_name = "NAME=VALUE")]
        set: Vec<String>,
        /// Time nodes get to stop after SIGTERM before they are killed, in ms.
        #[arg(long, default_value_t = 2000)]
        grace_ms: u64,
    },
    /// Check a launch file without starting anything; exit status 1 on errors.
    Check {
        file: PathBuf,
        #[arg(long = "set", value_name = "NAME=VALUE")]
        set: Vec<String>,
    },
    /// Print the JSON schema of launch files (for editor completion).
    Schema,
    /// List the built-in node kinds, or describe one.
    Kinds { kind: Option<String> },
    /// `reflex node list`: running nodes. `reflex node KIND --spec JSON`: run one node (the
    /// launcher does this for you).
    Node {
        /// `list`, or a node kind.
        what: String,
        /// The node's spec as JSON (name, params, remap, inputs, transport).
        #[arg(long)]
        spec: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    /// (internal) Run several nodes as threads of this process.
    #[command(hide = true)]
    Group {
        #[arg(long)]
        name: String,
        #[arg(long)]
        spec: String,
    },
    /// Look at topics of a running system.
    #[command(subcommand)]
    Topic(TopicCommand),
    /// Run the detector on image files: one JSON line per detection (file, class, score, box in
    /// pixels); --annotate DIR writes the images with their boxes drawn.
    Detect(detect::DetectArgs),
    /// Record topics to MCAP (ros2 profile, CDR, zstd): `reflex record -o drive.mcap /camera/* /perception/**`.
    Record(bag::RecordArgs),
    /// Replay an MCAP recording with its original timing: `reflex replay drive.mcap --rate 2`.
    Replay(bag::ReplayArgs),
    /// Look into recordings.
    #[command(subcommand)]
    Bag(BagCommand),
    /// Closed-loop simulation of Euro NCAP-style AEB scenarios (sim/scenarios/).
    #[command(subcommand)]
    Sim(sim::SimCommand),
    /// Inject a fault into a running node (benches, HIL): per input drop, delay, freeze,
    /// corrupt; a stalled callback; SIGSTOP/SIGCONT/SIGKILL of its process. E.g.
    /// `reflex fault detector --input /camera/image --drop-pct 30`, `reflex fault camera --stop`,
    /// `reflex fault detector --clear`. Every fault is reported on /reflex/events.
    Fault(fault::FaultArgs),
    /// Print the versions of Reflex and the components it was built with.
    Version,
    /// Run a benchmark and print its table (baseline measured side by side in the same run).
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

#[derive(Subcommand)]
enum BagCommand {
    /// Duration, topics, types, counts and rates of an MCAP file (like `ros2 bag info`).
    Info { file: PathBuf },
}

#[derive(Subcommand)]
enum TopicCommand {
    /// Topics with their types (and with -v their publishers and subscribers).
    List {
        #[arg(short, long)]
        verbose: bool,
        #[command(flatten)]
        target: Target,
    },
    /// Print each message, decoded (JSON per line), or as hex with --raw.
    Echo {
        /// Topic name, e.g. /diagnostics.
        topic: String,
        /// Message type, when the topic's publisher does not announce one.
        #[arg(long = "type")]
        type_name: Option<String>,
        #[arg(long)]
        raw: bool,
        /// Stop after this many messages.
        #[arg(long)]
        count: Option<u64>,
        /// Stop after this many seconds.
        #[arg(long)]
        duration: Option<f64>,
        #[command(flatten)]
        target: Target,
    },
    /// Message rate, gaps between messages and (for stamped types) age since capture.
    Hz(RateArgs),
    /// Bandwidth and message sizes.
    Bw(RateArgs),
}

#[derive(clap::Args)]
struct RateArgs {
    /// Topic name, e.g. /camera/image.
    topic: String,
    /// Report window in seconds.
    #[arg(long, default_value_t = 1.0)]
    window: f64,
    /// Stop after this many seconds.
    #[arg(long)]
    duration: Option<f64>,
    #[command(flatten)]
    target: Target,
}

impl RateArgs {
    fn run(&self, bandwidth: bool, shutdown: &Shutdown) -> Result<()> {
        let window = Duration::from_secs_f64(self.window.max(0.05));
        introspect::topic_rate(
            &self.target.transport(),
            &self.topic,
            window,
            seconds(self.duration),
            bandwidth,
            shutdown,
        )
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_tracing(if cli.log_json { LogFormat::Json } else { LogFormat::Human });
    let result = run(cli.command);
    reflex_runtime::flush_logs(Duration::from_millis(500));
    match result {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn seconds(value: Option<f64>) -> Option<Duration> {
    value.map(|s| Duration::from_secs_f64(s.max(0.0)))
}

/// Runs a command; `Ok(false)` means "exit with failure, the message was already printed".
fn run(command: Command) -> Result<bool> {
    match command {
        Command::Launch { file, set, grace_ms } => {
            let overrides = launch_file::parse_overrides(&set).map_err(anyhow::Error::msg)?;
            let plan = match check::run_check(&file, &overrides) {
                Ok(plan) => plan,
                Err(report) => {
                    eprint!("{report}");
                    return Ok(false);
                }
            };
            let shutdown = Shutdown::on_signals().context("cannot install signal handlers")?;
            eprintln!("reflex launch: {} ({} processes)", file.display(), plan.units.len());
            supervise::launch(plan, &shutdown, Duration::from_millis(grace_ms))
        }
        Command::Detect(args) => detect::run(args),
        Command::Record(args) => bag::record(args),
        Command::Sim(command) => sim::run(command),
        Command::Replay(args) => bag::replay_command(args),
        Command::Bag(BagCommand::Info { file }) => bag::info(&file),
        Command::Fault(args) => fault::run(args),
        Command::Check { file, set } => {
            let overrides = launch_file::parse_overrides(&set).map_err(anyhow::Error::msg)?;
            match check::run_check(&file, &overrides) {
                Ok(plan) => {
                    println!("{}: ok ({} processes)", file.display(), plan.units.len());
                    Ok(true)
                }
                Err(report) => {
                    eprint!("{report}");
                    Ok(false)
                }
            }
        }
        Command::Schema => {
            println!("{}", launch_file::json_schema());
            Ok(true)
        }
        Command::Kinds { kind } => {
            print_kinds(kind.as_deref())?;
            Ok(true)
        }
        Command::Node { what, spec, target } => {
            if what == "list" {
                introspect::node_list(&target.transport())?;
            } else {
                host::run_node(&what, spec.as_deref())?;
            }
            Ok(true)
        }
        Command::Group { name, spec } => host::run_group(&name, &spec),
        Command::Topic(command) => {
            let shutdown = Shutdown::on_signals()?;
            match command {
                TopicCommand::List { verbose, target } => introspect::topic_list(&target.transport(), verbose)?,
                TopicCommand::Echo { topic, type_name, raw, count, duration, target } => {
                    let options = introspect::EchoOptions {
                        topic: &topic,
                        type_name: type_name.as_deref(),
                        raw,
                        count,
                        duration: seconds(duration),
                    };
                    introspect::topic_echo(&target.transport(), options, &shutdown)?
                }
                TopicCommand::Hz(args) => args.run(false, &shutdown)?,
                TopicCommand::Bw(args) => args.run(true, &shutdown)?,
            }
            Ok(true)
        }
        Command::Version => {
            println!("reflex {}", env!("CARGO_PKG_VERSION"));
            println!("transport: zenoh 1.10 (peer mode, shared memory for large payloads)");
            println!("message encoding: CDR little-endian (XCDR1), ROS 2 compatible");
            Ok(true)
        }
        Command::Bench(command) => bench::run(command).map(|()| true),
    }
}

fn print_kinds(kind: Option<&str>) -> Result<()> {
    let Some(name) = kind else {
        for kind in kinds::KINDS {
            println!("{:14} {}", kind.name, kind.summary);
        }
        return Ok(());
    };
    let Some(kind) = kinds::find(name) else {
        bail!(
            "unknown node kind `{name}`{}",
            kinds::closest(name).map(|c| format!("; did you mean `{c}`?")).unwrap_or_default()
        )
    };
    println!("{}: {}\nports:", kind.name, kind.summary);
    for port in kind.ports {
        let direction = match port.direction {
            reflex_runtime::Direction::Input => "in ",
            reflex_runtime::Direction::Output => "out",
        };
        let optional = if port.optional { " (optional)" } else { "" };
        println!("  {direction} {:12} {:28} {}{optional}", port.name, port.topic, port.type_name);
    }
    println!("parameters:");
    for (name, default, meaning) in kind.parameters {
        println!("  {name:16} {default:>8}  {meaning}");
    }
    if kind.inline {
        println!("can run inline (`inline: true`): each input message handled on the thread that delivers it");
    }
    Ok(())
}
