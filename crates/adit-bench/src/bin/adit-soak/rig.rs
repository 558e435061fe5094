//! The one real hub under soak (the release `adit hub` binary in a child process), the
//! devices it knows, the `adit device-proxy` processes and the hub's `/metrics`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use adit_testkit::HubProcess;

/// The hub and what its clients need to reach it.
#[derive(Debug)]
pub struct Rig {
    /// The hub process.
    pub hub: HubProcess,
    bin: PathBuf,
    http: reqwest::Client,
}

impl Rig {
    /// Starts `bin hub` on free loopback ports in a fresh data directory.
    pub fn start(bin: &Path) -> Self {
        let hub = HubProcess::start(bin);
        let http = adit_testkit::https_client(&hub.ca_path());
        Self {
            hub,
            bin: bin.to_path_buf(),
            http,
        }
    }

    /// Creates device `id`; returns its connection string (kept in memory only).
    pub fn create_device(&self, id: &str) -> anyhow::Result<String> {
        let out = self.hub.cli(&["device", "create", id], &[]);
        anyhow::ensure!(
            out.status.success(),
            "device create {id}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// The owner policy's connection string, for the service side.
    pub fn owner(&self) -> String {
        self.hub.owner_connection_string()
    }

    /// The hub's dev CA certificate.
    pub fn ca(&self) -> PathBuf {
        self.hub.ca_path()
    }

    /// `adit device-proxy` for the device in `connection_string`, routing streams named
    /// `echo` to `echo_port`; its output goes to `log`.
    pub fn device_proxy(
        &self,
        connection_string: &str,
        echo_port: u16,
        log: &Path,
    ) -> anyhow::Result<ChildGuard> {
        let out = std::fs::File::create(log)?;
        let child = Command::new(&self.bin)
            .args(["device-proxy", "--map"])
            .arg(format!("echo=127.0.0.1:{echo_port}"))
            .env("ADIT_DEVICE_CONNECTION_STRING", connection_string)
            .env("ADIT_CA_FILE", self.ca())
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()?;
        Ok(ChildGuard(child))
    }

    /// Every unlabelled sample of the hub's `/metrics` (`name value` lines).
    pub async fn scrape(&self) -> anyhow::Result<HashMap<String, f64>> {
        let body = self
            .http
            .get(format!("http://{}/metrics", self.hub.admin_addr))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        Ok(body
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.rsplit_once(' '))
            .filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
            .collect())
    }
}

/// A child process killed and reaped when dropped.
#[derive(Debug)]
pub struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
