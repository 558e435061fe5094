//! This hub node's identity.
//!
//! The registry records which node holds each device connection, so that a node starting
//! after a crash can mark exactly its own devices disconnected. The id must therefore be the
//! same across restarts of one node and differ between nodes that share a registry. The
//! default, the machine's host name, is both for the usual one-node-per-machine deployment;
//! several nodes on one machine sharing a PostgreSQL registry need `--node-id` each.

/// Longest node id accepted, in bytes.
pub const MAX_NODE_ID_LEN: usize = 128;

/// Used when the host name cannot be read: stable, so a lone node still clears its devices.
pub const FALLBACK_NODE_ID: &str = "adit-hub";

/// The default node id: the host name (from the kernel, `/etc/hostname` or `$HOSTNAME`), or
/// [`FALLBACK_NODE_ID`] when none of those gives a valid id.
pub fn default_node_id() -> String {
    let candidates = [
        std::fs::read_to_string("/proc/sys/kernel/hostname").ok(),
        std::fs::read_to_string("/etc/hostname").ok(),
        std::env::var("HOSTNAME").ok(),
    ];
    candidates
        .into_iter()
        .flatten()
        .map(|name| name.trim().to_string())
        .find(|name| validate(name).is_ok())
        .unwrap_or_else(|| FALLBACK_NODE_ID.to_string())
}

/// Checks an operator-given node id: 1 to [`MAX_NODE_ID_LEN`] bytes of visible ASCII
/// (it lands in the registry and in logs, so no spaces or control characters).
pub fn validate(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > MAX_NODE_ID_LEN {
        return Err(format!(
            "node id must be 1 to {MAX_NODE_ID_LEN} bytes long, not {}",
            id.len()
        ));
    }
    if !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "node id {id:?} must be visible ASCII without spaces"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_valid_and_stable() {
        let id = default_node_id();
        assert!(validate(&id).is_ok(), "{id:?}");
        assert_eq!(id, default_node_id());
    }

    #[test]
    fn validation_bounds() {
        assert!(validate("node-1.example").is_ok());
        assert!(validate(&"n".repeat(MAX_NODE_ID_LEN)).is_ok());
        assert!(validate("").is_err());
        assert!(validate(&"n".repeat(MAX_NODE_ID_LEN + 1)).is_err());
        assert!(validate("two words").is_err());
        assert!(validate("tab\t").is_err());
        assert!(validate("é").is_err());
    }
}
