//! The mapping from ROS-style topic names to zenoh key expressions, kept in this one module so
//! that an rmw_zenoh-compatible layout can replace it later.

/// `/camera/image` under prefix `reflex` → `reflex/camera/image`.
pub fn topic_key(prefix: &str, topic: &str) -> String {
    let topic = topic.trim_matches('/');
    if prefix.is_empty() {
        topic.to_string()
    } else {
        format!("{prefix}/{topic}")
    }
}

/// Inverse of [`topic_key`]: the topic name of a key under `prefix`.
pub fn topic_of_key(prefix: &str, key: &str) -> Option<String> {
    let rest = if prefix.is_empty() { Some(key) } else { key.strip_prefix(prefix)?.strip_prefix('/') };
    rest.map(|r| format!("/{r}"))
}

/// Liveliness token of a node: `<prefix>/_node/<name>/<host>/<pid>`.
pub fn liveliness_token(prefix: &str, node: &str, host: &str, pid: u32) -> String {
    format!("{}/{node}/{host}/{pid}", node_space(prefix))
}

/// Key expression matching every node's liveliness token.
pub fn all_nodes(prefix: &str) -> String {
    format!("{}/**", node_space(prefix))
}

fn node_space(prefix: &str) -> String {
    topic_key(prefix, "_node")
}

/// Node name, host and pid from a liveliness token key.
pub fn parse_liveliness_token(prefix: &str, key: &str) -> Option<(String, String, u32)> {
    let rest = key.strip_prefix(&node_space(prefix))?.strip_prefix('/')?;
    let mut parts = rest.split('/');
    let (node, host, pid) = (parts.next()?, parts.next()?, parts.next()?.parse().ok()?);
    parts.next().is_none().then(|| (node.to_string(), host.to_string(), pid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_and_tokens_round_trip() {
        assert_eq!(topic_key("reflex", "/camera/image"), "reflex/camera/image");
        assert_eq!(topic_of_key("reflex", "reflex/camera/image").as_deref(), Some("/camera/image"));
        assert_eq!(topic_of_key("reflex", "other/camera"), None);
        let token = liveliness_token("reflex", "detector", "car1", 42);
        assert_eq!(token, "reflex/_node/detector/car1/42");
        assert_eq!(parse_liveliness_token("reflex", &token), Some(("detector".into(), "car1".into(), 42)));
        assert_eq!(parse_liveliness_token("reflex", "reflex/_node/x/y"), None);
    }
}
