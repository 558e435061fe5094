//! `GatewayHostName` with the real binaries (field case 16 in its general form): the hub's
//! name (`HostName=hub.invalid`) does not resolve on the device, `GatewayHostName` names an
//! address that reaches the hub. The device proxy dials `GatewayHostName` and verifies TLS
//! against it, while its token and MQTT username keep naming `HostName`.
//!
//! What proves the audience: the hub's certificate covers `127.0.0.2`, but the hub does not
//! accept `127.0.0.2` as a token audience (it accepts its `--hostname`, the `--public-url`
//! host and loopback's usual names). A device dialling `127.0.0.2` connects only if it signs
//! for `hub.invalid`; one whose `HostName` is `127.0.0.2` is refused.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use adit_hub::tls::DevCa;
use adit_testkit::{HubProcess, Running, echo_server, free_port};

const ADIT: &str = env!("CARGO_BIN_EXE_adit");

/// A hub named `hub.invalid` on every address, serving a certificate (from its own CA) for
/// `hub.invalid`, `localhost`, `127.0.0.2` and `::1`; services reach it as `localhost`.
struct GatewayHub {
    hub: HubProcess,
    port: u16,
    ca: PathBuf,
    /// The owner connection string with `HostName=localhost:PORT`.
    service: String,
    _tls: tempfile::TempDir,
}

impl GatewayHub {
    fn start() -> Self {
        let tls = tempfile::tempdir().expect("temp dir");
        let ca = DevCa::load_or_create(tls.path()).expect("CA");
        let names = ["hub.invalid", "localhost", "127.0.0.2", "::1"].map(String::from);
        ca.issue_server_cert(&names).expect("certificate");
        let (cert, key) = (
            tls.path().join("server.pem"),
            tls.path().join("server-key.pem"),
        );
        let port = free_port();
        let public = format!("https://localhost:{port}");
        let hub = HubProcess::start_with_args(
            ADIT,
            &[
                "--hostname",
                "hub.invalid",
                "--listen-addr",
                "::",
                "--https-port",
                &port.to_string(),
                "--mqtt-port",
                "0",
                "--admin-addr",
                "127.0.0.1:0",
                "--public-url",
                &public,
                "--tls-cert",
                &cert.to_string_lossy(),
                "--tls-key",
                &key.to_string_lossy(),
            ],
        );
        let owner = hub.owner_connection_string();
        assert!(
            owner.starts_with(&format!("HostName=hub.invalid:{port};")),
            "{owner}"
        );
        let service = owner.replace("HostName=hub.invalid:", "HostName=localhost:");
        Self {
            hub,
            port,
            ca: ca.cert_path(),
            service,
            _tls: tls,
        }
    }

    fn cli(&self, args: &[&str]) -> String {
        let ca = self.ca.to_string_lossy();
        let out = self.hub.cli(
            args,
            &[
                ("ADIT_CONNECTION_STRING", &self.service),
                ("ADIT_CA_FILE", &ca),
            ],
        );
        assert!(
            out.status.success(),
            "adit {args:?}: {}\nhub log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.hub.log()
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A new device's connection string, naming the hub `hub.invalid`, with `extra` appended.
    fn device(&self, id: &str, extra: &str) -> String {
        let cs = self.cli(&["device", "create", id]).replace(
            &format!("HostName=localhost:{}", self.port),
            &format!("HostName=hub.invalid:{}", self.port),
        );
        assert!(cs.starts_with("HostName=hub.invalid:"), "{cs}");
        format!("{cs}{extra}")
    }

    fn device_proxy(&self, connection_string: &str, flags: &[&str], log: &Path) -> Running {
        let echo = echo_server();
        let log = std::fs::File::create(log).expect("log file");
        Running(
            Command::new(ADIT)
                .args(["device-proxy", "--target", &format!("127.0.0.1:{echo}")])
                .args(flags)
                .env("ADIT_DEVICE_CONNECTION_STRING", connection_string)
                .env("ADIT_CA_FILE", &self.ca)
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("device-proxy starts"),
        )
    }

    /// `echo ok | adit connect DEVICE`, retried while the device proxy connects.
    fn echoes_through(&self, device: &str, proxy_log: &Path) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut child = Command::new(ADIT)
                .args(["connect", device, "--connect-timeout", "2"])
                .env("ADIT_CONNECTION_STRING", &self.service)
                .env("ADIT_CA_FILE", &self.ca)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("adit connect starts");
            if let Some(mut stdin) = child.stdin.take() {
                let _ = std::io::Write::write_all(&mut stdin, b"ok\n");
            }
            let out = child.wait_with_output().expect("adit connect ends");
            if out.status.success() && out.stdout == b"ok\n" {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no echo through {device}: {}\ndevice proxy log:\n{}\nhub log:\n{}",
                String::from_utf8_lossy(&out.stderr),
                std::fs::read_to_string(proxy_log).unwrap_or_default(),
                self.hub.log()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

#[test]
fn device_dials_gateway_host_name_and_signs_for_host_name() {
    let hub = GatewayHub::start();
    let logs = tempfile::tempdir().expect("temp dir");
    let port = hub.port;

    // MQTT over WebSocket to an IPv4 gateway address.
    let cs = hub.device("gw4", &format!(";GatewayHostName=127.0.0.2:{port}"));
    let log = logs.path().join("gw4.log");
    let _gw4 = hub.device_proxy(&cs, &[], &log);
    hub.echoes_through("gw4", &log);
    let said = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        said.contains(&format!("dial=127.0.0.2:{port}"))
            && said.contains(&format!("identity=hub.invalid:{port}"))
            && said.contains("via=GatewayHostName"),
        "logs once what it dials and as whom:\n{said}"
    );
    // The hub listens on `::`; an IPv4 caller is reported as such, not as ::ffff:127.0.0.1.
    assert!(said.contains("caller=127.0.0.1"), "{said}");

    // MQTT over TLS to an IPv6 gateway address, bracketed like HostName.
    let cs = hub.device("gw6", &format!(";GatewayHostName=[::1]:{port}"));
    let mqtt_port = hub.hub.mqtt_addr.port().to_string();
    let log6 = logs.path().join("gw6.log");
    let _gw6 = hub.device_proxy(
        &cs,
        &["--transport", "mqtt", "--mqtt-port", &mqtt_port],
        &log6,
    );
    hub.echoes_through("gw6", &log6);
}

#[test]
fn a_token_for_the_dialled_name_is_refused() {
    // The control for the test above: dialling 127.0.0.2 without GatewayHostName signs for
    // 127.0.0.2, which is not the hub's name, so the hub refuses the device (CONNACK 5).
    let hub = GatewayHub::start();
    let logs = tempfile::tempdir().expect("temp dir");
    let port = hub.port;
    let cs = hub.device("direct", "").replace(
        &format!("HostName=hub.invalid:{port}"),
        &format!("HostName=127.0.0.2:{port}"),
    );
    let log = logs.path().join("direct.log");
    let _proxy = hub.device_proxy(&cs, &[], &log);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let said = std::fs::read_to_string(&log).unwrap_or_default();
        if said.contains("hub refused the connection") {
            break;
        }
        assert!(Instant::now() < deadline, "not refused:\n{said}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let shown: serde_json::Value =
        serde_json::from_str(&hub.cli(&["device", "show", "direct"])).expect("JSON");
    assert_eq!(shown["connectionState"], "Disconnected");
}
