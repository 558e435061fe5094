//! Reading one figure from a hub's admin listener (`/metrics`, plain HTTP on loopback).

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// The value of the unlabelled metric `name` (e.g. `adit_connected_devices`), or `None` when
/// the hub does not answer or has no such line.
pub fn admin_metric(admin: SocketAddr, name: &str) -> Option<f64> {
    let mut s = TcpStream::connect_timeout(&admin, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET /metrics HTTP/1.0\r\nHost: {admin}\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    body.lines().find_map(|l| {
        let (metric, value) = l.split_once(' ')?;
        (metric == name).then(|| value.trim().parse().ok())?
    })
}
