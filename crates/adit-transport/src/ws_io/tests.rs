//! Keep-alive and ends of [`WsIo`] against a real tokio-websockets peer over an in-memory
//! pipe, on tokio's paused clock: every timer is checked just before and just after its
//! boundary.

use std::io;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, DuplexStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep};
use tokio_websockets::{ClientBuilder, CloseCode, Config, Message, ServerBuilder, WebSocketStream};

use super::WsIo;
use crate::Keepalive;

const MS: Duration = Duration::from_millis(1);

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn keepalive(interval: Duration, timeout: Duration) -> Keepalive {
    Keepalive::new(interval, timeout).expect("valid keep-alive")
}

/// A client `WsIo` with `keepalive` and the raw server end, over a pipe of `capacity` bytes
/// each way; the client flushes its queue past `flush_threshold` bytes.
fn pair_with(
    keepalive: Keepalive,
    capacity: usize,
    flush_threshold: usize,
) -> (WsIo<DuplexStream>, WebSocketStream<DuplexStream>) {
    let (a, b) = tokio::io::duplex(capacity);
    let client = ClientBuilder::new()
        .config(Config::default().flush_threshold(flush_threshold))
        .take_over(a);
    (
        WsIo::with_keepalive(client, keepalive),
        ServerBuilder::new().serve(b),
    )
}

fn pair(keepalive: Keepalive) -> (WsIo<DuplexStream>, WebSocketStream<DuplexStream>) {
    pair_with(keepalive, 64 * 1024, 8 * 1024)
}

/// Reads the server end forever (tokio-websockets answers each ping), reporting when each
/// ping arrived.
fn record_pings(mut server: WebSocketStream<DuplexStream>) -> mpsc::UnboundedReceiver<Instant> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(Ok(msg)) = server.next().await {
            if msg.is_ping() {
                let _ = tx.send(Instant::now());
            }
        }
    });
    rx
}

/// A task blocked in one read of `io`, as an idle proxy is.
fn pending_read<R: tokio::io::AsyncRead + Unpin + Send + 'static>(
    mut io: R,
) -> JoinHandle<io::Result<usize>> {
    tokio::spawn(async move {
        let mut buf = [0u8; 64];
        io.read(&mut buf).await
    })
}

fn timed_out(result: Result<io::Result<usize>, tokio::task::JoinError>) -> io::Error {
    let err = result
        .expect("the task did not panic")
        .expect_err("the read failed");
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
    err
}

#[tokio::test(start_paused = true)]
async fn ping_goes_out_after_exactly_the_interval_of_silence_while_a_read_waits() {
    let start = Instant::now();
    let (client, server) = pair(keepalive(secs(20), secs(20)));
    let mut pings = record_pings(server);
    let reader = pending_read(client);

    sleep(secs(20) - MS).await;
    assert!(pings.try_recv().is_err(), "no ping before 20 s of silence");
    sleep(2 * MS).await;
    assert_eq!(pings.try_recv().ok(), Some(start + secs(20)));

    // The pong came back at once: no failure at the pong deadline, and the next ping goes
    // out an interval after that pong.
    sleep(secs(20) - 2 * MS).await;
    assert!(pings.try_recv().is_err(), "no second ping before 40 s");
    assert!(!reader.is_finished(), "answered pings keep the connection");
    sleep(2 * MS).await;
    assert_eq!(pings.try_recv().ok(), Some(start + secs(40)));
    sleep(secs(60)).await;
    assert!(!reader.is_finished(), "answered pings keep the connection");
}

#[tokio::test(start_paused = true)]
async fn any_frame_received_restarts_the_interval() {
    let start = Instant::now();
    let (client, mut server) = pair(keepalive(secs(20), secs(20)));
    let (tx, mut pings) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        sleep(secs(10)).await;
        server
            .send(Message::binary("x"))
            .await
            .expect("server sends");
        while let Some(Ok(msg)) = server.next().await {
            if msg.is_ping() {
                let _ = tx.send(Instant::now());
            }
        }
    });
    let reader = tokio::spawn(async move {
        let mut client = client;
        let mut buf = [0u8; 8];
        let n = client.read(&mut buf).await?;
        assert_eq!(&buf[..n], b"x");
        client.read(&mut buf).await
    });
    sleep(secs(30) - MS).await;
    assert!(
        pings.try_recv().is_err(),
        "no ping 20 s after t=0: data came at 10 s"
    );
    sleep(2 * MS).await;
    assert_eq!(pings.try_recv().ok(), Some(start + secs(30)));
    assert!(!reader.is_finished());
}

#[tokio::test(start_paused = true)]
async fn no_answer_fails_reads_and_writes_just_past_the_pong_deadline() {
    let (client, server) = pair(keepalive(secs(20), secs(20)));
    let (read_half, mut write_half) = tokio::io::split(client);
    let reader = pending_read(read_half);
    // The peer holds the connection open but never reads: the ping is never answered.
    let _server = server;

    sleep(secs(40) - MS).await;
    assert!(!reader.is_finished(), "still alive just before 20 s + 20 s");
    sleep(2 * MS).await;
    assert!(reader.is_finished(), "given up just past the pong deadline");
    let err = timed_out(reader.await);
    assert_eq!(
        err.to_string(),
        "no pong from the peer within 20 s of a ping: connection lost"
    );
    let err = write_half
        .write_all(b"late")
        .await
        .expect_err("writes fail too");
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
}

#[tokio::test(start_paused = true)]
async fn a_write_blocked_on_a_dead_peer_is_woken_and_fails() {
    let (client, server) = pair_with(keepalive(secs(5), secs(5)), 4 * 1024, 1024);
    let (read_half, mut write_half) = tokio::io::split(client);
    let reader = pending_read(read_half);
    let _server = server;
    let writer = tokio::spawn(async move {
        loop {
            write_half.write_all(&[0u8; 1024]).await?;
        }
        #[allow(unreachable_code)]
        Ok::<usize, io::Error>(0)
    });
    sleep(secs(10) - MS).await;
    assert!(
        !writer.is_finished(),
        "blocked, not failed, before the deadline"
    );
    sleep(2 * MS).await;
    assert!(
        writer.is_finished(),
        "the blocked write fails with the read"
    );
    timed_out(writer.await);
    timed_out(reader.await);
}

#[tokio::test(start_paused = true)]
async fn a_slow_peer_that_keeps_reading_is_not_given_up() {
    // The peer reads 1 KiB every 100 ms; 16 KiB sit in the pipe ahead of each ping, so its
    // pong comes about 1.7 s after it, past the 1-s deadline: only the writes moving on show
    // the peer is alive.
    let (client, mut server) = pair_with(keepalive(secs(1), secs(1)), 16 * 1024, 1024);
    let (read_half, mut write_half) = tokio::io::split(client);
    let reader = pending_read(read_half);
    let writer = tokio::spawn(async move {
        loop {
            write_half.write_all(&[7u8; 1024]).await?;
        }
        #[allow(unreachable_code)]
        Ok::<usize, io::Error>(0)
    });
    let (tx, mut pings) = mpsc::unbounded_channel();
    let (stop_tx, mut stop) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = &mut stop => break,
                msg = server.next() => match msg {
                    Some(Ok(m)) if m.is_ping() => { let _ = tx.send(Instant::now()); }
                    Some(Ok(_)) => sleep(100 * MS).await,
                    _ => return,
                },
            }
        }
        // Stops reading but keeps the connection open, as a hung peer does.
        sleep(secs(3600)).await;
        drop(server);
    });

    sleep(secs(20)).await;
    assert!(!reader.is_finished() && !writer.is_finished(), "alive");
    let mut answered = 0;
    while pings.try_recv().is_ok() {
        answered += 1;
    }
    assert!(
        answered >= 5,
        "pings went out and were answered: {answered}"
    );

    let _ = stop_tx.send(());
    sleep(secs(5)).await;
    assert!(writer.is_finished() && reader.is_finished());
    timed_out(writer.await);
    timed_out(reader.await);
}

#[tokio::test]
async fn a_connection_closed_without_a_close_is_an_error_and_a_close_is_the_end() {
    // Cleanly at the transport's level (a load balancer's idle timeout): still a cut.
    let (mut client, server) = pair(keepalive(secs(20), secs(20)));
    drop(server);
    let mut buf = [0u8; 16];
    let err = client
        .read(&mut buf)
        .await
        .expect_err("not an end of stream");
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
    assert!(
        err.to_string().contains("without a WebSocket Close"),
        "{err}"
    );

    // A Close with 1000, or the zero-length message, is the peer ending it.
    let (mut client, mut server) = pair(keepalive(secs(20), secs(20)));
    let peer = tokio::spawn(async move {
        server
            .send(Message::binary(&b"last"[..]))
            .await
            .expect("send");
        server
            .send(Message::close(Some(CloseCode::NORMAL_CLOSURE), ""))
            .await
            .expect("close");
        // Reads on, so the client's answer to the Close is taken.
        while let Some(Ok(_)) = server.next().await {}
    });
    let mut got = Vec::new();
    client.read_to_end(&mut got).await.expect("a clean end");
    assert_eq!(got, b"last");
    drop(client);
    peer.await.expect("peer");
    let (mut client, mut server) = pair(keepalive(secs(20), secs(20)));
    server.send(Message::binary(&b""[..])).await.expect("send");
    assert_eq!(client.read(&mut buf).await.expect("end of input"), 0);
}
