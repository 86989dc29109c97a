//! A node: one zenoh session, its typed publishers and subscribers, its liveliness token, and
//! a watchdog thread that checks input deadlines and callback budgets on the node's duration
//! clock (monotonic, or simulation time) and publishes the node's health (see [`crate::health`]).

use crate::attachment::Attachment;
use crate::clock::Clock;
use crate::events::*;
use crate::health::{self, Level, StatusHandle, Statuses, TROUBLE_HOLD};
use crate::keys::{self, EndpointKind};
use crate::publisher::*;
use crate::queue::{input_queue, OverflowPolicy};
use crate::subscriber::*;
use crate::timing::{InputStats, LatencyHistogram};
use crate::transport::{TransportConfig, TransportConfigError};
use crate::watchdog::*;
use reflex_msgs::diagnostic_msgs::DiagnosticArray;
use reflex_msgs::reflex_msgs::MonitorEvent;
use reflex_msgs::{encode_into, topics, Message};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use zenoh::sample::{Sample, SampleKind};
use zenoh::shm::{PosixShmProviderBackend, ShmProvider, ShmProviderBuilder};
use zenoh::Wait;

/// How often the watchdog looks at its lists even when no deadline is near (new inputs wake it
/// at once; this bounds the delay for a simulation clock that stopped moving).
pub(crate) const WATCHDOG_BACKSTOP: Duration = Duration::from_millis(20);

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
pub(crate) const MAX_COUNTED_GAP: i64 = 1 << 20;

/// Undecodable messages on one input are reported at most once per this period, with a count.
pub(crate) const DECODE_REPORT_PERIOD_NS: i64 = 1_000_000_000;

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

/// A running node. Dropping it stops its watchdog and undeclares everything.
pub struct Node {
    pub(crate) shared: Arc<NodeShared>,
    pub(crate) watchdog: Option<JoinHandle<()>>,
    pub(crate) _liveliness: zenoh::liveliness::LivelinessToken,
    pub(crate) _fault_subscriber: Option<zenoh::pubsub::Subscriber<()>>,
    pub(crate) _clock_subscriber: Option<zenoh::pubsub::Subscriber<()>>,
}

pub(crate) struct NodeShared {
    pub(crate) name: String,
    pub(crate) prefix: String,
    pub(crate) host: String,
    pub(crate) session: zenoh::Session,
    pub(crate) clock: Clock,
    pub(crate) shm: Option<ShmProvider<PosixShmProviderBackend>>,
    pub(crate) shm_threshold_bytes: usize,
    pub(crate) next_entity: AtomicU64,
    pub(crate) events: Mutex<EventSink>,
    pub(crate) watch: Mutex<WatchList>,
    pub(crate) statuses: Arc<Statuses>,
    pub(crate) faults: Arc<crate::fault::Faults>,
    pub(crate) health: Mutex<HealthSink>,
    pub(crate) stopping: AtomicBool,
    /// Undecodable `/clock` messages: counted, reported at most once a period.
    pub(crate) clock_errors: Mutex<RateLimited>,
    /// Set while the node handles its inputs inline: what the receive callback calls instead of
    /// waking the processing thread.
    pub(crate) inline: Arc<std::sync::RwLock<Option<InlineTurn>>>,
}

/// A node's turn, run by whichever thread delivers a message (see [`Node::run_inline`]).
pub(crate) type InlineTurn = Arc<dyn Fn() + Send + Sync>;

/// Ends inline handling when dropped (see [`Node::run_inline`]).
pub(crate) struct InlineGuard {
    slot: Arc<std::sync::RwLock<Option<InlineTurn>>>,
}

impl Drop for InlineGuard {
    fn drop(&mut self) {
        *self.slot.write().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

#[derive(Default)]
pub(crate) struct WatchList {
    pub(crate) inputs: Vec<Arc<InputWatch>>,
    pub(crate) budgets: Vec<Arc<BudgetWatch>>,
}

/// Publishes the node's health on its own key.
pub(crate) struct HealthSink {
    pub(crate) publisher: zenoh::pubsub::Publisher<'static>,
    pub(crate) message: DiagnosticArray,
    pub(crate) buffer: Vec<u8>,
    pub(crate) sequence: u64,
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
        let group_session = crate::transport::group_session();
        // A password pipe can be read once: before the session (and any retry) needs it. A
        // group's session was opened by the group with the password already read.
        if group_session.is_none() {
            transport.load_secrets()?;
        }
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
        let session = match group_session {
            Some(session) => session,
            None => transport.open()?,
        };
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
            inline: Arc::default(),
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

    /// The raw zenoh session: only for the raw-zenoh baselines of the benchmarks and for
    /// attack tests (a rogue speaks raw zenoh). Node code and tools use the typed ports and
    /// [`Node::system`]; hidden from the docs for that reason.
    #[doc(hidden)]
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
    pub(crate) fn outlet(&self, topic: &str, type_name: &str) -> Result<Outlet, NodeError> {
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

    pub(crate) fn subscribe<T: Message>(
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
        let inline = self.shared.inline.clone();
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
                let turn = inline.read().ok().and_then(|turn| turn.clone());
                match turn {
                    Some(turn) => turn(),
                    None => processing_thread.unpark(),
                }
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
    pub(crate) fn endpoint_token(
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

    /// Until the guard is dropped, every arriving message runs `turn` on the thread that
    /// delivers it (zenoh's receive thread; in a group, the publishing member's thread)
    /// instead of waking the processing thread: one wake-up less per message. `turn` must not
    /// block; it is called concurrently when messages arrive on several threads at once.
    pub(crate) fn run_inline(&self, turn: InlineTurn) -> InlineGuard {
        let slot = self.shared.inline.clone();
        *slot.write().unwrap_or_else(|p| p.into_inner()) = Some(turn);
        InlineGuard { slot }
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
    pub(crate) fn wake_watchdog(&self) {
        self.statuses.wake_watchdog();
    }

    pub(crate) fn report(&self, kind: u8, topic: &str, value_ms: f64, limit_ms: f64, detail: &str) {
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
    pub(crate) fn health_entries(&self, now_ns: i64) -> Vec<health::Entry> {
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

    pub(crate) fn publish_health(&self, now_ns: i64) {
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

/// Takes fault commands at run time on the node's fault key (only when the launch enables it).
pub(crate) fn listen_for_faults(shared: &Arc<NodeShared>) -> Result<zenoh::pubsub::Subscriber<()>, NodeError> {
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
pub(crate) fn follow_clock(shared: &Arc<NodeShared>) -> Result<zenoh::pubsub::Subscriber<()>, NodeError> {
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
pub(crate) fn monotonic_now() -> i64 {
    crate::clock::monotonic_ns()
}

/// This host's name, as nodes put it in their liveliness tokens.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}
