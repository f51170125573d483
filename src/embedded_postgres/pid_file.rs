//! postmaster.pid: whether a server still runs on a data directory, removing a lock file
//! that would stop postgres from starting, and reading another server's socket from it.

use std::fs;
use std::io;
use std::path::Path;

use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;
use tracing::{info, warn};

use super::SUPERUSER;
use super::error::{EmbeddedPostgresError, Result, io_err};

pub(super) fn remove_stale_postmaster_pid(data_dir: &Path) -> Result<()> {
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

pub(super) fn read_postmaster_pid(data_dir: &Path) -> Option<i32> {
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
pub(super) enum PidFileOwner {
    /// A postgres serving this data dir.
    Running,
    /// Nobody.
    Gone,
    /// A zombie, or a process that reused the pid (common in containers, which restart with
    /// the same few pids).
    Unrelated,
}

pub(super) fn pid_file_owner(pid: i32, data_dir: &Path) -> PidFileOwner {
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

pub(super) fn process_alive(pid: i32) -> bool {
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
