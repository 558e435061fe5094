//! The web console at `/console` (`docs/console.md`): the page built from `web/console/`
//! (embedded, [`assets`]), and its JSON API under `/console/api/`, served on the hub's HTTPS
//! port beside the REST API.
//!
//! A browser signs in with a shared access policy's connection string or a one-time link
//! (`adit console`) and gets a session cookie ([`sessions`]); every request then carries the
//! policy's permissions, as the REST API checks them, and is refused once the policy no
//! longer holds the key that signed in. Requests that change something must prove they come
//! from the console's own page ([`signed_in`]).

mod assets;
mod devices;
mod events;
mod json_error;
mod open_terminal;
mod security_headers;
mod sessions;
mod sign_in;
mod signed_in;
mod streams;
mod terminal;

use axum::Router;
use axum::routing::{get, post};

use crate::api::AppState;

pub use sessions::Sessions;
pub use sign_in::create_link;

/// What the console's handlers reach.
#[derive(Debug, Clone)]
pub struct ConsoleState {
    /// What the REST API reaches.
    pub app: AppState,
    /// Signed-in browsers and one-time links.
    pub sessions: Sessions,
    /// How the hub trusts its own certificate when it opens a terminal's stream through its
    /// own API (its dev CA, or the system's roots).
    pub tls: adit_transport::TlsOptions,
    /// Where terminals run, so the hub waits for them at shutdown.
    pub tracker: tokio_util::task::TaskTracker,
    /// The hub's shutdown.
    pub shutdown: tokio_util::sync::CancellationToken,
}

/// The console's routes: the page and its API.
pub fn router(state: ConsoleState) -> Router {
    let api = Router::new()
        .route("/sign-in", post(sign_in::sign_in))
        .route("/sign-out", post(sign_in::sign_out))
        .route("/me", get(sign_in::me))
        .route("/devices", get(devices::list).post(devices::create))
        .route(
            "/devices/{id}",
            get(devices::get)
                .patch(devices::set_status)
                .delete(devices::delete),
        )
        .route("/streams", get(streams::live))
        .route("/streams/log", get(streams::log))
        .route("/streams/history", get(streams::history))
        .route("/events", get(events::events))
        .route("/devices/{id}/terminal", get(open_terminal::open))
        .fallback(json_error::not_found)
        .layer(axum::middleware::from_fn(json_error::uniform));
    Router::new()
        .route("/adit/console/sign-in-links", post(sign_in::create_link))
        .nest("/console/api", api)
        .route("/console", get(assets::index))
        .route("/console/", get(assets::index))
        .route("/console/{file}", get(assets::file))
        .layer(axum::middleware::from_fn(security_headers::add))
        .with_state(state)
}
