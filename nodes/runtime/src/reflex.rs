//! Reflex functions: small event-driven functions that turn what the model sees into actions.
//!
//! A reflex is one struct and one function: [`Reflex::react`] gets each input message and
//! fills the output message (returning whether to publish it). The runtime does the rest:
//! it subscribes and publishes, measures every call against the declared execution budget
//! (overruns are reported while the call is still running), and catches a panic so that a
//! failing reflex becomes a `MonitorEvent` (`KIND_CALLBACK_FAILED`) instead of a silent crash;
//! after a panic the reflex is not called again and the node stays up for the monitor to see.
//!
//! ```
//! use reflex_runtime::reflex::{Reflex, ReflexContext};
//! use reflex_msgs::{reflex_msgs::BrakeRequest, vision_msgs::Detection2DArray};
//!
//! /// Warns when a person is detected between columns `left` and `right` of the image.
//! struct PersonAlert {
//!     left: f64,
//!     right: f64,
//! }
//!
//! impl Reflex for PersonAlert {
//!     type Input = Detection2DArray;
//!     type Output = BrakeRequest;
//!
//!     fn react(&mut self, detections: &Detection2DArray, alert: &mut BrakeRequest, context: &ReflexContext) -> bool {
//!         let person_ahead = detections.detections.iter().any(|d| {
//!             let x = d.bbox.center.position.x;
//!             (self.left..=self.right).contains(&x) && d.results.iter().any(|r| r.hypothesis.class_id == "person")
//!         });
//!         alert.header.stamp = detections.header.stamp; // age stays measurable downstream
//!         alert.level = if person_ahead { BrakeRequest::LEVEL_WARN } else { BrakeRequest::LEVEL_NONE };
//!         alert.source.clear();
//!         alert.source.push_str(context.name);
//!         true
//!     }
//! }
//! ```

use crate::shutdown::Shutdown;
use crate::task::{run_task, Event1, Slot, Taken, Task, TaskOptions};
use crate::{InputOptions, Node, NodeError};
use reflex_msgs::Message;
use std::time::Duration;

/// What a reflex knows besides its input.
#[derive(Debug, Clone, Copy)]
pub struct ReflexContext<'a> {
    /// The reflex's name (its budget and events carry it).
    pub name: &'a str,
    /// The node's stamp clock (wall or sim) when the call started, ns.
    pub now_ns: i64,
    /// The node's duration clock (monotonic or sim) when the call started, ns: use it for
    /// anything measured between calls.
    pub now_mono_ns: i64,
    /// When the input arrived, on the duration clock.
    pub arrival_mono_ns: i64,
    /// Age of the input since capture (now − `header.stamp`), when the input has a stamp and
    /// no step of the wall clock makes it meaningless.
    pub input_age_ns: Option<i64>,
}

/// A small function from one message to an action.
pub trait Reflex: Send {
    type Input: Message;
    type Output: Message;

    /// Handles one input; fills `output` (reused between calls) and returns whether to
    /// publish it. Must not block; allocation is allowed but avoidable by reusing `output`.
    fn react(&mut self, input: &Self::Input, output: &mut Self::Output, context: &ReflexContext) -> bool;
}

/// Where a reflex reads and writes, and how long it may take.
#[derive(Debug, Clone)]
pub struct ReflexOptions {
    pub name: String,
    pub input_topic: String,
    pub input: InputOptions,
    pub output_topic: String,
    pub budget: Duration,
}

/// What a reflex did while it ran.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReflexReport {
    pub calls: u64,
    pub published: u64,
    pub budget_overruns: u64,
    /// The panic message, if the reflex panicked (it was not called after that).
    pub failure: Option<String>,
}

/// Runs `reflex` on `node` until `shutdown`: every input message → one measured call (a task
/// with one input and one output, see [`crate::task`]).
pub fn run_reflex<R: Reflex + 'static>(
    node: &Node,
    reflex: R,
    options: &ReflexOptions,
    shutdown: &Shutdown,
) -> Result<ReflexReport, NodeError> {
    let task_options = TaskOptions {
        name: options.name.clone(),
        inputs: vec![(options.input_topic.clone(), options.input)],
        outputs: vec![options.output_topic.clone()],
        budget: options.budget,
        inline: false,
    };
    let report = run_task(node, Single(reflex), &task_options, shutdown)?;
    Ok(ReflexReport {
        calls: report.calls,
        published: report.published,
        budget_overruns: report.budget_overruns,
        failure: report.failure,
    })
}

/// A reflex as a task with one input and one output.
struct Single<R>(R);

impl<R: Reflex> Task for Single<R> {
    type Inputs = (R::Input,);
    type Outputs = (R::Output,);

    fn react(
        &mut self,
        input: Event1<'_, R::Input>,
        (output,): &mut (Slot<R::Output>,),
        context: &ReflexContext,
    ) -> Taken {
        let Event1::In0(message) = input;
        output.filled = self.0.react(message, &mut output.message, context);
        Taken::Accepted
    }
}
