//! A blackholed device path with the real binaries: the device proxy runs in a network
//! namespace of its own, joined to the hub's by the testkit's emulated link (TUN devices and a
//! user-space forwarder: this kernel has no netem). The link is cut (every packet silently
//! dropped), the hub and the device must notice through their keep-alives, and once the link
//! is restored the device must be back with a working stream.
//!
//! Needs root and `/dev/net/tun`; without them it says why and passes (CI runs as root).
//! The long fault matrix is `bench/faults-net`.

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use adit_testkit::{EmulatedLink, HubProcess, LinkProfile, Running, admin_metric};

const ADIT: &str = env!("CARGO_BIN_EXE_adit");

/// Polls the hub's connected-device gauge until it reads `n`: how long that took.
fn wait_connected(hub: &HubProcess, n: f64, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < within {
        if admin_metric(hub.admin_addr, "adit_connected_devices") == Some(n) {
            return Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// An echo server on the hub side of the link: the device proxy reaches it across the link.
fn echo_across(link: &EmulatedLink) -> String {
    let listener = TcpListener::bind((link.hub_addr(), 0)).expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { break };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 || conn.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr.to_string()
}

/// `echo ok | adit connect wan`: whether it came back.
fn echoes(hub: &HubProcess) -> bool {
    let Ok(mut child) = Command::new(ADIT)
        .args(["connect", "wan", "--connect-timeout", "5"])
        .env("ADIT_CONNECTION_STRING", hub.owner_connection_string())
        .env("ADIT_CA_FILE", hub.ca_path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    else {
        return false;
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(b"ok\n");
    }
    child
        .wait_with_output()
        .is_ok_and(|o| o.status.success() && o.stdout == b"ok\n")
}

#[test]
fn a_blackholed_device_is_detected_and_back_after_restore() {
    if let Err(why) = adit_testkit::netns_support() {
        eprintln!("SKIPPED a_blackholed_device_is_detected_and_back_after_restore: {why}");
        return;
    }
    let link = EmulatedLink::start(LinkProfile::new(Duration::from_millis(20), 0.0))
        .expect("emulated link");
    let ip = link.hub_addr().to_string();
    let hub = HubProcess::start_on_free_ports(
        ADIT,
        &[
            "--listen-addr",
            &ip,
            "--hostname",
            &ip,
            "--ping-interval",
            "1",
            "--pong-timeout",
            "1",
        ],
    );
    let out = hub.cli(&["device", "create", "wan"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cs = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let logs = tempfile::tempdir().expect("temp dir");
    let log_path = logs.path().join("device-proxy.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let device_log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let _device = Running(
        link.netns()
            .command(ADIT)
            .args(["device-proxy", "--target", &echo_across(&link)])
            .args(["--ping-interval", "1", "--pong-timeout", "1"])
            .env("ADIT_DEVICE_CONNECTION_STRING", &cs)
            .env("ADIT_CA_FILE", hub.ca_path())
            .env("ADIT_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("device-proxy starts in the namespace"),
    );
    assert!(
        wait_connected(&hub, 1.0, Duration::from_secs(15)).is_some(),
        "the device never connected across the link\n{}",
        device_log()
    );
    assert!(echoes(&hub), "no echo before the cut\n{}", device_log());

    link.set_blackhole(true);
    let detected = wait_connected(&hub, 0.0, Duration::from_secs(10));
    assert!(
        detected.is_some(),
        "the hub kept a blackholed device's session\n{}",
        hub.log()
    );
    // The device's side: its WebSocket ping went unanswered, and its log says so.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !device_log().contains("disconnected from the hub") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let said = device_log();
    assert!(
        said.contains("disconnected from the hub") && said.contains("no pong from the peer"),
        "the device proxy must log the loss and its cause:\n{said}"
    );
    assert!(link.stats().dropped > 0, "the cut dropped nothing");

    link.set_blackhole(false);
    let back = wait_connected(&hub, 1.0, Duration::from_secs(20));
    assert!(
        back.is_some(),
        "the device did not come back after the link was restored\n{}",
        device_log()
    );
    assert!(echoes(&hub), "no echo after restore\n{}", device_log());
    eprintln!("hub detected the cut in {detected:?}, device back {back:?} after restore");
}
