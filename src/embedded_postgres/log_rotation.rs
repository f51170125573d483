//! The server's log in the data directory: moved aside at start-up once it is large, so a
//! long-lived service's log stays bounded, and read back for the error of a failed start.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::unistd::chown;

use super::error::{Result, io_err, nix_err};
use super::permissions::RunAs;

pub(super) const LOG_FILE: &str = "postgres.log";
/// A log larger than this is moved aside at startup so a long-lived service's log stays bounded.
const LOG_ROTATE_BYTES: u64 = 10 * 1024 * 1024;

/// Opens the server log for appending and returns it with the offset where this run's
/// output starts.
pub(super) fn open_log(path: &Path, run_as: Option<&RunAs>) -> Result<(File, u64)> {
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
pub(super) fn log_tail(path: &Path, offset: u64) -> String {
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
