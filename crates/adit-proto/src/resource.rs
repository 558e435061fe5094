//! Resource URIs and audience matching.
//!
//! A SAS token's `sr` names what it grants access to: `{host}` for a whole hub (policy tokens)
//! or `{host}/devices/{id}` (and `/modules/{mid}`) for one identity. SDKs encode `sr`
//! differently (C not at all, Python and Node once, C# twice for the id), so the audience is
//! decoded once and each path segment is compared both as-is and once more decoded.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use crate::host::{hosts_match, split_authority};

/// Characters left as-is when Adit encodes a component: RFC 3986 unreserved ones, as Python's
/// `quote(s, safe="")` and JavaScript's `encodeURIComponent` leave them.
pub const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes every byte outside the unreserved set, with uppercase hex.
pub fn encode_component(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT).to_string()
}

/// Percent-decodes without turning `+` into a space (a raw `+` in a signature is base64).
pub fn decode_component(s: &str) -> Option<String> {
    percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

/// The resource URI of a device identity, or of a module when `module` is given.
pub fn identity_uri(host_name: &str, device: &str, module: Option<&str>) -> String {
    match module {
        Some(m) => format!("{host_name}/devices/{device}/modules/{m}"),
        None => format!("{host_name}/devices/{device}"),
    }
}

/// A decoded audience: host (lowercase, port and IPv6 brackets removed) and path segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audience {
    host: String,
    segments: Vec<String>,
}

impl Audience {
    /// Decodes the raw `sr` of a token. `None` if it is not valid percent-encoded UTF-8.
    pub fn from_sr(raw_sr: &str) -> Option<Self> {
        let decoded = decode_component(raw_sr)?;
        let decoded = decoded.trim_end_matches('/');
        let decoded = decoded
            .strip_prefix("https://")
            .or_else(|| decoded.strip_prefix("http://"))
            .unwrap_or(decoded);
        let mut parts = decoded.split('/');
        let host_port = parts.next().filter(|h| !h.is_empty())?;
        let (host, _port) = split_authority(host_port);
        if host.is_empty() {
            return None;
        }
        Some(Self {
            host: host.to_ascii_lowercase(),
            segments: parts.map(str::to_string).collect(),
        })
    }

    /// The host the token was made for, lowercase, without a port, an IPv6 address without
    /// brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// True when the audience names one of `hosts` (names compared case-insensitively, IP
    /// addresses as addresses, ports ignored).
    pub fn is_for_host<'a>(&self, mut hosts: impl Iterator<Item = &'a str>) -> bool {
        hosts.any(|h| hosts_match(h, &self.host))
    }

    /// True when the audience is a per-segment prefix of `target` (path segments below the
    /// host), as Azure authorizes: `devices/a` covers `devices/a/modules/m` but not
    /// `devices/ab`. An empty audience path covers everything on the host.
    pub fn covers(&self, target: &[&str]) -> bool {
        if self.segments.len() > target.len() {
            return false;
        }
        self.segments.iter().zip(target).all(|(seg, want)| {
            seg.eq_ignore_ascii_case(want)
                || decode_component(seg).is_some_and(|d| d.eq_ignore_ascii_case(want))
        })
    }

    /// True when the audience names exactly this identity (`devices/{id}` or
    /// `devices/{id}/modules/{m}`), not a prefix of it. Ids may contain `%`, so whether a
    /// segment is still encoded is ambiguous; comparing against the known id resolves it.
    pub fn is_identity(&self, device: &str, module: Option<&str>) -> bool {
        let target: Vec<&str> = match module {
            Some(m) => vec!["devices", device, "modules", m],
            None => vec!["devices", device],
        };
        self.segments.len() == target.len() && self.covers(&target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_each_sdk_form() {
        // C: raw; Python/Node: encoded once; C#: whole URI encoded, id encoded twice.
        for sr in [
            "hub.local:8443/devices/a+b",
            "hub.local%3A8443%2Fdevices%2Fa%2Bb",
            "HUB.local%3A8443%2Fdevices%2Fa%252Bb",
        ] {
            let a = Audience::from_sr(sr).expect("decodes");
            assert_eq!(a.host(), "hub.local");
            assert!(a.covers(&["devices", "a+b"]), "{sr}");
            assert!(a.is_identity("a+b", None));
            assert!(!a.is_identity("a+b", Some("m")));
        }
    }

    #[test]
    fn prefix_is_per_segment() {
        let a = Audience::from_sr("h/devices/a").expect("decodes");
        assert!(a.covers(&["devices", "a", "modules", "m"]));
        assert!(!a.covers(&["devices", "ab"]));
        assert!(!a.covers(&["devices"]));
        let hub = Audience::from_sr("h").expect("decodes");
        assert!(hub.covers(&["devices", "anything"]));
        assert!(hub.is_for_host(["x", "H"].into_iter()));
        assert!(!hub.is_for_host(["x"].into_iter()));
        assert!(!hub.is_identity("anything", None));
        assert!(!a.is_identity("a", Some("m")));
    }

    #[test]
    fn ipv6_audiences_in_every_form_name_the_address() {
        // Adit and Python (HostName=[::1]:8443, encoded once), C (raw), and Python's
        // unbracketed HostName=::1.
        for sr in [
            "%5B%3A%3A1%5D%3A8443%2Fdevices%2Fd",
            "[::1]:8443/devices/d",
            "[::1]/devices/d",
            "::1/devices/d",
        ] {
            let a = Audience::from_sr(sr).expect("decodes");
            assert_eq!(a.host(), "::1", "{sr}");
            assert!(a.is_identity("d", None), "{sr}");
            assert!(a.is_for_host(["localhost", "::1"].into_iter()), "{sr}");
            assert!(a.is_for_host(["0:0:0:0:0:0:0:1"].into_iter()), "{sr}");
            assert!(!a.is_for_host(["127.0.0.1"].into_iter()), "{sr}");
        }
        assert_eq!(Audience::from_sr("[]:1/devices/d"), None);
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(Audience::from_sr(""), None);
        assert_eq!(Audience::from_sr("%FF%FE"), None);
        assert_eq!(Audience::from_sr("/devices/x"), None);
    }

    #[test]
    fn encodes_like_python_quote() {
        assert_eq!(
            encode_component("h:1/devices/a+b c~"),
            "h%3A1%2Fdevices%2Fa%2Bb%20c~"
        );
    }
}
