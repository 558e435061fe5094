//! The three paths under test, set up once and shared by every round.

use std::path::Path as FsPath;
use std::process::{Child, Command, Stdio};

use adit_bench::rathole::{Rathole, RatholeTransport, start_rathole};
use adit_bench::wait_listening;
use adit_testkit::{HubProcess, free_port};

/// One way from the bench's client to its targets.
pub struct Path {
    pub name: String,
    /// Reaches the bench's own target server.
    pub port: u16,
    /// Reaches the iperf3 server, when there is one.
    pub iperf_port: Option<u16>,
    /// Processes between client and target (none for `direct`).
    pub relay_pids: Vec<u32>,
}

/// Processes kept alive for the whole run.
pub struct Env {
    pub hub: HubProcess,
    target: u16,
    iperf: Option<u16>,
    socat: Vec<(Child, u16)>,
    /// `rathole` (plain TCP) and `rathole-noise`, where they could start.
    rathole: Vec<(&'static str, Rathole)>,
    /// device-proxy, then one service-proxy per stream name (`echo`, then `iperf`).
    adit: Vec<Child>,
    adit_ports: (u16, Option<u16>),
}

/// A hub on free ports with [`adit_bench::BENCH_HUB_FLAGS`].
pub fn start_hub(bin: &FsPath) -> HubProcess {
    HubProcess::start_on_free_ports(bin, &adit_bench::BENCH_HUB_FLAGS)
}

fn socat_available() -> bool {
    Command::new("socat")
        .arg("-V")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A forking socat relay from a new port to `target`.
fn start_socat(target: u16) -> anyhow::Result<(Child, u16)> {
    let port = free_port();
    let child = Command::new("socat")
        .arg(format!(
            "TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr,nodelay"
        ))
        .arg(format!("TCP:127.0.0.1:{target},nodelay"))
        .stderr(Stdio::null())
        .spawn()?;
    wait_listening(port)?;
    Ok((child, port))
}

impl Env {
    /// Starts every relay towards `target` (and towards `iperf`, when given).
    pub async fn start(bin: &FsPath, target: u16, iperf: Option<u16>) -> anyhow::Result<Self> {
        let mut socat = Vec::new();
        if socat_available() {
            socat.push(start_socat(target)?);
            if let Some(p) = iperf {
                socat.push(start_socat(p)?);
            }
        } else {
            eprintln!("socat not found (apt-get install socat): skipping that path");
        }
        let mut rathole = Vec::new();
        for (name, transport) in [
            ("rathole", RatholeTransport::Tcp),
            ("rathole-noise", RatholeTransport::Noise),
        ] {
            if let Some(r) = start_rathole(target, iperf, transport)? {
                rathole.push((name, r));
            }
        }
        let hub = start_hub(bin);
        let out = hub.cli(&["device", "create", "bench"], &[]);
        anyhow::ensure!(
            out.status.success(),
            "device create: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let device_cs = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let quiet = |c: &mut Command| {
            c.stdout(Stdio::null())
                .stderr(Stdio::null())
                .env("ADIT_LOG", "warn");
        };
        let mut device = Command::new(bin);
        device
            .args(["device-proxy", "--map", &format!("echo=127.0.0.1:{target}")])
            .env("ADIT_DEVICE_CONNECTION_STRING", &device_cs)
            .env("ADIT_CA_FILE", hub.ca_path());
        if let Some(p) = iperf {
            device.args(["--map", &format!("iperf=127.0.0.1:{p}")]);
        }
        quiet(&mut device);
        let mut adit = vec![device.spawn()?];
        let mut ports = Vec::new();
        for name in std::iter::once("echo").chain(iperf.map(|_| "iperf")) {
            let port = free_port();
            let mut service = Command::new(bin);
            service
                .args([
                    "service-proxy",
                    "--device",
                    "bench",
                    "--stream-name",
                    name,
                    "--listen",
                    &format!("127.0.0.1:{port}"),
                    "--connect-timeout",
                    "30",
                ])
                .env("ADIT_CONNECTION_STRING", hub.owner_connection_string())
                .env("ADIT_CA_FILE", hub.ca_path());
            quiet(&mut service);
            adit.push(service.spawn()?);
            wait_listening(port)?;
            ports.push(port);
        }
        Ok(Self {
            hub,
            target,
            iperf,
            socat,
            rathole,
            adit,
            adit_ports: (ports[0], ports.get(1).copied()),
        })
    }

    /// Every path: its name, its ports and the processes that relay for it.
    pub fn paths(&self) -> Vec<Path> {
        let mut v = vec![Path {
            name: "direct".to_string(),
            port: self.target,
            iperf_port: self.iperf,
            relay_pids: Vec::new(),
        }];
        if let Some((_, port)) = self.socat.first() {
            v.push(Path {
                name: "socat".to_string(),
                port: *port,
                iperf_port: self.socat.get(1).map(|(_, p)| *p),
                relay_pids: self.socat.iter().map(|(c, _)| c.id()).collect(),
            });
        }
        for (name, r) in &self.rathole {
            v.push(Path {
                name: name.to_string(),
                port: r.port,
                iperf_port: r.iperf_port,
                relay_pids: r.children.iter().map(Child::id).collect(),
            });
        }
        let mut adit: Vec<u32> = self.adit.iter().map(Child::id).collect();
        adit.push(self.hub.pid());
        v.push(Path {
            name: "adit".to_string(),
            port: self.adit_ports.0,
            iperf_port: self.adit_ports.1,
            relay_pids: adit,
        });
        v
    }
}

/// Stops every relay, also when the bench fails half way.
impl Drop for Env {
    fn drop(&mut self) {
        let mut all: Vec<Child> = self.socat.drain(..).map(|(c, _)| c).collect();
        for (_, r) in self.rathole.drain(..) {
            all.extend(r.children);
        }
        all.append(&mut self.adit);
        for mut c in all {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
