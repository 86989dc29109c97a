//! Euro NCAP-style scenario files of the simulator, apart from the simulator so they can be
//! read, checked and fuzzed on their own: [`scenario`] (the YAML format, every number given as a
//! list sweeps an axis of the grid, errors with file, line and column) and [`actor`] (the
//! targets on the road).

pub mod actor;
pub mod scenario;

/// The ego vehicle's width, m (placing actors at a lateral overlap needs it).
pub const EGO_WIDTH_M: f64 = 1.8;
