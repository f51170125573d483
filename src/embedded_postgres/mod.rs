//! A private PostgreSQL server run from the machine's server binaries, so that `authd` works
//! out of the box without DATABASE_URL and so that each test process gets a throwaway cluster.
//! The service's default mode and the test harness share this code so both paths stay exercised.
//!
//! This module holds the public types and the start/stop orchestration; each job it
//! orchestrates has a module of its own:
//! - `binaries`: finding initdb and postgres;
//! - `permissions`: the run-as user, the data directory's owner and mode, and
//!   whether that user can reach it;
//! - `pid_file`: postmaster.pid, stale or held by a running server;
//! - `socket`: where the Unix socket goes (the data directory, or a short dir in /tmp);
//! - `initdb`: creating a cluster;
//! - `log_rotation`: the server's log, rotated at start-up, and its tail for errors;
//! - `postmaster`: the server process, owned by a thread of its own, and its shutdown;
//! - `readiness`: waiting until it accepts connections;
//! - `database`: creating the databases in it;
//! - `supervisor`: restarting the server after a crash;
//! - `throwaway`: throwaway clusters, for the tests only.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use nix::sys::signal::Signal;
use tracing::{debug, info};

mod binaries;
mod database;
mod error;
mod initdb;
mod log_rotation;
mod permissions;
mod pid_file;
mod postmaster;
mod readiness;
mod socket;
mod supervisor;
pub mod throwaway;

pub use binaries::PgBinaries;
pub use error::EmbeddedPostgresError;
use error::Result;
use log_rotation::{LOG_FILE, log_tail, open_log};
use permissions::{check_traversable, prepare_data_dir, resolve_run_as};
use pid_file::remove_stale_postmaster_pid;
pub use pid_file::running_server_config;
use postmaster::Postmaster;
use socket::socket_dir_for;
pub use supervisor::SupervisedPostgres;

const SUPERUSER: &str = "authd";

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

impl EmbeddedPostgres {
    /// Finds initdb and postgres: $PATH, then `pg_config --bindir`, then the highest
    /// /usr/lib/postgresql/*/bin.
    pub fn find_binaries() -> Result<PgBinaries, EmbeddedPostgresError> {
        binaries::find()
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
    let bins = binaries::find()?;
    let run_as = resolve_run_as(opts.run_as.as_deref())?;

    let data_dir = prepare_data_dir(&opts.data_dir, run_as.as_ref())?;
    if let Some(run_as) = &run_as {
        check_traversable(&bins, &data_dir, run_as)?;
    }
    remove_stale_postmaster_pid(&data_dir)?;
    let (socket_dir, fallback_socket_dir) = socket_dir_for(&data_dir, opts.port, run_as.as_ref())?;

    if !data_dir.join("PG_VERSION").exists() {
        initdb::initdb(&bins, &data_dir, opts.durable, run_as.as_ref())?;
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
    let cmd = postmaster::command(
        &bins,
        &data_dir,
        &socket_dir,
        &opts,
        run_as.as_ref(),
        log,
        &log_path,
    )?;
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
