//! The server at the end of both paths, run inside the device namespace (`adit-netbench
//! target`). The first byte of a connection picks the mode: `E` echoes everything; `S`
//! discards until EOF, then answers the byte count (8 bytes, big-endian).

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// Serves `listen` until killed; prints `listening` once bound (the parent waits for it).
pub async fn serve(listen: SocketAddr) -> anyhow::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    println!("listening on {}", listener.local_addr()?);
    loop {
        let (conn, _) = listener.accept().await?;
        tokio::spawn(async move {
            let _ = one(conn).await;
        });
    }
}

async fn one(mut conn: TcpStream) -> std::io::Result<()> {
    conn.set_nodelay(true)?;
    let mut mode = [0u8; 1];
    conn.read_exact(&mut mode).await?;
    let mut buf = vec![0u8; 256 * 1024];
    if mode[0] == b'E' {
        conn.write_all(b"E").await?;
        loop {
            let n = conn.read(&mut buf).await?;
            if n == 0 {
                return Ok(());
            }
            conn.write_all(&buf[..n]).await?;
        }
    }
    let mut total = 0u64;
    loop {
        let n = conn.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    conn.write_all(&total.to_be_bytes()).await
}
