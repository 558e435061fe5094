//! What a stored device change does to the sessions and streams of that device, on whichever
//! node holds them: the node that wrote it, and (over NATS) every other node.

use crate::presence::Presence;
use crate::registry::{DeviceRecord, DeviceStatus};
use crate::streams::Streams;

/// Applies device `id`'s stored state `record` (`None`: deleted). Deleted or disabled: every
/// session of the device and its modules is closed, and its streams end with 1008 and a
/// `revoked` record. Otherwise the sessions signed with a key the device no longer has are
/// closed (open streams stay: they were opened with single-use stream tokens, not the key).
/// Call only after the change is stored, so a device that reconnects at once is judged by it.
pub fn device_changed(
    presence: &Presence,
    streams: &Streams,
    id: &str,
    record: Option<&DeviceRecord>,
) {
    match record {
        Some(r) if r.status != DeviceStatus::Disabled => {
            let closed = presence.revoke_stale_device_keys(id, &r.keys());
            if closed > 0 {
                tracing::info!(
                    device = id,
                    sessions = closed,
                    "device keys replaced; closed the sessions signed with an old key"
                );
            }
        }
        _ => {
            presence.revoke_device(id);
            let ended = streams.revoke_device(id);
            if ended > 0 {
                tracing::info!(
                    device = id,
                    streams = ended,
                    "device disabled or deleted; closed its streams"
                );
            }
        }
    }
}
