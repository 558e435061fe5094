//! Node leases: how nodes sharing a registry learn that one of them died (kill -9, power
//! loss, a partition) and clear the device connections it held. A lease is a value its node
//! keeps changing; the others judge it by their own clocks (see `cluster::leases`), so clock
//! skew between nodes cannot make a live node look dead.

use sqlx::Row as _;

use super::streams_in_flight::{InFlightStream, from_row, in_flight_columns};
use super::{ConnectionState, Registry, RegistryError, now_ms};

/// What a dead node left behind, now cleared.
#[derive(Debug, Default)]
pub struct Released {
    /// How many devices it held, now marked disconnected.
    pub devices: u64,
    /// The streams it was relaying, to be recorded as lost.
    pub streams: Vec<InFlightStream>,
}

impl Registry {
    /// Sets `node`'s lease to `value` (its renewal time, Unix ms), creating it if needed.
    /// Returns false when there was none: another node had taken it for dead.
    pub async fn renew_lease(&self, node: &str, value: i64) -> Result<bool, RegistryError> {
        let updated = sqlx::query("UPDATE node_leases SET expires_ms = $1 WHERE node_id = $2")
            .bind(value)
            .bind(node.to_string())
            .execute(&self.sessions)
            .await?
            .rows_affected();
        if updated > 0 {
            return Ok(true);
        }
        sqlx::query(
            "INSERT INTO node_leases (node_id, expires_ms) VALUES ($1, $2) ON CONFLICT (node_id) DO UPDATE SET expires_ms = excluded.expires_ms",
        )
        .bind(node.to_string())
        .bind(value)
        .execute(&self.sessions)
        .await?;
        Ok(false)
    }

    /// The id of the cluster this registry belongs to (32 hex digits), made on first use:
    /// the nodes sharing the registry agree on it, other clusters have their own.
    pub async fn cluster_id(&self) -> Result<String, RegistryError> {
        sqlx::query(
            "INSERT INTO cluster_identity (id, cluster_id) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
        )
        .bind(uuid::Uuid::new_v4().simple().to_string())
        .execute(&self.pool)
        .await?;
        let row = sqlx::query("SELECT cluster_id FROM cluster_identity WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("cluster_id")?)
    }

    /// Every node's lease: (node id, its last renewal value).
    pub async fn leases(&self) -> Result<Vec<(String, i64)>, RegistryError> {
        let rows = sqlx::query("SELECT node_id, expires_ms FROM node_leases")
            .fetch_all(&self.sessions)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("node_id")?, r.try_get("expires_ms")?)))
            .collect()
    }

    /// Marks the devices dead node `node` held as disconnected, takes the streams it was
    /// relaying and drops its lease, unless it was renewed since it read `seen` (the node is
    /// alive after all: then nothing is released).
    pub async fn release_dead_node(
        &self,
        node: &str,
        seen: i64,
    ) -> Result<Released, RegistryError> {
        let mut tx = self.sessions.begin().await?;
        let gone = sqlx::query("DELETE FROM node_leases WHERE node_id = $1 AND expires_ms = $2")
            .bind(node.to_string())
            .bind(seen)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if gone == 0 {
            tx.commit().await?;
            return Ok(Released::default());
        }
        let cleared = sqlx::query(
            "UPDATE devices SET connection_state = $1, connection_state_updated_ms = $2, connection_node = NULL WHERE connection_node = $3",
        )
        .bind(ConnectionState::Disconnected.as_str())
        .bind(now_ms())
        .bind(node.to_string())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let streams = sqlx::query(concat!(
            "DELETE FROM streams_in_flight WHERE node_id = $1 RETURNING ",
            in_flight_columns!()
        ))
        .bind(node.to_string())
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(from_row)
        .collect::<Result<Vec<_>, _>>()?;
        tx.commit().await?;
        Ok(Released {
            devices: cleared,
            streams,
        })
    }
}
