//! The identity registry: devices, their keys and status, and the shared access policies.
//!
//! One schema (`migrations/`) serves embedded SQLite (the default, a file in the data
//! directory) and PostgreSQL (`postgres://...`), through sqlx's `Any` driver with portable SQL.
//! This module knows nothing of HTTP or MQTT; the API maps its errors to status codes.

mod connection_writes;
mod devices;
mod host_keys;
mod leases;
mod policies;
mod streams_in_flight;

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;

pub use devices::{
    AuthKind, ConnectionState, DeviceRecord, DeviceStatus, DeviceUpdate, IfMatch, NewDevice,
};
pub use host_keys::HostKeyCheck;
pub use leases::Released;
pub use policies::{KeyRenewal, PolicyRecord};
pub use streams_in_flight::InFlightStream;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// File name of the embedded registry inside the data directory.
pub const SQLITE_FILE: &str = "registry.db";

/// What went wrong in the registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The database failed.
    #[error("registry database error")]
    Database(#[from] sqlx::Error),
    /// The schema could not be brought up to date.
    #[error("registry migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// No device with this id.
    #[error("device {0} not found")]
    DeviceNotFound(String),
    /// No shared access policy with this name.
    #[error("shared access policy {0} not found")]
    PolicyNotFound(String),
    /// A device with this id exists already.
    #[error("device {0} already exists")]
    DeviceAlreadyExists(String),
    /// `If-Match` named another version.
    #[error("device {0} has changed (etag mismatch)")]
    PreconditionFailed(String),
    /// A stored row cannot be read back (corruption or a newer schema).
    #[error("registry row for {0} is invalid: {1}")]
    Corrupt(String, String),
}

/// Which database holds the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// Database connections in the registry's two pools: (service API and everything else,
/// device sessions). SQLite has one writer at a time whatever the count; its sessions pool
/// needs one connection for the grouped connection writes and the rest for CONNECT lookups.
fn pool_sizes(backend: Backend) -> (u32, u32) {
    match backend {
        Backend::Sqlite => (4, 3),
        Backend::Postgres => (8, 8),
    }
}

fn pool_options(backend: Backend, size: u32) -> AnyPoolOptions {
    let options = AnyPoolOptions::new().max_connections(size);
    if backend == Backend::Postgres {
        return options;
    }
    // One file, many tasks: WAL lets readers proceed during a write, and the busy timeout
    // turns brief write contention into a wait instead of an error.
    options.after_connect(|conn, _| {
        Box::pin(async move {
            sqlx::query("PRAGMA journal_mode=WAL")
                .execute(&mut *conn)
                .await?;
            sqlx::query("PRAGMA busy_timeout=5000")
                .execute(&mut *conn)
                .await?;
            Ok(())
        })
    })
}

/// A handle to the registry. Cheap to clone: it wraps two connection pools.
///
/// Device sessions (the lookup behind every CONNECT, and connection-state writes) have a
/// pool of their own: a fleet reconnecting at once queues thousands of them, and in one
/// shared pool every service API request waited behind that queue (p99 of seconds in
/// `bench/storm`). The API's pool stays free for the API.
#[derive(Debug, Clone)]
pub struct Registry {
    pool: AnyPool,
    sessions: AnyPool,
    backend: Backend,
    /// Devices' connection state, committed in groups.
    connection_writes: connection_writes::ConnectionWrites,
    /// The ids of devices written through this node (identity or connection state), for
    /// whoever watches the fleet (the console's live view).
    device_changes: tokio::sync::broadcast::Sender<String>,
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Registry {
    /// Ids of devices written through this node from now on: created, updated, deleted,
    /// connected or disconnected. Lagging receivers lose the oldest (they read the registry
    /// again anyway); other nodes' writes are not seen here.
    pub fn device_changes(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.device_changes.subscribe()
    }

    fn device_changed(&self, id: &str) {
        let _ = self.device_changes.send(id.to_string());
    }

    /// Opens the registry at `url` (`sqlite://...` or `postgres://...`) and applies any
    /// pending migrations.
    pub async fn open(url: &str) -> Result<Self, RegistryError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        };
        let (api, sessions) = pool_sizes(backend);
        let pool = pool_options(backend, api).connect(url).await?;
        MIGRATOR.run(&pool).await?;
        let sessions = pool_options(backend, sessions).connect(url).await?;
        let connection_writes = connection_writes::ConnectionWrites::start(sessions.clone());
        Ok(Self {
            pool,
            sessions,
            backend,
            connection_writes,
            device_changes: tokio::sync::broadcast::channel(256).0,
        })
    }

    /// Opens (creating if needed) the embedded SQLite registry in `data_dir`.
    pub async fn open_in_dir(data_dir: &Path) -> Result<Self, RegistryError> {
        let path = data_dir.join(SQLITE_FILE);
        Self::open(&format!("sqlite://{}?mode=rwc", path.display())).await
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Checks the database answers.
    pub async fn ping(&self) -> Result<(), RegistryError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Transactions that have committed devices' connection state so far: concurrent
    /// connects and disconnects share one (see [`Registry::record_connected`]).
    pub fn connection_commits(&self) -> u64 {
        self.connection_writes.commits()
    }

    /// Closes the pools, waiting for connections to be returned.
    pub async fn close(&self) {
        self.sessions.close().await;
        self.pool.close().await;
    }
}
