//! Stream orchestration: the one place that knows a stream's state.
//!
//! `initiate` runs the handshake of the stream lifecycle: wait (up to the connect timeout) for
//! the device to be connected and subscribed, open a gateway rendezvous, deliver
//! `$iothub/streams/POST/...` on the device's own connection, wait (up to the response
//! timeout) for its `$iothub/streams/res/...` answer, and hand the service its URL and token.
//! A task per accepted stream then waits for the gateway's outcome and writes the record.

mod limits;
mod record;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use adit_proto::topic::{StreamRequest, StreamResponse, is_valid_stream_name};
use adit_proto::{DeviceId, ModuleId};
use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_util::task::TaskTracker;

pub use limits::{StreamLimits, Throttled};
pub use record::{Outcome, RecordLog, StreamRecord};

use crate::gateway::{Gateway, RelayOutcome, Role};
use crate::presence::{DeviceCommand, OutgoingPublish, Presence, SessionHandle};
use crate::registry::{Registry, RegistryError};

/// Stream settings.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// Wait for an offline device when the request names no connect timeout.
    pub default_connect_timeout: Duration,
    /// Wait for the device's answer when the request names no response timeout.
    pub default_response_timeout: Duration,
    /// Upper bound for either timeout a request may ask for.
    pub max_timeout: Duration,
    /// From delivery to the device, the time for it to answer and for both halves to connect.
    pub handshake_timeout: Duration,
    /// Concurrency and rate limits.
    pub limits: StreamLimits,
    /// Stream records kept in memory for queries.
    pub records_kept: usize,
}

impl Default for StreamConfig {
    fn default() -> Self {
        Self {
            default_connect_timeout: Duration::ZERO,
            default_response_timeout: Duration::from_secs(60),
            max_timeout: Duration::from_secs(300),
            handshake_timeout: Duration::from_secs(60),
            limits: StreamLimits::default(),
            records_kept: 10_000,
        }
    }
}

/// A service's request for a stream.
#[derive(Debug, Clone)]
pub struct Initiate {
    /// Target device.
    pub device: DeviceId,
    /// Target module, if any.
    pub module: Option<ModuleId>,
    /// Stream name (delivered to the device as is).
    pub name: String,
    /// How long to wait for an offline device; `None` for the default.
    pub connect_timeout: Option<Duration>,
    /// How long to wait for the answer; `None` for the default.
    pub response_timeout: Option<Duration>,
    /// The service caller's address.
    pub caller: Option<IpAddr>,
    /// The api-version the service sent (for the DeviceStreams log).
    pub api_version: Option<String>,
}

/// The device's decision.
#[derive(Debug, Clone)]
pub enum Initiated {
    /// Accepted: the service connects to `url` with `token`.
    Accepted {
        /// The stream id.
        stream_id: String,
        /// The service half's WebSocket URL.
        url: String,
        /// Its bearer token.
        token: String,
    },
    /// Rejected by the device.
    Rejected,
}

/// Why a stream could not be initiated.
#[derive(Debug, thiserror::Error)]
pub enum InitiateError {
    /// The stream name would break device SDKs' topic parsers.
    #[error("stream name must be 1 to 128 characters without / ? & = # + % or whitespace")]
    InvalidName,
    /// A limit was hit.
    #[error(transparent)]
    Throttled(#[from] Throttled),
    /// No such device.
    #[error("device {0} not found")]
    DeviceNotFound(String),
    /// The device was not connected and subscribed to streams within the connect timeout.
    #[error("device {0} is not online")]
    DeviceNotOnline(String),
    /// The device did not answer within the response timeout.
    #[error("Timed out waiting for the response from device.")]
    Timeout,
    /// The registry failed.
    #[error("registry unavailable")]
    Registry(#[from] RegistryError),
}

type Waiters = HashMap<(String, String), oneshot::Sender<bool>>;

/// The orchestrator. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Streams {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: StreamConfig,
    registry: Registry,
    presence: Presence,
    gateway: Gateway,
    gateway_base: String,
    // std Mutex: map operations only, never held across an await.
    waiting: Mutex<Waiters>,
    admission: limits::Admission,
    records: RecordLog,
    next_rid: AtomicU64,
    tracker: TaskTracker,
}

impl Streams {
    /// An orchestrator whose gateway URLs start with `gateway_base` (`wss://host:port`).
    pub fn new(
        config: StreamConfig,
        registry: Registry,
        presence: Presence,
        gateway: Gateway,
        gateway_base: String,
        tracker: TaskTracker,
        records: RecordLog,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                admission: limits::Admission::new(config.limits),
                records,
                config,
                registry,
                presence,
                gateway,
                gateway_base,
                waiting: Mutex::default(),
                next_rid: AtomicU64::new(1),
                tracker,
            }),
        }
    }

    /// Streams in their handshake or data phase now.
    pub fn active(&self) -> usize {
        self.inner.admission.active()
    }

    /// The most recent stream records, oldest first.
    pub fn records(&self) -> Vec<StreamRecord> {
        self.inner.records.snapshot()
    }

    /// Delivers a device's answer. Returns false when nobody was waiting for it (unknown or
    /// late `$rid`), which the caller logs.
    pub fn answer(&self, client_id: &str, response: &StreamResponse) -> bool {
        let waiter = self
            .inner
            .waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(client_id.to_string(), response.rid.clone()));
        waiter.is_some_and(|tx| tx.send(response.accepted).is_ok())
    }

    fn expect_answer(&self, client_id: &str, rid: &str) -> oneshot::Receiver<bool> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((client_id.to_string(), rid.to_string()), tx);
        rx
    }

    fn forget(&self, client_id: &str, rid: &str) {
        self.inner
            .waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(client_id.to_string(), rid.to_string()));
    }

    /// Waits until `client_id` is connected and subscribed to stream requests, or `until`.
    async fn wait_for_device(&self, client_id: &str, until: Instant) -> Option<SessionHandle> {
        loop {
            // Register for the wake-up before looking, so a change in between is not missed.
            let changed = self.inner.presence.changed();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if let Some(session) = self.inner.presence.session(client_id)
                && session.streams_subscribed.load(Ordering::Acquire)
            {
                return Some(session);
            }
            tokio::select! {
                () = &mut changed => {}
                () = tokio::time::sleep_until(until) => return None,
            }
        }
    }

    fn timeout(&self, asked: Option<Duration>, default: Duration) -> Duration {
        asked.unwrap_or(default).min(self.inner.config.max_timeout)
    }

    /// Runs a stream handshake up to the device's answer.
    pub async fn initiate(&self, req: Initiate) -> Result<Initiated, InitiateError> {
        let inner = &self.inner;
        if !is_valid_stream_name(&req.name) {
            return Err(InitiateError::InvalidName);
        }
        let slot = inner.admission.admit(req.device.as_str())?;
        let requested = SystemTime::now();
        let started = Instant::now();
        let client_id = match &req.module {
            Some(m) => format!("{}/{m}", req.device),
            None => req.device.to_string(),
        };
        let mut record = StreamRecord::new(&req, requested);
        let finish = |record: StreamRecord| inner.records.push(record);

        if inner.registry.device(req.device.as_str()).await?.is_none() {
            finish(record.ended(Outcome::DeviceNotFound, started));
            return Err(InitiateError::DeviceNotFound(req.device.to_string()));
        }
        let connect_timeout =
            self.timeout(req.connect_timeout, inner.config.default_connect_timeout);
        let Some(session) = self
            .wait_for_device(&client_id, started + connect_timeout)
            .await
        else {
            finish(record.ended(Outcome::DeviceOffline, started));
            return Err(InitiateError::DeviceNotOnline(client_id));
        };

        let stream_id = uuid::Uuid::new_v4().simple().to_string();
        record.stream_id = stream_id.clone();
        let rid = inner.next_rid.fetch_add(1, Ordering::Relaxed).to_string();
        let deadline = Instant::now() + inner.config.handshake_timeout;
        let rendezvous = inner.gateway.open(&stream_id, deadline);
        let url = |role: Role| {
            format!(
                "{}/bridges/{stream_id}/{}",
                inner.gateway_base,
                role.as_str()
            )
        };
        let request = StreamRequest {
            name: req.name.clone(),
            rid: rid.clone(),
            url: url(Role::Device),
            auth: rendezvous.device_token.clone(),
            ip: req.caller.map(|ip| ip.to_string()),
        };
        let topic = request.to_topic().map_err(|_| InitiateError::InvalidName)?;
        let answer = self.expect_answer(&client_id, &rid);
        let response_timeout =
            self.timeout(req.response_timeout, inner.config.default_response_timeout);
        let delivered = tokio::time::timeout(
            response_timeout,
            session
                .commands
                .send(DeviceCommand::Publish(Box::new(OutgoingPublish {
                    topic,
                    payload: Bytes::new(),
                }))),
        )
        .await;
        if !matches!(delivered, Ok(Ok(()))) {
            self.forget(&client_id, &rid);
            inner.gateway.cancel(&stream_id);
            finish(record.ended(Outcome::DeviceOffline, started));
            return Err(InitiateError::DeviceNotOnline(client_id));
        }
        tracing::debug!(stream = %stream_id, device = %client_id, rid = %rid, "stream request delivered");

        let accepted = match tokio::time::timeout(response_timeout, answer).await {
            Ok(Ok(accepted)) => accepted,
            _ => {
                self.forget(&client_id, &rid);
                inner.gateway.cancel(&stream_id);
                finish(record.ended(Outcome::TimedOut, started));
                return Err(InitiateError::Timeout);
            }
        };
        if !accepted {
            inner.gateway.cancel(&stream_id);
            finish(record.ended(Outcome::Rejected, started));
            return Ok(Initiated::Rejected);
        }

        // The data phase is the gateway's; this task only waits for its verdict.
        let (this, id) = (self.clone(), stream_id.clone());
        inner.tracker.spawn(async move {
            let outcome =
                tokio::time::timeout_at(deadline + Duration::from_secs(2), rendezvous.outcome)
                    .await;
            let outcome = match outcome {
                Ok(Ok(o)) => o,
                _ => {
                    this.inner.gateway.cancel(&id);
                    RelayOutcome::handshake_failed(None)
                }
            };
            this.inner.records.push(record.relayed(&outcome, started));
            drop(slot);
        });
        let service_url = url(Role::Service);
        Ok(Initiated::Accepted {
            stream_id,
            url: service_url,
            token: rendezvous.service_token,
        })
    }
}
