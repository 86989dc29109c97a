//! Closed-loop simulation of the AEB chain: the ego's longitudinal dynamics ([`dynamics`]),
//! actors and ground-truth perception ([`actors`]), Euro NCAP-style scenario files with swept
//! grids ([`scenario`]), scoring by the 2026 bands ([`scoring`]), the cell's closed loop
//! ([`world`]) with its configuration and result ([`result`]), cell runs with the real AEB code
//! in process ([`run`]), the camera renderer ([`render`]) and its training data ([`dataset`]),
//! the plant that drives the nodes as processes in lock-step or real time ([`plant`]), and
//! suites of cells with their report and plots ([`suite`], [`plot`]).

pub mod actors;
pub mod dataset;
pub mod dynamics;
#[cfg(test)]
mod fixtures;
pub mod plant;
pub mod plot;
pub mod render;
pub mod result;
pub mod run;
pub mod scoring;
pub mod suite;
pub mod world;

/// Scenario files (their own crate, `reflex-scenario`).
pub use reflex_scenario::scenario;
