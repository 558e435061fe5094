//! The HTTPS client both service clients use, and how hub errors become [`Error`]s.

use std::time::Duration;

use adit_proto::ErrorBody;

use crate::Error;

/// An HTTPS client with these roots and a per-request timeout.
pub fn client(tls: rustls::ClientConfig, timeout: Duration) -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .connect_timeout(Duration::from_secs(10))
        .timeout(timeout)
        .tcp_nodelay(true)
        // The same TCP keepalive as every other client socket (see adit_transport::tcp).
        .tcp_keepalive(adit_transport::tcp::KEEPALIVE_TIME)
        .tcp_keepalive_interval(adit_transport::tcp::KEEPALIVE_INTERVAL)
        .tcp_keepalive_retries(adit_transport::tcp::KEEPALIVE_RETRIES)
        .build()
        .map_err(Error::Transport)
}

/// Passes a success through; turns anything else into [`Error::Hub`] with Azure's code.
pub async fn check(response: reqwest::Response) -> Result<reqwest::Response, Error> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body = response.bytes().await.unwrap_or_default();
    let parsed = ErrorBody::parse(&body);
    let message = match &parsed {
        Some(b) => b.message.clone(),
        None => String::from_utf8_lossy(&body).chars().take(300).collect(),
    };
    Err(Error::Hub {
        status: status.as_u16(),
        code: parsed.and_then(|b| b.code()),
        message,
    })
}
