//! Joining a local byte stream to a device stream, both directions, with half-close.

use std::time::Instant;

use adit_service::ServiceStream;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::cli::StreamArgs;

/// Stream options from the command line.
pub fn stream_options(args: &StreamArgs) -> anyhow::Result<adit_service::StreamOptions> {
    if !(0.0..=300.0).contains(&args.connect_timeout) {
        anyhow::bail!("--connect-timeout must be between 0 and 300 seconds");
    }
    let mut options = adit_service::StreamOptions::default();
    options.connect_timeout = std::time::Duration::from_secs_f64(args.connect_timeout);
    options.keepalive = args.keepalive.keepalive()?;
    Ok(options)
}

/// Bytes moved, and how it ended.
#[derive(Debug)]
pub struct Piped {
    /// Local to stream.
    pub sent: u64,
    /// Stream to local.
    pub received: u64,
    /// Wall time.
    pub seconds: f64,
    /// An error that ended it early, if any.
    pub error: Option<std::io::Error>,
}

/// Copies both ways until both directions have ended (EOF in one direction is passed on as a
/// half-close; the other keeps flowing), then closes the stream.
pub async fn pipe<L>(local: &mut L, stream: &mut ServiceStream) -> Piped
where
    L: AsyncRead + AsyncWrite + Unpin,
{
    let started = Instant::now();
    let result =
        tokio::io::copy_bidirectional_with_sizes(local, stream, 64 * 1024, 64 * 1024).await;
    let _ = stream.close().await;
    let seconds = started.elapsed().as_secs_f64();
    match result {
        Ok((sent, received)) => Piped {
            sent,
            received,
            seconds,
            error: None,
        },
        Err(e) => Piped {
            sent: 0,
            received: 0,
            seconds,
            error: Some(e),
        },
    }
}
