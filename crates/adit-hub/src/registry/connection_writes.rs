//! Group commit of what device sessions and streams write: devices' connection state, and the
//! streams each node relays ([`super::streams_in_flight`]). Every CONNECT and every disconnect writes the
//! device's row; on SQLite each write is a transaction of its own, and each commit waits for
//! the disk (an fsync of a few ms), one writer at a time. A fleet of thousands reconnecting at
//! once (a hub restart) then queued for tens of seconds on the registry, holding the pool's
//! connections and starving the service API's reads. Here one task applies whatever writes
//! are waiting in one transaction (one commit for up to [`MAX_BATCH`] writes), in arrival
//! order, and answers each caller after the commit: a caller still returns only once its
//! write is durable, as before.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::AnyPool;
use sqlx::any::AnyArguments;
use sqlx::query::Query;
use tokio::sync::{mpsc, oneshot};

use super::ConnectionState;
use super::streams_in_flight::InFlightStream;

/// Most writes committed together.
pub const MAX_BATCH: usize = 512;

/// One change of a device's connection state.
#[derive(Debug)]
pub enum ConnectionWrite {
    /// `node` now holds the device's connection.
    Connected {
        /// Device id.
        id: String,
        /// The node.
        node: String,
        /// When, in Unix ms.
        at_ms: i64,
    },
    /// The device's connection on `node` ended (a no-op when another node holds it now).
    Disconnected {
        /// Device id.
        id: String,
        /// The node.
        node: String,
        /// When, in Unix ms.
        at_ms: i64,
    },
    /// `node`, taken for dead and back, still holds the device: connected again unless
    /// another node holds it now (its row then names that node).
    Reclaimed {
        /// Device id.
        id: String,
        /// The node.
        node: String,
        /// When, in Unix ms.
        at_ms: i64,
    },
    /// `node` relays `stream` from now on.
    StreamOpened {
        /// The node.
        node: String,
        /// The stream.
        stream: Box<InFlightStream>,
    },
    /// Stream `stream_id` has its record.
    StreamClosed {
        /// Stream id.
        stream_id: String,
    },
}

impl ConnectionWrite {
    fn query(&self) -> Query<'_, sqlx::Any, AnyArguments> {
        match self {
            Self::Connected { id, node, at_ms } => sqlx::query(
                "UPDATE devices SET connection_state = $1, connection_state_updated_ms = $2, last_activity_ms = $3, connection_node = $4 WHERE device_id = $5",
            )
            .bind(ConnectionState::Connected.as_str())
            .bind(*at_ms)
            .bind(*at_ms)
            .bind(node.as_str())
            .bind(id.as_str()),
            Self::Disconnected { id, node, at_ms } => sqlx::query(
                "UPDATE devices SET connection_state = $1, connection_state_updated_ms = $2, last_activity_ms = $3, connection_node = NULL WHERE device_id = $4 AND connection_node = $5",
            )
            .bind(ConnectionState::Disconnected.as_str())
            .bind(*at_ms)
            .bind(*at_ms)
            .bind(id.as_str())
            .bind(node.as_str()),
            Self::Reclaimed { id, node, at_ms } => sqlx::query(
                "UPDATE devices SET connection_state = $1, connection_state_updated_ms = $2, connection_node = $3 WHERE device_id = $4 AND connection_node IS NULL",
            )
            .bind(ConnectionState::Connected.as_str())
            .bind(*at_ms)
            .bind(node.as_str())
            .bind(id.as_str()),
            Self::StreamOpened { node, stream } => sqlx::query(
                "INSERT INTO streams_in_flight (node_id, stream_id, device_id, module_id, name, requested_ms, caller, api_version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(node.as_str())
            .bind(stream.stream_id.as_str())
            .bind(stream.device_id.as_str())
            .bind(stream.module_id.as_deref())
            .bind(stream.name.as_str())
            .bind(stream.requested_ms)
            .bind(stream.caller.as_deref())
            .bind(stream.api_version.as_deref()),
            Self::StreamClosed { stream_id } => {
                sqlx::query("DELETE FROM streams_in_flight WHERE stream_id = $1")
                    .bind(stream_id.as_str())
            }
        }
    }
}

type Reply = oneshot::Sender<Result<u64, sqlx::Error>>;

/// The queue to the writer task. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ConnectionWrites {
    tx: mpsc::Sender<(ConnectionWrite, Reply)>,
    commits: Arc<AtomicU64>,
}

impl ConnectionWrites {
    /// Starts the writer task on `pool`; it ends when every handle is dropped.
    pub fn start(pool: AnyPool) -> Self {
        let (tx, rx) = mpsc::channel(MAX_BATCH * 4);
        let commits = Arc::new(AtomicU64::new(0));
        tokio::spawn(run(pool, rx, commits.clone()));
        Self { tx, commits }
    }

    /// Transactions committed so far (each carries one or more writes).
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Applies `write` and returns the rows it changed, once committed.
    pub async fn apply(&self, write: ConnectionWrite) -> Result<u64, sqlx::Error> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((write, reply))
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        answer.await.map_err(|_| sqlx::Error::PoolClosed)?
    }
}

async fn run(
    pool: AnyPool,
    mut rx: mpsc::Receiver<(ConnectionWrite, Reply)>,
    commits: Arc<AtomicU64>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        match in_one_transaction(&pool, &batch).await {
            Ok(rows) => {
                commits.fetch_add(1, Ordering::Relaxed);
                for ((_, reply), rows) in batch.drain(..).zip(rows) {
                    let _ = reply.send(Ok(rows));
                }
            }
            // Rolled back (PostgreSQL aborts a transaction at its first failed statement):
            // each write again on its own, so each caller gets its own answer.
            Err(_) => {
                for (write, reply) in batch.drain(..) {
                    let result = write
                        .query()
                        .execute(&pool)
                        .await
                        .map(|r| r.rows_affected());
                    commits.fetch_add(1, Ordering::Relaxed);
                    let _ = reply.send(result);
                }
            }
        }
    }
}

async fn in_one_transaction(
    pool: &AnyPool,
    batch: &[(ConnectionWrite, Reply)],
) -> Result<Vec<u64>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let mut rows = Vec::with_capacity(batch.len());
    for (write, _) in batch {
        rows.push(write.query().execute(&mut *tx).await?.rows_affected());
    }
    tx.commit().await?;
    Ok(rows)
}
