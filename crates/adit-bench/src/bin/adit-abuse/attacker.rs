//! Attackers' connections. Loopback is all of 127.0.0.0/8, so attackers bind 127.0.0.2 and up
//! as their source address: the hub sees them apart from the legitimate clients, which come
//! from 127.0.0.1 as from one NAT.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Round-robin over `count` attacker source addresses, 127.0.0.2 onwards.
#[derive(Debug)]
pub struct Sources {
    next: AtomicU32,
    count: u32,
}

impl Sources {
    /// `count` addresses (at least one).
    pub fn new(count: u32) -> Self {
        Self {
            next: AtomicU32::new(0),
            count: count.max(1),
        }
    }

    /// How many addresses.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The next address.
    pub fn pick(&self) -> Ipv4Addr {
        let n = self.next.fetch_add(1, Ordering::Relaxed) % self.count;
        Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 0, 0, 2)) + n)
    }
}

/// TCP from `source` to `to`.
pub async fn tcp_from(source: Ipv4Addr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source.into(), 0))?;
    let stream = socket.connect(to).await?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// A TLS connector that trusts the hub's dev CA.
pub fn connector(ca: &Path) -> TlsConnector {
    TlsConnector::from(Arc::new(adit_testkit::client_tls_config(ca)))
}

/// TLS (verifying `localhost`) over an open TCP connection.
pub async fn tls_over(
    connector: &TlsConnector,
    tcp: TcpStream,
) -> std::io::Result<TlsStream<TcpStream>> {
    let name = rustls::pki_types::ServerName::try_from("localhost")
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    connector.connect(name, tcp).await
}

/// The bytes of a TLS ClientHello for `localhost`, as a real client would send first.
pub fn client_hello(ca: &Path) -> anyhow::Result<Vec<u8>> {
    let config = Arc::new(adit_testkit::client_tls_config(ca));
    let name = rustls::pki_types::ServerName::try_from("localhost")?;
    let mut conn = rustls::ClientConnection::new(config, name)?;
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out)?;
    }
    Ok(out)
}
