//! Service credentials from a connection string, and the SAS tokens they sign.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use adit_proto::{ConnectionString, SasToken};

use crate::Error;

/// How long the tokens a [`ServiceCredentials`] signs stay valid.
pub const TOKEN_TTL: Duration = Duration::from_secs(3600);

/// A service's identity: the hub's host name and a policy key (or a ready-made token).
#[derive(Debug, Clone)]
pub struct ServiceCredentials {
    connection_string: ConnectionString,
}

impl ServiceCredentials {
    /// Parses a service connection string
    /// (`HostName=...;SharedAccessKeyName=...;SharedAccessKey=...`).
    pub fn from_connection_string(s: &str) -> Result<Self, Error> {
        let connection_string = ConnectionString::parse_service(s)?;
        if connection_string.is_device() {
            return Err(Error::Config(
                "this is a device connection string; a service connection string has SharedAccessKeyName and no DeviceId".into(),
            ));
        }
        Ok(Self { connection_string })
    }

    /// `HostName` as written (`host` or `host:port`).
    pub fn host_name(&self) -> String {
        self.connection_string.host_name()
    }

    /// The parsed connection string.
    pub fn connection_string(&self) -> &ConnectionString {
        &self.connection_string
    }

    /// A fresh `Authorization` value: signed now for [`TOKEN_TTL`], or the configured
    /// `SharedAccessSignature` as is.
    pub fn authorization(&self) -> String {
        let cs = &self.connection_string;
        match (&cs.key, &cs.signature) {
            (Some(key), _) => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                SasToken::sign(
                    &cs.host_name(),
                    key,
                    cs.key_name.as_deref(),
                    now + TOKEN_TTL.as_secs(),
                )
            }
            (None, Some(signature)) => signature.clone(),
            // parse_service guarantees a key or a signature.
            (None, None) => String::new(),
        }
    }
}
