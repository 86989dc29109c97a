//! A task with `inline: true` runs each call on the thread that delivers the message: zenoh's
//! receive thread between processes' sessions, the publishing thread itself when both nodes
//! share a session (a group). Every message is still handled once, in order.

use reflex_msgs::reflex_msgs::BrakeRequest;
use reflex_msgs::vision_msgs::Detection2DArray;
use reflex_runtime::reflex::ReflexContext;
use reflex_runtime::task::{run_task, Event1, Slot, Taken, Task, TaskOptions, TaskReport};
use reflex_runtime::transport::use_session_on_this_thread;
use reflex_runtime::{InputOptions, Node, NodeOptions, Shutdown, TransportConfig};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

const MESSAGES: i32 = 200;

/// Answers each detections message with a request carrying its stamp; notes the calling thread.
struct Echo {
    threads: Arc<Mutex<Vec<ThreadId>>>,
}

impl Task for Echo {
    type Inputs = (Detection2DArray,);
    type Outputs = (BrakeRequest,);

    fn react(
        &mut self,
        input: Event1<'_, Detection2DArray>,
        (out,): &mut (Slot<BrakeRequest>,),
        _context: &ReflexContext,
    ) -> Taken {
        let Event1::In0(detections) = input;
        self.threads.lock().unwrap().push(std::thread::current().id());
        out.fill().header.stamp = detections.header.stamp;
        Taken::Accepted
    }
}

struct Outcome {
    /// Stamps (seconds) of the answers, in arrival order.
    answered: Vec<i32>,
    /// The thread of each call: the task's own, the publishing thread, or another.
    on_task_thread: usize,
    on_publishing_thread: usize,
    calls: usize,
}

/// Runs `Echo` with `inline` on a node of its own thread, publishes `MESSAGES` detections from
/// this thread 1 ms apart, and collects the answers. `shared`: both nodes on one session.
fn run(inline: bool, shared: bool) -> Outcome {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let transport = TransportConfig { prefix: format!("inline{port}"), ..TransportConfig::loopback(port) };
    let session = shared.then(|| transport.open().unwrap());
    let (shutdown, threads) = (Shutdown::new(), Arc::new(Mutex::new(Vec::new())));
    let task_thread = {
        let (transport, shutdown, threads, session) =
            (transport.clone(), shutdown.clone(), threads.clone(), session.clone());
        std::thread::spawn(move || -> (ThreadId, TaskReport) {
            if let Some(session) = session {
                use_session_on_this_thread(session);
            }
            let node = Node::new(NodeOptions::new("echo").transport(transport)).unwrap();
            let options = TaskOptions {
                name: "echo".into(),
                inputs: vec![("/inline/detections".into(), InputOptions::default().capacity(256))],
                outputs: vec!["/inline/requests".into()],
                budget: Duration::from_millis(50),
                inline,
            };
            (std::thread::current().id(), run_task(&node, Echo { threads }, &options, &shutdown).unwrap())
        })
    };
    if let Some(session) = session {
        use_session_on_this_thread(session);
    }
    let observer = Node::new(NodeOptions::new("feeder").transport(transport)).unwrap();
    let mut answers =
        observer.subscriber::<BrakeRequest>("/inline/requests", InputOptions::default().capacity(256)).unwrap();
    let mut detections = observer.publisher::<Detection2DArray>("/inline/detections").unwrap();
    assert!(detections.wait_for_subscribers(Duration::from_secs(20)));
    std::thread::sleep(Duration::from_millis(200)); // the echo's own subscriber to its output
    let mut answered = Vec::new();
    for sec in 1..=MESSAGES {
        let mut message = Detection2DArray::default();
        message.header.stamp.sec = sec;
        detections.publish(&message).unwrap();
        std::thread::sleep(Duration::from_millis(1));
        while let Some(answer) = answers.recv() {
            answered.push(answer.message.header.stamp.sec);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while answered.len() < MESSAGES as usize && Instant::now() < deadline {
        observer.wait_for_input(Duration::from_millis(20));
        while let Some(answer) = answers.recv() {
            answered.push(answer.message.header.stamp.sec);
        }
    }
    shutdown.request();
    let (task_thread, report) = task_thread.join().unwrap();
    let threads = threads.lock().unwrap();
    assert_eq!(report.calls as usize, threads.len());
    let me = std::thread::current().id();
    Outcome {
        answered,
        on_task_thread: threads.iter().filter(|t| **t == task_thread).count(),
        on_publishing_thread: threads.iter().filter(|t| **t == me).count(),
        calls: threads.len(),
    }
}

#[test]
fn inline_calls_run_on_the_receiving_thread_and_lose_nothing() {
    let inline = run(true, false);
    assert_eq!(inline.answered, (1..=MESSAGES).collect::<Vec<_>>(), "every message answered once, in order");
    // The task's own thread wakes every 20 ms and takes what arrives while it holds the task.
    assert!(
        inline.on_task_thread * 10 <= inline.calls,
        "{} of {} calls on the task's thread",
        inline.on_task_thread,
        inline.calls
    );

    let queued = run(false, false);
    assert_eq!(queued.answered, (1..=MESSAGES).collect::<Vec<_>>());
    assert_eq!(queued.on_task_thread, queued.calls, "without inline every call is on the task's own thread");
}

#[test]
fn inline_calls_in_a_group_run_on_the_publishing_thread() {
    let inline = run(true, true);
    assert_eq!(inline.answered, (1..=MESSAGES).collect::<Vec<_>>());
    assert!(
        inline.on_publishing_thread * 10 >= inline.calls * 9,
        "{} of {} calls on the publishing thread",
        inline.on_publishing_thread,
        inline.calls
    );
}
