//! Closed-loop simulation of the AEB chain: the ego's longitudinal dynamics ([`dynamics`]),
//! actors and ground-truth perception ([`world`]), Euro NCAP-style scenario files with swept
//! grids ([`scenario`]), scoring by the 2026 bands ([`scoring`]), and cell runs in closed loop
//! with the real AEB code ([`run`]).
//! The camera renderer ([`render`]) and its training data ([`dataset`]), and the plant that
//! drives the nodes as processes in lock-step or real time ([`plant`]).

pub mod dataset;
pub mod dynamics;
pub mod plant;
pub mod render;
pub mod run;
pub mod scoring;
pub mod world;

/// Scenario files (their own crate, `reflex-scenario`).
pub use reflex_scenario::scenario;
