//! Euro NCAP 2026 scoring of AEB cells: relative impact speed → colour band → points, and the
//! forward-collision-warning verdict.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Colour {
    Green,
    Yellow,
    Orange,
    Brown,
    Red,
}

impl Colour {
    pub fn points(self) -> f64 {
        match self {
            Colour::Green => 1.0,
            Colour::Yellow => 0.75,
            Colour::Orange => 0.5,
            Colour::Brown => 0.25,
            Colour::Red => 0.0,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Colour::Green => "green",
            Colour::Yellow => "yellow",
            Colour::Orange => "orange",
            Colour::Brown => "brown",
            Colour::Red => "red",
        }
    }
}

/// Below this relative impact speed a contact counts as avoided (measurement resolution).
pub const NO_IMPACT_KMH: f64 = 0.5;

/// The band of a cell: `vut_kmh` is the test speed of the vehicle under test, `impact_kmh`
/// the relative impact speed (0 when avoided). Rows of the 2026 protocol: 10–20 km/h any
/// impact is red; 30: ≤ 10 brown; 40: ≤ 10 orange, ≤ 20 brown; ≥ 50: ≤ 10 yellow, ≤ 20
/// orange, ≤ 30 brown. Speeds between rows take the stricter, lower row.
pub fn colour(vut_kmh: f64, impact_kmh: f64) -> Colour {
    if impact_kmh < NO_IMPACT_KMH {
        return Colour::Green;
    }
    let bands: &[(f64, Colour)] = if vut_kmh >= 50.0 {
        &[(10.0, Colour::Yellow), (20.0, Colour::Orange), (30.0, Colour::Brown)]
    } else if vut_kmh >= 40.0 {
        &[(10.0, Colour::Orange), (20.0, Colour::Brown)]
    } else if vut_kmh >= 30.0 {
        &[(10.0, Colour::Brown)]
    } else {
        &[]
    };
    bands.iter().find(|(limit, _)| impact_kmh <= *limit).map_or(Colour::Red, |(_, colour)| *colour)
}

/// A forward-collision warning earns nothing when it comes at TTC ≤ 1.7 s, or not at all.
pub fn fcw_in_time(warning_ttc_s: Option<f64>) -> bool {
    warning_ttc_s.is_some_and(|ttc| ttc > 1.7)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_of_the_2026_protocol() {
        assert_eq!(colour(20.0, 0.0), Colour::Green);
        assert_eq!(colour(20.0, 3.0), Colour::Red);
        assert_eq!(colour(25.0, 3.0), Colour::Red, "between rows: the stricter");
        assert_eq!(colour(30.0, 10.0), Colour::Brown);
        assert_eq!(colour(30.0, 10.1), Colour::Red);
        assert_eq!(colour(40.0, 9.0), Colour::Orange);
        assert_eq!(colour(40.0, 15.0), Colour::Brown);
        assert_eq!(colour(40.0, 25.0), Colour::Red);
        assert_eq!(colour(50.0, 5.0), Colour::Yellow);
        assert_eq!(colour(60.0, 20.0), Colour::Orange);
        assert_eq!(colour(80.0, 30.0), Colour::Brown);
        assert_eq!(colour(80.0, 30.5), Colour::Red);
        assert_eq!(
            [Colour::Green, Colour::Yellow, Colour::Orange, Colour::Brown, Colour::Red].map(Colour::points),
            [1.0, 0.75, 0.5, 0.25, 0.0]
        );
        assert!(fcw_in_time(Some(2.1)) && !fcw_in_time(Some(1.7)) && !fcw_in_time(None));
    }
}
