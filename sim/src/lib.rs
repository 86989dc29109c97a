//! Closed-loop simulation of the AEB chain: the ego's longitudinal dynamics ([`dynamics`]),
//! actors and ground-truth perception ([`world`]), Euro NCAP-style scenario files with swept
//! grids ([`scenario`]), scoring by the 2026 bands ([`scoring`]), and cell runs in closed loop
//! with the real AEB code ([`run`]).
//!
//! Built so far: the ground-truth perception mode, in process. Still to come (see the
//! simulator issue): the camera renderer, the detector trained on its images, and the
//! multi-process runs in lock-step and real time.

pub mod dataset;
pub mod dynamics;
pub mod plant;
pub mod render;
pub mod run;
pub mod scenario;
pub mod scoring;
pub mod world;
