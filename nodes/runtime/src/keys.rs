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

/// Where a node listens for injected faults: `<prefix>/_fault/<name>` (see [`crate::fault`]).
pub fn fault_key(prefix: &str, node: &str) -> String {
    format!("{}/{node}", topic_key(prefix, "_fault"))
}

/// Where a node states its health: `<prefix>/_health/<name>` (see [`crate::health`]).
pub fn health_key(prefix: &str, node: &str) -> String {
    topic_key(prefix, &health_topic(node))
}

/// The health key as a topic name relative to the prefix: `/_health/<name>`.
pub fn health_topic(node: &str) -> String {
    format!("/_health/{node}")
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

/// Whether an endpoint token is for a publisher or a subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointKind {
    Publisher,
    Subscriber,
}

impl EndpointKind {
    fn chunk(self) -> &'static str {
        match self {
            Self::Publisher => "_pub",
            Self::Subscriber => "_sub",
        }
    }
}

/// A publisher's or subscriber's liveliness token, as `reflex topic list` reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointInfo {
    pub kind: EndpointKind,
    pub node: String,
    pub topic: String,
    pub type_name: String,
}

/// `<prefix>/_pub/<node>/<%topic>/<type%with%percent>`: `/` inside names becomes `%`, as
/// rmw_zenoh mangles them.
pub fn endpoint_token(prefix: &str, kind: EndpointKind, node: &str, topic: &str, type_name: &str) -> String {
    format!("{}/{node}/{}/{}", topic_key(prefix, kind.chunk()), mangle(topic), mangle(type_name))
}

/// Key expression matching every endpoint token of `kind`.
pub fn all_endpoints(prefix: &str, kind: EndpointKind) -> String {
    format!("{}/**", topic_key(prefix, kind.chunk()))
}

pub fn parse_endpoint_token(prefix: &str, key: &str) -> Option<EndpointInfo> {
    let (kind, rest) = [EndpointKind::Publisher, EndpointKind::Subscriber]
        .into_iter()
        .find_map(|kind| Some((kind, key.strip_prefix(&topic_key(prefix, kind.chunk()))?.strip_prefix('/')?)))?;
    let mut parts = rest.split('/');
    let (node, topic, type_name) = (parts.next()?, parts.next()?, parts.next()?);
    parts.next().is_none().then(|| EndpointInfo {
        kind,
        node: node.to_string(),
        topic: unmangle(topic),
        type_name: unmangle(type_name),
    })
}

fn mangle(name: &str) -> String {
    name.replace('/', "%")
}

fn unmangle(name: &str) -> String {
    name.replace('%', "/")
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
        assert_eq!(health_key("reflex", "aeb"), "reflex/_health/aeb");
    }

    #[test]
    fn endpoint_tokens_round_trip() {
        let key = endpoint_token(
            "reflex",
            EndpointKind::Subscriber,
            "aeb",
            "/perception/detections",
            "vision_msgs/msg/Detection2DArray",
        );
        assert_eq!(key, "reflex/_sub/aeb/%perception%detections/vision_msgs%msg%Detection2DArray");
        let info = parse_endpoint_token("reflex", &key).unwrap();
        assert_eq!(info.kind, EndpointKind::Subscriber);
        assert_eq!((info.node.as_str(), info.topic.as_str()), ("aeb", "/perception/detections"));
        assert_eq!(info.type_name, "vision_msgs/msg/Detection2DArray");
        assert!(parse_endpoint_token("reflex", "reflex/_pub/aeb/x").is_none());
    }
}
