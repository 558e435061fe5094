//! What tests and benches of several hub nodes share: the NATS server they link through, the
//! settings of an in-process node, and connection strings pointed at a load balancer.

use adit_hub::HubConfig;

/// The NATS server of this machine; override with `ADIT_TEST_NATS_URL`.
pub fn nats_url() -> String {
    std::env::var("ADIT_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// Settings for an in-process node named `name` of the cluster whose registry is the
/// PostgreSQL database at `database_url`: the machine's NATS, and a node id unique to this
/// run (nodes of parallel tests share the NATS server).
pub fn cluster_node(database_url: &str, name: &str) -> impl FnOnce(&mut HubConfig) + use<> {
    let (url, name) = (database_url.to_string(), name.to_string());
    move |c: &mut HubConfig| {
        c.database_url = Some(url);
        c.nats_url = Some(nats_url());
        c.node_id = format!("{name}-{}", uuid::Uuid::new_v4().simple());
    }
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
