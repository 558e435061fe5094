//! The stream cases measured side by side: devices (`adit device-proxy`) and service proxies
//! placed so that each case's stream requests take one route. A case is the local ports of
//! its service proxies; the setup probes spread their connections over them.

use std::path::Path;

use adit_testkit::{Running, admin_metric};

use crate::cluster::Cluster;
use crate::identities;
use crate::proxies;

/// One route for stream requests, and the service-proxy ports that take it.
pub struct Case {
    pub name: &'static str,
    pub ports: Vec<u16>,
}

/// Every case, and the proxies they need (killed on drop).
pub struct Cases {
    pub list: Vec<Case>,
    /// Where the balanced case's devices landed: devices per node, in node order.
    pub balanced_spread: Vec<f64>,
    _procs: Vec<Running>,
}

/// Starts proxies for every case: on the SQLite hub, on the one PostgreSQL+NATS node, and on
/// the three nodes (through HAProxy, on the node holding the device, on another node).
pub async fn start(
    bin: &Path,
    target: u16,
    tag: &str,
    sqlite: &Cluster,
    one: &Cluster,
    three: &Cluster,
) -> anyhow::Result<Cases> {
    let mut b = Builder {
        bin,
        target,
        tag,
        procs: Vec::new(),
    };
    let mut list = Vec::new();

    let owner = sqlite.owner_via(sqlite.entry_https());
    let ids = b.devices("sqlite", &owner, &sqlite.ca, 1).await?;
    let ports = b.services(&owner, &sqlite.ca, &ids)?;
    list.push(Case {
        name: "1 node, SQLite",
        ports,
    });

    let owner = one.owner_via(one.entry_https());
    let ids = b.devices("pg", &owner, &one.ca, 1).await?;
    let ports = b.services(&owner, &one.ca, &ids)?;
    list.push(Case {
        name: "1 node, PG+NATS",
        ports,
    });

    // Devices and services both through HAProxy: three devices, spread by its round robin,
    // one service proxy each. A service proxy keeps its HTTPS connections alive, and HAProxy
    // balances connections, not requests: each request goes to the node its connection
    // reached, the device's own node or another one.
    let owner = three.owner_via(three.entry_https());
    let ids = b.devices("lb", &owner, &three.ca, 3).await?;
    let balanced_spread = three
        .nodes
        .iter()
        .map(|n| admin_metric(n.admin_addr, "adit_connected_devices").unwrap_or(f64::NAN))
        .collect();
    let ports = b.services(&owner, &three.ca, &ids)?;
    list.push(Case {
        name: "3 nodes, HAProxy",
        ports,
    });

    // One device on node a; a service calling node a (no forwarding) and one calling node b
    // (every request forwarded over NATS to node a, which answers with its own stream URL).
    let on_a = three.owner_via(three.nodes[0].addr.port());
    let ids = b.devices("direct", &on_a, &three.ca, 1).await?;
    let ports = b.services(&on_a, &three.ca, &ids)?;
    list.push(Case {
        name: "3 nodes, same node",
        ports,
    });
    let on_b = three.owner_via(three.nodes[1].addr.port());
    let ports = b.services(&on_b, &three.ca, &ids)?;
    list.push(Case {
        name: "3 nodes, other node",
        ports,
    });

    Ok(Cases {
        list,
        balanced_spread,
        _procs: b.procs,
    })
}

struct Builder<'a> {
    bin: &'a Path,
    target: u16,
    tag: &'a str,
    procs: Vec<Running>,
}

impl Builder<'_> {
    /// Creates `n` devices through the hub `owner` names, starts a device proxy for each
    /// (connecting where `owner`'s HostName points) and waits until each shows connected.
    async fn devices(
        &mut self,
        label: &str,
        owner: &str,
        ca: &Path,
        n: usize,
    ) -> anyhow::Result<Vec<String>> {
        let registry = identities::registry(owner, ca)?;
        let ids: Vec<String> = (0..n)
            .map(|i| format!("{}-{label}-{i}", self.tag))
            .collect();
        // One at a time, so HAProxy's round robin spreads the device proxies over the nodes.
        for (id, cs) in ids
            .iter()
            .zip(identities::create(&registry, ids.clone(), 1).await?)
        {
            self.procs
                .push(proxies::device(self.bin, &cs, ca, self.target)?);
            identities::wait_connected(&registry, id).await?;
        }
        Ok(ids)
    }

    /// One service proxy per device in `ids`, calling the hub `owner` names; their ports.
    fn services(&mut self, owner: &str, ca: &Path, ids: &[String]) -> anyhow::Result<Vec<u16>> {
        let mut ports = Vec::with_capacity(ids.len());
        for id in ids {
            let (running, port) = proxies::service(self.bin, owner, ca, id)?;
            self.procs.push(running);
            ports.push(port);
        }
        Ok(ports)
    }
}
