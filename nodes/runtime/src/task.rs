//! The one shape of a node's logic: a [`Task`] declares its typed inputs and outputs, and the
//! runtime owns all I/O. It subscribes to every input and publishes every output the task
//! filled; the task only reacts to one input message at a time (the way copper-rs tasks
//! declare their messages). A [`Reflex`](crate::reflex::Reflex) is the one-input, one-output
//! case.
//!
//! Each input message is one call, measured against the task's execution budget and guarded
//! against panics (a panic disables the task and is reported, the node stays up). On every
//! wake-up the inputs after the first are taken before the first: they are the side inputs
//! (camera model, vehicle state) that the first, the trigger, is judged with.
//!
//! ```
//! use reflex_runtime::task::{Event2, Slot, Task, Taken};
//! use reflex_runtime::reflex::ReflexContext;
//! use reflex_msgs::reflex_msgs::{BrakeRequest, VehicleState};
//! use reflex_msgs::vision_msgs::Detection2DArray;
//!
//! /// Warns about any detection while the vehicle moves.
//! #[derive(Default)]
//! struct MovingAlert {
//!     moving: bool,
//! }
//!
//! impl Task for MovingAlert {
//!     type Inputs = (Detection2DArray, VehicleState);
//!     type Outputs = (BrakeRequest,);
//!
//!     fn react(
//!         &mut self,
//!         input: Event2<'_, Detection2DArray, VehicleState>,
//!         (alert,): &mut (Slot<BrakeRequest>,),
//!         _context: &ReflexContext,
//!     ) -> Taken {
//!         match input {
//!             Event2::In0(detections) => {
//!                 let alert = alert.fill();
//!                 alert.header.stamp = detections.header.stamp;
//!                 let seen = self.moving && !detections.detections.is_empty();
//!                 alert.level = if seen { BrakeRequest::LEVEL_WARN } else { BrakeRequest::LEVEL_NONE };
//!             }
//!             Event2::In1(state) if state.speed_mps.is_finite() => self.moving = state.speed_mps.abs() > 0.1,
//!             Event2::In1(_) => return Taken::Rejected,
//!         }
//!         Taken::Accepted
//!     }
//! }
//! ```

use crate::health::StatusHandle;
use crate::node::NodeShared;
use crate::reflex::ReflexContext;
use crate::shutdown::Shutdown;
use crate::{Budget, InputOptions, Node, NodeError, Publisher, Received, Subscriber};
use reflex_msgs::reflex_msgs::MonitorEvent;
use reflex_msgs::Message;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, TryLockError};
use std::time::Duration;

/// Whether a task took an input message or refused it (a refused message counts against the
/// input's health, like a late one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    Accepted,
    Rejected,
}

/// One output of a task: a message the task fills in place (reused between calls) and that
/// the runtime publishes after the call if the task filled it.
#[derive(Debug, Default)]
pub struct Slot<T> {
    pub(crate) message: T,
    pub(crate) filled: bool,
}

impl<T> Slot<T> {
    /// The message to fill; the runtime publishes it after this call.
    pub fn fill(&mut self) -> &mut T {
        self.filled = true;
        &mut self.message
    }

    /// The message if this call filled it, marking it published: what the runtime does after
    /// each call, and what code that calls a task directly (a benchmark's floor) does instead.
    pub fn take_filled(&mut self) -> Option<&T> {
        std::mem::take(&mut self.filled).then_some(&self.message)
    }
}

/// Logic that reacts to typed inputs and fills typed outputs; see the module docs.
pub trait Task: Send {
    /// The message types of the inputs, as a tuple: `(Trigger, Side, ...)`.
    type Inputs: InputSet;
    /// The message types of the outputs, as a tuple.
    type Outputs: OutputSet;

    /// Handles one message of one input. Must not block.
    fn react(
        &mut self,
        input: <Self::Inputs as InputSet>::Event<'_>,
        outputs: &mut <Self::Outputs as OutputSet>::Slots,
        context: &ReflexContext,
    ) -> Taken;
}

/// Where a task reads and writes, and how long one call may take.
#[derive(Debug, Clone)]
pub struct TaskOptions {
    pub name: String,
    /// Topic and queue of each input, in the order of `Task::Inputs`.
    pub inputs: Vec<(String, InputOptions)>,
    /// Topic of each output, in the order of `Task::Outputs`.
    pub outputs: Vec<String>,
    pub budget: Duration,
    /// Run each call on the thread that delivers the message (zenoh's receive thread; in a
    /// group, the publishing member's thread) instead of waking the task's own: one wake-up
    /// less per message, for short calls. Off by default.
    pub inline: bool,
}

/// What a task did while it ran.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskReport {
    pub calls: u64,
    /// Messages published, all outputs together.
    pub published: u64,
    pub budget_overruns: u64,
    /// The panic message, if the task panicked (it was not called after that).
    pub failure: Option<String>,
}

/// A received message with what the context needs to know of it.
pub struct Arrival<E> {
    pub event: E,
    pub arrival_mono_ns: i64,
    pub age_ns: Option<i64>,
}

/// A tuple of input message types.
pub trait InputSet: 'static {
    /// One message of one of the inputs.
    type Event<'a>;
    type Subscribers: Send;
    const COUNT: usize;

    fn subscribe(node: &Node, inputs: &[(String, InputOptions)]) -> Result<Self::Subscribers, NodeError>;

    /// Takes the next message of input `index` (if any) and hands it to `handle`; a message
    /// `handle` refuses is marked rejected. Returns false when that input had nothing.
    fn take(
        subscribers: &mut Self::Subscribers,
        index: usize,
        handle: &mut dyn FnMut(Arrival<Self::Event<'_>>) -> Taken,
    ) -> bool;
}

/// A tuple of output message types.
pub trait OutputSet {
    type Slots: Send;
    type Publishers: Send;

    fn slots() -> Self::Slots;
    fn declare(node: &Node, outputs: &[String]) -> Result<Self::Publishers, NodeError>;
    /// Publishes every filled slot; returns how many.
    fn publish(slots: &mut Self::Slots, publishers: &mut Self::Publishers) -> Result<u64, NodeError>;
}

fn arrival<M, E>(received: &Received<M>, event: E) -> Arrival<E> {
    Arrival { event, arrival_mono_ns: received.arrival_mono_ns, age_ns: received.trusted_age_ns() }
}

macro_rules! input_set {
    ($event:ident; $count:expr; $($ty:ident $variant:ident $idx:tt),+) => {
        /// One message of one input of a task with these inputs.
        pub enum $event<'a, $($ty),+> {
            $($variant(&'a $ty)),+
        }

        impl<$($ty: Message),+> InputSet for ($($ty,)+) {
            type Event<'a> = $event<'a, $($ty),+>;
            type Subscribers = ($(Subscriber<$ty>,)+);
            const COUNT: usize = $count;

            fn subscribe(node: &Node, inputs: &[(String, InputOptions)]) -> Result<Self::Subscribers, NodeError> {
                assert_eq!(inputs.len(), $count, "a task with {} inputs needs as many topics", $count);
                Ok(($(node.subscriber::<$ty>(&inputs[$idx].0, inputs[$idx].1)?,)+))
            }

            fn take(
                subscribers: &mut Self::Subscribers,
                index: usize,
                handle: &mut dyn FnMut(Arrival<Self::Event<'_>>) -> Taken,
            ) -> bool {
                match index {
                    $($idx => {
                        let Some(received) = subscribers.$idx.recv() else { return false };
                        let taken = handle(arrival(&received, $event::$variant(received.message)));
                        if taken == Taken::Rejected {
                            subscribers.$idx.reject();
                        }
                        true
                    })+
                    _ => false,
                }
            }
        }
    };
}

input_set!(Event1; 1; A In0 0);
input_set!(Event2; 2; A In0 0, B In1 1);
input_set!(Event3; 3; A In0 0, B In1 1, C In2 2);
input_set!(Event4; 4; A In0 0, B In1 1, C In2 2, D In3 3);

macro_rules! output_set {
    ($count:expr; $($ty:ident $idx:tt),+) => {
        impl<$($ty: Message),+> OutputSet for ($($ty,)+) {
            type Slots = ($(Slot<$ty>,)+);
            type Publishers = ($(Publisher<$ty>,)+);

            fn slots() -> Self::Slots {
                ($(Slot::<$ty>::default(),)+)
            }

            fn declare(node: &Node, outputs: &[String]) -> Result<Self::Publishers, NodeError> {
                assert_eq!(outputs.len(), $count, "a task with {} outputs needs as many topics", $count);
                Ok(($(node.publisher::<$ty>(&outputs[$idx])?,)+))
            }

            fn publish(slots: &mut Self::Slots, publishers: &mut Self::Publishers) -> Result<u64, NodeError> {
                let mut published = 0;
                $(
                    if let Some(message) = slots.$idx.take_filled() {
                        publishers.$idx.publish(message)?;
                        published += 1;
                    }
                )+
                Ok(published)
            }
        }
    };
}

output_set!(1; A 0);
output_set!(2; A 0, B 1);
output_set!(3; A 0, B 1, C 2);

/// Runs `task` on `node` until `shutdown`: every input message → one measured call, then the
/// outputs it filled are published. With [`TaskOptions::inline`] the calls run on the thread
/// that delivers each message; this thread then only waits for the shutdown (and takes over
/// whatever arrives while another thread is in a call).
pub fn run_task<T: Task + 'static>(
    node: &Node,
    task: T,
    options: &TaskOptions,
    shutdown: &Shutdown,
) -> Result<TaskReport, NodeError> {
    let runner = Arc::new(Mutex::new(Runner::<T> {
        inputs: T::Inputs::subscribe(node, &options.inputs)?,
        publishers: T::Outputs::declare(node, &options.outputs)?,
        slots: T::Outputs::slots(),
        budget: node.budget(&options.name, options.budget),
        report: TaskReport::default(),
        // Side inputs first, the trigger last: the trigger is judged with the freshest side state.
        order: (1..T::Inputs::COUNT).chain([0]).collect(),
        name: options.name.clone(),
        error: None,
        task,
    }));
    let _inline = options.inline.then(|| {
        let (weak, shared, thread) = (Arc::downgrade(&runner), node.shared.clone(), std::thread::current());
        node.run_inline(Arc::new(move || {
            let Some(runner) = weak.upgrade() else { return };
            let locked = runner.try_lock();
            match locked {
                Ok(mut runner) => runner.turn(&shared),
                Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner().turn(&shared),
                // Another thread is in a call: the task's own thread takes this message after it.
                Err(TryLockError::WouldBlock) => thread.unpark(),
            };
        }))
    });
    let wait = if options.inline { Duration::from_millis(20) } else { Duration::from_millis(5) };
    while !shutdown.is_requested() {
        node.wait_for_input(wait);
        let mut runner = runner.lock().unwrap_or_else(|p| p.into_inner());
        runner.turn(&node.shared);
        if let Some(error) = runner.error.take() {
            return Err(error);
        }
    }
    drop(_inline);
    let mut runner = runner.lock().unwrap_or_else(|p| p.into_inner());
    runner.report.budget_overruns = runner.budget.overruns();
    Ok(std::mem::take(&mut runner.report))
}

/// A task with its inputs, outputs and accounts: what one turn needs, whichever thread runs it.
struct Runner<T: Task> {
    task: T,
    inputs: <T::Inputs as InputSet>::Subscribers,
    publishers: <T::Outputs as OutputSet>::Publishers,
    slots: <T::Outputs as OutputSet>::Slots,
    budget: Budget,
    report: TaskReport,
    order: Vec<usize>,
    name: String,
    /// A publishing error of a turn, for the task's own thread to end with.
    error: Option<NodeError>,
}

impl<T: Task> Runner<T> {
    /// Takes what arrived, a bounded number of messages per input, one call each.
    fn turn(&mut self, node: &NodeShared) {
        let Self { task, inputs, publishers, slots, budget, report, order, name, error } = self;
        if error.is_some() {
            return;
        }
        for &index in order.iter() {
            for _ in 0..crate::DRAIN_LIMIT {
                let mut failed = None;
                let took = T::Inputs::take(inputs, index, &mut |arrival| {
                    if report.failure.is_some() {
                        return Taken::Accepted; // keep draining so a dead task's queue reports no drops
                    }
                    let (now_ns, now_mono_ns) = node.clock.now_and_mono_ns();
                    let context = ReflexContext {
                        name,
                        now_ns,
                        now_mono_ns,
                        arrival_mono_ns: arrival.arrival_mono_ns,
                        input_age_ns: arrival.age_ns,
                    };
                    let stall = node.faults.stall();
                    let event = arrival.event;
                    let outcome = budget.run(|| {
                        if !stall.is_zero() {
                            std::thread::sleep(stall); // an injected stall, inside the budget like a hang
                        }
                        catch_unwind(AssertUnwindSafe(|| task.react(event, slots, &context)))
                    });
                    report.calls += 1;
                    match outcome {
                        Ok(taken) => taken,
                        Err(panic) => {
                            failed = Some(panic_text(panic.as_ref()));
                            Taken::Accepted
                        }
                    }
                });
                if !took {
                    break;
                }
                if let Some(text) = failed {
                    node.report(MonitorEvent::KIND_CALLBACK_FAILED, name, report.calls as f64, 0.0, &text);
                    // A state, not only an event: the node's health says so until it restarts.
                    StatusHandle { statuses: node.statuses.clone() }.set(
                        &format!("reflex {name}"),
                        crate::Level::Error,
                        &text,
                    );
                    tracing::error!(reflex = %name, panic = %text, "reflex panicked; it is disabled");
                    report.failure = Some(text);
                    // What a panicking call filled is not published.
                    *slots = T::Outputs::slots();
                }
                match T::Outputs::publish(slots, publishers) {
                    Ok(published) => report.published += published,
                    Err(e) => {
                        *error = Some(e);
                        return;
                    }
                }
            }
        }
    }
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        format!("panicked: {text}")
    } else if let Some(text) = panic.downcast_ref::<String>() {
        format!("panicked: {text}")
    } else {
        "panicked".into()
    }
}
