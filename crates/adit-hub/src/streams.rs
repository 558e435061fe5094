//! Stream orchestration: the one place that knows a stream's state.
//!
//! `initiate` runs the handshake of the stream lifecycle: wait (up to the connect timeout) for
//! the device to be connected and subscribed, open a gateway rendezvous, deliver
//! `$iothub/streams/POST/...` on the device's own connection, wait (up to the response
//! timeout) for its `$iothub/streams/res/...` answer, and hand the service its URL and token.
//! A task per accepted stream then waits for the gateway's outcome and writes the record.

mod limits;
mod open;
mod record;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use adit_proto::StreamNameError;
use adit_proto::stream_name::check_stream_name;
use adit_proto::topic::{StreamRequest, StreamResponse, TopicError};
use adit_proto::{DeviceId, ModuleId};
use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use limits::{StreamLimits, Throttled};
pub use open::OpenStream;
pub use record::{Outcome, RecordLog, StreamRecord};

use crate::cluster::{Cluster, Forwarded};
use crate::gateway::{Gateway, RelayOutcome, Role};
use crate::presence::{DeviceCommand, OutgoingPublish, Presence, SessionHandle};
use crate::registry::{Registry, RegistryError};

/// How often a request for a device held nowhere looks again across the cluster (a device
/// connecting to this node wakes it at once).
const CLUSTER_POLL: Duration = Duration::from_millis(250);

/// Longest the stream's task waits for its in-flight row to commit before it watches the
/// stream anyway. A write already queued still goes through, in order; one still waiting for
/// room in a full queue (a reconnect storm) is dropped, and the stream then has no row.
const IN_FLIGHT_WRITE: Duration = Duration::from_secs(2);

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
    /// Ended streams' records kept in memory for [`Streams::records`] (about 600 bytes each;
    /// 0 keeps none). The `adit hub` binary keeps none: its records are in the diagnostics log.
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
    /// The protocol the service asks the stream to carry (`adit.stream.v1`); any other
    /// value is not offered to the device, and the stream carries raw bytes.
    pub protocol: Option<String>,
    /// The shared access policy whose token asked (for the DeviceStreams log and the
    /// console's list of open streams).
    pub policy: Option<String>,
}

impl Initiate {
    /// Whether the service asked for the Adit stream protocol.
    pub fn asks_stream_protocol(&self) -> bool {
        self.protocol.as_deref() == Some(adit_stream_protocol::SUBPROTOCOL)
    }
}

impl Initiate {
    /// The client id the request is for: `device` or `device/module`.
    pub fn client_id(&self) -> String {
        match &self.module {
            Some(m) => format!("{}/{m}", self.device),
            None => self.device.to_string(),
        }
    }
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
        /// The protocol both sides agreed the stream carries (the service asked and the
        /// device accepted in it); `None`: raw bytes.
        protocol: Option<String>,
    },
    /// Rejected by the device.
    Rejected,
}

/// Why a stream could not be initiated.
#[derive(Debug, thiserror::Error)]
pub enum InitiateError {
    /// The stream name breaks `adit_proto::stream_name`'s rule; the message says how.
    #[error(transparent)]
    InvalidName(#[from] StreamNameError),
    /// The request topic could not be built (a bug: every field is checked before).
    #[error("cannot build the stream request topic: {0}")]
    Undeliverable(TopicError),
    /// A limit was hit.
    #[error(transparent)]
    Throttled(#[from] Throttled),
    /// No such device.
    #[error("device {0} not found")]
    DeviceNotFound(String),
    /// The device was not connected and subscribed to streams within the connect timeout.
    #[error(
        "device {0} is not online: its device client (e.g. adit device-proxy) is not connected to this hub"
    )]
    DeviceNotOnline(String),
    /// The device is disabled in the registry, so it cannot connect. Answered with Azure's
    /// DeviceNotOnline code (what Azure's SDKs expect for a device that cannot take a stream).
    #[error("device {0} is disabled; enable it to open streams to it")]
    DeviceDisabled(String),
    /// The device's session ended after the request reached it and before it answered (its
    /// process died, or its connection did): the answer can never come, so the service hears
    /// at once rather than at the response timeout. Answered with Azure's DeviceNotOnline code.
    #[error("device {0} disconnected before answering the stream request")]
    DeviceDisconnected(String),
    /// The device did not answer within the response timeout.
    #[error("Timed out waiting for the response from device.")]
    Timeout,
    /// The registry failed.
    #[error("registry unavailable")]
    Registry(#[from] RegistryError),
    /// A limit on the node holding the device (a forwarded request); the text is that node's.
    #[error("{0}")]
    ThrottledOnNode(String),
    /// The cluster link failed, or the node holding the device failed; the text says how.
    #[error("cluster: {0}")]
    Cluster(String),
}

type Waiters = HashMap<(String, String), oneshot::Sender<StreamResponse>>;

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
    // Streams from delivery to their record, by stream id: their device, and the token that
    // ends them when the device is disabled or deleted.
    live: Mutex<HashMap<String, (String, CancellationToken)>>,
    // Set once, when the hub runs with NATS: requests for devices held elsewhere go there.
    cluster: std::sync::OnceLock<Cluster>,
    // This node's id, under which its streams in flight are kept in the registry.
    node: Arc<str>,
    // Accepted streams until their record: their row as kept in the registry (re-written
    // there when this node was taken for dead and comes back), and what they carry.
    in_flight: Mutex<HashMap<String, open::Running>>,
}

impl Streams {
    /// An orchestrator for node `node` whose gateway URLs start with `gateway_base`
    /// (`wss://host:port`).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: StreamConfig,
        registry: Registry,
        presence: Presence,
        gateway: Gateway,
        gateway_base: String,
        tracker: TaskTracker,
        records: RecordLog,
        node: &str,
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
                // A random start, so request ids of different nodes (and of one node's runs)
                // do not meet: ids stay decimal and below 2^53 (a JavaScript number holds them
                // exactly) for clients that parse the opaque `$rid`.
                next_rid: AtomicU64::new((rand::random::<u64>() >> 12) + 1),
                tracker,
                live: Mutex::default(),
                cluster: std::sync::OnceLock::new(),
                node: Arc::from(node),
                in_flight: Mutex::default(),
            }),
        }
    }

    /// Routes stream requests for devices held by other nodes through `cluster` from now on.
    /// A second call is ignored.
    pub fn join_cluster(&self, cluster: Cluster) {
        let _ = self.inner.cluster.set(cluster);
    }

    /// Ends every stream of `device_id` (and its modules), in handshake or open: the device
    /// was disabled or deleted. Returns how many.
    pub fn revoke_device(&self, device_id: &str) -> usize {
        let live = self.inner.live.lock().unwrap_or_else(|e| e.into_inner());
        let mut ended = 0;
        for (stream_id, (device, revoked)) in live.iter() {
            if device == device_id {
                revoked.cancel();
                self.inner.gateway.cancel(stream_id);
                ended += 1;
            }
        }
        ended
    }

    fn forget_live(&self, stream_id: &str) {
        self.inner
            .live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(stream_id);
    }

    /// Streams in their handshake or data phase now.
    pub fn active(&self) -> usize {
        self.inner.admission.active()
    }

    /// Writes a `node_lost` record for each stream a dead node was relaying (see
    /// [`crate::registry::InFlightStream`]).
    pub fn record_lost(&self, node: &str, lost: &[crate::registry::InFlightStream]) {
        let now = SystemTime::now();
        for s in lost {
            tracing::warn!(node, stream = %s.stream_id, device = %s.device_id, "stream lost with its node");
            self.inner.records.push(StreamRecord::node_lost(s, now));
        }
    }

    /// The accepted streams this node relays now, as kept in the registry.
    pub fn in_flight(&self) -> Vec<crate::registry::InFlightStream> {
        self.inner
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|r| r.row.clone())
            .collect()
    }

    /// The accepted streams this node relays now, with what each has carried so far.
    pub fn open_streams(&self) -> Vec<OpenStream> {
        self.inner
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|r| r.report(&self.inner.node))
            .collect()
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
        waiter.is_some_and(|tx| tx.send(response.clone()).is_ok())
    }

    fn expect_answer(&self, client_id: &str, rid: &str) -> oneshot::Receiver<StreamResponse> {
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
        let watch = self.inner.presence.watch(client_id);
        loop {
            // Register for the wake-up before looking, so a change in between is not missed.
            let changed = watch.changed();
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

    /// Runs a stream handshake up to the device's answer: on this node when it holds the
    /// device's session (or runs alone), else on the node that does, over NATS (see
    /// [`crate::cluster`]), waiting up to the connect timeout for the device to be held
    /// anywhere. A forwarded stream's rendezvous, URL and record are the holding node's.
    ///
    /// Cancel-safe, as [`Streams::initiate_here`].
    pub async fn initiate(&self, req: Initiate) -> Result<Initiated, InitiateError> {
        let Some(cluster) = self.inner.cluster.get() else {
            return self.initiate_here(req).await;
        };
        check_stream_name(&req.name)?;
        let client_id = req.client_id();
        let (requested_at, started) = (SystemTime::now(), Instant::now());
        let config = &self.inner.config;
        let until =
            Instant::now() + self.timeout(req.connect_timeout, config.default_connect_timeout);
        let response = self.timeout(req.response_timeout, config.default_response_timeout);
        let mut checked_registry = false;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if self.inner.presence.session(&client_id).is_some() {
                return self
                    .initiate_here(Initiate {
                        connect_timeout: Some(left),
                        ..req
                    })
                    .await;
            }
            // The holding node may wait what is left of the connect timeout, then up to the
            // response timeout twice (delivery, then the answer), and a moment more.
            let wait = left + response * 2 + Duration::from_secs(5);
            match cluster.forward(&client_id, &req, left, wait).await {
                Forwarded::Answered(result) => return result,
                Forwarded::NoSession => {}
                Forwarded::Unanswered(e) => {
                    // Never sent: no other node recorded it, this one does.
                    let record = StreamRecord::new(&req, requested_at);
                    self.inner
                        .records
                        .push(record.ended(Outcome::ServerError, started));
                    return Err(e);
                }
            }
            // Held nowhere. An unknown or disabled device is answered now, not at the
            // timeout: the local path says which.
            if !checked_registry {
                checked_registry = true;
                let usable = matches!(
                    self.inner.registry.device(req.device.as_str()).await,
                    Ok(Some(d)) if d.status != crate::registry::DeviceStatus::Disabled
                );
                if !usable {
                    return self
                        .initiate_here(Initiate {
                            connect_timeout: Some(Duration::ZERO),
                            ..req
                        })
                        .await;
                }
            }
            if left.is_zero() {
                return self
                    .initiate_here(Initiate {
                        connect_timeout: Some(Duration::ZERO),
                        ..req
                    })
                    .await;
            }
            // Until it connects here or shows up on another node.
            let watch = self.inner.presence.watch(&client_id);
            let changed = watch.changed();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.inner.presence.session(&client_id).is_none() {
                let _ = tokio::time::timeout(left.min(CLUSTER_POLL), changed).await;
            }
        }
    }

    /// Runs a stream handshake up to the device's answer on this node.
    ///
    /// Cancel-safe: if the future is dropped (the service's HTTP request went away), the
    /// answer waiter and the gateway rendezvous are dropped too and the stream's record says
    /// `cancelled`.
    pub async fn initiate_here(&self, req: Initiate) -> Result<Initiated, InitiateError> {
        let inner = &self.inner;
        check_stream_name(&req.name)?;
        let slot = inner.admission.admit(req.device.as_str())?;
        let client_id = req.client_id();
        let mut handshake = Handshake {
            streams: self,
            record: StreamRecord::new(&req, SystemTime::now()),
            done: false,
            started: Instant::now(),
            client_id: client_id.clone(),
            rid: None,
            stream_id: None,
        };
        let started = handshake.started;

        let device = match inner.registry.device(req.device.as_str()).await {
            Ok(device) => device,
            Err(e) => {
                handshake.end(Outcome::ServerError);
                return Err(e.into());
            }
        };
        let Some(device) = device else {
            handshake.end(Outcome::DeviceNotFound);
            return Err(InitiateError::DeviceNotFound(req.device.to_string()));
        };
        // A disabled device cannot connect, so waiting for it would only delay the answer.
        if device.status == crate::registry::DeviceStatus::Disabled {
            handshake.end(Outcome::DeviceOffline);
            return Err(InitiateError::DeviceDisabled(req.device.to_string()));
        }
        let connect_timeout =
            self.timeout(req.connect_timeout, inner.config.default_connect_timeout);
        let Some(session) = self
            .wait_for_device(&client_id, started + connect_timeout)
            .await
        else {
            handshake.end(Outcome::DeviceOffline);
            return Err(InitiateError::DeviceNotOnline(client_id));
        };

        let stream_id = uuid::Uuid::new_v4().simple().to_string();
        handshake.set_stream_id(&stream_id);
        let rid = inner.next_rid.fetch_add(1, Ordering::Relaxed).to_string();
        let deadline = Instant::now() + inner.config.handshake_timeout;
        let revoked = CancellationToken::new();
        inner
            .live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(stream_id.clone(), (req.device.to_string(), revoked.clone()));
        let asked = req.asks_stream_protocol();
        let rendezvous = inner.gateway.open(&stream_id, deadline, revoked, asked);
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
            protocol: asked.then(|| adit_stream_protocol::SUBPROTOCOL.to_string()),
        };
        let topic = match request.to_topic() {
            Ok(topic) => topic,
            Err(e) => {
                // Unreachable for a name that passed `check_stream_name`; recorded, not assumed.
                handshake.end(Outcome::ServerError);
                return Err(InitiateError::Undeliverable(e));
            }
        };
        let answer = self.expect_answer(&client_id, &rid);
        handshake.rid = Some(rid.clone());
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
            handshake.end(Outcome::DeviceOffline);
            return Err(InitiateError::DeviceNotOnline(client_id));
        }
        tracing::debug!(stream = %stream_id, device = %client_id, rid = %rid, "stream request delivered");

        // The answer can only come over the session the request went out on; when that
        // session ends (its command receiver is dropped), waiting longer is pointless.
        let answered = tokio::select! {
            a = tokio::time::timeout(response_timeout, answer) => Some(a),
            () = session.commands.closed() => None,
        };
        let answer = match answered {
            Some(Ok(Ok(answer))) => answer,
            Some(_) => {
                handshake.end(Outcome::TimedOut);
                return Err(InitiateError::Timeout);
            }
            None => {
                handshake.end(Outcome::DeviceOffline);
                return Err(InitiateError::DeviceDisconnected(client_id));
            }
        };
        if !answer.accepted {
            handshake.end(Outcome::Rejected);
            return Ok(Initiated::Rejected);
        }
        // Only what was asked: a device cannot choose a protocol on its own.
        let protocol = answer
            .protocol
            .filter(|p| asked && p == adit_stream_protocol::SUBPROTOCOL);
        let mut record = handshake.into_accepted();
        record.protocol = protocol.clone();

        // The data phase is the gateway's; this task waits for its verdict, however long the
        // stream lives, and holds the stream's place in the limits until then.
        let (this, id) = (self.clone(), stream_id.clone());
        let mut outcome = rendezvous.outcome;
        let in_flight = record.in_flight();
        let running = open::Running {
            row: in_flight.clone(),
            policy: req.policy.clone(),
            protocol,
            traffic: rendezvous.traffic.clone(),
        };
        let protocol = running.protocol.clone();
        inner.tracker.spawn(async move {
            // Kept in the registry while it runs, so that its record survives this node. Off
            // the setup path: the service has its answer meanwhile. One queue writes both
            // rows in order, so the delete below never overtakes this insert.
            let registry = &this.inner.registry;
            this.inner
                .in_flight
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id.clone(), running);
            match tokio::time::timeout(
                IN_FLIGHT_WRITE,
                registry.stream_opened(&this.inner.node, in_flight),
            )
            .await
            {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(stream = %id, error = %crate::report::Report(&e), "cannot record the stream as in flight; its record is lost if this node dies");
                }
                Err(_) => {
                    tracing::warn!(stream = %id, "recording the stream as in flight took over {IN_FLIGHT_WRITE:?}");
                }
            }
            let outcome = tokio::select! {
                o = &mut outcome => o.ok(),
                // Unpaired at the deadline (a lone half reports by itself at the deadline;
                // this catches neither half coming). Once paired, the relay holds the sender
                // and this waits for the stream's real end.
                () = tokio::time::sleep_until(deadline + Duration::from_secs(2)) => {
                    this.inner.gateway.cancel(&id);
                    outcome.await.ok()
                }
                // The hub's shutdown grace is over: a relay reports its own end; a handshake
                // still pending ends here.
                () = this.inner.gateway.aborted() => {
                    this.inner.gateway.cancel(&id);
                    Some(outcome.await.unwrap_or_else(|_| RelayOutcome::hub_shutdown_in_handshake()))
                }
            };
            let outcome = outcome.unwrap_or_else(|| RelayOutcome::handshake_failed(None));
            this.forget_live(&id);
            // Off the list of open streams before its record is out: never in both.
            this.inner
                .in_flight
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
            this.inner.records.push(record.relayed(&outcome, started));
            drop(slot);
            // A row left behind would give the stream a second, node_lost, record later.
            let mut wait = Duration::from_millis(500);
            for attempt in 1..=4 {
                match this.inner.registry.stream_closed(&id).await {
                    Ok(()) => break,
                    Err(e) if attempt == 4 => {
                        tracing::warn!(stream = %id, error = %crate::report::Report(&e), "cannot clear the stream from the registry's streams in flight; it will be recorded as lost too");
                    }
                    Err(_) => {
                        tokio::time::sleep(wait).await;
                        wait *= 2;
                    }
                }
            }
        });
        let service_url = url(Role::Service);
        Ok(Initiated::Accepted {
            stream_id,
            url: service_url,
            token: rendezvous.service_token,
            protocol,
        })
    }
}

/// A stream's handshake in progress: writes its record exactly once, and undoes what it set
/// up when it ends early, including when the future running it is dropped.
struct Handshake<'a> {
    streams: &'a Streams,
    record: StreamRecord,
    done: bool,
    started: Instant,
    client_id: String,
    rid: Option<String>,
    stream_id: Option<String>,
}

impl Handshake<'_> {
    fn set_stream_id(&mut self, id: &str) {
        self.stream_id = Some(id.to_string());
        self.record.stream_id = id.to_string();
    }

    fn undo(&mut self) {
        let inner = &self.streams.inner;
        if let Some(rid) = self.rid.take() {
            self.streams.forget(&self.client_id, &rid);
        }
        if let Some(id) = self.stream_id.take() {
            inner.gateway.cancel(&id);
            self.streams.forget_live(&id);
        }
    }

    /// Ends the handshake with `outcome` and writes the record.
    fn end(mut self, outcome: Outcome) {
        self.finish(outcome);
    }

    fn finish(&mut self, outcome: Outcome) {
        self.undo();
        if !std::mem::replace(&mut self.done, true) {
            let record = self.record.clone().ended(outcome, self.started);
            self.streams.inner.records.push(record);
        }
    }

    /// The device accepted: the gateway now owns the stream, and its record waits for the
    /// gateway's verdict.
    fn into_accepted(mut self) -> StreamRecord {
        self.rid = None;
        self.stream_id = None;
        self.done = true;
        self.record.clone()
    }
}

impl Drop for Handshake<'_> {
    fn drop(&mut self) {
        if !self.done {
            tracing::info!(device = %self.client_id, "service left before the stream was set up");
            self.finish(Outcome::Cancelled);
        }
    }
}
