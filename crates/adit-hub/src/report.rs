//! One-line rendering of an error and its causes (`adit_proto::report`, where the device
//! agent, which does not link the hub, finds it too).

pub use adit_proto::report::Report;
