//! Who runs the server and what it may reach: the run-as user (PostgreSQL refuses to run
//! as root), the data directory's owner and mode, and whether that user can traverse the
//! way to it and to the binaries.

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::unistd::{Gid, Uid, User, chown, geteuid};

use super::binaries::PgBinaries;
use super::error::{EmbeddedPostgresError, Result, io_err, nix_err};

const DEFAULT_RUN_AS: &str = "postgres";

/// The OS identity the server runs as when we are root.
#[derive(Debug, Clone)]
pub(super) struct RunAs {
    pub(super) name: String,
    pub(super) uid: Uid,
    pub(super) gid: Gid,
}

/// The OS user to run the server as: `requested` (or "postgres") when we are root, nobody
/// (ourselves) otherwise.
pub(super) fn resolve_run_as(requested: Option<&str>) -> Result<Option<RunAs>> {
    if !geteuid().is_root() {
        return Ok(None);
    }
    let name = requested.unwrap_or(DEFAULT_RUN_AS).to_string();
    let user = User::from_name(&name)
        .map_err(nix_err(format!("looking up OS user {name:?}")))?
        .ok_or_else(|| EmbeddedPostgresError::UnknownUser(name.clone()))?;
    Ok(Some(RunAs {
        name,
        uid: user.uid,
        gid: user.gid,
    }))
}

/// Creates the data dir if needed and gives a fresh one to the run-as user; returns its
/// canonical path (absolute, because the children run with the data dir as cwd).
pub(super) fn prepare_data_dir(requested: &Path, run_as: Option<&RunAs>) -> Result<PathBuf> {
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
pub(super) fn check_traversable(bins: &PgBinaries, data_dir: &Path, run_as: &RunAs) -> Result<()> {
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

pub(super) fn child_environment(cmd: &mut Command, data_dir: &Path, run_as: Option<&RunAs>) {
    // cwd and HOME must be somewhere the run-as user can read; root's are not.
    cmd.current_dir(data_dir).env("HOME", data_dir);
    if let Some(run_as) = run_as {
        cmd.uid(run_as.uid.as_raw()).gid(run_as.gid.as_raw());
    }
}
