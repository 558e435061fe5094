//! Where the device connects, and who it says it is.
//!
//! As in Azure's device SDKs (C, C#, Java, Node, Python), `GatewayHostName` is what the device
//! dials and what TLS verifies, while `HostName` stays the hub's identity: the SAS token's
//! resource URI (`sr={HostName}/devices/{id}`) and the MQTT username
//! (`{HostName}/{clientId}/?...`) name it whatever is dialled.
//!
//! Ports: a port written in either name is the hub's HTTPS port there (MQTT over WebSocket);
//! without one it is 443. MQTT over TLS uses [`crate::DeviceOptions::mqtt_port`] on the same
//! host.
//!
//! Stream legs: the hub hands out gateway URLs built from its `--public-url` (by default
//! `https://{--hostname}:{HTTPS port}`). A URL that names the hub exactly as `HostName` does
//! (same host and port) is dialled at `GatewayHostName` instead, keeping its path, since
//! `HostName` is then not a name this device reaches; any other URL (an explicit
//! `--public-url`) is dialled as given, as Azure's SDKs dial the streaming endpoint they are
//! given.

use std::borrow::Cow;

use adit_proto::{ConnectionString, HostPort};

use crate::Transport;

/// The device's hub identity and dial address.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    hub: HostPort,
    dial: HostPort,
    gateway: bool,
}

impl Endpoint {
    pub fn new(cs: &ConnectionString) -> Self {
        Self {
            hub: cs.hub(),
            dial: cs.dial(),
            gateway: cs.gateway_host.is_some(),
        }
    }

    /// `HostName` as written (IPv6 in brackets): token audience and MQTT username.
    pub fn identity(&self) -> String {
        self.hub.authority()
    }

    /// The bare host to connect to and to verify in TLS.
    pub fn dial_host(&self) -> &str {
        self.dial.host()
    }

    /// The HTTPS port at the dial host (MQTT over WebSocket).
    pub fn https_port(&self) -> u16 {
        self.dial.port_or(443)
    }

    /// The port a session over `transport` connects to.
    pub fn port(&self, transport: Transport, mqtt_port: u16) -> u16 {
        match transport {
            Transport::WebSocket => self.https_port(),
            Transport::Tls => mqtt_port,
        }
    }

    /// `host:port` (IPv6 in brackets) that a session over `transport` connects to.
    pub fn address(&self, transport: Transport, mqtt_port: u16) -> String {
        HostPort::new(self.dial.host(), Some(self.port(transport, mqtt_port))).authority()
    }

    /// The MQTT-over-WebSocket URL at the dial address.
    pub fn websocket_url(&self) -> String {
        format!(
            "wss://{}/$iothub/websocket",
            self.address(Transport::WebSocket, 0)
        )
    }

    /// The gateway URL to dial for a stream the hub offered at `url`: at `GatewayHostName`
    /// when `url` names the hub's `HostName` (host and port), else `url` itself.
    pub fn stream_url<'a>(&self, url: &'a str) -> Cow<'a, str> {
        if !self.gateway {
            return Cow::Borrowed(url);
        }
        let Ok(uri) = url.parse::<http::Uri>() else {
            return Cow::Borrowed(url);
        };
        let names_hub = uri.scheme_str() == Some("wss")
            && uri.host().is_some_and(|h| self.hub.same_host(h))
            && uri.port_u16().unwrap_or(443) == self.hub.port_or(443);
        if !names_hub {
            return Cow::Borrowed(url);
        }
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        Cow::Owned(format!(
            "wss://{}{path}",
            HostPort::new(self.dial.host(), Some(self.https_port()))
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    fn endpoint(names: &str) -> Endpoint {
        let cs: ConnectionString = format!("{names};DeviceId=d;SharedAccessKey={KEY}")
            .parse()
            .expect("valid");
        Endpoint::new(&cs)
    }

    #[test]
    fn without_a_gateway_the_hub_is_dialled() {
        let e = endpoint("HostName=[::1]:8443");
        assert_eq!(e.identity(), "[::1]:8443");
        assert_eq!(e.dial_host(), "::1");
        assert_eq!(e.address(Transport::WebSocket, 8883), "[::1]:8443");
        assert_eq!(e.address(Transport::Tls, 8883), "[::1]:8883");
        assert_eq!(e.websocket_url(), "wss://[::1]:8443/$iothub/websocket");
        let url = "wss://[::1]:8443/bridges/s/device";
        assert!(matches!(e.stream_url(url), Cow::Borrowed(u) if u == url));
    }

    #[test]
    fn a_gateway_is_dialled_and_the_hub_stays_the_identity() {
        let e = endpoint("HostName=hub.invalid;GatewayHostName=localhost:9443");
        assert_eq!(e.identity(), "hub.invalid");
        assert_eq!(e.dial_host(), "localhost");
        assert_eq!(e.address(Transport::WebSocket, 8883), "localhost:9443");
        assert_eq!(e.address(Transport::Tls, 8883), "localhost:8883");
        assert_eq!(e.websocket_url(), "wss://localhost:9443/$iothub/websocket");
        let e = endpoint("HostName=hub.invalid:8443;GatewayHostName=[::1]");
        assert_eq!(e.identity(), "hub.invalid:8443");
        assert_eq!(e.address(Transport::WebSocket, 8883), "[::1]:443");
    }

    #[test]
    fn stream_urls_naming_the_hub_go_to_the_gateway() {
        let e = endpoint("HostName=Hub.Invalid:8443;GatewayHostName=[::1]:9443");
        assert_eq!(
            e.stream_url("wss://hub.invalid:8443/bridges/abc/device"),
            "wss://[::1]:9443/bridges/abc/device"
        );
        // Another host, or the hub's name on another port: an explicit --public-url.
        for url in [
            "wss://localhost:8443/bridges/abc/device",
            "wss://hub.invalid:443/bridges/abc/device",
            "wss://hub.invalid/bridges/abc/device",
            "not a url",
        ] {
            assert_eq!(e.stream_url(url), url);
        }
        let default_port = endpoint("HostName=hub.invalid;GatewayHostName=gw.local");
        assert_eq!(
            default_port.stream_url("wss://hub.invalid/bridges/x"),
            "wss://gw.local:443/bridges/x"
        );
    }
}
