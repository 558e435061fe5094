//! MQTT over TLS (Azure's port 8883).

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::{MqttContext, session};
use crate::server::{Admission, accept_tls};

/// Accepts device connections until the hub shuts down.
pub async fn run(listener: TcpListener, acceptor: TlsAcceptor, ctx: Arc<MqttContext>) {
    let admission = Admission {
        slots: ctx.slots.clone(),
        handshake_timeout: ctx.config.connect_timeout,
    };
    let (shutdown, tracker) = (ctx.shutdown.clone(), ctx.tracker.clone());
    accept_tls(
        listener,
        acceptor,
        admission,
        shutdown,
        tracker,
        move |tls, peer, slot| {
            let ctx = ctx.clone();
            async move {
                // The CONNECT deadline counts from accept: the TLS handshake spends it too.
                let connect_by = slot.accepted() + ctx.config.connect_timeout;
                session::run_until(tls, peer, "mqtts", ctx, connect_by).await;
                // The connection's place is held until its session ends.
                drop(slot);
            }
        },
    )
    .await;
}
