//! What nodes send each other over NATS, as JSON. The stream token in an accepted reply is a
//! secret: these messages are never logged, and NATS between nodes belongs on a private
//! network or TLS (`docs/deployment.md`).

use std::net::IpAddr;
use std::time::Duration;

use adit_proto::{DeviceId, ModuleId};
use serde::{Deserialize, Serialize};

use crate::streams::{Initiate, InitiateError, Initiated};

/// Largest message a node accepts from another (a request is a few hundred bytes).
pub const MAX_MESSAGE: usize = 16 * 1024;

/// A stream request forwarded to the node that holds the device's session.
#[derive(Debug, Serialize, Deserialize)]
pub struct StreamRequest {
    /// Device id.
    pub device: String,
    /// Module id, if any.
    pub module: Option<String>,
    /// Stream name.
    pub name: String,
    /// How long the holding node may wait for the device to subscribe, in ms.
    pub connect_timeout_ms: u64,
    /// The service's response timeout, in ms, if it gave one.
    pub response_timeout_ms: Option<u64>,
    /// The service caller's address.
    pub caller: Option<IpAddr>,
    /// The api-version the service sent.
    pub api_version: Option<String>,
    /// The node the service called.
    pub from_node: String,
    /// The stream protocol the service asked for (absent from older nodes' messages).
    #[serde(default)]
    pub protocol: Option<String>,
    /// The shared access policy whose token asked (absent from older nodes' messages).
    #[serde(default)]
    pub policy: Option<String>,
}

impl StreamRequest {
    /// The message for `req`, from node `from_node`.
    pub fn new(req: &Initiate, connect_timeout: Duration, from_node: &str) -> Self {
        Self {
            device: req.device.to_string(),
            module: req.module.as_ref().map(ToString::to_string),
            name: req.name.clone(),
            connect_timeout_ms: millis(connect_timeout),
            response_timeout_ms: req.response_timeout.map(millis),
            caller: req.caller,
            api_version: req.api_version.clone(),
            from_node: from_node.to_string(),
            protocol: req.protocol.clone(),
            policy: req.policy.clone(),
        }
    }

    /// The request it carries, with its connect timeout; `None` when an id is not valid
    /// (a node of another version, or something else publishing on the subject).
    pub fn into_initiate(self) -> Option<Initiate> {
        let device = DeviceId::new(&self.device).ok()?;
        let module = match self.module {
            Some(m) => Some(ModuleId::new(&m).ok()?),
            None => None,
        };
        Some(Initiate {
            device,
            module,
            name: self.name,
            connect_timeout: Some(Duration::from_millis(self.connect_timeout_ms)),
            response_timeout: self.response_timeout_ms.map(Duration::from_millis),
            caller: self.caller,
            api_version: self.api_version,
            protocol: self.protocol,
            policy: self.policy,
        })
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The holding node's answer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum StreamReply {
    /// Sent at once by the holding node: it has the request and runs it; the answer follows.
    Working,
    /// The device accepted; the service connects to `url` (on the holding node).
    Accepted {
        /// Stream id.
        stream_id: String,
        /// The service half's URL.
        url: String,
        /// Its bearer token.
        token: String,
        /// The protocol the stream carries, if both sides agreed on one.
        #[serde(default)]
        protocol: Option<String>,
    },
    /// The device refused.
    Rejected,
    /// It failed; `message` is the holding node's error text.
    Failed {
        /// Which failure.
        kind: Failure,
        /// Its text.
        message: String,
    },
}

/// Why a forwarded request failed, as the initiating node answers the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    /// No such device.
    NotFound,
    /// Not connected or not subscribed in time.
    NotOnline,
    /// Disabled.
    Disabled,
    /// Its session ended before it answered.
    Disconnected,
    /// It did not answer in time.
    Timeout,
    /// A limit on the holding node.
    Throttled,
    /// The answering node no longer holds the session (it just ended there): the requester
    /// looks again rather than failing.
    NotHeld,
    /// Anything else.
    ServerError,
}

impl From<&Result<Initiated, InitiateError>> for StreamReply {
    fn from(r: &Result<Initiated, InitiateError>) -> Self {
        match r {
            Ok(Initiated::Accepted {
                stream_id,
                url,
                token,
                protocol,
            }) => Self::Accepted {
                stream_id: stream_id.clone(),
                url: url.clone(),
                token: token.clone(),
                protocol: protocol.clone(),
            },
            Ok(Initiated::Rejected) => Self::Rejected,
            Err(e) => Self::Failed {
                kind: match e {
                    InitiateError::DeviceNotFound(_) => Failure::NotFound,
                    InitiateError::DeviceNotOnline(_) => Failure::NotOnline,
                    InitiateError::DeviceDisabled(_) => Failure::Disabled,
                    InitiateError::DeviceDisconnected(_) => Failure::Disconnected,
                    InitiateError::Timeout => Failure::Timeout,
                    InitiateError::Throttled(_) | InitiateError::ThrottledOnNode(_) => {
                        Failure::Throttled
                    }
                    InitiateError::InvalidName(_)
                    | InitiateError::Undeliverable(_)
                    | InitiateError::Registry(_)
                    | InitiateError::Cluster(_) => Failure::ServerError,
                },
                message: e.to_string(),
            },
        }
    }
}

impl StreamReply {
    /// The result the initiating node answers with; `client_id` names the device in errors.
    pub fn into_result(self, client_id: &str) -> Result<Initiated, InitiateError> {
        match self {
            Self::Accepted {
                stream_id,
                url,
                token,
                protocol,
            } => Ok(Initiated::Accepted {
                stream_id,
                url,
                token,
                protocol,
            }),
            Self::Rejected => Ok(Initiated::Rejected),
            Self::Working => Err(InitiateError::Cluster(
                "a node's answer was only that it is working".into(),
            )),
            Self::Failed { kind, message } => Err(match kind {
                Failure::NotFound => InitiateError::DeviceNotFound(client_id.to_string()),
                Failure::NotOnline => InitiateError::DeviceNotOnline(client_id.to_string()),
                Failure::Disabled => InitiateError::DeviceDisabled(client_id.to_string()),
                Failure::Disconnected => InitiateError::DeviceDisconnected(client_id.to_string()),
                Failure::Timeout => InitiateError::Timeout,
                Failure::Throttled => InitiateError::ThrottledOnNode(message),
                Failure::ServerError | Failure::NotHeld => InitiateError::Cluster(message),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_survives_the_wire() {
        let req = Initiate {
            device: DeviceId::new("d.1").expect("id"),
            module: Some(ModuleId::new("m").expect("id")),
            name: "ssh".into(),
            connect_timeout: None,
            response_timeout: Some(Duration::from_millis(2500)),
            caller: Some("::1".parse().expect("ip")),
            api_version: Some("2021-04-12".into()),
            protocol: Some("adit.stream.v1".into()),
            policy: Some("service".into()),
        };
        let msg = StreamRequest::new(&req, Duration::from_secs(3), "a");
        let bytes = serde_json::to_vec(&msg).expect("encode");
        let back: StreamRequest = serde_json::from_slice(&bytes).expect("decode");
        assert_eq!(back.from_node, "a");
        let got = back.into_initiate().expect("valid ids");
        assert_eq!(got.device.as_str(), "d.1");
        assert_eq!(got.module.as_ref().map(ModuleId::as_str), Some("m"));
        assert_eq!(got.connect_timeout, Some(Duration::from_secs(3)));
        assert_eq!(got.response_timeout, Some(Duration::from_millis(2500)));
        assert_eq!(got.policy.as_deref(), Some("service"));
        assert_eq!(got.caller, req.caller);
        assert_eq!(got.protocol.as_deref(), Some("adit.stream.v1"));
    }

    #[test]
    fn failures_map_back_to_the_same_errors() {
        for (err, kind) in [
            (
                InitiateError::DeviceNotOnline("d".into()),
                Failure::NotOnline,
            ),
            (InitiateError::Timeout, Failure::Timeout),
            (InitiateError::DeviceDisabled("d".into()), Failure::Disabled),
        ] {
            let reply = StreamReply::from(&Err(err));
            let bytes = serde_json::to_vec(&reply).expect("encode");
            let back: StreamReply = serde_json::from_slice(&bytes).expect("decode");
            let StreamReply::Failed { kind: got, .. } = &back else {
                panic!("not a failure: {back:?}");
            };
            assert_eq!(*got, kind);
            let again = StreamReply::from(&back.into_result("d"));
            assert!(matches!(again, StreamReply::Failed { kind: k, .. } if k == kind));
        }
    }

    #[test]
    fn bad_ids_from_the_wire_are_refused() {
        let msg: StreamRequest = serde_json::from_str(
            r#"{"device":"","module":null,"name":"x","connect_timeout_ms":0,"response_timeout_ms":null,"caller":null,"api_version":null,"from_node":"n"}"#,
        )
        .expect("decode");
        assert!(msg.into_initiate().is_none());
    }
}
