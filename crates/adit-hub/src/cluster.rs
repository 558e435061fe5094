//! Several hub nodes sharing one registry (PostgreSQL) and one NATS: what crosses nodes.
//!
//! - **Stream requests** go to the node that holds the device's MQTT session. That node
//!   subscribes to the client's subjects ([`subject`]) for as long as it holds the session;
//!   the node the service called sends the request there (NATS request/reply) and answers
//!   the service with the holding node's reply. The rendezvous, its node-specific streaming
//!   URL and the stream's record are the holding node's.
//! - **Takeover**: a node that accepts a session announces it; a node that holds an older
//!   session of the same client id closes it, as a second connection on one node does.
//! - **Registry changes** (device written, disabled, re-keyed or deleted; policy keys) are
//!   announced and applied on every node ([`registry_changes`]).
//! - **Leases** in the shared registry: a node that dies has its devices marked disconnected
//!   and its streams recorded as lost by the others within seconds ([`leases`]).
//! - **Questions** every node answers: its diagnostics records and its streaming endpoint, so
//!   `adit logs` and `adit streams show` against any node cover the cluster ([`questions`]).
//!
//! Without `--nats-url` a hub has no `Cluster` and none of this runs.

pub mod leases;
pub mod questions;
pub mod registry_changes;
pub mod subject;
pub mod wire;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt as _;
use tokio_util::sync::{CancellationToken, DropGuard};
use tokio_util::task::TaskTracker;

use crate::presence::Presence;
use crate::streams::{Initiate, InitiateError, Initiated, Streams};

/// Longest a NATS publish or subscribe may take. While NATS is away async-nats queues
/// commands and, once its queue is full, makes callers wait: a CONNECT or a registry write
/// must not wait for NATS to come back.
const NATS_CALL: Duration = Duration::from_secs(1);

/// Why the cluster link could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// NATS did not accept the connection.
    #[error("cannot connect to NATS at {url}")]
    Connect {
        /// The URL, without credentials.
        url: String,
        /// The cause.
        source: async_nats::ConnectError,
    },
}

/// This node's link to the others. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Cluster {
    client: async_nats::Client,
    node: Arc<str>,
    subjects: Arc<subject::Subjects>,
}

/// Longest the node holding a device may take to say it has a forwarded request.
pub const HOLDER_ACK: Duration = Duration::from_secs(2);

/// What became of a forwarded stream request.
#[derive(Debug)]
pub enum Forwarded {
    /// The holding node answered.
    Answered(Result<Initiated, InitiateError>),
    /// No node holds a session of the client now.
    NoSession,
    /// The request was never sent (NATS unreachable): no other node can have recorded it, so
    /// the asking node does. A request that was sent and then failed (no answer in time, a
    /// bad reply) is [`Forwarded::Answered`] with the error: the holding node may have
    /// recorded it, and one record is better than two.
    Unanswered(InitiateError),
}

/// A takeover announcement: node `node` holds the client's session since `at_ms` (Unix ms).
/// A node closes its own session only if that one is older, so an announcement that was
/// delayed (NATS away) cannot close a session that came after it.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Takeover {
    node: String,
    at_ms: i64,
}

impl Cluster {
    /// Connects to NATS at `url` as node `node` of the cluster whose registry has id
    /// `cluster_id` (its subjects are that cluster's alone). NATS reconnects by itself after
    /// a disconnection; requests fail meanwhile.
    ///
    /// # Errors
    /// [`ClusterError::Connect`] when the server cannot be reached at start.
    pub async fn connect(url: &str, node: &str, cluster_id: &str) -> Result<Self, ClusterError> {
        let client = async_nats::ConnectOptions::new()
            .name(format!("adit-hub {node}"))
            .event_callback(|event| async move {
                match event {
                    async_nats::Event::Disconnected => tracing::warn!("lost the connection to NATS: stream requests for devices on other nodes fail, registry changes and takeovers are not announced until it is back"),
                    async_nats::Event::Connected => tracing::info!("connected to NATS"),
                    _ => {}
                }
            })
            .connect(url)
            .await
            .map_err(|source| ClusterError::Connect {
                url: redact_url(url),
                source,
            })?;
        Ok(Self {
            client,
            node: Arc::from(node),
            subjects: Arc::new(subject::Subjects::new(cluster_id)),
        })
    }

    /// This node's id.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Whether NATS is connected now (while it is not, nothing reaches the other nodes).
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Sends `req` to the node holding `client_id`'s session, which may wait `connect_left`
    /// for the device to subscribe; gives up after `wait` in all.
    pub async fn forward(
        &self,
        client_id: &str,
        req: &Initiate,
        connect_left: Duration,
        wait: Duration,
    ) -> Forwarded {
        if !self.is_connected() {
            return Forwarded::Unanswered(InitiateError::Cluster(
                "cannot reach the other nodes: NATS is unreachable".into(),
            ));
        }
        let msg = wire::StreamRequest::new(req, connect_left, &self.node);
        let payload = match serde_json::to_vec(&msg) {
            Ok(p) => Bytes::from(p),
            Err(e) => return Forwarded::Unanswered(InitiateError::Cluster(e.to_string())),
        };
        let inbox = self.client.new_inbox();
        let Some(mut replies) = self.subscribe_bounded(inbox.clone()).await else {
            return Forwarded::Unanswered(InitiateError::Cluster(
                "cannot reach the other nodes: NATS did not take the reply subscription".into(),
            ));
        };
        let published = tokio::time::timeout(
            NATS_CALL,
            self.client
                .publish_with_reply(self.subjects.streams(client_id), inbox, payload),
        )
        .await;
        if !matches!(published, Ok(Ok(()))) {
            return Forwarded::Unanswered(InitiateError::Cluster(
                "cannot reach the other nodes: NATS did not take the request".into(),
            ));
        }
        // The holding node says at once that it has the request; one that says nothing is
        // paused or cut off (NATS keeps its subscription for minutes), and waiting for the
        // device's answer through it would hold the service for the whole wait.
        let first = match tokio::time::timeout(HOLDER_ACK, replies.next()).await {
            Ok(Some(m)) => m,
            Ok(None) => {
                return Forwarded::Answered(Err(InitiateError::Cluster(
                    "the reply subscription ended".into(),
                )));
            }
            Err(_) => {
                return Forwarded::Answered(Err(InitiateError::Cluster(format!(
                    "the node holding the device did not take the request within {HOLDER_ACK:?}"
                ))));
            }
        };
        if first.status == Some(async_nats::StatusCode::NO_RESPONDERS) {
            return Forwarded::NoSession;
        }
        let reply = match serde_json::from_slice::<wire::StreamReply>(&first.payload) {
            Ok(wire::StreamReply::Working) => {
                match tokio::time::timeout(wait, replies.next()).await {
                    Ok(Some(m)) => serde_json::from_slice::<wire::StreamReply>(&m.payload),
                    Ok(None) => {
                        return Forwarded::Answered(Err(InitiateError::Cluster(
                            "the reply subscription ended".into(),
                        )));
                    }
                    Err(_) => return Forwarded::Answered(Err(InitiateError::Timeout)),
                }
            }
            other => other,
        };
        match reply {
            // A node whose session just ended answered before the one that holds it now.
            Ok(wire::StreamReply::Failed {
                kind: wire::Failure::NotHeld,
                ..
            }) => Forwarded::NoSession,
            Ok(wire::StreamReply::Working) => Forwarded::Answered(Err(InitiateError::Cluster(
                "a node said it was working twice".into(),
            ))),
            Ok(r) => Forwarded::Answered(r.into_result(client_id)),
            Err(e) => Forwarded::Answered(Err(InitiateError::Cluster(format!(
                "bad reply from a node: {e}"
            )))),
        }
    }

    /// Serves `client_id`'s subjects while this node holds its session `session_id`: stream
    /// requests from other nodes run here, and a takeover announced by another node closes
    /// the session. Announces this node's takeover first. Stops when the guard is dropped.
    pub async fn hold_session(
        &self,
        client_id: &str,
        session_id: u64,
        streams: Streams,
        presence: Presence,
        tracker: &TaskTracker,
    ) -> DropGuard {
        let stop = CancellationToken::new();
        let guard = stop.clone().drop_guard();
        // Subscribed before announcing, so a takeover racing this one is not missed.
        let since_ms = crate::registry::now_ms();
        let Some(sub) = self.subscribe_bounded(self.subjects.all(client_id)).await else {
            tracing::error!(device = %client_id, "cannot subscribe to the device's cluster subjects; other nodes cannot reach it");
            return guard;
        };
        let announce = serde_json::to_vec(&Takeover {
            node: self.node.to_string(),
            at_ms: since_ms,
        })
        .unwrap_or_default();
        if !publish_bounded(&self.client, self.subjects.takeover(client_id), announce).await {
            tracing::warn!(device = %client_id, "cannot announce the session to other nodes");
        }
        let (this, client_id, tasks) = (self.clone(), client_id.to_string(), tracker.clone());
        tracker.spawn(async move {
            let held = Held {
                client_id: &client_id,
                session_id,
                since_ms,
            };
            this.serve(sub, held, streams, presence, stop, tasks).await;
        });
        guard
    }

    async fn serve(
        &self,
        mut sub: async_nats::Subscriber,
        held: Held<'_>,
        streams: Streams,
        presence: Presence,
        stop: CancellationToken,
        tasks: TaskTracker,
    ) {
        let Held {
            client_id,
            session_id,
            since_ms,
        } = held;
        let takeover = self.subjects.takeover(client_id);
        while let Some(msg) = next_message(&mut sub, &stop).await {
            if msg.subject.as_str() == takeover {
                match serde_json::from_slice::<Takeover>(&msg.payload) {
                    Ok(t) if t.node != *self.node && t.at_ms >= since_ms => {
                        if presence.take_over(client_id, session_id) {
                            tracing::info!(device = %client_id, node = %t.node, "device connected to another node; closing its session here");
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(device = %client_id, error = %e, "bad takeover message ignored");
                    }
                }
                continue;
            }
            let Some(reply_to) = msg.reply.clone() else {
                continue;
            };
            let request = serde_json::from_slice::<wire::StreamRequest>(&msg.payload)
                .ok()
                .and_then(wire::StreamRequest::into_initiate)
                .filter(|req| req.client_id() == client_id);
            let (client, streams) = (self.client.clone(), streams.clone());
            let device = client_id.to_string();
            // The session may have ended while the message was on its way: then another
            // node holds it, or none does, and the requester looks again.
            let current = presence
                .session(client_id)
                .is_some_and(|h| h.session_id == session_id);
            tasks.spawn(async move {
                if request.is_some() && current {
                    let working = serde_json::to_vec(&wire::StreamReply::Working).unwrap_or_default();
                    let _ = publish_bounded(&client, reply_to.clone(), working).await;
                }
                let reply = match request {
                    Some(_) if !current => wire::StreamReply::Failed {
                        kind: wire::Failure::NotHeld,
                        message: "this node no longer holds the device's session".into(),
                    },
                    Some(req) => wire::StreamReply::from(&streams.initiate_here(req).await),
                    None => {
                        tracing::warn!(device = %device, "malformed stream request from another node ignored");
                        wire::StreamReply::from(&Err(InitiateError::Cluster(
                            "malformed stream request".into(),
                        )))
                    }
                };
                let payload = serde_json::to_vec(&reply).unwrap_or_default();
                if !publish_bounded(&client, reply_to, payload).await {
                    tracing::warn!(device = %device, "cannot answer a forwarded stream request");
                }
            });
        }
    }
}

impl Cluster {
    /// Subscribes to `subject`, waiting at most [`NATS_CALL`]; `None` when NATS did not take
    /// the subscription (the caller says what that costs).
    async fn subscribe_bounded(&self, subject: String) -> Option<async_nats::Subscriber> {
        match tokio::time::timeout(NATS_CALL, self.client.subscribe(subject)).await {
            Ok(Ok(sub)) => Some(sub),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "NATS refused a subscription");
                None
            }
            Err(_) => None,
        }
    }
}

/// The next message of `sub` no longer than [`wire::MAX_MESSAGE`] (a longer one, from
/// another version or something else on the subject, is dropped with a warning); `None` at
/// `stop` or when the subscription ends.
async fn next_message(
    sub: &mut async_nats::Subscriber,
    stop: &CancellationToken,
) -> Option<async_nats::Message> {
    loop {
        let msg = tokio::select! {
            m = sub.next() => m?,
            () = stop.cancelled() => return None,
        };
        if msg.payload.len() <= wire::MAX_MESSAGE {
            return Some(msg);
        }
        tracing::warn!(subject = %msg.subject, bytes = msg.payload.len(), "oversized cluster message ignored");
    }
}

/// Publishes `payload` on `subject`, waiting at most [`NATS_CALL`]; returns whether NATS took
/// it.
async fn publish_bounded(
    client: &async_nats::Client,
    subject: impl async_nats::subject::ToSubject,
    payload: Vec<u8>,
) -> bool {
    matches!(
        tokio::time::timeout(NATS_CALL, client.publish(subject, payload.into())).await,
        Ok(Ok(()))
    )
}

/// A session this node holds, as its cluster responder sees it.
struct Held<'a> {
    client_id: &'a str,
    session_id: u64,
    /// When it was registered, in Unix ms.
    since_ms: i64,
}

/// `url` without a password or token, for error texts (with or without a scheme; async-nats
/// takes both).
fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), url),
    };
    match rest.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}***@{host}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_reach_error_texts() {
        assert_eq!(
            redact_url("nats://user:secret@10.0.0.1:4222"),
            "nats://***@10.0.0.1:4222"
        );
        assert_eq!(redact_url("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
        assert_eq!(redact_url("user:secret@nats:4222"), "***@nats:4222");
    }
}
