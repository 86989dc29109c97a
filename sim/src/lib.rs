//! Closed-loop simulation of the AEB chain: the ego's longitudinal dynamics ([`dynamics`]),
//! actors and ground-truth perception ([`world`]), Euro NCAP-style scenario files with swept
//! grids ([`scenario`]), scoring by the 2026 bands ([`scoring`]), cell runs in closed loop with
//! the real AEB code ([`run`]), the camera renderer ([`render`]) and its training data
//! ([`dataset`]), the plant that drives the nodes as processes in lock-step or real time
//! ([`plant`]), and suites of cells with their report and plots ([`suite`], [`plot`]).

pub mod dataset;
pub mod dynamics;
pub mod plant;
pub mod plot;
pub mod render;
pub mod run;
pub mod scoring;
pub mod suite;
pub mod world;

/// Scenario files (their own crate, `reflex-scenario`).
pub use reflex_scenario::scenario;
