//! Hub nodes sharing one PostgreSQL registry and one NATS server, as a deployment runs them:
//! every node gets its own `--node-id` and data directory, the same `--hostname`, and the
//! dev CA of the first node (copied into the others' `tls/` before their first start), as
//! `crates/adit/tests/cluster_haproxy.rs` does. Optionally behind HAProxy. Or, for reference, one
//! node on its own SQLite registry.

use std::path::{Path, PathBuf};

use adit_testkit::HubProcess;

use crate::haproxy::Haproxy;

/// Where the nodes keep their registry.
#[derive(Debug, Clone, Copy)]
pub enum Registry<'a> {
    /// The hub's own SQLite file in its data directory (a single node).
    Sqlite,
    /// One PostgreSQL database and one NATS server, shared by every node.
    Shared {
        database_url: &'a str,
        nats_url: &'a str,
    },
}

/// Running nodes, in start order, and the balancer in front of them when there is one.
pub struct Cluster {
    pub nodes: Vec<HubProcess>,
    pub haproxy: Option<Haproxy>,
    /// The dev CA every node's certificate comes from.
    pub ca: PathBuf,
    /// Data directories of the nodes after the first (the first keeps its own workdir).
    _dirs: Vec<tempfile::TempDir>,
}

impl Cluster {
    /// Starts `n` nodes named `{tag}-a`, `{tag}-b`, ... on `registry`, and HAProxy in front
    /// of their HTTPS and MQTT ports when `balanced`.
    pub fn start(
        bin: &Path,
        registry: Registry<'_>,
        tag: &str,
        n: usize,
        balanced: bool,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!((1..=26).contains(&n), "1 to 26 nodes");
        anyhow::ensure!(
            n == 1 || matches!(registry, Registry::Shared { .. }),
            "nodes share a registry only in PostgreSQL"
        );
        let mut nodes = Vec::with_capacity(n);
        let mut dirs = Vec::new();
        for i in 0..n {
            let mut flags = Vec::new();
            if let Registry::Shared {
                database_url,
                nats_url,
            } = registry
            {
                flags.extend([
                    "--database-url".to_string(),
                    database_url.to_string(),
                    "--nats-url".to_string(),
                    nats_url.to_string(),
                    "--node-id".to_string(),
                    format!("{tag}-{}", char::from(b'a' + i as u8)),
                ]);
            }
            flags.extend(["--hostname".to_string(), "localhost".to_string()]);
            flags.extend(adit_testkit::FREE_PORTS.map(String::from));
            flags.extend(adit_bench::BENCH_HUB_FLAGS.map(String::from));
            if let Some(first) = nodes.first() {
                let dir = tempfile::tempdir()?;
                share_ca(first, dir.path())?;
                flags.extend(["--data-dir".to_string(), dir.path().display().to_string()]);
                dirs.push(dir);
            }
            let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
            // Quiet: thousands of device connects logged at info would cost the nodes CPU.
            nodes.push(HubProcess::start_with_env(
                bin,
                &flags,
                &[("ADIT_LOG", "warn")],
            ));
        }
        let haproxy = if balanced {
            let https: Vec<u16> = nodes.iter().map(|n| n.addr.port()).collect();
            let mqtt: Vec<u16> = nodes.iter().map(|n| n.mqtt_addr.port()).collect();
            Some(Haproxy::start(&https, &mqtt)?)
        } else {
            None
        };
        Ok(Self {
            ca: nodes[0].ca_path(),
            nodes,
            haproxy,
            _dirs: dirs,
        })
    }

    /// The owner (iothubowner) connection string naming `https_port` (a node's or the
    /// balancer's): the policies live in the shared registry, so any node accepts it.
    pub fn owner_via(&self, https_port: u16) -> String {
        adit_testkit::via_port(&self.nodes[0].owner_connection_string(), https_port)
    }

    /// The HTTPS port clients use: the balancer's, else the first node's.
    pub fn entry_https(&self) -> u16 {
        match &self.haproxy {
            Some(h) => h.https,
            None => self.nodes[0].addr.port(),
        }
    }

    /// The MQTT-over-TLS address devices use: the balancer's, else the first node's.
    pub fn entry_mqtt(&self) -> std::net::SocketAddr {
        match &self.haproxy {
            Some(h) => std::net::SocketAddr::from(([127, 0, 0, 1], h.mqtt)),
            None => self.nodes[0].mqtt_addr,
        }
    }
}

/// Copies `first`'s dev CA (certificate and key) into `data_dir/tls/`, so the node started on
/// `data_dir` issues its certificate from the same CA.
fn share_ca(first: &HubProcess, data_dir: &Path) -> anyhow::Result<()> {
    let tls = data_dir.join("tls");
    std::fs::create_dir_all(&tls)?;
    let ca = first.ca_path();
    for f in ["ca.pem", "ca-key.pem"] {
        std::fs::copy(ca.with_file_name(f), tls.join(f))?;
    }
    Ok(())
}
