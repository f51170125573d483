//! Throwaway clusters, for the tests only (tests/): the service never starts one. Each
//! is non-durable and lives in a fresh directory under the system's temporary directory,
//! which [`EmbeddedPostgres::stop`] deletes. (Nothing in the `authd` binary calls this,
//! so the linker leaves it out.)

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tracing::debug;

use super::error::{EmbeddedPostgresError, Result, io_err};
use super::pid_file::{PidFileOwner, pid_file_owner, process_alive, read_postmaster_pid};
use super::{EmbeddedPostgres, EmbeddedPostgresOptions};

const THROWAWAY_DIR: &str = "authd-test-pg";
/// Only names the socket file of throwaway clusters; distinct from 5432 so nobody mistakes
/// it for the system server.
const THROWAWAY_PORT: u16 = 55432;
const THROWAWAY_MAX_CONNECTIONS: u32 = 100;

/// A throwaway cluster under std::env::temp_dir()/authd-test-pg/<pid>-<random>, non-durable.
/// Before creating it, removes sibling dirs left by earlier test processes whose <pid> is no
/// longer alive.
pub async fn start() -> Result<EmbeddedPostgres, EmbeddedPostgresError> {
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
