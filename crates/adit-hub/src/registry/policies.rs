//! Shared access policies.

use adit_proto::permission::DEFAULT_POLICIES;
use adit_proto::{Key, Permissions};
use rand::RngCore as _;
use sqlx::Row as _;
use sqlx::any::AnyRow;

use super::{Registry, RegistryError};

/// A stored policy.
#[derive(Debug, Clone)]
pub struct PolicyRecord {
    /// Policy name (`skn`).
    pub name: String,
    /// Primary key.
    pub primary_key: Key,
    /// Secondary key.
    pub secondary_key: Key,
    /// What the policy may do.
    pub rights: Permissions,
}

/// A fresh random key of Azure's usual length.
pub fn generate_key() -> Key {
    let mut bytes = [0u8; adit_proto::key::GENERATED_KEY_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    // 32 bytes is within the accepted range, so this cannot fail.
    Key::from_bytes(&bytes).unwrap_or_else(|_| unreachable!())
}

fn from_row(row: &AnyRow) -> Result<PolicyRecord, RegistryError> {
    let name: String = row.try_get("name")?;
    let corrupt = |what: &str| RegistryError::Corrupt(name.clone(), what.to_string());
    let primary_key = Key::from_base64(&row.try_get::<String, _>("primary_key")?)
        .map_err(|_| corrupt("primary key"))?;
    let secondary_key = Key::from_base64(&row.try_get::<String, _>("secondary_key")?)
        .map_err(|_| corrupt("secondary key"))?;
    let rights = u8::try_from(row.try_get::<i64, _>("rights")?).map_err(|_| corrupt("rights"))?;
    Ok(PolicyRecord {
        name: name.clone(),
        primary_key,
        secondary_key,
        rights: Permissions::from_bits(rights),
    })
}

impl Registry {
    /// Creates Azure's five default policies, with random keys, if there are no policies yet.
    /// Returns true when it created them (the hub's first start).
    pub async fn ensure_default_policies(&self) -> Result<bool, RegistryError> {
        let mut tx = self.pool.begin().await?;
        let count: i64 = sqlx::query("SELECT COUNT(*) AS n FROM shared_access_policies")
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
        if count > 0 {
            return Ok(false);
        }
        for (name, rights) in DEFAULT_POLICIES {
            sqlx::query(
                "INSERT INTO shared_access_policies (name, primary_key, secondary_key, rights) VALUES ($1, $2, $3, $4)",
            )
            .bind(name)
            .bind(generate_key().to_base64().to_string())
            .bind(generate_key().to_base64().to_string())
            .bind(i64::from(rights.bits()))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Every policy, by name.
    pub async fn policies(&self) -> Result<Vec<PolicyRecord>, RegistryError> {
        sqlx::query("SELECT name, primary_key, secondary_key, rights FROM shared_access_policies ORDER BY name")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(from_row)
            .collect()
    }

    /// One policy.
    pub async fn policy(&self, name: &str) -> Result<Option<PolicyRecord>, RegistryError> {
        sqlx::query("SELECT name, primary_key, secondary_key, rights FROM shared_access_policies WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(from_row)
            .transpose()
    }
}
