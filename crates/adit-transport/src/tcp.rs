//! Opening the TCP connections Adit's clients make: no Nagle delay, and TCP keepalive.
//!
//! TCP keepalive is the layer under the WebSocket pings: it covers connections that carry no
//! WebSocket (MQTT over TLS, REST) and a peer whose host vanished while nothing was being
//! sent. After [`KEEPALIVE_TIME`] of silence the kernel probes every [`KEEPALIVE_INTERVAL`];
//! after [`KEEPALIVE_RETRIES`] unanswered probes the connection fails (about a minute in all,
//! instead of the two hours of the kernel's defaults, or never).

use std::io;
use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};
use tokio::net::{TcpStream, ToSocketAddrs};

/// Idle time before the first keepalive probe.
pub const KEEPALIVE_TIME: Duration = Duration::from_secs(30);
/// Time between unanswered probes.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// Unanswered probes before the connection is dropped.
pub const KEEPALIVE_RETRIES: u32 = 3;

/// Turns on TCP keepalive with Adit's timings on a connected socket.
///
/// # Errors
/// The `setsockopt` error, if the system refuses an option.
pub fn set_keepalive(stream: &TcpStream) -> io::Result<()> {
    let params = TcpKeepalive::new()
        .with_time(KEEPALIVE_TIME)
        .with_interval(KEEPALIVE_INTERVAL)
        .with_retries(KEEPALIVE_RETRIES);
    SockRef::from(stream).set_tcp_keepalive(&params)
}

/// Connects to `addr` (every address it resolves to, in turn), with `TCP_NODELAY` (small
/// interactive writes such as keystrokes go out at once) and keepalive set.
///
/// # Errors
/// Resolution or connection errors, as [`TcpStream::connect`] reports them. Failing to set
/// an option is not an error: the connection works without it.
pub async fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
    let tcp = TcpStream::connect(addr).await?;
    // Either option failing leaves a connection that still works (the WebSocket pings and
    // MQTT keep-alive above still detect a dead peer): not a reason to refuse it.
    let _ = tcp.set_nodelay(true);
    let _ = set_keepalive(&tcp);
    Ok(tcp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[tokio::test]
    async fn connected_sockets_carry_adit_keepalive_timings() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let (tcp, accepted) = tokio::join!(connect(addr), listener.accept());
        let (tcp, _peer) = (tcp.expect("connect"), accepted.expect("accept"));
        let sock = SockRef::from(&tcp);
        assert!(sock.keepalive().expect("SO_KEEPALIVE"));
        assert_eq!(
            sock.tcp_keepalive_time().expect("TCP_KEEPIDLE"),
            KEEPALIVE_TIME
        );
        assert_eq!(
            sock.tcp_keepalive_interval().expect("TCP_KEEPINTVL"),
            KEEPALIVE_INTERVAL
        );
        assert_eq!(
            sock.tcp_keepalive_retries().expect("TCP_KEEPCNT"),
            KEEPALIVE_RETRIES
        );
        assert!(tcp.nodelay().expect("TCP_NODELAY"));
    }
}
