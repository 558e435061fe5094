//! The hub under attack and its legitimate fleet: one real `adit hub` process, devices made
//! through its REST API, and the credentials the legitimate clients use.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use adit_proto::{ConnectionString, Key, SasToken};
use adit_service::{RegistryClient, TlsOptions};
use adit_testkit::HubProcess;

/// A running hub and what clients need to reach it.
#[derive(Debug)]
pub struct Fleet {
    /// The hub process.
    pub hub: HubProcess,
    /// HTTPS port: REST, MQTT over WebSocket, gateway.
    pub https: SocketAddr,
    /// MQTT over TLS.
    pub mqtt: SocketAddr,
    /// The dev CA.
    pub ca: PathBuf,
    /// The owner connection string (all permissions).
    pub owner: String,
    owner_cs: ConnectionString,
    registry: RegistryClient,
}

/// One device's id and key.
#[derive(Debug, Clone)]
pub struct DeviceCreds {
    /// Device id.
    pub id: String,
    /// Its primary key.
    pub key: Key,
}

impl Fleet {
    /// Starts `bin hub` on free loopback ports with `extra` flags.
    pub fn start(bin: &Path, extra: &[&str]) -> anyhow::Result<Self> {
        let hub = HubProcess::start_on_free_ports(bin, extra);
        let owner = hub.owner_connection_string();
        let owner_cs: ConnectionString = owner.parse()?;
        let ca = hub.ca_path();
        let registry =
            RegistryClient::from_connection_string(&owner, &TlsOptions::with_ca_file(&ca))?;
        Ok(Self {
            https: hub.addr,
            mqtt: hub.mqtt_addr,
            ca,
            owner,
            owner_cs,
            registry,
            hub,
        })
    }

    /// `localhost:PORT`, the hub's host name as tokens and usernames name it.
    pub fn host_name(&self) -> String {
        self.owner_cs.host_name()
    }

    /// Creates `n` devices `{prefix}-{i}`.
    pub async fn create_devices(&self, prefix: &str, n: usize) -> anyhow::Result<Vec<DeviceCreds>> {
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let id = format!("{prefix}-{i}");
            let device = self.registry.create_device(&id).await?;
            let cs: ConnectionString = self.registry.device_connection_string(&device)?.parse()?;
            let key = cs
                .key
                .ok_or_else(|| anyhow::anyhow!("device {id} has no key"))?;
            out.push(DeviceCreds { id, key });
        }
        Ok(out)
    }

    /// A device connection string for `creds`.
    pub fn device_cs(&self, creds: &DeviceCreds) -> anyhow::Result<String> {
        let id = adit_proto::DeviceId::new(creds.id.as_str())?;
        Ok(ConnectionString::for_device(
            &self.owner_cs.host,
            self.owner_cs.port,
            id,
            creds.key.clone(),
        )
        .to_string())
    }

    /// A device SAS token for `device` signed with `key`, expiring at `expiry` (Unix time).
    pub fn device_token(&self, device: &str, key: &Key, expiry: u64) -> String {
        SasToken::sign(
            &adit_proto::resource::identity_uri(&self.host_name(), device, None),
            key,
            None,
            expiry,
        )
    }

    /// An owner-policy SAS token expiring at `expiry`.
    pub fn owner_token(&self, expiry: u64) -> anyhow::Result<String> {
        let key = self
            .owner_cs
            .key
            .clone()
            .ok_or_else(|| anyhow::anyhow!("owner connection string has no key"))?;
        Ok(SasToken::sign(
            &self.host_name(),
            &key,
            Some("iothubowner"),
            expiry,
        ))
    }

    /// The MQTT username for `client_id`.
    pub fn username(&self, client_id: &str) -> String {
        format!("{}/{client_id}/?api-version=2021-04-12", self.host_name())
    }

    /// The hub's resident memory in KiB.
    pub fn rss_kib(&self) -> f64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.hub.pid()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
            })
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }

    /// How many lines of the hub's log contain `needle`.
    pub fn log_count(&self, needle: &str) -> usize {
        self.hub
            .log()
            .lines()
            .filter(|l| l.contains(needle))
            .count()
    }
}
