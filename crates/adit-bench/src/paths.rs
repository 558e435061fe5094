//! The three paths under test, set up once and shared by every round.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use adit_testkit::{HubProcess, free_port};

/// Processes kept alive for the whole run.
pub struct Env {
    pub hub: HubProcess,
    target: u16,
    socat: Option<(Child, u16)>,
    adit: (Vec<Child>, u16),
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
    pub async fn start(bin: &Path, target: u16) -> anyhow::Result<Self> {
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
            adit: (vec![device, service], port),
        })
    }

    /// (name, port) of every path.
    pub fn names(&self) -> Vec<(String, u16)> {
        let mut v = vec![("direct".to_string(), self.target)];
        if let Some((_, p)) = &self.socat {
            v.push(("socat".to_string(), *p));
        }
        v.push(("adit".to_string(), self.adit.1));
        v
    }

    pub fn stop(mut self) {
        if let Some((mut c, _)) = self.socat.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for c in &mut self.adit.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
