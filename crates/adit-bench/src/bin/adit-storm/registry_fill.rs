//! Creates the fleet's identities the way an operator scripts it: parallel `PUT /devices/{id}`
//! through the service SDK's registry client (the hub has no bulk import).

use std::sync::Arc;
use std::time::{Duration, Instant};

use adit_service::RegistryClient;
use tokio::sync::Semaphore;

/// The device id of fleet member `i`.
pub fn device_id(i: usize) -> String {
    format!("storm-{i:05}")
}

/// Creates devices `0..n` (`concurrency` requests in flight) and returns their connection
/// strings, in order, and how long it took.
pub async fn create(
    registry: &RegistryClient,
    n: usize,
    concurrency: usize,
) -> anyhow::Result<(Vec<String>, Duration)> {
    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let (gate, registry) = (gate.clone(), registry.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await?;
            let id = device_id(i);
            let device = match registry.create_device(&id).await {
                Ok(d) => d,
                // Already there (a device left by an earlier run): take it as it is.
                Err(_) => registry.get_device(&id).await?,
            };
            anyhow::Ok(registry.device_connection_string(&device)?)
        }));
    }
    let mut strings = Vec::with_capacity(n);
    for t in tasks {
        strings.push(t.await??);
    }
    Ok((strings, started.elapsed()))
}
