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
    /// The bound MQTT-over-TLS address.
    pub mqtt_addr: SocketAddr,
    /// The `iothubowner` connection string.
    pub owner: ConnectionString,
    /// The dev CA to trust.
    pub ca_path: PathBuf,
    config: HubConfig,
    streams: adit_hub::streams::Streams,
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
        config.admin_addr = ([127, 0, 0, 1], 0).into();
        adjust(&mut config);
        Self::launch(config, Some(dir)).await
    }

    async fn launch(config: HubConfig, dir: Option<tempfile::TempDir>) -> Self {
        let hub = Hub::bind(config.clone()).await.expect("hub binds");
        let addr = hub.https_addr();
        let mqtt_addr = hub.mqtt_addr();
        let owner = hub.bootstrap().owner_connection_string.clone();
        let ca_path = hub.bootstrap().ca_path.clone().expect("dev CA generated");
        let streams = hub.streams().clone();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(hub.run(shutdown.clone()));
        Self {
            addr,
            mqtt_addr,
            owner,
            ca_path,
            config,
            streams,
            shutdown,
            task: Some(task),
            dir,
        }
    }

    /// The hub's stream orchestrator (for its records).
    pub fn streams(&self) -> &adit_hub::streams::Streams {
        &self.streams
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

    /// An owner-authorized registry request; fails the test unless it succeeds. Returns the
    /// JSON body (`null` when empty).
    async fn registry_call(
        &self,
        method: reqwest::Method,
        id: &str,
        body: Option<serde_json::Value>,
        if_match: Option<&str>,
    ) -> serde_json::Value {
        let mut req = crate::https_client(&self.ca_path)
            .request(
                method.clone(),
                format!(
                    "{}/devices/{}?api-version=2021-04-12",
                    self.base_url(),
                    adit_proto::resource::encode_component(id)
                ),
            )
            .header("Authorization", self.owner_token());
        if let Some(b) = body {
            req = req
                .header("Content-Type", "application/json")
                .body(b.to_string());
        }
        if let Some(m) = if_match {
            req = req.header("If-Match", m);
        }
        let response = req.send().await.expect("request sent");
        assert!(
            response.status().is_success(),
            "{method} {id}: {}",
            response.status()
        );
        response.json().await.unwrap_or(serde_json::Value::Null)
    }

    /// Creates a device through the REST API (as a service would) and returns its primary key.
    pub async fn create_device(&self, id: &str) -> Key {
        let body = serde_json::json!({ "deviceId": id });
        let device = self
            .registry_call(reqwest::Method::PUT, id, Some(body), None)
            .await;
        let key = device["authentication"]["symmetricKey"]["primaryKey"]
            .as_str()
            .expect("key");
        Key::from_base64(key).expect("valid key")
    }

    /// Sets a device's status through the REST API.
    pub async fn set_device_status(&self, id: &str, status: &str) {
        let body = serde_json::json!({ "deviceId": id, "status": status });
        self.registry_call(reqwest::Method::PUT, id, Some(body), Some("*"))
            .await;
    }

    /// Deletes a device through the REST API.
    pub async fn delete_device(&self, id: &str) {
        self.registry_call(reqwest::Method::DELETE, id, None, None)
            .await;
    }

    /// The device's connection state as the registry reports it.
    pub async fn connection_state(&self, id: &str) -> String {
        let device = self
            .registry_call(reqwest::Method::GET, id, None, None)
            .await;
        device["connectionState"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// A raw MQTT device connected over TLS with its own key (CONNACK checked).
    pub async fn mqtt_device(&self, id: &str, key: &Key) -> crate::RawMqtt {
        let mut c = crate::RawMqtt::tls(self.mqtt_addr, &self.ca_path).await;
        let token = crate::device_token(&self.host_name(), id, key);
        let code = c.connect(id, &self.username(id), &token, 60).await;
        assert_eq!(
            code,
            Some(rumqttc::mqttbytes::v4::ConnectReturnCode::Success),
            "{id} connects"
        );
        c
    }

    /// The MQTT username an Azure SDK would send for `client_id`.
    pub fn username(&self, client_id: &str) -> String {
        format!(
            "{}/{client_id}/?api-version=2021-04-12&DeviceClientType=adit-tests",
            self.host_name()
        )
    }

    /// The `Connections` diagnostics records of `device`, oldest first, once `ready` holds
    /// for them (through `GET /adit/logs`, as an operator reads them; fails after 5 s).
    pub async fn connection_records(
        &self,
        device: &str,
        ready: impl Fn(&[serde_json::Value]) -> bool,
    ) -> Vec<serde_json::Value> {
        self.log_records(&format!("category=Connections&device={device}"), ready)
            .await
    }

    /// The diagnostics records that `GET /adit/logs?{query}` answers, oldest first, once
    /// `ready` holds for them (fails after 5 s).
    pub async fn log_records(
        &self,
        query: &str,
        ready: impl Fn(&[serde_json::Value]) -> bool,
    ) -> Vec<serde_json::Value> {
        let url = format!(
            "{}/adit/logs?api-version=2021-04-12&{query}",
            self.base_url()
        );
        for _ in 0..100 {
            let records: Vec<serde_json::Value> = crate::https_client(&self.ca_path)
                .get(&url)
                .header("Authorization", self.owner_token())
                .send()
                .await
                .expect("logs")
                .json()
                .await
                .expect("JSON");
            if ready(&records) {
                return records;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the records for {query} never got there");
    }

    /// Stops the hub and waits for it to finish.
    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.await.expect("hub task finished cleanly");
        }
    }

    /// Stops the hub and starts it again on the same data directory and the same ports, as a
    /// restarted server would come back.
    pub async fn restart_on_same_ports(mut self) -> Self {
        self.stop().await;
        let mut config = self.config.clone();
        config.https_port = self.addr.port();
        config.mqtt.port = self.mqtt_addr.port();
        let dir = self.dir.take();
        Self::launch(config, dir).await
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
