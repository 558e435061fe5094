//! Hosts and ports as connection strings and URLs write them, IPv6 literals included.
//!
//! `HostName` and `GatewayHostName` are `host` or `host:port`, where `host` is a DNS name, an
//! IPv4 address, or an IPv6 address in brackets (`[::1]`, `[::1]:8443`), as in URLs (RFC 3986
//! section 3.2.2).
//!
//! How Adit keeps them: a [`HostPort`] holds the **bare** host (an IPv6 address without
//! brackets), which is what sockets, TLS server names (`rustls` `ServerName::IpAddress`) and
//! certificate SANs take. Everything that joins a host to a port or puts it into a URL uses
//! [`HostPort::authority`] (its `Display`) or [`url_host`], which add the brackets back. So
//! `HostName=[::1]:8443` is read as host `::1`, port 8443, and written back (connection
//! strings, SAS resource URIs, MQTT usernames, URLs, `Host` headers) as `[::1]:8443`.
//!
//! An IPv6 address without brackets is refused where a port may follow: `::1:8443` is both a
//! valid address and `::1` with port 8443, so the error says which bracketed form to write.

use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

/// Longest DNS name accepted (RFC 1035).
const MAX_NAME_LEN: usize = 253;

/// Why a host (with an optional port) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// Neither a DNS name, an IPv4 address nor a bracketed IPv6 address.
    #[error("{0:?} is not a host name, IPv4 address or [IPv6 address], with an optional :port")]
    Invalid(String),
    /// An IPv6 address written without brackets where a port may follow.
    #[error("{value:?} is an IPv6 address without brackets: write {hint}")]
    Ipv6WithoutBrackets {
        /// What was given.
        value: String,
        /// The bracketed form(s) to write instead.
        hint: String,
    },
    /// The port is not a number from 1 to 65535.
    #[error("{0:?} has an invalid port (1 to 65535)")]
    BadPort(String),
}

/// A host (bare: IPv6 without brackets) and an optional port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    host: String,
    port: Option<u16>,
}

impl HostPort {
    /// Parses `host`, `host:port`, `[ipv6]` or `[ipv6]:port`.
    ///
    /// # Errors
    /// [`HostError`]; an unbracketed IPv6 address is refused with the form to write.
    pub fn parse(value: &str) -> Result<Self, HostError> {
        let invalid = || HostError::Invalid(value.to_string());
        if let Some(rest) = value.strip_prefix('[') {
            let (inside, after) = rest.split_once(']').ok_or_else(invalid)?;
            inside.parse::<Ipv6Addr>().map_err(|_| invalid())?;
            let port = match after {
                "" => None,
                p => Some(parse_port(p.strip_prefix(':').ok_or_else(invalid)?, value)?),
            };
            return Ok(Self {
                host: inside.to_string(),
                port,
            });
        }
        if value.matches(':').count() > 1 {
            return Err(unbracketed(value));
        }
        let (host, port) = match value.split_once(':') {
            Some((h, p)) => (h, Some(parse_port(p, value)?)),
            None => (value, None),
        };
        if !is_dns_name_or_ipv4(host) {
            return Err(invalid());
        }
        Ok(Self {
            host: host.to_string(),
            port,
        })
    }

    /// Parses a host without a port: a DNS name, an IPv4 address, or an IPv6 address with or
    /// without brackets (with no port to follow, `::1` is unambiguous). For `--hostname`.
    ///
    /// # Errors
    /// [`HostError::Invalid`].
    pub fn parse_host(value: &str) -> Result<Self, HostError> {
        let invalid = || HostError::Invalid(value.to_string());
        let inner = unbracket(value);
        if inner.parse::<Ipv6Addr>().is_ok() {
            return Ok(Self {
                host: inner.to_string(),
                port: None,
            });
        }
        if inner != value || !is_dns_name_or_ipv4(value) {
            return Err(invalid());
        }
        Ok(Self {
            host: value.to_string(),
            port: None,
        })
    }

    /// A host and port taken as they are: `host` may be bare or bracketed (brackets are
    /// dropped). Not validated: for values that were validated already.
    pub fn new(host: &str, port: Option<u16>) -> Self {
        Self {
            host: unbracket(host).to_string(),
            port,
        }
    }

    /// The bare host: a DNS name, an IPv4 address, or an IPv6 address without brackets. What
    /// to resolve, connect to, and name in TLS.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, if one was written.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The port, or `default` when none was written.
    pub fn port_or(&self, default: u16) -> u16 {
        self.port.unwrap_or(default)
    }

    /// The host as a URL or `Host` header writes it: IPv6 in brackets.
    pub fn url_host(&self) -> Cow<'_, str> {
        url_host(&self.host)
    }

    /// `host` or `host:port`, IPv6 in brackets: how connection strings, SAS resource URIs
    /// and URLs write it.
    pub fn authority(&self) -> String {
        self.to_string()
    }

    /// True when both name the same host: DNS names compared without case, IP addresses as
    /// addresses. Ports are not compared.
    pub fn same_host(&self, other: &str) -> bool {
        hosts_match(&self.host, other)
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url_host())?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

/// `host` as a URL writes it: an IPv6 address gets brackets, anything else is unchanged.
pub fn url_host(host: &str) -> Cow<'_, str> {
    if host.contains(':') && !host.starts_with('[') {
        Cow::Owned(format!("[{host}]"))
    } else {
        Cow::Borrowed(host)
    }
}

/// `host` without the brackets a URL puts around an IPv6 address.
pub fn unbracket(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// True when `a` and `b` name the same host: IP addresses (with or without brackets) compared
/// as addresses, so `::1` matches `[0:0:0:0:0:0:0:1]`; names compared without case.
pub fn hosts_match(a: &str, b: &str) -> bool {
    let (a, b) = (unbracket(a), unbracket(b));
    match (a.parse::<IpAddr>(), b.parse::<IpAddr>()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a.eq_ignore_ascii_case(b),
    }
}

/// Splits an authority as an audience or a URL carries it into host and port text,
/// leniently: `[v6]:port`, `[v6]`, `host:port`, `host`, and an unbracketed IPv6 address
/// (Python's device SDK signs `::1/devices/...` for `HostName=::1`). The host is returned
/// bare.
pub fn split_authority(authority: &str) -> (&str, Option<&str>) {
    if let Some((inside, after)) = authority
        .strip_prefix('[')
        .and_then(|rest| rest.split_once(']'))
    {
        return (inside, after.strip_prefix(':'));
    }
    if authority.parse::<Ipv6Addr>().is_ok() {
        return (authority, None);
    }
    match authority.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => (h, Some(p)),
        _ => (authority, None),
    }
}

fn parse_port(p: &str, value: &str) -> Result<u16, HostError> {
    let bad = || HostError::BadPort(value.to_string());
    if p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    match p.parse::<u16>() {
        Ok(0) | Err(_) => Err(bad()),
        Ok(port) => Ok(port),
    }
}

fn is_dns_name_or_ipv4(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= MAX_NAME_LEN
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

/// The error for an IPv6 address written without brackets, with the forms to write.
fn unbracketed(value: &str) -> HostError {
    let with_port = value.rsplit_once(':').and_then(|(addr, port)| {
        let is_port = !port.is_empty()
            && port.len() <= 5
            && port.chars().all(|c| c.is_ascii_digit())
            && port.parse::<u16>().is_ok_and(|p| p > 0);
        // `::` (no host at all) followed by a port is not a reading anyone means.
        let is_host = addr.parse::<Ipv6Addr>().is_ok_and(|a| !a.is_unspecified());
        (is_port && is_host).then(|| format!("[{addr}]:{port}"))
    });
    let whole = value
        .parse::<Ipv6Addr>()
        .is_ok()
        .then(|| format!("[{value}]"));
    let hint = match (with_port, whole) {
        (Some(p), Some(w)) => format!("{p} (address and port) or {w} (address only)"),
        (Some(p), None) => p,
        (None, Some(w)) => format!("{w} or {w}:PORT"),
        (None, None) => return HostError::Invalid(value.to_string()),
    };
    HostError::Ipv6WithoutBrackets {
        value: value.to_string(),
        hint,
    }
}

#[cfg(test)]
mod tests;
