//! Reading recordings: every message in log order (tolerating a file cut short by a crash),
//! and the summary `reflex bag info` prints.

use std::collections::BTreeMap;
use std::path::Path;

/// One message of a recording.
#[derive(Debug, Clone)]
pub struct RecordedMessage {
    pub topic: String,
    pub type_name: String,
    /// The channel's message encoding (`cdr` for ROS 2).
    pub encoding: String,
    pub log_time_ns: u64,
    pub publish_time_ns: u64,
    pub data: Vec<u8>,
}

/// Every message of the file, in the order written. A file cut short (no summary, a partial
/// last chunk) yields what precedes the damage, and says where it stopped in the second value.
pub fn read_messages(path: &Path) -> Result<(Vec<RecordedMessage>, Option<String>), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    read_messages_from(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

pub fn read_messages_from(bytes: &[u8]) -> Result<(Vec<RecordedMessage>, Option<String>), String> {
    let stream = mcap::MessageStream::new(bytes).map_err(|e| format!("not a readable MCAP file: {e}"))?;
    let mut messages = Vec::new();
    for message in stream {
        match message {
            Ok(message) => messages.push(RecordedMessage {
                topic: message.channel.topic.clone(),
                type_name: message.channel.schema.as_ref().map_or_else(String::new, |s| s.name.clone()),
                encoding: message.channel.message_encoding.clone(),
                log_time_ns: message.log_time,
                publish_time_ns: message.publish_time,
                data: message.data.into_owned(),
            }),
            Err(e) if messages.is_empty() => return Err(format!("not a readable MCAP file: {e}")),
            Err(e) => {
                let damage = format!("damaged after {} messages: {e}", messages.len());
                return Ok((messages, Some(damage)));
            }
        }
    }
    Ok((messages, None))
}

/// What `reflex bag info` shows.
#[derive(Debug, Clone, Default)]
pub struct BagInfo {
    pub size_bytes: u64,
    pub profile: String,
    pub library: String,
    pub messages: u64,
    pub start_ns: u64,
    pub end_ns: u64,
    pub chunks: usize,
    pub compression: Vec<String>,
    /// topic → (type, message encoding, count)
    pub topics: BTreeMap<String, (String, String, u64)>,
    /// False when the file has no summary section (a crash) and was scanned instead.
    pub has_summary: bool,
    pub damage: Option<String>,
}

impl BagInfo {
    pub fn read(path: &Path) -> Result<Self, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        let mut info = BagInfo { size_bytes: bytes.len() as u64, ..Default::default() };
        if let Ok(header) = read_header(&bytes) {
            (info.profile, info.library) = header;
        }
        let summary = mcap::Summary::read(&bytes).ok().flatten();
        if let Some(summary) = summary.filter(|s| s.stats.is_some()) {
            let stats = summary.stats.as_ref().expect("filtered");
            info.has_summary = true;
            info.messages = stats.message_count;
            (info.start_ns, info.end_ns) = (stats.message_start_time, stats.message_end_time);
            info.chunks = summary.chunk_indexes.len();
            let mut compression: Vec<String> = summary.chunk_indexes.iter().map(|c| c.compression.clone()).collect();
            compression.sort();
            compression.dedup();
            info.compression = compression.into_iter().map(|c| if c.is_empty() { "none".into() } else { c }).collect();
            for (id, channel) in &summary.channels {
                let count = stats.channel_message_counts.get(id).copied().unwrap_or(0);
                let type_name = channel.schema.as_ref().map_or_else(String::new, |s| s.name.clone());
                info.topics.insert(channel.topic.clone(), (type_name, channel.message_encoding.clone(), count));
            }
            return Ok(info);
        }
        // No summary: count by reading every message.
        let (messages, damage) = read_messages_from(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        info.damage = damage;
        info.messages = messages.len() as u64;
        info.start_ns = messages.iter().map(|m| m.log_time_ns).min().unwrap_or(0);
        info.end_ns = messages.iter().map(|m| m.log_time_ns).max().unwrap_or(0);
        for message in &messages {
            let entry = info
                .topics
                .entry(message.topic.clone())
                .or_insert_with(|| (message.type_name.clone(), "cdr".into(), 0));
            entry.2 += 1;
        }
        Ok(info)
    }

    pub fn duration_s(&self) -> f64 {
        self.end_ns.saturating_sub(self.start_ns) as f64 / 1e9
    }

    /// The table `reflex bag info` prints.
    pub fn render(&self, path: &Path) -> String {
        let mut out = String::new();
        let size = self.size_bytes as f64 / (1024.0 * 1024.0);
        out.push_str(&format!("file:        {}\n", path.display()));
        out.push_str(&format!("size:        {size:.2} MiB\n"));
        out.push_str(&format!("profile:     {}   library: {}\n", or_dash(&self.profile), or_dash(&self.library)));
        out.push_str(&format!("duration:    {:.3} s\n", self.duration_s()));
        out.push_str(&format!("start:       {}\nend:         {}\n", time(self.start_ns), time(self.end_ns)));
        out.push_str(&format!("messages:    {}\n", self.messages));
        if self.has_summary {
            out.push_str(&format!("chunks:      {} ({})\n", self.chunks, self.compression.join(", ")));
        } else {
            out.push_str("summary:     missing (file not closed: a crash?); counted by reading every message\n");
        }
        if let Some(damage) = &self.damage {
            out.push_str(&format!("damage:      {damage}\n"));
        }
        let width = self.topics.keys().map(String::len).max().unwrap_or(5).max(5);
        out.push_str(&format!("topics:\n  {:width$}  {:>8}  {:>9}  type\n", "topic", "count", "rate Hz"));
        for (topic, (type_name, encoding, count)) in &self.topics {
            // Intervals per second: n messages span n - 1 intervals.
            let rate =
                if self.duration_s() > 0.0 && *count > 1 { (*count - 1) as f64 / self.duration_s() } else { 0.0 };
            out.push_str(&format!("  {topic:width$}  {count:>8}  {rate:>9.2}  {type_name} ({encoding})\n"));
        }
        out
    }
}

fn or_dash(text: &str) -> &str {
    if text.is_empty() {
        "-"
    } else {
        text
    }
}

/// Seconds since the epoch with nanoseconds.
fn time(ns: u64) -> String {
    format!("{}.{:09} (unix time)", ns / 1_000_000_000, ns % 1_000_000_000)
}

/// Profile and library from the header record at the start of the file.
fn read_header(bytes: &[u8]) -> Result<(String, String), ()> {
    let mut reader = mcap::read::LinearReader::new(bytes).map_err(|_| ())?;
    match reader.next() {
        Some(Ok(mcap::records::Record::Header(header))) => Ok((header.profile, header.library)),
        _ => Err(()),
    }
}
