//! The simulator as a node: the world talks to the chain's nodes as processes. Out: vehicle
//! state, camera info, and either ground-truth detections or rendered camera frames (which the
//! detector turns into detections); in: the arbiter's brake command.
//!
//! Two clocks:
//! - **real time** ([`Plant::run_cell`]): the world advances with the wall clock; a command acts
//!   when it arrives, through the product's actuator gateway (the brake unit brakes by itself
//!   when commands stop, stall or lie), and the capture → command time is measured on every
//!   frame answered;
//! - **lock-step** ([`Plant::run_cell_lockstep`]): the plant's clock is a simulation clock that
//!   it publishes on `/clock` (the chain runs with `use_sim_time`); each frame waits for the
//!   arbiter's command stamped with that frame before the world moves on, and the command acts
//!   `perception_latency_s` of simulated time later. The results depend only on what the chain
//!   computes, not on how fast: two runs agree bit for bit.

use crate::render::Renderer;
use crate::result::{CellResult, RunConfig};
use crate::scenario::Cell;
use crate::world::World;
use reflex_aeb::threat::Level;
use reflex_monitor::actuator::{ActuatorGateway, Counter, Demand, Fallback, GatewayConfig};
use reflex_msgs::reflex_msgs::{BrakeRequest, VehicleState};
use reflex_msgs::rosgraph_msgs::Clock;
use reflex_msgs::sensor_msgs::{CameraInfo, Image};
use reflex_msgs::std_msgs::Header;
use reflex_msgs::topics;
use reflex_msgs::vision_msgs::Detection2DArray;
use reflex_msgs::Mounting;
use reflex_runtime::{InputOptions, LatencyHistogram, Node, Publisher, RunError, Subscriber};
use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

/// What the chain is given to see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Perception {
    /// Detections from the world's ground truth with the noise model (no detector).
    GroundTruth,
    /// Rendered camera frames on `/camera/image`, for the detector.
    Rendered,
}

/// The simulator's end of the network.
pub struct Plant {
    node: Node,
    perception: Perception,
    detections: Publisher<Detection2DArray>,
    image_out: Publisher<Image>,
    state: Publisher<VehicleState>,
    info_out: Publisher<CameraInfo>,
    clock_out: Publisher<Clock>,
    commands: Subscriber<BrakeRequest>,
    /// The detector's output, watched to tell a silent detector from a silent arbiter.
    seen: Subscriber<Detection2DArray>,
    image: Image,
    /// The last command's level and deceleration.
    command: (u8, f64),
    /// Lock-step: the stamp of the next frame.
    next_stamp_ns: i64,
    /// How long a lock-step frame may wait for its command (wall time).
    pub answer_timeout: Duration,
    /// Real time: the brake unit is the product's actuator gateway
    /// (`reflex_monitor::actuator`): it obeys valid, advancing commands and brakes by itself
    /// when they stop, stop advancing or fail plausibility (the arbiter republishes at 50 Hz,
    /// so silence is never normal).
    gateway: ActuatorGateway,
    camera_muted: bool,
    /// Stop publishing the vehicle state (after one last message saying `Some(speed)`).
    state_frozen: bool,
}

/// What a real-time run's hook may change.
#[derive(Debug, Default, Clone)]
pub struct Controls {
    /// Stop publishing camera frames (or ground-truth detections).
    pub mute_camera: bool,
    /// Frames sent so far, and capture → command latencies of answered frames (ns) since the
    /// hook last took them (a soak run reads them per window).
    pub frames_sent: u64,
    pub latencies_ns: Vec<i64>,
    /// When the actuator gateway first braked by itself, and why (the cell's time, s).
    pub gateway_fallback: Option<(f64, Fallback)>,
    /// The level the brake unit applies now, and the ego's speed (read-only for the hook).
    pub applied_level: u8,
    pub speed_mps: f64,
    /// The vehicle state stops: one last message with this speed, then none (a dead state
    /// publisher, or one that lied once).
    pub freeze_vehicle_state: Option<f64>,
    /// Publish CameraInfo on every frame from now on, with this edit applied (a camera driver
    /// that sends a broken model).
    pub camera_info_edit: Option<fn(&mut CameraInfo)>,
}

impl Plant {
    pub fn new(node: Node, perception: Perception) -> Result<Self, RunError> {
        Ok(Self {
            detections: node.publisher(topics::DETECTIONS)?,
            image_out: node.publisher(topics::CAMERA_IMAGE)?,
            state: node.publisher(topics::VEHICLE_STATE)?,
            info_out: node.publisher(topics::CAMERA_INFO)?,
            clock_out: node.publisher(topics::CLOCK)?,
            commands: node.subscriber(topics::ACTUATOR_COMMAND, InputOptions::default().capacity(256))?,
            seen: node.subscriber(topics::DETECTIONS, InputOptions::default().capacity(256))?,
            image: Image { encoding: "rgb8".into(), ..Default::default() },
            node,
            perception,
            command: (0, 0.0),
            next_stamp_ns: 0,
            answer_timeout: Duration::from_secs(20),
            gateway: ActuatorGateway::new(GatewayConfig::default()),
            camera_muted: false,
            state_frozen: false,
        })
    }

    /// The brake unit's gateway with these settings (checked).
    pub fn set_gateway(&mut self, config: GatewayConfig) -> Result<(), RunError> {
        config.validate().map_err(|invalid| format!("gateway {invalid}"))?;
        self.gateway = ActuatorGateway::new(config);
        Ok(())
    }

    pub fn node(&self) -> &Node {
        &self.node
    }

    /// Publishes what the camera and the vehicle report: state, camera info (every 30th frame,
    /// and the first), and detections or a rendered frame. On the wall clock a rendered frame
    /// is stamped when it is ready, as a camera stamps the frame it hands over; `header` then
    /// carries that stamp back to the caller.
    fn publish_frame(
        &mut self,
        world: &mut World,
        renderer: &mut Renderer,
        header: &mut Header,
        frame: u64,
        controls: Option<&Controls>,
    ) -> Result<(), RunError> {
        let rendered = self.perception == Perception::Rendered && !self.camera_muted;
        if rendered {
            let (width, height) = (renderer.width, renderer.height);
            (self.image.width, self.image.height, self.image.step) = (width, height, width * 3);
            self.image.data.resize((width * height * 3) as usize, 0);
            world.render(renderer, &mut self.image.data);
            if !self.node.clock().is_sim() {
                header.stamp = self.node.clock().now();
            }
            self.image.header.clone_from(header);
        }
        let frozen_speed = controls.and_then(|c| c.freeze_vehicle_state);
        if !self.state_frozen {
            let state = VehicleState {
                header: header.clone(),
                speed_mps: frozen_speed.unwrap_or(world.ego.speed_mps),
                acceleration_mps2: -world.ego.decel_mps2,
                yaw_rate_radps: 0.0,
            };
            self.state.publish(&state)?;
            self.state_frozen = frozen_speed.is_some();
        }
        let edit = controls.and_then(|c| c.camera_info_edit);
        if frame.is_multiple_of(30) || edit.is_some() {
            let mut info = camera_info(world, renderer);
            info.header = header.clone();
            if let Some(edit) = edit {
                edit(&mut info);
            }
            self.info_out.publish(&info)?;
        }
        if self.camera_muted {
            return Ok(()); // the camera's stream is lost: state goes on, frames do not
        }
        match self.perception {
            Perception::GroundTruth => self.detections.publish(&world.ground_truth(header))?,
            Perception::Rendered => self.image_out.publish(&self.image)?,
        }
        Ok(())
    }

    /// An empty road: what the chain sees between cells.
    fn publish_empty(&mut self, config: &RunConfig, header: &mut Header, frame: u64) -> Result<(), RunError> {
        let quiet = Cell::empty();
        let mut world = World::new(&quiet, config);
        let mut renderer = world.renderer();
        self.publish_frame(&mut world, &mut renderer, header, frame, None)
    }

    /// Takes the arbiter's commands; in real time, each goes through the gateway.
    fn take_commands(&mut self, mut each: impl FnMut(&BrakeRequest)) {
        for _ in 0..reflex_runtime::DRAIN_LIMIT {
            let Some(command) = self.commands.recv() else { break };
            self.command = (command.message.level, command.message.deceleration_mps2);
            self.gateway.command(command.arrival_mono_ns, command.message, Counter::of(&command));
            each(command.message);
        }
    }

    /// What the brake unit does now (real time).
    fn demand(&mut self, speed_mps: f64) -> Demand {
        let now = self.node.clock().mono_ns();
        self.gateway.output(now, Some(speed_mps))
    }

    /// Real time: sends empty frames at `fps` (the chain's deadlines stay met, its tracks age
    /// out) until the whole chain answers them (a command stamped with a frame's stamp: the
    /// detector is up and warmed, the AEB and the arbiter are listening) and the arbiter has
    /// commanded no braking for `quiet`; fails after `timeout`.
    pub fn settle(&mut self, config: &RunConfig, quiet: Duration, timeout: Duration) -> Result<(), RunError> {
        let start = Instant::now();
        let mut calm_since: Option<Instant> = None;
        let mut header = Header { frame_id: "camera".into(), ..Default::default() };
        let mut frame = 0;
        let mut sent: HashSet<i64> = HashSet::new();
        let mut answered = 0u64;
        // A second of frames answered in a row.
        let needed = config.fps.ceil() as u64;
        while start.elapsed() < timeout {
            header.stamp = self.node.clock().now();
            self.publish_empty(config, &mut header, frame)?;
            sent.insert(header.stamp.as_nanos());
            frame += 1;
            std::thread::sleep(Duration::from_secs_f64(1.0 / config.fps));
            self.take_commands(|command| {
                if sent.remove(&command.header.stamp.as_nanos()) {
                    answered += 1;
                }
            });
            let following = self.demand(0.0).fallback.is_none();
            if self.command.0 == BrakeRequest::LEVEL_NONE && following && answered >= needed {
                let since = *calm_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= quiet {
                    return Ok(());
                }
            } else {
                calm_since = None;
            }
        }
        if answered < needed {
            return Err(format!(
                "the chain answered {answered} of {frame} frames in {timeout:?} (is the detector running?)"
            )
            .into());
        }
        let demand = self.demand(0.0);
        Err(format!(
            "the arbiter kept commanding braking (level {}) or the gateway braking by itself ({}) for {timeout:?}",
            self.command.0,
            demand.fallback.map_or("no", |f| f.describe())
        )
        .into())
    }

    /// Real time: runs a cell against the chain on the wall clock.
    pub fn run_cell(&mut self, cell: &Cell, config: &RunConfig) -> Result<CellResult, RunError> {
        self.run_cell_with(cell, config, |_, _| {})
    }

    /// Real time, with `hook(t, controls)` called on every step of the loop (`t`: the cell's
    /// time, s): a bench injects its faults from there, and may mute the camera.
    pub fn run_cell_with(
        &mut self,
        cell: &Cell,
        config: &RunConfig,
        mut hook: impl FnMut(f64, &mut Controls),
    ) -> Result<CellResult, RunError> {
        let mut controls = Controls::default();
        let mut world = World::new(cell, config);
        let mut renderer = world.renderer();
        let mut header = Header { frame_id: "camera".into(), ..Default::default() };
        let mut latency = LatencyHistogram::new();
        let mut sent: HashSet<i64> = HashSet::new();
        let mut answered: HashSet<i64> = HashSet::new();
        let start = Instant::now();
        let mut applied_demand: Option<(u8, f64)> = None;
        let mut frames = 0u64;
        self.state_frozen = false;
        'run: loop {
            let wall = start.elapsed().as_secs_f64();
            controls.speed_mps = world.ego.speed_mps;
            hook(world.time_s(), &mut controls);
            self.camera_muted = controls.mute_camera;
            while world.time_s() < wall {
                if world.observe() {
                    break 'run;
                }
                if world.frame_due() {
                    header.stamp = self.node.clock().now();
                    self.publish_frame(&mut world, &mut renderer, &mut header, frames, Some(&controls))?;
                    sent.insert(header.stamp.as_nanos());
                    frames += 1;
                    controls.frames_sent = frames;
                }
                world.advance();
            }
            let now = self.node.clock().now_ns();
            self.take_commands(|message| {
                let stamp = message.header.stamp.as_nanos();
                if sent.contains(&stamp) && answered.insert(stamp) {
                    latency.record_ns(now - stamp);
                    controls.latencies_ns.push(now - stamp);
                }
            });
            // The brake unit obeys its gateway: the arbiter's command while it is valid and
            // advancing, its own braking otherwise.
            let demand = self.demand(world.ego.speed_mps);
            if let Some(fallback) = demand.fallback {
                controls.gateway_fallback.get_or_insert((world.time_s(), fallback));
            }
            controls.applied_level = demand.level;
            if applied_demand != Some((demand.level, demand.decel_mps2)) {
                applied_demand = Some((demand.level, demand.decel_mps2));
                let decel = applied((demand.level, demand.decel_mps2));
                world.ego.command(decel);
                world.record(level_of(demand.level), decel);
            }
            self.node.wait_for_input(Duration::from_millis(1));
        }
        self.camera_muted = false;
        let mut result = world.finish();
        result.answered = answered.len() as u64;
        if latency.count() > 0 {
            let ms = |ns: u64| ns as f64 / 1e6;
            result.latency_ms =
                Some([ms(latency.quantile_ns(0.5)), ms(latency.quantile_ns(0.99)), ms(latency.max_ns())]);
        }
        Ok(result)
    }

    /// Lock-step: publishes `/clock`, state and frame at `stamp_ns`, then waits for the
    /// arbiter's command stamped alike. `Ok(None)` when `patient` is false and none came within
    /// `answer_timeout` (the chain is still starting).
    fn step_lockstep(
        &mut self,
        world: &mut World,
        renderer: &mut Renderer,
        stamp_ns: i64,
        frame: u64,
        patient: bool,
    ) -> Result<Option<(u8, f64)>, RunError> {
        self.node.clock().set_ns(stamp_ns);
        let mut header =
            Header { stamp: reflex_msgs::builtin_interfaces::Time::from_nanos(stamp_ns), frame_id: "camera".into() };
        self.clock_out.publish(&Clock { clock: header.stamp })?;
        self.publish_frame(world, renderer, &mut header, frame, None)?;
        let start = Instant::now();
        let limit = if patient { self.answer_timeout } else { Duration::from_millis(500) };
        let mut detected = false;
        loop {
            while let Some(seen) = self.seen.recv() {
                detected |= seen.message.header.stamp.as_nanos() == stamp_ns;
            }
            let mut answer = None;
            self.take_commands(|message| {
                if message.header.stamp.as_nanos() == stamp_ns {
                    answer = Some((message.level, message.deceleration_mps2));
                }
            });
            if answer.is_some() {
                return Ok(answer);
            }
            if start.elapsed() >= limit {
                if !patient {
                    return Ok(None);
                }
                let hop = match (self.perception, detected) {
                    (Perception::Rendered, false) => "the detector published no detections for it",
                    _ => "detections went out, but neither the AEB nor the arbiter answered",
                };
                return Err(format!(
                    "lock-step: no brake command for the frame at {:.3} s within {:?}: {hop}",
                    stamp_ns as f64 / 1e9,
                    self.answer_timeout
                )
                .into());
            }
            self.node.wait_for_input(Duration::from_millis(2));
        }
    }

    /// Lock-step: repeats the first empty frame until the chain answers it (its processes are
    /// up and connected); fails after `timeout` of wall time.
    pub fn start_lockstep(&mut self, config: &RunConfig, timeout: Duration) -> Result<(), RunError> {
        let start = Instant::now();
        let quiet = Cell::empty();
        let mut world = World::new(&quiet, config);
        let mut renderer = world.renderer();
        let stamp = self.next_stamp_ns.max(1);
        while start.elapsed() < timeout {
            if self.step_lockstep(&mut world, &mut renderer, stamp, 0, false)?.is_some() {
                self.next_stamp_ns = stamp + frame_period_ns(config);
                return Ok(());
            }
        }
        Err(format!(
            "lock-step: the chain did not answer a frame within {timeout:?}; are the detector, AEB, monitor and \
             arbiter running with use_sim_time?"
        )
        .into())
    }

    /// Lock-step: steps empty frames (at least `quiet_frames`) until the arbiter has answered
    /// `quiet_frames` in a row with no braking: the chain's tracks are gone and its monitor is
    /// nominal. Simulated time runs on without jumps, so deadlines stay met, and every step is
    /// answered before the next, so the number of steps is the same in every run.
    pub fn settle_lockstep(&mut self, config: &RunConfig, quiet_frames: u32, max_frames: u32) -> Result<(), RunError> {
        let quiet = Cell::empty();
        let mut world = World::new(&quiet, config);
        let mut renderer = world.renderer();
        let mut calm = 0;
        for _ in 0..max_frames {
            let stamp = self.next_stamp_ns;
            self.next_stamp_ns += frame_period_ns(config);
            match self.step_lockstep(&mut world, &mut renderer, stamp, 0, true)? {
                Some((level, _)) if level == BrakeRequest::LEVEL_NONE => calm += 1,
                _ => calm = 0,
            }
            if calm >= quiet_frames {
                return Ok(());
            }
        }
        Err(format!(
            "lock-step: the arbiter still commanded braking (level {}) after {max_frames} empty frames",
            self.command.0
        )
        .into())
    }

    /// Lock-step: runs a cell; every frame waits for its command. The cell's time 0 is the
    /// simulated time after the last settling frame.
    pub fn run_cell_lockstep(&mut self, cell: &Cell, config: &RunConfig) -> Result<CellResult, RunError> {
        let base = self.next_stamp_ns;
        let mut world = World::new(cell, config);
        let mut renderer = world.renderer();
        // Commands on their way to the actuator: (simulated time they act, level, decel).
        let mut in_flight: VecDeque<(f64, u8, f64)> = VecDeque::new();
        let mut frames = 0u64;
        while !world.observe() {
            let t = world.time_s();
            if world.frame_due() {
                let stamp = base + (t * 1e9).round() as i64;
                self.next_stamp_ns = stamp + frame_period_ns(config);
                let (level, decel) =
                    self.step_lockstep(&mut world, &mut renderer, stamp, frames, true)?.expect("patient steps answer");
                frames += 1;
                in_flight.push_back((t + config.perception_latency_s, level, decel));
            }
            while in_flight.front().is_some_and(|(at, _, _)| *at <= t + 1e-9) {
                let (_, level, decel) = in_flight.pop_front().expect("checked");
                let decel = applied((level, decel));
                world.ego.command(decel);
                world.record(level_of(level), decel);
            }
            world.advance();
        }
        Ok(world.finish())
    }
}

fn frame_period_ns(config: &RunConfig) -> i64 {
    (1e9 / config.fps).round() as i64
}

/// The camera's intrinsics and mounting as the camera node would publish them.
fn camera_info(world: &World, renderer: &Renderer) -> CameraInfo {
    let camera = world.camera;
    let mut info = CameraInfo::pinhole(
        renderer.width,
        renderer.height,
        camera.fx,
        camera.fy,
        camera.cx,
        camera.cy,
        Mounting { height_m: camera.height_m, pitch_rad: camera.pitch_rad },
    );
    info.header.frame_id = "camera".into();
    info
}

/// The deceleration a command asks of the brake: partial and full braking only.
fn applied((level, decel): (u8, f64)) -> f64 {
    if level >= BrakeRequest::LEVEL_PARTIAL {
        decel
    } else {
        0.0
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
