//! A real OpenSSH server on a loopback port with throwaway host and user keys.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::NetNs;

/// A running `sshd` that accepts one throwaway key for the current user.
#[derive(Debug)]
pub struct Sshd {
    /// Loopback port it listens on.
    pub port: u16,
    /// The private key that logs in.
    pub key: PathBuf,
    /// The user to log in as (whoever runs the tests).
    pub user: String,
    child: Child,
    dir: tempfile::TempDir,
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl Sshd {
    /// Starts Debian's `/usr/sbin/sshd` (package openssh-server) on this namespace's loopback.
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// The same, on the loopback of `ns` (a device's own network).
    pub fn start_in(ns: &NetNs) -> Self {
        Self::start_with(Some(ns))
    }

    fn start_with(ns: Option<&NetNs>) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        for (name, kind) in [("host_key", "ed25519"), ("user_key", "ed25519")] {
            run(
                Command::new("ssh-keygen")
                    .args(["-q", "-t", kind, "-N", "", "-f"])
                    .arg(d.join(name)),
                "ssh-keygen",
            );
        }
        std::fs::copy(d.join("user_key.pub"), d.join("authorized_keys")).expect("authorized_keys");
        // sshd wants its privilege-separation directory when started as root.
        let _ = std::fs::create_dir_all("/run/sshd");
        let port = free_port();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {host}\nAuthorizedKeysFile {auth}\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n\
             PermitRootLogin prohibit-password\nPidFile {pid}\nMaxStartups 100:30:200\nMaxSessions 100\n\
             Subsystem sftp internal-sftp\nLogLevel ERROR\n",
            host = d.join("host_key").display(),
            auth = d.join("authorized_keys").display(),
            pid = d.join("sshd.pid").display(),
        );
        std::fs::write(d.join("sshd_config"), config).expect("config");
        let mut sshd = match ns {
            Some(ns) => ns.command("/usr/sbin/sshd"),
            None => Command::new("/usr/sbin/sshd"),
        };
        let child = sshd
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sshd starts (apt-get install openssh-server)");
        let deadline = Instant::now() + Duration::from_secs(20);
        let listening = || match ns {
            None => std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
            Some(ns) => ns
                .command("bash")
                .args(["-c", &format!("exec 3<>/dev/tcp/127.0.0.1/{port}")])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success()),
        };
        while !listening() {
            assert!(Instant::now() < deadline, "sshd did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        let user = std::env::var("USER")
            .ok()
            .or_else(|| {
                Command::new("id")
                    .arg("-un")
                    .output()
                    .ok()
                    .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            })
            .unwrap_or_else(|| "root".to_string());
        Self {
            port,
            key: d.join("user_key"),
            user,
            child,
            dir,
        }
    }

    /// The host key's SHA-256 fingerprint as OpenSSH prints it (`SHA256:` and unpadded
    /// base64), from `ssh-keygen -l`: what a user compares before trusting it.
    pub fn host_key_fingerprint(&self) -> String {
        let out = Command::new("ssh-keygen")
            .args(["-l", "-E", "sha256", "-f"])
            .arg(self.dir.path().join("host_key.pub"))
            .output()
            .expect("ssh-keygen -l");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .nth(1)
            .expect("a fingerprint")
            .to_string()
    }

    /// A scratch directory that lives as long as the server.
    pub fn scratch(&self) -> &Path {
        self.dir.path()
    }

    /// `ssh`/`scp` options: this key, no host-key prompts, no config files, batch mode.
    pub fn client_options(&self) -> Vec<String> {
        vec![
            "-F".into(),
            "/dev/null".into(),
            "-i".into(),
            self.key.display().to_string(),
            "-o".into(),
            "StrictHostKeyChecking=no".into(),
            "-o".into(),
            "UserKnownHostsFile=/dev/null".into(),
            "-o".into(),
            "BatchMode=yes".into(),
            "-o".into(),
            "LogLevel=ERROR".into(),
        ]
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
