//! The built-in node kinds a launch file may name, and their lookup.

use reflex_runtime::NodeKind;

/// Every kind `reflex node KIND` can run.
pub const KINDS: &[&NodeKind] = &[
    &reflex_camera::CAMERA_KIND,
    &reflex_camera::TEST_PATTERN_KIND,
    &reflex_camera::FRAME_STATS_KIND,
    &reflex_detector::DETECTOR_KIND,
    &reflex_aeb::AEB_KIND,
    &reflex_monitor::node::MONITOR_KIND,
    &reflex_monitor::node::ARBITER_KIND,
    &reflex_monitor::node::ACTUATOR_KIND,
    &reflex_recorder::RECORDER_KIND,
];

pub fn find(name: &str) -> Option<&'static NodeKind> {
    KINDS.iter().copied().find(|k| k.name == name)
}

/// The closest kind name, for "did you mean" hints.
pub fn closest(name: &str) -> Option<&'static str> {
    KINDS.iter().map(|k| (edit_distance(name, k.name), k.name)).filter(|(d, _)| *d <= 3).min().map(|(_, n)| n)
}

pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_kind_names() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(closest("test-patern"), Some("test-pattern"));
        assert_eq!(closest("frame_stats"), Some("frame-stats"));
        assert_eq!(closest("lidar"), None);
    }
}
