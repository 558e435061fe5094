//! Node leases: how nodes sharing a registry learn that one of them died (kill -9, power
//! loss, a partition) and clear the device connections it held.

use sqlx::Row as _;

use super::{ConnectionState, Registry, RegistryError, now_ms};

impl Registry {
    /// Renews `node`'s lease until `until_ms` (Unix ms), creating it if needed.
    pub async fn renew_lease(&self, node: &str, until_ms: i64) -> Result<(), RegistryError> {
        sqlx::query(
            "INSERT INTO node_leases (node_id, expires_ms) VALUES ($1, $2) ON CONFLICT (node_id) DO UPDATE SET expires_ms = excluded.expires_ms",
        )
        .bind(node.to_string())
        .bind(until_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Nodes whose lease ran out before `now_ms`.
    pub async fn expired_nodes(&self, now_ms: i64) -> Result<Vec<String>, RegistryError> {
        let rows = sqlx::query("SELECT node_id FROM node_leases WHERE expires_ms < $1")
            .bind(now_ms)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| r.try_get::<String, _>("node_id").map_err(Into::into))
            .collect()
    }

    /// Marks the devices dead node `node` held as disconnected and drops its lease, unless
    /// it was renewed after `expired_before_ms` (the node came back). Returns how many
    /// devices were cleared.
    pub async fn release_dead_node(
        &self,
        node: &str,
        expired_before_ms: i64,
    ) -> Result<u64, RegistryError> {
        let mut tx = self.pool.begin().await?;
        let gone = sqlx::query("DELETE FROM node_leases WHERE node_id = $1 AND expires_ms < $2")
            .bind(node.to_string())
            .bind(expired_before_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if gone == 0 {
            tx.commit().await?;
            return Ok(0);
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
        tx.commit().await?;
        Ok(cleared)
    }
}
