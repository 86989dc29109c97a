//! A node: one zenoh session, its typed publishers and subscribers, its liveliness token, and
//! a watchdog thread that checks input deadlines and callback budgets on the node's duration
//! clock (monotonic, or simulation time) and publishes the node's health (see [`crate::health`]).

use crate::attachment::Attachment;
use crate::clock::Clock;
use crate::health::{self, Level, StatusHandle, Statuses, HEALTH_PERIOD, TROUBLE_HOLD};
use crate::keys::{self, EndpointKind};
use crate::queue::{input_queue, OverflowPolicy, QueueReader, QueueWriter};
use crate::timing::{InputStats, LatencyHistogram};
use crate::transport::{TransportConfig, TransportConfigError};
use reflex_msgs::builtin_interfaces::Time;
use reflex_msgs::diagnostic_msgs::DiagnosticArray;
use reflex_msgs::reflex_msgs::MonitorEvent;
use reflex_msgs::std_msgs::Header;
use reflex_msgs::{decode_into, encode_into, topics, DecodeError, Message, Stamped};
use std::borrow::Cow;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use zenoh::bytes::ZBytes;
use zenoh::qos::CongestionControl;
use zenoh::sample::{Sample, SampleKind};
use zenoh::shm::{GarbageCollect, PosixShmProviderBackend, ShmProvider, ShmProviderBuilder};
use zenoh::Wait;

/// How often the watchdog looks at its lists even when no deadline is near (new inputs wake it
/// at once; this bounds the delay for a simulation clock that stopped moving).
const WATCHDOG_BACKSTOP: Duration = Duration::from_millis(20);

/// At most this many undecodable messages are skipped in one `recv` call, so a flood of
/// garbage cannot keep a node's loop inside `recv` (it returns `None` and the loop goes on).
pub const MAX_SKIPPED_PER_RECV: usize = 32;

/// How many messages a node's loop should take from one input per turn before it looks at its
/// other inputs and its own work again (a flood on one input cannot starve the rest). What is
/// left waits for the next turn, after the loop's wait: deliberately, so that under a flood a
/// loop at real-time priority still leaves the CPU to the others (at 30 frames/s no backlog
/// ever reaches the limit).
pub const DRAIN_LIMIT: usize = 64;

/// The most messages one sequence gap counts as lost.
const MAX_COUNTED_GAP: i64 = 1 << 20;

/// Undecodable messages on one input are reported at most once per this period, with a count.
const DECODE_REPORT_PERIOD_NS: i64 = 1_000_000_000;

/// After a step of the wall clock, stamps made before and after it do not compare for this
/// long: ages of messages received meanwhile are marked untrusted.
pub const STEP_SETTLE: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("node name {0:?} is not usable: use letters, digits, '_' and '-'")]
    BadName(String),
    #[error(transparent)]
    Transport(#[from] TransportConfigError),
    #[error("cannot open the zenoh session: {0}")]
    Open(String),
    #[error("cannot declare {what} on `{key}`: {reason}")]
    Declare { what: &'static str, key: String, reason: String },
    #[error("cannot publish on `{key}`: {reason}")]
    Publish { key: String, reason: String },
    #[error("input `{topic}`: deadline {deadline_ms} ms is not a duration (a deadline that never fires is none)")]
    BadDeadline { topic: String, deadline_ms: f64 },
}

/// What a node needs to start.
#[derive(Debug, Clone, Default)]
pub struct NodeOptions {
    pub name: String,
    pub transport: TransportConfig,
    pub clock: Clock,
    /// Follow `rosgraph_msgs/Clock` on `/clock` (a simulation clock that the messages move).
    pub use_sim_time: bool,
    /// Faults injected from the start (see [`crate::fault`]).
    pub faults: Vec<crate::fault::FaultCommand>,
    /// Listen for faults at run time on `<prefix>/_fault/<name>` (benches only: off unless
    /// the launch file's `fault_injection` turns it on).
    pub fault_injection: bool,
}

impl NodeOptions {
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into(), ..Self::default() }
    }

    /// The options a launched node runs with: its name, transport and clock from its spec.
    pub fn from_spec(spec: &crate::NodeSpec) -> Self {
        Self {
            name: spec.name.clone(),
            transport: spec.transport.clone(),
            use_sim_time: spec.use_sim_time,
            faults: spec.faults.clone(),
            fault_injection: spec.fault_injection,
            ..Self::default()
        }
    }

    pub fn transport(mut self, transport: TransportConfig) -> Self {
        self.transport = transport;
        self
    }

    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn fault_injection(mut self, enabled: bool) -> Self {
        self.fault_injection = enabled;
        self
    }
}

/// Options of one subscription.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InputOptions {
    /// Messages the queue holds before the overflow policy drops.
    pub capacity: usize,
    pub policy: OverflowPolicy,
    /// Maximum gap between two messages before a deadline breach is raised; `None`: unwatched.
    /// The watch starts when the subscription is declared, so a topic that never starts
    /// publishing is a breach too.
    pub deadline_ms: Option<f64>,
}

impl Default for InputOptions {
    fn default() -> Self {
        Self { capacity: 8, policy: OverflowPolicy::DropOldest, deadline_ms: None }
    }
}

impl InputOptions {
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }
    pub fn policy(mut self, policy: OverflowPolicy) -> Self {
        self.policy = policy;
        self
    }
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline_ms = Some(deadline.as_secs_f64() * 1e3);
        self
    }
}

/// A running node. Dropping it stops its watchdog and undeclares everything.
pub struct Node {
    shared: Arc<NodeShared>,
    watchdog: Option<JoinHandle<()>>,
    _liveliness: zenoh::liveliness::LivelinessToken,
    _fault_subscriber: Option<zenoh::pubsub::Subscriber<()>>,
    _clock_subscriber: Option<zenoh::pubsub::Subscriber<()>>,
}

struct NodeShared {
    name: String,
    prefix: String,
    host: String,
    session: zenoh::Session,
    clock: Clock,
    shm: Option<ShmProvider<PosixShmProviderBackend>>,
    shm_threshold_bytes: usize,
    next_entity: AtomicU64,
    events: Mutex<EventSink>,
    watch: Mutex<WatchList>,
    statuses: Arc<Statuses>,
    faults: Arc<crate::fault::Faults>,
    health: Mutex<HealthSink>,
    stopping: AtomicBool,
    /// Undecodable `/clock` messages: counted, reported at most once a period.
    clock_errors: Mutex<RateLimited>,
}

#[derive(Default)]
struct WatchList {
    inputs: Vec<Arc<InputWatch>>,
    budgets: Vec<Arc<BudgetWatch>>,
}

/// Publishes `MonitorEvent`s. Events are rare (a breach, a recovery), so a lock is fine here.
struct EventSink {
    publisher: zenoh::pubsub::Publisher<'static>,
    message: MonitorEvent,
    buffer: Vec<u8>,
}

/// Publishes the node's health on its own key.
struct HealthSink {
    publisher: zenoh::pubsub::Publisher<'static>,
    message: DiagnosticArray,
    buffer: Vec<u8>,
    sequence: u64,
}

/// A count of something reported at most once per period.
#[derive(Default)]
struct RateLimited {
    count: u64,
    last_report_ns: Option<i64>,
}

impl RateLimited {
    /// Counts one; returns the total when it is time to report it.
    fn count(&mut self, now_ns: i64) -> Option<u64> {
        self.count += 1;
        let due = self.last_report_ns.is_none_or(|last| now_ns.saturating_sub(last) >= DECODE_REPORT_PERIOD_NS);
        due.then(|| {
            self.last_report_ns = Some(now_ns);
            self.count
        })
    }
}

impl Node {
    /// Opens the zenoh session, declares the node's liveliness token and starts its watchdog.
    pub fn new(options: NodeOptions) -> Result<Self, NodeError> {
        let NodeOptions { name, mut transport, clock, use_sim_time, faults: initial_faults, fault_injection } = options;
        let clock = if use_sim_time && !clock.is_sim() { Clock::sim(0) } else { clock };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(NodeError::BadName(name));
        }
        let _span = tracing::info_span!("node_start", node = %name).entered();
        transport.validate()?;
        // A password pipe can be read once: before the session (and any retry) needs it.
        transport.load_secrets()?;
        let shm = if transport.shared_memory {
            // Segments of killed processes stay in /dev/shm; reclaim them before adding ours.
            zenoh::shm::cleanup_orphaned_shm_segments();
            match ShmProviderBuilder::default_backend(transport.shm_pool_bytes).wait() {
                Ok(provider) => Some(provider),
                Err(error) => {
                    tracing::warn!(%error, "shared memory unavailable, large messages will be copied");
                    None
                }
            }
        } else {
            None
        };
        let session = transport.open()?;
        let prefix = transport.prefix.clone();
        let host = hostname();
        let token_key = keys::liveliness_token(&prefix, &name, &host, std::process::id());
        let liveliness = session
            .liveliness()
            .declare_token(token_key.clone())
            .wait()
            .map_err(|e| NodeError::Declare { what: "liveliness token", key: token_key, reason: e.to_string() })?;
        let events = declare_publisher(&session, &keys::topic_key(&prefix, topics::MONITOR_EVENTS))?;
        let health = declare_publisher(&session, &keys::health_key(&prefix, &name))?;
        let shared = Arc::new(NodeShared {
            events: Mutex::new(EventSink {
                publisher: events,
                message: MonitorEvent { node: name.clone(), ..Default::default() },
                buffer: Vec::with_capacity(256),
            }),
            health: Mutex::new(HealthSink {
                publisher: health,
                message: DiagnosticArray::default(),
                buffer: Vec::with_capacity(1024),
                sequence: 0,
            }),
            name,
            prefix,
            host,
            session,
            clock,
            shm,
            shm_threshold_bytes: transport.shm_threshold_bytes,
            next_entity: AtomicU64::new(1),
            watch: Mutex::new(WatchList::default()),
            statuses: Arc::new(Statuses::default()),
            faults: Arc::new(crate::fault::Faults::default()),
            stopping: AtomicBool::new(false),
            clock_errors: Mutex::new(RateLimited::default()),
        });
        for command in &initial_faults {
            let now = shared
                .faults
                .apply(command)
                .map_err(|e| NodeError::Open(format!("fault from the launch file: {e}")))?;
            tracing::warn!(node = %shared.name, "injected fault (launch file): {now}");
            shared.report(MonitorEvent::KIND_FAULT_INJECTED, command.input.as_deref().unwrap_or(""), 0.0, 0.0, &now);
        }
        let watchdog = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("{}-watchdog", shared.name))
                .spawn(move || watchdog(&shared))
                .map_err(|e| NodeError::Open(format!("cannot start the watchdog thread: {e}")))?
        };
        *shared.statuses.watchdog.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((watchdog.thread().clone(), shared.clock.clone()));
        let fault_subscriber = if fault_injection { Some(listen_for_faults(&shared)?) } else { None };
        let clock_subscriber = if use_sim_time { Some(follow_clock(&shared)?) } else { None };
        tracing::info!(
            node = %shared.name,
            zid = %shared.session.zid(),
            shm = shared.shm.is_some(),
            fault_injection,
            "node up"
        );
        Ok(Self {
            shared,
            watchdog: Some(watchdog),
            _liveliness: liveliness,
            _fault_subscriber: fault_subscriber,
            _clock_subscriber: clock_subscriber,
        })
    }

    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The key-expression prefix of this node's system.
    pub fn prefix(&self) -> &str {
        &self.shared.prefix
    }

    /// Faults injected into this node (see [`crate::fault`]).
    pub fn faults(&self) -> &crate::fault::Faults {
        &self.shared.faults
    }

    pub fn clock(&self) -> &Clock {
        &self.shared.clock
    }

    /// The zenoh session, for tools that need more than typed pub/sub (introspection).
    pub fn session(&self) -> &zenoh::Session {
        &self.shared.session
    }

    pub fn key(&self, topic: &str) -> String {
        keys::topic_key(&self.shared.prefix, topic)
    }

    /// A handle that sets this node's own statuses in its health (see [`crate::health`]).
    pub fn status_handle(&self) -> StatusHandle {
        StatusHandle { statuses: self.shared.statuses.clone() }
    }

    /// Sets one of this node's statuses (WARN or ERROR until set back to OK).
    pub fn set_status(&self, name: &str, level: Level, message: &str) {
        self.status_handle().set(name, level, message);
    }

    /// A typed publisher on `topic`.
    pub fn publisher<T: Message>(&self, topic: &str) -> Result<Publisher<T>, NodeError> {
        Ok(Publisher { out: self.outlet(topic, T::NAME)?, buffer: Vec::new(), shm_sent: 0, _type: PhantomData })
    }

    /// The zenoh publisher, endpoint token and publisher id of a new publisher on `topic`.
    fn outlet(&self, topic: &str, type_name: &str) -> Result<Outlet, NodeError> {
        let key = self.key(topic);
        let inner = declare_publisher(&self.shared.session, &key)?;
        let token = self.endpoint_token(EndpointKind::Publisher, topic, type_name)?;
        let entity = self.shared.next_entity.fetch_add(1, Ordering::Relaxed);
        Ok(Outlet {
            inner,
            _token: Some(token),
            key,
            gid: gid(&self.shared.session, entity),
            sequence: 0,
            shared: self.shared.clone(),
        })
    }

    /// A typed subscriber on `topic`. Call from the thread that will process it: arriving
    /// messages wake that thread (see [`Node::wait_for_input`]).
    pub fn subscriber<T: Message>(&self, topic: &str, options: InputOptions) -> Result<Subscriber<T>, NodeError> {
        let token = self.endpoint_token(EndpointKind::Subscriber, topic, T::NAME)?;
        self.subscribe(topic, options, Some(token))
    }

    /// The health of node `node` (see [`crate::health`]): the latest message only.
    pub fn health_subscriber(&self, node: &str) -> Result<Subscriber<DiagnosticArray>, NodeError> {
        let topic = keys::health_topic(node);
        self.subscribe(&topic, InputOptions::default().capacity(1).policy(OverflowPolicy::DropOldest), None)
    }

    fn subscribe<T: Message>(
        &self,
        topic: &str,
        options: InputOptions,
        token: Option<zenoh::liveliness::LivelinessToken>,
    ) -> Result<Subscriber<T>, NodeError> {
        if let Some(deadline_ms) = options.deadline_ms.filter(|ms| !(ms.is_finite() && *ms >= 1e-3)) {
            return Err(NodeError::BadDeadline { topic: topic.to_string(), deadline_ms });
        }
        let key = self.key(topic);
        let watch = Arc::new(InputWatch::new(topic, options.deadline_ms, self.shared.clock.mono_ns()));
        let (writer, reader) = input_queue::<Incoming>(options.capacity, options.policy);
        let lost = Arc::new(AtomicU64::new(0));
        let writer = CallbackWriter::new(writer, lost.clone());
        let processing_thread = std::thread::current();
        let callback_watch = watch.clone();
        let clock = self.shared.clock.clone();
        let fault = self.shared.faults.register_input(topic);
        let callback_fault = fault.clone();
        let inner = self
            .shared
            .session
            .declare_subscriber(key.clone())
            .callback(move |sample: Sample| {
                // A `delete` carries no message: it is nobody's news (and must not look like one).
                if sample.kind() == SampleKind::Delete {
                    callback_watch.trouble(Trouble::Rejected, clock.mono_ns());
                    return;
                }
                // Injected faults act before anything else: a dropped message never arrived.
                let mut replaced = None;
                if callback_fault.is_active() {
                    match callback_fault.on_arrival(|| sample.payload().to_bytes().into_owned()) {
                        crate::fault::Verdict::Drop => return,
                        crate::fault::Verdict::Deliver(bytes) => replaced = bytes,
                    }
                }
                let (arrival_wall_ns, arrival_mono_ns) = clock.now_and_mono_ns();
                let attachment = sample.attachment().and_then(|a| Attachment::decode(&a.to_bytes()));
                writer.push(Incoming { sample, arrival_mono_ns, arrival_wall_ns, attachment, replaced });
                processing_thread.unpark();
            })
            .wait()
            .map_err(|e| NodeError::Declare { what: "subscriber", key: key.clone(), reason: e.to_string() })?;
        self.shared.watch.lock().unwrap_or_else(|p| p.into_inner()).inputs.push(watch.clone());
        self.shared.wake_watchdog();
        Ok(Subscriber {
            _inner: inner,
            _token: token,
            key,
            topic: topic.to_string(),
            reader,
            message: T::default(),
            current: None,
            gathered: Vec::new(),
            stats: InputStats::default(),
            reported_drops: 0,
            troubling_drops: 0,
            policy: options.policy,
            decode_reports: RateLimited::default(),
            lost,
            shared: self.shared.clone(),
            watch,
            fault,
            held: None,
        })
    }

    /// Watches `topic` for gaps longer than `deadline` without decoding anything (any type):
    /// breaches are in the node's health and reported as events like an input's. The type is
    /// not known here, so nothing is decoded: a sample counts as fresh when it is a `put` that
    /// starts with the little-endian CDR header (what every Reflex and ROS 2 publisher sends);
    /// anything else counts as undecodable. With access control only the topic's declared
    /// publishers can write it. Kept while the handle
    /// lives. Do not watch large topics (images) this way: each sample is reassembled here.
    pub fn watch_deadline(&self, topic: &str, deadline: Duration) -> Result<DeadlineWatch, NodeError> {
        let key = self.key(topic);
        let watch = Arc::new(InputWatch::new(topic, Some(deadline.as_secs_f64() * 1e3), self.shared.clock.mono_ns()));
        let (callback_watch, clock) = (watch.clone(), self.shared.clock.clone());
        let subscriber = self
            .shared
            .session
            .declare_subscriber(key.clone())
            .callback(move |sample: Sample| {
                let payload = sample.payload();
                let looks_like_cdr = sample.kind() == SampleKind::Put
                    && payload.len() >= 4
                    && payload.slices().next().is_some_and(|first| first.starts_with(&[0, 1]));
                if looks_like_cdr {
                    callback_watch.fresh(clock.mono_ns());
                } else {
                    callback_watch.trouble(Trouble::Undecodable, clock.mono_ns());
                }
            })
            .wait()
            .map_err(|e| NodeError::Declare { what: "deadline watch", key, reason: e.to_string() })?;
        self.shared.watch.lock().unwrap_or_else(|p| p.into_inner()).inputs.push(watch.clone());
        self.shared.wake_watchdog();
        Ok(DeadlineWatch { _subscriber: subscriber, _watch: watch })
    }

    /// Announces a publisher or subscriber for `reflex topic list` and `echo`.
    fn endpoint_token(
        &self,
        kind: EndpointKind,
        topic: &str,
        type_name: &str,
    ) -> Result<zenoh::liveliness::LivelinessToken, NodeError> {
        let key = keys::endpoint_token(&self.shared.prefix, kind, &self.shared.name, topic, type_name);
        self.shared.session.liveliness().declare_token(key.clone()).wait().map_err(|e| NodeError::Declare {
            what: "endpoint token",
            key,
            reason: e.to_string(),
        })
    }

    /// Declares an execution budget for a callback named `name`; the watchdog reports a run
    /// that exceeds it while it is still running.
    pub fn budget(&self, name: &str, limit: Duration) -> Budget {
        let watch = Arc::new(BudgetWatch {
            name: name.to_string(),
            limit_ns: i64::try_from(limit.as_nanos()).unwrap_or(i64::MAX),
            running_since_ns: AtomicI64::new(0),
            reported: AtomicBool::new(false),
            last_overrun_ns: AtomicI64::new(i64::MIN),
        });
        self.shared.watch.lock().unwrap_or_else(|p| p.into_inner()).budgets.push(watch.clone());
        self.shared.wake_watchdog();
        Budget { watch, shared: self.shared.clone(), runs: 0, overruns: 0, run_time: LatencyHistogram::new() }
    }

    /// Parks the calling thread until a subscriber created on it receives a message, or
    /// `timeout` passes. Spurious wake-ups are possible; callers loop over `recv`.
    pub fn wait_for_input(&self, timeout: Duration) {
        std::thread::park_timeout(timeout);
    }

    /// Publishes a monitor event from this node.
    pub fn report(&self, kind: u8, topic: &str, value_ms: f64, limit_ms: f64, detail: &str) {
        self.shared.report(kind, topic, value_ms, limit_ms, detail);
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::Release);
        self.shared.wake_watchdog();
        if let Some(watchdog) = self.watchdog.take() {
            let _ = watchdog.join();
        }
    }
}

impl NodeShared {
    fn wake_watchdog(&self) {
        self.statuses.wake_watchdog();
    }

    fn report(&self, kind: u8, topic: &str, value_ms: f64, limit_ms: f64, detail: &str) {
        let stamp = self.clock.now();
        let mut sink = self.events.lock().unwrap_or_else(|p| p.into_inner());
        let EventSink { publisher, message, buffer } = &mut *sink;
        message.header.stamp = stamp;
        message.kind = kind;
        message.topic.clear();
        message.topic.push_str(topic);
        message.value_ms = value_ms;
        message.limit_ms = limit_ms;
        message.detail.clear();
        message.detail.push_str(detail);
        encode_into(&*message, buffer);
        // Out first, log after: a log line can take longer than the hop to the monitor.
        if let Err(error) = publisher.put(buffer.as_slice()).wait() {
            tracing::error!(%error, "cannot publish monitor event");
        }
        drop(sink);
        tracing::warn!(node = %self.name, kind = event_kind_name(kind), topic, value_ms, limit_ms, detail, "monitor event");
    }

    /// The node's health now: one line per input, budget and status (see [`crate::health`]).
    fn health_entries(&self, now_ns: i64) -> Vec<health::Entry> {
        let recent = |at: i64| at != i64::MIN && now_ns.saturating_sub(at) <= TROUBLE_HOLD.as_nanos() as i64;
        let mut entries = Vec::new();
        {
            let watch = self.watch.lock().unwrap_or_else(|p| p.into_inner());
            // Internal inputs (other nodes' health) are not this node's news.
            for input in watch.inputs.iter().filter(|i| !i.topic.starts_with("/_")) {
                let last = input.last_arrival_ns.load(Ordering::Relaxed);
                let since_ms = now_ns.saturating_sub(last) as f64 / 1e6;
                let trouble_at = input.last_trouble_ns.load(Ordering::Relaxed);
                let (level, message) = if input.missed.load(Ordering::Relaxed) {
                    (
                        Level::Error,
                        format!("no message for {since_ms:.0} ms (deadline {:.0} ms)", input.deadline_ns as f64 / 1e6),
                    )
                } else if recent(trouble_at) {
                    let what = match input.trouble_kind.load(Ordering::Relaxed) {
                        k if k == Trouble::Undecodable as u8 => "undecodable messages",
                        k if k == Trouble::Dropped as u8 => "messages dropped or lost",
                        _ => "messages rejected",
                    };
                    (Level::Warn, format!("{what} ({} so far)", input.troubles.load(Ordering::Relaxed)))
                } else {
                    (Level::Ok, "ok".to_string())
                };
                let mut values = vec![("since_last_ms".to_string(), format!("{since_ms:.1}"))];
                if input.deadline_ns > 0 {
                    values.push(("deadline_ms".into(), format!("{:.1}", input.deadline_ns as f64 / 1e6)));
                }
                entries.push(health::Entry { name: format!("input {}", input.topic), level, message, values });
            }
            for budget in &watch.budgets {
                let running = budget.running_since_ns.load(Ordering::Acquire);
                let over_now = running != 0 && now_ns.saturating_sub(running) > budget.limit_ns;
                let (level, message) = if over_now || recent(budget.last_overrun_ns.load(Ordering::Relaxed)) {
                    (Level::Warn, format!("over its budget of {:.1} ms", budget.limit_ns as f64 / 1e6))
                } else {
                    (Level::Ok, "ok".to_string())
                };
                entries.push(health::Entry { name: format!("budget {}", budget.name), level, message, values: vec![] });
            }
        }
        if let Some(active) = self.faults.active() {
            entries.push(health::Entry { name: "faults".into(), level: Level::Warn, message: active, values: vec![] });
        }
        for (name, level, message) in self.statuses.snapshot() {
            entries.push(health::Entry { name, level, message, values: vec![] });
        }
        entries
    }

    fn publish_health(&self, now_ns: i64) {
        let entries = self.health_entries(now_ns);
        let stamp = self.clock.now();
        let mut sink = self.health.lock().unwrap_or_else(|p| p.into_inner());
        let HealthSink { publisher, message, buffer, sequence } = &mut *sink;
        *sequence += 1;
        health::compose(&self.name, &self.host, std::process::id(), *sequence, &entries, message);
        message.header.stamp = stamp;
        encode_into(&*message, buffer);
        if let Err(error) = publisher.put(buffer.as_slice()).wait() {
            tracing::error!(%error, "cannot publish the node's health");
        }
    }
}

pub fn event_kind_name(kind: u8) -> &'static str {
    match kind {
        MonitorEvent::KIND_DEADLINE_MISSED => "deadline_missed",
        MonitorEvent::KIND_BUDGET_OVERRUN => "budget_overrun",
        MonitorEvent::KIND_QUEUE_DROP => "queue_drop",
        MonitorEvent::KIND_DECODE_ERROR => "decode_error",
        MonitorEvent::KIND_CALLBACK_FAILED => "callback_failed",
        MonitorEvent::KIND_RECOVERED => "recovered",
        MonitorEvent::KIND_FAULT_INJECTED => "fault_injected",
        MonitorEvent::KIND_INPUT_REJECTED => "input_rejected",
        _ => "unknown",
    }
}

/// Takes fault commands at run time on the node's fault key (only when the launch enables it).
fn listen_for_faults(shared: &Arc<NodeShared>) -> Result<zenoh::pubsub::Subscriber<()>, NodeError> {
    let fault_key = keys::fault_key(&shared.prefix, &shared.name);
    let weak = Arc::downgrade(shared);
    tracing::warn!(node = %shared.name, key = %fault_key, "fault injection is on");
    shared
        .session
        .declare_subscriber(fault_key.clone())
        .callback(move |sample| {
            let Some(shared) = weak.upgrade() else { return };
            if sample.kind() == SampleKind::Delete {
                return;
            }
            match shared.faults.apply_json(&sample.payload().to_bytes()) {
                Ok(now) => {
                    tracing::warn!(node = %shared.name, "injected fault: {now}");
                    shared.report(MonitorEvent::KIND_FAULT_INJECTED, "", 0.0, 0.0, &now);
                    shared.wake_watchdog();
                }
                Err(error) => tracing::warn!(node = %shared.name, "fault command refused: {error}"),
            }
        })
        .wait()
        .map_err(|e| NodeError::Declare { what: "fault subscriber", key: fault_key, reason: e.to_string() })
}

/// Moves the node's simulation clock to every `rosgraph_msgs/Clock` on `/clock` (never back:
/// a late or repeated message is harmless). Messages that do not decode are counted and
/// reported at most once a second.
fn follow_clock(shared: &Arc<NodeShared>) -> Result<zenoh::pubsub::Subscriber<()>, NodeError> {
    let key = keys::topic_key(&shared.prefix, topics::CLOCK);
    let weak = Arc::downgrade(shared);
    shared
        .session
        .declare_subscriber(key.clone())
        .callback(move |sample| {
            let Some(shared) = weak.upgrade() else { return };
            if sample.kind() == SampleKind::Delete {
                return;
            }
            match reflex_msgs::decode::<reflex_msgs::rosgraph_msgs::Clock>(&sample.payload().to_bytes()) {
                Ok(message) => shared.clock.set_ns(message.clock.as_nanos()),
                Err(error) => {
                    let due = shared.clock_errors.lock().unwrap_or_else(|p| p.into_inner()).count(monotonic_now());
                    if let Some(count) = due {
                        let detail = format!("{error} ({count} so far)");
                        shared.report(MonitorEvent::KIND_DECODE_ERROR, topics::CLOCK, count as f64, 0.0, &detail)
                    }
                }
            }
        })
        .wait()
        .map_err(|e| NodeError::Declare { what: "clock subscriber", key, reason: e.to_string() })
}

/// Wall-independent time for rate limits on the network thread (the node's clock may be a
/// simulation clock that stands still).
fn monotonic_now() -> i64 {
    crate::clock::monotonic_ns()
}

fn declare_publisher(session: &zenoh::Session, key: &str) -> Result<zenoh::pubsub::Publisher<'static>, NodeError> {
    session
        .declare_publisher(key.to_string())
        // Never block the publishing thread on a slow link: a full queue drops, and the
        // subscriber's sequence-gap count shows it.
        .congestion_control(CongestionControl::Drop)
        // Send at once instead of waiting to batch: latency over throughput.
        .express(true)
        .wait()
        .map_err(|e| NodeError::Declare { what: "publisher", key: key.to_string(), reason: e.to_string() })
}

/// A 16-byte publisher id: the session's zenoh id with the entity number folded in.
fn gid(session: &zenoh::Session, entity: u64) -> [u8; 16] {
    let mut gid = session.zid().to_le_bytes();
    for (byte, entity_byte) in gid.iter_mut().zip(entity.to_le_bytes()) {
        *byte ^= entity_byte;
    }
    gid
}

/// This host's name, as nodes put it in their liveliness tokens.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// A typed publisher. `publish` reuses one encode buffer and, for large messages, encodes
/// straight into a shared-memory chunk.
pub struct Publisher<T: Message> {
    out: Outlet,
    buffer: Vec<u8>,
    shm_sent: u64,
    _type: PhantomData<fn(&T)>,
}

/// What the typed and raw publishers share: the zenoh publisher, the endpoint token, and the
/// attachment (sequence number, send time, publisher id) put on every message.
struct Outlet {
    inner: zenoh::pubsub::Publisher<'static>,
    _token: Option<zenoh::liveliness::LivelinessToken>,
    key: String,
    gid: [u8; 16],
    sequence: i64,
    shared: Arc<NodeShared>,
}

impl Outlet {
    fn put(&mut self, payload: ZBytes) -> Result<(), NodeError> {
        self.sequence = self.sequence.wrapping_add(1);
        let attachment =
            Attachment { sequence: self.sequence, source_timestamp_ns: self.shared.clock.now_ns(), gid: self.gid }
                .encode();
        self.inner
            .put(payload)
            .attachment(attachment)
            .wait()
            .map_err(|e| NodeError::Publish { key: self.key.clone(), reason: e.to_string() })
    }

    fn has_subscribers(&self) -> bool {
        self.inner.matching_status().wait().map(|status| status.matching()).unwrap_or(false)
    }
}

impl<T: Message> Publisher<T> {
    pub fn publish(&mut self, message: &T) -> Result<(), NodeError> {
        let payload = self.payload(message);
        self.out.put(payload)
    }

    fn payload(&mut self, message: &T) -> ZBytes {
        if let Some(shm) = &self.out.shared.shm {
            let size = cdr::calc_serialized_size(message) as usize;
            if size >= self.out.shared.shm_threshold_bytes {
                // Reclaim chunks the subscribers have released before allocating, so the pool
                // hands out recently used (cache-warm) memory instead of walking the whole
                // segment; the list of chunks in flight is short. Never blocks: on failure the
                // message takes the copying path below.
                shm.garbage_collect();
                if let Ok(mut chunk) = shm.alloc(size).with_policy::<GarbageCollect>().wait() {
                    let mut writer: &mut [u8] = &mut chunk[..];
                    if cdr::serialize_into::<_, _, _, cdr::CdrLe>(&mut writer, message, cdr::Infinite).is_ok() {
                        self.shm_sent += 1;
                        return chunk.into();
                    }
                }
            }
        }
        encode_into(message, &mut self.buffer);
        ZBytes::from(self.buffer.as_slice())
    }

    pub fn key(&self) -> &str {
        &self.out.key
    }

    /// Whether any subscriber (in this process or another) currently matches this topic.
    pub fn has_subscribers(&self) -> bool {
        self.out.has_subscribers()
    }

    /// Waits up to `timeout` for a subscriber to appear; returns whether one did.
    pub fn wait_for_subscribers(&self, timeout: Duration) -> bool {
        let start = std::time::Instant::now();
        while !self.has_subscribers() {
            if start.elapsed() >= timeout {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }

    /// Messages published so far.
    pub fn sent(&self) -> u64 {
        self.out.sequence as u64
    }

    /// Of those, messages written into shared memory.
    pub fn sent_through_shm(&self) -> u64 {
        self.shm_sent
    }
}

/// What the network callback hands to the processing thread.
struct Incoming {
    sample: Sample,
    /// Bytes an injected fault put in place of the payload (a frozen or corrupted copy).
    replaced: Option<Vec<u8>>,
    /// Arrival on the duration clock (deadlines, queueing, freshness) ...
    arrival_mono_ns: i64,
    /// ... and on the stamp clock (transit from the publisher's send time).
    arrival_wall_ns: i64,
    /// Decoded once, in the callback (the sequence check needs it there).
    attachment: Option<Attachment>,
}

/// The queue's writing half, callable from zenoh's `Fn` callback, and the per-publisher
/// sequence check that counts messages lost before they reached us.
///
/// zenoh runs a subscriber's callback on its receive tasks: serially for one link, but calls
/// from two links may overlap. A mutex serializes them; the guarded section is one ring push,
/// which never waits for the reader. (A spin flag did this before: under real-time priorities a
/// spinner could starve the holder on its core, and a panic while holding it left the input
/// dead; a poisoned mutex is simply taken over.)
struct CallbackWriter {
    state: Mutex<CallbackState>,
    /// Messages missing from a publisher's sequence (read by the subscriber for its stats).
    lost: Arc<AtomicU64>,
}

struct CallbackState {
    writer: QueueWriter<Incoming>,
    /// Last (publisher id, sequence number) seen; only one publisher's stream is checked at a
    /// time, interleaved publishers restart the check.
    last: Option<([u8; 16], i64)>,
}

impl CallbackWriter {
    fn new(writer: QueueWriter<Incoming>, lost: Arc<AtomicU64>) -> Self {
        Self { state: Mutex::new(CallbackState { writer, last: None }), lost }
    }

    fn push(&self, item: Incoming) {
        let publisher = item.attachment.map(|a| (a.gid, a.sequence));
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let (Some((gid, sequence)), Some((last_gid, last_sequence))) = (publisher, state.last) {
            // Sequences come from the network: no arithmetic on them may overflow.
            // A jump beyond MAX_COUNTED_GAP is a lie or a reset, not that many lost messages.
            let gap = sequence.saturating_sub(last_sequence).saturating_sub(1).min(MAX_COUNTED_GAP);
            if gid == last_gid && gap > 0 {
                // Relaxed: a counter read for reporting only. Saturating: fetch_add would wrap.
                let _ = self
                    .lost
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| Some(n.saturating_add(gap as u64)));
            }
        }
        if publisher.is_some() {
            state.last = publisher;
        }
        state.writer.push(item);
    }
}

/// A message handed out by [`Subscriber::recv`] (`M` = `&T`) or [`Subscriber::recv_view`]
/// (`M` = a borrowed view), with its timing.
pub struct Received<M> {
    pub message: M,
    /// Now minus `header.stamp` (capture time) on the stamp clock: the end-to-end age so far.
    /// `None` when the type has no header or the stamp is zero.
    pub age_ns: Option<i64>,
    /// False when the wall clock stepped within [`STEP_SETTLE`]: the stamp may be from before
    /// the step, and its age means nothing.
    pub age_trusted: bool,
    /// When the message arrived at this node, on the duration clock (monotonic or sim).
    pub arrival_mono_ns: i64,
    /// Arrival at this node minus the publisher's send time: the transport hop.
    pub transit_ns: Option<i64>,
    pub sequence: Option<i64>,
    /// The publisher's GID (from the attachment): which publisher the sequence belongs to.
    pub publisher: Option<[u8; 16]>,
    /// The publisher's clock when it published (from the attachment).
    pub source_timestamp_ns: Option<i64>,
    /// Whether the payload came through shared memory rather than a copy.
    pub shared_memory: bool,
}

impl<M> Received<M> {
    /// The age since capture when it can be trusted (a stamp, and no recent clock step).
    pub fn trusted_age_ns(&self) -> Option<i64> {
        self.age_ns.filter(|_| self.age_trusted)
    }
}

/// A typed subscriber. `recv` decodes into one message it owns and reuses.
pub struct Subscriber<T: Message> {
    _inner: zenoh::pubsub::Subscriber<()>,
    _token: Option<zenoh::liveliness::LivelinessToken>,
    key: String,
    topic: String,
    reader: QueueReader<Incoming>,
    message: T,
    /// The sample a view from `recv_view` borrows from.
    current: Option<Incoming>,
    gathered: Vec<u8>,
    stats: InputStats,
    reported_drops: u64,
    /// Drops that are trouble (see `report_drops`), last seen.
    troubling_drops: u64,
    policy: OverflowPolicy,
    decode_reports: RateLimited,
    /// Sequence gaps counted by the callback.
    lost: Arc<AtomicU64>,
    shared: Arc<NodeShared>,
    watch: Arc<InputWatch>,
    /// Injected faults of this input, and a message an injected delay holds back.
    fault: Arc<crate::fault::InputFault>,
    held: Option<Incoming>,
}

impl<T: Message> Subscriber<T> {
    /// The next message, decoded, or `None` when there is none to take now. Messages that
    /// fail to decode are counted, reported (at most once a second, with the count) and
    /// skipped; after [`MAX_SKIPPED_PER_RECV`] of them in one call it returns `None`, so a
    /// flood of garbage cannot hold the caller here.
    pub fn recv(&mut self) -> Option<Received<&T>> {
        for _ in 0..MAX_SKIPPED_PER_RECV {
            self.report_drops();
            let incoming = self.next_incoming()?;
            let payload = incoming.sample.payload();
            let shared_memory = payload.as_shm().is_some();
            let result = match &incoming.replaced {
                Some(bytes) => decode_into(bytes, &mut self.message),
                None => decode_payload(payload, &mut self.message),
            };
            if let Err(error) = result {
                self.decode_failed(&error);
                continue;
            }
            self.watch.fresh(incoming.arrival_mono_ns);
            let stamp = self.message.header().map(|h: &Header| h.stamp);
            return Some(received(&self.message, &incoming, stamp, shared_memory, &self.shared.clock, &mut self.stats));
        }
        None
    }

    /// The next message decoded as a borrowed view `V` (e.g. `sensor_msgs::ImageView`) that
    /// reads the payload where it lies: for a shared-memory payload, in the shared segment, so
    /// a frame is never copied. The payload stays held until the next call. A message that
    /// fails to decode is counted, reported, and returned as `Err`.
    pub fn recv_view<'s, V>(&'s mut self) -> Option<Result<Received<V>, DecodeError>>
    where
        V: serde::Deserialize<'s> + Stamped,
    {
        self.report_drops();
        let incoming = self.next_incoming()?;
        // Split borrows: the view borrows `current`/`gathered` while stats are updated.
        let Self { current, gathered, stats, shared, topic, watch, decode_reports, .. } = self;
        let incoming: &'s Incoming = current.insert(incoming);
        let payload = incoming.sample.payload();
        let shared_memory = payload.as_shm().is_some();
        let bytes: &'s [u8] = match (&incoming.replaced, payload.to_bytes()) {
            (Some(replaced), _) => replaced.as_slice(),
            (None, Cow::Borrowed(bytes)) => bytes,
            (None, Cow::Owned(bytes)) => {
                // A fragmented payload (large message over a network link) is gathered once.
                *gathered = bytes;
                gathered.as_slice()
            }
        };
        match reflex_msgs::decode::<V>(bytes) {
            Ok(view) => {
                watch.fresh(incoming.arrival_mono_ns);
                let stamp = Some(view.stamp());
                Some(Ok(received(view, incoming, stamp, shared_memory, &shared.clock, stats)))
            }
            Err(error) => {
                decode_failed(shared, watch, decode_reports, stats, topic, &error);
                Some(Err(error))
            }
        }
    }

    fn decode_failed(&mut self, error: &DecodeError) {
        decode_failed(&self.shared, &self.watch, &mut self.decode_reports, &mut self.stats, &self.topic, error);
    }

    /// Marks a message this node took but refused (a value out of range, a stamp from the
    /// future): counted with the input's troubles, so the node's health shows it.
    pub fn reject(&mut self) {
        self.watch.trouble(Trouble::Rejected, self.shared.clock.mono_ns());
    }

    /// The next message the node may take: the queue's next, unless an injected delay still
    /// holds it back (the node's loop polls again; `recv` returns `None` meanwhile).
    fn next_incoming(&mut self) -> Option<Incoming> {
        let incoming = match self.held.take() {
            Some(held) => held,
            None => self.reader.pop()?,
        };
        let delay_ns = self.fault.delay().as_nanos() as i64;
        if delay_ns > 0 && incoming.arrival_mono_ns.saturating_add(delay_ns) > self.shared.clock.mono_ns() {
            self.held = Some(incoming);
            return None;
        }
        Some(incoming)
    }

    /// Reports messages lost on this input: dropped by the queue's overflow policy, or missing
    /// from the publisher's sequence (lost before arrival, e.g. a congested link). One event per
    /// doubling of the count, not one per message.
    fn report_drops(&mut self) {
        self.stats.dropped = self.reader.dropped();
        self.stats.lost_in_transport = self.lost.load(Ordering::Relaxed);
        // Counts from the network: saturating, never a panic or a wrap that ends the reports.
        let lost = self.stats.dropped.saturating_add(self.stats.lost_in_transport);
        // Drops by a latest-wins queue are its policy, not trouble; messages lost before
        // arrival, or a backlog that overflows, are.
        let troubling = self.stats.lost_in_transport.saturating_add(if self.policy == OverflowPolicy::DropNewest {
            self.stats.dropped
        } else {
            0
        });
        if troubling > self.troubling_drops {
            self.watch.trouble(Trouble::Dropped, self.shared.clock.mono_ns());
            self.troubling_drops = troubling;
        }
        if lost >= self.reported_drops.saturating_mul(2).max(self.reported_drops.saturating_add(1)) {
            let detail = format!(
                "{} dropped by the input queue, {} lost before arrival",
                self.stats.dropped, self.stats.lost_in_transport
            );
            self.shared.report(MonitorEvent::KIND_QUEUE_DROP, &self.topic, lost as f64, 0.0, &detail);
            self.reported_drops = lost;
        }
    }

    /// Messages waiting in the queue.
    pub fn pending(&self) -> usize {
        self.reader.len()
    }

    pub fn stats(&self) -> &InputStats {
        &self.stats
    }

    /// Messages dropped by the queue's overflow policy.
    pub fn dropped(&self) -> u64 {
        self.reader.dropped()
    }

    pub fn key(&self) -> &str {
        &self.key
    }
}

/// Counts an undecodable message and reports it, at most once a period with the count.
fn decode_failed(
    shared: &NodeShared,
    watch: &InputWatch,
    reports: &mut RateLimited,
    stats: &mut InputStats,
    topic: &str,
    error: &DecodeError,
) {
    stats.decode_errors += 1;
    let now = shared.clock.mono_ns();
    watch.trouble(Trouble::Undecodable, now);
    if let Some(count) = reports.count(monotonic_now()) {
        // Formatting allocates, but only on this error path, and at most once a second.
        let detail = format!("{error} ({count} so far)");
        shared.report(MonitorEvent::KIND_DECODE_ERROR, topic, count as f64, 0.0, &detail);
    }
}

/// Timing bookkeeping shared by `recv` and `recv_view`.
fn received<M>(
    message: M,
    incoming: &Incoming,
    stamp: Option<Time>,
    shared_memory: bool,
    clock: &Clock,
    stats: &mut InputStats,
) -> Received<M> {
    let (now, now_mono) = clock.now_and_mono_ns();
    let attachment = incoming.attachment;
    let transit_ns = attachment.map(|a| incoming.arrival_wall_ns.saturating_sub(a.source_timestamp_ns));
    let age_ns = stamp.filter(|s| !s.is_zero()).map(|s| now.saturating_sub(s.as_nanos()));
    let age_trusted = !clock.stepped_within(STEP_SETTLE);
    stats.record(
        age_ns.filter(|_| age_trusted),
        transit_ns,
        now_mono.saturating_sub(incoming.arrival_mono_ns),
        shared_memory,
    );
    Received {
        message,
        age_ns,
        age_trusted,
        arrival_mono_ns: incoming.arrival_mono_ns,
        transit_ns,
        sequence: attachment.map(|a| a.sequence),
        publisher: attachment.map(|a| a.gid),
        source_timestamp_ns: attachment.map(|a| a.source_timestamp_ns),
        shared_memory,
    }
}

fn decode_payload<T: Message>(payload: &ZBytes, place: &mut T) -> Result<(), DecodeError> {
    // Contiguous payloads (shared memory, and anything that arrived in one piece) are read in
    // place; a fragmented one is gathered into one buffer first.
    decode_into(&payload.to_bytes(), place)
}

/// A topic watched for deadline breaches (see [`Node::watch_deadline`]).
pub struct DeadlineWatch {
    _subscriber: zenoh::pubsub::Subscriber<()>,
    _watch: Arc<InputWatch>,
}

/// What went wrong with an input's messages lately (for its line in the node's health).
#[derive(Clone, Copy)]
enum Trouble {
    Undecodable = 1,
    Dropped = 2,
    Rejected = 3,
}

struct InputWatch {
    topic: String,
    /// 0: no deadline.
    deadline_ns: i64,
    /// Duration-clock arrival of the last message that decoded (armed at subscription).
    last_arrival_ns: AtomicI64,
    missed: AtomicBool,
    /// Duration-clock time of the last undecodable, rejected or dropped message (`i64::MIN`:
    /// none), what it was, and how many there were in all.
    last_trouble_ns: AtomicI64,
    trouble_kind: AtomicU8,
    troubles: AtomicU64,
}

impl InputWatch {
    fn new(topic: &str, deadline_ms: Option<f64>, now_ns: i64) -> Self {
        Self {
            topic: topic.to_string(),
            deadline_ns: deadline_ms.map_or(0, |ms| (ms * 1e6).clamp(0.0, i64::MAX as f64) as i64),
            // The deadline is armed from the moment of subscription, not from the first message.
            last_arrival_ns: AtomicI64::new(now_ns),
            missed: AtomicBool::new(false),
            last_trouble_ns: AtomicI64::new(i64::MIN),
            trouble_kind: AtomicU8::new(0),
            troubles: AtomicU64::new(0),
        }
    }

    /// A message that counts arrived at `at_ns`.
    fn fresh(&self, at_ns: i64) {
        // Relaxed: the watchdog only compares times; no other data hangs off this store.
        self.last_arrival_ns.fetch_max(at_ns, Ordering::Relaxed);
    }

    fn trouble(&self, kind: Trouble, at_ns: i64) {
        self.trouble_kind.store(kind as u8, Ordering::Relaxed);
        self.troubles.fetch_add(1, Ordering::Relaxed);
        self.last_trouble_ns.store(at_ns, Ordering::Relaxed);
    }
}

struct BudgetWatch {
    name: String,
    limit_ns: i64,
    /// Start of the run in progress (duration clock); 0 when idle.
    running_since_ns: AtomicI64,
    /// The run in progress was already reported.
    reported: AtomicBool,
    /// When the last overrun ended or was seen (`i64::MIN`: never).
    last_overrun_ns: AtomicI64,
}

/// An execution budget for one callback (see [`Node::budget`]).
pub struct Budget {
    watch: Arc<BudgetWatch>,
    shared: Arc<NodeShared>,
    runs: u64,
    overruns: u64,
    run_time: LatencyHistogram,
}

impl Budget {
    /// Runs `callback`, measuring it against the budget.
    pub fn run<R>(&mut self, callback: impl FnOnce() -> R) -> R {
        let start = self.shared.clock.mono_ns();
        self.watch.reported.store(false, Ordering::Relaxed);
        // Release: the watchdog that reads a non-zero start also sees `reported` cleared.
        self.watch.running_since_ns.store(start.max(1), Ordering::Release);
        let result = callback();
        self.watch.running_since_ns.store(0, Ordering::Release);
        let end = self.shared.clock.mono_ns();
        let elapsed = end.saturating_sub(start);
        self.runs += 1;
        self.run_time.record_ns(elapsed);
        if elapsed > self.watch.limit_ns {
            self.overruns += 1;
            self.watch.last_overrun_ns.store(end, Ordering::Relaxed);
            // The watchdog may already have reported this run while it was still going.
            if !self.watch.reported.swap(true, Ordering::AcqRel) {
                self.shared.report(
                    MonitorEvent::KIND_BUDGET_OVERRUN,
                    &self.watch.name,
                    elapsed as f64 / 1e6,
                    self.watch.limit_ns as f64 / 1e6,
                    "callback exceeded its budget",
                );
            }
        }
        result
    }

    pub fn runs(&self) -> u64 {
        self.runs
    }

    pub fn overruns(&self) -> u64 {
        self.overruns
    }

    pub fn run_time(&self) -> &LatencyHistogram {
        &self.run_time
    }
}

/// Checks deadlines and running budgets at the moment they expire, on the node's duration
/// clock, and publishes the node's health every [`HEALTH_PERIOD`] and at once on a change.
fn watchdog(shared: &NodeShared) {
    let period = HEALTH_PERIOD.as_nanos() as i64;
    let mut next_health = i64::MIN;
    let mut seen_status_changes = u64::MAX;
    let mut previous_trouble = false;
    while !shared.stopping.load(Ordering::Acquire) {
        // Reading the stamp clock too is how a step of the wall clock gets noticed.
        let (_, now) = shared.clock.now_and_mono_ns();
        let mut next_check = now.saturating_add(WATCHDOG_BACKSTOP.as_nanos() as i64);
        let mut changed = false;
        let mut trouble = false;
        {
            let mut watch = shared.watch.lock().unwrap_or_else(|p| p.into_inner());
            // Entries only the list still holds belong to dropped subscribers and budgets.
            watch.inputs.retain(|input| Arc::strong_count(input) > 1);
            watch.budgets.retain(|budget| Arc::strong_count(budget) > 1);
            for input in &watch.inputs {
                let trouble_at = input.last_trouble_ns.load(Ordering::Relaxed);
                if trouble_at != i64::MIN && now.saturating_sub(trouble_at) <= TROUBLE_HOLD.as_nanos() as i64 {
                    trouble = true;
                }
                if input.deadline_ns == 0 {
                    continue;
                }
                let last = input.last_arrival_ns.load(Ordering::Relaxed);
                let expiry = last.saturating_add(input.deadline_ns);
                if now >= expiry {
                    if !input.missed.swap(true, Ordering::Relaxed) {
                        changed = true;
                        shared.report(
                            MonitorEvent::KIND_DEADLINE_MISSED,
                            &input.topic,
                            now.saturating_sub(last) as f64 / 1e6,
                            input.deadline_ns as f64 / 1e6,
                            "no message within the deadline",
                        );
                    }
                } else {
                    if input.missed.swap(false, Ordering::Relaxed) {
                        changed = true;
                        shared.report(
                            MonitorEvent::KIND_RECOVERED,
                            &input.topic,
                            0.0,
                            input.deadline_ns as f64 / 1e6,
                            "messages arrive again",
                        );
                    }
                    next_check = next_check.min(expiry);
                }
            }
            for budget in &watch.budgets {
                let overrun_at = budget.last_overrun_ns.load(Ordering::Relaxed);
                if overrun_at != i64::MIN && now.saturating_sub(overrun_at) <= TROUBLE_HOLD.as_nanos() as i64 {
                    trouble = true;
                }
                // Acquire pairs with the Release in `Budget::run`.
                let since = budget.running_since_ns.load(Ordering::Acquire);
                if since == 0 {
                    continue;
                }
                let expiry = since.saturating_add(budget.limit_ns);
                if now > expiry {
                    if !budget.reported.swap(true, Ordering::AcqRel) {
                        changed = true;
                        budget.last_overrun_ns.store(now, Ordering::Relaxed);
                        shared.report(
                            MonitorEvent::KIND_BUDGET_OVERRUN,
                            &budget.name,
                            now.saturating_sub(since) as f64 / 1e6,
                            budget.limit_ns as f64 / 1e6,
                            "callback still running past its budget",
                        );
                    }
                } else {
                    next_check = next_check.min(expiry.saturating_add(1));
                }
            }
        }
        let status_changes = shared.statuses.changes.load(Ordering::Acquire);
        if status_changes != seen_status_changes {
            seen_status_changes = status_changes;
            changed = true;
        }
        if trouble && !previous_trouble {
            changed = true;
        }
        previous_trouble = trouble;
        if changed || now >= next_health {
            shared.publish_health(now);
            next_health = now.saturating_add(period);
        }
        next_check = next_check.min(next_health);
        if shared.clock.is_sim() {
            shared.clock.sleep_until(next_check, WATCHDOG_BACKSTOP);
        } else {
            let left = next_check.saturating_sub(shared.clock.mono_ns());
            if left > 0 {
                std::thread::park_timeout(Duration::from_nanos(left as u64));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Already-encoded CDR, for the recorder and replay: the same keys, attachments, shared memory
// and endpoint tokens as the typed publishers and subscribers, without decoding.

/// Publishes CDR bytes the caller vouches are a message of the type it was declared with.
pub struct RawPublisher {
    out: Outlet,
}

/// One received message: its CDR bytes, the publisher's attachment and the arrival time.
pub struct RawSample<'a> {
    pub key: &'a str,
    pub payload: &'a [u8],
    pub attachment: Option<Attachment>,
    /// Arrival on the stamp clock (a recording's log time).
    pub arrival_ns: i64,
}

/// Keeps a raw subscription alive; dropping it unsubscribes.
pub struct RawSubscriber {
    _inner: zenoh::pubsub::Subscriber<()>,
    _token: zenoh::liveliness::LivelinessToken,
}

impl Node {
    /// A publisher of pre-encoded `type_name` messages on `topic`.
    pub fn raw_publisher(&self, topic: &str, type_name: &str) -> Result<RawPublisher, NodeError> {
        Ok(RawPublisher { out: self.outlet(topic, type_name)? })
    }

    /// Calls `callback` on zenoh's receive task for every message on `topic` (a topic name,
    /// or a key expression with `*`/`**` relative to the prefix). The callback must not block:
    /// copy the bytes out and return. `delete`s are not messages and are not passed on.
    pub fn raw_subscriber(
        &self,
        topic: &str,
        type_name: &str,
        callback: impl Fn(RawSample<'_>) + Send + Sync + 'static,
    ) -> Result<RawSubscriber, NodeError> {
        let key = self.key(topic);
        let token = self.endpoint_token(EndpointKind::Subscriber, topic, type_name)?;
        let clock = self.shared.clock.clone();
        let inner = self
            .shared
            .session
            .declare_subscriber(key.clone())
            .callback(move |sample| {
                if sample.kind() == SampleKind::Delete {
                    return;
                }
                let arrival_ns = clock.now_ns();
                let attachment = sample.attachment().and_then(|a| Attachment::decode(&a.to_bytes()));
                let payload = sample.payload().to_bytes();
                callback(RawSample { key: sample.key_expr().as_str(), payload: &payload, attachment, arrival_ns });
            })
            .wait()
            .map_err(|e| NodeError::Declare { what: "subscriber", key, reason: e.to_string() })?;
        Ok(RawSubscriber { _inner: inner, _token: token })
    }
}

impl RawPublisher {
    pub fn publish(&mut self, cdr: &[u8]) -> Result<(), NodeError> {
        let shared = &self.out.shared;
        let mut payload = None;
        if let Some(shm) = shared.shm.as_ref().filter(|_| cdr.len() >= shared.shm_threshold_bytes) {
            shm.garbage_collect();
            if let Ok(mut chunk) = shm.alloc(cdr.len()).with_policy::<GarbageCollect>().wait() {
                chunk[..].copy_from_slice(cdr);
                payload = Some(ZBytes::from(chunk));
            }
        }
        self.out.put(payload.unwrap_or_else(|| ZBytes::from(cdr)))
    }

    pub fn key(&self) -> &str {
        &self.out.key
    }

    pub fn sent(&self) -> u64 {
        self.out.sequence as u64
    }

    /// Whether any subscriber currently matches this topic.
    pub fn has_subscribers(&self) -> bool {
        self.out.has_subscribers()
    }
}
