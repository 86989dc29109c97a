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

use crate::node::{InputOptions, Node, NodeError};
use crate::shutdown::Shutdown;
use reflex_msgs::reflex_msgs::MonitorEvent;
use reflex_msgs::Message;
use std::panic::{catch_unwind, AssertUnwindSafe};
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

/// Runs `reflex` on `node` until `shutdown`: every input message → one measured call.
pub fn run_reflex<R: Reflex>(
    node: &Node,
    mut reflex: R,
    options: &ReflexOptions,
    shutdown: &Shutdown,
) -> Result<ReflexReport, NodeError> {
    let mut input = node.subscriber::<R::Input>(&options.input_topic, options.input)?;
    let mut publisher = node.publisher::<R::Output>(&options.output_topic)?;
    let mut budget = node.budget(&options.name, options.budget);
    let mut output = R::Output::default();
    let mut report = ReflexReport::default();
    while !shutdown.is_requested() {
        node.wait_for_input(Duration::from_millis(5));
        for _ in 0..crate::DRAIN_LIMIT {
            let Some(received) = input.recv() else { break };
            if report.failure.is_some() {
                continue; // keep draining so the queue does not report drops for a dead reflex
            }
            let (now_ns, now_mono_ns) = node.clock().now_and_mono_ns();
            let context = ReflexContext {
                name: &options.name,
                now_ns,
                now_mono_ns,
                arrival_mono_ns: received.arrival_mono_ns,
                input_age_ns: received.trusted_age_ns(),
            };
            let message = received.message;
            let stall = node.faults().stall();
            let outcome = budget.run(|| {
                if !stall.is_zero() {
                    std::thread::sleep(stall); // an injected stall, inside the budget like a hang
                }
                catch_unwind(AssertUnwindSafe(|| reflex.react(message, &mut output, &context)))
            });
            report.calls += 1;
            match outcome {
                Ok(true) => {
                    publisher.publish(&output)?;
                    report.published += 1;
                }
                Ok(false) => {}
                Err(panic) => {
                    let text = panic_text(panic.as_ref());
                    node.report(MonitorEvent::KIND_CALLBACK_FAILED, &options.name, report.calls as f64, 0.0, &text);
                    // A state, not only an event: the node's health says so until it restarts.
                    node.set_status(&format!("reflex {}", options.name), crate::Level::Error, &text);
                    tracing::error!(reflex = %options.name, panic = %text, "reflex panicked; it is disabled");
                    report.failure = Some(text);
                }
            }
        }
    }
    report.budget_overruns = budget.overruns();
    Ok(report)
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
