//! The stages of a stream's life (DESIGN.md: requested -> delivered -> accepted ->
//! connecting -> established) and the process that dies at each.

use std::fmt;

/// Where the stream is when the victim is killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The service's request waits at the hub for an offline device.
    Requested,
    /// The device has the request and has not answered (its local target hangs).
    Delivered,
    /// The device accepted and joined the gateway; the service has its 200 and has not joined.
    Accepted,
    /// The service's gateway connection is up (TCP, TLS) with its upgrade request half sent.
    Connecting,
    /// Both halves joined; bytes flow.
    Relaying,
}

impl Stage {
    /// Every stage, in order.
    pub const ALL: [Stage; 5] = [
        Stage::Requested,
        Stage::Delivered,
        Stage::Accepted,
        Stage::Connecting,
        Stage::Relaying,
    ];
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Requested => "requested",
            Stage::Delivered => "delivered",
            Stage::Accepted => "accepted",
            Stage::Connecting => "connecting",
            Stage::Relaying => "relaying",
        })
    }
}

/// Which process gets SIGKILL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Victim {
    /// `adit device-proxy`.
    Device,
    /// The service side (`adit connect`, or the holding service peer).
    Service,
    /// `adit hub`.
    Hub,
}

impl Victim {
    /// Every victim.
    pub const ALL: [Victim; 3] = [Victim::Device, Victim::Service, Victim::Hub];
}

impl fmt::Display for Victim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Victim::Device => "device-proxy",
            Victim::Service => "service",
            Victim::Hub => "hub",
        })
    }
}
