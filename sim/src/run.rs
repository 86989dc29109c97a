//! A cell run in closed loop with ground-truth perception: the world's actors projected into
//! the camera with the noise model, the real AEB code (`reflex_aeb::AebCore`) on each
//! frame, its request applied to the ego's brake after the perception latency and the
//! actuator's own delay. No transport: this is the fast sweep of the control logic; the full
//! stack (rendered frames → detector → AEB → arbiter as processes) drives the same world.

use crate::result::{CellResult, RunConfig};
use crate::scenario::Cell;
use crate::world::World;
use reflex_aeb::threat::Level;
use reflex_aeb::AebCore;
use reflex_msgs::std_msgs::Header;
use std::collections::VecDeque;

/// A cell with the AEB in process: its request reaches the actuator after the configured
/// capture-to-actuator latency.
pub fn run_cell(cell: &Cell, config: &RunConfig) -> CellResult {
    let mut world = World::new(cell, config);
    let mut aeb = AebCore::new(&world.aeb_config());
    // Requests on their way to the actuator: (time they arrive, decel).
    let mut in_flight: VecDeque<(f64, f64)> = VecDeque::new();
    let mut header = Header { frame_id: "camera".into(), ..Default::default() };
    while !world.observe() {
        let t = world.time_s();
        // Stamps start at 1 s: a zero stamp means "no capture time" and the AEB refuses it.
        let stamp_s = t + 1.0;
        header.stamp.sec = stamp_s.floor() as i32;
        header.stamp.nanosec = ((stamp_s - stamp_s.floor()) * 1e9) as u32;
        if let Some(detections) = world.frame(&header) {
            let arrival_ns = header.stamp.as_nanos();
            let decision = match aeb.step(&detections, Some(world.ego.speed_mps), arrival_ns) {
                Ok((decision, _)) => decision,
                Err(refused) => unreachable!("the simulator stamps every frame: {refused:?}"),
            };
            let decel = if decision.level >= Level::Partial { decision.decel_mps2 } else { 0.0 };
            world.record(decision.level, decel);
            in_flight.push_back((t + config.perception_latency_s, decel));
        }
        while in_flight.front().is_some_and(|(at, _)| *at <= t) {
            let (_, decel) = in_flight.pop_front().expect("checked");
            world.ego.command(decel);
        }
        world.advance();
    }
    world.finish()
}
