//! Supervising the server: started again, with backoff, after every crash.

use std::io;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, warn};

use super::EmbeddedPostgres;
use super::error::{EmbeddedPostgresError, Result};
use super::log_rotation::LOG_FILE;

/// Restart backoff after a crash: doubles from the first to the second, and starts over
/// once a server has run for `RESTART_STABLE`.
const RESTART_BACKOFF_MIN: Duration = Duration::from_millis(500);
const RESTART_BACKOFF_MAX: Duration = Duration::from_secs(10);
const RESTART_STABLE: Duration = Duration::from_secs(60);

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
