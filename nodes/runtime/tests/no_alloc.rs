//! The steady-state hot path allocates nothing: a counting global allocator counts the
//! allocations made *on the calling thread* (zenoh's own threads are not ours to count) while
//! a node receives, decodes and re-encodes messages.

use reflex_msgs::vision_msgs::{Detection2D, Detection2DArray, ObjectHypothesis, ObjectHypothesisWithPose};
use reflex_msgs::{decode_into, encode, encode_into};
use reflex_runtime::queue::{input_queue, OverflowPolicy};
use reflex_runtime::{InputOptions, LatencyHistogram, Node, NodeOptions, TransportConfig};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; the counter is a thread-local Cell (no allocation).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(work: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    work();
    ALLOCATIONS.with(Cell::get) - before
}

fn detections(index: usize) -> Detection2DArray {
    let mut message = Detection2DArray::default();
    message.header.frame_id = "camera".into();
    message.header.stamp.sec = index as i32;
    for k in 0..3 {
        let mut detection = Detection2D { id: format!("det-{k}"), ..Default::default() };
        detection.results.push(ObjectHypothesisWithPose {
            hypothesis: ObjectHypothesis { class_id: "person".into(), score: 0.5 },
            ..Default::default()
        });
        message.detections.push(detection);
    }
    message
}

#[test]
fn decode_and_encode_reuse_their_buffers() {
    let first = encode(&detections(1));
    let second = encode(&detections(2));
    let (mut message, mut buffer) = (Detection2DArray::default(), Vec::new());
    decode_into(&first, &mut message).unwrap(); // warm-up: capacities grow once
    encode_into(&message, &mut buffer);
    let count = allocations_during(|| {
        for _ in 0..100 {
            decode_into(&second, &mut message).unwrap();
            encode_into(&message, &mut buffer);
            decode_into(&first, &mut message).unwrap();
        }
    });
    assert_eq!(count, 0);
    assert_eq!(message, detections(1));
}

#[test]
fn queues_and_histograms_do_not_allocate_once_created() {
    let (mut writer, mut reader) = input_queue::<u64>(4, OverflowPolicy::DropOldest);
    let mut histogram = LatencyHistogram::new();
    let count = allocations_during(|| {
        for i in 0..10_000u64 {
            writer.push(i);
            if i % 3 == 0 {
                reader.pop();
            }
            histogram.record_ns(i as i64 * 1000);
        }
    });
    assert_eq!(count, 0);
    assert!(reader.dropped() > 0, "the overflow path was exercised");
}

#[test]
fn receiving_through_a_node_does_not_allocate_on_the_processing_thread() {
    let transport = TransportConfig { prefix: "noalloc".into(), ..TransportConfig::loopback(17631) };
    let node = Node::new(NodeOptions::new("noalloc").transport(transport)).unwrap();
    let mut subscriber = node.subscriber::<Detection2DArray>("/d", InputOptions::default().capacity(64)).unwrap();
    // The publisher runs on its own thread: its allocations (and zenoh's) are not counted here.
    let publisher_node = std::sync::Arc::new(node);
    let sender = {
        let node = publisher_node.clone();
        std::thread::spawn(move || {
            let mut publisher = node.publisher::<Detection2DArray>("/d").unwrap();
            assert!(publisher.wait_for_subscribers(Duration::from_secs(10)));
            let message = detections(7);
            for _ in 0..300 {
                publisher.publish(&message).unwrap();
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let mut received = 0;
    let mut steady_allocations = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while received < 300 && Instant::now() < deadline {
        publisher_node.wait_for_input(Duration::from_millis(10));
        let count = allocations_during(|| {
            while let Some(message) = subscriber.recv() {
                assert_eq!(message.message.detections.len(), 3);
                received += 1;
            }
        });
        if received > 20 {
            steady_allocations += count; // the first messages size the buffers
        }
    }
    sender.join().unwrap();
    assert_eq!(received, 300);
    assert_eq!(steady_allocations, 0, "recv allocated in steady state");
}
