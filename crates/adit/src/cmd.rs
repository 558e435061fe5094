//! One module per subcommand.

mod connect;
mod console;
mod device;
mod device_proxy;
mod hub;
mod keepalive;
mod logs;
mod offline_hint;
mod pipe;
mod policy;
mod service_proxy;
mod streams;

use crate::cli::{Cli, Command};

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Hub(args) => hub::run(args).await,
        Command::Device(cmd) => device::run(cmd).await,
        Command::Policy(cmd) => policy::run(cmd).await,
        Command::DeviceProxy(args) => device_proxy::run(args).await,
        Command::ServiceProxy(args) => service_proxy::run(args).await,
        Command::Connect(args) => connect::run(args).await,
        Command::Logs(args) => logs::run(args).await,
        Command::Streams(cmd) => streams::run(cmd).await,
        Command::Console(args) => console::run(args).await,
    }
}
