//! SSH host keys trusted on first use by the console's terminal, one per device.

use sqlx::Row as _;

use super::{Registry, RegistryError, now_ms};

/// How a device's host key compares with the one kept for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyCheck {
    /// None is kept: the user is asked whether to trust this one.
    Unknown,
    /// The kept one.
    Known,
    /// Another one is kept: its fingerprint.
    Changed(String),
}

impl Registry {
    /// Compares `fingerprint` (`SHA256:...`) with the key kept for `device_id`.
    pub async fn check_host_key(
        &self,
        device_id: &str,
        fingerprint: &str,
    ) -> Result<HostKeyCheck, RegistryError> {
        let row = sqlx::query("SELECT fingerprint FROM device_host_keys WHERE device_id = $1")
            .bind(device_id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else {
            return Ok(HostKeyCheck::Unknown);
        };
        let kept: String = row.try_get("fingerprint")?;
        Ok(if kept == fingerprint {
            HostKeyCheck::Known
        } else {
            HostKeyCheck::Changed(kept)
        })
    }

    /// Keeps `fingerprint` for `device_id` unless a key is kept already, and says how it then
    /// compares: `Known` once it is the kept one. Of two first connections trusted at once,
    /// one key wins and the other is `Changed`.
    pub async fn trust_host_key(
        &self,
        device_id: &str,
        fingerprint: &str,
    ) -> Result<HostKeyCheck, RegistryError> {
        sqlx::query(
            "INSERT INTO device_host_keys (device_id, fingerprint, trusted_ms) VALUES ($1, $2, $3) ON CONFLICT (device_id) DO NOTHING",
        )
        .bind(device_id.to_string())
        .bind(fingerprint.to_string())
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        self.check_host_key(device_id, fingerprint).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_trusted_key_is_kept_and_another_is_refused_until_the_device_is_deleted() {
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
        let trust = |fp: &'static str| {
            let r = registry.clone();
            async move { r.trust_host_key("pump", fp).await.expect("trusted") }
        };
        assert_eq!(check("SHA256:first").await, HostKeyCheck::Unknown);
        assert_eq!(
            check("SHA256:first").await,
            HostKeyCheck::Unknown,
            "checking keeps nothing"
        );
        assert_eq!(trust("SHA256:first").await, HostKeyCheck::Known);
        assert_eq!(check("SHA256:first").await, HostKeyCheck::Known);
        assert_eq!(
            check("SHA256:other").await,
            HostKeyCheck::Changed("SHA256:first".into())
        );
        assert_eq!(
            trust("SHA256:other").await,
            HostKeyCheck::Changed("SHA256:first".into()),
            "trusting another key later does not replace the kept one"
        );
        registry
            .delete_device("pump", &crate::registry::IfMatch::Any)
            .await
            .expect("deleted");
        assert_eq!(check("SHA256:other").await, HostKeyCheck::Unknown);
        // No key is kept for a device that does not exist (one deleted while its terminal
        // waited for the user's word, say).
        assert!(registry.trust_host_key("gone", "SHA256:x").await.is_err());
        assert_eq!(
            registry
                .check_host_key("gone", "SHA256:x")
                .await
                .expect("checked"),
            HostKeyCheck::Unknown
        );
    }
}
