//! The two ends of every stream case, as a user runs them: `adit device-proxy` (MQTT over
//! WebSocket, the default) forwarding stream `echo` to the bench's target, and `adit
//! service-proxy` turning each local TCP connection into a stream to that device.

use std::path::Path;
use std::process::{Command, Stdio};

use adit_bench::wait_listening;
use adit_testkit::{Running, free_port};

fn quiet(c: &mut Command) -> &mut Command {
    c.stdout(Stdio::null())
        .stderr(Stdio::null())
        .env("ADIT_LOG", "warn")
        .env_remove("ADIT_DATA_DIR")
}

/// `adit device-proxy` for the device `connection_string` names (its `HostName` is the node
/// or balancer it connects to).
pub fn device(
    bin: &Path,
    connection_string: &str,
    ca: &Path,
    target: u16,
) -> anyhow::Result<Running> {
    let mut c = Command::new(bin);
    c.args(["device-proxy", "--map", &format!("echo=127.0.0.1:{target}")])
        .env("ADIT_DEVICE_CONNECTION_STRING", connection_string)
        .env("ADIT_CA_FILE", ca);
    Ok(Running(quiet(&mut c).spawn()?))
}

/// `adit service-proxy` to `device` with the service `connection_string` (its `HostName` is
/// the node or balancer it calls); returns it and the local port it listens on.
pub fn service(
    bin: &Path,
    connection_string: &str,
    ca: &Path,
    device: &str,
) -> anyhow::Result<(Running, u16)> {
    let port = free_port();
    let mut c = Command::new(bin);
    c.args([
        "service-proxy",
        "--device",
        device,
        "--stream-name",
        "echo",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--connect-timeout",
        "30",
    ])
    .env("ADIT_CONNECTION_STRING", connection_string)
    .env("ADIT_CA_FILE", ca);
    let running = Running(quiet(&mut c).spawn()?);
    wait_listening(port)?;
    Ok((running, port))
}
