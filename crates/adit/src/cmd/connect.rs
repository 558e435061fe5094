//! `adit connect DEVICE`: one stream on stdin/stdout, for `ssh -o ProxyCommand`.
//!
//! It ends when the device's direction of the stream ends, whatever stdin is doing: ssh keeps
//! a ProxyCommand's stdin open and idle while it waits for output, and a stdout that never
//! reaches EOF would hang it. Exit status 0 when the device ended the stream cleanly, 1 with
//! a one-line reason otherwise. The process then exits without waiting for the stdin read in
//! progress (see `main`), as that read runs on a thread that cannot be cancelled.

use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::io::AsyncWriteExt as _;

use super::offline_hint::offline_hint;
use super::pipe::{Until, pipe, stream_options};
use crate::cli::ConnectArgs;

/// How long the last bytes may take to reach stdout before the process exits anyway.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

pub async fn run(args: ConnectArgs) -> anyhow::Result<()> {
    let service = args.stream.access.service()?;
    let opened = service
        .open_stream(
            &args.device,
            &args.stream.stream_name,
            &stream_options(&args.stream)?,
        )
        .await;
    let mut stream = match opened {
        Ok(stream) => stream,
        Err(e) => {
            let registry = args.stream.access.registry().ok();
            if let Some(hint) = offline_hint(&e, registry.as_ref(), &args.device).await {
                bail!("cannot open a stream to {}: {hint}", args.device);
            }
            return Err(e).with_context(|| format!("cannot open a stream to {}", args.device));
        }
    };
    let (mut stdin, mut stdout) = (tokio::io::stdin(), tokio::io::stdout());
    let piped = pipe(&mut stdin, &mut stdout, &mut stream, Until::StreamEnds).await;
    // What the device sent before the end must reach stdout, also after a failure.
    let _ = tokio::time::timeout(FLUSH_TIMEOUT, stdout.flush()).await;
    match piped.error {
        Some(e) => Err(e).with_context(|| format!("stream to {} ended", args.device)),
        None => Ok(()),
    }
}
