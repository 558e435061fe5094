//! The three paths under test, set up once and shared by every round.

use std::path::{Path as FsPath, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use adit_testkit::{HubProcess, free_port};

/// One way from the bench's client to its target.
pub struct Path {
    pub name: String,
    pub port: u16,
    /// Processes between client and target (none for `direct`).
    pub relay_pids: Vec<u32>,
}

/// Processes kept alive for the whole run.
pub struct Env {
    pub hub: HubProcess,
    target: u16,
    socat: Option<(Child, u16)>,
    rathole: Option<(Vec<Child>, u16, tempfile::TempDir)>,
    adit: (Vec<Child>, u16),
}

/// `ADIT_BENCH_RATHOLE`, else `target/bench-tools/bin/rathole` (where `bench/run` installs it
/// from crates.io), else `rathole` on the PATH.
fn find_rathole() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ADIT_BENCH_RATHOLE") {
        return Some(PathBuf::from(p));
    }
    let beside = std::env::current_exe().ok().and_then(|e| {
        e.parent()?
            .parent()
            .map(|t| t.join("bench-tools/bin/rathole"))
    });
    if let Some(p) = beside.filter(|p| p.exists()) {
        return Some(p);
    }
    Command::new("rathole")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()
        .filter(|s| s.success())
        .map(|_| PathBuf::from("rathole"))
}

/// rathole server and client, plain TCP transport, one service forwarding to `target`.
fn start_rathole(target: u16) -> anyhow::Result<Option<(Vec<Child>, u16, tempfile::TempDir)>> {
    let Some(bin) = find_rathole() else {
        eprintln!("rathole not found (bench/run installs it): skipping that path");
        return Ok(None);
    };
    let dir = tempfile::tempdir()?;
    let (control, visitor) = (free_port(), free_port());
    let server = dir.path().join("server.toml");
    let client = dir.path().join("client.toml");
    std::fs::write(
        &server,
        format!(
            "[server]\nbind_addr = \"127.0.0.1:{control}\"\n[server.services.bench]\ntoken = \"adit-bench\"\nbind_addr = \"127.0.0.1:{visitor}\"\n"
        ),
    )?;
    std::fs::write(
        &client,
        format!(
            "[client]\nremote_addr = \"127.0.0.1:{control}\"\n[client.services.bench]\ntoken = \"adit-bench\"\nlocal_addr = \"127.0.0.1:{target}\"\n"
        ),
    )?;
    let quiet = |c: &mut Command| {
        c.stdout(Stdio::null())
            .stderr(Stdio::null())
            .env("RUST_LOG", "error");
    };
    let mut s = Command::new(&bin);
    s.arg("--server").arg(&server);
    quiet(&mut s);
    let s = s.spawn()?;
    wait_listening(control)?;
    let mut c = Command::new(&bin);
    c.arg("--client").arg(&client);
    quiet(&mut c);
    let c = c.spawn()?;
    wait_listening(visitor)?;
    Ok(Some((vec![s, c], visitor, dir)))
}

fn wait_listening(port: u16) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        anyhow::ensure!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

impl Env {
    pub async fn start(bin: &FsPath, target: u16) -> anyhow::Result<Self> {
        let socat = match Command::new("socat")
            .arg("-V")
            .stdout(Stdio::null())
            .status()
        {
            Ok(s) if s.success() => {
                let port = free_port();
                let child = Command::new("socat")
                    .arg(format!(
                        "TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr,nodelay"
                    ))
                    .arg(format!("TCP:127.0.0.1:{target},nodelay"))
                    .stderr(Stdio::null())
                    .spawn()?;
                wait_listening(port)?;
                Some((child, port))
            }
            _ => {
                eprintln!("socat not found (apt-get install socat): skipping that path");
                None
            }
        };
        let rathole = start_rathole(target)?;
        let hub = HubProcess::start(bin);
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
            .args(["device-proxy", "--target", &format!("127.0.0.1:{target}")])
            .env("ADIT_DEVICE_CONNECTION_STRING", &device_cs)
            .env("ADIT_CA_FILE", hub.ca_path());
        quiet(&mut device);
        let device = device.spawn()?;
        let port = free_port();
        let mut service = Command::new(bin);
        service
            .args([
                "service-proxy",
                "--device",
                "bench",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--connect-timeout",
                "30",
            ])
            .env("ADIT_CONNECTION_STRING", hub.owner_connection_string())
            .env("ADIT_CA_FILE", hub.ca_path());
        quiet(&mut service);
        let service = service.spawn()?;
        wait_listening(port)?;
        Ok(Self {
            hub,
            target,
            socat,
            rathole,
            adit: (vec![device, service], port),
        })
    }

    /// Every path: its name, its port and the processes that relay for it.
    pub fn paths(&self) -> Vec<Path> {
        let pids = |children: &[Child]| children.iter().map(Child::id).collect::<Vec<_>>();
        let mut v = vec![Path {
            name: "direct".to_string(),
            port: self.target,
            relay_pids: Vec::new(),
        }];
        if let Some((c, p)) = &self.socat {
            v.push(Path {
                name: "socat".to_string(),
                port: *p,
                relay_pids: vec![c.id()],
            });
        }
        if let Some((c, p, _)) = &self.rathole {
            v.push(Path {
                name: "rathole".to_string(),
                port: *p,
                relay_pids: pids(c),
            });
        }
        let mut adit = pids(&self.adit.0);
        adit.push(self.hub.pid());
        v.push(Path {
            name: "adit".to_string(),
            port: self.adit.1,
            relay_pids: adit,
        });
        v
    }

    pub fn stop(mut self) {
        if let Some((mut c, _)) = self.socat.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some((children, _, _)) = &mut self.rathole {
            for c in children {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        for c in &mut self.adit.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
