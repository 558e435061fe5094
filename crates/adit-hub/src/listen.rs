//! The hub's listening sockets: bound with a deep accept queue, so a fleet reconnecting at
//! once waits in the kernel instead of having its SYNs dropped.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket};

/// Connections the kernel queues for accept per listener (capped by `net.core.somaxconn`,
/// 4096 on Linux since 5.4). Tokio's `TcpListener::bind` asks for 1,024, which 10,000
/// devices reconnecting together overflow; an overflowing queue drops SYNs, and clients send
/// them again only after 1, 3, 7... seconds.
pub const LISTEN_BACKLOG: u32 = 4096;

/// Binds and listens on `addr` (port 0 picks a free port) with [`LISTEN_BACKLOG`].
///
/// # Errors
/// The socket, bind or listen call's error (address in use, permission denied, ...).
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // As `TcpListener::bind` does: a restarted hub rebinds while its old connections linger
    // in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// More connections than Tokio's default backlog (1,024) arrive while nobody accepts:
    /// the kernel queues them all, so accepting later finds every one.
    #[tokio::test]
    async fn queues_more_connections_than_tokios_default_backlog() {
        // Past 1,025 (what a backlog of 1,024 admits), within a common `ulimit -n` of 2,048.
        const CLIENTS: usize = 1_100;
        let listener = bind("127.0.0.1:0".parse().expect("address")).expect("bind");
        let addr = listener.local_addr().expect("bound address");
        let mut connects = tokio::task::JoinSet::new();
        for _ in 0..CLIENTS {
            connects.spawn(async move {
                tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr))
                    .await
                    .ok()
                    .and_then(Result::ok)
            });
        }
        // Held open: a closed client could still be accepted, but say nothing of the queue.
        let mut clients = Vec::with_capacity(CLIENTS);
        while let Some(c) = connects.join_next().await {
            clients.extend(c.expect("connect task"));
        }
        let mut accepted = 0;
        while let Ok(Ok(_)) =
            tokio::time::timeout(Duration::from_millis(200), listener.accept()).await
        {
            accepted += 1;
        }
        assert_eq!(accepted, CLIENTS, "{} clients connected", clients.len());
    }
}
