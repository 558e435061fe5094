//! HAProxy (Debian's `haproxy`) in TCP mode in front of the nodes' HTTPS and MQTT ports:
//! one frontend per port, round robin, health checks, redispatch (README, "Several hub
//! nodes").

use std::process::{Child, Command, Stdio};

use adit_bench::wait_listening;
use adit_testkit::free_port;

/// A running HAProxy and its two frontends on loopback.
pub struct Haproxy {
    child: Child,
    pub https: u16,
    pub mqtt: u16,
    /// Holds the configuration file for as long as HAProxy runs.
    _dir: tempfile::TempDir,
}

impl Haproxy {
    /// Balances `https` and `mqtt` (the nodes' ports, in node order) behind two new ports.
    pub fn start(https: &[u16], mqtt: &[u16]) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let (front_https, front_mqtt) = (free_port(), free_port());
        let cfg = dir.path().join("haproxy.cfg");
        std::fs::write(&cfg, config(https, mqtt, front_https, front_mqtt))?;
        let child = Command::new("haproxy")
            .args(["-db", "-f"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| anyhow::anyhow!("haproxy (apt-get install haproxy) did not start: {e}"))?;
        let haproxy = Self {
            child,
            https: front_https,
            mqtt: front_mqtt,
            _dir: dir,
        };
        wait_listening(front_https)?;
        wait_listening(front_mqtt)?;
        Ok(haproxy)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// The configuration: what the integration test uses, with room for the idle fleet (two
/// sockets per device; HAProxy sizes its global limit from `ulimit -n`).
fn config(https: &[u16], mqtt: &[u16], front_https: u16, front_mqtt: u16) -> String {
    let servers = |ports: &[u16]| {
        ports
            .iter()
            .enumerate()
            .map(|(i, p)| format!("  server n{i} 127.0.0.1:{p} check inter 500ms fall 1 rise 1\n"))
            .collect::<String>()
    };
    format!(
        "defaults\n  mode tcp\n  maxconn 9000\n  timeout connect 1s\n  timeout client 1h\n  timeout server 1h\n  retries 3\n  option redispatch\n\
         frontend https\n  bind 127.0.0.1:{front_https}\n  default_backend https_nodes\n\
         backend https_nodes\n  balance roundrobin\n{}\
         frontend mqtt\n  bind 127.0.0.1:{front_mqtt}\n  default_backend mqtt_nodes\n\
         backend mqtt_nodes\n  balance roundrobin\n{}",
        servers(https),
        servers(mqtt),
    )
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
