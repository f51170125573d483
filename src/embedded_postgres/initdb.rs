//! Creating a new cluster with initdb.

use std::path::Path;
use std::process::{Command, Stdio};

use tracing::{debug, info};

use super::SUPERUSER;
use super::binaries::PgBinaries;
use super::error::{EmbeddedPostgresError, Result, io_err};
use super::permissions::{RunAs, child_environment};

pub(super) fn initdb(
    bins: &PgBinaries,
    data_dir: &Path,
    durable: bool,
    run_as: Option<&RunAs>,
) -> Result<()> {
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
