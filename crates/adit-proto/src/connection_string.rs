//! Connection strings: `Key=Value` pairs separated by `;`, as Azure's portal and SDKs use them.
//!
//! Device form: `HostName={host}[:port];DeviceId={id};SharedAccessKey={b64}` with optional
//! `ModuleId`, `GatewayHostName`, `SharedAccessKeyName`, `SharedAccessSignature`, `x509` and
//! `UseProvisioning`. Service form: `HostName=...;SharedAccessKeyName={policy};SharedAccessKey=...`.
//! `HostName` may carry `:port` for a hub that does not listen on 443, and an IPv6 address is
//! written in brackets (`HostName=[::1]:8443`): see [`crate::host`], which also says how the
//! host is stored (bare) and written back (bracketed).
//!
//! `HostName` names the hub: it is the identity in SAS resource URIs and MQTT usernames.
//! `GatewayHostName`, when present, is where a device connects instead (a gateway, or a name
//! that resolves on the device's network), as Azure's device SDKs do; [`ConnectionString::dial`]
//! says which one to dial.
//!
//! Keys are matched case-insensitively (as C#'s builder does) and printed in Azure's spelling.
//! A value may contain `=` (base64 padding), so each pair is split at its first `=` only.

use std::fmt;
use std::str::FromStr;

use crate::host::{HostError, HostPort, unbracket};
use crate::id::{DeviceId, IdError, ModuleId};
use crate::key::{Key, KeyError};

/// Longest connection string accepted; real ones are a few hundred bytes.
pub const MAX_CONNECTION_STRING_LEN: usize = 4096;

/// Why a connection string could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionStringError {
    /// Longer than [`MAX_CONNECTION_STRING_LEN`].
    #[error("connection string is longer than {MAX_CONNECTION_STRING_LEN} bytes")]
    TooLong,
    /// The Nth `;`-separated part (1 for the first) is not `Key=Value` with a key made of
    /// letters. Named by position: its text may be a key.
    #[error("connection string part {0} is not Key=Value")]
    NotKeyValue(usize),
    /// A key (a name of letters) that no Azure SDK defines.
    #[error("unknown connection string key {0:?}")]
    UnknownKey(String),
    /// The same key appears twice.
    #[error("connection string key {0} appears more than once")]
    DuplicateKey(&'static str),
    /// A key has an empty value.
    #[error("connection string key {0} has an empty value")]
    EmptyValue(&'static str),
    /// `HostName` is missing.
    #[error("connection string has no HostName")]
    MissingHostName,
    /// `HostName` or `GatewayHostName` is not `host`, `host:port`, `[ipv6]` or `[ipv6]:port`.
    #[error("{key} {error}")]
    BadHost {
        /// Which key: `HostName` or `GatewayHostName`.
        key: &'static str,
        /// What is wrong with it.
        error: HostError,
    },
    /// Neither a key nor a signature (nor `x509=true`) is given.
    #[error("connection string has neither SharedAccessKey nor SharedAccessSignature")]
    MissingCredential,
    /// `ModuleId` without `DeviceId`.
    #[error("connection string has ModuleId but no DeviceId")]
    ModuleWithoutDevice,
    /// A service connection string needs `SharedAccessKeyName`.
    #[error("service connection string has no SharedAccessKeyName")]
    MissingKeyName,
    /// A device (or module) connection string was given where a service one is needed; holds
    /// the device id, which is not a secret.
    #[error(
        "this is the device connection string of {0:?}; a service connection string names a shared access policy (SharedAccessKeyName=iothubowner, service, ...) instead of a DeviceId"
    )]
    DeviceStringForService(String),
    /// `DeviceId` or `ModuleId` is not a valid id.
    #[error("invalid id in connection string")]
    BadId(#[from] IdError),
    /// `SharedAccessKey` is not a valid key.
    #[error("invalid SharedAccessKey")]
    BadKey(#[from] KeyError),
    /// `x509` is neither `true` nor `false`.
    #[error("x509 must be true or false")]
    BadBool,
}

/// A parsed connection string (device or service form).
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectionString {
    /// `HostName`'s host, bare: a DNS name, an IPv4 address, or an IPv6 address without
    /// brackets. Write it with [`ConnectionString::host_name`] (or [`crate::host::url_host`]).
    pub host: String,
    /// The port from `HostName`, if one was given.
    pub port: Option<u16>,
    /// `DeviceId`, present in the device form.
    pub device_id: Option<DeviceId>,
    /// `ModuleId`, for a module identity.
    pub module_id: Option<ModuleId>,
    /// `SharedAccessKeyName`: the policy the key belongs to.
    pub key_name: Option<String>,
    /// `SharedAccessKey`.
    pub key: Option<Key>,
    /// `SharedAccessSignature`: a ready-made token instead of a key.
    pub signature: Option<String>,
    /// `GatewayHostName`: where the device connects instead of `HostName`.
    pub gateway_host: Option<HostPort>,
    /// `x509=true`: the device authenticates with a client certificate.
    pub x509: bool,
    /// `UseProvisioning` (kept for round-tripping; Adit has no provisioning service).
    pub use_provisioning: Option<String>,
}

impl ConnectionString {
    /// A device connection string for `device_id` with its symmetric key. `host` may be bare
    /// or bracketed.
    pub fn for_device(host: &str, port: Option<u16>, device_id: DeviceId, key: Key) -> Self {
        Self {
            host: unbracket(host).to_string(),
            port,
            device_id: Some(device_id),
            module_id: None,
            key_name: None,
            key: Some(key),
            signature: None,
            gateway_host: None,
            x509: false,
            use_provisioning: None,
        }
    }

    /// A service connection string for the shared access policy `policy`. `host` may be bare
    /// or bracketed.
    pub fn for_policy(host: &str, port: Option<u16>, policy: &str, key: Key) -> Self {
        Self {
            host: unbracket(host).to_string(),
            port,
            device_id: None,
            module_id: None,
            key_name: Some(policy.to_string()),
            key: Some(key),
            signature: None,
            gateway_host: None,
            x509: false,
            use_provisioning: None,
        }
    }

    /// `HostName` as written: `host` or `host:port`, an IPv6 address in brackets
    /// (`[::1]:8443`). This is the hub's identity: what SAS resource URIs and MQTT usernames
    /// start with, and what service URLs (`https://{host_name}`) name.
    pub fn host_name(&self) -> String {
        self.hub().authority()
    }

    /// `HostName` as a host and port.
    pub fn hub(&self) -> HostPort {
        HostPort::new(&self.host, self.port)
    }

    /// Where a device connects: `GatewayHostName` when given, else `HostName`. TLS verifies
    /// this name; the token and MQTT username still name `HostName`.
    pub fn dial(&self) -> HostPort {
        self.gateway_host.clone().unwrap_or_else(|| self.hub())
    }

    /// True for the device (or module) form.
    pub fn is_device(&self) -> bool {
        self.device_id.is_some()
    }

    /// Parses and checks that this is a service connection string (a policy name and key or
    /// signature, no device id).
    pub fn parse_service(s: &str) -> Result<Self, ConnectionStringError> {
        let cs: Self = s.parse()?;
        if cs.key_name.is_none() && cs.signature.is_none() {
            if let Some(device) = &cs.device_id {
                return Err(ConnectionStringError::DeviceStringForService(
                    device.to_string(),
                ));
            }
            return Err(ConnectionStringError::MissingKeyName);
        }
        Ok(cs)
    }
}

fn parse_host(key: &'static str, value: &str) -> Result<HostPort, ConnectionStringError> {
    HostPort::parse(value).map_err(|error| ConnectionStringError::BadHost { key, error })
}

fn set<T>(slot: &mut Option<T>, name: &'static str, v: T) -> Result<(), ConnectionStringError> {
    if slot.is_some() {
        return Err(ConnectionStringError::DuplicateKey(name));
    }
    *slot = Some(v);
    Ok(())
}

impl FromStr for ConnectionString {
    type Err = ConnectionStringError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() > MAX_CONNECTION_STRING_LEN {
            return Err(ConnectionStringError::TooLong);
        }
        let mut host = None;
        let mut device_id = None;
        let mut module_id = None;
        let mut key_name = None;
        let mut key = None;
        let mut signature = None;
        let mut gateway_host = None;
        let mut x509 = None;
        let mut use_provisioning = None;

        let parts = s.trim().split(';').enumerate();
        for (index, part) in parts.filter(|(_, p)| !p.trim().is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or(ConnectionStringError::NotKeyValue(index + 1))?;
            let (k, v) = (k.trim(), v.trim());
            // Only a name is ever echoed: "SharedAccessKey:abc=" must not print the key.
            if k.is_empty() || k.len() > 32 || !k.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(ConnectionStringError::NotKeyValue(index + 1));
            }
            let name: &'static str = match k.to_ascii_lowercase().as_str() {
                "hostname" => "HostName",
                "deviceid" => "DeviceId",
                "moduleid" => "ModuleId",
                "sharedaccesskeyname" => "SharedAccessKeyName",
                "sharedaccesskey" => "SharedAccessKey",
                "sharedaccesssignature" => "SharedAccessSignature",
                "gatewayhostname" => "GatewayHostName",
                "x509" => "x509",
                "useprovisioning" => "UseProvisioning",
                _ => return Err(ConnectionStringError::UnknownKey(k.to_string())),
            };
            if v.is_empty() {
                return Err(ConnectionStringError::EmptyValue(name));
            }
            match name {
                "HostName" => set(&mut host, name, parse_host(name, v)?)?,
                "DeviceId" => set(&mut device_id, name, DeviceId::new(v)?)?,
                "ModuleId" => set(&mut module_id, name, ModuleId::new(v)?)?,
                "SharedAccessKeyName" => set(&mut key_name, name, v.to_string())?,
                "SharedAccessKey" => set(&mut key, name, Key::from_base64(v)?)?,
                "SharedAccessSignature" => set(&mut signature, name, v.to_string())?,
                "GatewayHostName" => set(&mut gateway_host, name, parse_host(name, v)?)?,
                "x509" => {
                    let b = match v.to_ascii_lowercase().as_str() {
                        "true" => true,
                        "false" => false,
                        _ => return Err(ConnectionStringError::BadBool),
                    };
                    set(&mut x509, name, b)?
                }
                _ => set(&mut use_provisioning, name, v.to_string())?,
            }
        }

        let hub = host.ok_or(ConnectionStringError::MissingHostName)?;
        let x509 = x509.unwrap_or(false);
        if key.is_none() && signature.is_none() && !x509 {
            return Err(ConnectionStringError::MissingCredential);
        }
        if module_id.is_some() && device_id.is_none() {
            return Err(ConnectionStringError::ModuleWithoutDevice);
        }
        Ok(Self {
            host: hub.host().to_string(),
            port: hub.port(),
            device_id,
            module_id,
            key_name,
            key,
            signature,
            gateway_host,
            x509,
            use_provisioning,
        })
    }
}

impl fmt::Display for ConnectionString {
    /// Azure's key order: `HostName`, `DeviceId`, `ModuleId`, `SharedAccessKeyName`,
    /// `SharedAccessKey`, then the rest. This prints the key: treat the output as a secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HostName={}", self.host_name())?;
        if let Some(d) = &self.device_id {
            write!(f, ";DeviceId={d}")?;
        }
        if let Some(m) = &self.module_id {
            write!(f, ";ModuleId={m}")?;
        }
        if let Some(n) = &self.key_name {
            write!(f, ";SharedAccessKeyName={n}")?;
        }
        if let Some(k) = &self.key {
            write!(f, ";SharedAccessKey={}", k.to_base64())?;
        }
        if let Some(s) = &self.signature {
            write!(f, ";SharedAccessSignature={s}")?;
        }
        if let Some(g) = &self.gateway_host {
            write!(f, ";GatewayHostName={g}")?;
        }
        if self.x509 {
            f.write_str(";x509=true")?;
        }
        if let Some(p) = &self.use_provisioning {
            write!(f, ";UseProvisioning={p}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ConnectionString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionString")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("device_id", &self.device_id)
            .field("module_id", &self.module_id)
            .field("key_name", &self.key_name)
            .field("key", &self.key)
            .field("signature", &self.signature.as_ref().map(|_| "MASKED"))
            .field("gateway_host", &self.gateway_host)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn parses_device_form_with_port() {
        let s = format!("HostName=hub.local:8443;DeviceId=dev-1;SharedAccessKey={KEY}");
        let cs: ConnectionString = s.parse().expect("valid");
        assert_eq!(cs.host, "hub.local");
        assert_eq!(cs.port, Some(8443));
        assert_eq!(cs.host_name(), "hub.local:8443");
        assert_eq!(cs.device_id.as_ref().map(DeviceId::as_str), Some("dev-1"));
        assert_eq!(cs.to_string(), s);
    }

    #[test]
    fn parses_service_form_any_case_and_order() {
        let s = format!(
            "sharedaccesskey={KEY};hostname=myhub.azure-devices.net;SharedAccessKeyName=iothubowner"
        );
        let cs = ConnectionString::parse_service(&s).expect("valid");
        assert_eq!(cs.host, "myhub.azure-devices.net");
        assert_eq!(cs.port, None);
        assert_eq!(cs.key_name.as_deref(), Some("iothubowner"));
        assert_eq!(
            cs.to_string(),
            format!(
                "HostName=myhub.azure-devices.net;SharedAccessKeyName=iothubowner;SharedAccessKey={KEY}"
            )
        );
    }

    #[test]
    fn parses_every_key() {
        let s = format!(
            "HostName=h.example;DeviceId=d;ModuleId=m;SharedAccessKeyName=device;SharedAccessKey={KEY};GatewayHostName=10.0.0.1;UseProvisioning=true"
        );
        let cs: ConnectionString = s.parse().expect("valid");
        assert_eq!(cs.module_id.as_ref().map(ModuleId::as_str), Some("m"));
        assert_eq!(cs.gateway_host, HostPort::parse("10.0.0.1").ok());
        assert_eq!(cs.to_string(), s);
        let x: ConnectionString = "HostName=h.example;DeviceId=d;x509=true"
            .parse()
            .expect("valid");
        assert!(x.x509);
        let sig: ConnectionString =
            "HostName=h;DeviceId=d;SharedAccessSignature=SharedAccessSignature sr=h&sig=a&se=1"
                .parse()
                .expect("valid");
        assert!(sig.signature.is_some());
    }

    #[test]
    fn rejects_malformed() {
        use ConnectionStringError as E;
        let k = KEY;
        let cases: &[(&str, E)] = &[
            ("DeviceId=d", E::MissingHostName),
            ("HostName=h;DeviceId=d", E::MissingCredential),
            (
                "HostName=h;Foo=1;SharedAccessKey=x",
                E::UnknownKey("Foo".into()),
            ),
            ("HostName=h;HostName=g", E::DuplicateKey("HostName")),
            ("HostName=", E::EmptyValue("HostName")),
            ("HostName=h;garbage", E::NotKeyValue(2)),
            (
                "HostName=h;SharedAccessKey:c2VjcmV0c2VjcmV0c2VjcmV0=",
                E::NotKeyValue(2),
            ),
            (
                "HostName=h:0",
                E::BadHost {
                    key: "HostName",
                    error: HostError::BadPort("h:0".into()),
                },
            ),
            (
                "HostName=h:99999",
                E::BadHost {
                    key: "HostName",
                    error: HostError::BadPort("h:99999".into()),
                },
            ),
            (
                "HostName=h/x",
                E::BadHost {
                    key: "HostName",
                    error: HostError::Invalid("h/x".into()),
                },
            ),
            (
                "HostName=h;GatewayHostName=[::1",
                E::BadHost {
                    key: "GatewayHostName",
                    error: HostError::Invalid("[::1".into()),
                },
            ),
            (
                "HostName=h;DeviceId=a/b;x509=true",
                E::BadId(IdError::NotAllowed('/')),
            ),
            (
                "HostName=h;DeviceId=d;SharedAccessKey=!!",
                E::BadKey(KeyError::NotBase64),
            ),
            ("HostName=h;x509=maybe", E::BadBool),
        ];
        for (input, want) in cases {
            assert_eq!(
                input.parse::<ConnectionString>().as_ref(),
                Err(want),
                "{input}"
            );
        }
        let module_only = format!("HostName=h;ModuleId=m;SharedAccessKey={k}");
        assert_eq!(
            module_only.parse::<ConnectionString>(),
            Err(E::ModuleWithoutDevice)
        );
        let no_policy = format!("HostName=h;SharedAccessKey={k}");
        assert_eq!(
            ConnectionString::parse_service(&no_policy),
            Err(E::MissingKeyName)
        );
        let device = format!("HostName=h;DeviceId=pi;SharedAccessKey={k}");
        let err = ConnectionString::parse_service(&device).expect_err("a device string");
        assert_eq!(err, E::DeviceStringForService("pi".into()));
        assert!(err.to_string().contains("SharedAccessKeyName"), "{err}");
        assert!(!err.to_string().contains(k), "{err}");
        assert_eq!(
            "x".repeat(5000).parse::<ConnectionString>(),
            Err(E::TooLong)
        );
    }

    #[test]
    fn debug_masks_secrets() {
        let s = format!("HostName=h;DeviceId=d;SharedAccessKey={KEY}");
        let cs: ConnectionString = s.parse().expect("valid");
        assert!(!format!("{cs:?}").contains(KEY));
    }
}

#[cfg(test)]
mod addressing_tests;
