//! The Adit stream protocol, `adit.stream.v1`: what Adit's own clients speak inside one
//! gateway stream when both ends choose it (WebSocket subprotocol [`SUBPROTOCOL`]). Azure's
//! clients never see it: a stream without the subprotocol carries raw bytes, as before.
//!
//! It adds two things a raw stream lacks:
//! - **Many TCP connections over one stream**, each with its own credit-based flow control
//!   ([`flow`]), so a slow reader stalls only its own connection, and fair scheduling
//!   ([`schedule`]), so a keystroke never waits behind a bulk transfer.
//! - **Resumption**: each side keeps what it sent until acknowledged ([`replay`]), so when a
//!   leg of the stream drops and reattaches, both replay from the other's received position
//!   and no byte is lost, duplicated or reordered.
//!
//! Each connection's receive window adapts to the path ([`bdp`]): small on a short path, so
//! what a keystroke waits behind stays small, and as large as the bandwidth-delay product on a
//! long fat one, so a bulk transfer is not capped at window / RTT.
//!
//! This crate is sans-IO: frames in and out as bytes ([`frame`]), state machines driven by the
//! caller; [`mux`] puts frames, flow control and scheduling together for one side of a stream. The spec, in the project's words: `docs/stream-protocol.md`.
#![warn(missing_docs)]

pub mod bdp;
pub mod flow;
pub mod frame;
pub mod mux;
pub mod replay;
pub mod schedule;

pub use bdp::BdpEstimator;
pub use flow::{FlowError, RecvWindow, SendCredit};
pub use frame::{
    Frame, FrameError, FrameType, Header, ResetCode, SUBPROTOCOL, decode, peek_header,
};
pub use mux::{Event, Mux, MuxError, Role, Settings};
pub use replay::{ReplayBuffer, ReplayError};
pub use schedule::Scheduler;
