//! Stream names: the one rule for the name a service gives a device stream.
//!
//! Azure documents no rule beyond "not empty or whitespace" (C# service SDK
//! `DeviceStreamRequest(string streamName)`, branch `previews/deviceStreaming`). What constrains
//! the name is where it travels *without encoding*:
//! - in the REST path `POST /twins/{id}/streams/{name}`: C# `AmqpServiceClient`
//!   (`DeviceStreamUriFormat = "/twins/{0}/streams/{1}?..."`) and Node `service/src/client.ts`
//!   (`'/streams/' + streamInitiation.streamName`) insert it as is, so it must be a URL path
//!   segment that needs no percent-encoding (RFC 3986 `pchar`);
//! - as a level of the MQTT topic `$iothub/streams/POST/{name}/?$rid=...`, which the C device
//!   SDK splits on `/` and the C# device SDK needs in exactly 5 levels, and in which MQTT
//!   3.1.1 forbids the wildcards `+` and `#` (section 4.7.1).
//!
//! So a stream name is 1 to 128 characters from `A-Z a-z 0-9 - . _ ~ ! $ & ' ( ) * , ; = : @`:
//! RFC 3986's unreserved characters, sub-delimiters, `:` and `@`, without `+`. Names are
//! case-sensitive and reach the device exactly as the service gave them.

use crate::id::Shown;

/// Longest stream name accepted, in characters (names are ASCII, so also in bytes).
pub const MAX_STREAM_NAME_LEN: usize = 128;

/// The special characters a stream name may hold, besides ASCII letters and digits.
pub const STREAM_NAME_SPECIALS: &str = "-._~!$&'()*,;=:@";

/// The allowed set, as error messages and the docs list it.
pub const STREAM_NAME_ALPHABET: &str = "A-Z a-z 0-9 - . _ ~ ! $ & ' ( ) * , ; = : @";

/// Why a string is not a valid stream name. Each message names the offending character (or
/// length), says why, and lists what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamNameError {
    /// The name is empty.
    #[error(
        "stream name is empty: names are 1 to {MAX_STREAM_NAME_LEN} characters from {STREAM_NAME_ALPHABET}"
    )]
    Empty,
    /// The name is longer than [`MAX_STREAM_NAME_LEN`]; carries its length.
    #[error("stream name is {0} characters long; the limit is {MAX_STREAM_NAME_LEN}")]
    TooLong(usize),
    /// The name contains a character outside ASCII.
    #[error(
        "stream name contains {0:?}: non-ASCII characters are not allowed (names are 1 to {MAX_STREAM_NAME_LEN} characters from {STREAM_NAME_ALPHABET})"
    )]
    NotAscii(char),
    /// The name contains an ASCII character that would not survive a URL path or a topic.
    #[error("stream name contains {}, which is not allowed{}; allowed: {STREAM_NAME_ALPHABET}", Shown(*.0), why_not(*.0))]
    NotAllowed(char),
}

fn why_not(c: char) -> &'static str {
    match c {
        '/' => " (it separates MQTT topic levels and URL path segments)",
        '+' | '#' => " (it is an MQTT topic wildcard)",
        '?' => " (it starts a URL's query and the stream topic's properties)",
        '%' => " (it starts a percent-encoding in a URL)",
        _ => "",
    }
}

/// True for a character a stream name may hold.
pub fn is_stream_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || STREAM_NAME_SPECIALS.contains(c)
}

/// Checks a stream name. Errors: [`StreamNameError`].
pub fn check_stream_name(name: &str) -> Result<(), StreamNameError> {
    if name.is_empty() {
        return Err(StreamNameError::Empty);
    }
    if let Some(c) = name.chars().find(|c| !is_stream_name_char(*c)) {
        return Err(if c.is_ascii() {
            StreamNameError::NotAllowed(c)
        } else {
            StreamNameError::NotAscii(c)
        });
    }
    if name.len() > MAX_STREAM_NAME_LEN {
        return Err(StreamNameError::TooLong(name.len()));
    }
    Ok(())
}

/// True for a name that [`check_stream_name`] accepts.
pub fn is_valid_stream_name(name: &str) -> bool {
    check_stream_name(name).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alphabet_text_lists_exactly_the_allowed_specials() {
        let listed: String = STREAM_NAME_ALPHABET
            .trim_start_matches("A-Z a-z 0-9 ")
            .split(' ')
            .collect();
        assert_eq!(listed, STREAM_NAME_SPECIALS);
    }

    #[test]
    fn accepts_the_whole_alphabet() {
        let all: String = ('A'..='Z')
            .chain('a'..='z')
            .chain('0'..='9')
            .chain(STREAM_NAME_SPECIALS.chars())
            .collect();
        assert_eq!(check_stream_name(&all), Ok(()));
        assert_eq!(check_stream_name("ssh"), Ok(()));
        assert_eq!(check_stream_name(&"a".repeat(128)), Ok(()));
    }

    #[test]
    fn refusals_name_the_character_and_say_why() {
        assert_eq!(check_stream_name(""), Err(StreamNameError::Empty));
        assert_eq!(
            check_stream_name(&"a".repeat(129)),
            Err(StreamNameError::TooLong(129))
        );
        for c in "/?#+% \"<>[]\\^`{|}\t".chars() {
            assert_eq!(
                check_stream_name(&format!("a{c}b")),
                Err(StreamNameError::NotAllowed(c)),
                "{c:?}"
            );
        }
        let e = check_stream_name("über").expect_err("non-ASCII");
        assert_eq!(e, StreamNameError::NotAscii('ü'));
        let text = e.to_string();
        assert!(text.contains("'ü'") && text.contains("non-ASCII"), "{text}");
        let text = StreamNameError::NotAllowed('+').to_string();
        assert!(
            text.contains("wildcard") && text.contains(STREAM_NAME_ALPHABET),
            "{text}"
        );
        let text = StreamNameError::NotAllowed(' ').to_string();
        assert!(text.contains("(a space)"), "{text}");
    }
}
