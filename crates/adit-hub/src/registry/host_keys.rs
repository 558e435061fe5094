//! SSH host keys trusted on first use by the console's terminal, one per device.

use sqlx::Row as _;

use super::{Registry, RegistryError, now_ms};

/// How a device's host key compares with the one kept for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyCheck {
    /// None was kept: this one is now (trust on first use).
    FirstUse,
    /// The kept one.
    Known,
    /// Another one is kept: its fingerprint.
    Changed(String),
}

impl Registry {
    /// Checks `fingerprint` (`SHA256:...`) for `device_id`, keeping it when none was: of two
    /// first connections at once, one key wins and the other is refused as changed.
    pub async fn check_host_key(
        &self,
        device_id: &str,
        fingerprint: &str,
    ) -> Result<HostKeyCheck, RegistryError> {
        let inserted = sqlx::query(
            "INSERT INTO device_host_keys (device_id, fingerprint, trusted_ms) VALUES ($1, $2, $3) ON CONFLICT (device_id) DO NOTHING",
        )
        .bind(device_id.to_string())
        .bind(fingerprint.to_string())
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        if inserted.rows_affected() == 1 {
            return Ok(HostKeyCheck::FirstUse);
        }
        let row = sqlx::query("SELECT fingerprint FROM device_host_keys WHERE device_id = $1")
            .bind(device_id.to_string())
            .fetch_one(&self.pool)
            .await?;
        let kept: String = row.try_get("fingerprint")?;
        Ok(if kept == fingerprint {
            HostKeyCheck::Known
        } else {
            HostKeyCheck::Changed(kept)
        })
    }
}
