//! Stream orchestration: the one place that knows a stream's state. For now it correlates
//! devices' answers (`$iothub/streams/res/...`) with the requests waiting for them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use adit_proto::topic::StreamResponse;
use tokio::sync::oneshot;

type Waiters = HashMap<(String, String), oneshot::Sender<bool>>;

/// Requests waiting for a device's answer, keyed by client id and `$rid`.
#[derive(Debug, Clone, Default)]
pub struct Streams {
    // std Mutex: map operations only, never held across an await.
    waiting: Arc<Mutex<Waiters>>,
}

impl Streams {
    /// Registers interest in the answer to `rid` from `client_id`.
    pub fn expect_answer(&self, client_id: &str, rid: &str) -> oneshot::Receiver<bool> {
        let (tx, rx) = oneshot::channel();
        self.waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((client_id.to_string(), rid.to_string()), tx);
        rx
    }

    /// Drops interest (the requester gave up).
    pub fn forget(&self, client_id: &str, rid: &str) {
        self.waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(client_id.to_string(), rid.to_string()));
    }

    /// Delivers a device's answer. Returns false when nobody was waiting for it (unknown or
    /// late `$rid`), which the caller logs.
    pub fn answer(&self, client_id: &str, response: &StreamResponse) -> bool {
        let waiter = self
            .waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(client_id.to_string(), response.rid.clone()));
        waiter.is_some_and(|tx| tx.send(response.accepted).is_ok())
    }
}
