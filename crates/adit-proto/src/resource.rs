//! Resource URIs, audience matching and the percent-encoding of ids in URLs.
//!
//! A SAS token's `sr` names what it grants access to: `{host}` for a whole hub (policy tokens)
//! or `{host}/devices/{id}` (and `/modules/{mid}`) for one identity. SDKs encode `sr`
//! differently: the C SDK not at all (`"%s.%s/devices/%s"`), Python (`quote(uri, safe="")`)
//! and Node (`encodeUriComponentStrict`) once, C# twice for the id (`WebUtility.UrlEncode` of
//! the id, then of the whole URI). Ids may hold `%`, so whether a segment is still encoded is
//! ambiguous; the audience therefore keeps two readings, the `sr` as sent (when its `/` are
//! raw, as C sends it) and the `sr` decoded once, and each path segment of the decoded reading
//! is compared both as-is and decoded once more. Comparing against the known identity
//! resolves the ambiguity.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use crate::host::{hosts_match, split_authority};

/// Characters left as-is when Adit encodes a component: RFC 3986 unreserved ones, as Python's
/// `quote(s, safe="")` and JavaScript's `encodeURIComponent` leave them. Every other byte of an
/// id (`? % ' ( ) * ! , : = @ $`, and `+ # ;` of older ids) is percent-encoded, so an id is one
/// URL path segment however it is spelled.
pub const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes every byte outside the unreserved set, with uppercase hex: how Adit puts an
/// id in a URL path (`/devices/{id}`, `/twins/{id}/...`) and a resource URI in `sr`.
pub fn encode_component(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT).to_string()
}

/// Percent-decodes without turning `+` into a space (a raw `+` in a signature is base64).
/// `None` if the result is not UTF-8. A `%` not followed by two hex digits stays as it is.
pub fn decode_component(s: &str) -> Option<String> {
    percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

/// The resource URI of a device identity, or of a module when `module` is given, unencoded:
/// `{host}/devices/{device}[/modules/{module}]`. [`crate::SasToken::sign`] encodes it.
pub fn identity_uri(host_name: &str, device: &str, module: Option<&str>) -> String {
    match module {
        Some(m) => format!("{host_name}/devices/{device}/modules/{m}"),
        None => format!("{host_name}/devices/{device}"),
    }
}

/// One way of reading an `sr`: host (lowercase, port and IPv6 brackets removed) and path
/// segments.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reading {
    host: String,
    segments: Vec<String>,
}

impl Reading {
    fn of(uri: &str) -> Option<Self> {
        let uri = uri.trim_end_matches('/');
        let uri = uri
            .strip_prefix("https://")
            .or_else(|| uri.strip_prefix("http://"))
            .unwrap_or(uri);
        let mut parts = uri.split('/');
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
}

/// A token's audience: its `sr` decoded once, and as sent when that names a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audience {
    /// `sr` decoded once (absent when that is not UTF-8, e.g. a raw id holding `%FF`).
    decoded: Option<Reading>,
    /// `sr` as sent, when it holds a raw `/` (the C SDK's unencoded form).
    raw: Option<Reading>,
}

impl Audience {
    /// Reads the raw `sr` of a token. `None` if neither reading names a host.
    pub fn from_sr(raw_sr: &str) -> Option<Self> {
        let decoded = decode_component(raw_sr).and_then(|d| Reading::of(&d));
        let raw = raw_sr.contains('/').then(|| Reading::of(raw_sr)).flatten();
        if decoded.is_none() && raw.is_none() {
            return None;
        }
        Some(Self { decoded, raw })
    }

    fn readings(&self) -> impl Iterator<Item = &Reading> {
        self.decoded.iter().chain(self.raw.iter())
    }

    /// The host the token was made for, lowercase, without a port, an IPv6 address without
    /// brackets.
    pub fn host(&self) -> &str {
        self.readings().next().map_or("", |r| r.host.as_str())
    }

    /// True when the audience names one of `hosts` (names compared case-insensitively, IP
    /// addresses as addresses, ports ignored).
    pub fn is_for_host<'a>(&self, mut hosts: impl Iterator<Item = &'a str>) -> bool {
        let host = self.host();
        hosts.any(|h| hosts_match(h, host))
    }

    /// True when the audience is a per-segment prefix of `target` (path segments below the
    /// host), as Azure authorizes: `devices/a` covers `devices/a/modules/m` but not
    /// `devices/ab`. An empty audience path covers everything on the host.
    pub fn covers(&self, target: &[&str]) -> bool {
        self.names(target, false)
    }

    /// True when the audience names exactly this identity (`devices/{id}` or
    /// `devices/{id}/modules/{m}`), not a prefix of it.
    pub fn is_identity(&self, device: &str, module: Option<&str>) -> bool {
        let target: Vec<&str> = match module {
            Some(m) => vec!["devices", device, "modules", m],
            None => vec!["devices", device],
        };
        self.names(&target, true)
    }

    /// Whether a reading's path is `target` (`exact`) or a prefix of it. In the decoded
    /// reading a segment may still be encoded once (C#'s double encoding); the raw reading is
    /// compared as sent. Case-insensitive, as Azure compares audiences.
    fn names(&self, target: &[&str], exact: bool) -> bool {
        let fits = |r: &Reading| {
            if exact {
                r.segments.len() == target.len()
            } else {
                r.segments.len() <= target.len()
            }
        };
        let decoded = self.decoded.as_ref().is_some_and(|r| {
            fits(r)
                && r.segments.iter().zip(target).all(|(seg, want)| {
                    seg.eq_ignore_ascii_case(want)
                        || decode_component(seg).is_some_and(|d| d.eq_ignore_ascii_case(want))
                })
        });
        let raw = self.raw.as_ref().is_some_and(|r| {
            fits(r)
                && r.segments
                    .iter()
                    .zip(target)
                    .all(|(seg, want)| seg.eq_ignore_ascii_case(want))
        });
        decoded || raw
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod unit_tests {
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
    fn a_raw_sr_is_read_as_sent() {
        // The C SDK does not encode: an id holding '%' must not be decoded away.
        let a = Audience::from_sr("hub.local/devices/a%41").expect("reads");
        assert!(a.is_identity("a%41", None));
        let a = Audience::from_sr("hub.local/devices/a%FF").expect("reads although not UTF-8");
        assert!(a.is_identity("a%FF", None));
        assert!(!a.is_identity("a", None));
        let a = Audience::from_sr("hub.local/devices/sensor?1").expect("reads");
        assert!(a.is_identity("sensor?1", None));
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
