//! NATS subjects for a client id (`device` or `device/module`).
//!
//! A subject is dot-separated tokens, and `*` and `>` are wildcards; device ids may hold dots
//! and stars and more (Azure allows `-.%_*?!(),:=@$'`, letters and digits). So a client id is
//! one token made of its letters, digits, `-` and `_` as they are and every other byte as
//! `%XX`: distinct ids give distinct tokens, and no id can reach another's subject.

use std::fmt::Write as _;

/// Prefix of every client's subjects.
pub const CLIENT_PREFIX: &str = "adit.client";

/// `client_id` as one subject token (see the module docs).
pub fn token(client_id: &str) -> String {
    let mut out = String::with_capacity(client_id.len());
    for b in client_id.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Where stream requests for `client_id` go: answered by the node that holds its session.
pub fn streams(client_id: &str) -> String {
    format!("{CLIENT_PREFIX}.{}.streams", token(client_id))
}

/// Where a node announces that it now holds `client_id`'s session; a node holding an older
/// one closes it.
pub fn takeover(client_id: &str) -> String {
    format!("{CLIENT_PREFIX}.{}.takeover", token(client_id))
}

/// Every subject of `client_id`, for the node that holds its session.
pub fn all(client_id: &str) -> String {
    format!("{CLIENT_PREFIX}.{}.>", token(client_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_with_subject_syntax_stay_one_token() {
        assert_eq!(token("dev-1_a"), "dev-1_a");
        assert_eq!(token("a.b"), "a%2Eb");
        assert_eq!(token("a*>"), "a%2A%3E");
        assert_eq!(token("d/m"), "d%2Fm");
        assert_eq!(token("a b"), "a%20b");
        assert_eq!(streams("a.b"), "adit.client.a%2Eb.streams");
        for id in ["a.b", "x*", ">", "d/m", "%41", "é"] {
            let t = token(id);
            assert!(
                !t.contains(['.', '*', '>', ' ']) && !t.is_empty(),
                "{id:?} -> {t:?}"
            );
        }
    }

    #[test]
    fn distinct_ids_give_distinct_tokens() {
        // `%` itself is escaped, so an id cannot spell another id's escape.
        assert_ne!(token("a.b"), token("a%2Eb"));
        assert_ne!(token("A"), token("a"));
    }
}
