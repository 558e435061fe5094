//! What tests and benches of several hub nodes share: the NATS server they link through, and
//! connection strings pointed at a load balancer.

/// The NATS server of this machine; override with `ADIT_TEST_NATS_URL`.
pub fn nats_url() -> String {
    std::env::var("ADIT_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// `connection_string` with its `HostName` set to `localhost:{port}` (a balancer's port, or
/// one node's).
pub fn via_port(connection_string: &str, port: u16) -> String {
    connection_string
        .split(';')
        .map(|part| match part.split_once('=') {
            Some(("HostName", _)) => format!("HostName=localhost:{port}"),
            _ => part.to_string(),
        })
        .collect::<Vec<_>>()
        .join(";")
}
