//! The HTTPS service API, in Azure IoT Hub's REST shape: the identity registry now, stream
//! initiation and discovery in later parts. Handlers are thin: authenticate, validate, call
//! the registry, map the result to Azure's status codes and error bodies.

pub(crate) mod auth;
mod device_body;
pub(crate) mod devices;
pub(crate) mod diagnostics;
mod error;
mod policies;
mod streams;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;

use crate::auth::Authenticator;
use crate::diagnostics::Diagnostics;
use crate::metrics::Metrics;
use crate::presence::Presence;
use crate::registry::Registry;
use crate::streams::Streams;
use crate::throttle::AuthThrottle;

pub use device_body::parse as parse_device_body;
pub use devices::if_match;
pub use diagnostics::LogQuery;
pub use error::ApiError;
pub use streams::timeout_header as stream_timeout_header;

/// Largest request body accepted. Device identities are well under 4 KiB.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The identity registry.
    pub registry: Registry,
    /// SAS verification.
    pub auth: Authenticator,
    /// Failed-authentication throttling of the REST API (MQTT keeps another).
    pub throttle: AuthThrottle,
    /// Connected devices (disabling or deleting one disconnects it).
    pub presence: Presence,
    /// Stream orchestration.
    pub streams: Streams,
    /// Counters for /metrics.
    pub metrics: Metrics,
    /// The diagnostics log.
    pub diagnostics: Diagnostics,
    /// Streaming endpoints advertised by discovery (`https://host:port`).
    pub streaming_endpoint: String,
    /// The link to the other nodes: registry changes are announced there.
    pub cluster: Option<crate::cluster::Cluster>,
}

/// The service API's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/devices", get(devices::list))
        .route(
            "/devices/{id}",
            get(devices::get).put(devices::put).delete(devices::delete),
        )
        .route("/adit/policies", get(policies::list))
        .route(
            "/adit/policies/{name}/renew-key",
            axum::routing::post(policies::renew_key),
        )
        .route("/adit/logs", get(diagnostics::logs))
        .route("/adit/devicestreams", get(diagnostics::streaming_endpoints))
        .route(
            "/twins/{id}/streams/{name}",
            axum::routing::post(streams::initiate_device),
        )
        .route(
            "/twins/{id}/modules/{module}/streams/{name}",
            axum::routing::post(streams::initiate_module),
        )
        .layer(axum::middleware::from_fn(error::require_api_version))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}
