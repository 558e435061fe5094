//! Finds known secrets in text: whole, percent-encoded, JSON-escaped, or any long enough
//! piece of one (a cut-off echo leaks too).

use adit_proto::resource::encode_component;

/// Shortest piece of a secret that counts as a leak: random base64 this long never turns up
/// by chance.
pub const PIECE: usize = 20;

#[derive(Debug, Clone)]
struct Secret {
    what: String,
    value: String,
    pieces: bool,
}

/// The secrets a scenario used, and where they must never show.
#[derive(Debug, Default, Clone)]
pub struct Scanner {
    secrets: Vec<Secret>,
}

impl Scanner {
    /// A random secret (key, signature, stream token, password): found whole or by any piece
    /// of [`PIECE`] characters.
    pub fn add(&mut self, what: impl Into<String>, value: impl Into<String>) {
        self.push(what.into(), value.into(), true);
    }

    /// A secret with well-known parts (a SAS token, a connection string): found whole only;
    /// add its random parts with [`Scanner::add`].
    pub fn add_whole(&mut self, what: impl Into<String>, value: impl Into<String>) {
        self.push(what.into(), value.into(), false);
    }

    fn push(&mut self, what: String, value: String, pieces: bool) {
        if !value.is_empty() {
            self.secrets.push(Secret {
                what,
                value,
                pieces,
            });
        }
    }

    /// This scanner without the secrets whose description starts with `prefix` (what a
    /// given file is meant to hold).
    pub fn without(&self, prefix: &str) -> Self {
        Self {
            secrets: self
                .secrets
                .iter()
                .filter(|s| !s.what.starts_with(prefix))
                .cloned()
                .collect(),
        }
    }

    /// Every secret found in `text`, as `"{source}: {what} ({form})"`.
    pub fn scan(&self, source: &str, text: &str) -> Vec<String> {
        let mut found = Vec::new();
        for s in &self.secrets {
            let json = serde_json::to_string(&s.value).unwrap_or_default();
            let json = json.trim_matches('"').to_string();
            let forms = [
                ("as is", s.value.clone()),
                ("percent-encoded", encode_component(&s.value)),
                ("JSON-escaped", json),
            ];
            let mut hit = forms
                .iter()
                .find(|(_, f)| text.contains(f.as_str()))
                .map(|(form, _)| form.to_string());
            if hit.is_none() && s.pieces {
                hit = forms.iter().find_map(|(form, f)| {
                    let chars: Vec<char> = f.chars().collect();
                    chars
                        .windows(PIECE)
                        .map(|w| w.iter().collect::<String>())
                        .find(|piece| text.contains(piece.as_str()))
                        .map(|piece| format!("{form}, the piece {piece:?}"))
                });
            }
            if let Some(form) = hit {
                found.push(format!("{source}: {} ({form})", s.what));
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "q2VEpr7hQ0cUl1k5a1v0cD6yZzl1b3ZxPbb3Y1hZb3U=";

    #[test]
    fn finds_planted_secrets_in_every_form() {
        let mut s = Scanner::default();
        s.add("device key", KEY);
        s.add_whole("SAS token", "SharedAccessSignature sr=h&sig=x&se=1");
        assert!(
            s.scan("clean", "nothing to see; SharedAccessSignature sr=")
                .is_empty()
        );
        for planted in [
            format!("warn: refused token {KEY}"),
            format!("sig={}", encode_component(KEY)),
            format!("{{\"reason\":{}}}", serde_json::json!(KEY)),
            format!("cut off: {}…(44 bytes)", &KEY[..PIECE + 3]),
            "record: SharedAccessSignature sr=h&sig=x&se=1".to_string(),
        ] {
            assert_eq!(s.scan("log", &planted).len(), 1, "{planted}");
        }
        assert!(s.without("device").scan("log", KEY).is_empty());
    }
}
