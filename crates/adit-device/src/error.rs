//! The device SDK's errors.

use adit_proto::ConnectionStringError;

/// What can go wrong on the device side.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The connection string is malformed.
    #[error("invalid connection string")]
    ConnectionString(#[from] ConnectionStringError),
    /// A setting is unusable.
    #[error("{0}")]
    Config(String),
    /// The CA settings are unusable.
    #[error("TLS settings")]
    Tls(#[from] adit_transport::TlsError),
    /// Joining the streaming gateway failed (the request was rejected in return).
    #[error("cannot join the stream")]
    Gateway(#[from] adit_transport::GatewayError),
    /// The client has shut down, so the answer could not be sent.
    #[error("the device client is shut down")]
    Closed,
}

impl From<Error> for std::io::Error {
    fn from(e: Error) -> Self {
        std::io::Error::other(e)
    }
}
