//! `GET /console/api/events`: the console's live feed, as server-sent events
//! (`docs/console.md`). A device's presence is sent as soon as this node writes it (the
//! registry's change feed), and every few seconds the registry is read again, which catches
//! what other nodes wrote; live streams are compared the same way.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::time::Duration;

use adit_proto::Permissions;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::ConsoleState;
use super::devices::device_json;
use super::json_error::ConsoleError;
use super::signed_in::SignedIn;

/// How often the registry is read again without a change seen here.
const RESCAN: Duration = Duration::from_secs(5);
/// Most devices compared.
const MAX_DEVICES: u32 = 10_000;
/// How long changes gather before one pass reads them.
const COALESCE: Duration = Duration::from_millis(300);

/// What a watcher last saw.
#[derive(Default)]
struct Seen {
    /// Device id: (status, presence as sent).
    devices: HashMap<String, (String, Value)>,
    streams: HashSet<String>,
    /// Whether a first pass learnt the state (it sends nothing: the page fetched it already).
    primed: bool,
}

/// `GET /console/api/events`.
pub async fn events(
    State(state): State<ConsoleState>,
    user: SignedIn,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ConsoleError> {
    user.require(Permissions::REGISTRY_READ)?;
    let mut changes = state.app.registry.device_changes();
    let tracker = state.tracker.clone();
    // The state as of this request, learnt before the answer goes: a change from here on is
    // sent. What changed between the page's fetch and this request, the page fetches again
    // on the first events.
    let mut seen = Seen::default();
    let _ = compare(&state, &mut seen).await;
    let stream = async_stream(tracker, move |tx| async move {
        for first in ["devices", "streams"] {
            if tx
                .send(Ok(Event::default().event(first).data("{}")))
                .await
                .is_err()
            {
                return;
            }
        }
        let mut rescan = tokio::time::interval(RESCAN);
        rescan.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                changed = changes.recv() => match changed {
                    Ok(_) | Err(RecvError::Lagged(_)) => {
                        // A fleet reconnecting at once is one pass, not one per device.
                        tokio::time::sleep(COALESCE).await;
                        while changes.try_recv().is_ok() {}
                    }
                    Err(RecvError::Closed) => return,
                },
                _ = rescan.tick() => {
                    // Signed out, expired, or the policy lost its key: the feed ends.
                    if !user.still_valid(&state, Permissions::REGISTRY_READ) {
                        return;
                    }
                }
                // The page went away: stop reading the registry for it.
                () = tx.closed() => return,
                () = state.shutdown.cancelled() => return,
            }
            for event in compare(&state, &mut seen).await {
                if tx.send(Ok(event)).await.is_err() {
                    return;
                }
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// Reads devices and streams again and returns the events for what changed since `seen`.
async fn compare(state: &ConsoleState, seen: &mut Seen) -> Vec<Event> {
    let mut events = Vec::new();
    let Ok(devices) = state.app.registry.devices(MAX_DEVICES).await else {
        return events;
    };
    let mut now: HashMap<String, (String, Value)> = HashMap::new();
    for d in &devices {
        let full = device_json(d, 0);
        let presence = json!({
            "deviceId": full["deviceId"],
            "connectionState": full["connectionState"],
            "lastActivityTime": full["lastActivityTime"],
        });
        now.insert(
            d.device_id.to_string(),
            (d.status.as_str().to_string(), presence),
        );
    }
    let first = !seen.primed;
    seen.primed = true;
    let listed_changed = now.len() != seen.devices.len()
        || now
            .iter()
            .any(|(id, (status, _))| seen.devices.get(id).is_none_or(|(s, _)| s != status));
    if !first {
        if listed_changed {
            events.push(Event::default().event("devices").data("{}"));
        }
        for (id, (_, presence)) in &now {
            if seen
                .devices
                .get(id)
                .is_some_and(|(_, before)| before["connectionState"] != presence["connectionState"])
            {
                events.push(
                    Event::default()
                        .event("presence")
                        .data(presence.to_string()),
                );
            }
        }
    }
    seen.devices = now;
    let streams: HashSet<String> = state
        .app
        .streams
        .in_flight()
        .into_iter()
        .map(|s| s.stream_id)
        .collect();
    if !first && streams != seen.streams {
        events.push(Event::default().event("streams").data("{}"));
    }
    seen.streams = streams;
    events
}

/// A stream fed by a task: `body` sends items through the sender it gets; the stream ends
/// when the task does, and the task ends when the client goes (its sends fail).
fn async_stream<F, Fut>(
    tracker: tokio_util::task::TaskTracker,
    body: F,
) -> impl Stream<Item = Result<Event, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<Event, Infallible>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tracker.spawn(body(tx));
    tokio_stream_from(rx)
}

fn tokio_stream_from<T>(mut rx: tokio::sync::mpsc::Receiver<T>) -> impl Stream<Item = T> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
