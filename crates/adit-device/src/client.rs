//! The device client handle.

use std::sync::Arc;

use adit_proto::ConnectionString;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::endpoint::Endpoint;
use crate::incoming::IncomingStream;
use crate::session::{Session, Settings};
use crate::{DeviceOptions, Error};

/// Requests waiting for the application; more are rejected on arrival rather than queued.
const REQUEST_QUEUE: usize = 64;

/// Where the connection to the hub stands.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionState {
    /// Connecting, or waiting to reconnect.
    Disconnected,
    /// Connected and subscribed to stream requests.
    Connected,
    /// The hub refused the credentials (the client keeps retrying, with backoff).
    Refused(String),
}

/// A device's connection to its hub. Connects in the background as soon as it is created and
/// reconnects (with exponential backoff and jitter) after any drop.
#[derive(Debug)]
pub struct DeviceClient {
    requests: mpsc::Receiver<IncomingStream>,
    state: watch::Receiver<ConnectionState>,
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl DeviceClient {
    /// Starts a client for the device in `connection_string`
    /// (`HostName=...;DeviceId=...;SharedAccessKey=...`). Must be called within a Tokio runtime.
    ///
    /// With `GatewayHostName`, the client connects there (and TLS verifies that name) while
    /// its token and MQTT username keep naming `HostName`, as Azure's SDKs do; it logs once
    /// (info) which address it dials and which identity it uses.
    pub fn new(connection_string: &str, options: DeviceOptions) -> Result<Self, Error> {
        let cs: ConnectionString = connection_string.parse()?;
        let device = cs.device_id.clone().ok_or_else(|| {
            Error::Config("not a device connection string: it has no DeviceId".into())
        })?;
        let key = cs
            .key
            .clone()
            .ok_or_else(|| Error::Config("the connection string has no SharedAccessKey".into()))?;
        let tls = Arc::new(options.tls.client_config()?);
        let endpoint = Endpoint::new(&cs);
        let via = if cs.gateway_host.is_some() {
            "GatewayHostName"
        } else {
            "HostName"
        };
        tracing::info!(
            dial = %endpoint.address(options.transport, options.mqtt_port),
            identity = %endpoint.identity(),
            via = %via,
            "device client: connecting"
        );
        let (requests_tx, requests) = mpsc::channel(REQUEST_QUEUE);
        let (state_tx, state) = watch::channel(ConnectionState::Disconnected);
        let cancel = CancellationToken::new();
        let session = Session {
            settings: Settings {
                endpoint,
                device,
                module: cs.module_id.clone(),
                key,
                options,
                tls,
            },
            requests: requests_tx,
            state: state_tx,
            cancel: cancel.clone(),
        };
        let task = tokio::spawn(session.run());
        Ok(Self {
            requests,
            state,
            cancel,
            task: Some(task),
        })
    }

    /// The next stream request; `None` once the client is shut down.
    pub async fn next_request(&mut self) -> Option<IncomingStream> {
        self.requests.recv().await
    }

    /// The current connection state.
    pub fn state(&self) -> ConnectionState {
        self.state.borrow().clone()
    }

    /// A receiver that sees every change of the connection state, for reporting progress
    /// without borrowing the client.
    pub fn watch_state(&self) -> watch::Receiver<ConnectionState> {
        self.state.clone()
    }

    /// Waits until the client is connected and subscribed (or shut down).
    pub async fn connected(&mut self) {
        let _ = self
            .state
            .wait_for(|s| *s == ConnectionState::Connected)
            .await;
    }

    /// Disconnects cleanly (MQTT DISCONNECT) and stops reconnecting.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for DeviceClient {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}
