//! What the fuzz targets share: one runtime per process, in-memory byte streams, the hub's
//! checks on decoded MQTT packets, and seeds built with Adit's own encoders.
//!
//! Each target in `fuzz_targets/` feeds remote input to one decoder of the hub or the SDKs
//! and checks an invariant where one exists. `fuzz/run` builds and runs them.
#![warn(missing_docs)]

pub mod memory_io;
pub mod mqtt_checks;
pub mod mqtt_seeds;
pub mod runtime;
pub mod seeds;
pub mod ws_frames;
