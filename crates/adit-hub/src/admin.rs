//! The loopback admin listener (plain HTTP): `/metrics` for Prometheus and `/healthz`.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::metrics::{Gauges, Metrics};
use crate::presence::Presence;
use crate::registry::Registry;
use crate::streams::Streams;

/// What the admin endpoints read.
#[derive(Debug, Clone)]
pub struct AdminState {
    /// Counters.
    pub metrics: Metrics,
    /// For the connected-devices gauge.
    pub presence: Presence,
    /// For the active-streams gauge.
    pub streams: Streams,
    /// For the health check.
    pub registry: Registry,
}

async fn metrics(State(s): State<AdminState>) -> impl IntoResponse {
    let gauges = Gauges {
        connected_devices: s.presence.len(),
        active_streams: s.streams.active(),
        alive_tasks: tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks(),
    };
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(gauges),
    )
}

async fn healthz(State(s): State<AdminState>) -> impl IntoResponse {
    match s.registry.ping().await {
        Ok(()) => (StatusCode::OK, "ok\n"),
        Err(e) => {
            tracing::error!(error = %crate::report::Report(&e), "health check: registry unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, "registry unreachable\n")
        }
    }
}

/// Serves the admin endpoints until `shutdown`.
pub async fn serve(listener: TcpListener, state: AdminState, shutdown: CancellationToken) {
    let router = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .with_state(state);
    if let Err(e) = axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
    {
        tracing::error!(error = %e, "admin listener failed");
    }
}
