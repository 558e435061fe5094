//! Lingering close, as web servers do it (Apache httpd's `lingering_close`): after telling a
//! peer why its connection ends (a WebSocket Close 1009 for a message over the limit), go on
//! reading and discarding what it still sends, for a bounded time and number of bytes, before
//! dropping the socket.
//!
//! Without it, a peer caught in the middle of a large message is still writing when the
//! socket is dropped; Linux answers unread data with a TCP reset, and a reset discards
//! whatever the peer had not yet read, the Close included. The peer then sees "connection
//! reset" instead of the reason (`bench/abuse`: a 1 MiB + 1 KiB gateway frame got a reset in
//! 5 of 5 tries).

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

/// Most bytes read and discarded: more than the largest message a limit refuses mid-way
/// (the gateway's 1 MiB frames, MQTT's 256 KiB packets) could still have in flight.
pub const LINGER_BYTES: u64 = 4 * 1024 * 1024;

/// Longest time spent lingering: a peer that keeps sending, or never closes, is dropped
/// after this.
pub const LINGER_TIME: Duration = Duration::from_secs(2);

/// Shuts down the writing side of `io` (what was written, the Close, goes out first), then
/// reads and discards until the peer closes, [`LINGER_BYTES`] or [`LINGER_TIME`]. Errors end
/// it quietly: the connection is being dropped either way.
pub async fn lingering_close<S>(io: &mut S)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let _ = tokio::time::timeout(LINGER_TIME, async {
        let _ = io.shutdown().await;
        let mut rest = (&mut *io).take(LINGER_BYTES);
        let _ = tokio::io::copy(&mut rest, &mut tokio::io::sink()).await;
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The peer sees what was written before the close and then EOF, even though it was
    /// still sending when the close began.
    #[tokio::test]
    async fn a_peer_still_sending_reads_the_last_words_then_eof() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("accept");
            let mut first = [0u8; 16];
            s.read_exact(&mut first).await.expect("read");
            s.write_all(b"too big").await.expect("write");
            lingering_close(&mut s).await;
        });
        let mut client = tokio::net::TcpStream::connect(addr).await.expect("connect");
        // 2 MiB: far more than the socket buffers hold while the server does not read.
        client
            .write_all(&vec![7u8; 2 * 1024 * 1024])
            .await
            .expect("the whole message is taken");
        client.shutdown().await.expect("shutdown");
        let mut answer = Vec::new();
        client
            .read_to_end(&mut answer)
            .await
            .expect("no reset: the answer, then EOF");
        assert_eq!(answer, b"too big");
        server.await.expect("server");
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_never_closes_is_left_after_the_linger_time() {
        let (mut ours, _theirs) = tokio::io::duplex(64);
        let started = tokio::time::Instant::now();
        lingering_close(&mut ours).await;
        assert_eq!(started.elapsed(), LINGER_TIME);
    }
}
