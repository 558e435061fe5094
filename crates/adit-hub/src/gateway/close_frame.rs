//! Which Close frame to send on, given how the other half ended.
//!
//! What a peer sends cannot always be sent on: RFC 6455 7.4.1 reserves 1004, 1005, 1006 and
//! 1015 ("MUST NOT be set as a status code in a Close control frame by an endpoint"), and
//! tokio-websockets reports a Close with an empty body (RFC 6455 5.5.1; Node's `ws` sends one
//! for `close()`) as 1005. tokio-websockets' `Message::close` asserts on a reserved code, so
//! every code that reaches it goes through [`forwardable`] first.

use tokio_websockets::{CloseCode, Message};

/// The longest reason that fits a Close frame's 125-byte payload beside its 2-byte code.
pub const MAX_REASON: usize = 123;

/// `reason` cut to at most [`MAX_REASON`] bytes, on a character boundary.
pub fn bounded_reason(reason: &str) -> &str {
    if reason.len() <= MAX_REASON {
        return reason;
    }
    let mut end = MAX_REASON;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

/// The Close to pass on for a Close received with `code` and `reason`.
///
/// - no code (an empty Close, reported as 1005): an empty Close, so the other half sees what
///   the peer sent;
/// - a code that may not be sent (1004, 1006, 1015): 1001 Going Away, the reason kept;
/// - any other code: the same code and reason.
pub fn forwardable(code: Option<CloseCode>, reason: &str) -> Message {
    match code {
        None => Message::close(None, ""),
        Some(c) if c == CloseCode::NO_STATUS_RECEIVED => Message::close(None, ""),
        Some(c) if c.is_reserved() => {
            Message::close(Some(CloseCode::GOING_AWAY), bounded_reason(reason))
        }
        Some(c) => Message::close(Some(c), bounded_reason(reason)),
    }
}

/// A Close the hub itself sends, with its own `code` (never a reserved one) and `reason`.
pub fn own(code: CloseCode, reason: &str) -> Message {
    let code = if code.is_reserved() {
        CloseCode::GOING_AWAY
    } else {
        code
    };
    Message::close(Some(code), bounded_reason(reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_of(m: &Message) -> Option<u16> {
        if m.as_payload().is_empty() {
            None
        } else {
            m.as_close().map(|(c, _)| u16::from(c))
        }
    }

    #[test]
    fn every_receivable_code_maps_to_one_that_can_be_sent() {
        // Every code tokio-websockets can hand us (1000..=1015 and 3000..=4999), plus none.
        let mut seen = 0;
        for raw in (1000u16..=1015).chain(3000..=4999) {
            let Ok(code) = CloseCode::try_from(raw) else {
                continue;
            };
            seen += 1;
            let m = forwardable(Some(code), "why");
            assert!(m.is_close());
            match raw {
                1005 => assert_eq!(code_of(&m), None, "empty close passes on empty"),
                1004 | 1006 | 1015 => assert_eq!(code_of(&m), Some(1001)),
                _ => {
                    assert_eq!(code_of(&m), Some(raw));
                    assert_eq!(m.as_close().map(|(_, r)| r.to_string()), Some("why".into()));
                }
            }
        }
        assert_eq!(seen, 16 + 2000);
        assert_eq!(code_of(&forwardable(None, "")), None);
    }

    #[test]
    fn reasons_are_cut_on_a_character_boundary() {
        let long = "ü".repeat(100); // 200 bytes
        let cut = bounded_reason(&long);
        assert!(cut.len() <= MAX_REASON && cut.len() >= MAX_REASON - 1);
        assert!(cut.chars().all(|c| c == 'ü'));
        let m = own(CloseCode::GOING_AWAY, &long);
        assert!(m.as_payload().len() <= 125);
        assert_eq!(
            code_of(&own(CloseCode::NO_STATUS_RECEIVED, "x")),
            Some(1001)
        );
    }
}
