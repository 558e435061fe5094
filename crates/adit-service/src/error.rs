//! The service SDK's errors.

use adit_proto::{ConnectionStringError, ErrorCode, IdError};

/// What can go wrong talking to a hub.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The connection string is malformed.
    #[error("invalid connection string")]
    ConnectionString(#[from] ConnectionStringError),
    /// A setting is unusable (bad CA file, wrong kind of connection string, bad id).
    #[error("{0}")]
    Config(String),
    /// The CA settings are unusable.
    #[error("TLS settings")]
    Tls(#[from] adit_transport::TlsError),
    /// The hub could not be reached or the connection failed.
    #[error("cannot reach the hub")]
    Transport(#[source] reqwest::Error),
    /// The HTTP proxy could not be reached or would not open a tunnel to the hub (its
    /// message names the proxy, never its password, and the status it answered).
    #[error("cannot reach the hub through the proxy")]
    Proxy(#[source] adit_transport::ProxyError),
    /// The hub refused the request.
    #[error("hub answered {status}{}: {message}", code.map(|c| format!(" ({})", c.name())).unwrap_or_default())]
    Hub {
        /// HTTP status.
        status: u16,
        /// Azure error code, when the body carried a known one.
        code: Option<ErrorCode>,
        /// The hub's message.
        message: String,
    },
    /// The device rejected the stream.
    #[error("device {0} rejected the stream")]
    Rejected(String),
    /// No such device.
    #[error("device {0} not found")]
    DeviceNotFound(String),
    /// The device is not connected (within the connect timeout).
    #[error("device {0} is not online")]
    DeviceOffline(String),
    /// The device did not answer within the response timeout.
    #[error("device {0} did not answer in time")]
    TimedOut(String),
    /// The credentials were refused, or lack ServiceConnect.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// A hub limit refused the stream.
    #[error("throttled by the hub; retry later")]
    Throttled,
    /// Joining the streaming gateway failed.
    #[error("cannot join the stream")]
    Gateway(#[from] adit_transport::GatewayError),
    /// The hub's answer could not be decoded.
    #[error("unexpected answer from the hub: {0}")]
    Decode(String),
    /// A multiplexed session ended (the text says why: lost beyond its resume grace, closed
    /// by the device, ...).
    #[error("the session to the device ended: {0}")]
    SessionEnded(String),
}

impl Error {
    /// The Azure error code, for errors the hub reported.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Hub { code, .. } => *code,
            _ => None,
        }
    }
}

impl From<reqwest::Error> for Error {
    fn from(e: reqwest::Error) -> Self {
        if e.is_decode() {
            Self::Decode(e.to_string())
        } else {
            Self::Transport(e)
        }
    }
}

impl Error {
    /// A device or module id (`kind`) refused before any request, naming the id as given
    /// so a user who typed several can tell which one.
    pub(crate) fn bad_id(kind: &str, raw: &str, error: IdError) -> Self {
        Error::Config(format!("invalid {kind} id {raw:?}: {error}"))
    }
}
