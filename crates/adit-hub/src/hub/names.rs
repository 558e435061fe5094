//! The names the hub goes by: `--hostname` (its identity in connection strings and token
//! audiences), the public HTTPS endpoint (`--public-url`, handed out in stream URLs and
//! discovery) and every name its dev certificate and audience check cover.
//!
//! Hosts are kept bare (an IPv6 address without brackets) and written through
//! [`HostPort`], which brackets IPv6 literals (`wss://[::1]:8443`).

use adit_proto::HostPort;
use adit_proto::host::hosts_match;

use crate::config::HubConfig;
use crate::hub::HubError;

/// Names every hub answers to besides its own: loopback in each spelling, so local clients
/// always work.
const LOOPBACK_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// How the hub is addressed.
#[derive(Debug, Clone)]
pub(crate) struct HubNames {
    /// `--hostname`, bare: what connection strings name (`HostName=`).
    pub hostname: String,
    /// Where clients reach the HTTPS port: `--public-url`, else `--hostname` and the bound
    /// port. Always has a port.
    pub public: HostPort,
    /// Every name the certificate covers and token audiences may name: the hostname, the
    /// public host, and loopback.
    pub all: Vec<String>,
}

impl HubNames {
    /// Validates `--hostname` and `--public-url` and derives the rest.
    pub fn new(config: &HubConfig, https_port: u16) -> Result<Self, HubError> {
        let hostname = HostPort::parse_host(&config.hostname)
            .map_err(|e| HubError::Config(format!("--hostname {e}")))?
            .host()
            .to_string();
        let public = match &config.public_url {
            Some(url) => parse_public_url(url)?,
            None => HostPort::new(&hostname, Some(https_port)),
        };
        let mut all = vec![hostname.clone()];
        for extra in std::iter::once(public.host()).chain(LOOPBACK_NAMES) {
            if !all.iter().any(|n| hosts_match(n, extra)) {
                all.push(extra.to_string());
            }
        }
        Ok(Self {
            hostname,
            public,
            all,
        })
    }

    /// `https://{public}`: the streaming endpoint discovery reports.
    pub fn https_url(&self) -> String {
        format!("https://{}", self.public)
    }

    /// `wss://{public}`: the base of the gateway URLs handed to devices and services.
    pub fn wss_url(&self) -> String {
        format!("wss://{}", self.public)
    }
}

/// `https://host[:port]` with nothing after it; an IPv6 host in brackets.
fn parse_public_url(url: &str) -> Result<HostPort, HubError> {
    let bad = || {
        HubError::Config(format!(
            "--public-url {url:?} must look like https://host[:port] (an IPv6 address in brackets: https://[::1]:8443)"
        ))
    };
    let uri: http::Uri = url.parse().map_err(|_| bad())?;
    if uri.scheme_str() != Some("https")
        || !uri.path().trim_matches('/').is_empty()
        || uri.query().is_some()
    {
        return Err(bad());
    }
    // http keeps an IPv6 host's brackets; the bare address is checked like --hostname.
    let host = HostPort::parse_host(uri.host().ok_or_else(bad)?).map_err(|_| bad())?;
    Ok(HostPort::new(
        host.host(),
        Some(uri.port_u16().unwrap_or(443)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(hostname: &str, public_url: Option<&str>) -> Result<HubNames, HubError> {
        let mut config = HubConfig::new("unused");
        config.hostname = hostname.to_string();
        config.public_url = public_url.map(str::to_string);
        HubNames::new(&config, 8443)
    }

    #[test]
    fn ipv6_hostname_is_bare_and_urls_bracket_it() {
        for given in ["::1", "[::1]"] {
            let n = names(given, None).expect("valid");
            assert_eq!(n.hostname, "::1");
            assert_eq!(n.wss_url(), "wss://[::1]:8443");
            assert_eq!(n.https_url(), "https://[::1]:8443");
            assert_eq!(n.all, ["::1", "localhost", "127.0.0.1"]);
        }
    }

    #[test]
    fn public_url_host_is_covered_and_keeps_its_brackets_in_urls() {
        let n = names("localhost", Some("https://[2001:db8::1]:9443")).expect("valid");
        assert_eq!(n.public.host(), "2001:db8::1");
        assert_eq!(n.wss_url(), "wss://[2001:db8::1]:9443");
        assert_eq!(n.all, ["localhost", "2001:db8::1", "127.0.0.1", "::1"]);
        let n = names("hub.invalid", Some("https://localhost")).expect("valid");
        assert_eq!(n.https_url(), "https://localhost:443");
        assert_eq!(n.all, ["hub.invalid", "localhost", "127.0.0.1", "::1"]);
    }

    #[test]
    fn refuses_what_clients_could_not_use() {
        for (hostname, url) in [
            ("hub:8443", None),
            ("a b", None),
            ("localhost", Some("http://hub")),
            ("localhost", Some("https://hub/path")),
            ("localhost", Some("https://[::1")),
        ] {
            assert!(
                matches!(names(hostname, url), Err(HubError::Config(_))),
                "{hostname} {url:?}"
            );
        }
    }
}
