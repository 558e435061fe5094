//! The real `adit hub` binary in a child process, as a user runs it.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const STDOUT_FILE: &str = "hub.stdout";

/// A running `adit hub` with its own working directory (the hub's data is `./adit-data`).
#[derive(Debug)]
pub struct HubProcess {
    bin: PathBuf,
    child: Option<Child>,
    /// The bound HTTPS address.
    pub addr: SocketAddr,
    /// The bound MQTT-over-TLS address.
    pub mqtt_addr: SocketAddr,
    /// The bound admin (metrics) address.
    pub admin_addr: SocketAddr,
    /// What the hub printed on stdout before it was ready.
    pub banner: String,
    workdir: tempfile::TempDir,
    args: Vec<String>,
    envs: Vec<(String, String)>,
}

/// `adit hub` flags for port 0 on every listener (the kernel picks; the hub reports them).
pub const FREE_PORTS: [&str; 6] = [
    "--https-port",
    "0",
    "--mqtt-port",
    "0",
    "--admin-addr",
    "127.0.0.1:0",
];

impl HubProcess {
    /// Starts `bin hub` in a fresh working directory on 127.0.0.1 port 0.
    pub fn start(bin: impl Into<PathBuf>) -> Self {
        Self::start_on_free_ports(bin, &[])
    }

    /// Like [`HubProcess::start`], with `extra` hub flags.
    pub fn start_on_free_ports(bin: impl Into<PathBuf>, extra: &[&str]) -> Self {
        let mut args = FREE_PORTS.to_vec();
        args.extend_from_slice(extra);
        Self::start_with_args(bin, &args)
    }

    /// Starts `bin hub ARGS --listen-addr 127.0.0.1` in a fresh working directory (`ARGS` may
    /// name another `--listen-addr`, e.g. `::1`).
    pub fn start_with_args(bin: impl Into<PathBuf>, args: &[&str]) -> Self {
        Self::start_with_env(bin, args, &[])
    }

    /// Like [`HubProcess::start_with_args`], with these environment variables set (e.g.
    /// `ADIT_LOG`), on restarts too.
    pub fn start_with_env(bin: impl Into<PathBuf>, args: &[&str], envs: &[(&str, &str)]) -> Self {
        let workdir = tempfile::tempdir().expect("temp dir");
        let args = args.iter().map(|a| a.to_string()).collect();
        let envs = envs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Self::spawn(bin.into(), workdir, args, envs)
    }

    fn spawn(
        bin: PathBuf,
        workdir: tempfile::TempDir,
        args: Vec<String>,
        envs: Vec<(String, String)>,
    ) -> Self {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(workdir.path().join("hub.log"))
            .expect("log file");
        let listen: &[&str] = if args.iter().any(|a| a == "--listen-addr") {
            &[]
        } else {
            &["--listen-addr", "127.0.0.1"]
        };
        let mut child = Command::new(&bin)
            .arg("hub")
            .args(&args)
            .args(listen)
            .current_dir(workdir.path())
            .env_remove("ADIT_DATA_DIR")
            .envs(envs.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("adit hub starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut copy = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(workdir.path().join(STDOUT_FILE))
            .expect("stdout copy");
        let (tx, rx) = mpsc::channel();
        // A thread, because std pipes have no read timeout; it ends when the hub exits. It
        // keeps reading after the banner (into the stdout copy), so `--log-stdout` never
        // blocks on a full pipe.
        std::thread::spawn(move || {
            use std::io::Write as _;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = writeln!(copy, "{line}");
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut banner = String::new();
        let (mut addr, mut mqtt_addr, mut admin_addr) = (None, None, None);
        while addr.is_none() || mqtt_addr.is_none() || admin_addr.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx.recv_timeout(left).unwrap_or_else(|_| {
                panic!("hub did not report its addresses; stdout so far:\n{banner}")
            });
            banner.push_str(&line);
            banner.push('\n');
            if let Some(a) = line.strip_prefix("HTTPS listening on ") {
                addr = a.parse().ok();
            }
            if let Some(a) = line.strip_prefix("MQTT listening on ") {
                mqtt_addr = a.parse().ok();
            }
            if let Some(a) = line.strip_prefix("Admin listening on http://") {
                admin_addr = a.parse().ok();
            }
        }
        let (Some(addr), Some(mqtt_addr), Some(admin_addr)) = (addr, mqtt_addr, admin_addr) else {
            unreachable!("the loop ends only when both are set")
        };
        Self {
            bin,
            child: Some(child),
            addr,
            mqtt_addr,
            admin_addr,
            banner,
            workdir,
            args,
            envs,
        }
    }

    /// The hub's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// The hub's working directory (commands run here find `./adit-data`).
    pub fn workdir(&self) -> &Path {
        self.workdir.path()
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.workdir.path().join("adit-data")
    }

    /// The dev CA certificate.
    pub fn ca_path(&self) -> PathBuf {
        self.data_dir().join("tls/ca.pem")
    }

    /// The owner connection string the hub saved.
    pub fn owner_connection_string(&self) -> String {
        std::fs::read_to_string(self.data_dir().join("iothubowner.connection-string"))
            .expect("connection string file")
            .trim()
            .to_string()
    }

    /// Everything the hub printed on stdout so far (banner, `--log-stdout` records), across
    /// restarts.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.workdir.path().join(STDOUT_FILE)).unwrap_or_default()
    }

    /// What the hub logged to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.workdir.path().join("hub.log")).unwrap_or_default()
    }

    /// `adit device create ID` against this hub: the device's connection string. Panics
    /// with the CLI's error when it fails.
    pub fn create_device(&self, id: &str) -> String {
        let out = self.cli(&["device", "create", id], &[]);
        assert!(
            out.status.success(),
            "adit device create {id}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Runs `adit ARGS` in the hub's working directory with `envs` and no inherited
    /// `ADIT_*` settings.
    pub fn cli(&self, args: &[&str], envs: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args).current_dir(self.workdir.path());
        for var in ["ADIT_CONNECTION_STRING", "ADIT_CA_FILE", "ADIT_DATA_DIR"] {
            cmd.env_remove(var);
        }
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd.output().expect("adit runs")
    }

    /// Sends SIGTERM and waits (up to 45 s: the hub's default shutdown grace for open streams
    /// is 30 s) for the hub to exit.
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("hub running");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(45);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("hub did not exit within 45 s of SIGTERM\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the hub with SIGKILL (a crash: no shutdown code runs), waits for it to be gone,
    /// and starts it again on the same data directory with the same flags.
    pub fn crash_and_restart(mut self) -> Self {
        self.crash();
        self.start_again()
    }

    /// Kills the hub with SIGKILL (a crash: no shutdown code runs) and waits for it to be
    /// gone; [`HubProcess::start_again`] brings it back.
    pub fn crash(&mut self) {
        let mut child = self.child.take().expect("hub running");
        let _ = Command::new("kill")
            .args(["-KILL", &child.id().to_string()])
            .status();
        let status = child.wait().expect("wait");
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9),
            "hub died of SIGKILL"
        );
    }

    /// Starts a crashed hub again on the same data directory with the same flags (on the
    /// same ports only where the flags name them).
    pub fn start_again(mut self) -> Self {
        assert!(self.child.is_none(), "the hub is still running");
        let bin = self.bin.clone();
        let workdir = std::mem::replace(&mut self.workdir, tempfile::tempdir().expect("temp dir"));
        Self::spawn(bin, workdir, self.args.clone(), self.envs.clone())
    }

    /// Stops the hub and starts it again on the same data directory.
    pub fn restart(mut self) -> Self {
        let status = self.stop();
        assert!(status.success(), "hub exited with {status}");
        let bin = self.bin.clone();
        let workdir = std::mem::replace(&mut self.workdir, tempfile::tempdir().expect("temp dir"));
        Self::spawn(bin, workdir, self.args.clone(), self.envs.clone())
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
