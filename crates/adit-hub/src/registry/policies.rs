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

/// Which key of a policy to replace, as `az iot hub policy renew-key --renew-key` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRenewal {
    /// A new primary key; the secondary is kept.
    Primary,
    /// A new secondary key; the primary is kept.
    Secondary,
    /// Primary and secondary trade places; no key is new or dropped.
    Swap,
}

impl KeyRenewal {
    /// Parses `primary`, `secondary` or `swap` in any case.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Primary, Self::Secondary, Self::Swap]
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s))
    }

    /// The name `parse` accepts.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Primary => "primary",
            Self::Secondary => "secondary",
            Self::Swap => "swap",
        }
    }
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
        // Nodes sharing a registry may start for the first time together: the second one's
        // inserts wait for the first's commit, then do nothing.
        let mut created = 0;
        for (name, rights) in DEFAULT_POLICIES {
            created += sqlx::query(
                "INSERT INTO shared_access_policies (name, primary_key, secondary_key, rights) VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .bind(generate_key().to_base64().to_string())
            .bind(generate_key().to_base64().to_string())
            .bind(i64::from(rights.bits()))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(created > 0)
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

    /// Replaces a key of policy `name` (or swaps them) and returns the policy as stored.
    /// Fails with `PolicyNotFound` when there is no such policy. The write only lands if the
    /// keys are still the ones read, so two concurrent renewals cannot both think they won.
    pub async fn renew_policy_key(
        &self,
        name: &str,
        which: KeyRenewal,
    ) -> Result<PolicyRecord, RegistryError> {
        let current = self
            .policy(name)
            .await?
            .ok_or_else(|| RegistryError::PolicyNotFound(name.to_string()))?;
        let (primary, secondary) = match which {
            KeyRenewal::Primary => (generate_key(), current.secondary_key.clone()),
            KeyRenewal::Secondary => (current.primary_key.clone(), generate_key()),
            KeyRenewal::Swap => (current.secondary_key.clone(), current.primary_key.clone()),
        };
        let done = sqlx::query(
            "UPDATE shared_access_policies SET primary_key = $1, secondary_key = $2 WHERE name = $3 AND primary_key = $4 AND secondary_key = $5",
        )
        .bind(primary.to_base64().to_string())
        .bind(secondary.to_base64().to_string())
        .bind(name)
        .bind(current.primary_key.to_base64().to_string())
        .bind(current.secondary_key.to_base64().to_string())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(RegistryError::PreconditionFailed(name.to_string()));
        }
        Ok(PolicyRecord {
            primary_key: primary,
            secondary_key: secondary,
            ..current
        })
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
