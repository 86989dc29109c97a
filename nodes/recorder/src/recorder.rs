//! The recorder: discovery of matching topics, a bounded hand-off from zenoh's receive tasks to
//! the writing thread, MCAP writing with periodic flushes and splitting.

use crate::glob;
use mcap::records::MessageHeader;
use reflex_msgs::reflex_msgs::MonitorEvent;
use reflex_runtime::discovery::{EndpointKind, Watch};
use reflex_runtime::spec::parse_params_value;
use reflex_runtime::spec::InvalidParam;
use reflex_runtime::Node;
use reflex_runtime::{NodeKind, NodeOptions, NodeSpec, RawSubscriber, RunError, Shutdown};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Parameters of the recorder (`recorder` node kind and `reflex record`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecorderConfig {
    /// The file to write; with splitting, `NAME_0001.mcap`, `NAME_0002.mcap`, ... instead.
    pub output: PathBuf,
    /// Topics to record: names or globs (`/camera/*`, `/perception/**`); empty: every topic.
    pub topics: Vec<String>,
    /// Topics never recorded (globs), e.g. the recorder's own events.
    pub exclude: Vec<String>,
    /// The open chunk is written out at least this often: the most a crash can lose.
    pub flush_period_s: f64,
    /// Start a new file after this many MiB (0: never).
    pub split_size_mb: f64,
    /// Start a new file after this many seconds (0: never).
    pub split_duration_s: f64,
    /// `zstd`, `lz4` or `none`.
    pub compression: String,
    /// Chunk size before compression, KiB.
    pub chunk_kb: u64,
    /// Messages waiting for the writer before new ones are dropped (and counted).
    pub queue_messages: usize,
}

impl Default for RecorderConfig {
    fn default() -> Self {
        Self {
            output: PathBuf::from("recording.mcap"),
            topics: Vec::new(),
            exclude: Vec::new(),
            flush_period_s: 1.0,
            split_size_mb: 0.0,
            split_duration_s: 0.0,
            compression: "zstd".into(),
            chunk_kb: 4096,
            queue_messages: 512,
        }
    }
}

impl RecorderConfig {
    pub fn validate(&self) -> Result<(), InvalidParam> {
        if !(self.flush_period_s > 0.0 && self.flush_period_s <= 60.0) {
            return Err(InvalidParam::new("flush_period_s", format!("{} is outside 0 < s <= 60", self.flush_period_s)));
        }
        if !(self.split_size_mb >= 0.0 && self.split_duration_s >= 0.0) {
            return Err(InvalidParam::new("split_size_mb", "split sizes and durations must be >= 0"));
        }
        if compression(&self.compression).is_err() {
            return Err(InvalidParam::new("compression", format!("{:?} is not zstd, lz4 or none", self.compression)));
        }
        if self.queue_messages == 0 || self.chunk_kb == 0 {
            return Err(InvalidParam::new("queue_messages", "queue_messages and chunk_kb must be at least 1"));
        }
        if self.output.as_os_str().is_empty() {
            return Err(InvalidParam::new("output", "needs a file name"));
        }
        Ok(())
    }

    fn wants(&self, topic: &str) -> bool {
        (self.topics.is_empty() || self.topics.iter().any(|p| glob::matches(p, topic)))
            && !self.exclude.iter().any(|p| glob::matches(p, topic))
    }
}

fn compression(name: &str) -> Result<Option<mcap::Compression>, ()> {
    match name {
        "zstd" => Ok(Some(mcap::Compression::Zstd)),
        "lz4" => Ok(Some(mcap::Compression::Lz4)),
        "none" => Ok(None),
        _ => Err(()),
    }
}

/// A message on its way from the receive task to the writer.
struct Pending {
    channel: usize,
    log_time_ns: u64,
    publish_time_ns: u64,
    data: Vec<u8>,
}

/// Counts so far, for progress lines and the final report.
#[derive(Debug, Clone, Default)]
pub struct RecorderStats {
    pub messages: u64,
    pub bytes: u64,
    pub dropped: u64,
    pub files: Vec<PathBuf>,
    /// Messages per topic.
    pub per_topic: BTreeMap<String, u64>,
    /// Topics seen but not recorded because their type is unknown to reflex-msgs.
    pub unknown_types: BTreeMap<String, String>,
}

struct Channel {
    topic: String,
    type_name: String,
    /// Dropped at the hand-off (written by the receive task).
    dropped: Arc<AtomicU64>,
    _subscriber: RawSubscriber,
}

/// The writing side: one MCAP file at a time.
struct Output {
    writer: mcap::Writer<BufWriter<File>>,
    path: PathBuf,
    opened: Instant,
    /// channel index → (schema id, channel id) in this file.
    ids: HashMap<usize, u16>,
    schemas: HashMap<String, u16>,
    sequence: u32,
}

pub struct Recorder {
    config: RecorderConfig,
    node: Node,
    channels: Vec<Channel>,
    sender: SyncSender<Pending>,
    receiver: Receiver<Pending>,
    discovered: Receiver<(String, String)>,
    _discovery: Watch,
    output: Option<Output>,
    stats: RecorderStats,
    file_index: u32,
    last_flush: Instant,
    reported_drops: u64,
}

impl Recorder {
    /// Starts discovery on `node`'s network; nothing is written until [`Recorder::run`] or
    /// [`Recorder::step`].
    pub fn new(node: Node, config: RecorderConfig) -> Result<Self, RunError> {
        config.validate().map_err(|invalid| invalid.of_node(node.name()))?;
        let (sender, receiver) = sync_channel(config.queue_messages);
        let (found, discovered) = std::sync::mpsc::channel();
        // Every publisher that appears from now on, then the ones that exist already (in this
        // order, so that none slips between the two; a topic seen twice is subscribed once).
        let system = node.system();
        let discovery = {
            let found = found.clone();
            system.watch_endpoints(EndpointKind::Publisher, move |info| {
                let _ = found.send((info.topic, info.type_name));
            })?
        };
        for info in system.endpoints(EndpointKind::Publisher)? {
            let _ = found.send((info.topic, info.type_name));
        }
        Ok(Self {
            config,
            node,
            channels: Vec::new(),
            sender,
            receiver,
            discovered,
            _discovery: discovery,
            output: None,
            stats: RecorderStats::default(),
            file_index: 0,
            last_flush: Instant::now(),
            reported_drops: 0,
        })
    }

    pub fn stats(&self) -> &RecorderStats {
        &self.stats
    }

    /// Topics being recorded, with their types.
    pub fn topics(&self) -> Vec<(String, String)> {
        self.channels.iter().map(|c| (c.topic.clone(), c.type_name.clone())).collect()
    }

    /// Records until `shutdown`, calling `progress` about every half second.
    pub fn run(&mut self, shutdown: &Shutdown, mut progress: impl FnMut(&RecorderStats)) -> Result<(), RunError> {
        let mut last_progress = Instant::now();
        while !shutdown.is_requested() {
            self.step(Duration::from_millis(50))?;
            if last_progress.elapsed() >= Duration::from_millis(500) {
                progress(&self.stats);
                last_progress = Instant::now();
            }
        }
        self.finish()?;
        progress(&self.stats);
        Ok(())
    }

    /// Subscribes to newly discovered topics, writes what arrived (waiting up to `wait`), and
    /// flushes, splits and reports drops when due.
    pub fn step(&mut self, wait: Duration) -> Result<(), RunError> {
        while let Ok((topic, type_name)) = self.discovered.try_recv() {
            self.discover(&topic, &type_name)?;
        }
        match self.receiver.recv_timeout(wait) {
            Ok(first) => {
                self.write(first)?;
                while let Ok(next) = self.receiver.try_recv() {
                    self.write(next)?;
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => unreachable!("the recorder holds a sender"),
        }
        if self.last_flush.elapsed().as_secs_f64() >= self.config.flush_period_s {
            self.last_flush = Instant::now();
            if let Some(output) = &mut self.output {
                output.writer.flush().map_err(|e| format!("{}: cannot write: {e}", output.path.display()))?;
            }
            self.report_drops();
        }
        Ok(())
    }

    fn discover(&mut self, topic: &str, type_name: &str) -> Result<(), RunError> {
        if !self.config.wants(topic) || self.channels.iter().any(|c| c.topic == topic) {
            return Ok(());
        }
        if reflex_msgs::find_type(type_name).is_none() {
            if self.stats.unknown_types.insert(topic.to_string(), type_name.to_string()).is_none() {
                tracing::warn!(topic, type_name, "not recorded: type unknown to reflex-msgs (no schema to write)");
            }
            return Ok(());
        }
        let index = self.channels.len();
        let dropped = Arc::new(AtomicU64::new(0));
        let subscriber = {
            let (sender, dropped) = (self.sender.clone(), dropped.clone());
            self.node.raw_subscriber(topic, type_name, move |sample| {
                let pending = Pending {
                    channel: index,
                    log_time_ns: sample.arrival_ns.max(0) as u64,
                    publish_time_ns: sample.attachment.map_or(sample.arrival_ns, |a| a.source_timestamp_ns).max(0)
                        as u64,
                    data: sample.payload.to_vec(),
                };
                if let Err(TrySendError::Full(_)) = sender.try_send(pending) {
                    // Relaxed: a counter, read by the writing thread for its reports.
                    dropped.fetch_add(1, Ordering::Relaxed);
                }
            })?
        };
        tracing::info!(topic, type_name, "recording");
        self.channels.push(Channel {
            topic: topic.into(),
            type_name: type_name.into(),
            dropped,
            _subscriber: subscriber,
        });
        Ok(())
    }

    fn write(&mut self, pending: Pending) -> Result<(), RunError> {
        self.rotate_if_due()?;
        if self.output.is_none() {
            self.open()?;
        }
        let output = self.output.as_mut().expect("opened above");
        let channel = &self.channels[pending.channel];
        let channel_id = match output.ids.get(&pending.channel) {
            Some(&id) => id,
            None => {
                let schema_id = match output.schemas.get(&channel.type_name) {
                    Some(&id) => id,
                    None => {
                        let entry = reflex_msgs::find_type(&channel.type_name).expect("checked at discovery");
                        let id = output
                            .writer
                            .add_schema(&channel.type_name, "ros2msg", (entry.schema)().as_bytes())
                            .map_err(RunError::other)?;
                        output.schemas.insert(channel.type_name.clone(), id);
                        id
                    }
                };
                let id = output
                    .writer
                    .add_channel(schema_id, &channel.topic, "cdr", &BTreeMap::new())
                    .map_err(RunError::other)?;
                output.ids.insert(pending.channel, id);
                id
            }
        };
        output.sequence = output.sequence.wrapping_add(1);
        let header = MessageHeader {
            channel_id,
            sequence: output.sequence,
            log_time: pending.log_time_ns,
            publish_time: pending.publish_time_ns,
        };
        output.writer.write_to_known_channel(&header, &pending.data).map_err(RunError::other)?;
        self.stats.messages += 1;
        self.stats.bytes += pending.data.len() as u64;
        match self.stats.per_topic.get_mut(&channel.topic) {
            Some(count) => *count += 1,
            None => {
                self.stats.per_topic.insert(channel.topic.clone(), 1);
            }
        }
        Ok(())
    }

    fn file_name(&self) -> PathBuf {
        let splitting = self.config.split_size_mb > 0.0 || self.config.split_duration_s > 0.0;
        if !splitting {
            return self.config.output.clone();
        }
        split_file(&self.config.output, self.file_index)
    }

    fn open(&mut self) -> Result<(), RunError> {
        self.file_index += 1;
        let path = self.file_name();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let file = File::create(&path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        let options = mcap::WriteOptions::new()
            .profile("ros2")
            .library(format!("reflex {}", env!("CARGO_PKG_VERSION")))
            .compression(compression(&self.config.compression).expect("validated"))
            .chunk_size(Some(self.config.chunk_kb * 1024));
        let writer = options.create(BufWriter::with_capacity(1 << 20, file)).map_err(RunError::other)?;
        tracing::info!(file = %path.display(), "recording to");
        self.stats.files.push(path.clone());
        self.output = Some(Output {
            writer,
            path,
            opened: Instant::now(),
            ids: HashMap::new(),
            schemas: HashMap::new(),
            sequence: 0,
        });
        Ok(())
    }

    fn rotate_if_due(&mut self) -> Result<(), RunError> {
        let Some(output) = &self.output else { return Ok(()) };
        let size_due = self.config.split_size_mb > 0.0
            && std::fs::metadata(&output.path).map(|m| m.len() as f64 / (1024.0 * 1024.0)).unwrap_or(0.0)
                >= self.config.split_size_mb;
        let time_due =
            self.config.split_duration_s > 0.0 && output.opened.elapsed().as_secs_f64() >= self.config.split_duration_s;
        if size_due || time_due {
            self.close()?;
        }
        Ok(())
    }

    fn close(&mut self) -> Result<(), RunError> {
        if let Some(mut output) = self.output.take() {
            output.writer.finish().map_err(|e| format!("{}: cannot finish: {e}", output.path.display()))?;
        }
        Ok(())
    }

    fn report_drops(&mut self) {
        let total: u64 = self.channels.iter().map(|c| c.dropped.load(Ordering::Relaxed)).sum();
        if total > self.reported_drops {
            let new = total - self.reported_drops;
            self.reported_drops = total;
            self.stats.dropped = total;
            tracing::warn!(dropped = new, total, "recorder could not keep up: messages dropped before writing");
            self.node.report(MonitorEvent::KIND_QUEUE_DROP, "recorder", total as f64, 0.0, "dropped before writing");
        }
    }

    /// Writes what is still queued, the summary section, and closes the file.
    pub fn finish(&mut self) -> Result<(), RunError> {
        while let Ok(next) = self.receiver.try_recv() {
            self.write(next)?;
        }
        self.report_drops();
        self.close()
    }
}

/// `recorder`: records topics to MCAP.
pub const RECORDER_KIND: NodeKind = NodeKind {
    name: "recorder",
    summary: "records topics (names or globs; all by default) to MCAP: ros2 profile, CDR, zstd, flushed every second",
    ports: &[],
    parameters: &[
        ("output", "recording.mcap", "file to write (NAME_NNNN.mcap when splitting)"),
        ("topics", "[] (all)", "topic names or globs: /camera/*, /perception/**"),
        ("exclude", "[]", "globs never recorded"),
        ("flush_period_s", "1.0", "the open chunk is written out at least this often (crash loss bound)"),
        ("split_size_mb, split_duration_s", "0, 0", "start a new file after this size or time (0: never)"),
        ("compression", "zstd", "zstd, lz4 or none"),
        ("chunk_kb", "4096", "chunk size before compression"),
        ("queue_messages", "512", "messages waiting for the writer before new ones are dropped (counted)"),
    ],
    check_params: |value| parse_params_value::<RecorderConfig>(value)?.validate(),
    run: run_node,
    inline: false,
};

fn run_node(spec: NodeSpec, shutdown: Shutdown) -> Result<(), RunError> {
    let config: RecorderConfig = spec.params()?;
    let node = Node::new(NodeOptions::from_spec(&spec))?;
    let mut recorder = Recorder::new(node, config)?;
    recorder.run(&shutdown, |_| {})?;
    let stats = recorder.stats();
    tracing::info!(messages = stats.messages, bytes = stats.bytes, dropped = stats.dropped, files = ?stats.files, "recorder stopped");
    Ok(())
}

/// The `index`th file (from 1) of a recording split into several: `NAME_0001.mcap`, ...
pub fn split_file(output: &Path, index: u32) -> PathBuf {
    let stem = output.file_stem().map_or("recording".into(), |s| s.to_string_lossy().into_owned());
    output.with_file_name(format!("{stem}_{index:04}.mcap"))
}
