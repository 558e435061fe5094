//! The Adit hub: one server process that owns the identity registry, authenticates devices and
//! services, delivers stream requests and relays stream bytes.
//!
//! # Layout
//! - [`config`]: [`HubConfig`], plain data with defaults that need no setup.
//! - [`hub`]: [`Hub::bind`] wires everything and [`Hub::run`] serves until cancelled.
//! - [`registry`]: devices and shared access policies in SQLite or PostgreSQL (no HTTP/MQTT).
//! - [`auth`]: SAS authentication through `adit-proto`'s verifier; [`throttle`] limits failures.
//! - [`api`]: the HTTPS service API in Azure's REST shape.
//! - [`server`]: TLS accept loops (bounded, tracked for shutdown) and HTTP/1.1 serving.
//! - [`mqtt`]: the device endpoint, MQTT 3.1.1 over TLS and over WebSocket.
//! - [`presence`]: connected sessions and how to reach them.
//! - [`node`]: this node's id, recorded with the connections it holds.
//! - [`policy_refresh`]: re-reads policy keys, so changes made elsewhere hold here too.
//! - [`streams`]: stream orchestration (initiate, deliver, answer, records, limits).
//! - [`gateway`]: the streaming gateway (rendezvous of both halves, relay).
//! - [`ws_upgrade`]: the server side of the WebSocket handshake.
//! - [`tls`]: configured certificates, or a dev CA that issues one.
//! - [`report`]: one-line error chains for logs.
//! - [`secret_file`]: files holding a secret, created owner-only.
//! - [`diagnostics`]: the DeviceStreams / Connections / Authentication log (JSON lines).
//! - [`metrics`]: Prometheus counters; [`admin`]: the loopback `/metrics` and `/healthz`.

pub mod admin;
pub mod api;
pub mod auth;
pub mod cluster;
pub mod config;
pub mod console;
pub mod device_resync;
pub mod diagnostics;
pub mod gateway;
pub mod hub;
pub mod listen;
pub mod metrics;
pub mod mqtt;
pub mod node;
pub mod policy_refresh;
pub mod presence;
pub mod registry;
pub mod report;
pub mod revocation;
pub mod secret_file;
pub mod server;
pub mod streams;
pub mod throttle;
pub mod tls;
pub mod ws_upgrade;

pub use config::HubConfig;
pub use hub::{Bootstrap, Hub, HubError};
