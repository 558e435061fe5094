//! Text that came from the network, made safe to print.
//!
//! Client ids, usernames, topics, paths and token fields are chosen by whoever connects: up to
//! 64 KiB of anything, including newlines, escape sequences and invisible characters that
//! would forge or hide log lines. Every such string that reaches a log line or an error text
//! goes through [`remote_text`], which escapes what is not plainly printable and keeps at most
//! [`MAX_CHARS`] characters, then says how long the whole was.

use std::fmt::{self, Write as _};

/// Characters of remote text printed before it is cut.
pub const MAX_CHARS: usize = 128;

/// Remote text for printing: `{}` shows it escaped and bounded, `{:?}` the same in quotes.
#[derive(Clone, Copy)]
pub struct RemoteText<'a>(&'a str);

/// Wraps `s`, a string from the network, for a log line or an error text.
///
/// Printable characters pass as they are; `\` is doubled; control characters, invisible
/// formatting characters (zero-width, bidirectional overrides, BOM) and, under `{:?}`, `"`
/// are escaped (`\n`, `\u{202e}`, `\"`). After [`MAX_CHARS`] characters it stops and adds
/// `…(N bytes)`, N being the length of the whole string.
pub fn remote_text(s: &str) -> RemoteText<'_> {
    RemoteText(s)
}

/// Zero-width and direction-changing characters: they print as nothing but change what a
/// reader sees around them.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00ad}' | '\u{061c}' | '\u{180e}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}'
        | '\u{2060}'..='\u{206f}' | '\u{feff}' | '\u{fff9}'..='\u{fffb}')
}

impl RemoteText<'_> {
    fn write(&self, f: &mut fmt::Formatter<'_>, quoted: bool) -> fmt::Result {
        for (shown, c) in self.0.chars().enumerate() {
            if shown == MAX_CHARS {
                return write!(f, "…({} bytes)", self.0.len());
            }
            match c {
                '\\' => f.write_str("\\\\")?,
                '"' if quoted => f.write_str("\\\"")?,
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                c if c.is_control() || is_invisible(c) => write!(f, "\\u{{{:x}}}", u32::from(c))?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

impl fmt::Display for RemoteText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, false)
    }
}

impl fmt::Debug for RemoteText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('"')?;
        self.write(f, true)?;
        f.write_char('"')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_text_is_unchanged() {
        for s in [
            "sensor-1",
            "d1/m1",
            "a b",
            "über",
            "$iothub/streams/res/200/?$rid=1",
        ] {
            assert_eq!(remote_text(s).to_string(), s);
        }
        assert_eq!(format!("{:?}", remote_text("d1")), "\"d1\"");
    }

    #[test]
    fn control_and_invisible_characters_are_escaped() {
        let forged = "d1\nINFO hub: device admin connected\r\x1b[2J\u{202e}\u{200b}\u{7f}\\";
        let shown = remote_text(forged).to_string();
        assert_eq!(
            shown,
            "d1\\nINFO hub: device admin connected\\r\\u{1b}[2J\\u{202e}\\u{200b}\\u{7f}\\\\"
        );
        assert!(!shown.chars().any(|c| c.is_control() || is_invisible(c)));
        assert_eq!(format!("{:?}", remote_text("a\"b")), "\"a\\\"b\"");
    }

    #[test]
    fn long_text_is_cut_and_measured() {
        let long = "x".repeat(65_535);
        let shown = remote_text(&long).to_string();
        assert_eq!(shown, format!("{}…(65535 bytes)", "x".repeat(MAX_CHARS)));
        let exact = "y".repeat(MAX_CHARS);
        assert_eq!(remote_text(&exact).to_string(), exact);
        // Counted in characters, so a multi-byte character is never split.
        let wide = "ü".repeat(MAX_CHARS + 1);
        assert_eq!(
            remote_text(&wide).to_string(),
            format!("{}…({} bytes)", "ü".repeat(MAX_CHARS), wide.len())
        );
    }

    proptest::proptest! {
        #[test]
        fn output_is_bounded_and_printable(s in "\\PC*|[\\x00-\\x1f\\u{200b}-\\u{202e}]*") {
            let shown = remote_text(&s).to_string();
            proptest::prop_assert!(shown.chars().count() <= MAX_CHARS * 10 + 32);
            proptest::prop_assert!(!shown.chars().any(|c| c.is_control() || is_invisible(c)));
        }
    }
}
