//! The page's side of the terminal protocol (docs/console.md, "Terminal"): the text messages
//! the hub sends (`hostKey`, `ready`, `error`, `closed`) and what the page's messages
//! (`trustHostKey`, `resize`, the terminal's bytes) mean.
//! Parsing never panics and never echoes what the page sent.

use bytes::Bytes;
use serde_json::json;
use tokio_websockets::Message;

use super::MAX_MESSAGE;
use super::ssh::HostKey;

/// The largest terminal side accepted (larger ones are cut to it).
const MAX_SIDE: u32 = 1000;

/// A terminal's size in characters, each side within 1..=[`MAX_SIDE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Size {
    pub cols: u32,
    pub rows: u32,
}

impl Size {
    pub fn clamped(cols: u32, rows: u32) -> Self {
        Self {
            cols: cols.clamp(1, MAX_SIDE),
            rows: rows.clamp(1, MAX_SIDE),
        }
    }
}

/// What the hub tells the page just before its Close.
#[derive(Debug)]
pub(super) enum Notice {
    /// `{"type": "error"}`: the terminal could not start, or the page broke the protocol.
    Error(String),
    /// `{"type": "closed"}`: the shell ended.
    Closed(String),
}

impl Notice {
    pub fn message(&self) -> Message {
        let (kind, message) = match self {
            Self::Error(m) => ("error", m),
            Self::Closed(m) => ("closed", m),
        };
        text(json!({ "type": kind, "message": message }))
    }
}

/// `{"type": "hostKey", "fingerprint", "firstUse"}`.
pub(super) fn host_key(key: &HostKey) -> Message {
    text(json!({
        "type": "hostKey",
        "fingerprint": key.fingerprint,
        "firstUse": key.first_use,
    }))
}

/// `{"type": "ready"}`: the shell runs.
pub(super) fn ready() -> Message {
    text(json!({ "type": "ready" }))
}

fn text(value: serde_json::Value) -> Message {
    Message::text(value.to_string())
}

/// A message from the page, once the shell runs.
#[derive(Debug)]
pub(super) enum PageMessage {
    /// Bytes for the terminal (a binary message).
    Bytes(Bytes),
    /// `{"type": "resize", "cols": n, "rows": n}`.
    Resize(Size),
    /// `{"type": "trustHostKey"}`: the user trusts the host key shown (first use).
    TrustHostKey,
    /// A Close.
    Closed,
    /// Over [`MAX_MESSAGE`].
    TooBig,
    /// Not understood: what it was, for the page and the log.
    Invalid(&'static str),
    /// Pings, pongs and text messages of types this hub does not know (a newer page).
    Ignored,
}

#[derive(serde::Deserialize)]
struct Control {
    #[serde(rename = "type")]
    kind: String,
    cols: Option<u32>,
    rows: Option<u32>,
}

pub(super) fn parse(message: Message) -> PageMessage {
    if message.is_close() {
        return PageMessage::Closed;
    }
    if message.as_payload().len() > MAX_MESSAGE {
        return PageMessage::TooBig;
    }
    if message.is_binary() {
        return PageMessage::Bytes(message.into_payload().into());
    }
    let Some(text) = message.as_text() else {
        return PageMessage::Ignored;
    };
    let Ok(control) = serde_json::from_str::<Control>(text) else {
        return PageMessage::Invalid("a text message that is not a JSON object with a type");
    };
    match (control.kind.as_str(), control.cols, control.rows) {
        ("resize", Some(cols), Some(rows)) => PageMessage::Resize(Size::clamped(cols, rows)),
        ("resize", _, _) => PageMessage::Invalid("a resize without cols and rows"),
        ("trustHostKey", _, _) => PageMessage::TrustHostKey,
        _ => PageMessage::Ignored,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_is_clamped_and_malformed_text_is_invalid() {
        let resize = parse(Message::text(r#"{"type":"resize","cols":0,"rows":99999}"#));
        assert!(matches!(
            resize,
            PageMessage::Resize(Size {
                cols: 1,
                rows: MAX_SIDE
            })
        ));
        assert!(matches!(
            parse(Message::text(r#"{"type":"resize","cols":-1,"rows":2}"#)),
            PageMessage::Invalid(_)
        ));
        assert!(matches!(
            parse(Message::text("not json")),
            PageMessage::Invalid(_)
        ));
        assert!(matches!(
            parse(Message::text(r#"{"type":"someday"}"#)),
            PageMessage::Ignored
        ));
        assert!(matches!(
            parse(Message::text(r#"{"type":"trustHostKey"}"#)),
            PageMessage::TrustHostKey
        ));
        assert!(matches!(
            parse(Message::binary(vec![0u8; MAX_MESSAGE + 1])),
            PageMessage::TooBig
        ));
        assert!(matches!(
            parse(Message::binary(vec![b'x'; MAX_MESSAGE])),
            PageMessage::Bytes(b) if b.len() == MAX_MESSAGE
        ));
    }
}
