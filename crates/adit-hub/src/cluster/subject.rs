//! NATS subjects: one cluster's namespace, and a client id (`device` or `device/module`) as one token.
//!
//! A subject is dot-separated tokens, and `*` and `>` are wildcards; device ids may hold dots
//! and stars and more (Azure allows `-.%_*?!(),:=@$'`, letters and digits). So a client id is
//! one token made of its letters, digits, `-` and `_` as they are and every other byte as
//! `%XX`: distinct ids give distinct tokens, and no id can reach another's subject.

use std::fmt::Write as _;

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

/// Every subject of one cluster: `adit.<cluster id>.…`. The cluster id is the registry's
/// ([`crate::registry::Registry::cluster_id`]), so clusters sharing a NATS server (or a
/// cluster and a test run) never hear each other: a stream request, a takeover or a registry
/// change of one never reaches a node of another.
#[derive(Debug, Clone)]
pub struct Subjects {
    prefix: String,
}

impl Subjects {
    /// The subjects of the cluster whose registry has id `cluster_id` (letters and digits).
    pub fn new(cluster_id: &str) -> Self {
        Self {
            prefix: format!("adit.{}", token(cluster_id)),
        }
    }

    /// Where stream requests for `client_id` go: answered by the node that holds its session.
    pub fn streams(&self, client_id: &str) -> String {
        format!("{}.client.{}.streams", self.prefix, token(client_id))
    }

    /// Where a node announces that it now holds `client_id`'s session; a node holding an
    /// older one closes it.
    pub fn takeover(&self, client_id: &str) -> String {
        format!("{}.client.{}.takeover", self.prefix, token(client_id))
    }

    /// Every subject of `client_id`, for the node that holds its session.
    pub fn all(&self, client_id: &str) -> String {
        format!("{}.client.{}.>", self.prefix, token(client_id))
    }

    /// Registry changes, announced by the node that stored them.
    pub fn registry_changes(&self) -> String {
        format!("{}.registry.changes", self.prefix)
    }

    /// Questions every node answers (logs, streaming endpoints).
    pub fn questions(&self) -> String {
        format!("{}.questions", self.prefix)
    }
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
        assert_eq!(
            Subjects::new("c1").streams("a.b"),
            "adit.c1.client.a%2Eb.streams"
        );
        for id in ["a.b", "x*", ">", "d/m", "%41", "é"] {
            let t = token(id);
            assert!(
                !t.contains(['.', '*', '>', ' ']) && !t.is_empty(),
                "{id:?} -> {t:?}"
            );
        }
    }

    #[test]
    fn clusters_have_disjoint_subjects() {
        let (one, two) = (Subjects::new("c1"), Subjects::new("c2"));
        assert_ne!(one.all("d"), two.all("d"));
        assert_ne!(one.registry_changes(), two.registry_changes());
        assert_ne!(one.questions(), two.questions());
        assert!(one.streams("d").starts_with("adit.c1."));
    }

    #[test]
    fn distinct_ids_give_distinct_tokens() {
        // `%` itself is escaped, so an id cannot spell another id's escape.
        assert_ne!(token("a.b"), token("a%2Eb"));
        assert_ne!(token("A"), token("a"));
    }
}
