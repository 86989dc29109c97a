//! `reflex bench transport`: one-way latency between two processes on this host, Reflex typed
//! pub/sub against raw zenoh pub/sub with the same session and publisher settings.
//!
//! - **Raw zenoh**: the payload bytes (the same CDR bytes Reflex would send) are `put` with an
//!   8-byte send stamp as attachment; the receiver takes samples from zenoh's default FIFO
//!   channel on its own thread and looks at the bytes in place.
//! - **Reflex**: `Publisher::publish` of a `sensor_msgs/Image` (encoding included, straight
//!   into shared memory for large payloads); the receiver is a node whose processing thread
//!   takes it from the ring buffer and decodes it (`recv_view`: in place, no copy of pixels).
//!
//! Latency = receiver's clock when the message is in its processing thread's hands − sender's
//! clock just before it started preparing the payload (both CLOCK_REALTIME, one host). Raw and
//! Reflex blocks alternate, several rounds, so drift and noise hit both alike.

use crate::{emit, us, Helper};
use anyhow::{bail, Context, Result};
use reflex_launch::free_port;
use reflex_msgs::sensor_msgs::{Image, ImageView};
use reflex_runtime::{InputOptions, LatencyHistogram, Node, NodeOptions, OverflowPolicy, TransportConfig};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use zenoh::qos::CongestionControl;
use zenoh::Wait;

#[derive(clap::Args)]
pub struct TransportArgs {
    /// Measured messages per payload size and mode (after warm-up).
    #[arg(long, default_value_t = 2000)]
    messages: usize,
    /// Rounds per size; each sends a block of raw, then a block of Reflex messages.
    #[arg(long, default_value_t = 10)]
    rounds: usize,
    /// Gap between messages, in microseconds (the image uses at least 5 ms).
    #[arg(long, default_value_t = 1000)]
    period_us: u64,
    /// Turn shared memory off on both sides (everything is copied).
    #[arg(long)]
    no_shm: bool,
    /// Reflex publishers encode payloads from this size straight into their own shared-memory
    /// pool; smaller ones go as bytes, which zenoh itself moves to shared memory from 3 KiB.
    #[arg(long, default_value_t = TransportConfig::default().shm_threshold_bytes)]
    shm_threshold: usize,
    /// Also write the table (Markdown) to this file.
    #[arg(long)]
    markdown: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct SinkArgs {
    #[arg(long)]
    port: u16,
    #[arg(long)]
    no_shm: bool,
}

/// Payload sizes: total encoded bytes for the first three; a real 640x480 rgb8 frame last.
const CASES: [(&str, Case); 4] = [
    ("64 B", Case::Total(64)),
    ("4 KiB", Case::Total(4096)),
    ("64 KiB", Case::Total(65536)),
    ("640x480 rgb8", Case::Image { width: 640, height: 480 }),
];

#[derive(Clone, Copy)]
enum Case {
    Total(usize),
    Image { width: u32, height: u32 },
}

fn message_for(case: Case) -> Image {
    let mut image = Image { encoding: "rgb8".into(), ..Default::default() };
    image.header.frame_id = "bench".into();
    match case {
        Case::Image { width, height } => {
            image.width = width;
            image.height = height;
            image.step = width * 3;
            image.data = vec![0x5a; (width * height * 3) as usize].into();
        }
        Case::Total(total) => {
            let overhead = reflex_msgs::encode(&image).len();
            image.width = (total - overhead) as u32;
            image.height = 1;
            image.data = vec![0x5a; total - overhead].into();
        }
    }
    image
}

fn raw_key(prefix: &str, index: usize) -> String {
    format!("{prefix}/bench/raw/{index}")
}

fn reflex_topic(index: usize) -> String {
    format!("/bench/reflex/{index}")
}

fn transport(port: u16, no_shm: bool) -> TransportConfig {
    TransportConfig { shared_memory: !no_shm, prefix: format!("bench{port}"), ..TransportConfig::loopback(port) }
}

/// Control words from the sender to the sink, on `<prefix>/bench/control`.
const RESET: &str = "reset";
const REPORT: &str = "report";

pub fn run(args: TransportArgs) -> Result<()> {
    let port = free_port()?;
    let config = TransportConfig { shm_threshold_bytes: args.shm_threshold, ..transport(port, args.no_shm) };
    let prefix = config.prefix.clone();
    let mut helper_args = vec!["bench".into(), "transport-sink".into(), "--port".into(), port.to_string()];
    if args.no_shm {
        helper_args.push("--no-shm".into());
    }
    let mut sink = Helper::start(&helper_args)?;
    sink.line("ready", Duration::from_secs(30))?;

    let node = Node::new(NodeOptions::new("bench-sender").transport(config)).context("cannot start the sender node")?;
    let session = node.session().clone();
    let control = session.declare_publisher(format!("{prefix}/bench/control")).wait().map_err(anyhow::Error::msg)?;
    let mut reflex_publishers = Vec::new();
    let mut raw_publishers = Vec::new();
    for index in 0..CASES.len() {
        let publisher = node.publisher::<Image>(&reflex_topic(index))?;
        if !publisher.wait_for_subscribers(Duration::from_secs(20)) {
            bail!("the sink's subscriber for {} never appeared", CASES[index].0);
        }
        reflex_publishers.push(publisher);
        // The same settings Reflex's publishers use: express, drop on congestion.
        let raw = session
            .declare_publisher(raw_key(&prefix, index))
            .congestion_control(CongestionControl::Drop)
            .express(true)
            .wait()
            .map_err(anyhow::Error::msg)?;
        raw_publishers.push(raw);
    }
    std::thread::sleep(Duration::from_millis(300));

    let messages: Vec<Image> = CASES.iter().map(|(_, case)| message_for(*case)).collect();
    let payloads: Vec<Vec<u8>> = messages.iter().map(reflex_msgs::encode).collect();
    let per_block = args.messages.div_ceil(args.rounds).max(1);
    let total = per_block * args.rounds * 2 * CASES.len();
    let clock = node.clock().clone();
    let mut sent = 0usize;
    // Time inside the send call (payload preparation + put), per case and path.
    let mut send_calls: Vec<[LatencyHistogram; 2]> = (0..CASES.len()).map(|_| Default::default()).collect();
    let started = Instant::now();
    let mut send_block =
        |index: usize, raw: bool, count: usize, sent: &mut usize, calls: &mut [[LatencyHistogram; 2]]| -> Result<()> {
            let period = if matches!(CASES[index].1, Case::Image { .. }) {
                Duration::from_micros(args.period_us.max(5_000))
            } else {
                Duration::from_micros(args.period_us)
            };
            for _ in 0..count {
                let stamp = clock.now_ns();
                if raw {
                    raw_publishers[index]
                        .put(payloads[index].as_slice())
                        .attachment(stamp.to_le_bytes())
                        .wait()
                        .map_err(anyhow::Error::msg)?;
                } else {
                    reflex_publishers[index].publish(&messages[index])?;
                }
                calls[index][usize::from(!raw)].record_ns(clock.now_ns() - stamp);
                *sent += 1;
                std::thread::sleep(period);
            }
            Ok(())
        };
    // Warm-up: every path once, then the sink forgets it.
    for index in 0..CASES.len() {
        send_block(index, true, 100, &mut sent, &mut send_calls)?;
        send_block(index, false, 100, &mut sent, &mut send_calls)?;
    }
    std::thread::sleep(Duration::from_millis(200));
    control.put(RESET).wait().map_err(anyhow::Error::msg)?;
    send_calls.iter_mut().flatten().for_each(LatencyHistogram::reset);
    std::thread::sleep(Duration::from_millis(200));
    sent = 0;
    for index in 0..CASES.len() {
        for _round in 0..args.rounds {
            send_block(index, true, per_block, &mut sent, &mut send_calls)?;
            send_block(index, false, per_block, &mut sent, &mut send_calls)?;
        }
        eprint!(
            "\r{} of {} sizes sent ({sent}/{total} messages, {:.0} s)",
            index + 1,
            CASES.len(),
            started.elapsed().as_secs_f64()
        );
    }
    eprintln!();
    std::thread::sleep(Duration::from_millis(300));
    control.put(REPORT).wait().map_err(anyhow::Error::msg)?;
    let report = sink.line("result", Duration::from_secs(30))?;
    let results: SinkReport = serde_json::from_str(&report).context("the sink's report is not valid JSON")?;
    let table = render(&results, &send_calls, per_block * args.rounds, &args);
    emit(&table, args.markdown.as_deref())
}

#[derive(serde::Serialize, serde::Deserialize, Default)]
struct SinkReport {
    /// Per case index: (raw, reflex).
    cases: BTreeMap<usize, (PathStats, PathStats)>,
}

#[derive(serde::Serialize, serde::Deserialize, Default, Clone)]
struct PathStats {
    count: u64,
    through_shm: u64,
    p50_ns: u64,
    p99_ns: u64,
    p999_ns: u64,
    max_ns: u64,
}

impl PathStats {
    fn from(histogram: &LatencyHistogram, through_shm: u64) -> Self {
        Self {
            count: histogram.count(),
            through_shm,
            p50_ns: histogram.quantile_ns(0.5),
            p99_ns: histogram.quantile_ns(0.99),
            p999_ns: histogram.quantile_ns(0.999),
            max_ns: histogram.max_ns(),
        }
    }
}

fn render(report: &SinkReport, send_calls: &[[LatencyHistogram; 2]], expected: usize, args: &TransportArgs) -> String {
    let mut table = String::new();
    table.push_str(&format!(
        "One-way latency, two processes on loopback, µs ({} messages per cell, {} rounds, {} µs apart; shared memory {}; Reflex encodes into its own shared memory from {} B):\n\n",
        expected,
        args.rounds,
        args.period_us,
        if args.no_shm { "off" } else { "on" },
        args.shm_threshold
    ));
    table.push_str("| payload | path | received | via shm | p50 | p99 | p99.9 | max | p50 ratio | send call p50 |\n");
    table.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (index, (label, _)) in CASES.iter().enumerate() {
        let Some((raw, reflex)) = report.cases.get(&index) else { continue };
        let ratio = reflex.p50_ns as f64 / raw.p50_ns.max(1) as f64;
        let rows = [("raw zenoh", raw, String::new(), 0), ("reflex", reflex, format!("{ratio:.2}"), 1)];
        for (name, stats, ratio, path) in rows {
            table.push_str(&format!(
                "| {label} | {name} | {} | {} | {} | {} | {} | {} | {ratio} | {} |\n",
                stats.count,
                stats.through_shm,
                us(stats.p50_ns),
                us(stats.p99_ns),
                us(stats.p999_ns),
                us(stats.max_ns),
                us(send_calls[index][path].quantile_ns(0.5))
            ));
        }
    }
    table
}

/// The receiving side: raw zenoh subscribers on their own threads (FIFO channels) and one
/// Reflex node whose processing thread serves all its subscribers.
pub fn sink(args: SinkArgs) -> Result<()> {
    let config = transport(args.port, args.no_shm);
    let prefix = config.prefix.clone();
    let node = Node::new(NodeOptions::new("bench-sink").transport(config))?;
    let session = node.session().clone();
    let epoch = Arc::new(AtomicU32::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let report_requested = Arc::new(AtomicBool::new(false));
    let _control = {
        let (epoch, report_requested) = (epoch.clone(), report_requested.clone());
        session
            .declare_subscriber(format!("{prefix}/bench/control"))
            .callback(move |sample| match sample.payload().try_to_string().as_deref() {
                Ok(RESET) => {
                    epoch.fetch_add(1, Ordering::AcqRel);
                }
                Ok(REPORT) => report_requested.store(true, Ordering::Release),
                _ => {}
            })
            .wait()
            .map_err(anyhow::Error::msg)?
    };

    let mut raw_threads = Vec::new();
    for index in 0..CASES.len() {
        let subscriber = session.declare_subscriber(raw_key(&prefix, index)).wait().map_err(anyhow::Error::msg)?;
        let (clock, epoch, stop) = (node.clock().clone(), epoch.clone(), stop.clone());
        raw_threads.push(std::thread::spawn(move || {
            let mut histogram = LatencyHistogram::new();
            let (mut through_shm, mut seen_epoch) = (0u64, 0u32);
            while !stop.load(Ordering::Acquire) {
                let Ok(Some(sample)) = subscriber.recv_timeout(Duration::from_millis(20)) else { continue };
                let current = epoch.load(Ordering::Acquire);
                if current != seen_epoch {
                    (seen_epoch, through_shm) = (current, 0);
                    histogram.reset();
                }
                let bytes = sample.payload().to_bytes();
                std::hint::black_box(bytes.len());
                let now = clock.now_ns();
                if let Some(stamp) = sample.attachment().and_then(|a| a.to_bytes().as_ref().try_into().ok()) {
                    histogram.record_ns(now - i64::from_le_bytes(stamp));
                }
                through_shm += u64::from(sample.payload().as_shm().is_some());
            }
            PathStats::from(&histogram, through_shm)
        }));
    }

    let options = InputOptions::default().capacity(256).policy(OverflowPolicy::DropNewest);
    let mut subscribers = (0..CASES.len())
        .map(|index| node.subscriber::<Image>(&reflex_topic(index), options))
        .collect::<Result<Vec<_>, _>>()?;
    let mut histograms: Vec<(LatencyHistogram, u64)> = (0..CASES.len()).map(|_| (LatencyHistogram::new(), 0)).collect();
    let mut seen_epoch = 0;
    println!("ready");
    let clock = node.clock().clone();
    let started = Instant::now();
    while !report_requested.load(Ordering::Acquire) {
        if started.elapsed() > Duration::from_secs(1800) {
            bail!("no report request within 30 minutes");
        }
        node.wait_for_input(Duration::from_millis(20));
        let current = epoch.load(Ordering::Acquire);
        if current != seen_epoch {
            seen_epoch = current;
            for (histogram, through_shm) in histograms.iter_mut() {
                histogram.reset();
                *through_shm = 0;
            }
        }
        for (subscriber, (histogram, through_shm)) in subscribers.iter_mut().zip(histograms.iter_mut()) {
            while let Some(received) = subscriber.recv_view::<ImageView>() {
                let Ok(received) = received else { continue };
                std::hint::black_box(received.message.data.len());
                let now = clock.now_ns();
                if let Some(sent) = received.source_timestamp_ns {
                    histogram.record_ns(now - sent);
                }
                *through_shm += u64::from(received.shared_memory);
            }
        }
    }
    stop.store(true, Ordering::Release);
    let mut report = SinkReport::default();
    for (index, thread) in raw_threads.into_iter().enumerate() {
        let raw = thread.join().map_err(|_| anyhow::anyhow!("raw receiver thread panicked"))?;
        let (histogram, through_shm) = &histograms[index];
        report.cases.insert(index, (raw, PathStats::from(histogram, *through_shm)));
    }
    println!("result {}", serde_json::to_string(&report)?);
    Ok(())
}
