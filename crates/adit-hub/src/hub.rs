//! Wiring: open the registry, set up TLS, bind the listeners, serve until told to stop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use adit_proto::ConnectionString;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admin::{self, AdminState};
use crate::api::{self, AppState};
use crate::auth::Authenticator;
use crate::config::HubConfig;
use crate::diagnostics::{Diagnostics, DiagnosticsConfig};
use crate::gateway::{self, Gateway};
use crate::metrics::Metrics;
use crate::mqtt::{self, MqttContext};
use crate::presence::Presence;
use crate::registry::{Registry, RegistryError};
use crate::server::{self, Admission};
use crate::streams::RecordLog;
use crate::streams::Streams;
use crate::throttle::AuthThrottle;
use crate::tls::{self, ServerTls, TlsError};

mod names;
use names::HubNames;

/// File in the data directory holding the `iothubowner` connection string.
pub const OWNER_CONNECTION_STRING_FILE: &str = "iothubowner.connection-string";

/// Why the hub could not start.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The data directory could not be created or written.
    #[error("data directory {path}")]
    DataDir {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The registry could not be opened.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// TLS could not be set up.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// A listener could not bind.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// A setting is invalid.
    #[error("{0}")]
    Config(String),
    /// The diagnostics log cannot be opened.
    #[error("cannot open the diagnostics log in {path}")]
    Log {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The `iothubowner` policy is missing from the registry.
    #[error("the registry has no iothubowner policy")]
    NoOwnerPolicy,
    /// NATS could not be reached (`nats_url`).
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
}

/// What a start found or made, for the operator.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    /// True when this start created the policies (a new hub).
    pub first_start: bool,
    /// The `iothubowner` connection string (a secret).
    pub owner_connection_string: ConnectionString,
    /// Where that string was written (mode 0600).
    pub connection_string_file: PathBuf,
    /// The dev CA certificate clients must trust, when TLS material was generated.
    pub ca_path: Option<PathBuf>,
}

/// A hub whose listeners are bound, ready to [`run`](Hub::run).
#[derive(Debug)]
#[must_use = "a bound hub does nothing until run"]
pub struct Hub {
    registry: Registry,
    auth: Authenticator,
    tls: ServerTls,
    https: TcpListener,
    https_addr: SocketAddr,
    mqtt: TcpListener,
    mqtt_addr: SocketAddr,
    presence: Presence,
    gateway: Gateway,
    streams: Streams,
    tracker: TaskTracker,
    stop: CancellationToken,
    // Cancelled when the shutdown grace runs out: closes the streams still open.
    abort: CancellationToken,
    // The diagnostics writer outlives every other task, so records written while the hub
    // drains are kept.
    log_tracker: TaskTracker,
    log_stop: CancellationToken,
    metrics: Metrics,
    diagnostics: Diagnostics,
    admin: TcpListener,
    admin_addr: SocketAddr,
    streaming_endpoint: String,
    bootstrap: Bootstrap,
    cluster: Option<crate::cluster::Cluster>,
    config: HubConfig,
}

// The registry holds every key, so the directory is private to the hub's user.
fn create_private_dir(path: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(path)
}

fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), HubError> {
    let listener = crate::listen::bind(addr).map_err(|source| HubError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| HubError::Bind { addr, source })?;
    Ok((listener, bound))
}

impl Hub {
    /// Opens the registry, prepares TLS and binds the listeners. Port 0 picks a free port.
    pub async fn bind(config: HubConfig) -> Result<Self, HubError> {
        // Before anything is created: a refused configuration leaves nothing behind.
        let postgres = config
            .database_url
            .as_deref()
            .is_some_and(|u| u.starts_with("postgres:") || u.starts_with("postgresql:"));
        if config.nats_url.is_some() && !postgres {
            return Err(HubError::Config(
                "--nats-url links nodes that share one registry: give them --database-url postgres://..."
                    .into(),
            ));
        }
        if config.nats_url.is_some() && config.public_url.is_none() {
            tracing::warn!(
                "--nats-url without --public-url: this node's stream URLs name --hostname, usually the load balancer, which may send a stream's halves to other nodes; give each node --public-url with an address that reaches it alone"
            );
        }
        let data_dir = &config.data_dir;
        create_private_dir(data_dir).map_err(|source| HubError::DataDir {
            path: data_dir.clone(),
            source,
        })?;
        let registry = match &config.database_url {
            Some(url) => Registry::open(url).await?,
            None => Registry::open_in_dir(data_dir).await?,
        };
        let first_start = registry.ensure_default_policies().await?;
        // Before any listener exists: devices this node held when it last ran are gone.
        crate::node::validate(&config.node_id).map_err(HubError::Config)?;
        if config.nats_url.is_some() && registry.backend() == crate::registry::Backend::Postgres {
            crate::cluster::leases::refuse_duplicate_node(&registry, &config.node_id).await?;
        }
        if config.nats_url.is_none() && registry.backend() == crate::registry::Backend::Postgres {
            crate::cluster::leases::warn_if_cluster_without_nats(&registry, &config.node_id).await;
        }
        let cleared = registry.clear_node_connections(&config.node_id).await?;
        if cleared > 0 {
            tracing::info!(node = %config.node_id, devices = cleared, "marked devices left connected by the previous run as disconnected");
        }

        let (https, https_addr) = bind(SocketAddr::new(config.listen_addr, config.https_port))?;
        let names = HubNames::new(&config, https_addr.port())?;
        let tls = tls::load(&config.tls, data_dir, &names.all)?;
        let (mqtt, mqtt_addr) = bind(SocketAddr::new(config.listen_addr, config.mqtt.port))?;

        let owner = registry
            .policy("iothubowner")
            .await?
            .ok_or(HubError::NoOwnerPolicy)?;
        let port = (https_addr.port() != 443).then_some(https_addr.port());
        let owner_connection_string =
            ConnectionString::for_policy(&names.hostname, port, "iothubowner", owner.primary_key);
        let connection_string_file = data_dir.join(OWNER_CONNECTION_STRING_FILE);
        // Rewritten on every start so that it always names the port the hub listens on.
        crate::secret_file::write_secret_file(
            &connection_string_file,
            &owner_connection_string.to_string(),
        )
        .map_err(|source| HubError::DataDir {
            path: connection_string_file.clone(),
            source,
        })?;

        let auth = Authenticator::new(registry.clone(), names.all.clone()).await?;
        // Tasks and cancellation exist from bind on, so the stream machinery can be built (and
        // inspected) before run; run links the caller's shutdown token to `stop`.
        let tracker = TaskTracker::new();
        let stop = CancellationToken::new();
        let abort = CancellationToken::new();
        let (log_tracker, log_stop) = (TaskTracker::new(), CancellationToken::new());
        let presence = Presence::default();
        let metrics = Metrics::default();
        let log_dir = data_dir.join("logs");
        let diagnostics = Diagnostics::start(
            DiagnosticsConfig {
                dir: log_dir.clone(),
                max_file_bytes: config.log.max_file_bytes,
                keep_files: config.log.keep_files,
                stdout: config.log.stdout,
                resource_id: format!("/adit/hubs/{}", names.hostname),
                location: "self-hosted".to_string(),
            },
            &log_tracker,
            log_stop.clone(),
        )
        .map_err(|source| HubError::Log {
            path: log_dir,
            source,
        })?;
        let gateway = Gateway::new(
            config.gateway.clone(),
            tracker.clone(),
            abort.clone(),
            metrics.clone(),
        );
        let records = RecordLog::new(
            config.streams.records_kept,
            metrics.clone(),
            Some(diagnostics.clone()),
        );
        let streams = Streams::new(
            config.streams.clone(),
            registry.clone(),
            presence.clone(),
            gateway.clone(),
            names.wss_url(),
            tracker.clone(),
            records,
            &config.node_id,
        );
        // Streams this node was relaying when it died last time: their records, now.
        let lost = registry.take_node_streams(&config.node_id).await?;
        streams.record_lost(&config.node_id, &lost);
        let cluster = match &config.nats_url {
            Some(url) => {
                let cluster_id = registry.cluster_id().await?;
                let cluster =
                    crate::cluster::Cluster::connect(url, &config.node_id, &cluster_id).await?;
                streams.join_cluster(cluster.clone());
                tracing::info!(node = %config.node_id, "joined the cluster over NATS");
                Some(cluster)
            }
            None => None,
        };
        let admin = TcpListener::bind(config.admin_addr)
            .await
            .map_err(|source| HubError::Bind {
                addr: config.admin_addr,
                source,
            })?;
        let admin_addr = admin.local_addr().map_err(|source| HubError::Bind {
            addr: config.admin_addr,
            source,
        })?;
        let bootstrap = Bootstrap {
            first_start,
            owner_connection_string,
            connection_string_file,
            ca_path: tls.ca_path.clone(),
        };
        Ok(Self {
            cluster,
            registry,
            auth,
            tls,
            https,
            https_addr,
            mqtt,
            mqtt_addr,
            presence,
            gateway,
            streams,
            tracker,
            stop,
            abort,
            log_tracker,
            log_stop,
            metrics,
            diagnostics,
            admin,
            admin_addr,
            streaming_endpoint: names.https_url(),
            bootstrap,
            config,
        })
    }

    /// The bound HTTPS address.
    pub fn https_addr(&self) -> SocketAddr {
        self.https_addr
    }

    /// The bound MQTT-over-TLS address.
    pub fn mqtt_addr(&self) -> SocketAddr {
        self.mqtt_addr
    }

    /// The bound admin (metrics) address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// The streaming endpoint discovery reports (`https://host:port`).
    pub fn streaming_endpoint(&self) -> &str {
        &self.streaming_endpoint
    }

    /// Connected device sessions.
    pub fn presence(&self) -> &Presence {
        &self.presence
    }

    /// The stream orchestrator (records of past streams, for embedding and tests).
    pub fn streams(&self) -> &Streams {
        &self.streams
    }

    /// What this start found or made.
    pub fn bootstrap(&self) -> &Bootstrap {
        &self.bootstrap
    }

    /// The registry (for embedding and tests).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Serves until `shutdown` is cancelled, then drains: stops accepting connections and
    /// device sessions at once, lets in-flight requests and open streams run for the grace
    /// period (`https_limits.shutdown_grace`), closes the streams still open with 1001 Going
    /// Away (each leaving its record), and closes the registry.
    pub async fn run(self, shutdown: CancellationToken) {
        let (tracker, stop) = (self.tracker.clone(), self.stop.clone());
        let link = stop.clone();
        tracker.spawn(async move {
            tokio::select! {
                () = shutdown.cancelled() => link.cancel(),
                () = link.cancelled() => {}
            }
        });
        let shutdown = stop;
        // REST and MQTT count their failures apart: one protocol's failures never answer
        // the other's requests as throttled.
        let state = AppState {
            registry: self.registry.clone(),
            auth: self.auth.clone(),
            throttle: AuthThrottle::new(self.config.auth_throttle),
            presence: self.presence.clone(),
            streams: self.streams.clone(),
            metrics: self.metrics.clone(),
            diagnostics: self.diagnostics.clone(),
            streaming_endpoint: self.streaming_endpoint.clone(),
            cluster: self.cluster.clone(),
        };
        if let Some(cluster) = &self.cluster {
            let (cluster, stop) = (cluster.clone(), shutdown.clone());
            let appliers = crate::cluster::registry_changes::Appliers {
                registry: self.registry.clone(),
                auth: self.auth.clone(),
                presence: self.presence.clone(),
                streams: self.streams.clone(),
            };
            tracker.spawn(async move { cluster.follow_registry_changes(appliers, stop).await });
            let answerer = crate::cluster::questions::Answerer {
                log_dir: self.diagnostics.dir().to_path_buf(),
                streaming_endpoint: self.streaming_endpoint.clone(),
                streams: self.streams.clone(),
            };
            let (asked, stop) = (self.cluster.clone(), shutdown.clone());
            if let Some(asked) = asked {
                tracker.spawn(async move { asked.answer_questions(answerer, stop).await });
            }
            tracker.spawn(crate::cluster::leases::run(
                self.registry.clone(),
                self.presence.clone(),
                self.streams.clone(),
                self.config.node_id.clone(),
                shutdown.clone(),
            ));
        }
        let mqtt_ctx = Arc::new(MqttContext {
            config: self.config.mqtt.clone(),
            auth: self.auth.clone(),
            registry: self.registry.clone(),
            node_id: Arc::from(self.config.node_id.as_str()),
            presence: self.presence.clone(),
            streams: self.streams.clone(),
            metrics: self.metrics.clone(),
            diagnostics: self.diagnostics.clone(),
            throttle: AuthThrottle::new(self.config.auth_throttle),
            slots: Arc::new(Semaphore::new(self.config.mqtt.max_connections)),
            tracker: tracker.clone(),
            cluster: self.cluster.clone(),
            shutdown: shutdown.clone(),
        });
        // Only a shared registry has device writers this node does not hear from.
        let resync = self
            .config
            .database_url
            .is_some()
            .then(|| crate::device_resync::Resync {
                registry: self.registry.clone(),
                presence: self.presence.clone(),
                streams: self.streams.clone(),
                node: self.config.node_id.clone(),
            });
        tracker.spawn(crate::policy_refresh::run(
            self.auth.clone(),
            self.presence.clone(),
            resync,
            self.config.policy_refresh,
            shutdown.clone(),
        ));
        let acceptor = TlsAcceptor::from(Arc::clone(&self.tls.config));
        let console = crate::console::ConsoleState {
            app: state.clone(),
            sessions: crate::console::Sessions::default(),
            tls: adit_transport::TlsOptions {
                ca_file: self.tls.ca_path.clone(),
            },
            tracker: tracker.clone(),
            shutdown: shutdown.clone(),
        };
        let router = api::router(state)
            .merge(crate::console::router(console))
            .merge(mqtt::websocket::router(mqtt_ctx.clone()))
            .merge(gateway::router(self.gateway.clone()));
        let limits = self.config.https_limits;
        let https_admission = Admission {
            slots: Arc::new(Semaphore::new(limits.max_connections)),
            handshake_timeout: limits.tls_handshake_timeout,
        };
        tracing::info!(https = %self.https_addr, mqtt = %self.mqtt_addr, "listeners ready");
        let http_shutdown = shutdown.clone();
        let https = server::accept_tls(
            self.https,
            acceptor.clone(),
            https_admission,
            shutdown.clone(),
            tracker.clone(),
            move |tls, peer, slot| {
                server::serve_http(
                    tls,
                    peer,
                    slot,
                    router.clone(),
                    limits,
                    http_shutdown.clone(),
                )
            },
        );
        let mqtt = mqtt::listener::run(self.mqtt, acceptor, mqtt_ctx);
        let admin_state = AdminState {
            metrics: self.metrics.clone(),
            presence: self.presence.clone(),
            streams: self.streams.clone(),
            registry: self.registry.clone(),
        };
        let admin = admin::serve(self.admin, admin_state, shutdown.clone());
        tokio::join!(https, mqtt, admin);
        drain(
            &self.streams,
            &self.abort,
            &self.tracker,
            self.config.https_limits.shutdown_grace,
        )
        .await;
        self.registry.close().await;
        self.log_stop.cancel();
        self.log_tracker.close();
        // Bounded: a writer stuck on a stalled stdout (`--log-stdout | slow reader`) must not
        // hold the hub's exit; what it had not written is lost, and the binary's runtime
        // shutdown is bounded too.
        if tokio::time::timeout(Duration::from_secs(5), self.log_tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("the diagnostics writer did not finish within 5 s; leaving it");
        }
        tracing::info!("hub stopped");
    }
}

/// The listeners have stopped: waits for open streams up to the grace period, then closes
/// the rest, and waits for every task to end.
async fn drain(
    streams: &Streams,
    abort: &CancellationToken,
    tracker: &TaskTracker,
    grace: Duration,
) {
    let open = streams.active();
    if open > 0 {
        tracing::info!(
            streams = open,
            grace_s = grace.as_secs(),
            "draining: open streams may finish"
        );
    }
    let deadline = tokio::time::Instant::now() + grace;
    while streams.active() > 0 && tokio::time::Instant::now() < deadline {
        // Polled, not notified: a few wake-ups per second for the length of a shutdown
        // cost less than a notification on every stream's end.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let left = streams.active();
    if left > 0 {
        tracing::warn!(
            streams = left,
            "shutdown grace over; closing open streams (1001)"
        );
    }
    abort.cancel();
    tracker.close();
    // Relays close within 5 s of the abort; HTTP connections were given the same grace.
    let bound = Duration::from_secs(10);
    if tokio::time::timeout(bound, tracker.wait()).await.is_err() {
        tracing::warn!(
            tasks = tracker.len(),
            "tasks still running after the shutdown grace; leaving them"
        );
    }
}
