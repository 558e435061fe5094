//! Test harness for Adit: real hubs on loopback port 0, HTTP clients that trust their dev CA,
//! throwaway PostgreSQL databases, a Python environment with Azure's SDKs, and a real HTTP
//! CONNECT proxy (tinyproxy) that alone resolves a hub's name, and network namespaces joined by
//! an emulated WAN link (delay, loss, blackhole).

mod admin_metrics;
mod cluster_access;
mod emulated_link;
mod gateway_client;
mod http;
mod hub_process;
mod mqtt_client;
mod netns;
mod postgres;
mod python;
mod running;
mod sshd;
pub mod stream_device;
mod tcp_server;
mod test_hub;
mod tinyproxy;
mod veth;

pub use admin_metrics::admin_metric;
pub use cluster_access::{cluster_node, nats_url, via_port};
pub use emulated_link::{EmulatedLink, LinkProfile, LinkStats};
pub use gateway_client::{
    GatewayWs, InitiateReply, gateway_connect, gateway_connect_with, gateway_status,
};
pub use http::{client_tls_config, https_client};
pub use hub_process::{FREE_PORTS, HubProcess};
pub use mqtt_client::{RawMqtt, device_token};
pub use netns::{NetNs, NetnsError, netns_support};
pub use postgres::TestDatabase;
pub use python::{PythonEnv, python_env};
pub use running::Running;
pub use sshd::{Sshd, free_port};
pub use tcp_server::{echo_server, tcp_server};
pub use test_hub::TestHub;
pub use tinyproxy::Tinyproxy;
pub use veth::VethLink;

/// Path of the workspace root (for fixtures such as `tests/python`).
pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| std::path::PathBuf::from("."))
}
