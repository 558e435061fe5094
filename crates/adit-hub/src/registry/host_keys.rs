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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_key_is_kept_and_another_is_refused_until_the_device_is_deleted() {
        let dir = tempfile::tempdir().expect("temp dir");
        let registry = Registry::open_in_dir(dir.path()).await.expect("registry");
        let id = adit_proto::DeviceId::new("pump").expect("id");
        registry
            .create_device(&crate::registry::NewDevice::enabled_sas(id))
            .await
            .expect("created");
        let check = |fp: &'static str| {
            let r = registry.clone();
            async move { r.check_host_key("pump", fp).await.expect("checked") }
        };
        assert_eq!(check("SHA256:first").await, HostKeyCheck::FirstUse);
        assert_eq!(check("SHA256:first").await, HostKeyCheck::Known);
        assert_eq!(
            check("SHA256:other").await,
            HostKeyCheck::Changed("SHA256:first".into())
        );
        registry
            .delete_device("pump", &crate::registry::IfMatch::Any)
            .await
            .expect("deleted");
        assert_eq!(check("SHA256:other").await, HostKeyCheck::FirstUse);
    }
}
