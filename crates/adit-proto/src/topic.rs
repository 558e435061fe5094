//! Azure's MQTT topic grammar for device streams and the CONNECT identity fields.
//!
//! Hub to device: `$iothub/streams/POST/{name}/?$rid={rid}&$url={urlenc(url)}&$auth={token}&$ip={ip}`.
//! Device to hub: `$iothub/streams/res/{200|400}/?$rid={rid}`, empty payload.
//!
//! Azure's C SDK splits the request topic on `/` and takes 4 or 5 levels, then splits each
//! property on `=` into exactly two non-empty parts; C# needs exactly 5 levels. So no property
//! value may contain a raw `/`, `=` or `&` or be empty, and the name no `/`: the stream name is
//! checked ([`crate::stream_name`]), the URL is fully percent-encoded and the token must use a
//! URL-safe alphabet.
//!
//! The topics carry no device or module id; the CONNECT fields do ([`ClientId`],
//! [`check_username`], [`format_username`]).

use crate::id::{DeviceId, IdError, ModuleId};
use crate::resource::{decode_component, encode_component};
pub use crate::stream_name::{MAX_STREAM_NAME_LEN as MAX_STREAM_NAME, is_valid_stream_name};
use crate::stream_name::{StreamNameError, check_stream_name};

/// Filter a device subscribes to for stream requests.
pub const STREAMS_POST_FILTER: &str = "$iothub/streams/POST/#";
/// Filter a device subscribes to for stream responses (never published on by the hub).
pub const STREAMS_RES_FILTER: &str = "$iothub/streams/res/#";
const POST_PREFIX: &str = "$iothub/streams/POST/";
const RES_PREFIX: &str = "$iothub/streams/res/";
/// Longest topic this module parses.
pub const MAX_TOPIC_LEN: usize = 4096;

/// Why a topic or CONNECT field is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// Not a topic of the expected kind.
    #[error("not a {0} topic")]
    WrongPrefix(&'static str),
    /// Over [`MAX_TOPIC_LEN`].
    #[error("topic is too long")]
    TooLong,
    /// The status level is not 200 or 400.
    #[error("stream response status {0:?} is not 200 or 400")]
    BadStatus(String),
    /// The property level is missing or malformed. Its text is not kept: a request topic's
    /// properties carry the stream's bearer token.
    #[error("malformed topic properties (want ?name=value&name=value...)")]
    BadProperties,
    /// A required property is missing.
    #[error("topic has no {0}")]
    MissingProperty(&'static str),
    /// The stream name breaks [`crate::stream_name`]'s rule.
    #[error(transparent)]
    BadStreamName(#[from] StreamNameError),
    /// A value would break the C SDK's parser (empty, or a character outside its alphabet).
    #[error("{0} is empty or contains characters the device SDKs cannot parse")]
    BadValue(&'static str),
    /// The client id is not `{deviceId}` or `{deviceId}/{moduleId}`.
    #[error("client id: {0}")]
    BadClientId(IdError),
    /// The username is not `{host}/{clientId}/?...` (or `{host}/{clientId}`).
    #[error("username is not {{host}}/{{clientId}}/?api-version=...")]
    BadUsername,
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_.".contains(c)
}

/// A stream request as delivered to a device. Its `Debug` leaves out `auth`.
#[derive(Clone, PartialEq, Eq)]
pub struct StreamRequest {
    /// Stream name chosen by the service.
    pub name: String,
    /// Request id, echoed in the response.
    pub rid: String,
    /// WebSocket URL the device connects to (`wss://host:port/path`, unencoded).
    pub url: String,
    /// Bearer token for that URL.
    pub auth: String,
    /// The service caller's address, as Azure's `$ip` (informational).
    pub ip: Option<String>,
    /// The stream protocol the service asks for inside the stream ([`PROTOCOL_PROPERTY`]),
    /// Adit's own: `adit.stream.v1`. Azure's SDKs ignore properties they do not know.
    pub protocol: Option<String>,
}

/// The property of a stream request and of a device's answer that names the protocol the
/// stream will carry (`adit-protocol=adit.stream.v1`): asked for by the service, confirmed by
/// the device in its answer. Adit's own; absent from Azure's wire.
pub const PROTOCOL_PROPERTY: &str = "adit-protocol";

fn check_protocol(protocol: Option<&str>) -> Result<(), TopicError> {
    match protocol {
        Some(p) if p.is_empty() || !p.chars().all(is_token_char) => {
            Err(TopicError::BadValue(PROTOCOL_PROPERTY))
        }
        _ => Ok(()),
    }
}

impl StreamRequest {
    /// The PUBLISH topic. Fails if a field would break an SDK's parser, or if the topic would
    /// be longer than [`MAX_TOPIC_LEN`] (which [`StreamRequest::parse`] refuses).
    pub fn to_topic(&self) -> Result<String, TopicError> {
        check_stream_name(&self.name)?;
        if self.rid.is_empty() || !self.rid.chars().all(is_token_char) {
            return Err(TopicError::BadValue("$rid"));
        }
        if self.auth.is_empty() || !self.auth.chars().all(is_token_char) {
            return Err(TopicError::BadValue("$auth"));
        }
        if self.url.is_empty() {
            return Err(TopicError::BadValue("$url"));
        }
        check_protocol(self.protocol.as_deref())?;
        let mut topic = format!(
            "{POST_PREFIX}{}/?$rid={}&$url={}&$auth={}",
            self.name,
            self.rid,
            encode_component(&self.url),
            self.auth
        );
        if let Some(ip) = self.ip.as_deref().filter(|ip| !ip.is_empty()) {
            topic.push_str("&$ip=");
            topic.push_str(&encode_component(ip));
        }
        if let Some(p) = &self.protocol {
            topic.push_str(&format!("&{PROTOCOL_PROPERTY}={p}"));
        }
        // Percent-encoding can triple the URL: never send what `parse` would refuse.
        if topic.len() > MAX_TOPIC_LEN {
            return Err(TopicError::TooLong);
        }
        Ok(topic)
    }

    /// Parses a request topic the way Azure's C SDK does (what a device SDK must do).
    pub fn parse(topic: &str) -> Result<Self, TopicError> {
        if topic.len() > MAX_TOPIC_LEN {
            return Err(TopicError::TooLong);
        }
        let levels: Vec<&str> = topic.split('/').collect();
        let prefix_ok = topic
            .get(..POST_PREFIX.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(POST_PREFIX));
        if !prefix_ok || !(4..=5).contains(&levels.len()) {
            return Err(TopicError::WrongPrefix("stream request"));
        }
        let name = levels[3].to_string();
        let props = levels.get(4).copied().unwrap_or("");
        let props = parse_properties(props)?;
        let get = |k: &str| props.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
        let url = get("$url").ok_or(TopicError::MissingProperty("$url"))?;
        let auth = get("$auth").ok_or(TopicError::MissingProperty("$auth"))?;
        Ok(Self {
            name,
            rid: get("$rid").unwrap_or_default().to_string(),
            url: decode_component(url).ok_or(TopicError::BadValue("$url"))?,
            auth: auth.to_string(),
            ip: get("$ip").and_then(decode_component),
            protocol: get(PROTOCOL_PROPERTY).map(str::to_string),
        })
    }
}

impl std::fmt::Debug for StreamRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamRequest")
            .field("name", &self.name)
            .field("rid", &self.rid)
            .field("url", &self.url)
            .field("ip", &self.ip)
            .field("protocol", &self.protocol)
            .finish_non_exhaustive()
    }
}

/// `topic` with the value of every `$auth` property (a stream's bearer token) replaced by
/// `***`, for logs. Property names are matched without regard to case.
pub fn redact_auth(topic: &str) -> String {
    const NAME: &str = "$auth=";
    let mut out = String::with_capacity(topic.len().min(MAX_TOPIC_LEN));
    let mut rest = topic;
    while let Some(at) = rest.char_indices().map(|(i, _)| i).find(|&i| {
        rest.get(i..i + NAME.len())
            .is_some_and(|n| n.eq_ignore_ascii_case(NAME))
    }) {
        let value = at + NAME.len();
        out.push_str(&rest[..value]);
        out.push_str("***");
        rest = &rest[value..];
        rest = rest.find('&').map_or("", |end| &rest[end..]);
    }
    out.push_str(rest);
    out
}

/// Splits `?k=v&k=v` like the C SDK: every pair has exactly one `=` and two non-empty sides.
fn parse_properties(level: &str) -> Result<Vec<(&str, &str)>, TopicError> {
    let body = level.strip_prefix('?').ok_or(TopicError::BadProperties)?;
    body.split('&')
        .map(|pair| {
            let mut parts = pair.split('=');
            match (parts.next(), parts.next(), parts.next()) {
                (Some(k), Some(v), None) if !k.is_empty() && !v.is_empty() => Ok((k, v)),
                _ => Err(TopicError::BadProperties),
            }
        })
        .collect()
}

/// A device's answer to a stream request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamResponse {
    /// True for 200 (accept), false for 400 (reject).
    pub accepted: bool,
    /// The request id being answered.
    pub rid: String,
    /// The protocol the device will speak in the stream, when the request asked for one
    /// and the device accepts in it ([`PROTOCOL_PROPERTY`]); `None`: raw bytes.
    pub protocol: Option<String>,
}

impl StreamResponse {
    /// The PUBLISH topic a device sends.
    pub fn to_topic(&self) -> String {
        let status = if self.accepted { 200 } else { 400 };
        let mut topic = format!("{RES_PREFIX}{status}/?$rid={}", self.rid);
        if let Some(p) = self.protocol.as_deref().filter(|_| self.accepted) {
            topic.push_str(&format!("&{PROTOCOL_PROPERTY}={p}"));
        }
        topic
    }

    /// True when `topic` is on the response branch (so it should be parsed as one).
    pub fn is_response_topic(topic: &str) -> bool {
        topic
            .get(..RES_PREFIX.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(RES_PREFIX))
    }

    /// Parses `$iothub/streams/res/{status}/?$rid={rid}[&...]`.
    pub fn parse(topic: &str) -> Result<Self, TopicError> {
        if topic.len() > MAX_TOPIC_LEN {
            return Err(TopicError::TooLong);
        }
        if !Self::is_response_topic(topic) {
            return Err(TopicError::WrongPrefix("stream response"));
        }
        let rest = &topic[RES_PREFIX.len()..];
        let (status, props) = rest.split_once('/').unwrap_or((rest, ""));
        let accepted = match status {
            "200" => true,
            "400" => false,
            other => return Err(TopicError::BadStatus(other.chars().take(20).collect())),
        };
        let props = parse_properties(props)?;
        let rid = props
            .iter()
            .find(|(k, _)| *k == "$rid")
            .map(|(_, v)| v.to_string())
            .ok_or(TopicError::MissingProperty("$rid"))?;
        // Only an acceptance names a protocol; on a refusal the property means nothing (and
        // `to_topic` never writes it there, so the two agree: found by fuzz/run mqtt_framing).
        let protocol = props
            .iter()
            .find(|(k, _)| *k == PROTOCOL_PROPERTY)
            .filter(|_| accepted)
            .map(|(_, v)| v.to_string());
        Ok(Self {
            accepted,
            rid,
            protocol,
        })
    }
}

/// The identity in an MQTT client id: `{deviceId}` or `{deviceId}/{moduleId}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientId {
    /// The device.
    pub device: DeviceId,
    /// The module, if a module connects.
    pub module: Option<ModuleId>,
}

impl ClientId {
    /// Parses a client id.
    pub fn parse(s: &str) -> Result<Self, TopicError> {
        let (device, module) = match s.split_once('/') {
            Some((d, m)) => (d, Some(m)),
            None => (s, None),
        };
        Ok(Self {
            device: DeviceId::new(device).map_err(TopicError::BadClientId)?,
            module: module
                .map(ModuleId::new)
                .transpose()
                .map_err(TopicError::BadClientId)?,
        })
    }
}

impl std::fmt::Display for ClientId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.module {
            Some(m) => write!(f, "{}/{m}", self.device),
            None => write!(f, "{}", self.device),
        }
    }
}

/// Checks an MQTT username against the client id and returns the host. The username names the
/// identity again; the query (api-version, DeviceClientType, model-id...) is not interpreted.
///
/// Accepted shapes, `{clientId}` compared exactly (so any id character, `?` included, works):
/// - `{host}/{clientId}/?{query}`: every current SDK (C `"%s/%s/?api-version=..."` and C#
///   `$"{host}/{id}/?{query}"` put the id in raw; Python too, with the query URL-encoded);
/// - `{host}/{clientId}` and `{host}/{clientId}/`: Azure's docs
///   (`authenticate-authorize-sas.md`, "Protocol specifics");
/// - `{host}/{clientId}/{query}` where the query holds a `=` and no `/`: older SDKs that sent
///   no `?` (Node `mqtt_base.ts` `host + '/' + deviceId + '/DeviceClientType=...&api-version=...'`,
///   C `"%s.%s/%s/api-version=%s&DeviceClientType=..."`).
///
/// The host is everything before the first `/` (ids never hold one). Errors:
/// [`TopicError::BadUsername`] for an empty host, another identity or another shape.
pub fn check_username<'a>(username: &'a str, client_id: &str) -> Result<&'a str, TopicError> {
    let (host, rest) = username.split_once('/').ok_or(TopicError::BadUsername)?;
    let tail = rest
        .strip_prefix(client_id)
        .ok_or(TopicError::BadUsername)?;
    let ok = match tail.strip_prefix('/') {
        None => tail.is_empty(),
        Some(query) => {
            query.is_empty()
                || query.starts_with('?')
                || (query.contains('=') && !query.contains('/'))
        }
    };
    if host.is_empty() || client_id.is_empty() || !ok {
        return Err(TopicError::BadUsername);
    }
    Ok(host)
}

/// The username Adit's device SDK sends: `{host}/{clientId}/?{query}`, the id raw as every
/// Azure SDK sends it; `query` is appended as given (encode its values first).
pub fn format_username(host: &str, client_id: &ClientId, query: &str) -> String {
    format!("{host}/{client_id}/?{query}")
}

#[cfg(test)]
mod tests;
