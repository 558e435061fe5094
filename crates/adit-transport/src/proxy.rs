//! HTTP CONNECT proxies for every outbound connection of Adit's clients.
//!
//! A client that may only reach the hub through a proxy opens its TCP connection to the proxy,
//! asks it with `CONNECT host:port` for a tunnel to the hub (the name as the client was given
//! it: only the proxy resolves it), and then runs TLS through that tunnel, so TLS stays end to
//! end between client and hub: the proxy sees the host and port, never the bytes. MQTT over
//! TLS, MQTT over WebSocket and the streams' gateway legs go through [`connect`]; the REST
//! calls go through reqwest's own proxy support, set from the same [`ProxyConfig`].
//!
//! Which proxy: a URL given explicitly ([`ProxyConfig::new`]) or, as curl reads them, the
//! first non-empty of `https_proxy`, `HTTPS_PROXY`, `all_proxy`, `ALL_PROXY`
//! ([`ProxyConfig::from_env`]; every connection is TLS, so `http_proxy` does not apply).
//! Hosts matching `no_proxy`/`NO_PROXY` (a comma list of host names, which also match their
//! subdomains, IP addresses, CIDR blocks, or `*`: curl's rules, as hyper-util implements
//! them) are reached directly. Only `http://` proxies are supported, with Basic
//! authentication from the URL's `user:password`.

mod tunnel;
mod url;

use std::fmt;
use std::io;
use std::net::Ipv6Addr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::client::proxy::matcher::Matcher;
use tokio::net::TcpStream;

pub use tunnel::MAX_ANSWER;
pub use url::{DEFAULT_PORT, ProxyUrl};

/// How long reaching the proxy and getting its answer to CONNECT may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// Variables naming the proxy, in the order they are read (curl's, for `https://` URLs).
pub const PROXY_VARS: [&str; 4] = ["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"];
/// Variables listing hosts reached directly, in the order they are read.
pub const NO_PROXY_VARS: [&str; 2] = ["no_proxy", "NO_PROXY"];

/// Why a proxy setting is unusable, or why the proxy did not open a tunnel. Every message
/// names the proxy with its password replaced by `***`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The proxy URL does not parse.
    #[error("invalid proxy URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL, password replaced by `***`.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Not an `http://` proxy (for example `socks5://` or `https://`).
    #[error(
        "{scheme}:// proxies are not supported: give an http:// proxy URL (the connection to the hub stays TLS end to end through it)"
    )]
    UnsupportedScheme {
        /// The scheme given.
        scheme: String,
    },
    /// An environment variable holds an unusable proxy setting.
    #[error("unusable proxy setting in ${var}")]
    Env {
        /// The variable.
        var: &'static str,
        /// What is wrong with it.
        #[source]
        source: Box<ProxyError>,
    },
    /// The host to tunnel to is not something a CONNECT request can carry.
    #[error("cannot ask a proxy for a tunnel to {host:?}: not a host name or IP address")]
    InvalidTarget {
        /// The host, as given.
        host: String,
    },
    /// The TCP connection to the proxy failed.
    #[error("cannot reach the proxy {proxy}")]
    Unreachable {
        /// The proxy (password hidden).
        proxy: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The connection to the proxy failed during the handshake.
    #[error("connection to the proxy {proxy} failed during CONNECT {target}")]
    Io {
        /// The proxy (password hidden).
        proxy: String,
        /// `host:port` asked for.
        target: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// 407 to a CONNECT without credentials.
    #[error("proxy {proxy} requires authentication: give user:password in the proxy URL")]
    AuthRequired {
        /// The proxy.
        proxy: String,
    },
    /// 407 (or 401) to a CONNECT with the URL's credentials.
    #[error("proxy {proxy} refused the user name or password in the proxy URL ({status}{})", spaced(.reason))]
    AuthRefused {
        /// The proxy (password hidden).
        proxy: String,
        /// HTTP status.
        status: u16,
        /// The proxy's reason phrase, escaped and bounded.
        reason: String,
    },
    /// Any other non-2xx answer (403 for a destination it forbids, 5xx when it cannot reach
    /// or resolve the hub...).
    #[error("proxy {proxy} refused CONNECT {target}: {status}{}", spaced(.reason))]
    Refused {
        /// The proxy (password hidden).
        proxy: String,
        /// `host:port` asked for.
        target: String,
        /// HTTP status.
        status: u16,
        /// The proxy's reason phrase, escaped and bounded.
        reason: String,
    },
    /// The answer is not HTTP, too long, cut short, or followed by unexpected bytes.
    #[error("proxy {proxy} gave a malformed answer to CONNECT {target}: {detail}")]
    Malformed {
        /// The proxy (password hidden).
        proxy: String,
        /// `host:port` asked for.
        target: String,
        /// What was wrong.
        detail: String,
    },
    /// No tunnel within [`HANDSHAKE_TIMEOUT`].
    #[error("proxy {proxy} did not open a tunnel to {target} within {} s", .timeout.as_secs())]
    Timeout {
        /// The proxy (password hidden).
        proxy: String,
        /// `host:port` asked for.
        target: String,
        /// The limit.
        timeout: Duration,
    },
}

fn spaced(reason: &str) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        format!(" {reason}")
    }
}

/// Which HTTP CONNECT proxy a client's connections go through, if any. Cheap to clone.
/// `Default` is [`ProxyConfig::direct`]. `Debug` hides the password.
#[derive(Clone, Default)]
pub struct ProxyConfig {
    via: Option<Arc<Via>>,
}

struct Via {
    url: ProxyUrl,
    no_proxy: String,
    /// hyper-util's matcher, for `NO_PROXY` with curl's rules.
    matcher: Matcher,
}

impl ProxyConfig {
    /// Every connection goes directly to its host.
    pub fn direct() -> Self {
        Self::default()
    }

    /// Every connection goes through the proxy at `url` (`http://[user:password@]host[:port]`).
    ///
    /// # Errors
    /// The URL is malformed or not `http://` ([`ProxyError::InvalidUrl`],
    /// [`ProxyError::UnsupportedScheme`]).
    pub fn new(url: &str) -> Result<Self, ProxyError> {
        let url = ProxyUrl::parse(url)?;
        Ok(Self::via(url, String::new()))
    }

    fn via(url: ProxyUrl, no_proxy: String) -> Self {
        let matcher = Matcher::builder()
            .https(url.address())
            .no(no_proxy.as_str())
            .build();
        Self {
            via: Some(Arc::new(Via {
                url,
                no_proxy,
                matcher,
            })),
        }
    }

    /// Hosts in `list` (`NO_PROXY`'s syntax: comma-separated names, which also match their
    /// subdomains, IP addresses, CIDR blocks, or `*` for all) are reached directly.
    pub fn with_no_proxy(self, list: &str) -> Self {
        match self.via {
            Some(via) => Self::via(via.url.clone(), list.trim().to_string()),
            None => self,
        }
    }

    /// [`ProxyConfig::with_no_proxy`] with `no_proxy` or `NO_PROXY` from the environment.
    pub fn with_no_proxy_from_env(self) -> Self {
        let list = first_set(&NO_PROXY_VARS, |v| std::env::var(v).ok())
            .map(|(_, list)| list)
            .unwrap_or_default();
        self.with_no_proxy(&list)
    }

    /// The proxy the environment names ([`PROXY_VARS`], first non-empty), with the hosts in
    /// [`NO_PROXY_VARS`] reached directly; [`ProxyConfig::direct`] when none is set.
    ///
    /// # Errors
    /// [`ProxyError::Env`]: the variable that is set holds an unusable URL.
    pub fn from_env() -> Result<Self, ProxyError> {
        Self::from_vars(|v| std::env::var(v).ok())
    }

    /// [`ProxyConfig::from_env`] with the variables read through `var`.
    fn from_vars(var: impl Fn(&'static str) -> Option<String>) -> Result<Self, ProxyError> {
        let Some((name, value)) = first_set(&PROXY_VARS, &var) else {
            return Ok(Self::direct());
        };
        let url = ProxyUrl::parse(&value).map_err(|e| ProxyError::Env {
            var: name,
            source: Box::new(e),
        })?;
        let no_proxy = first_set(&NO_PROXY_VARS, &var)
            .map(|(_, list)| list)
            .unwrap_or_default();
        Ok(Self::via(url, no_proxy))
    }

    /// The configured proxy, whatever the host.
    pub fn proxy(&self) -> Option<&ProxyUrl> {
        self.via.as_deref().map(|v| &v.url)
    }

    /// The proxy to reach `host` through (a name or an IP literal, bracketed or not), or `None`
    /// to connect directly (no proxy configured, or `host` matches the no-proxy list).
    pub fn proxy_for(&self, host: &str) -> Option<&ProxyUrl> {
        let via = self.via.as_deref()?;
        let bare = unbracket(host);
        let dst = if bare.parse::<Ipv6Addr>().is_ok() {
            format!("https://[{bare}]/")
        } else {
            format!("https://{bare}/")
        };
        match dst.parse::<http::Uri>() {
            Ok(uri) if via.matcher.intercept(&uri).is_none() => None,
            // A host no URI can hold is no host of the list: the CONNECT refuses it.
            _ => Some(&via.url),
        }
    }
}

impl fmt::Debug for ProxyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.via.as_deref() {
            None => f.write_str("ProxyConfig(direct)"),
            Some(via) => f
                .debug_struct("ProxyConfig")
                .field("proxy", &via.url)
                .field("no_proxy", &via.no_proxy)
                .finish(),
        }
    }
}

/// The first of `vars` set to something other than blanks, with its value.
fn first_set(
    vars: &[&'static str],
    var: impl Fn(&'static str) -> Option<String>,
) -> Option<(&'static str, String)> {
    vars.iter().find_map(|&name| {
        var(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .map(|v| (name, v))
    })
}

fn unbracket(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// `host:port` for a CONNECT request line (an IPv6 literal in brackets), if `host` can be
/// carried in one.
fn connect_target(host: &str, port: u16) -> Result<String, ProxyError> {
    let bare = unbracket(host);
    if bare.parse::<Ipv6Addr>().is_ok() {
        return Ok(format!("[{bare}]:{port}"));
    }
    // Brackets are for IPv6 literals only.
    let carried = bare == host
        && !bare.is_empty()
        && bare
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    if carried {
        Ok(format!("{bare}:{port}"))
    } else {
        Err(ProxyError::InvalidTarget {
            host: host.chars().take(256).collect(),
        })
    }
}

/// Connects to `host:port` (a name, or an IP literal, bracketed or not): through the proxy
/// that `proxy` names for `host`, else directly. Either way the socket has `TCP_NODELAY` and
/// keepalive ([`crate::tcp::connect`]). Through a proxy, `host` goes into the CONNECT request
/// as given, so only the proxy resolves it; the stream returned carries the tunnel, ready
/// for TLS to the host.
///
/// # Errors
/// Directly: as [`crate::tcp::connect`]. Through a proxy: an error of kind
/// [`io::ErrorKind::Other`] that wraps a [`ProxyError`] (reach it with `get_ref()` and
/// `downcast_ref`); its message names the proxy (password hidden) and, for a refusal, the
/// status.
pub async fn connect(proxy: &ProxyConfig, host: &str, port: u16) -> io::Result<TcpStream> {
    let Some(url) = proxy.proxy_for(host) else {
        return crate::tcp::connect((unbracket(host), port)).await;
    };
    tunnel(url, host, port).await.map_err(io::Error::other)
}

/// A tunnel through the proxy at `url` to `host:port` (as [`connect`] opens one, with the
/// proxy's failure as a typed error), within [`HANDSHAKE_TIMEOUT`].
///
/// # Errors
/// The host cannot go into a CONNECT request, the proxy cannot be reached, or it answered
/// other than 2xx, malformed, or not in time.
pub async fn tunnel(url: &ProxyUrl, host: &str, port: u16) -> Result<TcpStream, ProxyError> {
    let target = connect_target(host, port)?;
    let handshake = async {
        let mut tcp = crate::tcp::connect((unbracket(url.host()), url.port()))
            .await
            .map_err(|source| ProxyError::Unreachable {
                proxy: url.to_string(),
                source,
            })?;
        tunnel::handshake(&mut tcp, url, &target).await?;
        Ok(tcp)
    };
    tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake)
        .await
        .map_err(|_| ProxyError::Timeout {
            proxy: url.to_string(),
            target: target.clone(),
            timeout: HANDSHAKE_TIMEOUT,
        })?
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn from(vars: &[(&'static str, &str)]) -> Result<ProxyConfig, ProxyError> {
        let vars: HashMap<&str, String> = vars.iter().map(|(k, v)| (*k, v.to_string())).collect();
        ProxyConfig::from_vars(|name| vars.get(name).cloned())
    }

    fn shown(config: &ProxyConfig, host: &str) -> Option<String> {
        config.proxy_for(host).map(ToString::to_string)
    }

    #[test]
    fn reads_the_variables_in_curls_order() {
        assert!(from(&[]).expect("no vars").proxy().is_none());
        let c = from(&[
            ("HTTPS_PROXY", "http://upper:1"),
            ("https_proxy", "http://lower:1"),
        ])
        .expect("valid");
        assert_eq!(shown(&c, "hub").as_deref(), Some("http://lower:1"));
        let c = from(&[("ALL_PROXY", "all:2"), ("https_proxy", "  ")]).expect("valid");
        assert_eq!(shown(&c, "hub").as_deref(), Some("http://all:2"));
        let c = from(&[("all_proxy", "a:1"), ("HTTPS_PROXY", "h:1")]).expect("valid");
        assert_eq!(shown(&c, "hub").as_deref(), Some("http://h:1"));
        // Every connection is TLS: http_proxy is not one of ours.
        assert!(
            from(&[("http_proxy", "p:1")])
                .expect("valid")
                .proxy()
                .is_none()
        );
    }

    #[test]
    fn a_bad_variable_is_an_error_naming_it_without_its_password() {
        let e = from(&[("HTTPS_PROXY", "socks5://u:secret@p:1")]).expect_err("socks");
        let text = chain(&e);
        assert!(
            text.starts_with("unusable proxy setting in $HTTPS_PROXY: socks5://"),
            "{text}"
        );
        let e = from(&[("all_proxy", "http://u:secret@p:1/path")]).expect_err("path");
        let text = chain(&e);
        assert!(
            text.contains("$all_proxy") && text.contains("u:***@"),
            "{text}"
        );
        assert!(!text.contains("secret"), "{text}");
    }

    /// The error and its causes on one line, as the CLI prints them.
    fn chain(e: &(dyn std::error::Error + 'static)) -> String {
        let mut parts = vec![e.to_string()];
        let mut next = e.source();
        while let Some(cause) = next {
            parts.push(cause.to_string());
            next = cause.source();
        }
        parts.join(": ")
    }

    #[test]
    fn no_proxy_follows_curls_rules() {
        let c = from(&[
            ("https_proxy", "p:1"),
            (
                "NO_PROXY",
                "example.com, .internal,10.0.0.0/8, 192.168.1.7,::1",
            ),
        ])
        .expect("valid");
        for direct in [
            "example.com",
            "EXAMPLE.com",
            "hub.example.com",
            "a.b.internal",
            "internal",
            "10.1.2.3",
            "192.168.1.7",
            "::1",
            "[::1]",
        ] {
            assert_eq!(shown(&c, direct), None, "{direct} goes direct");
        }
        for proxied in [
            "notexample.com",
            "example.com.evil",
            "internalx",
            "11.0.0.1",
            "192.168.1.8",
            "[::2]",
            "hub.invalid",
        ] {
            assert!(
                shown(&c, proxied).is_some(),
                "{proxied} goes through the proxy"
            );
        }
        let all = from(&[("https_proxy", "p:1"), ("no_proxy", "*")]).expect("valid");
        assert_eq!(shown(&all, "anything"), None);
        // Lowercase first, as curl reads it.
        let c =
            from(&[("https_proxy", "p:1"), ("no_proxy", "a"), ("NO_PROXY", "b")]).expect("valid");
        assert_eq!(shown(&c, "a"), None);
        assert!(shown(&c, "b").is_some());
    }

    #[test]
    fn an_explicit_url_takes_no_proxy_only_when_told() {
        let c = ProxyConfig::new("http://p:1").expect("valid");
        assert!(shown(&c, "hub").is_some());
        let c = c.with_no_proxy("hub");
        assert_eq!(shown(&c, "hub"), None);
        assert!(shown(&c, "other").is_some());
        assert!(ProxyConfig::direct().with_no_proxy("x").proxy().is_none());
    }

    #[test]
    fn debug_hides_the_password() {
        let c = ProxyConfig::new("http://alice:s3cret@p:1")
            .expect("valid")
            .with_no_proxy("x");
        let debug = format!("{c:?}");
        assert!(
            debug.contains("alice:***@p:1") && !debug.contains("s3cret"),
            "{debug}"
        );
        assert_eq!(
            format!("{:?}", ProxyConfig::direct()),
            "ProxyConfig(direct)"
        );
    }

    #[test]
    fn connect_targets_carry_names_and_bracket_ipv6() {
        assert_eq!(
            connect_target("hub.invalid", 443).expect("name"),
            "hub.invalid:443"
        );
        assert_eq!(connect_target("::1", 8443).expect("v6"), "[::1]:8443");
        assert_eq!(connect_target("[fd00::1]", 1).expect("v6"), "[fd00::1]:1");
        assert_eq!(connect_target("10.0.0.1", 1).expect("v4"), "10.0.0.1:1");
        for bad in [
            "",
            "hub invalid",
            "hub\r\nX-Injected: 1",
            "user@hub",
            "hub:1",
            "[hub]",
            "hub/x",
        ] {
            assert!(
                matches!(
                    connect_target(bad, 1),
                    Err(ProxyError::InvalidTarget { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[tokio::test]
    async fn an_unreachable_proxy_is_named_in_the_error() {
        // A port nobody listens on: bind, note it, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        let config = ProxyConfig::new(&format!("http://u:pw@127.0.0.1:{port}")).expect("valid");
        let e = connect(&config, "hub.invalid", 443)
            .await
            .expect_err("refused");
        let inner = e
            .get_ref()
            .and_then(|e| e.downcast_ref::<ProxyError>())
            .expect("a ProxyError inside");
        assert!(matches!(inner, ProxyError::Unreachable { .. }), "{inner:?}");
        assert_eq!(
            e.to_string(),
            format!("cannot reach the proxy http://u:***@127.0.0.1:{port}")
        );
    }

    #[tokio::test]
    async fn a_host_in_no_proxy_is_dialled_directly() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        // The proxy does not exist: reaching the listener proves it was not used.
        let config = ProxyConfig::new("http://127.0.0.1:1")
            .expect("valid")
            .with_no_proxy("127.0.0.1");
        let (tcp, accepted) = tokio::join!(connect(&config, "127.0.0.1", port), listener.accept());
        tcp.expect("direct connection");
        accepted.expect("accepted");
    }
}
