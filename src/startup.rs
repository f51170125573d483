//! The one start-up path: `Application::build` turns a `Config` into a
//! running service with its bound ports. `main`, the tests and the
//! benchmarks all start authd through it. It goes in steps, each a function
//! here: open the database, build the service (writing its first signing
//! key), bind every listener, spawn the background tasks, serve.
//!
//! Every listener and background task runs in a `Tasks` list under a
//! name; shutdown is one token handed to all of them, and a task that
//! failed or panicked is reported by its name.
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
    /// The HTTP shim, stopped first on shutdown.
    http_task: Tasks,
    /// The gRPC and metrics listeners and the background tasks.
    tasks: Tasks,
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
            connection_lifetime: crate::store::CONNECTION_LIFETIME,
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
    /// Starts authd, one step at a time: the database, the service, the
    /// listeners (all bound before anything runs, so that a taken port
    /// starts nothing), the background tasks, and then the servers.
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        let database =
            Database::open(&config.database, config.db_pool_size, config.db_timeout).await?;
        let service = build_service(&database.store, &config).await?;
        let (health_reporter, health_service) = serving_health().await;

        let grpc_listener = bind("gRPC", config.grpc_addr).await?;
        let grpc_addr = grpc_listener.local_addr()?;
        // The in-process shim calls the core's services directly (see
        // grpc::in_process), as a gRPC client of this very core, as when it
        // runs alone.
        let shim = match &config.http {
            Some(http) => {
                let channel = crate::grpc::in_process(
                    service.clone(),
                    config.request_timeout,
                    health_service.clone(),
                )?;
                let state = ShimState::in_process(
                    channel,
                    http.shim.clone(),
                    service.metrics().clone(),
                    config.metrics_addr.is_none(),
                );
                Some(HttpShim::bind(http, state).await?)
            }
            None => None,
        };
        let metrics_listener = match config.metrics_addr {
            Some(addr) => Some(bind("metrics", addr).await?),
            None => None,
        };

        let shutdown = CancellationToken::new();
        let mut tasks = Tasks::new(shutdown.clone());
        spawn_background_tasks(
            &mut tasks,
            &config,
            &database.store,
            &service,
            health_reporter,
        );

        serve_grpc(&mut tasks, grpc_listener, &service, &config, health_service)?;
        let mut http_task = Tasks::new(shutdown.clone());
        let http_addr = shim.map(|shim| shim.serve(&mut http_task));
        let metrics_addr = match metrics_listener {
            Some(listener) => Some(serve_metrics(
                listener,
                service.metrics().clone(),
                &mut tasks,
            )?),
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
        let deadline = tokio::time::Instant::now() + self.shutdown_grace;
        let grace = self.shutdown_grace;
        let http = self.http_task.finish(deadline, grace).await;
        let tasks = self.tasks.finish(deadline, grace).await;
        // Idle pooled connections would otherwise each log an error when
        // the private PostgreSQL shuts down under them.
        self.service.store().close();
        if let Some(pg) = self.embedded {
            pg.stop().await?;
        }
        http.and(tasks)
    }
}

/// Start-up step: the service, with the JWT signing key it signs with from
/// its first request on (written if the database has none).
async fn build_service(store: &Store, config: &Config) -> anyhow::Result<AuthService> {
    AuthService::ensure_signing_key(store, &config.service.key_encryption_key)
        .await
        .map_err(|e| anyhow::anyhow!("preparing the JWT signing keys: {e}"))?;
    AuthService::new(store.clone(), config.service.clone())
        .await
        .map_err(|e| anyhow::anyhow!("starting the service: {e}"))
}

/// Start-up step: grpc.health.v1, with every service SERVING, by name too,
/// before the first call can ask: PostgreSQL answered a moment ago (the
/// migrations ran). The health watcher takes over from here.
async fn serving_health() -> (
    tonic_health::server::HealthReporter,
    tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>,
) {
    let (reporter, service) = tonic_health::server::health_reporter();
    for name in crate::grpc::SERVICE_NAMES.iter() {
        reporter
            .set_service_status(*name, tonic_health::ServingStatus::Serving)
            .await;
    }
    (reporter, service)
}

async fn bind(what: &str, addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the {what} listener on {addr}"))
}

/// Start-up step: the gRPC API on `listener`, as the task "gRPC listener".
fn serve_grpc<H: tonic_health::pb::health_server::Health>(
    tasks: &mut Tasks,
    listener: TcpListener,
    service: &AuthService,
    config: &Config,
    health_service: tonic_health::pb::health_server::HealthServer<H>,
) -> anyhow::Result<()> {
    let grpc_addr = listener.local_addr()?;
    let options = crate::grpc::GrpcOptions {
        trusted_proxies: config.trusted_proxies.clone(),
        request_timeout: config.request_timeout,
        tls: config.grpc_tls.clone(),
        limits: config.grpc_connections,
    };
    let service = service.clone();
    tasks.spawn_fallible("gRPC listener", move |stop| {
        crate::grpc::serve(
            listener,
            service,
            options,
            health_service,
            stop.cancelled_owned(),
        )
    });
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
    Ok(())
}

/// Start-up step: the tasks that run beside the listeners until shutdown.
fn spawn_background_tasks(
    tasks: &mut Tasks,
    config: &Config,
    store: &Store,
    service: &AuthService,
    health_reporter: tonic_health::server::HealthReporter,
) {
    if config.service.cache_capacity > 0 {
        // Until it has connected, introspection bypasses the cache.
        let (store, cache) = (store.clone(), service.cache().clone());
        tasks.spawn("cache invalidation listener", move |stop| {
            crate::service::cache::run_invalidation_listener(store, cache, stop)
        });
        tracing::info!(
            capacity = config.service.cache_capacity,
            "introspection cache on; it is used once the invalidation listener has connected"
        );
    } else {
        tracing::info!(
            "introspection cache off (--cache-capacity 0): every introspection reads PostgreSQL"
        );
    }
    let (watched, interval) = (service.clone(), config.health_interval);
    tasks.spawn("health watcher", move |stop| {
        crate::grpc::watch_health(watched, health_reporter, interval, stop)
    });
    if let Some(interval) = config.purge_interval {
        let store = store.clone();
        tasks.spawn("purge", move |stop| run_purge(store, interval, stop));
    }
    // Signing keys: reloaded on rotation, here and on every replica.
    let keyed = service.clone();
    tasks.spawn("signing key watcher", move |stop| {
        crate::service::keys::run_key_watcher(keyed, stop)
    });
}

/// The HTTP shim, bound and ready to serve.
struct HttpShim {
    listener: TcpListener,
    addr: SocketAddr,
    state: ShimState,
    tls: Option<crate::tls::HttpServerTls>,
    limits: crate::connections::ConnectionLimits,
}

impl HttpShim {
    async fn bind(http: &crate::config::HttpConfig, state: ShimState) -> anyhow::Result<HttpShim> {
        let listener = bind("HTTP", http.addr).await?;
        Ok(HttpShim {
            addr: listener.local_addr()?,
            listener,
            state,
            tls: http.tls.clone(),
            limits: http.connections,
        })
    }

    /// Serves until shutdown, as the task "HTTP listener" of `tasks`.
    fn serve(self, tasks: &mut Tasks) -> SocketAddr {
        let HttpShim {
            listener,
            addr,
            state,
            tls,
            limits,
        } = self;
        let tls_on = tls.is_some();
        tasks.spawn_fallible("HTTP listener", move |stop| {
            crate::http::serve_with_tls(listener, state, tls, limits, stop.cancelled_owned())
        });
        tracing::info!(http_addr = %addr, tls = tls_on, "authd HTTP listening");
        addr
    }
}

/// Tasks that run until a shutdown token is cancelled, each spawned under a
/// name that its failure (an error or a panic) is reported by.
struct Tasks {
    shutdown: CancellationToken,
    running: Vec<(&'static str, JoinHandle<anyhow::Result<()>>)>,
}

impl Tasks {
    fn new(shutdown: CancellationToken) -> Tasks {
        Tasks {
            shutdown,
            running: Vec::new(),
        }
    }

    /// Spawns `task`, handed the shutdown token; it cannot fail.
    fn spawn<F>(&mut self, name: &'static str, task: impl FnOnce(CancellationToken) -> F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let task = task(self.shutdown.clone());
        self.push(name, async move {
            task.await;
            Ok(())
        });
    }

    /// Spawns `task`, handed the shutdown token; its error is reported.
    fn spawn_fallible<F>(&mut self, name: &'static str, task: impl FnOnce(CancellationToken) -> F)
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let task = task(self.shutdown.clone());
        self.push(name, task);
    }

    fn push(
        &mut self,
        name: &'static str,
        task: impl Future<Output = anyhow::Result<()>> + Send + 'static,
    ) {
        self.running.push((name, tokio::spawn(task)));
    }

    /// Waits for every task until `deadline`, and aborts those still
    /// running past it. Each failure is logged with the task's name; the
    /// first is returned.
    async fn finish(self, deadline: tokio::time::Instant, grace: Duration) -> anyhow::Result<()> {
        let mut result = Ok(());
        for (name, mut task) in self.running {
            let failure = match tokio::time::timeout_at(deadline, &mut task).await {
                Ok(Ok(Ok(()))) => continue,
                Ok(Ok(Err(e))) => e.context(format!("{name} failed")),
                Ok(Err(e)) if e.is_panic() => {
                    anyhow::Error::new(e).context(format!("{name} panicked"))
                }
                Ok(Err(e)) => anyhow::Error::new(e).context(format!("{name} was cancelled")),
                Err(_) => {
                    tracing::warn!(
                        ?grace,
                        task = name,
                        "shutdown grace period over: closing remaining connections"
                    );
                    task.abort();
                    continue;
                }
            };
            tracing::error!(task = name, "{failure:#}");
            if result.is_ok() {
                result = Err(failure);
            }
        }
        result
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
    /// The HTTP listener, and /metrics's when it has one of its own.
    tasks: Tasks,
}

impl Shim {
    pub async fn start(args: &ShimArgs) -> anyhow::Result<Shim> {
        let http = args
            .http
            .config(
                &args.http.issuer(args.issuer.as_deref()),
                args.connections.limits(),
            )?
            .context("authd shim needs an HTTP address (--http-addr)")?;
        let upstream_tls = args.upstream_tls.load(&args.upstream)?;
        let upstream_tls_on = upstream_tls.is_some();
        let state = ShimState::with_upstream_tls(
            &args.upstream,
            upstream_tls,
            http.shim.clone(),
            args.http.metrics_addr.is_none(),
        )?;
        let metrics = state.metrics().clone();
        let shim = HttpShim::bind(&http, state).await?;
        let metrics_listener = match args.http.metrics_addr {
            Some(addr) => Some(bind("metrics", addr).await?),
            None => None,
        };

        let shutdown = CancellationToken::new();
        let mut tasks = Tasks::new(shutdown.clone());
        let http_addr = shim.addr;
        tracing::info!(
            %http_addr,
            tls = http.tls.is_some(),
            upstream = %args.upstream,
            upstream_tls = upstream_tls_on,
            upstream_client_certificate = args.upstream_tls.upstream_tls_cert.is_some(),
            "authd shim listening"
        );
        shim.serve(&mut tasks);
        if let Some(listener) = metrics_listener {
            serve_metrics(listener, metrics, &mut tasks)?;
        }
        Ok(Shim {
            http_addr,
            shutdown,
            tasks,
        })
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Stops taking requests and lets in-flight ones finish, for at most
    /// `grace`; stops /metrics too.
    pub async fn stop(self, grace: Duration) -> anyhow::Result<()> {
        self.shutdown.cancel();
        let deadline = tokio::time::Instant::now() + grace;
        self.tasks.finish(deadline, grace).await
    }
}

/// Serves /metrics alone on `listener` until shutdown, as the task
/// "metrics listener" of `tasks`.
fn serve_metrics(
    listener: TcpListener,
    metrics: crate::metrics::Metrics,
    tasks: &mut Tasks,
) -> anyhow::Result<SocketAddr> {
    let addr = listener.local_addr()?;
    tracing::info!(metrics_addr = %addr, "authd metrics listening");
    tasks.spawn_fallible("metrics listener", move |stop| {
        crate::http::metrics::serve(listener, metrics, stop.cancelled_owned())
    });
    Ok(addr)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failed_or_panicked_task_is_reported_by_its_name() {
        let shutdown = CancellationToken::new();
        let mut tasks = Tasks::new(shutdown.clone());
        tasks.spawn("quiet", |stop| async move { stop.cancelled().await });
        tasks.spawn_fallible("failing", |_| async { anyhow::bail!("it broke") });
        tasks.spawn("panicking", |_| async { panic!("it blew up") });
        shutdown.cancel();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let error = tasks
            .finish(deadline, Duration::from_secs(5))
            .await
            .expect_err("two tasks failed");
        // The first failure is returned, with its cause.
        assert_eq!(format!("{error:#}"), "failing failed: it broke");

        let mut tasks = Tasks::new(CancellationToken::new());
        tasks.spawn("panicking", |_| async { panic!("it blew up") });
        let error = tasks
            .finish(deadline, Duration::from_secs(5))
            .await
            .expect_err("the task panicked");
        assert!(
            format!("{error:#}").starts_with("panicking panicked"),
            "{error:#}"
        );
    }

    #[tokio::test]
    async fn a_task_still_running_past_the_grace_period_is_aborted() {
        let mut tasks = Tasks::new(CancellationToken::new());
        // It never looks at the shutdown token.
        tasks.spawn("stuck", |_| std::future::pending());
        let deadline = tokio::time::Instant::now() + Duration::from_millis(10);
        tasks
            .finish(deadline, Duration::from_millis(10))
            .await
            .expect("an aborted task is not a failure");
    }
}
