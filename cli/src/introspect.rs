//! Looking at a running system from another terminal: `reflex node list`, `reflex topic
//! list|echo|hz|bw`. Nodes announce themselves and each publisher and subscriber with zenoh
//! liveliness tokens; the tools read those and subscribe like any node would.

use anyhow::{bail, Context, Result};
use reflex_msgs::std_msgs::HeaderView;
use reflex_runtime::discovery::EndpointKind;
use reflex_runtime::{LatencyHistogram, Shutdown, System, TransportConfig};
use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a tool gives gossip to introduce the peers.
const SETTLE: Duration = Duration::from_secs(2);

/// Messages a tool buffers between zenoh's thread and its own; more are dropped (a tool must
/// never hold up the network thread of the system it looks at).
const TOOL_QUEUE: usize = 256;

fn open(transport: &TransportConfig) -> Result<System> {
    System::connect(transport, SETTLE).context("cannot join the system")
}

pub fn node_list(transport: &TransportConfig) -> Result<()> {
    let system = open(transport)?;
    let prefix = &transport.prefix;
    let nodes = system.running_nodes()?;
    if nodes.is_empty() {
        println!("no nodes (prefix `{prefix}`)");
        return Ok(());
    }
    let width = nodes.iter().map(|n| n.0.len()).max().unwrap_or(4).max(4);
    println!("{:width$}  {:16}  PID", "NODE", "HOST");
    for (node, location) in nodes {
        println!("{node:width$}  {:16}  {}", location.host, location.pid);
    }
    Ok(())
}

#[derive(Default)]
struct TopicInfo {
    types: std::collections::BTreeSet<String>,
    publishers: Vec<String>,
    subscribers: Vec<String>,
}

fn topics(system: &System) -> Result<BTreeMap<String, TopicInfo>> {
    let mut topics: BTreeMap<String, TopicInfo> = BTreeMap::new();
    for kind in [EndpointKind::Publisher, EndpointKind::Subscriber] {
        for endpoint in system.endpoints(kind)? {
            let info = topics.entry(endpoint.topic).or_default();
            info.types.insert(endpoint.type_name);
            match endpoint.kind {
                EndpointKind::Publisher => info.publishers.push(endpoint.node),
                EndpointKind::Subscriber => info.subscribers.push(endpoint.node),
            }
        }
    }
    Ok(topics)
}

pub fn topic_list(transport: &TransportConfig, verbose: bool) -> Result<()> {
    let system = open(transport)?;
    let topics = topics(&system)?;
    if topics.is_empty() {
        println!("no topics (prefix `{}`)", transport.prefix);
    }
    for (topic, info) in topics {
        let types: Vec<_> = info.types.into_iter().collect();
        if verbose {
            println!(
                "{topic}  [{}]  publishers: {}  subscribers: {}",
                types.join(", "),
                list_or_none(&info.publishers),
                list_or_none(&info.subscribers)
            );
        } else {
            println!("{topic}  [{}]", types.join(", "));
        }
    }
    Ok(())
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// The type published on `topic`, from the endpoint tokens (or `explicit`).
fn topic_type(system: &System, topic: &str, explicit: Option<&str>) -> Result<String> {
    if let Some(explicit) = explicit {
        return Ok(explicit.to_string());
    }
    let topics = topics(system)?;
    match topics.get(topic).map(|t| t.types.iter().cloned().collect::<Vec<_>>()).as_deref() {
        Some([one]) => Ok(one.clone()),
        Some([]) | None => bail!(
            "no node announces topic `{topic}`; known topics: {}",
            topics.keys().cloned().collect::<Vec<_>>().join(", ")
        ),
        Some(several) => bail!("topic `{topic}` carries several types ({}); pick one with --type", several.join(", ")),
    }
}

/// Messages of `topic` handed to `each` until it returns false, `duration` is over, or shutdown.
fn subscribe_raw(
    system: &System,
    topic: &str,
    shutdown: &Shutdown,
    duration: Option<Duration>,
    mut each: impl FnMut(&[u8]) -> bool,
) -> Result<()> {
    let (sender, messages) = mpsc::sync_channel::<Vec<u8>>(TOOL_QUEUE);
    let _watch = system.watch_topic(topic, move |bytes| {
        let _ = sender.try_send(bytes.to_vec());
    })?;
    let start = Instant::now();
    while !shutdown.is_requested() && duration.is_none_or(|d| start.elapsed() < d) {
        match messages.recv_timeout(Duration::from_millis(50)) {
            Ok(bytes) => {
                if !each(&bytes) {
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    Ok(())
}

pub struct EchoOptions<'a> {
    pub topic: &'a str,
    pub type_name: Option<&'a str>,
    pub raw: bool,
    pub count: Option<u64>,
    pub duration: Option<Duration>,
}

pub fn topic_echo(transport: &TransportConfig, options: EchoOptions, shutdown: &Shutdown) -> Result<()> {
    let system = open(transport)?;
    let type_name = topic_type(&system, options.topic, options.type_name)?;
    let mut printed = 0u64;
    subscribe_raw(&system, options.topic, shutdown, options.duration, |bytes| {
        if options.raw {
            let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
            println!("{}", hex.join(" "));
        } else {
            match reflex_msgs::find_type(&type_name).map(|entry| (entry.to_json)(bytes)) {
                Some(Ok(value)) => println!("{value}"),
                Some(Err(error)) => eprintln!("undecodable {type_name} ({} bytes): {error}", bytes.len()),
                None => println!("({type_name} is not a type this tool knows; {} bytes; use --raw)", bytes.len()),
            }
        }
        printed += 1;
        options.count.is_none_or(|c| printed < c)
    })
}

/// What `hz` and `bw` count over one window.
struct RateWindow {
    started: Instant,
    count: u64,
    bytes: u64,
    min_size: u64,
    max_size: u64,
    gaps: LatencyHistogram,
    ages: LatencyHistogram,
    last_arrival: Option<Instant>,
}

impl RateWindow {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            count: 0,
            bytes: 0,
            min_size: u64::MAX,
            max_size: 0,
            gaps: LatencyHistogram::new(),
            ages: LatencyHistogram::new(),
            last_arrival: None,
        }
    }

    fn record(&mut self, size: usize, age_ns: Option<i64>) {
        let now = Instant::now();
        self.count += 1;
        self.bytes += size as u64;
        self.min_size = self.min_size.min(size as u64);
        self.max_size = self.max_size.max(size as u64);
        if let Some(last) = self.last_arrival {
            self.gaps.record_ns(now.duration_since(last).as_nanos() as i64);
        }
        self.last_arrival = Some(now);
        if let Some(age) = age_ns {
            self.ages.record_ns(age);
        }
    }

    /// The line for this window; then starts the next one (keeping the last arrival for gaps).
    fn report(&mut self, topic: &str, bandwidth: bool) -> String {
        let elapsed = self.started.elapsed().as_secs_f64();
        let ms = |ns: u64| ns as f64 / 1e6;
        let kib = |b: u64| b as f64 / 1024.0;
        let line = if self.count == 0 {
            format!("{topic}: no messages")
        } else if bandwidth {
            format!(
                "{topic}: {:.1} KiB/s  mean {:.1} KiB  min {:.1} KiB  max {:.1} KiB  ({} messages)",
                kib(self.bytes) / elapsed,
                kib(self.bytes) / self.count as f64,
                kib(self.min_size),
                kib(self.max_size),
                self.count
            )
        } else {
            let age = if self.ages.count() > 0 {
                format!(
                    "  age p50 {:.2} ms p99 {:.2} ms",
                    ms(self.ages.quantile_ns(0.5)),
                    ms(self.ages.quantile_ns(0.99))
                )
            } else {
                String::new()
            };
            format!(
                "{topic}: {:.2} Hz  gap min {:.2} ms max {:.2} ms p99 {:.2} ms{age}  ({} messages)",
                self.count as f64 / elapsed,
                ms(self.gaps.quantile_ns(0.0)),
                ms(self.gaps.max_ns()),
                ms(self.gaps.quantile_ns(0.99)),
                self.count
            )
        };
        let last_arrival = self.last_arrival;
        *self = Self { last_arrival, ..Self::new() };
        line
    }
}

/// `hz` and `bw`: one line per window with rate, gaps and age (stamped types), or sizes.
pub fn topic_rate(
    transport: &TransportConfig,
    topic: &str,
    window: Duration,
    duration: Option<Duration>,
    bandwidth: bool,
    shutdown: &Shutdown,
) -> Result<()> {
    let system = open(transport)?;
    // Age needs the header; only types known to start with one are read for it.
    let stamped = topic_type(&system, topic, None)
        .ok()
        .and_then(|type_name| reflex_msgs::find_type(&type_name))
        .map(|entry| entry.has_header)
        .unwrap_or(false);
    let clock = reflex_runtime::Clock::wall();
    let mut window_state = RateWindow::new();
    subscribe_raw(&system, topic, shutdown, duration, |payload| {
        let age_ns = stamped
            .then(|| reflex_msgs::decode_prefix::<HeaderView>(payload).ok())
            .flatten()
            .filter(|header| !header.stamp.is_zero())
            .map(|header| clock.now_ns() - header.stamp.as_nanos());
        window_state.record(payload.len(), age_ns);
        if window_state.started.elapsed() >= window {
            println!("{}", window_state.report(topic, bandwidth));
        }
        true
    })?;
    if window_state.count > 0 {
        println!("{}", window_state.report(topic, bandwidth));
    }
    Ok(())
}
