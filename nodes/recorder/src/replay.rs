//! Replay: republishing a recording's topics with their original timing (scaled), header
//! stamps untouched; topic selection and remapping; loop, start offset and duration; and a
//! lock-step mode for regression runs.
//!
//! Lock-step: after each message on the lock-step input topic, replay waits until the chain
//! answers on the output topic with the same `header.stamp` before releasing the next one, so a
//! run's results do not depend on the machine's speed (the detector sees every frame, in order).

use crate::bag::{read_messages, RecordedMessage};
use crate::glob;
use reflex_msgs::sensor_msgs::{CompressedImageView, Image};
use reflex_msgs::std_msgs::Header;
use reflex_runtime::{Node, RawPublisher, RunError, Shutdown};
use std::collections::HashMap;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Playback speed relative to the recording.
    pub rate: f64,
    pub looping: bool,
    /// Skip this much of the recording's start, s.
    pub start_s: f64,
    /// Play at most this much, s.
    pub duration_s: Option<f64>,
    /// Topics to replay (names or globs); empty: all.
    pub topics: Vec<String>,
    /// `from` → `to` topic renames.
    pub remap: Vec<(String, String)>,
    /// Republish `sensor_msgs/CompressedImage` (JPEG, PNG) decoded as `rgb8` `sensor_msgs/Image`
    /// (for nodes that take raw frames); the topic loses a trailing `/compressed`.
    pub decompress: bool,
    /// (input topic after remapping, output topic): wait for the answer to each input message.
    pub lockstep: Option<(String, String)>,
    /// How long to wait for an answer in lock-step before giving up.
    pub lockstep_timeout: Duration,
    /// Wait up to this long for every replayed topic to have a subscriber before starting.
    pub wait_for_subscribers: Duration,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        Self {
            rate: 1.0,
            looping: false,
            start_s: 0.0,
            duration_s: None,
            topics: Vec::new(),
            remap: Vec::new(),
            decompress: false,
            lockstep: None,
            lockstep_timeout: Duration::from_secs(10),
            wait_for_subscribers: Duration::from_secs(2),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ReplayStats {
    pub published: u64,
    pub per_topic: HashMap<String, u64>,
    /// Lock-step answers received.
    pub answered: u64,
    pub damage: Option<String>,
}

/// Where replay is, for progress displays: messages done, messages in one pass, recording time
/// reached (s from the first message played).
pub struct Progress {
    pub done: u64,
    pub total: u64,
    pub position_s: f64,
    pub duration_s: f64,
}

pub fn replay(
    node: &Node,
    path: &Path,
    options: &ReplayOptions,
    shutdown: &Shutdown,
    mut progress: impl FnMut(&Progress),
) -> Result<ReplayStats, RunError> {
    if !(options.rate > 0.0) {
        return Err("replay rate must be above 0".into());
    }
    let (all, damage) = read_messages(path)?;
    if let Some(damage) = &damage {
        tracing::warn!(file = %path.display(), "{damage}; replaying what precedes it");
    }
    let first_ns = all.first().map_or(0, |m| m.log_time_ns);
    let from_ns = first_ns + (options.start_s * 1e9) as u64;
    let until_ns = options.duration_s.map(|d| from_ns + (d * 1e9) as u64);
    let messages: Vec<&RecordedMessage> = all
        .iter()
        .filter(|m| m.log_time_ns >= from_ns && until_ns.is_none_or(|u| m.log_time_ns <= u))
        .filter(|m| options.topics.is_empty() || options.topics.iter().any(|p| glob::matches(p, &m.topic)))
        .collect();
    if messages.is_empty() {
        return Err(
            format!("{}: nothing to replay (no message matches the topics and time range)", path.display()).into()
        );
    }
    let span_ns = messages.last().expect("non-empty").log_time_ns - messages[0].log_time_ns;

    // One publisher per (topic, type) as it will go out.
    let mut publishers: HashMap<String, RawPublisher> = HashMap::new();
    for message in &messages {
        let (topic, type_name) = outgoing(message, options);
        if !publishers.contains_key(&topic) {
            publishers.insert(topic.clone(), node.raw_publisher(&topic, &type_name)?);
        }
    }
    let start = Instant::now();
    while start.elapsed() < options.wait_for_subscribers && !publishers.values().all(RawPublisher::has_subscribers) {
        std::thread::sleep(Duration::from_millis(10));
    }
    // Lock-step needs its input consumed: wait for that subscriber as long as for an answer.
    if let Some((input, _)) = &options.lockstep {
        let inputs: Vec<&RawPublisher> =
            publishers.iter().filter(|(topic, _)| glob::matches(input, topic)).map(|(_, p)| p).collect();
        if inputs.is_empty() {
            return Err(format!("lock-step input {input} is not among the replayed topics").into());
        }
        while !inputs.iter().all(|p| p.has_subscribers()) {
            if start.elapsed() > options.wait_for_subscribers.max(options.lockstep_timeout) {
                return Err(format!("lock-step: nothing subscribes to {input} (is the chain running?)").into());
            }
            if shutdown.is_requested() {
                return Ok(ReplayStats::default());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let answers = match &options.lockstep {
        Some((_, output)) => {
            let (sender, answers) = mpsc::channel();
            let subscriber = node.raw_subscriber(output, "unknown", move |sample| {
                if let Ok(header) = reflex_msgs::decode_prefix::<Header>(sample.payload) {
                    let _ = sender.send(header.stamp.as_nanos());
                }
            })?;
            Some((answers, subscriber))
        }
        None => None,
    };
    // Let the lock-step subscription's route settle before the first input goes out.
    if answers.is_some() {
        std::thread::sleep(Duration::from_millis(200));
    }

    let mut stats = ReplayStats { damage, ..Default::default() };
    let mut frame = Image::default();
    'passes: loop {
        let pass_start = Instant::now();
        for (index, message) in messages.iter().enumerate() {
            if shutdown.is_requested() {
                break 'passes;
            }
            let offset_ns = message.log_time_ns - messages[0].log_time_ns;
            if options.lockstep.is_none() {
                let due = pass_start + Duration::from_nanos((offset_ns as f64 / options.rate) as u64);
                while let Some(wait) = due.checked_duration_since(Instant::now()) {
                    if shutdown.is_requested() {
                        break 'passes;
                    }
                    std::thread::sleep(wait.min(Duration::from_millis(100)));
                }
            }
            let (topic, _) = outgoing(message, options);
            let bytes = if options.decompress && message.type_name == "sensor_msgs/msg/CompressedImage" {
                decompress(&message.data, &mut frame).map_err(|e| format!("{} message {index}: {e}", message.topic))?;
                std::borrow::Cow::Owned(reflex_msgs::encode(&frame))
            } else {
                std::borrow::Cow::Borrowed(message.data.as_slice())
            };
            publishers.get_mut(&topic).expect("declared above").publish(&bytes)?;
            stats.published += 1;
            *stats.per_topic.entry(topic.clone()).or_default() += 1;
            if let (Some((input, output)), Some((answers, _))) = (&options.lockstep, &answers) {
                if glob::matches(input, &topic) {
                    let stamp = reflex_msgs::decode_prefix::<Header>(&bytes)
                        .map_err(|e| format!("lock-step input {topic} has no header: {e}"))?
                        .stamp
                        .as_nanos();
                    wait_answer(answers, stamp, options.lockstep_timeout, shutdown).map_err(|e| {
                        format!("lock-step: {e} on {output} for the message stamped {stamp} ns on {topic}")
                    })?;
                    stats.answered += 1;
                }
            }
            progress(&Progress {
                done: index as u64 + 1,
                total: messages.len() as u64,
                position_s: offset_ns as f64 / 1e9,
                duration_s: span_ns as f64 / 1e9,
            });
        }
        if !options.looping {
            break;
        }
    }
    Ok(stats)
}

/// The topic and type a recorded message goes out as.
fn outgoing(message: &RecordedMessage, options: &ReplayOptions) -> (String, String) {
    let (mut topic, mut type_name) = (message.topic.clone(), message.type_name.clone());
    if options.decompress && type_name == "sensor_msgs/msg/CompressedImage" {
        type_name = "sensor_msgs/msg/Image".into();
        if let Some(raw) = topic.strip_suffix("/compressed") {
            topic = raw.to_string();
        }
    }
    if let Some((_, to)) = options.remap.iter().find(|(from, _)| *from == topic) {
        topic = to.clone();
    }
    (topic, type_name)
}

fn decompress(cdr: &[u8], frame: &mut Image) -> Result<(), String> {
    let view: CompressedImageView = reflex_msgs::decode(cdr).map_err(|e| format!("bad CompressedImage: {e}"))?;
    let image = image::load_from_memory(view.data)
        .map_err(|e| format!("cannot decode {:?} image: {e}", view.format))?
        .into_rgb8();
    frame.header.stamp = view.header.stamp;
    frame.header.frame_id.clear();
    frame.header.frame_id.push_str(view.header.frame_id);
    (frame.width, frame.height) = image.dimensions();
    frame.encoding = "rgb8".into();
    frame.step = frame.width * 3;
    frame.data = image.into_raw().into();
    Ok(())
}

fn wait_answer(
    answers: &mpsc::Receiver<i64>,
    stamp: i64,
    timeout: Duration,
    shutdown: &Shutdown,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        if shutdown.is_requested() {
            return Ok(());
        }
        match answers.recv_timeout(deadline.saturating_duration_since(Instant::now()).min(Duration::from_millis(100))) {
            Ok(answered) if answered == stamp => return Ok(()),
            Ok(_) => {} // an answer to an earlier message
            Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {}
            Err(_) => return Err(format!("no answer within {timeout:?}")),
        }
    }
}
