//! The model of a multiplexer without fairness: every connection's bytes go into one shared
//! first-in first-out queue of frames (1 MiB: 64 frames of up to 16 KiB, the shared window)
//! and onto the link in arrival order; the far side hands each frame to its connection.
//! No per-connection credit, no scheduling: a small write waits behind every bulk frame
//! queued before it (how AWS localproxy's V3 multiplexing behaves, by its own docs).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, DuplexStream, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Frames in the shared queue.
const QUEUE_FRAMES: usize = 64;
/// Largest frame payload, in bytes.
const FRAME: usize = 16 * 1024;

type Demux = Arc<Mutex<HashMap<u8, mpsc::UnboundedSender<Vec<u8>>>>>;

/// One side of the link.
pub struct Fifo {
    queue: mpsc::Sender<(u8, Vec<u8>)>,
    demux: Demux,
    tasks: Vec<JoinHandle<()>>,
}

impl Fifo {
    pub fn start(link: TcpStream) -> Self {
        let (mut rd, mut wr) = link.into_split();
        let (queue, mut rx) = mpsc::channel::<(u8, Vec<u8>)>(QUEUE_FRAMES);
        let demux: Demux = Arc::default();
        let writer = tokio::spawn(async move {
            while let Some((conn, payload)) = rx.recv().await {
                let mut frame = Vec::with_capacity(3 + payload.len());
                frame.push(conn);
                frame.extend_from_slice(&(payload.len() as u16).to_be_bytes());
                frame.extend_from_slice(&payload);
                if wr.write_all(&frame).await.is_err() {
                    break;
                }
            }
        });
        let table = demux.clone();
        let reader = tokio::spawn(async move {
            let mut header = [0u8; 3];
            loop {
                if rd.read_exact(&mut header).await.is_err() {
                    break;
                }
                let len = usize::from(u16::from_be_bytes([header[1], header[2]]));
                let mut payload = vec![0u8; len];
                if rd.read_exact(&mut payload).await.is_err() {
                    break;
                }
                let to = table.lock().ok().and_then(|t| t.get(&header[0]).cloned());
                if let Some(to) = to {
                    let _ = to.send(payload);
                }
            }
        });
        Self {
            queue,
            demux,
            tasks: vec![writer, reader],
        }
    }

    /// Connection `id` (the same id on both sides), as a socket-like stream.
    pub fn conn(&self, id: u8) -> DuplexStream {
        let (app, inner) = tokio::io::duplex(FRAME * 4);
        let (inner_rd, inner_wr): (ReadHalf<DuplexStream>, WriteHalf<DuplexStream>) =
            tokio::io::split(inner);
        let (to_conn, mut from_link) = mpsc::unbounded_channel::<Vec<u8>>();
        if let Ok(mut t) = self.demux.lock() {
            t.insert(id, to_conn);
        }
        let queue = self.queue.clone();
        let mut inner_rd = inner_rd;
        tokio::spawn(async move {
            let mut buf = vec![0u8; FRAME];
            while let Ok(n) = inner_rd.read(&mut buf).await {
                if n == 0 || queue.send((id, buf[..n].to_vec())).await.is_err() {
                    break;
                }
            }
        });
        let mut inner_wr = inner_wr;
        tokio::spawn(async move {
            while let Some(payload) = from_link.recv().await {
                if inner_wr.write_all(&payload).await.is_err() {
                    break;
                }
            }
        });
        app
    }

    pub fn close(&self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}
