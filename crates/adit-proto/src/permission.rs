//! Shared access policies and their rights.
//!
//! A hub has named policies, each with two keys and a set of rights. Services sign SAS tokens
//! with a policy key and name the policy in `skn`; the hub grants what the policy's rights allow.

use std::fmt;
use std::str::FromStr;

/// A set of IoT Hub rights.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Permissions(u8);

impl Permissions {
    /// Read the identity registry.
    pub const REGISTRY_READ: Self = Self(1);
    /// Create, update and delete identities.
    pub const REGISTRY_WRITE: Self = Self(2);
    /// Service-facing endpoints: initiating device streams.
    pub const SERVICE_CONNECT: Self = Self(4);
    /// Device-facing endpoints, on behalf of any device.
    pub const DEVICE_CONNECT: Self = Self(8);
    /// No rights.
    pub const NONE: Self = Self(0);
    /// Every right (the `iothubowner` policy).
    pub const ALL: Self = Self(15);

    const NAMES: [(Self, &'static str); 4] = [
        (Self::REGISTRY_READ, "RegistryRead"),
        (Self::REGISTRY_WRITE, "RegistryWrite"),
        (Self::SERVICE_CONNECT, "ServiceConnect"),
        (Self::DEVICE_CONNECT, "DeviceConnect"),
    ];

    /// True when every right in `other` is in `self`.
    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// The rights in either set.
    pub fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// The bit representation, for storage.
    pub fn bits(self) -> u8 {
        self.0
    }

    /// From the bit representation; unknown bits are dropped.
    pub fn from_bits(bits: u8) -> Self {
        Self(bits & Self::ALL.0)
    }

    /// The names of the rights in this set, in Azure's order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Self::NAMES
            .into_iter()
            .filter(move |(p, _)| self.contains(*p))
            .map(|(_, n)| n)
    }
}

/// Azure's comma-separated form: `RegistryRead, ServiceConnect`.
impl fmt::Display for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.names().collect();
        f.write_str(&names.join(", "))
    }
}

impl fmt::Debug for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Permissions({self})")
    }
}

/// A right name that Azure does not define.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown permission {0:?} (known: RegistryRead, RegistryWrite, ServiceConnect, DeviceConnect)"
)]
pub struct UnknownPermission(pub String);

impl FromStr for Permissions {
    type Err = UnknownPermission;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut set = Self::NONE;
        for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let (p, _) = Self::NAMES
                .iter()
                .find(|(_, n)| n.eq_ignore_ascii_case(name))
                .ok_or_else(|| UnknownPermission(name.to_string()))?;
            set = set.union(*p);
        }
        Ok(set)
    }
}

/// A shared access policy name (`skn`): `^[a-zA-Z0-9_\-@.]{1,64}$`, as Azure's builder checks.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PolicyName(String);

/// A string that is not a valid policy name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("policy name must be 1 to 64 characters of A-Z a-z 0-9 _ - @ .")]
pub struct BadPolicyName;

impl PolicyName {
    /// Validates and wraps a policy name.
    pub fn new(s: impl Into<String>) -> Result<Self, BadPolicyName> {
        let s = s.into();
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-@.".contains(c));
        if ok { Ok(Self(s)) } else { Err(BadPolicyName) }
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PolicyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The five policies every Azure hub starts with, and their rights.
pub const DEFAULT_POLICIES: [(&str, Permissions); 5] = [
    ("iothubowner", Permissions::ALL),
    ("service", Permissions::SERVICE_CONNECT),
    ("device", Permissions::DEVICE_CONNECT),
    ("registryRead", Permissions::REGISTRY_READ),
    (
        "registryReadWrite",
        Permissions(Permissions::REGISTRY_READ.0 | Permissions::REGISTRY_WRITE.0),
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_parse_round_trip() {
        for bits in 0..=15u8 {
            let p = Permissions::from_bits(bits);
            assert_eq!(p.to_string().parse::<Permissions>(), Ok(p));
        }
        assert_eq!(
            Permissions::ALL.to_string(),
            "RegistryRead, RegistryWrite, ServiceConnect, DeviceConnect"
        );
        assert_eq!(
            "serviceconnect,RegistryRead".parse::<Permissions>(),
            Ok(Permissions::SERVICE_CONNECT.union(Permissions::REGISTRY_READ))
        );
        assert!("Everything".parse::<Permissions>().is_err());
    }

    #[test]
    fn contains_is_subset() {
        let rw = DEFAULT_POLICIES[4].1;
        assert!(rw.contains(Permissions::REGISTRY_READ));
        assert!(rw.contains(Permissions::REGISTRY_WRITE));
        assert!(!rw.contains(Permissions::SERVICE_CONNECT));
        assert!(Permissions::ALL.contains(rw));
    }

    #[test]
    fn policy_names() {
        assert!(PolicyName::new("iothubowner").is_ok());
        assert!(PolicyName::new("a@b.c_d-e").is_ok());
        assert_eq!(PolicyName::new(""), Err(BadPolicyName));
        assert_eq!(PolicyName::new("a b"), Err(BadPolicyName));
        assert_eq!(PolicyName::new("x".repeat(65)), Err(BadPolicyName));
    }
}
