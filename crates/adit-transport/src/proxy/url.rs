//! A proxy URL as a user writes it: `http://[user[:password]@]host[:port][/]`. Parsed once,
//! shown only with its password replaced by `***`.

use std::fmt;

use base64::Engine as _;
use http::HeaderValue;
use percent_encoding::percent_decode_str;

use super::ProxyError;

/// Port of an `http://` proxy URL that names none (the scheme's default, as reqwest and most
/// HTTP clients assume; curl alone assumes 1080).
pub const DEFAULT_PORT: u16 = 80;

/// A validated `http://` proxy URL. `Display` and `Debug` never show the password.
#[derive(Clone)]
pub struct ProxyUrl {
    /// Host as written: a name, an IPv4 literal or a bracketed IPv6 literal.
    host: String,
    port: u16,
    /// `Proxy-Authorization: Basic ...` from the URL's user and password, marked sensitive.
    authorization: Option<HeaderValue>,
    /// `http://[user:***@]host:port`.
    shown: String,
}

impl ProxyUrl {
    /// Parses `raw`. A URL without a scheme is taken as `http://` (as curl does); any other
    /// scheme than `http` is refused with a message that says what to give instead. The user
    /// and password are percent-decoded (write `@` as `%40`, `:` in a user name as `%3A`).
    ///
    /// # Errors
    /// [`ProxyError::UnsupportedScheme`] or [`ProxyError::InvalidUrl`] (which shows the URL
    /// with its password replaced by `***`).
    pub fn parse(raw: &str) -> Result<Self, ProxyError> {
        let raw = raw.trim();
        let invalid = |reason: &'static str| ProxyError::InvalidUrl {
            url: redact(raw),
            reason,
        };
        if raw.is_empty() {
            return Err(invalid("it is empty"));
        }
        let rest = match raw.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
            Some((scheme, _)) => {
                return Err(ProxyError::UnsupportedScheme {
                    scheme: scheme.chars().take(16).collect::<String>().to_lowercase(),
                });
            }
            None => raw,
        };
        let (authority, path) = match rest.find(['/', '?', '#']) {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if !path.is_empty() && path != "/" {
            return Err(invalid("a proxy URL has no path or query"));
        }
        if authority
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(invalid("it contains spaces or control characters"));
        }
        let (userinfo, host_port) = match authority.split_once('@') {
            Some((_, hp)) if hp.contains('@') => {
                return Err(invalid(
                    "percent-encode '@' in the user name or password as %40",
                ));
            }
            Some((ui, hp)) => (Some(ui), hp),
            None => (None, authority),
        };
        let parsed: http::uri::Authority = host_port
            .parse()
            .map_err(|_| invalid("it has no valid host[:port]"))?;
        let host = parsed.host();
        if host.is_empty() {
            return Err(invalid("it names no host"));
        }
        // The text after the last ':' outside brackets, checked here: `Authority` takes any
        // digits, and `port_u16` reads a port past 65535 as no port at all.
        let port = match host_port.rfind(':') {
            Some(i) if !host_port[i..].contains(']') => host_port[i + 1..]
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| invalid("its port is not a number from 1 to 65535"))?,
            _ => DEFAULT_PORT,
        };
        let (authorization, shown_user) = match userinfo {
            None => (None, String::new()),
            Some(ui) => {
                let (user, password) = match ui.split_once(':') {
                    Some((u, p)) => (u, Some(p)),
                    None => (ui, None),
                };
                let decode = |s: &str| {
                    percent_decode_str(s)
                        .decode_utf8()
                        .map(|d| d.into_owned())
                        .map_err(|_| invalid("its user name or password is not UTF-8"))
                };
                let credentials = format!(
                    "{}:{}",
                    decode(user)?,
                    password.map(decode).transpose()?.unwrap_or_default()
                );
                let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
                let mut header = HeaderValue::from_str(&format!("Basic {encoded}"))
                    .map_err(|_| invalid("its credentials cannot be sent"))?;
                header.set_sensitive(true);
                let shown = match password {
                    Some(_) => format!("{user}:***@"),
                    None => format!("{user}@"),
                };
                (Some(header), shown)
            }
        };
        Ok(Self {
            host: host.to_string(),
            port,
            authorization,
            shown: format!("http://{shown_user}{host}:{port}"),
        })
    }

    /// The proxy's host as written (an IPv6 literal keeps its brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The proxy's port ([`DEFAULT_PORT`] when the URL names none).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://host:port`: the proxy's address without credentials.
    pub fn address(&self) -> String {
        format!("http://{}:{}", self.host, self.port)
    }

    /// The `Proxy-Authorization` value (`Basic base64(user:password)`, marked sensitive) when
    /// the URL carries a user.
    pub fn authorization(&self) -> Option<&HeaderValue> {
        self.authorization.as_ref()
    }
}

impl fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ProxyUrl").field(&self.shown).finish()
    }
}

/// `raw` with the password in its userinfo (if any) replaced by `***`, for error messages
/// about a URL that did not parse.
pub fn redact(raw: &str) -> String {
    let start = raw.find("://").map_or(0, |i| i + 3);
    let Some(at) = raw[start..].rfind('@').map(|i| start + i) else {
        return raw.to_string();
    };
    match raw[start..at].split_once(':') {
        Some((user, _password)) => format!("{}{user}:***{}", &raw[..start], &raw[at..]),
        None => raw.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(url: &ProxyUrl) -> Option<String> {
        url.authorization()
            .map(|h| h.to_str().expect("ascii").to_string())
    }

    #[test]
    fn parses_host_port_and_credentials() {
        let url = ProxyUrl::parse("http://alice:s3cret@proxy.example:3128").expect("valid");
        assert_eq!((url.host(), url.port()), ("proxy.example", 3128));
        assert_eq!(url.address(), "http://proxy.example:3128");
        // base64("alice:s3cret")
        assert_eq!(basic(&url).as_deref(), Some("Basic YWxpY2U6czNjcmV0"));
        assert!(url.authorization().is_some_and(HeaderValue::is_sensitive));
    }

    #[test]
    fn defaults_scheme_and_port_and_accepts_a_trailing_slash() {
        let url = ProxyUrl::parse("proxy.example").expect("valid");
        assert_eq!((url.host(), url.port()), ("proxy.example", DEFAULT_PORT));
        assert!(url.authorization().is_none());
        let url = ProxyUrl::parse(" HTTP://10.0.0.1:8080/ ").expect("valid");
        assert_eq!((url.host(), url.port()), ("10.0.0.1", 8080));
    }

    #[test]
    fn keeps_ipv6_literals_bracketed() {
        let url = ProxyUrl::parse("http://[::1]:3128").expect("valid");
        assert_eq!((url.host(), url.port()), ("[::1]", 3128));
        assert_eq!(url.to_string(), "http://[::1]:3128");
    }

    #[test]
    fn percent_decodes_user_and_password() {
        let url = ProxyUrl::parse("http://us%40er:p%3Ass%20w@proxy:1").expect("valid");
        // base64("us@er:p:ss w")
        assert_eq!(basic(&url).as_deref(), Some("Basic dXNAZXI6cDpzcyB3"));
        let url = ProxyUrl::parse("http://bob@proxy:1").expect("valid");
        // base64("bob:")
        assert_eq!(basic(&url).as_deref(), Some("Basic Ym9iOg=="));
        assert_eq!(url.to_string(), "http://bob@proxy:1");
    }

    #[test]
    fn never_shows_the_password() {
        let url = ProxyUrl::parse("http://alice:s3cret@proxy:3128").expect("valid");
        assert_eq!(url.to_string(), "http://alice:***@proxy:3128");
        assert!(!format!("{url:?}").contains("s3cret"));
        assert!(!format!("{:?}", url.authorization()).contains("YWxpY2U6czNjcmV0"));
        for bad in [
            "http://alice:s3cret@proxy:3128/path",
            "http://alice:s3c@ret@proxy:3128",
            "http://alice:s3cret@:3128",
            "http://alice:s3cret@proxy:99999",
            "http://alice:s3cret@pro xy:1",
            "http://alice:%FFs3cret@proxy:1",
        ] {
            let e = ProxyUrl::parse(bad).expect_err(bad).to_string();
            assert!(!e.contains("s3cret") && !e.contains("ret@"), "{bad}: {e}");
            assert!(e.contains("alice:***@"), "{bad}: {e}");
        }
    }

    #[test]
    fn refuses_other_schemes_saying_what_to_give() {
        for (raw, scheme) in [
            ("socks5://proxy:1080", "socks5"),
            ("socks5h://u:p@proxy:1080", "socks5h"),
            ("HTTPS://proxy:443", "https"),
            ("ftp://proxy", "ftp"),
        ] {
            let e = ProxyUrl::parse(raw).expect_err(raw);
            assert!(
                matches!(&e, ProxyError::UnsupportedScheme { scheme: s } if s == scheme),
                "{raw}: {e:?}"
            );
            assert!(e.to_string().contains("http://"), "{e}");
        }
    }

    #[test]
    fn refuses_malformed_urls_without_panicking() {
        for bad in [
            "",
            "   ",
            "http://",
            "http://:3128",
            "http://proxy:",
            "http://proxy:0",
            "http://proxy:port",
            "http://proxy/x",
            "http://proxy?q",
            "http://[::1",
            "http://a@b@c",
            "http://prox\ny:1",
            "://",
            "@",
            "http://@",
        ] {
            assert!(ProxyUrl::parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn redacts_what_it_cannot_parse() {
        assert_eq!(redact("http://u:pw@h:1/x"), "http://u:***@h:1/x");
        assert_eq!(redact("u:pw@h"), "u:***@h");
        assert_eq!(redact("http://u:p@w@h"), "http://u:***@h");
        assert_eq!(redact("http://h:1"), "http://h:1");
        assert_eq!(redact("http://u@h"), "http://u@h");
    }
}
