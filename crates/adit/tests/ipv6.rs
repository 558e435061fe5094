//! A hub addressed by an IPv6 literal, with the real binaries on `::1` (field case 17 in its
//! general form): `--hostname ::1` writes connection strings `HostName=[::1]:PORT` that the
//! CLI, the device proxy and the dev certificate all work with; a hub on `--listen-addr ::`
//! with `--public-url https://[::1]:PORT` hands out stream URLs both proxies can join; the
//! MQTT and admin listeners work on `::1` too.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use adit_testkit::{HubProcess, Running, echo_server, free_port};

const ADIT: &str = env!("CARGO_BIN_EXE_adit");

fn cli_ok(hub: &HubProcess, args: &[&str]) -> String {
    let out = hub.cli(args, &[]);
    assert!(
        out.status.success(),
        "adit {args:?}: {}\nhub log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        hub.log()
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn device_proxy(hub: &HubProcess, connection_string: &str, extra: &[&str]) -> Running {
    let echo = echo_server();
    Running(
        Command::new(ADIT)
            .args(["device-proxy", "--target", &format!("127.0.0.1:{echo}")])
            .args(extra)
            .env("ADIT_DEVICE_CONNECTION_STRING", connection_string)
            .env("ADIT_CA_FILE", hub.ca_path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("device-proxy starts"),
    )
}

/// `echo ok | adit connect DEVICE` through the hub, retried while the device proxy connects.
fn echoes_through(hub: &HubProcess, device: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut child = Command::new(ADIT)
            .args(["connect", device, "--connect-timeout", "2"])
            .env("ADIT_CONNECTION_STRING", hub.owner_connection_string())
            .env("ADIT_CA_FILE", hub.ca_path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("adit connect starts");
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(b"ok\n");
        }
        let out = child.wait_with_output().expect("adit connect ends");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        if out.status.success() && stdout == "ok\n" {
            return stdout;
        }
        assert!(
            Instant::now() < deadline,
            "no echo through {device}: {}\nhub log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            hub.log()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn streaming_endpoint(hub: &HubProcess) -> String {
    let shown: serde_json::Value =
        serde_json::from_str(&cli_ok(hub, &["streams", "show"])).expect("JSON");
    shown["streamingEndpoints"][0]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn healthz(addr: std::net::SocketAddr) -> String {
    let mut conn = TcpStream::connect(addr).expect("admin listener");
    conn.write_all(b"GET /healthz HTTP/1.0\r\nHost: [::1]\r\n\r\n")
        .expect("request");
    let mut answer = String::new();
    let _ = conn.read_to_string(&mut answer);
    answer
}

#[test]
fn hostname_ipv6_writes_bracketed_connection_strings_that_every_client_uses() {
    let hub = HubProcess::start_with_args(
        ADIT,
        &[
            "--hostname",
            "::1",
            "--listen-addr",
            "::1",
            "--https-port",
            "0",
            "--mqtt-port",
            "0",
            "--admin-addr",
            "[::1]:0",
        ],
    );
    let port = hub.addr.port();
    assert!(hub.addr.is_ipv6(), "{}", hub.addr);
    let owner = hub.owner_connection_string();
    assert!(
        owner.starts_with(&format!(
            "HostName=[::1]:{port};SharedAccessKeyName=iothubowner;"
        )),
        "{owner}"
    );
    assert!(
        hub.banner.contains(&format!("HostName=[::1]:{port};")),
        "{}",
        hub.banner
    );

    // The CLI reads that string and reaches https://[::1]:PORT, verifying the dev
    // certificate's IP SAN.
    let device = cli_ok(&hub, &["device", "create", "dev6"]);
    assert!(
        device.starts_with(&format!("HostName=[::1]:{port};DeviceId=dev6;")),
        "{device}"
    );
    assert_eq!(streaming_endpoint(&hub), format!("https://[::1]:{port}"));

    // MQTT over WebSocket on the HTTPS port, and MQTT over TLS on the MQTT listener.
    let _ws = device_proxy(&hub, &device, &[]);
    assert_eq!(echoes_through(&hub, "dev6"), "ok\n");
    let tls_device = cli_ok(&hub, &["device", "create", "dev6-tls"]);
    let mqtt_port = hub.mqtt_addr.port().to_string();
    let _tls = device_proxy(
        &hub,
        &tls_device,
        &["--transport", "mqtt", "--mqtt-port", &mqtt_port],
    );
    assert_eq!(echoes_through(&hub, "dev6-tls"), "ok\n");

    assert!(hub.admin_addr.is_ipv6(), "{}", hub.admin_addr);
    assert!(
        healthz(hub.admin_addr).trim_end().ends_with("ok"),
        "admin on [::1]"
    );
}

#[test]
fn public_url_ipv6_carries_streams_for_a_hub_on_every_address() {
    let port = free_port();
    let public = format!("https://[::1]:{port}");
    let hub = HubProcess::start_with_args(
        ADIT,
        &[
            "--https-port",
            &port.to_string(),
            "--mqtt-port",
            "0",
            "--admin-addr",
            "127.0.0.1:0",
            "--listen-addr",
            "::",
            "--public-url",
            &public,
        ],
    );
    assert_eq!(streaming_endpoint(&hub), public);
    // The hub's own strings name localhost; the device reaches it by its IPv6 literal, so
    // its token's audience is [::1]:PORT, and both stream legs join wss://[::1]:PORT/...
    let device = cli_ok(&hub, &["device", "create", "devB"]).replace(
        &format!("HostName=localhost:{port}"),
        &format!("HostName=[::1]:{port}"),
    );
    assert!(device.starts_with("HostName=[::1]:"), "{device}");
    let _proxy = device_proxy(&hub, &device, &[]);
    assert_eq!(echoes_through(&hub, "devB"), "ok\n");
}

#[test]
fn unbracketed_ipv6_in_a_connection_string_is_refused_with_the_form_to_write() {
    let out = Command::new(ADIT)
        .args(["device-proxy", "--target", "127.0.0.1:1"])
        .env(
            "ADIT_DEVICE_CONNECTION_STRING",
            "HostName=::1:8443;DeviceId=d;SharedAccessKey=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        )
        .output()
        .expect("device-proxy runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("write [::1]:8443"), "{stderr}");
}
