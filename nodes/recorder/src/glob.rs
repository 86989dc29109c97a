//! Topic filters: `/camera/image` (exact), `/camera/*` (one segment), `/perception/**` or `**`
//! (any number of segments).

/// Whether `topic` matches `pattern`.
pub fn matches(pattern: &str, topic: &str) -> bool {
    let pattern: Vec<&str> = pattern.trim_matches('/').split('/').collect();
    let topic: Vec<&str> = topic.trim_matches('/').split('/').collect();
    match_segments(&pattern, &topic)
}

fn match_segments(pattern: &[&str], topic: &[&str]) -> bool {
    match (pattern.first(), topic.first()) {
        (None, None) => true,
        (Some(&"**"), _) => {
            match_segments(&pattern[1..], topic) || (!topic.is_empty() && match_segments(pattern, &topic[1..]))
        }
        (Some(p), Some(t)) => segment(p, t) && match_segments(&pattern[1..], &topic[1..]),
        _ => false,
    }
}

/// One segment with `*` wildcards inside it.
fn segment(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => {
            text.starts_with(head) && (0..=text.len() - head.len()).any(|i| segment(tail, &text[head.len() + i..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn patterns() {
        assert!(matches("/camera/image", "/camera/image"));
        assert!(!matches("/camera/image", "/camera/image/compressed"));
        assert!(matches("/camera/*", "/camera/image"));
        assert!(!matches("/camera/*", "/camera/image/compressed"));
        assert!(matches("/camera/**", "/camera/image/compressed"));
        assert!(matches("**", "/anything/at/all"));
        assert!(matches("/*/image", "/front/image"));
        assert!(matches("/cam*/image", "/camera/image"));
        assert!(!matches("/cam*/image", "/lidar/image"));
        assert!(matches("/perception/**", "/perception/detections"));
    }
}
