//! The one start-up path: `Application::build` turns a `Config` into a
//! running service with its bound ports. `main`, the tests and the
//! benchmarks all start authd through it; shutdown is one token handed to
//! every listener and background task.
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, DatabaseConfig, ShimArgs};
use crate::embedded_postgres::{
    EmbeddedPostgres, EmbeddedPostgresError, SupervisedPostgres, running_server_config,
};
use crate::http::ShimState;
use crate::service::AuthService;
use crate::store::{Store, StoreConfig, migrate};

pub struct Application {
    grpc_addr: SocketAddr,
    http_addr: Option<SocketAddr>,
    metrics_addr: Option<SocketAddr>,
    shutdown_grace: Duration,
    service: AuthService,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<anyhow::Result<()>>>,
    /// The HTTP shim, stopped first on shutdown.
    http_task: Option<JoinHandle<anyhow::Result<()>>>,
    embedded: Option<SupervisedPostgres>,
}

/// The database a command uses: an existing one, or a private one started
/// for it (which is stopped again when this is dropped or shut down).
pub struct Database {
    pub store: Store,
    pub embedded: Option<EmbeddedPostgres>,
}

impl Database {
    pub async fn open(
        config: &DatabaseConfig,
        pool_size: usize,
        timeout: Duration,
    ) -> anyhow::Result<Database> {
        let (pg, embedded) = match config {
            DatabaseConfig::Connect(pg) => ((**pg).clone(), None),
            DatabaseConfig::Embedded(options) => {
                match EmbeddedPostgres::start(options.clone()).await {
                    Ok(embedded) => {
                        embedded.ensure_database("authd").await?;
                        (embedded.connect_config("authd"), Some(embedded))
                    }
                    // Another authd (say, the running service, while an operator
                    // creates an account) already runs this data directory's
                    // PostgreSQL: use it rather than fail.
                    Err(EmbeddedPostgresError::AlreadyRunning { pid, data_dir }) => {
                        let pg = running_server_config(&data_dir, "authd").ok_or_else(|| {
                        anyhow::anyhow!(
                            "data directory {} is in use by postgres (pid {pid}) whose socket cannot be found",
                            data_dir.display()
                        )
                    })?;
                        tracing::info!(pid, data_dir = %data_dir.display(), "using the private PostgreSQL already running on the data directory");
                        (pg, None)
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        let store = Store::new(StoreConfig {
            pg,
            max_connections: pool_size,
            acquire_timeout: timeout,
            statement_timeout: timeout,
        })?;
        let applied = migrate::run(&store)
            .await
            .context("applying database migrations")?;
        if applied > 0 {
            tracing::info!(
                applied,
                version = migrate::latest_version(),
                "database schema is up to date"
            );
        }
        Ok(Database { store, embedded })
    }

    pub async fn close(self) -> anyhow::Result<()> {
        if let Some(pg) = self.embedded {
            pg.stop().await?;
        }
        Ok(())
    }
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        let database =
            Database::open(&config.database, config.db_pool_size, config.db_timeout).await?;
        // The service signs with a JWT key from its first request on.
        AuthService::ensure_signing_key(&database.store)
            .await
            .map_err(|e| anyhow::anyhow!("creating the JWT signing key: {e}"))?;
        let service = AuthService::new(database.store.clone(), config.service.clone())
            .await
            .map_err(|e| anyhow::anyhow!("starting the service: {e}"))?;

        let listener = TcpListener::bind(config.grpc_addr)
            .await
            .with_context(|| format!("binding the gRPC listener on {}", config.grpc_addr))?;
        let grpc_addr = listener.local_addr()?;

        let shutdown = CancellationToken::new();
        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        // PostgreSQL answered a moment ago (the migrations ran), so every
        // service starts out SERVING, by name too, before the first call can
        // ask; the health watcher takes over from here.
        for name in crate::grpc::SERVICE_NAMES.iter() {
            health_reporter
                .set_service_status(*name, tonic_health::ServingStatus::Serving)
                .await;
        }
        let mut tasks = Vec::new();
        if config.service.cache_capacity > 0 {
            // Until it has connected, introspection bypasses the cache.
            let store = database.store.clone();
            let cache = service.cache().clone();
            let stop = shutdown.clone();
            tasks.push(tokio::spawn(async move {
                crate::service::cache::run_invalidation_listener(store, cache, stop).await;
                Ok(())
            }));
            tracing::info!(
                capacity = config.service.cache_capacity,
                "introspection cache on; it is used once the invalidation listener has connected"
            );
        } else {
            tracing::info!(
                "introspection cache off (--cache-capacity 0): every introspection reads PostgreSQL"
            );
        }
        {
            let service = service.clone();
            let stop = shutdown.clone();
            let interval = config.health_interval;
            tasks.push(tokio::spawn(async move {
                crate::grpc::watch_health(service, health_reporter, interval, stop).await;
                Ok(())
            }));
        }
        if let Some(interval) = config.purge_interval {
            let store = database.store.clone();
            let stop = shutdown.clone();
            tasks.push(tokio::spawn(async move {
                run_purge(store, interval, stop).await;
                Ok(())
            }));
        }
        {
            // Signing keys: reloaded on rotation, here and on every replica.
            let service = service.clone();
            let stop = shutdown.clone();
            tasks.push(tokio::spawn(async move {
                crate::service::keys::run_key_watcher(service, stop).await;
                Ok(())
            }));
        }
        // The in-process shim calls the core's services directly (see
        // grpc::in_process), built before health_service moves below.
        let shim_channel = match &config.http {
            Some(_) => Some(crate::grpc::in_process(
                service.clone(),
                config.request_timeout,
                health_service.clone(),
            )?),
            None => None,
        };
        {
            let service = service.clone();
            let stop = shutdown.clone();
            let options = crate::grpc::GrpcOptions {
                trusted_proxies: config.trusted_proxies.clone(),
                request_timeout: config.request_timeout,
                tls: config.grpc_tls.clone(),
                limits: config.grpc_connections,
            };
            tasks.push(tokio::spawn(async move {
                crate::grpc::serve(
                    listener,
                    service,
                    options,
                    health_service,
                    stop.cancelled_owned(),
                )
                .await
            }));
        }
        tracing::info!(
            %grpc_addr,
            tls = config.grpc_tls.is_some(),
            client_certificates = %config
                .grpc_tls
                .as_ref()
                .and_then(|tls| tls.client_auth())
                .map_or("off", |mode| mode.as_str()),
            "authd gRPC listening"
        );

        let mut http_task = None;
        let http_addr = match &config.http {
            Some(http) => {
                // The shim is a gRPC client of this very core, as when it
                // runs alone, through the in-process channel.
                let channel = shim_channel.clone().context("shim channel")?;
                let shim = ShimState::in_process(channel, http.shim.clone())
                    .with_metrics(service.metrics().clone(), config.metrics_addr.is_none());
                let listener = TcpListener::bind(http.addr)
                    .await
                    .with_context(|| format!("binding the HTTP listener on {}", http.addr))?;
                let addr = listener.local_addr()?;
                let stop = shutdown.clone();
                let tls = http.tls.clone();
                let limits = http.connections;
                http_task = Some(tokio::spawn(async move {
                    crate::http::serve_with_tls(listener, shim, tls, limits, stop.cancelled_owned())
                        .await
                }));
                tracing::info!(http_addr = %addr, tls = http.tls.is_some(), "authd HTTP listening");
                Some(addr)
            }
            None => None,
        };
        let metrics_addr = match config.metrics_addr {
            Some(addr) => {
                let (addr, task) =
                    serve_metrics(addr, service.metrics().clone(), shutdown.clone()).await?;
                tasks.push(task);
                Some(addr)
            }
            None => {
                if http_addr.is_none() {
                    tracing::info!(
                        "metrics are not served: --http-addr is off and --metrics-addr unset"
                    );
                }
                None
            }
        };
        Ok(Application {
            grpc_addr,
            http_addr,
            metrics_addr,
            shutdown_grace: config.shutdown_grace,
            service,
            shutdown,
            tasks,
            http_task,
            embedded: database.embedded.map(EmbeddedPostgres::supervise),
        })
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// The listener of /metrics alone, when it has one (`--metrics-addr`).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    pub fn service(&self) -> &AuthService {
        &self.service
    }

    /// Serves until the signal, then shuts down gracefully.
    pub async fn run_until(self, signal: ShutdownSignal) -> anyhow::Result<()> {
        signal.recv().await;
        tracing::info!("shutting down: finishing in-flight requests");
        self.stop().await
    }

    /// Stops taking requests, lets in-flight ones finish (for at most the
    /// shutdown grace period: an idle client must not hold shutdown up
    /// forever), stops background tasks and the private PostgreSQL.
    ///
    /// The in-process shim calls the core directly, not through the gRPC
    /// listener, so its in-flight requests (one whose body is still
    /// arriving has made no core call yet) reach the core until they end.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        let mut result = Ok(());
        let deadline = tokio::time::Instant::now() + self.shutdown_grace;
        let grace = self.shutdown_grace;
        if let Some(task) = self.http_task {
            finish(task, deadline, grace, &mut result).await;
        }
        for task in self.tasks {
            finish(task, deadline, grace, &mut result).await;
        }
        // Idle pooled connections would otherwise each log an error when
        // the private PostgreSQL shuts down under them.
        self.service.store().close();
        if let Some(pg) = self.embedded {
            pg.stop().await?;
        }
        result
    }
}

/// Waits for a task until `deadline`, keeping its error in `result`; past
/// the deadline, aborts it.
async fn finish(
    mut task: JoinHandle<anyhow::Result<()>>,
    deadline: tokio::time::Instant,
    grace: Duration,
    result: &mut anyhow::Result<()>,
) {
    match tokio::time::timeout_at(deadline, &mut task).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => *result = Err(e),
        Ok(Err(e)) => *result = Err(e.into()),
        Err(_) => {
            tracing::warn!(
                ?grace,
                "shutdown grace period over: closing remaining connections"
            );
            task.abort();
        }
    }
}

/// Purges expired and dead rows every `interval`, the first time one
/// interval after start-up (replicas started together then spread out as
/// they restart; purging twice at once is harmless).
async fn run_purge(store: Store, interval: Duration, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.cancelled() => return,
        }
        let started = std::time::Instant::now();
        match store.purge().await {
            Ok(purged) if purged.total() > 0 => tracing::info!(
                codes = purged.authorization_codes,
                sessions = purged.sessions,
                access_tokens = purged.access_tokens,
                refresh_tokens = purged.refresh_tokens,
                grants = purged.grants,
                took_ms = started.elapsed().as_millis() as u64,
                "purged expired rows"
            ),
            Ok(_) => tracing::debug!("purge: nothing expired"),
            Err(e) => {
                tracing::warn!(error = %e, "purging expired rows failed; trying again next interval")
            }
        }
    }
}

/// Serves the HTTP shim alone, in front of the core at `args.upstream`,
/// until SIGINT or SIGTERM.
pub async fn run_shim(args: &ShimArgs, signal: ShutdownSignal) -> anyhow::Result<()> {
    let shim = Shim::start(args).await?;
    signal.recv().await;
    tracing::info!("shutting down: finishing in-flight requests");
    shim.stop(args.shutdown_grace).await
}

/// `authd shim`, running: the HTTP shim alone, in front of a remote core.
pub struct Shim {
    http_addr: SocketAddr,
    shutdown: CancellationToken,
    server: JoinHandle<anyhow::Result<()>>,
}

impl Shim {
    pub async fn start(args: &ShimArgs) -> anyhow::Result<Shim> {
        let http = args
            .http
            .config(&args.issuer, args.connections.limits())?
            .context("authd shim needs an HTTP address (--http-addr)")?;
        let upstream_tls = args.upstream_tls.load(&args.upstream)?;
        let upstream_tls_on = upstream_tls.is_some();
        let shim = ShimState::with_upstream_tls(&args.upstream, upstream_tls, http.shim)?;
        let shim = shim
            .clone()
            .with_metrics(shim.metrics().clone(), args.http.metrics_addr.is_none());
        let listener = TcpListener::bind(http.addr)
            .await
            .with_context(|| format!("binding the HTTP listener on {}", http.addr))?;
        let http_addr = listener.local_addr()?;
        tracing::info!(
            %http_addr,
            tls = http.tls.is_some(),
            upstream = %args.upstream,
            upstream_tls = upstream_tls_on,
            upstream_client_certificate = args.upstream_tls.upstream_tls_cert.is_some(),
            "authd shim listening"
        );
        let shutdown = CancellationToken::new();
        if let Some(addr) = args.http.metrics_addr {
            // Stops with the shutdown token; nothing waits for it.
            let _ = serve_metrics(addr, shim.metrics().clone(), shutdown.clone()).await?;
        }
        let server = tokio::spawn(crate::http::serve_with_tls(
            listener,
            shim,
            http.tls,
            http.connections,
            shutdown.clone().cancelled_owned(),
        ));
        Ok(Shim {
            http_addr,
            shutdown,
            server,
        })
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Stops taking requests and lets in-flight ones finish, for at most
    /// `grace`.
    pub async fn stop(self, grace: Duration) -> anyhow::Result<()> {
        self.shutdown.cancel();
        let mut result = Ok(());
        let deadline = tokio::time::Instant::now() + grace;
        finish(self.server, deadline, grace, &mut result).await;
        result
    }
}

/// Serves /metrics alone on `addr` until `stop`.
async fn serve_metrics(
    addr: SocketAddr,
    metrics: crate::metrics::Metrics,
    stop: CancellationToken,
) -> anyhow::Result<(SocketAddr, JoinHandle<anyhow::Result<()>>)> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the metrics listener on {addr}"))?;
    let addr = listener.local_addr()?;
    tracing::info!(metrics_addr = %addr, "authd metrics listening");
    let task = tokio::spawn(crate::http::metrics::serve(
        listener,
        metrics,
        stop.cancelled_owned(),
    ));
    Ok((addr, task))
}

/// SIGINT and SIGTERM, listened for from the moment this is created: a
/// signal that arrives while authd is still starting is kept, not lost to
/// the default action (which would kill the process mid-start-up).
pub struct ShutdownSignal {
    interrupt: Signal,
    terminate: Signal,
}

impl ShutdownSignal {
    pub fn install() -> anyhow::Result<ShutdownSignal> {
        Ok(ShutdownSignal {
            interrupt: signal(SignalKind::interrupt()).context("listening for SIGINT")?,
            terminate: signal(SignalKind::terminate()).context("listening for SIGTERM")?,
        })
    }

    pub async fn recv(mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}
