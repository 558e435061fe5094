//! Plain TCP servers on a thread, standing in for what a device proxy forwards to.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};

/// Serves every connection to a fresh loopback port with `serve`, each on its own thread;
/// returns the port.
pub fn tcp_server(serve: fn(TcpStream)) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { break };
            std::thread::spawn(move || serve(conn));
        }
    });
    port
}

/// Sends back whatever arrives, until the peer closes.
pub fn echo(mut conn: TcpStream) {
    let mut buf = [0u8; 8192];
    while let Ok(n) = conn.read(&mut buf) {
        if n == 0 || conn.write_all(&buf[..n]).is_err() {
            break;
        }
    }
}

/// A TCP echo server; returns its port.
pub fn echo_server() -> u16 {
    tcp_server(echo)
}
