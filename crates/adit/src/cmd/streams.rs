//! `adit streams show`.

use crate::cli::StreamsCommand;

pub async fn run(cmd: StreamsCommand) -> anyhow::Result<()> {
    match cmd {
        StreamsCommand::Show { access } => {
            let endpoints = access.registry()?.streaming_endpoints().await?;
            println!("{}", serde_json::to_string_pretty(&endpoints)?);
        }
    }
    Ok(())
}
