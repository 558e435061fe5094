//! One module per subcommand.

#[cfg(feature = "full")]
mod connect;
#[cfg(feature = "full")]
mod console;
#[cfg(feature = "full")]
mod device;
mod device_proxy;
#[cfg(feature = "full")]
mod hub;
mod keepalive;
#[cfg(feature = "full")]
mod logs;
#[cfg(feature = "full")]
mod offline_hint;
mod pipe;
#[cfg(feature = "full")]
mod policy;
#[cfg(feature = "full")]
mod service_proxy;
#[cfg(feature = "full")]
mod streams;

use crate::cli::{Cli, Command};

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::DeviceProxy(args) => device_proxy::run(args).await,
        #[cfg(feature = "full")]
        Command::Hub(args) => hub::run(args).await,
        #[cfg(feature = "full")]
        Command::Device(cmd) => device::run(cmd).await,
        #[cfg(feature = "full")]
        Command::Policy(cmd) => policy::run(cmd).await,
        #[cfg(feature = "full")]
        Command::ServiceProxy(args) => service_proxy::run(args).await,
        #[cfg(feature = "full")]
        Command::Connect(args) => connect::run(args).await,
        #[cfg(feature = "full")]
        Command::Logs(args) => logs::run(args).await,
        #[cfg(feature = "full")]
        Command::Streams(cmd) => streams::run(cmd).await,
        #[cfg(feature = "full")]
        Command::Console(args) => console::run(args).await,
    }
}
