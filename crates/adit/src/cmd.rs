//! One module per subcommand.

mod device;
mod hub;
mod policy;

use crate::cli::{Cli, Command};

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Hub(args) => hub::run(args).await,
        Command::Device(cmd) => device::run(cmd).await,
        Command::Policy(cmd) => policy::run(cmd).await,
    }
}
