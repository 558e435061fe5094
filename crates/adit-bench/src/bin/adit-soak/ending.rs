//! How every soak stream ends: the service side's half-close, the device's end of input,
//! then a normal Close.

use std::time::Duration;

use adit_service::ServiceStream;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// After the service side has half-closed (or is about to): the device's end of input, then
/// a normal Close. Errors: bytes after the echo, or no end within 30 s.
pub async fn finish(stream: &mut ServiceStream, device: &str) -> Result<(), String> {
    stream
        .shutdown()
        .await
        .map_err(|e| format!("half-closing to {device}: {e}"))?;
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut rest))
        .await
        .map_err(|_| format!("{device} did not end its side within 30 s"))?
        .map_err(|e| format!("reading the end from {device}: {e}"))?;
    if !rest.is_empty() {
        return Err(format!("{} unexpected bytes from {device}", rest.len()));
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.close()).await;
    Ok(())
}
