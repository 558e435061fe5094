//! `adit policy list` and `adit policy renew-key`.

use adit_proto::{ConnectionString, Key};
use anyhow::Context as _;

use crate::cli::PolicyCommand;

pub async fn run(cmd: PolicyCommand) -> anyhow::Result<()> {
    match cmd {
        PolicyCommand::List { show_keys, access } => {
            let cs: ConnectionString = access.connection_string()?.parse()?;
            let policies = access.registry()?.policies().await?;
            let width = policies
                .iter()
                .map(|p| p.key_name.len())
                .max()
                .unwrap_or(0)
                .max("POLICY".len());
            println!("{:<width$}  RIGHTS", "POLICY");
            for p in &policies {
                println!("{:<width$}  {}", p.key_name, p.rights);
                if show_keys {
                    let key =
                        Key::from_base64(&p.primary_key).context("hub returned an invalid key")?;
                    println!(
                        "{:<width$}  {}",
                        "",
                        ConnectionString::for_policy(&cs.host, cs.port, &p.key_name, key)
                    );
                }
            }
        }
        PolicyCommand::RenewKey { name, key, access } => {
            let cs: ConnectionString = access.connection_string()?.parse()?;
            let policy = access.registry()?.renew_policy_key(&name, &key).await?;
            let primary =
                Key::from_base64(&policy.primary_key).context("hub returned an invalid key")?;
            // The new string is the only way to learn the new key; it goes to stdout only.
            println!(
                "{}",
                ConnectionString::for_policy(&cs.host, cs.port, &policy.key_name, primary)
            );
        }
    }
    Ok(())
}
