//! Device identities in the shared registry, created through the service SDK's registry client
//! (parallel `PUT /devices/{id}`, the way an operator scripts it), and waiting for a device to
//! show as connected.

use std::sync::Arc;
use std::time::{Duration, Instant};

use adit_service::{RegistryClient, TlsOptions};
use tokio::sync::Semaphore;

/// A registry client for the owner connection string `owner`, trusting `ca`.
pub fn registry(owner: &str, ca: &std::path::Path) -> anyhow::Result<RegistryClient> {
    Ok(RegistryClient::from_connection_string(
        owner,
        &TlsOptions::with_ca_file(ca),
    )?)
}

/// Creates `ids` (`concurrency` requests in flight) and returns their device connection
/// strings, in order; each names the `HostName` of `registry`'s connection string.
pub async fn create(
    registry: &RegistryClient,
    ids: Vec<String>,
    concurrency: usize,
) -> anyhow::Result<Vec<String>> {
    let gate = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = Vec::with_capacity(ids.len());
    for id in ids {
        let (gate, registry) = (gate.clone(), registry.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await?;
            let device = registry.create_device(&id).await?;
            anyhow::Ok(registry.device_connection_string(&device)?)
        }));
    }
    let mut strings = Vec::with_capacity(tasks.len());
    for t in tasks {
        strings.push(t.await??);
    }
    Ok(strings)
}

/// Waits (up to 30 s) until the registry shows `id` as connected.
pub async fn wait_connected(registry: &RegistryClient, id: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let device = registry.get_device(id).await?;
        if device.connection_state.as_deref() == Some("Connected") {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "{id} never connected");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
