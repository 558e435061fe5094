//! A local target that never answers a connect: a listener whose accept queue is full, so the
//! kernel drops further SYNs and a device proxy's connect to it hangs (until its own timeout).
//! That holds a stream at "delivered": the device has the request and has not answered.

use std::net::{SocketAddr, TcpStream};

use tokio::net::{TcpListener, TcpSocket};

/// The listener and the connections that fill its queue, kept for as long as it must hang.
#[derive(Debug)]
pub struct HungTarget {
    _listener: TcpListener,
    _fillers: Vec<TcpStream>,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl HungTarget {
    /// Binds 127.0.0.1:0 with a backlog of 1 and fills the queue. Errors: the socket calls'.
    pub fn start() -> anyhow::Result<Self> {
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let listener = socket.listen(1)?;
        let addr = listener.local_addr()?;
        // Linux queues backlog + 1 completed connections; a few more than that makes sure.
        let mut fillers = Vec::new();
        for _ in 0..4 {
            match TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(300)) {
                Ok(s) => fillers.push(s),
                Err(_) => break,
            }
        }
        Ok(Self {
            _listener: listener,
            _fillers: fillers,
            addr,
        })
    }
}
