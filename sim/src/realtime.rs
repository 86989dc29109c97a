//! Real-time runs: the world advances with the wall clock and talks to the chain's nodes as
//! processes — ground-truth detections, vehicle state and camera info out, the arbiter's brake
//! command in. True latencies count: the command acts when it arrives, and the capture →
//! command time is measured on every frame the chain answers.

use crate::run::{CellResult, RunConfig, World};
use crate::scenario::Cell;
use reflex_aeb::threat::Level;
use reflex_msgs::reflex_msgs::{BrakeRequest, VehicleState};
use reflex_msgs::sensor_msgs::CameraInfo;
use reflex_msgs::std_msgs::Header;
use reflex_msgs::vision_msgs::Detection2DArray;
use reflex_msgs::Mounting;
use reflex_runtime::{InputOptions, LatencyHistogram, Node, Publisher, RunError, Subscriber};
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// The simulator's end of the network.
pub struct Plant {
    node: Node,
    detections: Publisher<Detection2DArray>,
    state: Publisher<VehicleState>,
    info: Publisher<CameraInfo>,
    commands: Subscriber<BrakeRequest>,
    /// The last command's level and deceleration.
    command: (u8, f64),
}

impl Plant {
    pub fn new(node: Node) -> Result<Self, RunError> {
        Ok(Self {
            detections: node.publisher("/perception/detections")?,
            state: node.publisher("/vehicle/state")?,
            info: node.publisher("/camera/camera_info")?,
            commands: node.subscriber("/vehicle/brake_command", InputOptions::default().capacity(256))?,
            node,
            command: (0, 0.0),
        })
    }

    /// Sends empty frames at `fps` (the chain's deadlines stay met, its tracks age out) until
    /// the arbiter has commanded no braking for `quiet`; fails after `timeout`.
    pub fn settle(&mut self, fps: f64, quiet: Duration, timeout: Duration) -> Result<(), RunError> {
        let start = Instant::now();
        let mut calm_since: Option<Instant> = None;
        let mut header = Header { frame_id: "camera".into(), ..Default::default() };
        while start.elapsed() < timeout {
            header.stamp = self.node.clock().now();
            self.detections.publish(&Detection2DArray { header: header.clone(), detections: Vec::new() })?;
            self.state.publish(&VehicleState { header: header.clone(), ..Default::default() })?;
            std::thread::sleep(Duration::from_secs_f64(1.0 / fps));
            while let Some(command) = self.commands.recv() {
                self.command = (command.message.level, command.message.deceleration_mps2);
            }
            if self.command.0 == BrakeRequest::LEVEL_NONE {
                let since = *calm_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= quiet {
                    return Ok(());
                }
            } else {
                calm_since = None;
            }
        }
        Err(format!("the arbiter kept commanding braking (level {}) for {timeout:?}", self.command.0).into())
    }

    /// Runs a cell against the chain in real time.
    pub fn run_cell(&mut self, cell: &Cell, config: &RunConfig) -> Result<CellResult, RunError> {
        let mut world = World::new(cell, config);
        let camera = world.camera;
        let mut info = CameraInfo::pinhole(
            config.image.0,
            config.image.1,
            camera.fx,
            camera.fy,
            camera.cx,
            camera.cy,
            Mounting { height_m: camera.height_m, pitch_rad: camera.pitch_rad },
        );
        info.header.frame_id = "camera".into();
        let mut header = Header { frame_id: "camera".into(), ..Default::default() };
        let mut latency = LatencyHistogram::new();
        let mut sent: HashSet<i64> = HashSet::new();
        let mut answered: HashSet<i64> = HashSet::new();
        let start = Instant::now();
        let mut frames = 0u64;
        'run: loop {
            let wall = start.elapsed().as_secs_f64();
            while world.time_s() < wall {
                if world.observe() {
                    break 'run;
                }
                header.stamp = self.node.clock().now();
                if let Some(detections) = world.frame(&header) {
                    self.detections.publish(&detections)?;
                    let state = VehicleState {
                        header: header.clone(),
                        speed_mps: world.ego.speed_mps,
                        acceleration_mps2: -world.ego.decel_mps2,
                        yaw_rate_radps: 0.0,
                    };
                    self.state.publish(&state)?;
                    if frames % 30 == 0 {
                        info.header.stamp = header.stamp;
                        self.info.publish(&info)?;
                    }
                    sent.insert(header.stamp.as_nanos());
                    frames += 1;
                }
                world.advance();
            }
            while let Some(command) = self.commands.recv() {
                let message = command.message;
                let stamp = message.header.stamp.as_nanos();
                if sent.contains(&stamp) && answered.insert(stamp) {
                    latency.record_ns(self.node.clock().now_ns() - stamp);
                }
                let decel = if message.level >= BrakeRequest::LEVEL_PARTIAL { message.deceleration_mps2 } else { 0.0 };
                self.command = (message.level, decel);
                world.ego.command(decel);
                world.record(level_of(message.level), decel);
            }
            self.node.wait_for_input(Duration::from_millis(1));
        }
        let mut result = world.finish();
        if latency.count() > 0 {
            let ms = |ns: u64| ns as f64 / 1e6;
            result.latency_ms =
                Some([ms(latency.quantile_ns(0.5)), ms(latency.quantile_ns(0.99)), ms(latency.max_ns())]);
        }
        Ok(result)
    }
}

fn level_of(level: u8) -> Level {
    match level {
        BrakeRequest::LEVEL_WARN => Level::Warn,
        BrakeRequest::LEVEL_PARTIAL => Level::Partial,
        BrakeRequest::LEVEL_FULL => Level::Full,
        _ => Level::None,
    }
}
