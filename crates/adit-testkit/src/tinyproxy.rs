//! A real HTTP CONNECT proxy, Debian's tinyproxy, on a loopback port. It runs in its own mount
//! namespace with a private `/etc/hosts`, so the names given to it resolve at the proxy and
//! nowhere else, as a hub's name on a network only the proxy can see.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

/// Where Debian's package puts the binary.
pub const TINYPROXY: &str = "/usr/bin/tinyproxy";

/// A running tinyproxy, killed on drop.
#[derive(Debug)]
pub struct Tinyproxy {
    /// Loopback port it listens on.
    pub port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl Tinyproxy {
    /// Starts tinyproxy where each `(name, address)` of `hosts` resolves (only there); with
    /// `basic_auth` (user, password) it requires those credentials. Needs root (a mount
    /// namespace) and the `tinyproxy` package; panics saying so when they are missing.
    pub fn start(hosts: &[(&str, &str)], basic_auth: Option<(&str, &str)>) -> Self {
        assert!(
            std::path::Path::new(TINYPROXY).exists(),
            "{TINYPROXY} not found: the HTTP proxy tests need Debian's tinyproxy \
             (apt-get install tinyproxy; .ci/run installs it when missing)"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        let mut etc_hosts = String::from("127.0.0.1 localhost\n::1 localhost\n");
        for (name, address) in hosts {
            etc_hosts.push_str(&format!("{address} {name}\n"));
        }
        std::fs::write(d.join("hosts"), etc_hosts).expect("hosts file");
        let port = free_port();
        let mut config = format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 600\nMaxClients 200\nLogLevel Connect\n\
             LogFile \"{log}\"\nDisableViaHeader Yes\n",
            log = d.join("tinyproxy.log").display()
        );
        if let Some((user, password)) = basic_auth {
            config.push_str(&format!("BasicAuth {user} {password}\n"));
        }
        std::fs::write(d.join("tinyproxy.conf"), config).expect("config file");
        // unshare execs sh, which execs tinyproxy: one process, the child's pid. The bind
        // mount is private to the new namespace (unshare's default propagation).
        let mut child = Command::new("unshare")
            .args([
                "--mount",
                "sh",
                "-c",
                r#"mount --bind "$1" /etc/hosts && exec "$2" -d -c "$3""#,
                "sh",
            ])
            .arg(d.join("hosts"))
            .arg(TINYPROXY)
            .arg(d.join("tinyproxy.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("stderr")).expect("stderr file"))
            .spawn()
            .expect("unshare runs");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "tinyproxy exited ({status}) before listening (a mount namespace needs root):\n{}\n{}",
                    std::fs::read_to_string(d.join("stderr")).unwrap_or_default(),
                    std::fs::read_to_string(d.join("tinyproxy.log")).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "tinyproxy never listened on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { port, child, dir }
    }

    /// `http://127.0.0.1:PORT`, with `user:password@` when given.
    pub fn url(&self, credentials: Option<(&str, &str)>) -> String {
        match credentials {
            Some((user, password)) => format!("http://{user}:{password}@127.0.0.1:{}", self.port),
            None => format!("http://127.0.0.1:{}", self.port),
        }
    }

    /// Its log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("tinyproxy.log")
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The `host:port` of every CONNECT request it received so far, in order.
    pub fn connects(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter_map(|l| l.split_once("): CONNECT ").map(|(_, rest)| rest))
            .filter_map(|rest| rest.split_whitespace().next().map(str::to_string))
            .collect()
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
