//! Where the device proxy sends each stream (`--target`, or `--map NAME=HOST:PORT`), and its
//! reload on SIGHUP: the command line and config file are read again, and new streams (and new
//! connections of open adit.stream.v1 sessions) go by the new map. Connections already made
//! are not touched.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::bail;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::cli::DeviceProxyArgs;

/// Where streams go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routes {
    /// Every name to one HOST:PORT.
    All(String),
    /// Each known name to its HOST:PORT; other names are refused.
    ByName(HashMap<String, String>),
}

impl Routes {
    /// From `--target` or `--map`; an entry that is not NAME=HOST:PORT, or whose name no
    /// stream can have, is refused.
    pub fn from_args(args: &DeviceProxyArgs) -> anyhow::Result<Self> {
        if let Some(t) = &args.target {
            return Ok(Self::All(t.clone()));
        }
        let mut map = HashMap::new();
        for m in &args.map {
            // The last '=': a stream name may hold '=', a HOST:PORT never does.
            let Some((name, target)) = m.rsplit_once('=') else {
                bail!("--map {m:?} is not NAME=HOST:PORT");
            };
            if name.is_empty() || !target.contains(':') {
                bail!("--map {m:?} is not NAME=HOST:PORT");
            }
            if let Err(e) = adit_proto::stream_name::check_stream_name(name) {
                bail!("--map {m:?}: no stream can be named {name:?}: {e}");
            }
            map.insert(name.to_string(), target.to_string());
        }
        Ok(Self::ByName(map))
    }

    fn target(&self, name: &str) -> Option<&str> {
        match self {
            Self::All(t) => Some(t),
            Self::ByName(m) => m.get(name).map(String::as_str),
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::All(t) => format!("every stream to {t}"),
            Self::ByName(m) => {
                let mut names: Vec<&str> = m.keys().map(String::as_str).collect();
                names.sort_unstable();
                format!("{} names: {}", names.len(), names.join(", "))
            }
        }
    }
}

/// The routes in force, shared by every task that routes; replaced whole on reload.
#[derive(Debug, Clone)]
pub struct StreamMap {
    current: watch::Sender<Arc<Routes>>,
}

impl StreamMap {
    pub fn new(routes: Routes) -> Self {
        Self {
            current: watch::Sender::new(Arc::new(routes)),
        }
    }

    /// The target for stream (or connection) name `name` now.
    pub fn target(&self, name: &str) -> Option<String> {
        self.current.borrow().target(name).map(str::to_string)
    }

    /// Puts `routes` in force; whether they differ from those they replace.
    fn replace(&self, routes: Routes) -> bool {
        self.current.send_if_modified(|current| {
            let changed = **current != routes;
            if changed {
                *current = Arc::new(routes);
            }
            changed
        })
    }

    /// Reads the command line and config file again on each SIGHUP until `shutdown`. A file
    /// that cannot be read or holds a bad map is reported and the routes in force are kept.
    pub async fn reload_on_sighup(self, shutdown: CancellationToken) {
        use tokio::signal::unix::{SignalKind, signal};
        // Watching SIGHUP also keeps its default action (ending the process) from applying.
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch SIGHUP; the stream map is fixed until restart");
                return;
            }
        };
        let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
        loop {
            tokio::select! {
                got = hangups.recv() => if got.is_none() { return },
                () = shutdown.cancelled() => return,
            }
            match self.reload(&argv, |var| std::env::var_os(var)) {
                Ok(true) => {
                    tracing::info!(routes = %self.current.borrow().describe(), "SIGHUP: stream map reloaded; open streams are unchanged");
                }
                Ok(false) => tracing::info!("SIGHUP: the stream map is unchanged"),
                Err(e) => {
                    tracing::warn!(error = %e, "SIGHUP: cannot reload the stream map; keeping the one in force");
                }
            }
        }
    }

    /// Reads `argv` and its config file as at start and puts their routes in force; whether
    /// they changed.
    pub fn reload(
        &self,
        argv: &[std::ffi::OsString],
        env: impl Fn(&str) -> Option<std::ffi::OsString>,
    ) -> anyhow::Result<bool> {
        let cli = crate::config_file::load(argv, env)?;
        let Some(args) = cli.command.into_device_proxy() else {
            bail!("the command line is no longer `adit device-proxy`");
        };
        Ok(self.replace(Routes::from_args(&args)?))
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;
    use std::io::Write as _;

    use super::*;

    fn argv(config: &std::path::Path) -> Vec<OsString> {
        ["adit", "device-proxy", "--config"]
            .into_iter()
            .map(OsString::from)
            .chain([config.as_os_str().to_owned()])
            .collect()
    }

    fn write(path: &std::path::Path, text: &str) {
        let mut f = std::fs::File::create(path).expect("file");
        f.write_all(text.as_bytes()).expect("write");
    }

    #[test]
    fn a_reload_puts_the_files_new_map_in_force_and_keeps_it_on_a_bad_one() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("device-proxy.toml");
        write(
            &path,
            "connection_string = \"x\"\nmap = [\"ssh=127.0.0.1:22\"]\n",
        );
        let no_env = |_: &str| None;
        let map = StreamMap::new(Routes::ByName(HashMap::new()));
        assert!(map.reload(&argv(&path), no_env).expect("reloads"));
        assert_eq!(map.target("ssh").as_deref(), Some("127.0.0.1:22"));
        assert_eq!(map.target("web"), None);
        assert!(
            !map.reload(&argv(&path), no_env).expect("reloads"),
            "unchanged"
        );

        write(
            &path,
            "connection_string = \"x\"\nmap = [\"ssh=127.0.0.1:22\", \"web=127.0.0.1:80\"]\n",
        );
        assert!(map.reload(&argv(&path), no_env).expect("reloads"));
        assert_eq!(map.target("web").as_deref(), Some("127.0.0.1:80"));

        // A bad map, or a file that is not TOML: refused, the map in force kept.
        write(&path, "connection_string = \"x\"\nmap = [\"web\"]\n");
        let e = map.reload(&argv(&path), no_env).expect_err("refused");
        assert!(e.to_string().contains("is not NAME=HOST:PORT"), "{e}");
        write(&path, "map = [");
        assert!(map.reload(&argv(&path), no_env).is_err());
        assert_eq!(map.target("web").as_deref(), Some("127.0.0.1:80"));
    }
}
