//! One hub on fixed loopback ports (so a restarted hub is where its clients left it), one
//! device, and the processes a scenario runs against them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use adit_testkit::{HubProcess, free_port};

use crate::peer::Peer;
use crate::service_peer::Hold;

/// The device every scenario streams to.
pub const DEVICE: &str = "fault-dev";

/// A hub and what its clients need to reach it.
#[derive(Debug)]
pub struct Rig {
    /// The hub (killed and restarted by the hub scenarios).
    pub hub: HubProcess,
    bin: PathBuf,
    device_connection_string: String,
    owner: String,
    /// For `/metrics` (plain HTTP; the client is built with the dev CA like every other).
    http: reqwest::Client,
}

impl Rig {
    /// Starts `adit hub` on free ports (registry at `database_url`, or SQLite in its data
    /// directory) and creates [`DEVICE`]. Errors: the CLI's.
    pub fn start(bin: &Path, database_url: Option<&str>) -> anyhow::Result<Self> {
        let (https, mqtt, admin) = (free_port(), free_port(), free_port());
        let ports = [
            https.to_string(),
            mqtt.to_string(),
            format!("127.0.0.1:{admin}"),
        ];
        let args = [
            "--https-port",
            &ports[0],
            "--mqtt-port",
            &ports[1],
            "--admin-addr",
            &ports[2],
        ];
        let envs: Vec<(&str, &str)> = database_url
            .map(|u| vec![("ADIT_DATABASE_URL", u)])
            .unwrap_or_default();
        let hub = HubProcess::start_with_env(bin, &args, &envs);
        let created = hub.cli(&["device", "create", DEVICE], &[]);
        anyhow::ensure!(
            created.status.success(),
            "device create: {}",
            String::from_utf8_lossy(&created.stderr)
        );
        let owner = hub.owner_connection_string();
        let hub_ca = hub.ca_path();
        Ok(Self {
            device_connection_string: String::from_utf8_lossy(&created.stdout).trim().to_string(),
            hub,
            bin: bin.to_path_buf(),
            owner,
            http: adit_testkit::https_client(&hub_ca),
        })
    }

    /// `adit device-proxy` routing stream `ssh` to `ssh_target` and `check` to `check_target`,
    /// once it says it is connected. Errors: it did not connect within 30 s.
    pub fn device_proxy(&self, ssh_target: &str, check_target: &str) -> anyhow::Result<Peer> {
        let mut peer = Peer::spawn(
            Command::new(&self.bin)
                .args(["device-proxy", "--map"])
                .arg(format!("ssh={ssh_target}"))
                .arg("--map")
                .arg(format!("check={check_target}"))
                .env(
                    "ADIT_DEVICE_CONNECTION_STRING",
                    &self.device_connection_string,
                )
                .env("ADIT_CA_FILE", self.hub.ca_path()),
        )?;
        peer.wait_line(
            "connected to the hub",
            Instant::now(),
            Duration::from_secs(30),
        )
        .ok_or_else(|| anyhow::anyhow!("the device proxy did not connect"))?;
        Ok(peer)
    }

    /// `adit connect DEVICE --stream-name NAME`, waiting up to 30 s for an offline device.
    pub fn connect(&self, stream_name: &str) -> anyhow::Result<Peer> {
        Peer::spawn(
            Command::new(&self.bin)
                .args([
                    "connect",
                    DEVICE,
                    "--connect-timeout",
                    "30",
                    "--stream-name",
                ])
                .arg(stream_name)
                .env("ADIT_CONNECTION_STRING", &self.owner)
                .env("ADIT_CA_FILE", self.hub.ca_path()),
        )
    }

    /// This program's own service peer, holding at `hold`.
    pub fn service_peer(&self, hold: Hold) -> anyhow::Result<Peer> {
        let hold = match hold {
            Hold::Accepted => "accepted",
            Hold::Connecting => "connecting",
        };
        Peer::spawn(
            Command::new(std::env::current_exe()?)
                .args(["service-peer", DEVICE, "--hold", hold])
                .env("ADIT_CONNECTION_STRING", &self.owner)
                .env("ADIT_CA_FILE", self.hub.ca_path()),
        )
    }

    /// Whether a fresh stream named `check` echoes through the device right now.
    pub fn stream_works(&self) -> bool {
        let Ok(mut peer) = self.connect("check") else {
            return false;
        };
        let sent = Instant::now();
        peer.send("check").is_ok()
            && peer
                .wait_line("check", sent, Duration::from_secs(20))
                .is_some()
    }

    /// A gauge from the hub's `/metrics`, if the hub answers.
    pub async fn gauge(&self, name: &str) -> Option<f64> {
        let body = self
            .http
            .get(format!("http://{}/metrics", self.hub.admin_addr))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        body.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    }

    /// How long until gauge `name` reads `value` (polled every 10 ms), up to `within`.
    pub async fn gauge_reaches(
        &self,
        name: &str,
        value: f64,
        within: Duration,
    ) -> Option<Duration> {
        let start = Instant::now();
        while start.elapsed() < within {
            if self.gauge(name).await == Some(value) {
                return Some(start.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        None
    }
}
