//! The identity registry: devices, their keys and status, and the shared access policies.
//!
//! One schema (`migrations/`) serves embedded SQLite (the default, a file in the data
//! directory) and PostgreSQL (`postgres://...`), through sqlx's `Any` driver with portable SQL.
//! This module knows nothing of HTTP or MQTT; the API maps its errors to status codes.

mod connection_writes;
mod devices;
mod policies;

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;

pub use devices::{
    AuthKind, ConnectionState, DeviceRecord, DeviceStatus, DeviceUpdate, IfMatch, NewDevice,
};
pub use policies::{KeyRenewal, PolicyRecord};

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

/// A handle to the registry. Cheap to clone: it wraps a connection pool.
#[derive(Debug, Clone)]
pub struct Registry {
    pool: AnyPool,
    backend: Backend,
    /// Devices' connection state, committed in groups.
    connection_writes: connection_writes::ConnectionWrites,
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Registry {
    /// Opens the registry at `url` (`sqlite://...` or `postgres://...`) and applies any
    /// pending migrations.
    pub async fn open(url: &str) -> Result<Self, RegistryError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        };
        let mut options = AnyPoolOptions::new();
        if backend == Backend::Sqlite {
            // One file, many tasks: WAL lets readers proceed during a write, and the busy
            // timeout turns brief write contention into a wait instead of an error.
            options = options.max_connections(4).after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::query("PRAGMA journal_mode=WAL")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("PRAGMA busy_timeout=5000")
                        .execute(&mut *conn)
                        .await?;
                    Ok(())
                })
            });
        } else {
            options = options.max_connections(16);
        }
        let pool = options.connect(url).await?;
        MIGRATOR.run(&pool).await?;
        let connection_writes = connection_writes::ConnectionWrites::start(pool.clone());
        Ok(Self {
            pool,
            backend,
            connection_writes,
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

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
