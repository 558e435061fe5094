//! A hub running in-process on 127.0.0.1:0 with its own temporary data directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use adit_hub::{Hub, HubConfig};
use adit_proto::{ConnectionString, Key, SasToken};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A running hub. Stops when [`stop`](TestHub::stop) is called or it is dropped.
#[derive(Debug)]
pub struct TestHub {
    /// The bound HTTPS address.
    pub addr: SocketAddr,
    /// The `iothubowner` connection string.
    pub owner: ConnectionString,
    /// The dev CA to trust.
    pub ca_path: PathBuf,
    config: HubConfig,
    shutdown: CancellationToken,
    task: Option<JoinHandle<()>>,
    // Kept last so the directory outlives the hub task.
    dir: Option<tempfile::TempDir>,
}

impl TestHub {
    /// A hub with default settings and SQLite in a fresh temporary directory.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// A hub whose configuration `adjust` may change (limits, database URL...).
    pub async fn start_with(adjust: impl FnOnce(&mut HubConfig)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = HubConfig::new(dir.path().join("data"));
        config.listen_addr = [127, 0, 0, 1].into();
        config.https_port = 0;
        config.mqtt.port = 0;
        adjust(&mut config);
        Self::launch(config, Some(dir)).await
    }

    async fn launch(config: HubConfig, dir: Option<tempfile::TempDir>) -> Self {
        let hub = Hub::bind(config.clone()).await.expect("hub binds");
        let addr = hub.https_addr();
        let owner = hub.bootstrap().owner_connection_string.clone();
        let ca_path = hub.bootstrap().ca_path.clone().expect("dev CA generated");
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(hub.run(shutdown.clone()));
        Self {
            addr,
            owner,
            ca_path,
            config,
            shutdown,
            task: Some(task),
            dir,
        }
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.config.data_dir
    }

    /// `https://localhost:{port}`.
    pub fn base_url(&self) -> String {
        format!("https://localhost:{}", self.addr.port())
    }

    /// Host name with port, as in connection strings and token audiences.
    pub fn host_name(&self) -> String {
        self.owner.host_name()
    }

    /// The key of `policy`, read from the registry.
    pub async fn policy_key(&self, policy: &str) -> Key {
        let registry = match &self.config.database_url {
            Some(url) => adit_hub::registry::Registry::open(url).await,
            None => adit_hub::registry::Registry::open_in_dir(&self.config.data_dir).await,
        }
        .expect("registry opens");
        let key = registry
            .policy(policy)
            .await
            .expect("query")
            .expect("policy exists")
            .primary_key;
        registry.close().await;
        key
    }

    /// A service token for `policy` signed with `key`, valid until `expiry` (Unix seconds).
    pub fn token(&self, policy: &str, key: &Key, expiry: u64) -> String {
        SasToken::sign(&self.host_name(), key, Some(policy), expiry)
    }

    /// An owner token valid for an hour.
    pub fn owner_token(&self) -> String {
        let key = self.owner.key.clone().expect("owner string has a key");
        self.token("iothubowner", &key, adit_hub::auth::unix_now() + 3600)
    }

    /// Stops the hub and waits for it to finish.
    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.await.expect("hub task finished cleanly");
        }
    }

    /// Stops the hub and starts a new one on the same data directory (new port).
    pub async fn restart(mut self) -> Self {
        self.stop().await;
        let dir = self.dir.take();
        Self::launch(self.config.clone(), dir).await
    }
}

impl Drop for TestHub {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
