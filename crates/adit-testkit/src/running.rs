//! A child process (a device proxy, a service proxy, `adit connect`) that a test owns.

use std::process::Child;

/// A child process killed and reaped when the test ends, passed or failed, so no proxy
/// outlives its test holding ports.
#[derive(Debug)]
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
