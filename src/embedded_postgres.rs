//! A private PostgreSQL server run from the machine's server binaries, so that `authd` works
//! out of the box without DATABASE_URL and so that each test process gets a throwaway cluster.
//! The service's default mode and the test harness share this code so both paths stay exercised.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{Id, WaitPidFlag, waitid};
use nix::unistd::{Gid, Pid, Uid, User, chown, geteuid, getppid};
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

const SUPERUSER: &str = "authd";
const DEFAULT_RUN_AS: &str = "postgres";
const LOG_FILE: &str = "postgres.log";
/// A log larger than this is moved aside at startup so a long-lived service's log stays bounded.
const LOG_ROTATE_BYTES: u64 = 10 * 1024 * 1024;
/// `sun_path` is 108 bytes including the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Crash recovery of a big WAL backlog can legitimately take longer than a normal start;
/// we keep waiting this long as long as the server says it is still starting up.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(600);
const READY_POLL: Duration = Duration::from_millis(50);
const FAST_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
const IMMEDIATE_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);
/// Restart backoff after a crash: doubles from the first to the second, and starts over
/// once a server has run for `RESTART_STABLE`.
const RESTART_BACKOFF_MIN: Duration = Duration::from_millis(500);
const RESTART_BACKOFF_MAX: Duration = Duration::from_secs(10);
const RESTART_STABLE: Duration = Duration::from_secs(60);
const THROWAWAY_DIR: &str = "authd-test-pg";
/// Only names the socket file of throwaway clusters; distinct from 5432 so nobody mistakes
/// it for the system server.
const THROWAWAY_PORT: u16 = 55432;
const THROWAWAY_MAX_CONNECTIONS: u32 = 100;

/// How to run the embedded server.
#[derive(Debug, Clone)]
pub struct EmbeddedPostgresOptions {
    /// PGDATA; created (with parents) if missing; initdb runs only if it has no PG_VERSION.
    pub data_dir: PathBuf,
    /// false for tests: fsync, synchronous_commit and full_page_writes off, initdb --no-sync.
    pub durable: bool,
    /// OS user to run initdb/postgres as when we are root (PostgreSQL refuses to run as
    /// root); None => "postgres". Ignored when not root.
    pub run_as: Option<String>,
    /// Only names the Unix socket (`.s.PGSQL.<port>`); the server never listens on TCP.
    pub port: u16,
    pub max_connections: u32,
}

/// Locations of the server binaries this module runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgBinaries {
    pub bindir: PathBuf,
    pub initdb: PathBuf,
    pub postgres: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedPostgresError {
    #[error(
        "PostgreSQL server binaries (initdb, postgres) not found in $PATH, `pg_config --bindir` or /usr/lib/postgresql/*/bin: install PostgreSQL's server (e.g. `apt-get install postgresql`) or set DATABASE_URL to use an existing database"
    )]
    BinariesNotFound,
    #[error(
        "OS user {0:?} does not exist; PostgreSQL refuses to run as root, so an unprivileged user is needed to run it (create it, or set DATABASE_URL)"
    )]
    UnknownUser(String),
    #[error(
        "directory {} is not traversable by OS user {user:?}, which runs PostgreSQL; put the data directory elsewhere (e.g. under /var/lib) or make it traversable (chmod o+x)",
        .dir.display()
    )]
    NotTraversable { dir: PathBuf, user: String },
    #[error(
        "data directory {} is owned by uid {owner}, but PostgreSQL would run as {user:?} (uid {uid}); chown it or use another directory",
        .data_dir.display()
    )]
    WrongOwner {
        data_dir: PathBuf,
        owner: u32,
        user: String,
        uid: u32,
    },
    #[error(
        "data directory {} is in use by another running postgres (pid {pid}); stop it or use another directory",
        .data_dir.display()
    )]
    AlreadyRunning { pid: i32, data_dir: PathBuf },
    #[error("unsafe socket directory {}: {reason}", .dir.display())]
    UnsafeSocketDir { dir: PathBuf, reason: String },
    #[error("invalid database name {0:?}: must be 1-63 characters of [a-z0-9_]")]
    InvalidDatabaseName(String),
    #[error("initdb failed for {} ({status}):\n{output}", .data_dir.display())]
    Initdb {
        data_dir: PathBuf,
        status: String,
        output: String,
    },
    #[error("postgres failed to start in {}: {reason}\n--- last lines of {} ---\n{tail}", .data_dir.display(), .log.display())]
    Startup {
        data_dir: PathBuf,
        reason: String,
        log: PathBuf,
        tail: String,
    },
    #[error("postgres (pid {pid}) did not shut down in time and was killed")]
    StopTimeout { pid: i32 },
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("query on embedded PostgreSQL failed")]
    Postgres(#[from] tokio_postgres::Error),
}

type Result<T, E = EmbeddedPostgresError> = std::result::Result<T, E>;

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> EmbeddedPostgresError {
    let context = context.into();
    move |source| EmbeddedPostgresError::Io { context, source }
}

fn nix_err(context: impl Into<String>) -> impl FnOnce(Errno) -> EmbeddedPostgresError {
    let context = context.into();
    move |errno| EmbeddedPostgresError::Io {
        context,
        source: io::Error::from(errno),
    }
}

/// A running private PostgreSQL server. Call [`EmbeddedPostgres::stop`] for an orderly
/// shutdown; dropping it only asks the server to shut down.
#[derive(Debug)]
pub struct EmbeddedPostgres {
    data_dir: PathBuf,
    socket_dir: PathBuf,
    /// The socket dir is our own short dir under /tmp rather than the data dir.
    fallback_socket_dir: bool,
    port: u16,
    postmaster: Postmaster,
    /// Throwaway clusters delete their files on `stop`.
    remove_on_stop: bool,
    /// What it was started with, so that a supervisor can start it again.
    opts: EmbeddedPostgresOptions,
}

/// The OS identity the server runs as when we are root.
#[derive(Debug, Clone)]
struct RunAs {
    name: String,
    uid: Uid,
    gid: Gid,
}

impl EmbeddedPostgres {
    /// Finds initdb and postgres: $PATH, then `pg_config --bindir`, then the highest
    /// /usr/lib/postgresql/*/bin.
    pub fn find_binaries() -> Result<PgBinaries, EmbeddedPostgresError> {
        if let Some(path) = std::env::var_os("PATH") {
            for dir in std::env::split_paths(&path) {
                if let Some(bins) = binaries_in(&dir) {
                    return Ok(bins);
                }
            }
        }
        if let Some(bins) = pg_config_bindir().and_then(|dir| binaries_in(&dir)) {
            return Ok(bins);
        }
        for dir in versioned_bindirs(Path::new("/usr/lib/postgresql")) {
            if let Some(bins) = binaries_in(&dir) {
                return Ok(bins);
            }
        }
        Err(EmbeddedPostgresError::BinariesNotFound)
    }

    /// Initializes the cluster if needed, starts postgres and waits until it accepts
    /// connections.
    pub async fn start(opts: EmbeddedPostgresOptions) -> Result<Self, EmbeddedPostgresError> {
        Self::start_inner(opts, false).await
    }

    async fn start_inner(opts: EmbeddedPostgresOptions, remove_on_stop: bool) -> Result<Self> {
        let port = opts.port;
        let kept = opts.clone();
        let prepared = tokio::task::spawn_blocking(move || prepare_and_spawn(opts))
            .await
            .map_err(|e| EmbeddedPostgresError::Io {
                context: "embedded postgres startup task failed".into(),
                source: io::Error::other(e.to_string()),
            })??;
        let mut pg = EmbeddedPostgres {
            data_dir: prepared.data_dir.clone(),
            socket_dir: prepared.socket_dir,
            fallback_socket_dir: prepared.fallback_socket_dir,
            port,
            postmaster: prepared.postmaster,
            remove_on_stop,
            opts: EmbeddedPostgresOptions {
                data_dir: prepared.data_dir.clone(),
                ..kept
            },
        };
        if let Err(reason) = pg.wait_ready().await {
            // Never leave a half-started server behind: the caller gets no handle to stop it.
            pg.postmaster.terminate(Signal::SIGQUIT).await;
            return Err(EmbeddedPostgresError::Startup {
                tail: log_tail(&prepared.log_path, prepared.log_offset),
                data_dir: pg.data_dir.clone(),
                reason,
                log: prepared.log_path,
            });
        }
        info!(
            data_dir = %pg.data_dir.display(),
            socket_dir = %pg.socket_dir.display(),
            pid = pg.postmaster.pid.as_raw(),
            "embedded PostgreSQL started"
        );
        Ok(pg)
    }

    /// The cluster's superuser role, "authd".
    pub fn superuser(&self) -> &str {
        SUPERUSER
    }

    /// The directory holding the server's Unix socket.
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    /// The (canonical) data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// tokio_postgres config for `dbname` over the Unix socket as the superuser.
    pub fn connect_config(&self, dbname: &str) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config
            .host_path(&self.socket_dir)
            .port(self.port)
            .user(SUPERUSER)
            .dbname(dbname);
        config
    }

    /// Creates `dbname` if it does not exist.
    pub async fn ensure_database(&self, dbname: &str) -> Result<(), EmbeddedPostgresError> {
        validate_database_name(dbname)?;
        let client = connect(&self.connect_config("postgres")).await?;
        let exists = client
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&dbname])
            .await?
            .is_some();
        if exists {
            return Ok(());
        }
        // The name was validated above, so quoting it is enough to make it a safe identifier.
        match client
            .batch_execute(&format!("CREATE DATABASE \"{dbname}\""))
            .await
        {
            Ok(()) => {
                info!(dbname, "created database in embedded PostgreSQL");
                Ok(())
            }
            // Another process won the race to create it, which is just as good.
            Err(e)
                if e.code() == Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE)
                    || e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) =>
            {
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Fast shutdown (SIGINT to the postmaster) and wait for exit (bounded; then SIGQUIT,
    /// then SIGKILL).
    pub async fn stop(mut self) -> Result<(), EmbeddedPostgresError> {
        info!(data_dir = %self.data_dir.display(), "stopping embedded PostgreSQL");
        let clean = self.postmaster.terminate(Signal::SIGINT).await;
        if !clean {
            return Err(EmbeddedPostgresError::StopTimeout {
                pid: self.postmaster.pid.as_raw(),
            });
        }
        info!(data_dir = %self.data_dir.display(), "embedded PostgreSQL stopped");
        if self.remove_on_stop {
            let mut dirs = vec![self.data_dir.clone()];
            if self.fallback_socket_dir {
                dirs.push(self.socket_dir.clone());
            }
            let _ = tokio::task::spawn_blocking(move || {
                for dir in dirs {
                    if let Err(e) = fs::remove_dir_all(&dir) {
                        debug!(dir = %dir.display(), error = %e, "could not remove throwaway dir");
                    }
                }
            })
            .await;
        }
        Ok(())
    }

    /// Waits until `SELECT 1` works over the socket; on failure returns why.
    async fn wait_ready(&mut self) -> std::result::Result<(), String> {
        let config = self.connect_config("postgres");
        let started = Instant::now();
        let mut announced_recovery = false;
        loop {
            if let Some(exit) = self.postmaster.exit_status() {
                return Err(format!("postgres exited during startup ({exit})"));
            }
            let (starting_up, last_error) =
                match tokio::time::timeout(Duration::from_secs(5), select_one(&config)).await {
                    Ok(Ok(())) => return Ok(()),
                    Ok(Err(e)) => (
                        e.code() == Some(&tokio_postgres::error::SqlState::CANNOT_CONNECT_NOW),
                        error_chain(&e),
                    ),
                    Err(_) => (false, "connection attempt timed out".to_string()),
                };
            let waited = started.elapsed();
            if waited >= READY_TIMEOUT {
                if !(starting_up && waited < RECOVERY_TIMEOUT) {
                    return Err(format!(
                        "not accepting connections after {}s (last error: {last_error})",
                        waited.as_secs()
                    ));
                }
                if !announced_recovery {
                    announced_recovery = true;
                    info!(
                        data_dir = %self.data_dir.display(),
                        "embedded PostgreSQL is still starting up (crash recovery?), waiting"
                    );
                }
            }
            tokio::time::sleep(READY_POLL).await;
        }
    }
}

/// A private PostgreSQL that is started again, with backoff, whenever it exits without
/// having been asked to (a crash, the OOM killer, a stray SIGKILL). Meanwhile the store's
/// connections fail, so calls answer UNAVAILABLE and health says NOT_SERVING.
#[derive(Debug)]
pub struct SupervisedPostgres {
    stop: CancellationToken,
    task: JoinHandle<Result<()>>,
}

impl EmbeddedPostgres {
    /// Hands the server to a task that restarts it after every crash until `stop`.
    pub fn supervise(self) -> SupervisedPostgres {
        let stop = CancellationToken::new();
        let task = tokio::spawn(supervise(self, stop.clone()));
        SupervisedPostgres { stop, task }
    }
}

impl SupervisedPostgres {
    /// Stops supervising and shuts the server down in order.
    pub async fn stop(self) -> Result<(), EmbeddedPostgresError> {
        self.stop.cancel();
        self.task.await.map_err(|e| EmbeddedPostgresError::Io {
            context: "embedded postgres supervisor failed".into(),
            source: io::Error::other(e.to_string()),
        })?
    }
}

async fn supervise(mut pg: EmbeddedPostgres, stop: CancellationToken) -> Result<()> {
    let mut backoff = RESTART_BACKOFF_MIN;
    loop {
        let started = Instant::now();
        let crashed = tokio::select! {
            _ = stop.cancelled() => false,
            _ = pg.postmaster.exit.wait_for(|s| s.is_some()) => true,
        };
        if !crashed {
            return pg.stop().await;
        }
        // It is gone; nothing is left to signal.
        pg.postmaster.released = true;
        if started.elapsed() >= RESTART_STABLE {
            backoff = RESTART_BACKOFF_MIN;
        }
        let status = pg
            .postmaster
            .exit_status()
            .unwrap_or_else(|| "exited, status unknown".into());
        error!(
            pid = pg.postmaster.pid.as_raw(),
            status,
            data_dir = %pg.data_dir.display(),
            log = %pg.data_dir.join(LOG_FILE).display(),
            retry_in_ms = backoff.as_millis() as u64,
            "embedded PostgreSQL exited unexpectedly; calls answer UNAVAILABLE until it is restarted (its log says why it stopped)"
        );
        loop {
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                _ = tokio::time::sleep(backoff) => {}
            }
            let attempt = tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                r = EmbeddedPostgres::start_inner(pg.opts.clone(), pg.remove_on_stop) => r,
            };
            backoff = (backoff * 2).min(RESTART_BACKOFF_MAX);
            match attempt {
                Ok(new) => {
                    warn!(
                        pid = new.postmaster.pid.as_raw(),
                        data_dir = %new.data_dir.display(),
                        "embedded PostgreSQL restarted after a crash"
                    );
                    pg = new;
                    break;
                }
                Err(e) => error!(
                    error = %e,
                    retry_in_ms = backoff.as_millis() as u64,
                    "could not restart the embedded PostgreSQL; trying again"
                ),
            }
        }
    }
}

impl Drop for EmbeddedPostgres {
    fn drop(&mut self) {
        if self.postmaster.release() {
            info!(
                data_dir = %self.data_dir.display(),
                "embedded PostgreSQL dropped without stop(); asked it to shut down"
            );
        }
    }
}

/// Connection settings for a private PostgreSQL that another process (a
/// running `authd serve`) has started on `data_dir`, read from its
/// postmaster.pid: line 4 is the port, line 5 the socket directory. Lets
/// operator commands work while the service runs.
pub fn running_server_config(data_dir: &Path, dbname: &str) -> Option<tokio_postgres::Config> {
    let text = fs::read_to_string(data_dir.join("postmaster.pid")).ok()?;
    let lines: Vec<&str> = text.lines().collect();
    let port: u16 = lines.get(3)?.trim().parse().ok()?;
    let socket_dir = lines.get(4)?.trim();
    if socket_dir.is_empty() {
        return None;
    }
    let mut config = tokio_postgres::Config::new();
    config
        .host_path(socket_dir)
        .port(port)
        .user(SUPERUSER)
        .dbname(dbname);
    Some(config)
}

/// A throwaway cluster under std::env::temp_dir()/authd-test-pg/<pid>-<random>, non-durable.
/// Before creating it, removes sibling dirs left by earlier test processes whose <pid> is no
/// longer alive.
pub async fn start_throwaway() -> Result<EmbeddedPostgres, EmbeddedPostgresError> {
    let data_dir = tokio::task::spawn_blocking(|| -> Result<PathBuf> {
        let base = std::env::temp_dir().join(THROWAWAY_DIR);
        fs::create_dir_all(&base).map_err(io_err(format!("creating {}", base.display())))?;
        // Shared like /tmp itself (sticky, world-writable): the run-as user must traverse it
        // when we are root, and test runs by other users must still be able to create their
        // clusters here. Failing to chmod a dir someone else created is fine.
        let _ = fs::set_permissions(&base, fs::Permissions::from_mode(0o1777));
        remove_dead_throwaways(&base);
        let name = format!("{}-{:016x}", std::process::id(), rand::random::<u64>());
        Ok(base.join(name))
    })
    .await
    .map_err(|e| EmbeddedPostgresError::Io {
        context: "throwaway cluster setup task failed".into(),
        source: io::Error::other(e.to_string()),
    })??;
    EmbeddedPostgres::start_inner(
        EmbeddedPostgresOptions {
            data_dir,
            durable: false,
            run_as: None,
            port: THROWAWAY_PORT,
            max_connections: THROWAWAY_MAX_CONNECTIONS,
        },
        true,
    )
    .await
}

fn remove_dead_throwaways(base: &Path) {
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    let me = std::process::id();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.split('-').next())
            .and_then(|p| p.parse::<i32>().ok())
            .filter(|p| *p > 0)
        else {
            continue;
        };
        if pid as u32 == me || process_alive(pid) {
            continue;
        }
        let dir = entry.path();
        // Canonical, to compare with the cwd of a surviving server.
        let dir = dir.canonicalize().unwrap_or(dir);
        // The owning test process is gone, but if its server somehow survived, leave it be.
        if let Some(pm) = read_postmaster_pid(&dir)
            && pid_file_owner(pm, &dir) == PidFileOwner::Running
        {
            continue;
        }
        match fs::remove_dir_all(&dir) {
            Ok(()) => debug!(dir = %dir.display(), "removed leftover throwaway cluster"),
            Err(e) => debug!(dir = %dir.display(), error = %e, "could not remove leftover cluster"),
        }
    }
}

/// Everything up to a spawned postmaster; blocking, so it runs on the blocking pool.
struct Prepared {
    data_dir: PathBuf,
    socket_dir: PathBuf,
    fallback_socket_dir: bool,
    log_path: PathBuf,
    log_offset: u64,
    postmaster: Postmaster,
}

fn prepare_and_spawn(opts: EmbeddedPostgresOptions) -> Result<Prepared> {
    let bins = EmbeddedPostgres::find_binaries()?;
    let run_as = if geteuid().is_root() {
        let name = opts
            .run_as
            .clone()
            .unwrap_or_else(|| DEFAULT_RUN_AS.to_string());
        let user = User::from_name(&name)
            .map_err(nix_err(format!("looking up OS user {name:?}")))?
            .ok_or_else(|| EmbeddedPostgresError::UnknownUser(name.clone()))?;
        Some(RunAs {
            name,
            uid: user.uid,
            gid: user.gid,
        })
    } else {
        None
    };

    let data_dir = prepare_data_dir(&opts.data_dir, run_as.as_ref())?;
    if let Some(run_as) = &run_as {
        check_traversable(&bins, &data_dir, run_as)?;
    }
    remove_stale_postmaster_pid(&data_dir)?;
    let (socket_dir, fallback_socket_dir) = socket_dir_for(&data_dir, opts.port, run_as.as_ref())?;

    if !data_dir.join("PG_VERSION").exists() {
        initdb(&bins, &data_dir, opts.durable, run_as.as_ref())?;
    }

    let log_path = data_dir.join(LOG_FILE);
    let (log, log_offset) = open_log(&log_path, run_as.as_ref())?;

    info!(
        data_dir = %data_dir.display(),
        socket_dir = %socket_dir.display(),
        durable = opts.durable,
        postgres = %bins.postgres.display(),
        "starting embedded PostgreSQL"
    );
    let mut cmd = Command::new(&bins.postgres);
    cmd.arg("-D")
        .arg(&data_dir)
        .arg("-k")
        .arg(&socket_dir)
        .arg("-p")
        .arg(opts.port.to_string())
        .arg("-c")
        .arg("listen_addresses=")
        .arg("-c")
        .arg(format!("max_connections={}", opts.max_connections));
    if !opts.durable {
        for setting in [
            "fsync=off",
            "synchronous_commit=off",
            "full_page_writes=off",
        ] {
            cmd.arg("-c").arg(setting);
        }
    }
    let log_err = log
        .try_clone()
        .map_err(io_err(format!("duplicating {}", log_path.display())))?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log_err))
        // Keep the terminal's Ctrl-C away from the server: the service decides when the
        // database goes down (stop(), or the parent-death signal if the service dies).
        .process_group(0);
    child_environment(&mut cmd, &data_dir, run_as.as_ref());
    let parent = Pid::from_raw(std::process::id() as i32);
    // SAFETY: the closure only makes async-signal-safe syscalls (prctl, getppid) and does
    // not allocate. std runs it after setgid/setuid, which matters because changing
    // credentials clears the parent-death signal.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGINT)
                .map_err(|e| io::Error::from_raw_os_error(e as i32))?;
            // We may have died between fork and prctl, in which case no signal will come.
            if getppid() != parent {
                return Err(io::Error::from_raw_os_error(Errno::ESRCH as i32));
            }
            Ok(())
        });
    }
    let postmaster = Postmaster::spawn(cmd).map_err(|e| EmbeddedPostgresError::Startup {
        data_dir: data_dir.clone(),
        reason: format!("could not spawn {}: {e}", bins.postgres.display()),
        tail: log_tail(&log_path, log_offset),
        log: log_path.clone(),
    })?;
    Ok(Prepared {
        data_dir,
        socket_dir,
        fallback_socket_dir,
        log_path,
        log_offset,
        postmaster,
    })
}

/// Creates the data dir if needed and gives a fresh one to the run-as user; returns its
/// canonical path (absolute, because the children run with the data dir as cwd).
fn prepare_data_dir(requested: &Path, run_as: Option<&RunAs>) -> Result<PathBuf> {
    fs::create_dir_all(requested).map_err(io_err(format!(
        "creating data directory {}",
        requested.display()
    )))?;
    let data_dir = requested.canonicalize().map_err(io_err(format!(
        "resolving data directory {}",
        requested.display()
    )))?;
    if data_dir.join("PG_VERSION").exists() {
        // An existing cluster is left as it is (PostgreSQL validates its permissions), but
        // a wrong owner would only surface as a cryptic failure later, so name it now.
        if let Some(run_as) = run_as {
            let meta = fs::metadata(&data_dir)
                .map_err(io_err(format!("inspecting {}", data_dir.display())))?;
            if meta.uid() != run_as.uid.as_raw() {
                return Err(EmbeddedPostgresError::WrongOwner {
                    data_dir,
                    owner: meta.uid(),
                    user: run_as.name.clone(),
                    uid: run_as.uid.as_raw(),
                });
            }
        }
        return Ok(data_dir);
    }
    if let Some(run_as) = run_as {
        chown(&data_dir, Some(run_as.uid), Some(run_as.gid)).map_err(nix_err(format!(
            "chown {} to {}",
            data_dir.display(),
            run_as.name
        )))?;
    }
    // PostgreSQL insists on 0700 (or 0750), and it is also what makes trust auth safe.
    fs::set_permissions(&data_dir, fs::Permissions::from_mode(0o700))
        .map_err(io_err(format!("chmod 0700 {}", data_dir.display())))?;
    Ok(data_dir)
}

/// Proves the run-as user can reach the data dir and run the binaries by doing exactly
/// that (so ACLs count), and names the blocking directory if it cannot.
fn check_traversable(bins: &PgBinaries, data_dir: &Path, run_as: &RunAs) -> Result<()> {
    let probe = Command::new(&bins.postgres)
        .arg("--version")
        .current_dir(data_dir)
        .uid(run_as.uid.as_raw())
        .gid(run_as.gid.as_raw())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if matches!(probe, Ok(status) if status.success()) {
        return Ok(());
    }
    for path in [data_dir, bins.postgres.as_path()] {
        if let Some(dir) = first_untraversable(path, run_as) {
            return Err(EmbeddedPostgresError::NotTraversable {
                dir,
                user: run_as.name.clone(),
            });
        }
    }
    let detail = match probe {
        Ok(status) => io::Error::other(format!("`postgres --version` exited with {status}")),
        Err(e) => e,
    };
    Err(EmbeddedPostgresError::Io {
        context: format!(
            "cannot run {} as OS user {:?} in {}",
            bins.postgres.display(),
            run_as.name,
            data_dir.display()
        ),
        source: detail,
    })
}

/// The topmost directory on the way to `path` that `run_as` may not search, judged by
/// mode bits with only the primary group (std drops supplementary groups when switching).
fn first_untraversable(path: &Path, run_as: &RunAs) -> Option<PathBuf> {
    let mut ancestors: Vec<&Path> = path.ancestors().collect();
    ancestors.reverse();
    for dir in ancestors {
        let Ok(meta) = fs::metadata(dir) else {
            continue;
        };
        if !meta.is_dir() {
            continue;
        }
        let mode = meta.mode();
        let allowed = if meta.uid() == run_as.uid.as_raw() {
            mode & 0o100 != 0
        } else if meta.gid() == run_as.gid.as_raw() {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        };
        if !allowed {
            return Some(dir.to_path_buf());
        }
    }
    None
}

fn remove_stale_postmaster_pid(data_dir: &Path) -> Result<()> {
    let pid_file = data_dir.join("postmaster.pid");
    if !pid_file.exists() {
        return Ok(());
    }
    match read_postmaster_pid(data_dir) {
        Some(pid) => match pid_file_owner(pid, data_dir) {
            PidFileOwner::Running => {
                return Err(EmbeddedPostgresError::AlreadyRunning {
                    pid,
                    data_dir: data_dir.to_path_buf(),
                });
            }
            // Left in place on purpose: postgres replaces a lock file whose pid is gone by
            // itself, after checking that no orphaned backend still uses the old shared
            // memory, a check that deleting the file would skip.
            PidFileOwner::Gone => {
                info!(
                    pid,
                    data_dir = %data_dir.display(),
                    "postmaster.pid is left over from a server that is gone; postgres will recover"
                );
                return Ok(());
            }
            // Postgres would take the live pid for a running server and refuse to start.
            PidFileOwner::Unrelated => warn!(
                pid,
                data_dir = %data_dir.display(),
                "removing stale postmaster.pid whose pid now belongs to another process"
            ),
        },
        // Postgres refuses to start over an empty lock file as well.
        None => warn!(
            data_dir = %data_dir.display(),
            "removing unreadable postmaster.pid (left by a crash during startup?)"
        ),
    }
    match fs::remove_file(&pid_file) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(format!("removing {}", pid_file.display()))(e)),
    }
}

fn read_postmaster_pid(data_dir: &Path) -> Option<i32> {
    let text = fs::read_to_string(data_dir.join("postmaster.pid")).ok()?;
    text.lines()
        .next()?
        .trim()
        .parse::<i32>()
        .ok()
        .filter(|p| *p > 0)
}

/// Who holds the pid recorded in a data dir's postmaster.pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PidFileOwner {
    /// A postgres serving this data dir.
    Running,
    /// Nobody.
    Gone,
    /// A zombie, or a process that reused the pid (common in containers, which restart with
    /// the same few pids).
    Unrelated,
}

fn pid_file_owner(pid: i32, data_dir: &Path) -> PidFileOwner {
    if let Err(Errno::ESRCH) = kill(Pid::from_raw(pid), None) {
        return PidFileOwner::Gone;
    }
    if is_zombie(pid) {
        return PidFileOwner::Unrelated;
    }
    // The postmaster and its backends chdir into the data dir, which identifies the server
    // exactly; /proc/<pid>/cwd is only readable for our own processes unless we are root.
    if let Ok(cwd) = fs::read_link(format!("/proc/{pid}/cwd")) {
        return if cwd == data_dir {
            PidFileOwner::Running
        } else {
            PidFileOwner::Unrelated
        };
    }
    match fs::read_to_string(format!("/proc/{pid}/comm")) {
        Ok(comm) if !comm.starts_with("postgres") && !comm.starts_with("postmaster") => {
            PidFileOwner::Unrelated
        }
        // Cannot tell, so assume the worst.
        _ => PidFileOwner::Running,
    }
}

fn process_alive(pid: i32) -> bool {
    match kill(Pid::from_raw(pid), None) {
        Ok(()) => !is_zombie(pid),
        // It exists but belongs to someone else.
        Err(Errno::EPERM) => true,
        Err(_) => false,
    }
}

fn is_zombie(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let (_, rest) = stat.rsplit_once(')')?;
            rest.trim_start().chars().next()
        })
        .is_some_and(|state| state == 'Z' || state == 'X')
}

/// The data dir is the socket dir unless its socket path would not fit in `sun_path`.
fn socket_dir_for(data_dir: &Path, port: u16, run_as: Option<&RunAs>) -> Result<(PathBuf, bool)> {
    if socket_path_len(data_dir, port) <= MAX_SOCKET_PATH {
        return Ok((data_dir.to_path_buf(), false));
    }
    let digest = Sha256::digest(data_dir.as_os_str().as_encoded_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    let dir = PathBuf::from(format!("/tmp/authd-pg-{hex}"));
    let owner = run_as.map_or_else(geteuid, |r| r.uid);
    match fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {
            if let Some(run_as) = run_as {
                chown(&dir, Some(run_as.uid), Some(run_as.gid))
                    .map_err(nix_err(format!("chown {}", dir.display())))?;
            }
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io_err(format!("creating socket dir {}", dir.display()))(e)),
    }
    // /tmp is shared: a dir planted there by someone else could intercept our connections.
    let meta =
        fs::symlink_metadata(&dir).map_err(io_err(format!("inspecting {}", dir.display())))?;
    if !meta.is_dir() {
        return Err(EmbeddedPostgresError::UnsafeSocketDir {
            dir,
            reason: "not a directory".into(),
        });
    }
    if meta.uid() != owner.as_raw() {
        return Err(EmbeddedPostgresError::UnsafeSocketDir {
            dir,
            reason: format!("owned by uid {}, expected {}", meta.uid(), owner),
        });
    }
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
        .map_err(io_err(format!("chmod 0700 {}", dir.display())))?;
    Ok((dir, true))
}

fn socket_path_len(dir: &Path, port: u16) -> usize {
    dir.as_os_str().len() + "/.s.PGSQL.".len() + port.to_string().len()
}

fn initdb(bins: &PgBinaries, data_dir: &Path, durable: bool, run_as: Option<&RunAs>) -> Result<()> {
    info!(data_dir = %data_dir.display(), "initializing new PostgreSQL cluster");
    let mut cmd = Command::new(&bins.initdb);
    cmd.arg("-D")
        .arg(data_dir)
        // Trust is safe: the only listener is a Unix socket inside the 0700 data dir (or
        // our own 0700 dir), so only the run-as user and root can connect at all.
        .arg("--auth=trust")
        .arg("-U")
        .arg(SUPERUSER)
        .arg("-E")
        .arg("UTF8")
        .arg("--locale=C");
    if !durable {
        cmd.arg("--no-sync");
    }
    cmd.stdin(Stdio::null());
    child_environment(&mut cmd, data_dir, run_as);
    let output = cmd
        .output()
        .map_err(io_err(format!("running {}", bins.initdb.display())))?;
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    if !output.status.success() {
        return Err(EmbeddedPostgresError::Initdb {
            data_dir: data_dir.to_path_buf(),
            status: output.status.to_string(),
            output: text,
        });
    }
    debug!(output = %text, "initdb finished");
    Ok(())
}

fn child_environment(cmd: &mut Command, data_dir: &Path, run_as: Option<&RunAs>) {
    // cwd and HOME must be somewhere the run-as user can read; root's are not.
    cmd.current_dir(data_dir).env("HOME", data_dir);
    if let Some(run_as) = run_as {
        cmd.uid(run_as.uid.as_raw()).gid(run_as.gid.as_raw());
    }
}

/// Opens the server log for appending and returns it with the offset where this run's
/// output starts.
fn open_log(path: &Path, run_as: Option<&RunAs>) -> Result<(File, u64)> {
    if let Ok(meta) = fs::metadata(path)
        && meta.len() > LOG_ROTATE_BYTES
    {
        let mut old = path.as_os_str().to_owned();
        old.push(".1");
        let _ = fs::rename(path, PathBuf::from(old));
    }
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err(format!("opening {}", path.display())))?;
    if let Some(run_as) = run_as {
        chown(path, Some(run_as.uid), Some(run_as.gid))
            .map_err(nix_err(format!("chown {}", path.display())))?;
    }
    let offset = file
        .metadata()
        .map_err(io_err(format!("inspecting {}", path.display())))?
        .len();
    Ok((file, offset))
}

/// The last lines the server wrote during this run.
fn log_tail(path: &Path, offset: u64) -> String {
    const MAX_BYTES: u64 = 8 * 1024;
    const MAX_LINES: usize = 30;
    let read = || -> io::Result<String> {
        let mut file = File::open(path)?;
        let len = file.metadata()?.len();
        let start = offset.max(len.saturating_sub(MAX_BYTES));
        file.seek(SeekFrom::Start(start))?;
        let mut buf = Vec::new();
        file.read_to_end(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    };
    match read() {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(MAX_LINES)..].join("\n");
            if tail.trim().is_empty() {
                "(no output)".to_string()
            } else {
                tail
            }
        }
        Err(e) => format!("(could not read log: {e})"),
    }
}

async fn connect(config: &tokio_postgres::Config) -> Result<tokio_postgres::Client> {
    let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            debug!(error = %e, "embedded postgres connection ended with error");
        }
    });
    Ok(client)
}

async fn select_one(config: &tokio_postgres::Config) -> Result<(), tokio_postgres::Error> {
    let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
    let conn = tokio::spawn(connection);
    let result = client.simple_query("SELECT 1").await.map(|_| ());
    drop(client);
    let _ = conn.await;
    result
}

/// An error with its causes on one line (tokio_postgres's own Display omits them).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn validate_database_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(EmbeddedPostgresError::InvalidDatabaseName(name.to_string()))
    }
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Both binaries from one installation, with symlinks resolved so a mix of versions
/// (e.g. stray symlinks in /usr/local/bin) is never picked.
fn binaries_in(dir: &Path) -> Option<PgBinaries> {
    let initdb = dir.join("initdb");
    let postgres = dir.join("postgres");
    if !is_executable(&initdb) || !is_executable(&postgres) {
        return None;
    }
    let initdb = initdb.canonicalize().ok()?;
    let postgres = postgres.canonicalize().ok()?;
    let bindir = postgres.parent()?.to_path_buf();
    if initdb.parent()? != bindir {
        return None;
    }
    Some(PgBinaries {
        bindir,
        initdb,
        postgres,
    })
}

fn pg_config_bindir() -> Option<PathBuf> {
    let output = Command::new("pg_config")
        .arg("--bindir")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let dir = String::from_utf8(output.stdout).ok()?;
    let dir = dir.trim();
    (!dir.is_empty()).then(|| PathBuf::from(dir))
}

/// `<root>/<version>/bin`, highest version first.
fn versioned_bindirs(root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(root) else {
        return Vec::new();
    };
    let mut versions: Vec<(Vec<u32>, OsString)> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name();
            let version = parse_version(name.to_str()?)?;
            Some((version, name))
        })
        .collect();
    versions.sort_by(|a, b| b.0.cmp(&a.0));
    versions
        .into_iter()
        .map(|(_, name)| root.join(name).join("bin"))
        .collect()
}

fn parse_version(name: &str) -> Option<Vec<u32>> {
    name.split('.').map(|part| part.parse().ok()).collect()
}

/// The postmaster child, owned by a dedicated thread.
///
/// The parent-death signal fires when the *thread* that forked the child exits, not the
/// process, and tokio's worker and blocking threads come and go. So one long-lived
/// std::thread forks the server and then blocks until it exits.
#[derive(Debug)]
struct Postmaster {
    pid: Pid,
    /// Set once the child is reaped; signals are only sent while it is false (under the
    /// lock), so we can never hit an unrelated process that reused the pid.
    reaped: Arc<Mutex<bool>>,
    exit: watch::Receiver<Option<String>>,
    /// A shutdown has been requested, so dropping needs no further signal.
    released: bool,
}

/// Covers handles that never reach an `EmbeddedPostgres`, e.g. when `start` is cancelled
/// while the blocking setup task is still running.
impl Drop for Postmaster {
    fn drop(&mut self) {
        self.release();
    }
}

impl Postmaster {
    fn spawn(mut cmd: Command) -> io::Result<Self> {
        let (spawned_tx, spawned_rx) = std::sync::mpsc::sync_channel::<io::Result<Pid>>(1);
        let (exit_tx, exit_rx) = watch::channel(None);
        let reaped = Arc::new(Mutex::new(false));
        let thread_reaped = Arc::clone(&reaped);
        std::thread::Builder::new()
            .name("authd-postgres".into())
            .spawn(move || {
                let mut child = match cmd.spawn() {
                    Ok(child) => child,
                    Err(e) => {
                        let _ = spawned_tx.send(Err(e));
                        return;
                    }
                };
                let pid = Pid::from_raw(child.id() as i32);
                let _ = spawned_tx.send(Ok(pid));
                // Wait for exit without reaping, so the pid stays ours until we flip
                // `reaped` under the lock.
                while let Err(Errno::EINTR) =
                    waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT)
                {
                }
                let status = {
                    let mut reaped = thread_reaped.lock().unwrap_or_else(PoisonError::into_inner);
                    let status = child.wait();
                    *reaped = true;
                    status
                };
                let description = match status {
                    Ok(status) => status.to_string(),
                    Err(e) => format!("wait failed: {e}"),
                };
                exit_tx.send_replace(Some(description));
            })?;
        let pid = spawned_rx
            .recv()
            .map_err(|_| io::Error::other("postgres spawner thread ended unexpectedly"))??;
        Ok(Postmaster {
            pid,
            reaped,
            exit: exit_rx,
            released: false,
        })
    }

    /// Sends `signal` unless the server already exited; returns whether it was sent.
    fn signal(&self, signal: Signal) -> bool {
        let reaped = self.reaped.lock().unwrap_or_else(PoisonError::into_inner);
        !*reaped && kill(self.pid, signal).is_ok()
    }

    /// Asks for a fast shutdown without waiting, once; true if a signal was sent.
    fn release(&mut self) -> bool {
        if self.released {
            return false;
        }
        self.released = true;
        self.signal(Signal::SIGINT)
    }

    fn exit_status(&self) -> Option<String> {
        if let Some(status) = self.exit.borrow().clone() {
            return Some(status);
        }
        // The owning thread only ends once the child is gone.
        self.exit
            .has_changed()
            .is_err()
            .then(|| "exited, status unknown".to_string())
    }

    /// Waits up to `timeout` for exit; true if it exited.
    async fn wait_exit(&mut self, timeout: Duration) -> bool {
        match tokio::time::timeout(timeout, self.exit.wait_for(|s| s.is_some())).await {
            Ok(Ok(_)) => true,
            // The owning thread is gone, so the child has been reaped.
            Ok(Err(_)) => true,
            Err(_) => false,
        }
    }

    /// Shuts the server down with `first` (SIGINT: fast, SIGQUIT: immediate), escalating
    /// if it takes too long. Returns false if it had to be killed.
    async fn terminate(&mut self, first: Signal) -> bool {
        self.released = true;
        let first_timeout = if first == Signal::SIGINT {
            FAST_SHUTDOWN_TIMEOUT
        } else {
            IMMEDIATE_SHUTDOWN_TIMEOUT
        };
        self.signal(first);
        if self.wait_exit(first_timeout).await {
            return true;
        }
        if first != Signal::SIGQUIT {
            warn!(
                pid = self.pid.as_raw(),
                "postgres ignored fast shutdown; sending SIGQUIT"
            );
            self.signal(Signal::SIGQUIT);
            if self.wait_exit(IMMEDIATE_SHUTDOWN_TIMEOUT).await {
                return true;
            }
        }
        warn!(
            pid = self.pid.as_raw(),
            "postgres did not shut down; sending SIGKILL"
        );
        self.signal(Signal::SIGKILL);
        self.wait_exit(IMMEDIATE_SHUTDOWN_TIMEOUT).await;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_are_validated() {
        for ok in ["x", "authd", "authd_test_01", &"a".repeat(63)] {
            assert!(validate_database_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "X", "a-b", "a\"b", "a b", "é", &"a".repeat(64)] {
            assert!(validate_database_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn versions_sort_numerically() {
        assert_eq!(parse_version("9.6"), Some(vec![9, 6]));
        assert_eq!(parse_version("15"), Some(vec![15]));
        assert_eq!(parse_version("15beta"), None);
        let root = std::env::temp_dir().join(format!(
            "authd-pg-versions-{}-{:x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        for v in ["9.6", "15", "10", "notaversion"] {
            fs::create_dir_all(root.join(v)).expect("mkdir");
        }
        let dirs = versioned_bindirs(&root);
        let names: Vec<PathBuf> = ["15", "10", "9.6"]
            .iter()
            .map(|v| root.join(v).join("bin"))
            .collect();
        assert_eq!(dirs, names);
        fs::remove_dir_all(&root).expect("cleanup");
    }

    #[test]
    fn socket_path_length_counts_port_digits() {
        let dir = PathBuf::from(format!("/{}", "d".repeat(90)));
        // "/" + 90 + "/.s.PGSQL." (10) + "5432" (4)
        assert_eq!(socket_path_len(&dir, 5432), 105);
        assert_eq!(socket_path_len(&dir, 55432), 106);
    }

    #[test]
    fn missing_binaries_message_is_one_line() {
        let msg = EmbeddedPostgresError::BinariesNotFound.to_string();
        assert!(!msg.contains('\n'));
        assert!(msg.contains("apt-get install postgresql"));
        assert!(msg.contains("DATABASE_URL"));
    }
}
