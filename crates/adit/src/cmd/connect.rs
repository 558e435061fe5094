//! `adit connect DEVICE`: one stream on stdin/stdout, for `ssh -o ProxyCommand`.

use anyhow::Context as _;

use super::pipe::pipe;
use crate::cli::ConnectArgs;

pub async fn run(args: ConnectArgs) -> anyhow::Result<()> {
    let service = args.stream.access.service()?;
    let mut stream = service
        .open_stream(
            &args.device,
            &args.stream.stream_name,
            &super::pipe::stream_options(&args.stream)?,
        )
        .await
        .with_context(|| format!("cannot open a stream to {}", args.device))?;
    let mut local = tokio::io::join(tokio::io::stdin(), tokio::io::stdout());
    let piped = pipe(&mut local, &mut stream).await;
    match piped.error {
        Some(e) => Err(e).context("stream ended with an error"),
        None => Ok(()),
    }
}
