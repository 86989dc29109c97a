//! `reflex bench deadline`: how long from the moment an input's deadline expires until the
//! breach event is in another node's hands, against a periodic sweep monitor (the way dora's
//! health check and Autoware's topic monitor work) measured on the same stream in the same run.
//!
//! A helper process publishes a heartbeat at 100 Hz and pauses on command. The watching node
//! declares the deadline; an observer node (its own zenoh session) receives the breach events.
//! The sweep baseline watches the same heartbeat in the observer and checks every `sweep_ms`.

use crate::{emit, us, Helper};
use anyhow::{bail, Context, Result};
use reflex_launch::free_port;
use reflex_msgs::reflex_msgs::{MonitorEvent, VehicleState};
use reflex_msgs::topics;
use reflex_runtime::{InputOptions, LatencyHistogram, Node, NodeOptions, TransportConfig};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use zenoh::Wait;

#[derive(clap::Args)]
pub struct DeadlineArgs {
    /// Number of breaches to provoke.
    #[arg(long, default_value_t = 30)]
    trials: usize,
    /// The input deadline (maximum gap between heartbeats), ms.
    #[arg(long, default_value_t = 30.0)]
    deadline_ms: f64,
    /// Period of the sweep monitor baseline, ms.
    #[arg(long, default_value_t = 100)]
    sweep_ms: u64,
    /// Also write the table (Markdown) to this file.
    #[arg(long)]
    markdown: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct PeerArgs {
    #[arg(long)]
    port: u16,
}

const HEARTBEAT: &str = "/bench/heartbeat";
const RUN: u8 = 0;
const PAUSE: u8 = 1;
const QUIT: u8 = 2;

fn transport(port: u16) -> TransportConfig {
    TransportConfig { prefix: format!("bench{port}"), ..TransportConfig::loopback(port) }
}

fn control_key(prefix: &str) -> String {
    format!("{prefix}/bench/control")
}

pub fn peer(args: PeerArgs) -> Result<()> {
    let config = transport(args.port);
    let prefix = config.prefix.clone();
    let node = Node::new(NodeOptions::new("bench-heartbeat").transport(config))?;
    let state = Arc::new(AtomicU8::new(PAUSE));
    let _control = {
        let state = state.clone();
        node.session()
            .declare_subscriber(control_key(&prefix))
            .callback(move |sample| {
                if let Some(&word) = sample.payload().to_bytes().first() {
                    state.store(word, Ordering::Release);
                }
            })
            .wait()
            .map_err(anyhow::Error::msg)?
    };
    let mut heartbeat = node.publisher::<VehicleState>(HEARTBEAT)?;
    let mut message = VehicleState::default();
    println!("ready");
    loop {
        match state.load(Ordering::Acquire) {
            QUIT => return Ok(()),
            RUN => {
                message.header.stamp = node.clock().now();
                heartbeat.publish(&message)?;
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn run(args: DeadlineArgs) -> Result<()> {
    let port = free_port()?;
    let config = transport(port);
    let prefix = config.prefix.clone();
    let mut helper = Helper::start(&["bench".into(), "deadline-peer".into(), "--port".into(), port.to_string()])?;
    helper.line("ready", Duration::from_secs(30))?;

    let deadline = Duration::from_secs_f64(args.deadline_ms / 1e3);
    // The watching node takes every heartbeat on its own thread (only messages a node takes
    // keep its input fresh).
    let stop_watcher = Arc::new(AtomicBool::new(false));
    let (watcher_ready, ready) = std::sync::mpsc::channel();
    let watcher = {
        let (config, stop) = (config.clone(), stop_watcher.clone());
        std::thread::spawn(move || -> Result<()> {
            let watcher = Node::new(NodeOptions::new("bench-watcher").transport(config))?;
            let mut watched = watcher
                .subscriber::<VehicleState>(HEARTBEAT, InputOptions::default().capacity(1).deadline(deadline))?;
            let _ = watcher_ready.send(());
            while !stop.load(Ordering::Acquire) {
                watcher.wait_for_input(Duration::from_millis(5));
                while watched.recv().is_some() {}
            }
            Ok(())
        })
    };
    ready.recv_timeout(Duration::from_secs(30)).context("the watching node did not start")?;

    let observer = Node::new(NodeOptions::new("bench-observer").transport(config))?;
    let mut events =
        observer.subscriber::<MonitorEvent>(topics::MONITOR_EVENTS, InputOptions::default().capacity(64))?;
    let session = observer.session().clone();
    let control = session.declare_publisher(control_key(&prefix)).wait().map_err(anyhow::Error::msg)?;
    let matched = Instant::now();
    while !control.matching_status().wait().map(|s| s.matching()).unwrap_or(false) {
        if matched.elapsed() > Duration::from_secs(20) {
            bail!("the heartbeat process never subscribed to its control key");
        }
        std::thread::sleep(Duration::from_millis(5));
    }

    // Baseline: a sweep monitor on the same heartbeat, in the observer process.
    let last_heartbeat = Arc::new(AtomicI64::new(0));
    let _baseline_subscriber = {
        let (last, clock) = (last_heartbeat.clone(), observer.clock().clone());
        session
            .declare_subscriber(format!("{prefix}{HEARTBEAT}"))
            .callback(move |_| last.store(clock.now_ns(), Ordering::Release))
            .wait()
            .map_err(anyhow::Error::msg)?
    };
    let sweep_detections = Arc::new(std::sync::Mutex::new(Vec::<i64>::new()));
    let stop_sweep = Arc::new(AtomicBool::new(false));
    let sweep = {
        let (last, clock, detections, stop) =
            (last_heartbeat.clone(), observer.clock().clone(), sweep_detections.clone(), stop_sweep.clone());
        let (period, deadline_ns) = (Duration::from_millis(args.sweep_ms), deadline.as_nanos() as i64);
        std::thread::spawn(move || {
            let mut breached = false;
            while !stop.load(Ordering::Acquire) {
                std::thread::sleep(period);
                let (now, last) = (clock.now_ns(), last.load(Ordering::Acquire));
                let expired = last > 0 && now - last > deadline_ns;
                if expired && !breached {
                    // Time from expiry to detection.
                    detections.lock().unwrap().push(now - (last + deadline_ns));
                }
                breached = expired;
            }
        })
    };

    let clock = observer.clock().clone();
    let mut watchdog_late = LatencyHistogram::new();
    let mut delivery = LatencyHistogram::new();
    let mut expiry_to_event = LatencyHistogram::new();
    let started = Instant::now();
    for trial in 0..args.trials {
        let before = last_heartbeat.load(Ordering::Acquire);
        control.put([RUN]).wait().map_err(anyhow::Error::msg)?;
        // Run until the stream is steady and any recovery event has gone by.
        std::thread::sleep(Duration::from_millis(300));
        if last_heartbeat.load(Ordering::Acquire) == before {
            bail!("trial {trial}: the heartbeat did not start");
        }
        while events.recv().is_some() {}
        control.put([PAUSE]).wait().map_err(anyhow::Error::msg)?;
        let wait_from = Instant::now();
        loop {
            observer.wait_for_input(Duration::from_millis(50));
            if wait_from.elapsed() > Duration::from_secs(10) {
                bail!("trial {trial}: no breach event within 10 s of pausing the heartbeat");
            }
            let Some(event) = events.recv() else { continue };
            let now = clock.now_ns();
            let event = event.message;
            if event.kind != MonitorEvent::KIND_DEADLINE_MISSED || event.topic != HEARTBEAT {
                continue;
            }
            let late_ns = ((event.value_ms - event.limit_ms) * 1e6) as i64;
            let delivered_ns = now - event.header.stamp.as_nanos();
            watchdog_late.record_ns(late_ns);
            delivery.record_ns(delivered_ns);
            expiry_to_event.record_ns(late_ns + delivered_ns);
            break;
        }
        // Give the sweep monitor time to see this breach too.
        std::thread::sleep(Duration::from_millis(args.sweep_ms + 50));
        eprint!("\rtrial {}/{} ({:.0} s)", trial + 1, args.trials, started.elapsed().as_secs_f64());
    }
    eprintln!();
    control.put([QUIT]).wait().map_err(anyhow::Error::msg)?;
    stop_watcher.store(true, Ordering::Release);
    watcher.join().map_err(|_| anyhow::anyhow!("watcher thread panicked"))??;
    stop_sweep.store(true, Ordering::Release);
    sweep.join().map_err(|_| anyhow::anyhow!("sweep thread panicked"))?;
    let mut sweep_histogram = LatencyHistogram::new();
    for detection in sweep_detections.lock().unwrap().iter() {
        sweep_histogram.record_ns(*detection);
    }
    let table = render(
        &args,
        &[
            ("reflex watchdog: expiry → detection", &watchdog_late),
            ("reflex: detection → event at another node", &delivery),
            ("reflex: expiry → event at another node", &expiry_to_event),
            ("baseline sweep monitor: expiry → detection", &sweep_histogram),
        ],
    );
    emit(&table, args.markdown.as_deref()).context("writing the table")
}

fn render(args: &DeadlineArgs, rows: &[(&str, &LatencyHistogram)]) -> String {
    let mut table = format!(
        "Deadline breach detection, {} breaches of a {} ms deadline on a 100 Hz heartbeat from another process; sweep baseline every {} ms; µs:\n\n",
        args.trials, args.deadline_ms, args.sweep_ms
    );
    table.push_str("| measurement | n | p50 | p99 | max |\n|---|---:|---:|---:|---:|\n");
    for (name, histogram) in rows {
        table.push_str(&format!(
            "| {name} | {} | {} | {} | {} |\n",
            histogram.count(),
            us(histogram.quantile_ns(0.5)),
            us(histogram.quantile_ns(0.99)),
            us(histogram.max_ns())
        ));
    }
    table
}
