//! The postmaster: the command that starts it, the thread that owns it, and its
//! shutdown (fast, then immediate, then killed).

use std::fs::File;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{Id, WaitPidFlag, waitid};
use nix::unistd::{Pid, getppid};
use tokio::sync::watch;
use tracing::warn;

use super::EmbeddedPostgresOptions;
use super::binaries::PgBinaries;
use super::error::{Result, io_err};
use super::permissions::{RunAs, child_environment};

const FAST_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
const IMMEDIATE_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// The postgres command for `data_dir`: listening on the Unix socket in `socket_dir` only,
/// writing to `log`, in a process group of its own, and sent SIGINT if we die.
pub(super) fn command(
    bins: &PgBinaries,
    data_dir: &Path,
    socket_dir: &Path,
    opts: &EmbeddedPostgresOptions,
    run_as: Option<&RunAs>,
    log: File,
    log_path: &Path,
) -> Result<Command> {
    let mut cmd = Command::new(&bins.postgres);
    cmd.arg("-D")
        .arg(data_dir)
        .arg("-k")
        .arg(socket_dir)
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
    child_environment(&mut cmd, data_dir, run_as);
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
    Ok(cmd)
}

/// The postmaster child, owned by a dedicated thread.
///
/// The parent-death signal fires when the *thread* that forked the child exits, not the
/// process, and tokio's worker and blocking threads come and go. So one long-lived
/// std::thread forks the server and then blocks until it exits.
#[derive(Debug)]
pub(super) struct Postmaster {
    pub(super) pid: Pid,
    /// Set once the child is reaped; signals are only sent while it is false (under the
    /// lock), so we can never hit an unrelated process that reused the pid.
    reaped: Arc<Mutex<bool>>,
    pub(super) exit: watch::Receiver<Option<String>>,
    /// A shutdown has been requested, so dropping needs no further signal.
    pub(super) released: bool,
}

/// Covers handles that never reach an `EmbeddedPostgres`, e.g. when `start` is cancelled
/// while the blocking setup task is still running.
impl Drop for Postmaster {
    fn drop(&mut self) {
        self.release();
    }
}

impl Postmaster {
    pub(super) fn spawn(mut cmd: Command) -> io::Result<Self> {
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
    pub(super) fn release(&mut self) -> bool {
        if self.released {
            return false;
        }
        self.released = true;
        self.signal(Signal::SIGINT)
    }

    pub(super) fn exit_status(&self) -> Option<String> {
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
    pub(super) async fn terminate(&mut self, first: Signal) -> bool {
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
