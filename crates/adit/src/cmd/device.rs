//! `adit device ...`: the identity registry from the command line.

use adit_service::Device;
use anyhow::Context as _;

use crate::cli::{DeviceCommand, SecretOutput};

pub async fn run(cmd: DeviceCommand) -> anyhow::Result<()> {
    match cmd {
        DeviceCommand::Create {
            id,
            disabled,
            output,
            access,
        } => {
            let registry = access.registry()?;
            let mut device = registry.create_device(&id).await?;
            if disabled {
                device.status = Some("disabled".into());
                let etag = device.etag.clone();
                device = registry
                    .put_device(&id.parse()?, &device, etag.as_deref().or(Some("*")))
                    .await?;
            }
            emit_connection_string(&id, &registry.device_connection_string(&device)?, &output)?;
        }
        DeviceCommand::List { json, top, access } => {
            let devices = access.registry()?.list_devices(top).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&devices)?);
            } else {
                print_table(&devices);
            }
        }
        DeviceCommand::Show { id, access } => {
            let device = access.registry()?.get_device(&id).await?;
            println!("{}", serde_json::to_string_pretty(&device)?);
        }
        DeviceCommand::Delete { id, access } => {
            access.registry()?.delete_device(&id).await?;
            println!("deleted {id}");
        }
        DeviceCommand::ConnectionString { id, output, access } => {
            let registry = access.registry()?;
            let device = registry.get_device(&id).await?;
            emit_connection_string(&id, &registry.device_connection_string(&device)?, &output)?;
        }
        DeviceCommand::RenewKey {
            id,
            key,
            output,
            access,
        } => {
            let registry = access.registry()?;
            let device = registry.renew_device_key(&id, &key).await?;
            if key == "secondary" {
                eprintln!("renewed the secondary key of {id}; the primary key is unchanged");
            }
            emit_connection_string(&id, &registry.device_connection_string(&device)?, &output)?;
        }
        DeviceCommand::SetStatus { id, status, access } => {
            let registry = access.registry()?;
            let mut device = registry.get_device(&id).await?;
            device.status = Some(status.clone());
            let etag = device.etag.clone();
            registry
                .put_device(&id.parse()?, &device, etag.as_deref().or(Some("*")))
                .await?;
            println!("{id} is {status}");
        }
    }
    Ok(())
}

/// Prints a device connection string, or writes it owner-only to `--output`.
fn emit_connection_string(id: &str, cs: &str, output: &SecretOutput) -> anyhow::Result<()> {
    match &output.output {
        None => println!("{cs}"),
        Some(path) => {
            adit_hub::secret_file::write_secret_file(path, cs)
                .with_context(|| format!("cannot write {}", path.display()))?;
            println!(
                "Connection string of device {id} written to {} (readable only by you)",
                path.display()
            );
        }
    }
    Ok(())
}

fn print_table(devices: &[Device]) {
    let width = devices
        .iter()
        .map(|d| d.device_id.len())
        .max()
        .unwrap_or(0)
        .max("DEVICE ID".len());
    println!(
        "{:<width$}  {:<8}  {:<12}  LAST ACTIVITY",
        "DEVICE ID", "STATUS", "CONNECTION"
    );
    for d in devices {
        println!(
            "{:<width$}  {:<8}  {:<12}  {}",
            d.device_id,
            d.status.as_deref().unwrap_or("-"),
            d.connection_state.as_deref().unwrap_or("-"),
            d.last_activity_time
                .as_deref()
                .filter(|t| !t.starts_with("0001-"))
                .unwrap_or("never"),
        );
    }
}
